"""Putting work on the queue, inside the caller's transaction.

Enqueueing shares the transaction of the state change that causes it (mark a
replica corrupt *and* enqueue its repair), so neither can happen without the
other.  ``dedupe_key`` keeps one live job per purpose: enqueueing again while
one is queued or running returns the existing job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.catalog.models import Job, utcnow

from preservation.catalog.vocabulary import (  # noqa: F401 - the job states, offered here
    ACKNOWLEDGED,
    CANCELLED,
    DEAD,
    FAILED,
    JOB_STATES,
    LIVE_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    SUPERSEDED,
)

ROUTINE_PRIORITY = 100  # lower runs first; the purposes of preservation.jobs.kinds are ranked around it
DEFAULT_MAX_ATTEMPTS = 5


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    package_id: str | None = None,
    dedupe_key: str | None = None,
    run_after: datetime | None = None,
    priority: int = ROUTINE_PRIORITY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Job:
    """Add a job (or return the live one with the same ``dedupe_key``)."""
    if dedupe_key is not None:
        existing = session.execute(select(Job).where(Job.dedupe_key == dedupe_key)).scalar_one_or_none()
        if existing is not None:
            if existing.state in LIVE_STATES:
                return existing
            # a finished job frees its key for the next piece of work
            existing.dedupe_key = None
            session.flush()
    job = Job(
        kind=kind,
        state=QUEUED,
        payload=payload,
        package_id=package_id,
        dedupe_key=dedupe_key,
        run_after=run_after or utcnow(),
        priority=priority,
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    return job

