"""Claiming jobs under a lease, and every state change a worker makes.

A worker claims the most urgent due job — lowest ``priority``, then oldest
``run_after`` — and holds it under a lease (owner ``host:pid:uuid``, expiry)
that a heartbeat renews while the job runs.  A ``running`` job whose lease
has expired belonged to a worker that died; any worker may claim it again.

PostgreSQL: the candidate row is selected ``FOR UPDATE SKIP LOCKED``, so
concurrent claimers take different rows without waiting for each other.
SQLite: every transaction is ``BEGIN IMMEDIATE`` (see catalog.db), so the
select and the update in one transaction already exclude other writers.

Every transition checks that the caller still owns the lease; one that has
lost it changes nothing (the job belongs to whoever claimed it since).  Each
transition is an event (type ``job``) in the same transaction.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from preservation import events
from preservation.catalog.db import Catalog
from preservation.catalog.models import Job, utcnow
from preservation.errors import JobError, PreservationError
from preservation.jobs.queue import DEAD, FAILED, QUEUED, RUNNING, SUCCEEDED

JOB_EVENT = "job"
log = logging.getLogger("preserve.jobs")
MAX_ERROR_CHARS = 4000


def new_lease_owner() -> str:
    """``host:pid:uuid``: names the worker process that holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with jitter: half of ``base * 2**(attempt-1)`` fixed, half random, at most ``cap``."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Claim:
    job_id: int
    kind: str
    payload: Mapping[str, Any]
    package_id: str | None
    attempt: int
    max_attempts: int
    owner: str
    reclaimed: bool  # the previous holder's lease had expired


def record_job_event(
    session: Session, job: Job, outcome: str, *, agent: str, error_code: str | None = None, **detail: Any
) -> None:
    replica_id = job.payload.get("replica_id") if isinstance(job.payload, dict) else None
    body = {"kind": job.kind, "state": job.state, "attempt": job.attempts, **detail}
    if error_code:
        body["error_code"] = error_code
    events.record_event(
        session, JOB_EVENT, outcome, agent=agent, package_id=job.package_id, job_id=job.id,
        replica_id=replica_id if isinstance(replica_id, int) else None, detail=body,
    )


def _due(now: datetime):
    return or_(
        and_(Job.state.in_((QUEUED, FAILED)), Job.run_after <= now),
        and_(Job.state == RUNNING, Job.lease_expires_at < now),
    )


