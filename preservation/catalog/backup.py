"""Backing up the catalog, and restoring it, while workers keep writing (docs/operations.md).

The bags on the nodes rebuild packages, files and copies (`catalog rebuild
--from-nodes`), but not what only the catalog holds: libraries, users,
entitlements, grants, usage, jobs.  A backup holds everything.

* **SQLite**: the online backup API (``sqlite3.Connection.backup``) copies
  every page in one step under one read transaction, so the copy is the
  database as of one instant even while workers write (WAL lets them go on).
  The copy is checked (``PRAGMA integrity_check``) and made a single file
  (``journal_mode=DELETE``).
* **PostgreSQL**: ``pg_dump --format=custom`` of the catalog's schema (the
  ``search_path`` the URL sets, else the whole database), run on a snapshot
  exported by a ``REPEATABLE READ`` transaction that also counts the rows
  reported, so the counts are those of the dump.  ``pg_dump`` and
  ``pg_restore`` of the server's major version must be on PATH.

A backup is written under a temporary name beside DEST and renamed when
complete and checked; DEST is never overwritten unless ``force``.  A restore
refuses a catalog that holds tables unless ``force``, and replaces it in one
step: SQLite through the backup API into the catalog file (in place, so a
process holding it open sees either the old or the new database), PostgreSQL
with ``pg_restore --single-transaction --clean``.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from preservation.catalog.db import Catalog
from preservation.errors import AlreadyExists, CatalogError, InvalidRequest, NotFound

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# what an operator checks after a restore: the history, the packages, and what only the catalog holds
COUNTED = ("packages", "files", "replicas", "events", "jobs", "libraries", "access_users", "entitlements",
           "access_grants", "title_entitlements")
DUMP_TIMEOUT = 24 * 3600


def backup_catalog(catalog: Catalog, dest: str | os.PathLike, *, force: bool = False) -> dict[str, Any]:
    """Write a consistent copy of the catalog to the new file ``dest``; see the module docstring.

    Raises AlreadyExists (``dest`` exists and not ``force``), InvalidRequest
    (``dest`` is a directory or its directory does not exist), CatalogError
    (the copy failed or did not check; ``pg_dump`` missing).
    """
    dest = Path(dest).absolute()
    if dest.is_dir():
        raise InvalidRequest(f"{dest} is a directory: name the backup file to write")
    if not dest.parent.is_dir():
        raise InvalidRequest(f"{dest.parent} does not exist: create it, or name a file in an existing directory")
    if (dest.exists() or dest.is_symlink()) and not force:
        raise AlreadyExists(f"{dest} exists: name a new file, or give --force to replace it")
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        if catalog.dialect == "sqlite":
            counts = _backup_sqlite(_sqlite_file(catalog), tmp)
            method = "sqlite online backup API"
        elif catalog.dialect == "postgresql":
            counts = _backup_postgres(catalog, tmp)
            method = "pg_dump --format=custom"
        else:
            raise CatalogError(f"no backup method for a {catalog.dialect} catalog")
        _fsync(tmp)
        os.replace(tmp, dest)
        _fsync(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return {"dest": str(dest), "dialect": catalog.dialect, "method": method, "bytes": dest.stat().st_size,
            "revision": counts.pop("alembic_version", None), "rows": counts}


def restore_catalog(catalog: Catalog, src: str | os.PathLike, *, force: bool = False) -> dict[str, Any]:
    """Replace the catalog with the backup ``src``; see the module docstring.

    Stop workers, the scheduler and ``serve`` first.  Raises NotFound (no
    ``src``), InvalidRequest (``src`` is not a backup of this kind of
    catalog), AlreadyExists (the catalog holds tables and not ``force``),
    CatalogError (the restore failed: the catalog is as it was).
    """
    src = Path(src).absolute()
    if not src.is_file():
        raise NotFound(f"no backup file {src}")
    with open(src, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    expected = {"sqlite": SQLITE_MAGIC, "postgresql": PGDUMP_MAGIC}.get(catalog.dialect)
    if expected is None or not head.startswith(expected):
        kind = "an SQLite database" if head == SQLITE_MAGIC else (
            "a pg_dump archive" if head.startswith(PGDUMP_MAGIC) else "not a catalog backup")
        raise InvalidRequest(f"{src} is {kind}; the catalog at {catalog.display_url} is {catalog.dialect}")
    with catalog.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
    if tables and not force:
        raise AlreadyExists(f"the catalog at {catalog.display_url} holds {len(tables)} tables: give --force to "
                            f"replace it with {src.name} (stop workers, the scheduler and serve first)")
    catalog.engine.dispose()
    if catalog.dialect == "sqlite":
        _restore_sqlite(src, _sqlite_file(catalog))
    else:
        _restore_postgres(catalog, src)
    catalog.engine.dispose()
    with catalog.engine.connect() as conn:
        counts = _counts(conn)
    return {"src": str(src), "catalog": catalog.display_url, "dialect": catalog.dialect,
            "revision": counts.pop("alembic_version", None), "rows": counts, "replaced_tables": len(tables)}


def _sqlite_file(catalog: Catalog) -> Path:
    path = make_url(catalog.url).database
    if not path or path == ":memory:":
        raise CatalogError(f"the catalog at {catalog.display_url} is not a file: nothing to back up")
    return Path(path)


def _backup_sqlite(path: Path, tmp: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CatalogError(f"no catalog database at {path}")
    with closing(sqlite3.connect(path, timeout=60)) as source, closing(sqlite3.connect(tmp)) as copy:
        source.backup(copy)  # pages=-1: every page in one step, one read transaction: one instant
        copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise CatalogError(f"the backup copy did not check: {'; '.join(problems[:3])}")
        return _sqlite_counts(copy)


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, Any]:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    counts: dict[str, Any] = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                              for t in COUNTED if t in present}
    if "alembic_version" in present:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        counts["alembic_version"] = row[0] if row else None
    return counts


def _restore_sqlite(src: Path, path: Path) -> None:
    with closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True)) as backup:
        problems = [row[0] for row in backup.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise InvalidRequest(f"{src} does not check as an SQLite database: {'; '.join(problems[:3])}")
        if "alembic_version" not in {r[0] for r in backup.execute("SELECT name FROM sqlite_master")}:
            raise InvalidRequest(f"{src} is an SQLite database but not a preserve catalog (no alembic_version)")
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=60)) as target:
            backup.backup(target)  # page by page inside one write transaction: all or nothing
            target.execute("PRAGMA journal_mode=WAL")


def _counts(conn) -> dict[str, Any]:
    present = set(inspect(conn).get_table_names())
    counts: dict[str, Any] = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                              for t in COUNTED if t in present}
    if "alembic_version" in present:
        counts["alembic_version"] = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return counts


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CatalogError(f"{name} is not on PATH: install the PostgreSQL client tools of the server's major "
                           f"version (Debian: postgresql-client) to back up or restore a PostgreSQL catalog")
    return found


def _pg_env(catalog: Catalog) -> tuple[dict[str, str], str | None]:
    """libpq's environment for the catalog URL (the password never on a command line), and its schema if it sets one."""
    url = make_url(catalog.url)
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[var] = str(value)
    options = url.query.get("options")
    options = options[0] if isinstance(options, tuple) else options
    schema = None
    env.setdefault("PGDATABASE", url.username or "postgres")
    if options:
        env["PGOPTIONS"] = options
        found = re.search(r"search_path\s*=\s*([^\s,]+)", options)
        schema = found.group(1).strip('"') if found else None
    return env, schema


def _backup_postgres(catalog: Catalog, tmp: Path) -> dict[str, Any]:
    pg_dump = _pg_tool("pg_dump")
    env, schema = _pg_env(catalog)
    with catalog.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        counts = _counts(conn)  # in the snapshot pg_dump reads: the counts are the dump's
        command = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                   f"--file={tmp}"] + ([f"--schema={schema}"] if schema else [])
        _run(command, env, "pg_dump")
        conn.rollback()
    _run([_pg_tool("pg_restore"), "--list", str(tmp)], env, "pg_restore --list (checking the dump)")
    return counts


def _restore_postgres(catalog: Catalog, src: Path) -> None:
    env, _ = _pg_env(catalog)
    _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
          "--exit-on-error", f"--dbname={env.get('PGDATABASE', '')}", str(src)], env, "pg_restore")


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=DUMP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CatalogError(f"{what} failed: {e}") from e
    if done.returncode != 0:
        raise CatalogError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[:1000]}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
