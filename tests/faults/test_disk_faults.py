"""A disk that fills up or returns I/O errors: nothing unverified counts, nobody else is blamed, the work resumes."""

from __future__ import annotations

import errno
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from preservation import events
from preservation.audit import audit
from preservation.catalog.models import Job, Package, PackageFile, Replica, utcnow
from preservation.codes import FILE_CHANGED, FILE_UNREADABLE
from preservation.errors import AccessDenied, StorageFull
from preservation.ingest import ingest
from preservation.nodes import add_node, set_node_status
from preservation.restore import restore
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.upkeep import missing_copies
from storage_adapters.filesystem import TEMP_DIR

from ..fixtures import node_root

from . import summary
from .disk import FailingDisk
from .invariants import check_catalog_against_nodes, check_settled, file_digests, tree
from .work import AGENT, make_corpus, queue_clock_ahead, run_worker_once

FILES = 40


@pytest.fixture
def delivery(tmp_path) -> Path:
    return make_corpus(tmp_path / "delivery", FILES, seed=3, min_size=4000, max_size=8000)


def _replica(repo, package_id: str, node: str) -> Replica:
    with repo.catalog.session() as s:
        replica = next(r for r in s.scalars(select(Replica).where(Replica.package_id == package_id))
                       if r.node.name == node)
        s.expunge(replica)
        return replica


def _job(repo, dedupe_key: str) -> Job | None:
    with repo.catalog.session() as s:
        job = s.scalars(select(Job).where(Job.dedupe_key == dedupe_key)).first()
        if job is not None:
            s.expunge(job)
        return job


def _package_state(repo, package_id: str) -> str:
    with repo.catalog.session() as s:
        return s.get(Package, package_id).state


