"""What the scheduler does each tick: plan audits, restore replication, requeue repairs, sweep.

Every task only enqueues jobs (deduplicated by purpose) or tidies up; the
work itself is done by workers.  Each task is safe to run at any time, any
number of times, by whichever scheduler is active.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import String, case, cast, func, literal, or_, select
from sqlalchemy.orm import aliased

from preservation import events
from preservation.audit_planning import (
    AuditCandidate,
    NodeLoad,
    plan_audits,
    planning_period,
    planning_window,
)
from preservation.catalog.models import (
    NODE_ACTIVE,
    NODE_OFFLINE,
    PACKAGE_DEACCESSIONED,
    PACKAGE_PRESERVED,
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
    utcnow,
)
from preservation.errors import PlacementError, PreservationError
from preservation.jobs import kinds, queue
from preservation.jobs.claim import expire_leases
from preservation.placement import Candidate, choose_nodes, unmet_requirements
from preservation.package_state import (
    SCHEDULED_AUDIT_STATES,
    readable_node,
    release_staging_if_done,
    update_package_state,
)
from preservation.repository import Repository

log = logging.getLogger("preserve.upkeep")

MAX_AUDITS_PER_NODE_WINDOW = 20_000
PACKAGE_BATCH = 500
STALE_TEMPORARY = timedelta(hours=6)
STALE_STAGING = timedelta(days=1)
PLACED = "placed"


# --- (a) audit planning ---------------------------------------------------------


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


# --- (b) replication ------------------------------------------------------------


def restore_replication(repo: Repository, *, agent: str = events.SYSTEM_AGENT) -> dict[str, Any]:
    """Place new copies for packages whose copies on active nodes no longer satisfy the policy."""
    label = repo.policy.label
    outside_policy = (
        select(Replica.package_id).join(Node)
        .where(or_(Replica.state != REPLICA_VERIFIED, Node.status != NODE_ACTIVE))
    )
    stmt = (
        select(Package.id)
        .where(Package.state != PACKAGE_DEACCESSIONED)
        .where(or_(Package.state != PACKAGE_PRESERVED, Package.policy != label, Package.id.in_(outside_policy)))
        .order_by(Package.id)
    )
    placed = unplaceable = relabelled = 0
    last = ""
    while True:
        with repo.catalog.session() as s:
            ids = list(s.scalars(stmt.where(Package.id > last).limit(PACKAGE_BATCH)))
        if not ids:
            break
        last = ids[-1]
        for package_id in ids:
            try:
                outcome = _ensure_placement(repo, package_id, agent)
            except PlacementError as e:
                unplaceable += 1
                log.warning("package %s is under-replicated and cannot be placed: %s", package_id, e)
                continue
            placed += outcome.get("placed", 0)
            relabelled += outcome.get("relabelled", 0)
    return {"placed": placed, "unplaceable": unplaceable, "relabelled": relabelled}


def _ensure_placement(repo: Repository, package_id: str, agent: str) -> dict[str, int]:
    policy = repo.policy
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        replicas = s.scalars(select(Replica).where(Replica.package_id == package_id)).all()
        verified_active = [r.node for r in replicas if r.state == REPLICA_VERIFIED and r.node.status == NODE_ACTIVE]
        has_source = any(r.state == REPLICA_VERIFIED for r in replicas) or bool(
            package.staging_path and Path(package.staging_path).is_dir())
        # copies on active nodes in any state count: their replicate/repair/audit jobs will verify them
        prospective = [r.node for r in replicas if r.node.status == NODE_ACTIVE]
        outcome = {"placed": 0, "relabelled": 0}
        if has_source and unmet_requirements(policy.replication, prospective):
            nodes = s.scalars(select(Node).where(Node.status == NODE_ACTIVE)).all()
            held = {r.node_id for r in replicas}
            used = dict(s.execute(select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0))
                                  .group_by(Replica.node_id)).all())
            candidates = [Candidate(n, int(used.get(n.id, 0))) for n in nodes if n.id not in held]
            chosen = choose_nodes(policy.replication, candidates, package.total_bytes, existing=prospective)
            for node in chosen:
                replica = Replica(package_id=package_id, node_id=node.id, state=REPLICA_PENDING)
                s.add(replica)
                s.flush()
                events.record_event(
                    s, events.REPLICATION, PLACED, agent=agent, package_id=package_id, replica_id=replica.id,
                    node_name=node.name, policy=policy.label,
                    detail={"state": REPLICA_PENDING, "reason": "; ".join(unmet_requirements(policy.replication, prospective)),
                            "copies_on_active_nodes": sorted(n.name for n in prospective)},
                )
                kinds.enqueue_for_replica(s, kinds.REPLICATE_NEW_COPY, replica.id, package_id=package_id)
            outcome["placed"] = len(chosen)
        if not unmet_requirements(policy.replication, verified_active) and package.policy != policy.label:
            previous = package.policy
            package.policy = policy.label
            events.record_event(
                s, events.POLICY_ASSIGNMENT, events.SUCCESS, agent=agent, package_id=package_id, policy=policy.label,
                detail={"policy": policy.label, "previous_policy": previous,
                        "verified_copies": sorted(n.name for n in verified_active)},
            )
            outcome["relabelled"] = 1
        update_package_state(repo.policy, s, package, agent=agent)
        return outcome


def requeue_stalled(repo: Repository) -> dict[str, int]:
    """Give jobs back to copies that wait for work nobody will do.

    Pending or copying copies get a ``replicate`` job, corrupt, missing or
    repairing ones a ``repair`` job — unless one is live, or the last one was
    cancelled or is dead.  A dead repair is tried again once another copy of
    the package has been verified since it died (a source may exist now);
    otherwise an operator decides (``preserve jobs retry``).
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
            for replica_id, package_id, job_state, finished_at in rows:
                if job_state == queue.DEAD and kind == kinds.REPAIR:
                    if not _verified_since(s, package_id, replica_id, finished_at):
                        continue
                elif job_state is not None and job_state != queue.SUCCEEDED:
                    continue
                kinds.enqueue_for_replica(s, purpose, replica_id, package_id=package_id,
                                          max_attempts=repo.policy.repair.max_attempts if kind == kinds.REPAIR else None)
                counts[kind] += 1
    return counts


