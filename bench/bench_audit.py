"""Audit of one copy against the hashing limit of the policy's audit digest.

The copy is the one the ingest benchmark left on node ``uni-pku`` (ingested
here, untimed, when that benchmark did not run).  Checker processes for
small files are started before the clock, as the limit's pool is.  The limit digests the same
files with sha256 only — the policy's routine audit digest — on all cores.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from bench import bench_ingest
from bench.child import own_peak_rss
from bench.corpora import Corpus, iter_files, read_through
from bench.measure import REPEAT, run_child
from bench.results import Comparison, Contender
from preservation.audit import audit_replica
from preservation.catalog.models import REPLICA_VERIFIED, Node, Replica
from preservation.repository import Repository
from storage_adapters import fsverify

NODE = "uni-pku"
TARGET = 0.8


def _replica_on(repo: Repository, node: str) -> tuple[int, str] | None:
    with repo.catalog.session() as s:
        row = s.execute(
            select(Replica.id, Replica.package_id).join(Node)
            .where(Node.name == node, Replica.state == REPLICA_VERIFIED).order_by(Replica.id.desc())
        ).first()
    return (row[0], row[1]) if row else None


def replica_paths(home: Path, node: str, package_id: str) -> list[str]:
    return list(iter_files(home / "nodes" / node / package_id))


def run_ours(home: str, node: str, repeat: int = 1) -> dict:
    """Child entry: audit the verified copy on ``node`` in full ``repeat`` times; the fastest.

    Like the limit, which keeps the best of several runs in one process (each
    after a read that warms the page cache): what a scheduler worker that
    audits copy after copy sees.  A first, cold run comes before them and is
    reported apart (``cold_seconds``).
    """
    repo = Repository.open(home)
    found = _replica_on(repo, node)
    if found is None:
        raise RuntimeError(f"no verified copy on {node} in {home}")
    replica_id, package_id = found
    # the checker processes are started before the clock, as the limit's pool is: a scheduler
    # worker starts them once and keeps them (unused for big files, which threads hash)
    fsverify.warm_pool(repo.settings.workers)
    runs = []
    for _ in range(1 + max(1, repeat)):  # the first, cold run (queries compiled, policy loaded) is not kept
        read_through(replica_paths(Path(home), node, package_id))
        start = time.perf_counter()
        outcome = audit_replica(repo, replica_id, agent="bench")
        runs.append(time.perf_counter() - start)
        if not outcome.ok:
            raise RuntimeError(f"the audit found problems: {outcome.fixity.findings.to_list()[:5]}")
    digest = repo.policy.audit.digest
    repo.close()
    return {"seconds": min(runs[1:]), "cold_seconds": round(runs[0], 4), "runs": [round(r, 4) for r in runs[1:]],
            "files": outcome.fixity.files_checked, "bytes": outcome.fixity.bytes_read_on_node, "digest": digest,
            "peak_rss_workers": max((own_peak_rss(pid) for pid in fsverify.worker_pids()), default=0)}


def _ingested(corpus: Corpus) -> tuple[Path, str]:
    """The home holding an ingested copy of ``corpus`` (ingesting it now if needed) and the package id."""
    home = bench_ingest.home_for(corpus)
    if (home / "catalog.sqlite").exists():
        with Repository.open(home) as repo:
            found = _replica_on(repo, NODE)
        if found is not None:
            return home, found[1]
    setup = run_child("bench.bench_ingest:run_ours", delivery=str(corpus.delivery), home=str(home))
    return home, setup.result["package_id"]


def compare(corpus: Corpus) -> Comparison:
    home, package_id = _ingested(corpus)
    with Repository.open(home) as repo:
        digest = repo.policy.audit.digest
    paths = replica_paths(home, NODE, package_id)
    limit = run_child("bench.hashlimit:measure", paths=paths, algorithms=[digest])
    ours = run_child("bench.bench_audit:run_ours", home=str(home), node=NODE, repeat=REPEAT.times)
    return Comparison(
        benchmark="audit", corpus=corpus.label,
        ours=Contender.from_measured("preserve audit (one copy)", ours, detail=digest),
        reference=Contender.from_measured("hashing limit", limit, detail=f"{digest}, {limit.result['strategy']}"),
        target=TARGET,
    )
