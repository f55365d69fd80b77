"""Proof-of-possession challenges scheduled between audits: due copies queued, run by workers, failures audited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

import pytest

from preservation import events
from preservation.challenge import challenge_replica
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Event, Job, Package, Replica, utcnow
from preservation.codes import NOT_REGULAR
from preservation.ingest import ingest
from preservation.jobs import kinds, queue
from preservation.nodes import set_node_status
from preservation.upkeep import challenges

from .corruption import replace_with_fifo, replace_with_socket
from .faults.work import run_worker_once
from .fixtures import node_root

LATER = timedelta(days=8)  # the default policy challenges every copy at least every 7 days


def _challenge_jobs(repo) -> list[Job]:
    with repo.catalog.session() as s:
        jobs = s.scalars(select(Job).where(Job.kind == kinds.CHALLENGE).order_by(Job.id)).all()
        s.expunge_all()
        return jobs


def _replicas(repo, package_id: str) -> dict[str, Replica]:
    with repo.catalog.session() as s:
        rows = s.scalars(select(Replica).where(Replica.package_id == package_id)).all()
        out = {r.node.name: r for r in rows}
        s.expunge_all()
        return out


def test_fresh_copies_are_not_challenged_and_stale_ones_are_queued_once(repo, sample_delivery):
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    assert challenges.schedule_challenges(repo)["enqueued"] == 0
    outcome = challenges.schedule_challenges(repo, now=utcnow() + LATER)
    assert outcome["enqueued"] == 3
    again = challenges.schedule_challenges(repo, now=utcnow() + LATER)
    assert (again["enqueued"], again["already_queued"]) == (0, 3)
    jobs = _challenge_jobs(repo)
    assert sorted(j.payload["replica_id"] for j in jobs) == sorted(r.id for r in _replicas(repo, package_id).values())
    assert {j.priority for j in jobs} == {kinds.SCHEDULED_CHALLENGE.priority}


def test_workers_run_the_challenges_and_record_when(repo, sample_delivery):
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    challenges.schedule_challenges(repo, now=utcnow() + LATER)
    worked = run_worker_once(repo, kinds=(kinds.CHALLENGE,))
    assert worked["succeeded"] == 3
    replicas = _replicas(repo, package_id)
    assert all(r.state == "verified" and r.last_challenge_at is not None for r in replicas.values())
    with repo.catalog.session() as s:
        proofs = s.scalars(select(Event).where(Event.package_id == package_id,
                                               Event.event_type == events.FIXITY_CHECK)).all()
        checks = [(e.outcome, e.detail["check"]) for e in proofs]
    assert checks.count((events.SUCCESS, "proof of possession")) == 3
    # just challenged: not due again a day later, due again after another interval
    assert challenges.schedule_challenges(repo, now=utcnow() + timedelta(days=1))["enqueued"] == 0
    assert challenges.schedule_challenges(repo, now=utcnow() + LATER)["enqueued"] == 3


def test_a_copy_that_no_longer_holds_its_bytes_fails_and_is_audited(repo, sample_delivery):
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    for path in (node_root(repo, "cas-nsl") / package_id).rglob("*"):
        if path.is_file():  # same sizes, other bytes: any range of any file now answers wrongly
            path.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))
    challenges.schedule_challenges(repo, now=utcnow() + LATER)
    run_worker_once(repo, kinds=(kinds.CHALLENGE,))
    replicas = _replicas(repo, package_id)
    assert replicas["cas-nsl"].state == "suspect"
    assert {n: r.state for n, r in replicas.items() if n != "cas-nsl"} == {"uni-pku": "verified",
                                                                             "inst-istic": "verified"}
    with repo.catalog.session() as s:
        audit = s.scalars(select(Job).where(Job.dedupe_key == f"audit:{replicas['cas-nsl'].id}")).one()
        assert audit.state == queue.QUEUED
    run_worker_once(repo, kinds=(kinds.AUDIT,))
    assert _replicas(repo, package_id)["cas-nsl"].state == "corrupt"


@pytest.mark.timeout(300)  # a FIFO opened the blocking way would hang the challenge: fail instead
@pytest.mark.parametrize("replace", [replace_with_fifo, replace_with_socket], ids=["fifo", "socket"])
def test_a_copy_of_fifos_or_sockets_fails_with_the_finding_not_an_empty_answer(repo, sample_delivery, replace):
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    for path in [p for p in (node_root(repo, "cas-nsl") / package_id).rglob("*") if p.is_file()]:
        replace(path)
    outcome = challenge_replica(repo, _replicas(repo, package_id)["cas-nsl"].id)
    assert not outcome.passed and outcome.finding == NOT_REGULAR and outcome.reason.startswith("E310")
    assert _replicas(repo, package_id)["cas-nsl"].state == "suspect"


def test_a_copy_without_a_verified_witness_is_not_challenged(repo, sample_delivery):
    ingest(repo, sample_delivery, "journals")
    set_node_status(repo, "cas-nsl", "offline")
    set_node_status(repo, "inst-istic", "offline")
    outcome = challenges.schedule_challenges(repo, now=utcnow() + LATER)
    assert outcome["enqueued"] == 0  # uni-pku's answer could not be checked against any other copy


def test_at_most_limit_challenges_per_call_stalest_first(repo, sample_delivery):
    first = ingest(repo, sample_delivery, "journals")["package_id"]
    second = ingest(repo, sample_delivery, "journals", name="second")["package_id"]
    with repo.catalog.session() as s:
        for r in s.scalars(select(Replica).where(Replica.package_id == second)):
            r.last_audit_at = utcnow() - timedelta(days=30)
    outcome = challenges.schedule_challenges(repo, now=utcnow() + LATER, limit=2)
    assert outcome["enqueued"] == 2
    stale = {r.id for r in _replicas(repo, second).values()}
    assert {j.payload["replica_id"] for j in _challenge_jobs(repo)} <= stale
    assert challenges.schedule_challenges(repo, now=utcnow() + LATER, limit=10)["enqueued"] == 4
    assert len({j.payload["replica_id"] for j in _challenge_jobs(repo)}) == 6
    assert first != second


def test_copies_of_a_deaccessioned_package_are_not_challenged(repo, sample_delivery):
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    with repo.catalog.session() as s:
        s.get(Package, package_id).state = PACKAGE_DEACCESSIONED  # withdrawn: its copies may be going away
    assert challenges.schedule_challenges(repo, now=utcnow() + LATER)["enqueued"] == 0


def test_a_challenge_queued_before_deaccession_is_skipped(repo, sample_delivery):
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    challenges.schedule_challenges(repo, now=utcnow() + LATER)
    with repo.catalog.session() as s:
        s.get(Package, package_id).state = PACKAGE_DEACCESSIONED
    worked = run_worker_once(repo, kinds=(kinds.CHALLENGE,))
    assert worked["succeeded"] == 3
    assert all(r.last_challenge_at is None for r in _replicas(repo, package_id).values())
