"""The scheduler's periodic tasks, called directly: audit planning, re-replication, requeues, sweeping."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from preservation.catalog.models import NODE_DRAINING, NODE_OFFLINE, Event, Job, Node, Package, Replica, utcnow
from preservation.ingest import ingest
from preservation.jobs import claim as claims
from preservation.jobs import kinds, queue
from preservation.repository import Repository
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.upkeep import audits, missing_copies, stalled, sweeping

from .corruption import add_file, flip_bit
from .fixtures import NODES, make_repo, node_root

FOURTH = ("uni-fudan", "university", "shanghai")


@pytest.fixture
def repo4(tmp_path):
    repo = make_repo(tmp_path / "home", nodes=[*NODES, FOURTH])
    try:
        yield repo
    finally:
        repo.close()


def _ingest(repo, tmp_path, name="delivery") -> str:
    delivery = tmp_path / name
    add_file(delivery / "a.txt", b"alpha " * 1000)
    add_file(delivery / "sub" / "b.bin", os.urandom(50_000))
    result = ingest(repo, delivery, "journals")
    assert result["state"] == "preserved"
    return result["package_id"]


def _jobs(repo, kind=None) -> list[Job]:
    with repo.catalog.session() as s:
        stmt = select(Job).order_by(Job.id)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        return s.scalars(stmt).all()


def _drain(repo) -> None:
    Worker(repo, default_registry(), WorkerOptions(concurrency=1, once=True, retry_base_seconds=0)).run()


def _replicas(repo, package_id) -> dict[str, str]:
    with repo.catalog.session() as s:
        return {r.node.name: r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}


def test_audits_are_planned_at_the_steady_pace_then_for_everything_due(repo, tmp_path):
    packages = [_ingest(repo, tmp_path, f"d{i}") for i in range(4)]
    assert audits.schedule_audits(repo)["enqueued"] == 0  # everything was just read while being replicated
    ten_days = utcnow() + timedelta(days=10)
    first = audits.schedule_audits(repo, now=ten_days)
    assert first["enqueued"] == 3  # one copy per node: the pace of 12 copies over 90 days
    jobs = _jobs(repo, kinds.AUDIT)
    assert {j.priority for j in jobs} == {kinds.SCHEDULED_AUDIT.priority}
    assert len({j.run_after for j in jobs}) == 1  # one per node: each starts at once
    assert audits.schedule_audits(repo, now=ten_days)["enqueued"] == 0  # queued work counts against the window
    overdue = audits.schedule_audits(repo, now=utcnow() + timedelta(days=100))
    assert overdue["enqueued"] == 3 * len(packages) - 3
    later = sorted(j.run_after for j in _jobs(repo, kinds.AUDIT))
    assert later[-1] > later[0]  # spread over the window
    assert {j.dedupe_key for j in _jobs(repo, kinds.AUDIT)} == {
        f"audit:{r}" for r in _replica_ids(repo)}


def _replica_ids(repo) -> list[int]:
    with repo.catalog.session() as s:
        return list(s.scalars(select(Replica.id)))


@pytest.mark.parametrize("lost_status", [NODE_OFFLINE, NODE_DRAINING])
def test_a_copy_on_a_lost_node_is_replaced_elsewhere(repo4, tmp_path, lost_status):
    package_id = _ingest(repo4, tmp_path)
    university = next(n for n, _state in _replicas(repo4, package_id).items() if n.startswith("uni-"))
    spare = ({"uni-pku", "uni-fudan"} - {university}).pop()
    with repo4.catalog.session() as s:
        s.execute(select(Node).where(Node.name == university)).scalar_one().status = lost_status
    assert missing_copies.place_missing_copies(repo4) == {"placed": 1, "unplaceable": 0, "relabelled": 0}
    assert _replicas(repo4, package_id)[spare] == "pending"
    with repo4.catalog.session() as s:
        assert s.get(Package, package_id).state == "degraded"
        placed = s.scalars(select(Event).where(Event.outcome == missing_copies.PLACED)).one()
    assert placed.node_name == spare and "university" in placed.detail["reason"]
    assert missing_copies.place_missing_copies(repo4)["placed"] == 0  # the pending copy counts: no second placement
    _drain(repo4)
    assert _replicas(repo4, package_id)[spare] == "verified"
    with repo4.catalog.session() as s:
        assert s.get(Package, package_id).state == "preserved"
    assert missing_copies.place_missing_copies(repo4)["placed"] == 0


def test_a_raised_policy_places_more_copies_and_a_met_one_is_recorded(repo4, tmp_path):
    package_id = _ingest(repo4, tmp_path)
    text = repo4.settings.policy_source.read_text(encoding="utf-8")
    raised = tmp_path / "raised.yaml"
    raised.write_text(text.replace("version: 1", "version: 2").replace("copies: 3", "copies: 4"), encoding="utf-8")
    stricter = Repository(repo4.settings.model_copy(update={"policy": raised}))
    try:
        assert missing_copies.place_missing_copies(stricter)["placed"] == 1
        _drain(stricter)
        assert set(_replicas(stricter, package_id).values()) == {"verified"}
        assert len(_replicas(stricter, package_id)) == 4
        assert missing_copies.place_missing_copies(stricter)["relabelled"] == 1
        with stricter.catalog.session() as s:
            package = s.get(Package, package_id)
            assert package.policy == "default@2" and package.state == "preserved"
        assert missing_copies.place_missing_copies(stricter) == {"placed": 0, "unplaceable": 0, "relabelled": 0}
    finally:
        stricter.close()


def test_copies_waiting_for_work_nobody_will_do_get_their_jobs_back(repo, tmp_path):
    delivery = tmp_path / "d"
    add_file(delivery / "x.txt", b"x" * 100)
    registered = ingest(repo, delivery, "journals", replicate=False)
    with repo.catalog.session() as s:
        s.execute(delete(Job))  # as if the jobs were lost
    assert stalled.requeue_stalled(repo) == {"replicate": 3, "repair": 0}
    assert stalled.requeue_stalled(repo) == {"replicate": 0, "repair": 0}  # live jobs are enough
    _drain(repo)
    package_id = registered["package_id"]
    assert set(_replicas(repo, package_id).values()) == {"verified"}
    flip_bit(node_root(repo, "cas-nsl") / package_id / "data" / "x.txt")
    from_audit = audits.schedule_audits(repo, now=utcnow() + timedelta(days=200))
    assert from_audit["enqueued"] == 3
    _drain(repo)  # the audit finds it and its repair (queued with the finding) fixes it
    assert set(_replicas(repo, package_id).values()) == {"verified"}
    with repo.catalog.session() as s:
        corrupt = s.scalars(select(Replica).join(Node).where(Node.name == "cas-nsl")).one()
        corrupt.state = "corrupt"  # a corrupt copy with no live repair job
        s.execute(delete(Job).where(Job.kind == kinds.REPAIR))
        dead = queue.enqueue(s, kinds.REPAIR, {"replica_id": corrupt.id}, dedupe_key=f"repair:{corrupt.id}")
        dead.state, dead.finished_at = queue.DEAD, utcnow() + timedelta(hours=1)
    assert stalled.requeue_stalled(repo)["repair"] == 0  # dead, and no copy verified since: the operator decides
    with repo.catalog.session() as s:
        s.get(Job, dead.id).finished_at = utcnow() - timedelta(hours=1)
    assert stalled.requeue_stalled(repo)["repair"] == 1  # other copies were verified after it died


def test_sweep_expires_leases_and_removes_only_stale_leftovers(repo, tmp_path):
    package_id = _ingest(repo, tmp_path)
    staging = Path(repo.settings.staging_dir)
    old = time.time() - 3 * 86400
    stale = [staging / "0000-interrupted.partial", staging / "11111111-2222-3333-4444-555555555555"]
    fresh = staging / "fresh.partial"
    for d in [*stale, fresh]:
        add_file(d / "f", b"x")
    for d in stale:
        os.utime(d, (old, old))
    tmp_file = node_root(repo, "cas-nsl") / ".preserve-tmp" / "half-written"
    add_file(tmp_file, b"x")
    os.utime(tmp_file, (old, old))
    with repo.catalog.session() as s:
        job_id = queue.enqueue(s, "effect", {}).id
    claims.claim_next(repo.catalog, "gone:1:x", timedelta(seconds=0), agent="t")
    out = sweeping.sweep(repo)
    assert out == {"leases_expired": 1, "temporary_removed": 1, "staging_removed": 2}
    assert fresh.exists() and not any(d.exists() for d in stale) and not tmp_file.exists()
    with repo.catalog.session() as s:
        assert s.get(Job, job_id).state == queue.FAILED
    assert (node_root(repo, "cas-nsl") / package_id).is_dir()