def claim_next(
    catalog: Catalog, owner: str, lease: timedelta, *, agent: str, kinds: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Claim | None:
    """Claim the most urgent due job (or one whose lease expired); None when nothing is due.

    A job whose lease expired after its last allowed attempt is not run again:
    it goes ``dead`` (its worker was lost that many times).
    """
    now = now or utcnow()
    with catalog.session() as s:
        while True:
            stmt = select(Job).where(_due(now))
            if kinds:
                stmt = stmt.where(Job.kind.in_(list(kinds)))
            stmt = stmt.order_by(Job.priority, Job.run_after, Job.id).limit(1).with_for_update(skip_locked=True)
            job = s.scalars(stmt).first()
            if job is None:
                return None
            reclaimed = job.state == RUNNING
            if reclaimed and job.attempts >= job.max_attempts:
                _lost_for_good(s, job, now, agent)
                continue
            job.state = RUNNING
            job.attempts += 1
            job.lease_owner = owner
            job.lease_expires_at = now + lease
            job.updated_at = now
            record_job_event(s, job, "started", agent=agent, **({"reclaimed": True} if reclaimed else {}))
            return Claim(job.id, job.kind, dict(job.payload or {}), job.package_id, job.attempts, job.max_attempts,
                         owner, reclaimed)


@dataclass(frozen=True)
class Holder:
    """A process that runs jobs it enqueued itself (an inline ingest) and holds their leases meanwhile."""

    owner: str
    lease: timedelta
    agent: str


def hold(session: Session, job: Job, holder: Holder) -> Claim:
    """Take ``job``, enqueued in this same transaction, under ``holder``'s lease.

    The job is ``running`` from the moment it exists, so no worker can claim
    it while the holder does its work; if the holder dies, the lease expires
    and a worker takes the job over as it would from a lost worker.
    """
    if job.state != QUEUED or job.attempts:
        raise JobError(f"job {job.id} is {job.state} after {job.attempts} attempt(s): only a new job can be held")
    now = utcnow()
    job.state = RUNNING
    job.attempts = 1
    job.lease_owner = holder.owner
    job.lease_expires_at = now + holder.lease
    job.updated_at = now
    session.flush()
    record_job_event(session, job, "started", agent=holder.agent, held=True)
    return Claim(job.id, job.kind, dict(job.payload or {}), job.package_id, job.attempts, job.max_attempts,
                 holder.owner, False)


class LeaseKeeper:
    """Renews ``holder``'s leases on ``claims`` from a thread while the block runs, as a worker's heartbeat does."""

    def __init__(self, catalog: Catalog, holder: Holder, claims: Sequence[Claim]) -> None:
        self._catalog = catalog
        self._holder = holder
        self._claims = {c.job_id: c for c in claims}
        self._ids = set(self._claims)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preserve-lease-keeper", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        if self._ids:
            self._thread.start()
        return self

    def finished(self, claim: Claim) -> None:
        """Stop renewing a job whose outcome has been recorded."""
        with self._lock:
            self._ids.discard(claim.job_id)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if exc_type is not None:
            # interrupted (Ctrl-C, a crash below): the workers take the unfinished jobs now, not a lease later
            with self._lock:
                unfinished = [self._claims[i] for i in sorted(self._ids)]
            for claim in unfinished:
                try:
                    release(self._catalog, claim, agent=self._holder.agent)
                except (SQLAlchemyError, PreservationError) as e:
                    log.warning("job %d could not be released (its lease will expire): %s", claim.job_id, e)

    def _run(self) -> None:
        interval = max(self._holder.lease.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            with self._lock:
                ids = sorted(self._ids)
            try:
                lost = renew_leases(self._catalog, self._holder.owner, ids, self._holder.lease)
            except (SQLAlchemyError, PreservationError) as e:
                log.warning("%s could not renew its leases: %s", self._holder.owner, e)
                continue
            with self._lock:
                lost &= self._ids
            for job_id in sorted(lost):
                log.warning("%s lost the lease of job %d: a worker may run it too", self._holder.owner, job_id)


def _lost_for_good(s: Session, job: Job, now: datetime, agent: str) -> None:
    job.state = DEAD
    job.last_error = f"the worker running it was lost {job.attempts} time(s) (lease expired); not retried again"
    job.lease_owner = None
    job.lease_expires_at = None
    job.finished_at = now
    record_job_event(s, job, events.FAILURE, agent=agent, reason="lease expired")


def renew_leases(catalog: Catalog, owner: str, job_ids: Sequence[int], lease: timedelta) -> set[int]:
    """Extend the leases ``owner`` still holds; returns the ids whose lease it has lost."""
    if not job_ids:
        return set()
    now = utcnow()
    held_where = (Job.id.in_(list(job_ids)), Job.lease_owner == owner, Job.state == RUNNING)
    with catalog.session() as s:
        s.execute(update(Job).where(*held_where).values(lease_expires_at=now + lease, updated_at=now))
        held = set(s.scalars(select(Job.id).where(*held_where)))
    return set(job_ids) - held


def _owned(s: Session, claim: Claim) -> Job | None:
    job = s.scalars(select(Job).where(Job.id == claim.job_id).with_for_update()).first()
    if job is None or job.state != RUNNING or job.lease_owner != claim.owner:
        return None
    return job


def complete(catalog: Catalog, claim: Claim, result: dict[str, Any] | None, *, agent: str) -> bool:
    """Mark the job succeeded; False if the lease was lost (nothing changed)."""
    now = utcnow()
    with catalog.session() as s:
        job = _owned(s, claim)
        if job is None:
            return False
        job.state = SUCCEEDED
        job.result = result or {}
        job.lease_owner = None
        job.lease_expires_at = None
        job.finished_at = now
        job.updated_at = now
        record_job_event(s, job, events.SUCCESS, agent=agent)
        return True


def fail(
    catalog: Catalog, claim: Claim, error: str, *, error_code: str, retryable: bool, delay: float, agent: str
) -> str | None:
    """Record a failed attempt: ``failed`` (retry after ``delay`` seconds) or ``dead``.

    Returns the new state, or None if the lease was lost (nothing changed).
    """
    now = utcnow()
    with catalog.session() as s:
        job = _owned(s, claim)
        if job is None:
            return None
        job.last_error = error[:MAX_ERROR_CHARS]
        job.lease_owner = None
        job.lease_expires_at = None
        job.updated_at = now
        if retryable and job.attempts < job.max_attempts:
            job.state = FAILED
            job.run_after = now + timedelta(seconds=delay)
            record_job_event(s, job, events.WARNING, agent=agent, error_code=error_code,
                             retry_in_seconds=round(delay, 3))
        else:
            job.state = DEAD
            job.finished_at = now
            record_job_event(s, job, events.FAILURE, agent=agent, error_code=error_code,
                             reason="permanent error" if not retryable else "no attempts left")
        return job.state


def release(catalog: Catalog, claim: Claim, *, agent: str) -> bool:
    """Give a job back unfinished (the worker is stopping): queued again, the attempt not counted."""
    now = utcnow()
    with catalog.session() as s:
        job = _owned(s, claim)
        if job is None:
            return False
        job.state = QUEUED
        job.attempts = max(job.attempts - 1, 0)
        job.lease_owner = None
        job.lease_expires_at = None
        job.run_after = now
        job.updated_at = now
        record_job_event(s, job, "released", agent=agent)
        return True


def expire_leases(catalog: Catalog, *, agent: str, now: datetime | None = None, limit: int = 500) -> int:
    """Turn ``running`` jobs whose lease expired into ``failed`` (or ``dead``); returns how many.

    Claiming reclaims such jobs anyway; this keeps the queue's picture honest
    when no worker is polling.
    """
    now = now or utcnow()
    with catalog.session() as s:
        jobs = s.scalars(
            select(Job).where(Job.state == RUNNING, Job.lease_expires_at < now)
            .order_by(Job.id).limit(limit).with_for_update(skip_locked=True)
        ).all()
        for job in jobs:
            if job.attempts >= job.max_attempts:
                _lost_for_good(s, job, now, agent)
                continue
            job.state = FAILED
            job.last_error = f"the worker holding the lease ({job.lease_owner}) stopped renewing it"
            job.lease_owner = None
            job.lease_expires_at = None
            job.run_after = now
            job.updated_at = now
            record_job_event(s, job, events.WARNING, agent=agent, reason="lease expired")
        return len(jobs)
