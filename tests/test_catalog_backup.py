"""`preserve catalog backup` and `restore`: a consistent copy while workers write, on SQLite and PostgreSQL.

The restore is tested end to end: back up, wipe, restore, and the status,
the event chain and what only the catalog holds (libraries, users,
entitlements) are as they were.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from preservation.access.accounts import add_library, add_user
from preservation.access.entitlements import add_entitlement
from preservation.catalog.backup import backup_catalog, restore_catalog
from preservation.catalog.db import Catalog
from preservation.catalog.models import Event
from preservation.errors import AlreadyExists, InvalidRequest
from preservation.events import record_event, verify_chain
from preservation.ingest import ingest

from .fixtures import make_repo
from .services import POSTGRES_URL


@pytest.fixture
def filled(tmp_path, catalog_url, sample_delivery):
    """A repository on ``catalog_url`` with a preserved package, a library, a user and an entitlement."""
    repo = make_repo(tmp_path / "home", catalog_url)
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    add_library(repo, "pku-lib", "北京大学图书馆")
    add_user(repo, "pku-lib", "reader1", "correct horse battery staple 9")
    add_entitlement(repo, "pku-lib", "journals", 2019, 2024)
    yield repo, package_id
    repo.close()


def _picture(repo, run_cli, home):
    """What must survive: status figures, the event chain, the catalog-only records."""
    report = run_cli("status", "--json", home=home).json()
    with repo.catalog.session() as s:
        chain = verify_chain(s)
        events = s.scalar(select(func.count()).select_from(Event))
    libraries = run_cli("library", "list", "--json", home=home).json()
    entitlements = run_cli("entitlement", "list", "--json", home=home).json()
    return ({k: report[k] for k in ("packages", "replicas", "jobs", "dead_jobs", "damaged_packages")},
            chain.ok, events, libraries, entitlements)


def _wipe(repo, catalog_url: str) -> None:
    """Lose the catalog: the SQLite file deleted, or every table of the PostgreSQL schema dropped."""
    repo.catalog.engine.dispose()
    if catalog_url.startswith("sqlite"):
        path = Path(catalog_url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = catalog_url.split("search_path%3D", 1)[1]
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def test_backup_wipe_and_restore_give_back_the_same_catalog(filled, catalog_url, run_cli, tmp_path):
    repo, package_id = filled
    home = tmp_path / "home"
    before = _picture(repo, run_cli, home)
    assert before[1] and before[3]["count"] == 1 and before[4]["count"] == 1
    dest = tmp_path / "backups" / "catalog.backup"
    dest.parent.mkdir()
    made = run_cli("catalog", "backup", dest, "--json", home=home).json()
    assert made["dest"] == str(dest) and dest.stat().st_size == made["bytes"] > 0
    assert made["rows"]["libraries"] == 1 and made["rows"]["access_users"] == 1 and made["rows"]["entitlements"] == 1
    assert made["rows"]["events"] == before[2] and made["revision"]
    sqlite = catalog_url.startswith("sqlite")
    assert made["method"] == ("sqlite online backup API" if sqlite else "pg_dump --format=custom")
    assert [p.name for p in dest.parent.iterdir()] == ["catalog.backup"]  # no temporary file left
    _wipe(repo, catalog_url)
    run_cli("status", "--json", home=home, exit_code=None)
    restored = run_cli("catalog", "restore", dest, "--json", home=home).json()
    assert restored["rows"] == made["rows"] and restored["schema"] == "current" and restored["replaced_tables"] == 0
    repo.catalog.engine.dispose()
    assert _picture(repo, run_cli, home) == before
    users = run_cli("library", "user", "list", "--json", home=home).json()
    assert [u["username"] for u in users["users"]] == ["reader1"]
    # a catalog that holds tables is replaced only with --force
    refused = run_cli("catalog", "restore", dest, "--json", home=home, exit_code=6)
    assert json.loads(refused.stderr)["error"]["code"] == "E111"
    again = run_cli("catalog", "restore", dest, "--force", "--json", home=home).json()
    assert again["rows"] == made["rows"] and again["replaced_tables"] > 0
    repo.catalog.engine.dispose()
    assert _picture(repo, run_cli, home) == before


def test_a_backup_never_overwrites_unless_forced_and_refuses_a_directory(repo, run_cli, tmp_path):
    dest = tmp_path / "catalog.backup"
    dest.write_bytes(b"an older backup")
    out = run_cli("catalog", "backup", dest, "--json", exit_code=6)
    assert json.loads(out.stderr)["error"]["code"] == "E111" and dest.read_bytes() == b"an older backup"
    run_cli("catalog", "backup", dest, "--force")
    assert dest.read_bytes().startswith(b"SQLite format 3\x00")
    with pytest.raises(InvalidRequest):
        backup_catalog(repo.catalog, tmp_path)
    with pytest.raises(InvalidRequest):
        backup_catalog(repo.catalog, tmp_path / "no-such-dir" / "catalog.backup")
    with pytest.raises(AlreadyExists):
        backup_catalog(repo.catalog, dest)
    run_cli("catalog", "backup", tmp_path / "other", "--json", home=tmp_path / "not-a-home", exit_code=7)
    assert not (tmp_path / "not-a-home").exists()  # a wrong --home creates nothing


def test_restore_refuses_what_is_not_a_catalog_backup_and_leaves_the_catalog_alone(repo, preserved, tmp_path):
    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("hello", encoding="utf-8")
    other_db = tmp_path / "other.sqlite"
    with sqlite3.connect(other_db) as conn:
        conn.execute("CREATE TABLE t (x)")
    for src in (not_backup, other_db):
        with pytest.raises(InvalidRequest):
            restore_catalog(repo.catalog, src, force=True)
    with repo.catalog.session() as s:
        assert verify_chain(s).ok and s.scalar(select(func.count()).select_from(Event)) > 0


@contextmanager
def _a_worker_writing(repo, first: int):
    """A thread recording events through ``repo`` until the block ends; yields (stop, written) after ``first``."""
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            with repo.catalog.session() as s:
                record_event(s, "job", "started", agent="writer", detail={"n": len(written)})
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < first:
            stop.wait(0.01)
        yield stop, written
    finally:
        stop.set()
        thread.join()


def test_a_sqlite_backup_taken_while_a_worker_writes_is_one_consistent_instant(repo, tmp_path):
    with _a_worker_writing(repo, 20) as (stop, _written):
        counts = []
        for n in range(3):
            dest = tmp_path / f"backup-{n}.sqlite"
            backup_catalog(repo.catalog, dest)
            copy = create_engine(f"sqlite:///{dest}")
            with copy.connect() as conn:
                seq, head = conn.execute(text("SELECT seq, hash FROM event_chain_head")).one()
                last = conn.execute(text("SELECT max(seq), count(*) FROM events")).one()
                counts.append(last[1])
            copy.dispose()
            assert seq == last[0]  # the chain head and the events are of the same instant
            backup = Catalog(f"sqlite:///{dest}")
            with backup.session() as s:
                assert verify_chain(s).ok
            backup.dispose()
            stop.wait(0.05)
    with repo.catalog.session() as s:
        final = s.scalar(select(func.count()).select_from(Event))
    assert counts == sorted(counts) and counts[-1] < final  # each backup an instant while the writes went on
    assert len(set(counts)) == 3


def test_a_backup_taken_while_a_worker_writes_restores_to_that_instant(tmp_path, catalog_url):
    """On SQLite and PostgreSQL: restored, the backup holds exactly the rows it counted, and its chain is whole."""
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        with _a_worker_writing(repo, 10) as (stop, written):
            made = backup_catalog(repo.catalog, tmp_path / "catalog.backup")
            at_backup = len(written)
            while len(written) < at_backup + 10:  # the writes go on after the backup
                stop.wait(0.01)
    finally:
        repo.close()
    catalog = Catalog(catalog_url)
    try:
        with catalog.session() as s:
            assert s.scalar(select(func.count()).select_from(Event)) > made["rows"]["events"]
        restore_catalog(catalog, tmp_path / "catalog.backup", force=True)
        with catalog.session() as s:
            assert s.scalar(select(func.count()).select_from(Event)) == made["rows"]["events"] > 0
            head = s.execute(text("SELECT seq FROM event_chain_head")).scalar_one()
            assert head == s.scalar(select(func.max(Event.seq))) and verify_chain(s).ok
    finally:
        catalog.dispose()
