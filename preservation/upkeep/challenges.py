"""Proof-of-possession challenges between full audits: the stalest verified copies first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from preservation.catalog.models import PACKAGE_DEACCESSIONED, REPLICA_VERIFIED, Node, Package, Replica, utcnow
from preservation.jobs import kinds
from preservation.package_state import readable_node
from preservation.repository import Repository

MAX_CHALLENGES_PER_TICK = 200


def schedule_challenges(repo: Repository, *, now: datetime | None = None,
                        limit: int = MAX_CHALLENGES_PER_TICK) -> dict[str, Any]:
    """Enqueue a challenge for every verified copy not checked for ``challenge_interval_days``.

    A copy counts as checked by its last challenge or its last full audit,
    whichever is later; copies of deaccessioned packages are left alone.
    Only copies with another verified copy on a readable node can be
    challenged (the answer is checked against it).
    The stalest go first, at most ``limit`` per call, so a large network
    catches up over a few ticks instead of flooding the queue.
    """
    now = now or utcnow()
    due_before = now - timedelta(days=repo.policy.audit.challenge_interval_days)
    other = aliased(Replica)
    other_node = aliased(Node)
    last_checked = func.coalesce(
        case((Replica.last_challenge_at > Replica.last_audit_at, Replica.last_challenge_at),
             else_=Replica.last_audit_at),
        Replica.last_challenge_at, Replica.verified_at,
    )
    witness = (
        select(other.id).join(other_node, other.node_id == other_node.id)
        .where(other.package_id == Replica.package_id, other.id != Replica.id, other.state == REPLICA_VERIFIED,
               readable_node(other_node))
        .exists()
    )
    with repo.catalog.session() as s:
        live = kinds.replicas_with_live_job(s, kinds.CHALLENGE)
        rows = s.execute(
            select(Replica.id, Replica.package_id).join(Node).join(Package)
            .where(Replica.state == REPLICA_VERIFIED, readable_node(), last_checked <= due_before,
                   Package.state != PACKAGE_DEACCESSIONED, witness)
            .order_by(last_checked, Replica.id)
            .limit(limit + len(live))
        ).all()
        enqueued = 0
        for replica_id, package_id in rows:
            if replica_id in live or enqueued >= limit:
                continue
            kinds.enqueue_for_replica(s, kinds.SCHEDULED_CHALLENGE, replica_id, package_id=package_id)
            enqueued += 1
    return {"enqueued": enqueued, "already_queued": len(live), "due_before": due_before.isoformat()}
