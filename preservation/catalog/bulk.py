"""Many rows into one table at once, through the driver: the bulk path of imports and of ingest's per-file records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT ``rows`` (tuples in the order of ``columns``) through the driver's ``executemany``.

    The values go through each column type's own bind processor (JSON,
    dates), as SQLAlchemy would send them; what is skipped is its per-row
    statement bookkeeping, which costs more than the database does for the
    hundreds of thousands of rows of a KBART file (or of one file record per
    payload file at ingest).
    """
    if not rows:
        return
    dialect = conn.dialect
    processors = [(i, process) for i, c in enumerate(columns)
                  if (process := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    if processors:
        # a value many rows share (one object: a timestamp, a file's template of findings) is processed once;
        # the rows hold every value for the whole call, so an id is never reused within it
        done: list[dict[int, Any]] = [{} for _ in processors]
        changed = []
        for row in rows:
            values = list(row)
            for (i, process), seen in zip(processors, done):
                value = values[i]
                key = id(value)
                processed = seen.get(key, seen)
                if processed is seen:
                    processed = seen[key] = process(value)
                values[i] = processed
            changed.append(tuple(values))
        rows = changed
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in columns)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        # COPY, on the connection (and in the transaction) SQLAlchemy holds: row by row INSERTs cost a round trip each
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {preparer.format_table(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {preparer.format_table(table)} ({names}) "
                         f"VALUES ({', '.join([marker] * len(columns))})", rows)
