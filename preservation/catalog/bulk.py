"""Many rows into one table at once, through the driver: the bulk path of imports and of ingest's per-file records.

Two ways in.  :func:`insert_rows` writes at once, on the caller's thread
(``executemany`` on SQLite, COPY on PostgreSQL).  :class:`KeyedCopy` and
:class:`WriteBehind` split a COPY in two where the driver allows it
(:func:`can_write_behind`): the rows are formatted as COPY text on the
caller's thread, and sent to the server on a thread of its own, which only
waits for the database (the driver releases the GIL while it waits), so a
caller checking its next rows and the server writing the last ones run on
two cores at once.  Formatting on the sending thread instead would make the
two threads take turns on the GIL.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Any, Callable, Mapping

from sqlalchemy import Connection, Dialect, Table


def _processed(dialect: Dialect, table: Table, columns: tuple[str, ...], rows: list[tuple]) -> list[tuple]:
    """``rows`` with each value through its column type's bind processor (JSON, dates), as SQLAlchemy would send it."""
    processors = [(i, process) for i, c in enumerate(columns)
                  if (process := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    if not processors:
        return rows
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
    return changed


def _uses_copy(dialect: Dialect) -> bool:
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _copy_statement(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    preparer = dialect.identifier_preparer
    return f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(c) for c in columns)}) FROM STDIN"


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT ``rows`` (tuples in the order of ``columns``) through the driver's ``executemany``, or COPY.

    The values go through each column type's own bind processor (JSON,
    dates), as SQLAlchemy would send them; what is skipped is its per-row
    statement bookkeeping, which costs more than the database does for the
    hundreds of thousands of rows of a KBART file (or of one file record per
    payload file at ingest).
    """
    if not rows:
        return
    dialect = conn.dialect
    rows = _processed(dialect, table, columns, rows)
    if _uses_copy(dialect):
        # COPY, on the connection (and in the transaction) SQLAlchemy holds: row by row INSERTs cost a round trip each
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(_copy_statement(dialect, table, columns)) as copy:
                for row in rows:
                    copy.write_row(row)
        return
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in columns)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {preparer.format_table(table)} ({names}) "
                         f"VALUES ({', '.join([marker] * len(columns))})", rows)


def can_write_behind(conn: Connection) -> bool:
    """Whether :class:`KeyedCopy` and :class:`WriteBehind` work on this connection (PostgreSQL through psycopg)."""
    return _uses_copy(conn.dialect)


class KeyedCopy:
    """Rows of one table as COPY text, made now; sent later, when the keys of their first column are known.

    The first column of each row is a key that :meth:`send` maps to the
    value written (a row's own id, drawn from a sequence only then, or the id
    of a row another batch writes first); a key the mapping lacks is written
    as it is.  The other columns are formatted by the driver's own COPY
    formatter (psycopg's ``Copy`` with a ``FileWriter``, nothing sent), on
    the thread that makes the object, in a transaction of ``conn``'s
    connection that another thread may be using: nothing here touches it.
    """

    def __init__(self, conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
        from psycopg.copy import Copy, FileWriter

        dialect = conn.dialect
        self.statement = _copy_statement(dialect, table, columns)
        self.keys = [row[0] for row in rows]
        out = io.BytesIO()
        with conn.connection.driver_connection.cursor() as cursor:  # a cursor of its own: it only formats
            with Copy(cursor, binary=False, writer=FileWriter(out)) as copy:
                for row in _processed(dialect, table, columns[1:], [row[1:] for row in rows]):
                    copy.write_row(row)
        self.tails = out.getvalue().split(b"\n")[:-1]  # a value's line ends are escaped: b"\n" ends rows only

    def __len__(self) -> int:
        return len(self.keys)

    def send(self, conn: Connection, key_to_value: Mapping[Any, Any]) -> None:
        """COPY the rows in ``conn``'s transaction, each first column mapped through ``key_to_value``."""
        if not self.keys:
            return
        get = key_to_value.get
        data = b"".join([b"%d\t%b\n" % (get(key, key), tail) for key, tail in zip(self.keys, self.tails)])
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(self.statement) as copy:
                copy.write(data)


class WriteBehind:
    """Writes of one transaction, run in order on a thread of their own while the caller prepares the next.

    Between the first :meth:`submit` and the end of the ``with`` block, the
    caller must leave the connection to the writes.  A write that fails ends
    the writing: its error is raised by the next :meth:`submit` or by the
    end of the block, and the writes after it are never run; the caller then
    rolls its transaction back.  When the caller's own work fails, the block
    waits for the write under way and skips the rest.  At most ``depth``
    writes wait, which bounds the memory the prepared rows take.
    """

    def __init__(self, depth: int = 2) -> None:
        self._writes: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._skip = False

    def __enter__(self) -> "WriteBehind":
        return self

    def submit(self, write: Callable[[], None]) -> None:
        """Queue ``write``; raises the error of an earlier write that failed."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
            self._thread.start()
        self._writes.put(write)

    def _run(self) -> None:
        while (write := self._writes.get()) is not None:
            if self._error is None and not self._skip:
                try:
                    write()
                except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
                    self._error = e

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._thread is not None:
            self._skip = exc is not None
            self._writes.put(None)
            self._thread.join()
            self._thread = None
        if exc is None and self._error is not None:
            raise self._error
