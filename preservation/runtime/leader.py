"""Only one active scheduler: a lock held for as long as the scheduler runs.

PostgreSQL: a session-level ``pg_try_advisory_lock`` on a connection kept
for that purpose; the server releases it the moment that session ends, so a
killed scheduler frees it at once (TCP keepalives bound how long a vanished
host can hold it).  The key is derived from the catalog's schema, so several
catalogs can share one database.

SQLite: an exclusive ``flock`` on ``scheduler.lock`` in the home, released
by the kernel when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from preservation.errors import ConfigError
from preservation.repository import Repository

LOCK_FILE = "scheduler.lock"
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free; never waits."""

    def held(self) -> bool:
        """Whether the lock is still ours (False once the connection behind it is gone)."""

    def release(self) -> None: ...


class PostgresLeaderLock:
    def __init__(self, url: str) -> None:
        self._engine: Engine = create_engine(url, connect_args=KEEPALIVES)
        self._conn: Connection | None = None
        self._key: int | None = None
        self._held = False

    def acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                schema = self._conn.execute(text("SELECT current_schema()")).scalar_one()
                digest = hashlib.sha256(f"preserve-scheduler:{schema}".encode()).digest()
                self._key = int.from_bytes(digest[:8], "big", signed=True)
            if not self._held:
                self._held = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                                     {"k": self._key}).scalar_one())
        except SQLAlchemyError:
            self._drop()
            return False
        return self._held

    def held(self) -> bool:
        # a session-level advisory lock lasts as long as its session: a live session still holds it
        if self._conn is None or not self._held:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Unlock and close the session (closing alone would release the lock too)."""
        if self._conn is not None and self._held:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            except SQLAlchemyError:
                self._held = False
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):  # the connection may already be gone
                self._conn.close()
        self._conn = None


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def leader_lock(repo: Repository) -> LeaderLock:
    """The right lock for the catalog's database; raises ConfigError for an unsupported one."""
    dialect = repo.catalog.dialect
    if dialect == "postgresql":
        return PostgresLeaderLock(repo.catalog.url)
    if dialect == "sqlite":
        return FileLeaderLock(Path(repo.settings.home) / LOCK_FILE)
    raise ConfigError(f"no scheduler lock for a {dialect} catalog: use PostgreSQL or SQLite")
