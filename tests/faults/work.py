"""Corpora, home snapshots and "the system carries on": shared by the fault tests."""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, make_url, text

from preservation.jobs import claim
from preservation.repository import Repository
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.upkeep import missing_copies, stalled, sweeping

from ..services import POSTGRES_URL, postgres_unusable

AGENT = "fault-tests"

NAMES = ["期刊", "books/Ångström", "data%25", "vol 1", "深/层/目录", "misc"]


def make_corpus(root: Path, files: int, seed: int, *, min_size: int = 200, max_size: int = 12_000) -> Path:
    """A delivery of ``files`` small files in a few folders, Unicode and ``%`` in some names."""
    rng = random.Random(seed)
    for i in range(files):
        folder = NAMES[i % len(NAMES)]
        path = root / folder / f"item-{i:04d}{'%' if i % 17 == 0 else ''}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(min_size, max_size)))
    return root


def payload_digests(delivery: Path) -> dict[str, str]:
    """``data/<path>`` -> sha256 of every file of a plain delivery, as the catalog should list it."""
    return {
        "data/" + p.relative_to(delivery).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(delivery.rglob("*")) if p.is_file()
    }


def snapshot(home: Path, into: Path) -> None:
    """Keep a copy of a closed home (catalog, staging, node roots)."""
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(home, into, symlinks=True)


def restore_snapshot(saved: Path, home: Path) -> None:
    """Put the home back exactly as it was saved (same path, so stored absolute paths stay valid)."""
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(saved, home, symlinks=True)


class SavedHome:
    """A crash test's home, saved once and put back before every run: its files, and its catalog.

    On SQLite the catalog is a file of the home and goes with it.  On
    PostgreSQL the home's catalog is a database of its own, saved as a
    template and recreated from it (``CREATE DATABASE ... TEMPLATE``), after
    the connections a killed process left behind are dropped.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.catalog_url: str | None = None
        self._admin = None
        if backend == "postgresql":
            name = f"crash_{uuid.uuid4().hex[:12]}"
            self._work, self._saved = name, f"{name}_saved"
            try:
                self._admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
                self._sql(f'CREATE DATABASE "{self._work}"')
            except Exception as e:  # noqa: BLE001 - any failure means the server is not usable
                postgres_unusable(e)
            self.catalog_url = make_url(POSTGRES_URL).set(database=self._work).render_as_string(hide_password=False)

    def _sql(self, *statements: str) -> None:
        with self._admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    def save(self, home: Path, into: Path) -> None:
        snapshot(home, into)
        if self._admin is not None:
            self._sql(f'DROP DATABASE IF EXISTS "{self._saved}"',
                      f'CREATE DATABASE "{self._saved}" TEMPLATE "{self._work}"')

    def restore(self, saved: Path, home: Path) -> None:
        restore_snapshot(saved, home)
        if self._admin is not None:
            self._sql(f'DROP DATABASE IF EXISTS "{self._work}" WITH (FORCE)',
                      f'CREATE DATABASE "{self._work}" TEMPLATE "{self._saved}"')

    def close(self) -> None:
        if self._admin is not None:
            self._sql(*(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in (self._work, self._saved)))
            self._admin.dispose()


@contextlib.contextmanager
def queue_clock_ahead(by: timedelta) -> Iterator[None]:
    """Let the job queue believe ``by`` has passed: leases of dead workers run out, retries come due."""
    real = claim.utcnow
    claim.utcnow = lambda: real() + by
    try:
        yield
    finally:
        claim.utcnow = real


def run_worker_once(repo: Repository, *, kinds: tuple[str, ...] | None = None) -> dict:
    """`preserve worker --once` in this process (retries without back-off)."""
    options = WorkerOptions(concurrency=2, once=True, poll_seconds=0.01, retry_base_seconds=0, kinds=kinds)
    return Worker(repo, default_registry(), options, agent=AGENT).run().to_dict()


def resume_work(repo: Repository) -> dict:
    """What a restarted scheduler and worker do after a crash, once the dead worker's lease has run out.

    The scheduler's catch-up tasks run once (sweep interrupted writes and
    staging, requeue stalled copies, place missing copies), then a worker
    runs everything that is due until the queue is empty.
    """
    with queue_clock_ahead(timedelta(hours=1)):
        swept = sweeping.sweep(repo, agent=AGENT, temporary_age=timedelta(0), staging_age=timedelta(0))
        requeued = stalled.requeue_stalled(repo)
        placed = missing_copies.place_missing_copies(repo, agent=AGENT)
        worked = run_worker_once(repo)
        # the work may itself leave interrupted writes of the crashed process to sweep
        swept_after = sweeping.sweep(repo, agent=AGENT, temporary_age=timedelta(0), staging_age=timedelta(0))
    return {"swept": swept, "requeued": requeued, "placed": placed, "worker": worked, "swept_after": swept_after}
