"""Keeping the SQLite search index in step with ``items`` and ``titles``: set-based, once per transaction.

The FTS5 tables of :mod:`preservation.catalog.search_tables` are
*contentless*: a row leaves the index only when its old values are given
back, so whatever changes an indexed column must reach the index.  Indexing
each row from a trigger as it is written cost more than the write itself
(10,000 items: 0.4 s of CPU to insert, 3-4 s more for the index), because
every row ran its own FTS5 statements.  So the triggers (migration 0015)
only note which rows changed, and the index is written from that note in
one set-based statement per table:

* **insert** — the row's id goes into the table's pending list
  (``search_items_pending``, ``search_titles_pending``);
* **update** of an indexed column — the old values leave the index (unless
  the row is still pending: then they never entered it), and the row is
  pending again;
* **delete** — the old values leave the index unless the row is pending,
  and it leaves the pending list.

:func:`index_pending` then writes every pending row with ``INSERT … SELECT``
and empties the lists.  It runs in the transaction that wrote the rows, just
before it commits: :mod:`preservation.catalog.db` calls it from the SQLite
engine's ``commit`` event, so every writer (the metadata analyser's bulk
inserts, a KBART import, an operator's title, a cascade of a deleted
package) is indexed without calling anything, and a rolled-back transaction
leaves neither rows nor notes.  Nothing searches between a write and its
commit; a writer that wants to may call :func:`index_pending` itself.

The bigram text of a value is computed in SQL in the triggers (to delete)
and in the set-based insert alike, from :func:`bigram_sql`: the one
definition of what the bigram tables hold.  PostgreSQL needs none of this:
its GIN indexes are ordinary indexes.
"""

from __future__ import annotations

from sqlalchemy import Connection

from preservation.catalog.search_tables import (
    BIGRAMS,
    END_SQL,
    ITEM_COLUMNS,
    ITEMS_FTS,
    PENDING,
    POSITIONS_TABLE,
    TITLE_COLUMNS,
    TITLES_FTS,
)

INDEXED = {ITEMS_FTS: ("items", ITEM_COLUMNS), TITLES_FTS: ("titles", TITLE_COLUMNS)}
"""Each FTS5 table: the catalog table it indexes and the indexed columns."""


def value_sql(prefix: str, columns: tuple[str, ...]) -> str:
    """The trigram tables' values: each column closed by :data:`~preservation.catalog.search_tables.END`."""
    return ", ".join(f"{prefix}.{c} || {END_SQL}" for c in columns)


def bigram_sql(prefix: str, columns: tuple[str, ...]) -> str:
    """The bigram tables' values: each column's two-character runs, space separated (unicode61 tokens)."""
    return ", ".join(f"(SELECT group_concat(substr({prefix}.{c}, n, 2), ' ') FROM {POSITIONS_TABLE} "
                     f"WHERE n < length({prefix}.{c}))" for c in columns)


def _unindex_old(fts: str, columns: tuple[str, ...]) -> str:
    """Trigger statements: ``old``'s values leave both tables, unless the row is pending (never indexed)."""
    names = ", ".join(columns)
    bigrams = fts + BIGRAMS
    unindexed = f"NOT EXISTS (SELECT 1 FROM {fts}{PENDING} WHERE id = old.id)"
    return (f"INSERT INTO {fts}({fts}, rowid, {names}) SELECT 'delete', old.id, {value_sql('old', columns)} "
            f"WHERE {unindexed}; "
            f"INSERT INTO {bigrams}({bigrams}, rowid, {names}) SELECT 'delete', old.id, {bigram_sql('old', columns)} "
            f"WHERE {unindexed};")


def trigger_statements() -> list[str]:
    """The pending lists and the triggers that fill them (migration 0015)."""
    statements = []
    for fts, (table, columns) in INDEXED.items():
        pending = fts + PENDING
        names = ", ".join(columns)
        statements += [
            f"CREATE TABLE {pending} (id INTEGER PRIMARY KEY)",
            f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT OR IGNORE INTO {pending}(id) VALUES (new.id); END",
            f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {_unindex_old(fts, columns)} "
            f"DELETE FROM {pending} WHERE id = old.id; END",
            f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {names} ON {table} BEGIN {_unindex_old(fts, columns)} "
            f"INSERT OR IGNORE INTO {pending}(id) VALUES (new.id); END",
        ]
    return statements


def index_statements(fts: str) -> list[str]:
    """Write the pending rows of one FTS5 table's catalog table into it and its bigram table, then forget them."""
    table, columns = INDEXED[fts]
    names = ", ".join(columns)
    rows = f"FROM {fts}{PENDING} p JOIN {table} x ON x.id = p.id ORDER BY p.id"
    return [f"INSERT INTO {fts}(rowid, {names}) SELECT x.id, {value_sql('x', columns)} {rows}",
            f"INSERT INTO {fts}{BIGRAMS}(rowid, {names}) SELECT x.id, {bigram_sql('x', columns)} {rows}",
            f"DELETE FROM {fts}{PENDING}"]


_PENDING_TABLES = tuple(fts + PENDING for fts in INDEXED)
_ANY_PENDING = " UNION ALL ".join(f"SELECT '{fts}' FROM (SELECT 1 FROM {fts}{PENDING} LIMIT 1)" for fts in INDEXED)


def index_pending(conn: Connection) -> int:
    """Index the rows written in this transaction (SQLite; nothing elsewhere); returns the tables it wrote to.

    Costs two small queries when nothing is pending, and nothing on a
    catalog older than migration 0015 (no pending lists yet: its triggers
    still index row by row).
    """
    if conn.dialect.name != "sqlite":
        return 0
    present = conn.exec_driver_sql(
        f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
        f"({', '.join(repr(name) for name in _PENDING_TABLES)})").scalar_one()
    if present != len(_PENDING_TABLES):
        return 0
    written = [fts for (fts,) in conn.exec_driver_sql(_ANY_PENDING)]
    for fts in written:
        for statement in index_statements(fts):
            conn.exec_driver_sql(statement)
    return len(written)
