"""Requeueing: jobs for copies that wait for work nobody will do."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, cast, func, literal, select

from preservation.catalog.models import (
    NODE_OFFLINE,
    PACKAGE_DEACCESSIONED,
    REPLICA_COPYING,
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_PENDING,
    REPLICA_REPAIRING,
    REPLICA_VERIFIED,
    Job,
    Node,
    Package,
    Replica,
    UnrepairableFile,
    utcnow,
)
from preservation.jobs import kinds, queue
from preservation.repository import Repository


def requeue_stalled(repo: Repository) -> dict[str, int]:
    """Give jobs back to copies that wait for work nobody will do.

    Pending or copying copies get a ``replicate`` job, corrupt, missing or
    repairing ones a ``repair`` job — unless one is live, or the last one was
    cancelled or is dead.  A dead (or acknowledged) repair is tried again once
    another copy of the package has been verified since it died (a source may
    exist now); otherwise an operator decides (``preserve jobs retry``).  A
    repair that left files recorded unrepairable is run again when the copy's
    next audit is due (its check is that audit: the copy's other files are
    still read once per interval), not at every tick.
    """
    counts = {"replicate": 0, "repair": 0}
    plans = (
        (kinds.REPLICATE_NEW_COPY, (REPLICA_PENDING, REPLICA_COPYING)),
        (kinds.REPAIR_DAMAGED, (REPLICA_CORRUPT, REPLICA_MISSING, REPLICA_REPAIRING)),
    )
    for purpose, states in plans:
        kind = purpose.kind
        key = literal(kinds.replica_key_prefix(kind)) + cast(Replica.id, String)
        with repo.catalog.session() as s:
            rows = s.execute(
                select(Replica.id, Replica.package_id, Job.state, Job.finished_at)
                .join(Node, Node.id == Replica.node_id).join(Package, Package.id == Replica.package_id)
                .outerjoin(Job, Job.dedupe_key == key)
                .where(Replica.state.in_(states), Node.status != NODE_OFFLINE,
                       Package.state != PACKAGE_DEACCESSIONED)
            ).all()
            waiting = _waiting_for_a_source(s) if kind == kinds.REPAIR else set()
            for replica_id, package_id, job_state, finished_at in rows:
                if job_state in (queue.DEAD, queue.ACKNOWLEDGED) and kind == kinds.REPAIR:
                    if not _verified_since(s, package_id, replica_id, finished_at):
                        continue
                elif job_state is not None and job_state not in (queue.SUCCEEDED, queue.SUPERSEDED):
                    continue
                elif replica_id in waiting:
                    continue
                kinds.enqueue_for_replica(s, purpose, replica_id, package_id=package_id,
                                          max_attempts=repo.policy.repair.max_attempts if kind == kinds.REPAIR else None)
                counts[kind] += 1
    return counts


def _waiting_for_a_source(s) -> set[int]:
    """Copies with files recorded unrepairable whose next audit is not yet due."""
    return set(s.scalars(
        select(UnrepairableFile.replica_id).join(Replica, Replica.id == UnrepairableFile.replica_id)
        .where(Replica.next_audit_at > utcnow()).distinct()
    ))


def _verified_since(s, package_id: str, replica_id: int, when: datetime | None) -> bool:
    latest = s.execute(
        select(func.max(Replica.verified_at))
        .where(Replica.package_id == package_id, Replica.id != replica_id, Replica.state == REPLICA_VERIFIED)
    ).scalar_one()
    return latest is not None and (when is None or latest > when)
