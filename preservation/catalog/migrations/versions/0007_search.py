"""search index over titles and items: SQLite FTS5 trigram tables with triggers, PostgreSQL pg_trgm

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:30:00

No model table changes (see preservation/catalog/search_tables.py for what
is created and why).  The upgrade indexes the titles and items already in
the catalog; on SQLite the triggers keep the index in step from then on, on
PostgreSQL the GIN indexes are ordinary indexes.  ``pg_trgm`` is created if
absent (``CREATE EXTENSION`` needs a role that may create it; pg_trgm is a
trusted extension since PostgreSQL 13) and left in place on downgrade, since
other objects may use it.
"""

import sqlalchemy as sa
from alembic import op

from preservation.catalog.search_tables import (
    BIGRAM_FUNCTION,
    BIGRAMS,
    END_SQL,
    ISBN_INDEX,
    ITEM_COLUMNS,
    ITEMS_FTS,
    PG_INDEXES,
    POSITIONS,
    POSITIONS_TABLE,
    TITLE_COLUMNS,
    TITLES_FTS,
    bigram_function_sql,
)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FTS = {ITEMS_FTS: ("items", ITEM_COLUMNS), TITLES_FTS: ("titles", TITLE_COLUMNS)}


def _values(prefix: str, columns) -> str:
    return ", ".join(f"{prefix}.{c} || {END_SQL}" for c in columns)


def _bigrams(prefix: str, columns) -> str:
    # a value's two-character runs, space separated: unicode61 reads each run of letters or digits as one token
    return ", ".join(f"(SELECT group_concat(substr({prefix}.{c}, n, 2), ' ') FROM {POSITIONS_TABLE} "
                     f"WHERE n < length({prefix}.{c}))" for c in columns)


def _sqlite_upgrade() -> None:
    op.execute(f"CREATE TABLE {POSITIONS_TABLE} (n INTEGER PRIMARY KEY)")
    op.execute(f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {POSITIONS}) "
               f"INSERT INTO {POSITIONS_TABLE}(n) SELECT n FROM c")
    for fts, (table, columns) in FTS.items():
        names = ", ".join(columns)
        bigrams = fts + BIGRAMS
        op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='', tokenize='trigram')")
        op.execute(f"CREATE VIRTUAL TABLE {fts}_vocab USING fts5vocab({fts}, 'col')")
        op.execute(f"CREATE VIRTUAL TABLE {bigrams} USING fts5({names}, content='', "
                   "tokenize='unicode61 remove_diacritics 0')")
        insert = (f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {_values('new', columns)}); "
                  f"INSERT INTO {bigrams}(rowid, {names}) VALUES (new.id, {_bigrams('new', columns)});")
        delete = (f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {_values('old', columns)}); "
                  f"INSERT INTO {bigrams}({bigrams}, rowid, {names}) "
                  f"VALUES ('delete', old.id, {_bigrams('old', columns)});")
        op.execute(f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END")
        op.execute(f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END")
        op.execute(f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {names} ON {table} BEGIN {delete} {insert} END")
        op.execute(f"INSERT INTO {fts}(rowid, {names}) SELECT id, {_values(table, columns)} FROM {table}")
        op.execute(f"INSERT INTO {bigrams}(rowid, {names}) SELECT id, {_bigrams(table, columns)} FROM {table}")


def _sqlite_downgrade() -> None:
    for fts in FTS:
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {fts}_vocab")
        op.execute(f"DROP TABLE IF EXISTS {fts}")
        op.execute(f"DROP TABLE IF EXISTS {fts}{BIGRAMS}")
    op.execute(f"DROP TABLE IF EXISTS {POSITIONS_TABLE}")


def _pg_trgm_schema(conn) -> str | None:
    return conn.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'")).scalar()


def _postgresql_upgrade() -> None:
    conn = op.get_bind()
    schema = _pg_trgm_schema(conn)
    if schema is None:
        # into public, not the first schema of the search path: an extension belongs to one schema and goes
        # with it, and every catalog of the database (a schema each, in the tests) shares it
        try:
            with conn.begin_nested():
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
        except sa.exc.DBAPIError:
            pass  # created at the same moment by another catalog's upgrade: read below which schema holds it
        schema = _pg_trgm_schema(conn)
        if schema is None:
            raise RuntimeError("the pg_trgm extension could not be created: ask the database owner to run "
                               "CREATE EXTENSION pg_trgm")
    opclass = f'"{schema}".gin_trgm_ops'
    op.execute(bigram_function_sql(migration="0007"))
    for name, (table, column, kind) in PG_INDEXES.items():
        expression = f"{column} {opclass}" if kind == "trgm" else f"{BIGRAM_FUNCTION}({column})"
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({expression})")


def _postgresql_downgrade() -> None:
    for name in PG_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute(f"DROP FUNCTION IF EXISTS {BIGRAM_FUNCTION}(text)")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE INDEX {ISBN_INDEX} ON items (isbn)")
    if dialect == "sqlite":
        _sqlite_upgrade()
    elif dialect == "postgresql":
        _postgresql_upgrade()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"DROP INDEX IF EXISTS {ISBN_INDEX}")
    if dialect == "sqlite":
        _sqlite_downgrade()
    elif dialect == "postgresql":
        _postgresql_downgrade()
