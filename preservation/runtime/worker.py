"""A worker process: N threads claiming and running jobs, one heartbeat renewing their leases.

Outcomes: a handler's return value completes the job; a PreservationError
is retried with back-off when the error is ``retryable`` and attempts are
left, otherwise the job is dead; any other exception counts as retryable
(up to ``max_attempts``).  :meth:`Worker.stop` stops claiming; running jobs
get ``grace`` seconds to finish, after which they are released (queued
again) and :meth:`Worker.run` returns.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from preservation.catalog.models import Node, Replica

from preservation.errors import JobError, PreservationError
from preservation.jobs import claim as claims
from preservation.liveness import HeartbeatWriter
from preservation.metrics import WorkerMetrics
from preservation.node_records import flush_events
from preservation.runtime.handler_registry import HandlerRegistry, JobContext
from preservation.runtime.policy_reload import PolicyWatcher
from preservation.repository import Repository

log = logging.getLogger("preserve.worker")


@dataclass
class WorkerOptions:
    concurrency: int = 1
    once: bool = False  # exit when nothing is due
    max_jobs: int | None = None  # exit after claiming this many
    idle_exit: float | None = None  # exit after this many seconds without work
    lease_seconds: float = 300.0
    poll_seconds: float = 2.0
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    grace_seconds: float = 30.0
    kinds: tuple[str, ...] | None = None


@dataclass
class WorkerReport:
    owner: str
    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    lost: int = 0  # leases lost while running (another worker took the job over)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("owner", "claimed", "succeeded", "retried", "dead", "released", "lost")}


class Worker:
    def __init__(self, repo: Repository, registry: HandlerRegistry, options: WorkerOptions,
                 *, owner: str | None = None, agent: str | None = None,
                 metrics: WorkerMetrics | None = None) -> None:
        self.repo = repo
        self.metrics = metrics
        self.registry = registry
        self.options = options
        self.owner = owner or claims.new_lease_owner()
        self.agent = agent or f"preserve-worker@{socket.gethostname()}"
        self.report = WorkerReport(self.owner)
        self._lease = timedelta(seconds=options.lease_seconds)
        self._stopping = threading.Event()
        self._release_now = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._subjects: dict[int, dict[str, Any]] = {}  # job id -> what its log lines name
        self._active: dict[int, claims.Claim] = {}
        self._slots_taken = 0
        self._last_activity = time.monotonic()
        self._rng = random.Random()
        # SIGHUP (reload_policy) or a changed policy file, looked at every poll: docs/operations.md
        self.policy_watcher = PolicyWatcher(repo, agent=self.agent, process="worker",
                                            every=max(options.poll_seconds, 0.5))

    # --- control ----------------------------------------------------------

    def stop(self, *, release_now: bool = False) -> None:
        """Stop claiming; with ``release_now`` give running jobs back without waiting."""
        self._stopping.set()
        if release_now:
            self._release_now.set()

    def reload_policy(self) -> None:
        """Reload the policy file at the next look (safe from a signal handler)."""
        self.policy_watcher.request()

    def run(self) -> WorkerReport:
        """Run until told to stop or an exit condition (once, max-jobs, idle) is met."""
        runners = [threading.Thread(target=self._runner, name=f"preserve-job-{i}", daemon=True)
                   for i in range(max(1, self.options.concurrency))]
        heartbeat = threading.Thread(target=self._heartbeat, name="preserve-heartbeat", daemon=True)
        heartbeat.start()
        liveness = HeartbeatWriter(self.repo.catalog, "worker", self.owner, doing=self._doing,
                                   interval=self.repo.settings.monitoring.heartbeat_seconds).start()
        for t in runners:
            t.start()
        log.info("worker %s started: %d thread(s), kinds %s", self.owner, len(runners),
                 ",".join(self.options.kinds or self.registry.kinds()))
        deadline = None
        while any(t.is_alive() for t in runners):
            if self._stopping.is_set() and deadline is None:
                deadline = time.monotonic() + self.options.grace_seconds
                log.info("worker %s stopping: no new jobs; %d running", self.owner, len(self._active))
            if deadline is not None and (time.monotonic() >= deadline or self._release_now.is_set()):
                self._release_all()
                break
            self.policy_watcher.tick()
            for t in runners:
                t.join(timeout=0.1)
        self._done.set()
        liveness.stop()
        log.info("worker %s done: %s", self.owner, self.report.to_dict())
        return self.report

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.finished(kind, outcome)

    def _doing(self) -> dict[str, Any]:
        """What the liveness heartbeat says this worker is doing: its running jobs."""
        with self._lock:
            ids = list(self._active)
        return {"jobs": [dict(self._subjects.get(i) or {"job": i}) for i in ids]}

    # --- threads ------------------------------------------------------------

    def _take_slot(self) -> bool:
        with self._lock:
            if self.options.max_jobs is not None and self._slots_taken >= self.options.max_jobs:
                return False
            self._slots_taken += 1
            return True

    def _give_back_slot(self) -> None:
        with self._lock:
            self._slots_taken -= 1

    def _idle_for(self) -> float:
        with self._lock:
            if self._active:
                return 0.0
            return time.monotonic() - self._last_activity

    def _runner(self) -> None:
        while not self._stopping.is_set():
            if not self._take_slot():
                return
            try:
                claim = claims.claim_next(self.repo.catalog, self.owner, self._lease, agent=self.agent,
                                          kinds=self.options.kinds)
            except (SQLAlchemyError, PreservationError) as e:
                self._give_back_slot()
                log.warning("worker %s could not claim a job: %s", self.owner, e)
                self._stopping.wait(self.options.poll_seconds)
                continue
            if claim is None:
                self._give_back_slot()
                if self.options.once:
                    return
                if self.options.idle_exit is not None and self._idle_for() >= self.options.idle_exit:
                    return
                self._stopping.wait(self.options.poll_seconds * self._rng.uniform(0.5, 1.0))
                continue
            with self._lock:
                self._active[claim.job_id] = claim
                self.report.claimed += 1
            try:
                self._execute(claim)
            except (SQLAlchemyError, PreservationError) as e:
                log.error("job %d (%s): its outcome could not be recorded (%s); it runs again when its lease expires",
                          claim.job_id, claim.kind, e)
            finally:
                with self._lock:
                    self._active.pop(claim.job_id, None)
                    self._last_activity = time.monotonic()

    def _heartbeat(self) -> None:
        interval = max(self.options.lease_seconds / 3, 0.05)
        while not self._done.wait(interval):
            with self._lock:
                ids = list(self._active)
            if not ids:
                continue
            try:
                lost = claims.renew_leases(self.repo.catalog, self.owner, ids, self._lease)
            except (SQLAlchemyError, PreservationError) as e:
                log.warning("worker %s could not renew its leases: %s", self.owner, e)
                continue
            for job_id in lost:
                log.warning("worker %s lost the lease of job %d: another worker may run it", self.owner, job_id)

    # --- one job ---------------------------------------------------------

    def _execute(self, claim: claims.Claim) -> None:
        ctx = JobContext(self.repo, claim.job_id, claim.kind, claim.payload, claim.package_id, claim.attempt,
                         self.agent)
        handler = self.registry.get(claim.kind)
        subject = self._subjects.setdefault(claim.job_id, job_subject(self.repo, claim))
        log.info("job %d (%s%s) attempt %d/%d started", claim.job_id, claim.kind, _where(subject), claim.attempt,
                 claim.max_attempts, extra=subject)
        started = time.monotonic()
        if self.metrics is not None:
            self.metrics.running.inc()
        try:
            if handler is None:
                raise JobError(f"no handler for job kind {claim.kind!r} on this worker "
                               f"(known: {', '.join(self.registry.kinds())})")
            result = handler(ctx)
        except PreservationError as e:
            self._failed(claim, f"{e.code} {type(e).__name__}: {e}", e.code, e.retryable)
        except Exception as e:  # noqa: BLE001 - any other failure is retried, then dead-lettered
            tail = "".join(traceback.format_exception(e)[-6:])
            self._failed(claim, f"unexpected {type(e).__name__}: {e}\n{tail}", "unexpected", True)
        else:
            self._succeeded(claim, result)
        finally:
            self._flush_events(claim)
            self._subjects.pop(claim.job_id, None)
            if self.metrics is not None:
                self.metrics.running.dec()
                self.metrics.seconds.labels(claim.kind).observe(time.monotonic() - started)

    def _flush_events(self, claim: claims.Claim) -> None:
        """Write the job's events to its copy's events file on the node (every copy's, for a job on a package):
        one write per job, whatever number of events it made; the other copies catch up at their own jobs."""
        if claim.package_id is None:
            return
        replica_id = claim.payload.get("replica_id") if isinstance(claim.payload, Mapping) else None
        try:
            flush_events(self.repo, claim.package_id, replica_id if isinstance(replica_id, int) else None)
        except (PreservationError, SQLAlchemyError) as e:
            subject = self._subjects.get(claim.job_id, {})
            log.warning("job %d (%s%s): the events file on the node was not brought up to date: %s", claim.job_id,
                        claim.kind, _where(subject), e, extra=subject)

    def _succeeded(self, claim: claims.Claim, result: dict[str, Any] | None) -> None:
        if claims.complete(self.repo.catalog, claim, _jsonable(result), agent=self.agent):
            with self._lock:
                self.report.succeeded += 1
            self._count(claim.kind, "succeeded")
            subject = self._subjects.get(claim.job_id, {})
            log.info("job %d (%s%s) succeeded", claim.job_id, claim.kind, _where(subject), extra=subject)
        else:
            self._lease_lost(claim)

    def _failed(self, claim: claims.Claim, error: str, code: str, retryable: bool) -> None:
        delay = claims.retry_delay(claim.attempt, self.options.retry_base_seconds, self.options.retry_cap_seconds,
                                   self._rng)
        state = claims.fail(self.repo.catalog, claim, error, error_code=code, retryable=retryable, delay=delay,
                            agent=self.agent)
        if state is None:
            self._lease_lost(claim)
            return
        with self._lock:
            if state == "dead":
                self.report.dead += 1
            else:
                self.report.retried += 1
        self._count(claim.kind, "dead" if state == "dead" else "retried")
        level = logging.ERROR if state == "dead" else logging.WARNING
        subject = self._subjects.get(claim.job_id, {})
        log.log(level, "job %d (%s%s) %s: %s", claim.job_id, claim.kind, _where(subject),
                "is dead" if state == "dead" else f"will be retried in {delay:.1f}s", error.splitlines()[0],
                extra=subject)

    def _lease_lost(self, claim: claims.Claim) -> None:
        with self._lock:
            self.report.lost += 1
        self._count(claim.kind, "lost")
        log.warning("job %d (%s) finished but its lease had been taken over; outcome not recorded",
                    claim.job_id, claim.kind)

    def _release_all(self) -> None:
        with self._lock:
            active = list(self._active.values())
        for claim in active:
            try:
                if claims.release(self.repo.catalog, claim, agent=self.agent):
                    with self._lock:
                        self.report.released += 1
                    log.info("job %d (%s) released unfinished", claim.job_id, claim.kind)
            except (SQLAlchemyError, PreservationError) as e:
                log.warning("job %d could not be released (its lease will expire): %s", claim.job_id, e)


def job_subject(repo: Repository, claim: claims.Claim) -> dict[str, Any]:
    """What a job's log lines name: its id, kind, package and (for a job on one copy) node."""
    subject: dict[str, Any] = {"job": claim.job_id, "kind": claim.kind, "package": claim.package_id, "node": None}
    replica_id = claim.payload.get("replica_id") if isinstance(claim.payload, Mapping) else None
    if isinstance(replica_id, int):
        try:
            with repo.catalog.session() as s:
                subject["node"] = s.scalar(select(Node.name).join(Replica, Replica.node_id == Node.id)
                                           .where(Replica.id == replica_id))
        except SQLAlchemyError:
            pass  # a log line without the node is better than a job that does not run
    return subject


def _where(subject: dict[str, Any]) -> str:
    parts = [f"package {subject['package']}" if subject.get("package") else "",
             f"node {subject['node']}" if subject.get("node") else ""]
    return "".join(f", {p}" for p in parts if p)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)
