"""search index: triggers note changed rows, the index is written set-based before commit (SQLite)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 08:00:00

The triggers of 0007 indexed each row of ``items`` and ``titles`` as it was
written: 10,000 items cost ten times their insert.  Their successors only
note the rows an insert or update touched (``search_items_pending``,
``search_titles_pending``), take old values out of the index on update and
delete, and the catalog writes the noted rows in one ``INSERT … SELECT`` per
table before each commit (:mod:`preservation.catalog.search_index`).  The
index itself is unchanged, so nothing is re-indexed.  PostgreSQL: nothing
to do (GIN indexes).
"""

from alembic import op

from preservation.catalog.search_index import INDEXED, bigram_sql, index_statements, trigger_statements, value_sql
from preservation.catalog.search_tables import BIGRAMS, PENDING

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_SUFFIXES = ("ai", "ad", "au")


def _drop_triggers() -> None:
    for fts in INDEXED:
        for suffix in _SUFFIXES:
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    for statement in trigger_statements():
        op.execute(statement)


def downgrade() -> None:
    """Back to 0007's triggers, which index each row as it is written (pending rows are indexed first)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for fts in INDEXED:
        for statement in index_statements(fts):
            op.execute(statement)
    _drop_triggers()
    for fts, (table, columns) in INDEXED.items():
        op.execute(f"DROP TABLE {fts}{PENDING}")
        names = ", ".join(columns)
        bigrams = fts + BIGRAMS
        insert = (f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {value_sql('new', columns)}); "
                  f"INSERT INTO {bigrams}(rowid, {names}) VALUES (new.id, {bigram_sql('new', columns)});")
        delete = (f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {value_sql('old', columns)}); "
                  f"INSERT INTO {bigrams}({bigrams}, rowid, {names}) "
                  f"VALUES ('delete', old.id, {bigram_sql('old', columns)});")
        op.execute(f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END")
        op.execute(f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END")
        op.execute(f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {names} ON {table} BEGIN {delete} {insert} END")
