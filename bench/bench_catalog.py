"""Catalog scale: millions of file rows in SQLite and PostgreSQL.

Packages of ``FILES_PER_PACKAGE`` synthetic files are registered through
:func:`preservation.ingest.register` — the ingest's own code path: package,
file rows in ``insert(PackageFile)`` batches, three placed replicas, events
and replication jobs in one transaction per package.  The copies are then
marked verified with audits due evenly over the policy's interval (untimed:
the state a network reaches after its first interval).  A fresh process then
times ``preserve status`` (:func:`preservation.status.status`) and planning
one day of audits; peak memory is read per process.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, select, text, update

from bench.corpora import OUT_DIR
from bench.homes import COLLECTION, fresh_repo
from bench.measure import run_child
from bench.results import CatalogScale, Skipped
from preservation.bagit.records import RecordTable
from preservation.catalog.models import (
    PACKAGE_PRESERVED,
    REPLICA_VERIFIED,
    Job,
    Package,
    Replica,
    utcnow,
)
from preservation.ingest import register
from preservation.jobs import kinds, queue
from preservation.repository import Repository
from preservation.status import status
from preservation.upkeep.audits import schedule_audits

FILES_PER_PACKAGE = 10_000
DEFAULT_ROWS = 1_000_000  # `--rows 10000000` for the full-scale figure (about 10 minutes more)
POSTGRES_URL = os.environ.get("PRESERVE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ALGORITHMS = ("sha256", "sha512")
TAG_FILES = ("bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt")
SEED = 8493
PLANNER = "preservation.upkeep.audits.schedule_audits (the scheduler's planning of one window, jobs enqueued)"


@dataclass
class SyntheticBag:
    """What :func:`register` reads from a bag, for a bag that was never written."""

    path: Path
    payload: RecordTable
    tag_files: RecordTable
    version: str = "1.0"
    bag_info: dict[str, str] = field(default_factory=dict)

    @property
    def payload_oxum(self) -> str:
        return f"{self.payload.total_bytes}.{len(self.payload)}"


def synthetic_bag(index: int, files: int, staging: Path) -> SyntheticBag:
    """Package ``index`` of ``files`` files, digests and sizes derived from the seed."""
    rng = random.Random(f"{SEED}:{index}")
    width = sum(hashlib.new(a).digest_size for a in ALGORITHMS)
    raw = hashlib.shake_128(f"{SEED}:{index}:digests".encode()).digest(width * (files + len(TAG_FILES)))
    payload = RecordTable(ALGORITHMS)
    for i in range(files):
        path = f"data/vol-{i // 1000:04d}/article-{i:06d}.pdf"
        payload.append(path, rng.randrange(1024, 2 * 1024 * 1024), raw[i * width : (i + 1) * width])
    tags = RecordTable(ALGORITHMS)
    for j, name in enumerate(TAG_FILES, start=files):
        tags.append(name, rng.randrange(100, 4000), raw[j * width : (j + 1) * width])
    return SyntheticBag(path=staging / f"package-{index}", payload=payload, tag_files=tags,
                        bag_info={"External-Description": f"benchmark package {index}"})


def populate(home: str, catalog_url: str | None, rows: int) -> dict:
    """Child entry: register ``rows`` payload rows into a fresh home; returns the register time."""
    repo = fresh_repo(Path(home), catalog_url)
    packages = math.ceil(rows / FILES_PER_PACKAGE)
    seconds = 0.0
    inserted = 0
    for index in range(packages):
        files = min(FILES_PER_PACKAGE, rows - index * FILES_PER_PACKAGE)
        bag = synthetic_bag(index, files, repo.staging_dir)
        package_id = str(uuid.uuid4())
        start = time.perf_counter()
        register(repo, package_id, bag, COLLECTION, name=f"delivery-{index:05d}", source=f"/deliveries/{index:05d}",
                 source_kind="directory", agent="bench")
        seconds += time.perf_counter() - start
        inserted += len(bag.payload) + len(bag.tag_files)
    start = time.perf_counter()
    replicas = mark_preserved(repo)
    settle = time.perf_counter() - start
    repo.close()
    return {"seconds": seconds, "rows": inserted, "packages": packages, "replicas": replicas,
            "settle_seconds": settle}


def mark_preserved(repo: Repository) -> int:
    """Every copy verified, next audits spread evenly over the interval (some due today); returns replicas."""
    interval = timedelta(days=repo.policy.audit.interval_days)
    now = utcnow()
    rng = random.Random(SEED)
    with repo.catalog.session() as s:
        rows = s.execute(select(Replica.id, Package.total_bytes).join(Package).order_by(Replica.id)).all()
        updates = []
        for replica_id, total in rows:
            next_at = now - timedelta(days=1) + interval * rng.random()
            updates.append({"id": replica_id, "state": REPLICA_VERIFIED, "bytes": total,
                            "verified_at": next_at - interval, "last_audit_at": next_at - interval,
                            "next_audit_at": next_at})
        s.execute(update(Replica), updates)
        s.execute(update(Package).values(state=PACKAGE_PRESERVED, staging_path=None, preserved_at=now))
        s.execute(
            update(Job).where(Job.kind == kinds.REPLICATE, Job.state == queue.QUEUED)
            .values(state=queue.SUCCEEDED, dedupe_key=None, finished_at=now)
        )
    return len(rows)


def plan_day(repo: Repository) -> tuple[int, int]:
    """Plan and enqueue this window's audits as the scheduler does; returns (copies, bytes)."""
    plan = schedule_audits(repo)
    return plan["enqueued"], sum(plan["bytes"].values())


