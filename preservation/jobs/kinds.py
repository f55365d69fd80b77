"""Every kind of job the product queues, and why: the one place for kinds, dedupe keys and priorities.

A job for one copy carries ``{"replica_id": …}`` and the dedupe key
``<kind>:<replica id>``, so a copy has at most one live job of each kind
(see :func:`preservation.jobs.queue.enqueue`).  Workers take the lowest
priority first, so the purposes below are listed in the order they run:
damage found by a check jumps the queue, routine work waits behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.catalog.models import Job
from preservation.jobs.queue import DEFAULT_MAX_ATTEMPTS, LIVE_STATES, ROUTINE_PRIORITY, enqueue

INGEST = "ingest"
REPLICATE = "replicate"
AUDIT = "audit"
REPAIR = "repair"
CHALLENGE = "challenge"
REIDENTIFY = "reidentify"


@dataclass(frozen=True)
class Purpose:
    """Why a job for one copy is queued: its kind, its priority (lower runs first) and how often it is tried."""

    kind: str
    priority: int
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


# a copy that answered a challenge wrongly may be the only witness of damage: audit it before anything else
AUDIT_AFTER_FAILED_CHALLENGE = Purpose(AUDIT, 5)
# tries: the policy's repair.max_attempts, passed by the caller
REPAIR_DAMAGED = Purpose(REPAIR, 10)
AUDIT_AFTER_BAD_READ = Purpose(AUDIT, 10)
AUDIT_SUSPECT_AGAIN = Purpose(AUDIT, 20)
REPLICATE_NEW_COPY = Purpose(REPLICATE, ROUTINE_PRIORITY)
SCHEDULED_AUDIT = Purpose(AUDIT, 120, max_attempts=3)
# after audits: a challenge is the cheap check between them
SCHEDULED_CHALLENGE = Purpose(CHALLENGE, 150, max_attempts=3)
# last: identifying a package's files again with a newer signature file reads only heads and tails, and can wait
SCHEDULED_REIDENTIFICATION = Purpose(REIDENTIFY, 170, max_attempts=3)


def replica_key_prefix(kind: str) -> str:
    return f"{kind}:"


def replica_key(kind: str, replica_id: int) -> str:
    """The dedupe key of the ``kind`` job for one copy."""
    return f"{replica_key_prefix(kind)}{replica_id}"


def enqueue_for_replica(
    session: Session, purpose: Purpose, replica_id: int, *, package_id: str | None,
    run_after: datetime | None = None, max_attempts: int | None = None,
) -> Job:
    """Queue ``purpose``'s job for one copy in the caller's transaction (or return the live one)."""
    tries = purpose.max_attempts if max_attempts is None else max_attempts
    return enqueue(session, purpose.kind, {"replica_id": replica_id}, package_id=package_id,
                   dedupe_key=replica_key(purpose.kind, replica_id), run_after=run_after,
                   priority=purpose.priority, max_attempts=tries)


def package_key(kind: str, package_id: str) -> str:
    """The dedupe key of the ``kind`` job for one whole package (a package id is never all digits)."""
    return f"{kind}:{package_id}"


def enqueue_for_package(
    session: Session, purpose: Purpose, package_id: str, payload: dict, *, run_after: datetime | None = None,
) -> Job:
    """Queue ``purpose``'s job for one whole package in the caller's transaction (or return the live one)."""
    return enqueue(session, purpose.kind, {**payload, "package_id": package_id}, package_id=package_id,
                   dedupe_key=package_key(purpose.kind, package_id), run_after=run_after,
                   priority=purpose.priority, max_attempts=purpose.max_attempts)


def packages_with_live_job(session: Session, kind: str) -> set[str]:
    """Package ids that have a live whole-package ``kind`` job."""
    prefix = package_key(kind, "")
    keys = session.scalars(select(Job.dedupe_key).where(Job.state.in_(LIVE_STATES), Job.dedupe_key.like(f"{prefix}%")))
    return {k[len(prefix):] for k in keys}


def replicas_with_live_job(session: Session, kind: str) -> set[int]:
    """Replica ids that have a live ``kind`` job."""
    prefix = replica_key_prefix(kind)
    keys = session.scalars(select(Job.dedupe_key).where(Job.state.in_(LIVE_STATES), Job.dedupe_key.like(f"{prefix}%")))
    return {int(k[len(prefix):]) for k in keys if k[len(prefix):].isdigit()}
