"""What operators do with the queue: look at jobs, retry dead ones, cancel queued ones, acknowledge dead ones,
wait for work; and the closing of dead jobs that a copy verified since has made moot."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from preservation import events
from preservation.catalog.db import Catalog
from preservation.catalog.models import PACKAGE_PRESERVED, REPLICA_VERIFIED, Event, Job, Package, Replica, utcnow
from preservation.errors import InvalidRequest, NotFound
from preservation.jobs.claim import record_job_event
from preservation.jobs.kinds import REPLICATE
from preservation.text import check_xml_text
from preservation.jobs.queue import (
    ACKNOWLEDGED,
    CANCELLED,
    DEAD,
    FAILED,
    JOB_STATES,
    LIVE_STATES,
    QUEUED,
    SUPERSEDED,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def job_to_dict(job: Job, *, full: bool = False) -> dict[str, Any]:
    out = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "package_id": job.package_id,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_after": _iso(job.run_after),
        "lease_owner": job.lease_owner,
        "lease_expires_at": _iso(job.lease_expires_at),
        "last_error": (job.last_error or "").splitlines()[0] if job.last_error and not full else job.last_error,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "finished_at": _iso(job.finished_at),
    }
    if full:
        out["payload"] = job.payload
        out["dedupe_key"] = job.dedupe_key
        out["result"] = job.result
    return out


def list_jobs(catalog: Catalog, *, state: str | None = None, kind: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
    """Jobs, newest first; raises InvalidRequest for an unknown state."""
    if state is not None and state not in JOB_STATES:
        raise InvalidRequest(f"unknown job state {state!r}; use one of {', '.join(JOB_STATES)}")
    with catalog.session() as s:
        stmt = select(Job).order_by(Job.id.desc()).limit(limit)
        if state:
            stmt = stmt.where(Job.state == state)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        return [job_to_dict(j) for j in s.scalars(stmt)]


def show_job(catalog: Catalog, job_id: int) -> dict[str, Any]:
    """One job in full, with the events it caused; raises NotFound."""
    with catalog.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}: see `preserve jobs list`")
        out = job_to_dict(job, full=True)
        out["events"] = [
            {"seq": e.seq, "occurred_at": _iso(e.occurred_at), "event_type": e.event_type, "outcome": e.outcome,
             "note": e.detail.get("note") if isinstance(e.detail, dict) else None}
            for e in s.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.seq))
        ]
        return out


def retry_job(catalog: Catalog, job_id: int, *, agent: str = events.SYSTEM_AGENT) -> dict[str, Any]:
    """Queue a dead or failed job again now, with its attempts reset; raises NotFound / InvalidRequest."""
    with catalog.session() as s:
        job = _locked(s, job_id)
        if job.state not in (DEAD, FAILED):
            raise InvalidRequest(f"job {job_id} is {job.state}: only dead or failed jobs can be retried")
        previous = job.state
        job.state = QUEUED
        job.attempts = 0
        job.run_after = utcnow()
        job.finished_at = None
        record_job_event(s, job, "requeued", agent=agent, previous_state=previous, by="operator")
        return job_to_dict(job)


def cancel_job(catalog: Catalog, job_id: int, *, agent: str = events.SYSTEM_AGENT) -> dict[str, Any]:
    """Cancel a queued or failed job; raises NotFound / InvalidRequest (a running job cannot be cancelled)."""
    with catalog.session() as s:
        job = _locked(s, job_id)
        if job.state not in (QUEUED, FAILED):
            hint = " (stop its worker, or wait for it to finish)" if job.state == "running" else ""
            raise InvalidRequest(f"job {job_id} is {job.state}: only queued or failed jobs can be cancelled{hint}")
        previous = job.state
        job.state = CANCELLED
        job.finished_at = utcnow()
        record_job_event(s, job, "cancelled", agent=agent, previous_state=previous, by="operator")
        return job_to_dict(job)


MAX_NOTE_CHARS = 500


def acknowledge_job(catalog: Catalog, job_id: int, *, note: str = "", agent: str = events.SYSTEM_AGENT
                    ) -> dict[str, Any]:
    """Close a dead job an operator has seen (``acknowledged``), with an event carrying ``note``.

    The job's copy is still tried again once a source may exist (see
    ``upkeep.stalled``); ``status`` and the alerts stop counting it as dead.
    Raises NotFound, InvalidRequest (the job is not dead, or the note is
    longer than 500 characters or holds text XML cannot carry).
    """
    note = check_xml_text(note, "the note", max_length=MAX_NOTE_CHARS)
    with catalog.session() as s:
        job = _locked(s, job_id)
        if job.state != DEAD:
            raise InvalidRequest(f"job {job_id} is {job.state}: only dead jobs can be acknowledged")
        job.state = ACKNOWLEDGED
        record_job_event(s, job, "acknowledged", agent=agent, previous_state=DEAD, by="operator",
                         **({"note": note} if note else {}))
        return job_to_dict(job)


def close_superseded(session: Session, package_id: str, verified_at: Mapping[int, datetime], *,
                     agent: str = events.SYSTEM_AGENT) -> list[int]:
    """Close the package's dead jobs for copies verified since the job died (``superseded``); returns their ids.

    ``verified_at`` maps the package's verified replica ids to when they were
    verified.  A dead job for one copy (its payload names the replica) is
    moot once that copy has been read back whole and right; jobs for a whole
    package are left to the operator.
    """
    if not verified_at:
        return []
    closed = []
    for job in session.scalars(select(Job).where(Job.package_id == package_id, Job.state == DEAD)
                               .order_by(Job.id).with_for_update()):
        replica_id = job.payload.get("replica_id") if isinstance(job.payload, dict) else None
        when = verified_at.get(replica_id) if isinstance(replica_id, int) else None
        if when is None or (job.finished_at is not None and when < job.finished_at):
            continue
        job.state = SUPERSEDED
        record_job_event(session, job, "superseded", agent=agent, previous_state=DEAD,
                         reason="its copy has been verified since it died", verified_at=_iso(when))
        closed.append(job.id)
    return closed


def _locked(s, job_id: int) -> Job:
    job = s.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None:
        raise NotFound(f"no job {job_id}: see `preserve jobs list`")
    return job


WAIT_PRESERVED = "preserved"
WAIT_FAILED = "failed"
WAIT_TIMED_OUT = "timed out"


def _replication(session: Session, package_id: str) -> dict[str, Any]:
    """The package's state, its copies (all, verified) and its replication jobs by state, as the catalog says."""
    package = session.get(Package, package_id)
    if package is None:
        raise NotFound(f"no package {package_id!r}")
    jobs = dict(session.execute(select(Job.state, func.count())
                                .where(Job.package_id == package_id, Job.kind == REPLICATE).group_by(Job.state)).all())
    copies = dict(session.execute(select(Replica.state, func.count())
                                  .where(Replica.package_id == package_id).group_by(Replica.state)).all())
    return {"package_id": package_id, "state": package.state, "copies": sum(copies.values()),
            "copies_verified": copies.get(REPLICA_VERIFIED, 0),
            "replication_jobs": {k: int(v) for k, v in sorted(jobs.items())},
            "live_jobs": sum(jobs.get(st, 0) for st in LIVE_STATES), "dead_jobs": jobs.get(DEAD, 0)}


