"""The built-in job kinds run again after a crash converge: nothing registered or copied twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from preservation.catalog.models import Event, Job, Package, Replica
from preservation.codes import NODE_UNAVAILABLE
from preservation.errors import AccessDenied, InvalidKey, JobError, StorageUnavailable
from preservation.events import FIXITY_CHECK
from preservation.jobs import kinds, queue
from preservation.runtime.handlers import INGEST_JOB_FIELD, default_registry, run_audit, run_ingest, run_replicate
from preservation.runtime.handler_registry import JobContext
from preservation.runtime.worker import Worker, WorkerOptions


def _drain(repo):
    return Worker(repo, default_registry(), WorkerOptions(concurrency=2, once=True)).run()


def _ctx(repo, job_id, kind, payload):
    return JobContext(repo, job_id, kind, payload, None, 2, "test")


def test_an_ingest_job_registers_once_and_its_copies_follow(repo, sample_delivery):
    with repo.catalog.session() as s:
        job_id = queue.enqueue(s, kinds.INGEST, {"source": str(sample_delivery), "collection": "journals",
                                                 "bag_info": {"Year": "2024"}}).id
    report = _drain(repo)
    assert report.succeeded == 4 and report.dead == 0  # the ingest, then its three replications
    with repo.catalog.session() as s:
        package = s.scalars(select(Package)).one()
        assert package.state == "preserved"
        assert package.bag_info[INGEST_JOB_FIELD] == str(job_id) and package.bag_info["Year"] == "2024"
        result = s.get(Job, job_id).result
    assert result["package_id"] == package.id and len(result["replica_ids"]) == 3
    # run again, as after a crash between registering and recording the job's success
    again = run_ingest(_ctx(repo, job_id, kinds.INGEST, {"source": str(sample_delivery), "collection": "journals"}))
    assert again["already_registered"] and again["package_id"] == package.id
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Package)) == 1


def test_replicate_and_audit_run_again_are_harmless(repo, sample_delivery):
    with repo.catalog.session() as s:
        queue.enqueue(s, kinds.INGEST, {"source": str(sample_delivery), "collection": "journals"})
    _drain(repo)
    with repo.catalog.session() as s:
        replica_id = s.scalars(select(Replica.id)).first()
    assert run_replicate(_ctx(repo, 99, kinds.REPLICATE, {"replica_id": replica_id}))["skipped"] is True
    audited = run_audit(_ctx(repo, 99, kinds.AUDIT, {"replica_id": replica_id}))
    assert audited["ok"] and audited["state"] == "verified"
    with repo.catalog.session() as s:
        s.get(Replica, replica_id).state = "copying"
    assert run_audit(_ctx(repo, 99, kinds.AUDIT, {"replica_id": replica_id}))["skipped"] == "replica is copying"
    with pytest.raises(JobError, match="no integer replica_id"):
        run_replicate(_ctx(repo, 99, kinds.REPLICATE, {"replica": "x"}))


@pytest.mark.parametrize("refusal, retried", [
    (AccessDenied("permission denied for the package prefix", location="test"), False),
    (InvalidKey("a name the store refuses", key="x", location="test"), False),
    (StorageUnavailable("connection refused", location="test"), True),
])
def test_an_audit_the_node_cannot_answer_fails_with_the_nodes_own_error(repo, sample_delivery, monkeypatch, refusal,
                                                                         retried):
    """A007 keeps the node's error code and whether it may pass (``retryable``), and the audit job
    fails with that error: a denied access or a refused key is dead at once, an unreachable node
    is tried again."""
    with repo.catalog.session() as s:
        queue.enqueue(s, kinds.INGEST, {"source": str(sample_delivery), "collection": "journals"})
    _drain(repo)
    with repo.catalog.session() as s:
        replica = s.scalars(select(Replica)).first()
        replica_id, package_id, node = replica.id, replica.package_id, replica.node

    def refuse(*args, **kwargs):
        raise refusal

    monkeypatch.setattr(repo.adapter(node), "inventory", refuse)
    with repo.catalog.session() as s:
        job_id = kinds.enqueue_for_replica(s, kinds.SCHEDULED_AUDIT, replica_id, package_id=package_id).id
    _drain(repo)
    with repo.catalog.session() as s:
        job = s.get(Job, job_id)
        assert (job.state, job.attempts) == (queue.FAILED if retried else queue.DEAD, 1)
        assert job.last_error.startswith(f"{refusal.code} {type(refusal).__name__}: ")
        event = s.scalars(select(Event).where(Event.replica_id == replica_id, Event.event_type == FIXITY_CHECK)
                          .order_by(Event.seq.desc())).first()
    [finding] = event.detail["findings"]
    assert finding["code"] == NODE_UNAVAILABLE
    assert finding["params"] == {"error_code": refusal.code, "retryable": retried}