@pytest.mark.parametrize("code, error_code", [(errno.ENOSPC, "E306"), (errno.EIO, "E300")], ids=["ENOSPC", "EIO"])
def test_write_failing_mid_copy_registers_nothing_and_retries_later(repo, delivery, monkeypatch, code, error_code):
    root = node_root(repo, "inst-istic")
    disk = FailingDisk(root)
    disk.fill_after(FILES * 6000 // 2, code)  # about half the payload fits
    disk.install(monkeypatch)

    result = ingest(repo, delivery, "journals")
    package_id = result["package_id"]
    [failed] = [c for c in result["copies"] if "error" in c]
    assert failed["error"]["code"] == error_code
    replica = _replica(repo, package_id, "inst-istic")
    assert replica.state == "pending" and replica.verified_at is None and replica.last_error
    assert result["state"] == _package_state(repo, package_id) == "replicating"
    assert disk.failed_writes >= 1
    # a new package is written into a draft and published by one rename: a copy that failed mid-write shows nothing
    assert tree(root / package_id) == {}, "a copy that failed mid-write left part of the package visible"
    assert tree(root / TEMP_DIR) == {}, "the interrupted write left its temporary file behind"
    assert check_catalog_against_nodes(repo) == []  # every visible file is complete and exact
    # the inline ingest held the job and hands it back as a failed attempt, due again at once
    job = _job(repo, f"replicate:{replica.id}")
    assert job is not None and job.state == "failed" and job.attempts == 1 and job.run_after <= utcnow()
    assert error_code in job.last_error and job.lease_owner is None

    # a worker tries while the disk is still failing: the job waits for a retry, the copy stays unverified
    options = WorkerOptions(concurrency=1, once=True, poll_seconds=0.01, retry_base_seconds=60)
    Worker(repo, default_registry(), options, agent=AGENT).run()
    job = _job(repo, f"replicate:{replica.id}")
    assert job.state == "failed" and job.attempts == 2 and job.run_after > utcnow()
    assert error_code in job.last_error
    assert _replica(repo, package_id, "inst-istic").state == "pending"
    assert _package_state(repo, package_id) == "replicating"
    assert check_catalog_against_nodes(repo) == []

    disk.heal()
    with queue_clock_ahead(timedelta(minutes=5)):
        run_worker_once(repo)
    assert _job(repo, f"replicate:{replica.id}").state == "succeeded"
    assert check_settled(repo, staging=repo.staging_dir) == []
    summary.report(f"disk/{errno.errorcode[code]}: copy failed mid-write after {disk.failed_writes} failed writes "
                   f"({error_code}), nothing visible or verified, job retried later and the package was preserved")


def test_copy_that_cannot_be_reread_is_never_verified(repo, delivery, monkeypatch):
    disk = FailingDisk(node_root(repo, "cas-nsl"))
    disk.break_reads_under(node_root(repo, "cas-nsl"))  # writes succeed, every re-read fails
    disk.install(monkeypatch)

    result = ingest(repo, delivery, "journals")
    package_id = result["package_id"]
    [failed] = [c for c in result["copies"] if "error" in c]
    assert failed["error"]["code"] == "E501"  # VerificationFailed: written, but not re-read correctly
    assert disk.failed_reads >= 1  # the copy stops at the first file it cannot re-read
    assert not [p for p in (node_root(repo, "cas-nsl") / package_id).rglob("*") if p.is_file()]  # none visible
    assert _replica(repo, package_id, "cas-nsl").state == "pending"
    assert _package_state(repo, package_id) == "replicating"
    assert check_catalog_against_nodes(repo) == []

    disk.heal()
    with queue_clock_ahead(timedelta(minutes=5)):
        run_worker_once(repo)
    assert check_settled(repo, staging=repo.staging_dir) == []


def test_unreadable_file_in_audit_is_a005_not_a_changed_file(repo, delivery, monkeypatch):
    package_id = ingest(repo, delivery, "journals")["package_id"]
    with repo.catalog.session() as s:
        payload = select(PackageFile.path).where(PackageFile.package_id == package_id, PackageFile.is_tag.is_(False))
        path = s.scalars(payload.order_by(PackageFile.path)).first()
    bad = node_root(repo, "cas-nsl") / package_id / path
    good_bytes = bad.read_bytes()
    disk = FailingDisk(node_root(repo, "cas-nsl"))
    disk.break_reads(bad, after=1000)
    disk.install(monkeypatch)

    report = audit(repo)
    [failed] = report.failed
    assert failed.node == "cas-nsl"
    assert [(f.code, f.path) for f in failed.fixity.findings] == [(FILE_UNREADABLE, path)]
    assert FILE_CHANGED not in [f.code for r in report.replicas for f in r.fixity.findings]
    assert disk.failed_reads >= 1
    assert failed.state == "corrupt"
    assert _job(repo, f"repair:{failed.replica_id}").state == "queued"

    run_worker_once(repo)  # the repair rewrites the file (new blocks, readable) from a verified copy
    assert bad.read_bytes() == good_bytes
    assert check_settled(repo, staging=repo.staging_dir) == []
    summary.report("disk/EIO on read: audit reported A005 (unreadable) for exactly the broken file, no A002; "
                   "repair rewrote it and the copy verified")


def test_replication_reads_around_an_unreadable_source(repo, delivery, monkeypatch):
    package_id = ingest(repo, delivery, "journals")["package_id"]
    with repo.catalog.session() as s:
        paths = list(s.scalars(select(PackageFile.path).where(PackageFile.package_id == package_id)))
        # the copy replication reads first: the most recently verified one on a node that stays
        by_freshness = s.scalars(select(Replica).where(Replica.package_id == package_id)
                                 .order_by(Replica.verified_at.desc())).all()
        first, other = [r.node.name for r in by_freshness if r.node.name != "cas-nsl"]
    disk = FailingDisk(node_root(repo, first))
    for path in paths:
        disk.break_reads(node_root(repo, first) / package_id / path)
    disk.install(monkeypatch)
    spare = node_root(repo, "cas-spare")
    add_node(repo, "cas-spare", "cas", "beijing", spare.as_uri())
    set_node_status(repo, "cas-nsl", "offline")

    assert missing_copies.place_missing_copies(repo, agent=AGENT)["placed"] == 1
    run_worker_once(repo)
    replica = _replica(repo, package_id, "cas-spare")
    assert replica.state == "verified"
    assert disk.failed_reads >= len(paths), f"the unreadable copy on {first} was not tried first"
    with repo.catalog.session() as s:
        flagged = [e for e in events.iter_events(s, package_id=package_id)
                   if e.event_type == events.FIXITY_CHECK and e.outcome == events.FAILURE and e.node_name == first]
    assert flagged, f"the unreadable copy on {first} was not flagged for an audit"
    reference = node_root(repo, other) / package_id
    for path in paths:
        assert file_digests(spare / package_id / path) == file_digests(reference / path)
    assert check_settled(repo, staging=repo.staging_dir) == []


@pytest.mark.parametrize("code, error", [(errno.ENOSPC, StorageFull), (errno.EROFS, AccessDenied)],
                         ids=["ENOSPC", "EROFS"])
def test_restore_to_a_failing_disk_blames_the_disk_not_the_copies(repo, delivery, monkeypatch, tmp_path, code, error):
    package_id = ingest(repo, delivery, "journals")["package_id"]
    out = tmp_path / "restores"
    out.mkdir()
    disk = FailingDisk(out)
    disk.fill_after(20_000, code)
    disk.install(monkeypatch)

    with pytest.raises(error):
        restore(repo, package_id, out / "bag")
    with repo.catalog.session() as s:
        states = {r.node.name: r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}
    assert states == {"uni-pku": "verified", "cas-nsl": "verified", "inst-istic": "verified"}
    assert list(out.iterdir()) == [], "a failed restore left a partial bag"
    assert check_settled(repo, staging=repo.staging_dir) == []