def _verified_since(s, package_id: str, replica_id: int, when: datetime | None) -> bool:
    latest = s.execute(
        select(func.max(Replica.verified_at))
        .where(Replica.package_id == package_id, Replica.id != replica_id, Replica.state == REPLICA_VERIFIED)
    ).scalar_one()
    return latest is not None and (when is None or latest > when)


# --- (d) sweeping -------------------------------------------------------------------


def sweep(repo: Repository, *, agent: str = events.SYSTEM_AGENT, temporary_age: timedelta = STALE_TEMPORARY,
          staging_age: timedelta = STALE_STAGING) -> dict[str, int]:
    """Expire dead workers' leases, remove interrupted writes on nodes and stale staging directories."""
    out = {"leases_expired": expire_leases(repo.catalog, agent=agent), "temporary_removed": 0,
           "staging_removed": 0}
    with repo.catalog.session() as s:
        nodes = s.scalars(select(Node).where(Node.status != NODE_OFFLINE)).all()
    for node in nodes:
        try:
            out["temporary_removed"] += repo.adapter(node).sweep_temporary(temporary_age.total_seconds())
        except PreservationError as e:
            log.warning("could not sweep temporary files on node %s: %s", node.name, e)
    out["staging_removed"] = _sweep_staging(repo, staging_age)
    return out


def _sweep_staging(repo: Repository, age: timedelta) -> int:
    """Staging directories of interrupted ingests (``*.partial``, or bags never registered) and of
    packages preserved since; only entries untouched for ``age``."""
    staging = Path(repo.settings.staging_dir)
    if not staging.is_dir():
        return 0
    cutoff = time.time() - age.total_seconds()
    removed = 0
    for entry in staging.iterdir():
        if not entry.is_dir() or entry.stat().st_mtime > cutoff:
            continue
        package_id = entry.name.removesuffix(".partial")
        if entry.name.endswith(".partial"):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
            continue
        with repo.catalog.session() as s:
            package = s.get(Package, package_id)
            registered = package is not None and package.staging_path == str(entry)
        if not registered:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        else:
            release_staging_if_done(repo.catalog, package_id)
    return removed


# --- (e) proof-of-possession challenges between audits ------------------------------

MAX_CHALLENGES_PER_TICK = 200


def schedule_challenges(repo: Repository, *, now: datetime | None = None,
                        limit: int = MAX_CHALLENGES_PER_TICK) -> dict[str, Any]:
    """Enqueue a challenge for every verified copy not checked for ``challenge_interval_days``.

    A copy counts as checked by its last challenge or its last full audit,
    whichever is later; copies of deaccessioned packages are left alone. Only copies with another verified copy on a node that
    is not offline can be challenged (the answer is checked against it).
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
