"""Opening a catalog, applying migrations and checking the schema revision.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every
transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue
instead of failing half-way, and ends by writing the search index of the
rows it changed (:mod:`preservation.catalog.search_index`); PostgreSQL needs
nothing special.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from preservation.catalog import revisions
from preservation.catalog.search_index import index_pending
from preservation.catalog.reader import ALEMBIC_VERSION
from preservation.errors import CatalogDriverMissing, CatalogError

if TYPE_CHECKING:  # alembic (and mako under it) is imported only to migrate: every command checks the schema
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "commit")
    def _on_commit(conn):  # pragma: no cover - exercised by every SQLite test that commits
        index_pending(conn)  # the search index of the rows this transaction wrote, set-based (search_index)


_DRIVER_REMEDY = {
    "psycopg": "pip install 'preserve[postgres]'",
    "psycopg2": "use a postgresql+psycopg:// URL and pip install 'preserve[postgres]'",
}


def make_engine(url: str) -> Engine:
    """An engine for ``url``; raises CatalogDriverMissing (naming what to install) when its driver is not installed."""
    try:
        return _make_engine(url)
    except ImportError as e:
        # SQLAlchemy imports the driver when the engine is created; a missing one is an install problem
        module = (e.name or "").split(".")[0] or "the database driver"
        remedy = _DRIVER_REMEDY.get(module, f"install {module} into the environment preserve runs in")
        raise CatalogDriverMissing(url=display_url(url), module=module, remedy=remedy) from e


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _head_revision(url: str) -> str:
    """The migrations' head as alembic reads it (catalog.revisions reads the same without importing alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(url)).get_current_head() or ""


def display_url(url: str) -> str:
    """``url`` as it may be shown: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return url


class Catalog:
    """One catalog database.  ``session()`` gives a transaction that commits on success."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.display_url = display_url(url)
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def current_revision(self) -> str | None:
        """The revision the catalog is at (None before its first migration); one query, no alembic import.

        Raises CatalogError when the database cannot be opened or holds more than one revision.
        """
        found = self._revision_rows()
        return revisions.applied(found, self.display_url) if found is not None else None

    def _revision_rows(self) -> list[str] | None:
        """The rows of ``alembic_version`` (None when the table does not exist)."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table(ALEMBIC_VERSION):
                    return None
                return [row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {ALEMBIC_VERSION}")]
        except OperationalError as e:
            raise CatalogError(f"cannot open the catalog at {self.display_url}: {e.orig}") from e

    def upgrade(self) -> str:
        """Apply every pending migration; returns the new revision."""
        from alembic import command

        cfg = _alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return self.current_revision() or ""

    def check_schema(self) -> None:
        """Raise unless the catalog is at the revision this code expects (:func:`revisions.require_head`)."""
        def has_tables() -> bool:
            with self.engine.connect() as conn:
                return bool(inspect(conn).get_table_names())

        revisions.require_head(self._revision_rows(), has_tables, self.display_url)

    def dispose(self) -> None:
        self.engine.dispose()
