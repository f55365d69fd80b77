"""Re-placement: new copies for packages whose copies on active nodes no longer satisfy the policy."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select

from preservation import events
from preservation.catalog.models import (
    NODE_ACTIVE,
    PACKAGE_DEACCESSIONED,
    PACKAGE_PRESERVED,
    REPLICA_MISSING,
    REPLICA_PENDING,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
)
from preservation.errors import PlacementError
from preservation.jobs import kinds
from preservation.package_state import update_package_state
from preservation.placement import Candidate, choose_nodes, unmet_requirements
from preservation.repository import Repository
from preservation.versions import referenced_packages

log = logging.getLogger("preserve.upkeep")

PACKAGE_BATCH = 500
PLACED = "placed"


def place_missing_copies(repo: Repository, *, agent: str = events.SYSTEM_AGENT) -> dict[str, Any]:
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
            needed = referenced_packages(s, package_id)
            if needed:  # a version's fetch.txt points at earlier versions' bytes on the same node
                holding = set(s.scalars(
                    select(Replica.node_id).where(Replica.package_id.in_(needed), Replica.state != REPLICA_MISSING)
                    .group_by(Replica.node_id).having(func.count(func.distinct(Replica.package_id)) == len(needed))))
                candidates = [c for c in candidates if c.node.id in holding]  # none yet: placed in a later round
            chosen = choose_nodes(policy.replication, candidates, package.total_bytes, existing=prospective)
            for node in chosen:
                replica = Replica(package_id=package_id, node_id=node.id, state=REPLICA_PENDING)
                s.add(replica)
                s.flush()
                events.record_event(
                    s, events.REPLICATION, PLACED, agent=agent, package_id=package_id, replica_id=replica.id,
                    node_name=node.name, policy=policy.label,
                    detail={"state": REPLICA_PENDING,
                            "reason": "; ".join(unmet_requirements(policy.replication, prospective)),
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