def wait_for_package(
    catalog: Catalog, package_id: str, *, timeout: float | None = None, poll: float = 1.0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Wait until every replication job of the package has ended, or ``timeout`` seconds have passed.

    The package is then preserved (every copy written and verified) or has failed (a job dead or cancelled
    before its copy was verified); a replicate job marks the package preserved and then still writes the copy's
    record and events file on its node, so the wait ends only once the jobs have.  ``on_progress`` is called
    with the first snapshot and with each one that differs from the one before.  Returns the last snapshot
    (package state, copies and copies verified, replication jobs by state, live and dead counts) with
    ``outcome`` (:data:`WAIT_PRESERVED`, :data:`WAIT_FAILED` or :data:`WAIT_TIMED_OUT`) and ``waited_seconds``.
    Raises NotFound for an unknown package.
    """
    started = time.monotonic()
    last: dict[str, Any] | None = None
    while True:
        with catalog.session() as s:
            snapshot = _replication(s, package_id)
        if snapshot != last and on_progress is not None:
            on_progress(snapshot)
        last = snapshot
        waited = time.monotonic() - started
        if snapshot["live_jobs"] == 0:
            outcome = WAIT_PRESERVED if snapshot["state"] == PACKAGE_PRESERVED else WAIT_FAILED
        elif timeout is not None and waited >= timeout:
            outcome = WAIT_TIMED_OUT
        else:
            time.sleep(poll if timeout is None else max(0.0, min(poll, timeout - waited)))
            continue
        return {**snapshot, "outcome": outcome, "waited_seconds": round(waited, 3)}
