"""Audit planning: this window's full audits, spread over the window within each node's read budget."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from preservation.audit_planning import (
    AuditCandidate,
    NodeLoad,
    plan_audits,
    planning_period,
    planning_window,
)
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Node, Package, Replica, utcnow
from preservation.jobs import kinds
from preservation.package_state import SCHEDULED_AUDIT_STATES, readable_node
from preservation.repository import Repository

log = logging.getLogger("preserve.upkeep")

MAX_AUDITS_PER_NODE_WINDOW = 20_000


def schedule_audits(repo: Repository, *, now: datetime | None = None) -> dict[str, Any]:
    """Enqueue this window's audits (see audit_planning), their start times spread over the window."""
    now = now or utcnow()
    audit_policy = repo.policy.audit
    interval = timedelta(days=audit_policy.interval_days)
    period = planning_period(interval)
    start, end = planning_window(now, period)
    auditable = SCHEDULED_AUDIT_STATES
    with repo.catalog.session() as s:
        queued = kinds.replicas_with_live_job(s, kinds.AUDIT)
        nodes = s.scalars(select(Node).where(readable_node())).all()
        base = (
            select(Replica).join(Package)
            .where(Replica.state.in_(auditable), Package.state != PACKAGE_DEACCESSIONED)
        )
        totals = dict(s.execute(
            select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0)).join(Package)
            .where(Replica.state.in_(auditable), Package.state != PACKAGE_DEACCESSIONED).group_by(Replica.node_id)
        ).all())
        read_this_window = dict(s.execute(
            select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0))
            .where(Replica.last_audit_at >= start).group_by(Replica.node_id)
        ).all())
        loads: dict[int, NodeLoad] = {}
        candidates: list[AuditCandidate] = []
        package_of: dict[int, str] = {}
        for node in nodes:
            per_day = node.read_budget_bytes_per_day or audit_policy.read_budget_bytes_per_day
            rows = s.scalars(
                base.where(Replica.node_id == node.id)
                .order_by(Replica.next_audit_at.is_(None).desc(), Replica.next_audit_at, Replica.id)
                .limit(MAX_AUDITS_PER_NODE_WINDOW)
            ).all()
            queued_bytes = sum(r.bytes for r in rows if r.id in queued)
            loads[node.id] = NodeLoad(node.id, int(totals.get(node.id, 0)), per_day * (period / timedelta(days=1)),
                                      int(read_this_window.get(node.id, 0)) + queued_bytes)
            candidates.extend(
                AuditCandidate(r.id, r.node_id, r.bytes, r.verified_at, r.next_audit_at)
                for r in rows if r.id not in queued
            )
            package_of.update((r.id, r.package_id) for r in rows)
        plan = plan_audits(candidates, loads, interval=interval, now=now, period=period)
        names = {n.id: n.name for n in nodes}
        enqueued = 0
        for node_id, items in plan.chosen.items():
            span = (end - now) / max(len(items), 1)
            for i, c in enumerate(items):
                kinds.enqueue_for_replica(s, kinds.SCHEDULED_AUDIT, c.replica_id,
                                          package_id=package_of[c.replica_id], run_after=now + span * i)
                enqueued += 1
    for replica_id in plan.too_large:
        log.warning("replica %d is larger than a whole planning window's read budget on its node: "
                    "raise the node's read budget or it will never be audited", replica_id)
    for node_id, count in plan.overdue_left.items():
        log.warning("node %s: %d overdue cop(ies) do not fit this window's read budget", names[node_id], count)
    return {"window": [start.isoformat(), end.isoformat()], "enqueued": enqueued,
            "bytes": {names[k]: v for k, v in plan.planned_bytes.items()}, "too_large": len(plan.too_large)}
