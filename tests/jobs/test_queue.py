"""The queue in one process: claiming, leases, retries, dead-lettering, operator actions (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from preservation.catalog.models import Event, Job, utcnow
from preservation.errors import ConfigError, InvalidRequest, NotFound
from preservation.events import verify_chain
from preservation.jobs import claim as claims
from preservation.jobs import queue
from preservation.jobs.admin import cancel_job, list_jobs, retry_job, show_job
from preservation.runtime.handlers import default_registry
from preservation.runtime.handler_registry import HandlerRegistry
from preservation.runtime.worker import Worker, WorkerOptions

from ..fixtures import make_repo
from .effects import read_effects

PLUGIN = "tests.jobs.effects:register"
LEASE = timedelta(seconds=30)


@pytest.fixture
def qrepo(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    try:
        yield repo
    finally:
        repo.close()


def _enqueue(repo, kind, payload=None, **kw) -> int:
    with repo.catalog.session() as s:
        return queue.enqueue(s, kind, payload or {}, **kw).id


def _job(repo, job_id) -> Job:
    with repo.catalog.session() as s:
        return s.get(Job, job_id)


def _worker(repo, **options) -> Worker:
    defaults = dict(concurrency=2, idle_exit=0.5, poll_seconds=0.05, retry_base_seconds=0.01, lease_seconds=5)
    return Worker(repo, default_registry(PLUGIN), WorkerOptions(**{**defaults, **options}))


def test_claims_most_urgent_due_job_first(qrepo):
    later = _enqueue(qrepo, "effect", priority=5, run_after=utcnow() + timedelta(hours=1))
    low = _enqueue(qrepo, "effect", priority=200)
    high_old = _enqueue(qrepo, "effect", priority=10, run_after=utcnow() - timedelta(minutes=5))
    high_new = _enqueue(qrepo, "effect", priority=10)
    order = []
    while (c := claims.claim_next(qrepo.catalog, "a", LEASE, agent="t")) is not None:
        order.append(c.job_id)
        assert c.attempt == 1 and c.owner == "a" and not c.reclaimed
    assert order == [high_old, high_new, low]
    assert _job(qrepo, later).state == queue.QUEUED


def test_kinds_filter(qrepo):
    _enqueue(qrepo, "effect")
    wanted = _enqueue(qrepo, "audit", {"replica_id": 1})
    c = claims.claim_next(qrepo.catalog, "a", LEASE, agent="t", kinds=["audit"])
    assert c.job_id == wanted
    assert claims.claim_next(qrepo.catalog, "a", LEASE, agent="t", kinds=["audit"]) is None


def test_expired_lease_is_reclaimed_and_the_old_owner_cannot_finish(qrepo):
    job_id = _enqueue(qrepo, "effect")
    first = claims.claim_next(qrepo.catalog, "host:1:a", timedelta(seconds=1), agent="t")
    assert claims.claim_next(qrepo.catalog, "host:2:b", LEASE, agent="t") is None  # lease still valid
    later = utcnow() + timedelta(seconds=2)
    second = claims.claim_next(qrepo.catalog, "host:2:b", LEASE, agent="t", now=later)
    assert second.job_id == job_id and second.reclaimed and second.attempt == 2
    assert not claims.complete(qrepo.catalog, first, {"by": "a"}, agent="t")
    assert claims.renew_leases(qrepo.catalog, first.owner, [job_id], LEASE) == {job_id}
    assert claims.complete(qrepo.catalog, second, {"by": "b"}, agent="t")
    job = _job(qrepo, job_id)
    assert job.state == queue.SUCCEEDED and job.result == {"by": "b"} and job.lease_owner is None
    with qrepo.catalog.session() as s:
        outcomes = [e.outcome for e in s.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.seq))]
        reclaim = s.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.seq)).all()[1]
    assert outcomes == ["started", "started", "success"]
    assert reclaim.detail["reclaimed"] is True


def test_a_job_whose_worker_is_lost_on_its_last_attempt_is_dead(qrepo):
    job_id = _enqueue(qrepo, "effect", max_attempts=1)
    claims.claim_next(qrepo.catalog, "a", timedelta(seconds=1), agent="t")
    assert claims.claim_next(qrepo.catalog, "b", LEASE, agent="t", now=utcnow() + timedelta(seconds=5)) is None
    job = _job(qrepo, job_id)
    assert job.state == queue.DEAD and "lost 1 time" in job.last_error


def test_expire_leases_makes_the_queue_honest(qrepo):
    retry = _enqueue(qrepo, "effect")
    last = _enqueue(qrepo, "effect", max_attempts=1)
    claims.claim_next(qrepo.catalog, "a", timedelta(seconds=1), agent="t")
    claims.claim_next(qrepo.catalog, "a", timedelta(seconds=1), agent="t")
    assert claims.expire_leases(qrepo.catalog, agent="t", now=utcnow() + timedelta(seconds=5)) == 2
    assert _job(qrepo, retry).state == queue.FAILED
    assert _job(qrepo, last).state == queue.DEAD


def test_worker_retries_retryable_and_unexpected_errors_and_dead_letters_the_rest(qrepo, tmp_path):
    effects = str(tmp_path / "effects.log")
    ok = _enqueue(qrepo, "effect", {"file": effects})
    flaky = _enqueue(qrepo, "effect-flaky", {"file": effects})
    bug = _enqueue(qrepo, "effect-unexpected", {"file": effects})
    permanent = _enqueue(qrepo, "effect-permanent", {"file": effects})
    exhausted = _enqueue(qrepo, "effect-flaky", {"file": effects}, max_attempts=1)
    unknown = _enqueue(qrepo, "no-such-kind")
    report = _worker(qrepo).run()
    assert (report.succeeded, report.retried, report.dead) == (3, 2, 3)
    states = {j: _job(qrepo, j) for j in (ok, flaky, bug, permanent, exhausted, unknown)}
    assert [states[j].state for j in (ok, flaky, bug)] == [queue.SUCCEEDED] * 3
    assert (states[ok].attempts, states[flaky].attempts, states[bug].attempts) == (1, 2, 2)
    assert states[permanent].state == queue.DEAD and states[permanent].last_error.startswith("E112 InvalidRequest")
    assert states[exhausted].state == queue.DEAD and "E303" in states[exhausted].last_error
    assert states[unknown].state == queue.DEAD
    assert "no handler for job kind 'no-such-kind'" in states[unknown].last_error
    assert "Traceback" in _job(qrepo, bug).last_error  # kept from the failed first attempt
    done = sorted(job_id for job_id, _pid, what, _a in read_effects(effects) if what == "done")
    assert done == sorted([ok, flaky, bug])
    with qrepo.catalog.session() as s:
        flaky_events = [(e.outcome, e.detail["state"]) for e in
                        s.scalars(select(Event).where(Event.job_id == flaky).order_by(Event.seq))]
        assert verify_chain(s).ok
    assert flaky_events == [("started", "running"), ("warning", "failed"), ("started", "running"),
                            ("success", "succeeded")]


def test_heartbeat_keeps_a_long_job_leased(qrepo, tmp_path):
    effects = str(tmp_path / "effects.log")
    job_id = _enqueue(qrepo, "effect-slow", {"file": effects, "seconds": 1.0})
    worker = _worker(qrepo, lease_seconds=0.3, concurrency=1)
    runner = threading.Thread(target=worker.run)
    runner.start()
    time.sleep(0.75)  # well past the first lease
    assert claims.claim_next(qrepo.catalog, "intruder", LEASE, agent="t") is None
    runner.join(10)
    job = _job(qrepo, job_id)
    assert job.state == queue.SUCCEEDED and job.attempts == 1


def test_stopping_past_the_grace_period_releases_running_jobs(qrepo, tmp_path):
    effects = str(tmp_path / "effects.log")
    job_id = _enqueue(qrepo, "effect-slow", {"file": effects, "seconds": 0.6})
    worker = _worker(qrepo, concurrency=1, grace_seconds=0.1, idle_exit=None)
    runner = threading.Thread(target=worker.run)
    runner.start()
    while not read_effects(effects):
        time.sleep(0.02)
    worker.stop()
    runner.join(5)
    assert not runner.is_alive()
    job = _job(qrepo, job_id)
    assert job.state == queue.QUEUED and job.attempts == 0 and job.lease_owner is None
    assert worker.report.released == 1
    time.sleep(0.9)  # the abandoned handler finishes; its outcome is refused
    assert worker.report.lost == 1
    assert _job(qrepo, job_id).state == queue.QUEUED


def test_max_jobs_and_once(qrepo, tmp_path):
    effects = str(tmp_path / "effects.log")
    for _ in range(5):
        _enqueue(qrepo, "effect", {"file": effects})
    assert _worker(qrepo, max_jobs=2, idle_exit=None).run().claimed == 2
    assert _worker(qrepo, once=True, idle_exit=None).run().claimed == 3
    assert len(read_effects(effects)) == 5


def test_operator_retry_and_cancel(qrepo):
    dead = _enqueue(qrepo, "effect-permanent")
    c = claims.claim_next(qrepo.catalog, "a", LEASE, agent="t")
    claims.fail(qrepo.catalog, c, "E112 nope", error_code="E112", retryable=False, delay=0, agent="t")
    retried = retry_job(qrepo.catalog, dead)
    assert retried["state"] == queue.QUEUED and retried["attempts"] == 0
    with pytest.raises(InvalidRequest, match="only dead or failed"):
        retry_job(qrepo.catalog, dead)
    assert cancel_job(qrepo.catalog, dead)["state"] == queue.CANCELLED
    running = _enqueue(qrepo, "effect")
    claims.claim_next(qrepo.catalog, "a", LEASE, agent="t")
    with pytest.raises(InvalidRequest, match="stop its worker"):
        cancel_job(qrepo.catalog, running)
    with pytest.raises(NotFound):
        retry_job(qrepo.catalog, 999_999)
    shown = show_job(qrepo.catalog, dead)
    assert [e["outcome"] for e in shown["events"]] == ["started", "failure", "requeued", "cancelled"]
    assert [j["id"] for j in list_jobs(qrepo.catalog, state=queue.CANCELLED)] == [dead]
    with pytest.raises(InvalidRequest, match="unknown job state"):
        list_jobs(qrepo.catalog, state="sleeping")


def test_registry_plugins():
    registry = HandlerRegistry()
    assert registry.load_plugins(f" {PLUGIN} ,") == [PLUGIN]
    assert "effect-slow" in registry.kinds()
    with pytest.raises(ConfigError, match="registered already"):
        registry.load_plugins(PLUGIN)
    for bad, message in (("nocolon", "package.module:function"), ("tests.nope:register", "cannot import"),
                         ("tests.jobs.effects:nothing", "has no function")):
        with pytest.raises(ConfigError, match=message):
            HandlerRegistry().load_plugins(bad)
    assert set(default_registry().kinds()) == {"replicate", "audit", "repair", "ingest", "challenge", "reidentify"}


def test_retry_delay_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(1)
    delays = [claims.retry_delay(a, 10, 100, rng) for a in range(1, 8)]
    for attempt, d in enumerate(delays, start=1):
        ceiling = min(100, 10 * 2 ** (attempt - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(claims.retry_delay(3, 10, 100, rng), 6) for _ in range(20)}) > 1