def query(home: str) -> dict:
    """Child entry: time ``status`` and planning one day of audits on a filled catalog."""
    repo = Repository.open(home)
    start = time.perf_counter()
    report = status(repo)
    status_seconds = time.perf_counter() - start
    start = time.perf_counter()
    planned, planned_bytes = plan_day(repo)
    plan_seconds = time.perf_counter() - start
    repo.close()
    return {"seconds": status_seconds, "status_seconds": status_seconds, "plan_seconds": plan_seconds,
            "plan_source": PLANNER, "planned": planned, "planned_bytes": planned_bytes,
            "replicas": sum(report["replicas"].values())}


def _postgres_schema() -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def _drop_postgres_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


def _measure(backend: str, home: Path, url: str | None, rows: int) -> CatalogScale:
    filled = run_child("bench.bench_catalog:populate", home=str(home), catalog_url=url, rows=rows)
    queried = run_child("bench.bench_catalog:query", home=str(home))
    r, q = filled.result, queried.result
    return CatalogScale(
        backend=backend, rows=r["rows"], packages=r["packages"], replicas=r["replicas"],
        register_seconds=filled.seconds, register_peak_rss=filled.peak_rss,
        status_seconds=q["status_seconds"], plan_seconds=q["plan_seconds"], query_peak_rss=queried.peak_rss,
        plan_source=q["plan_source"], planned_replicas=q["planned"], planned_bytes=q["planned_bytes"],
        others=max(filled.others, queried.others),
    )


def compare(rows: int, backends: tuple[str, ...] = ("sqlite", "postgresql")) -> list[CatalogScale | Skipped]:
    out: list[CatalogScale | Skipped] = []
    for backend in backends:
        home = OUT_DIR / "homes" / f"catalog-{backend}"
        if backend == "sqlite":
            try:
                out.append(_measure(backend, home, None, rows))
            finally:
                shutil.rmtree(home, ignore_errors=True)
            continue
        try:
            url, schema = _postgres_schema()
        except Exception as e:  # noqa: BLE001 - any failure to reach the server means: skip PostgreSQL
            out.append(Skipped("catalog scale (postgresql)", f"no PostgreSQL at {POSTGRES_URL}: {type(e).__name__}"))
            continue
        try:
            out.append(_measure(backend, home, url, rows))
        finally:
            _drop_postgres_schema(schema)
            shutil.rmtree(home, ignore_errors=True)
    return out
