"""Re-identification planning: packages with records of an older signature file, within the nodes' read budgets.

When a newer FIDO signature file is installed, every record identified with
another one is due to be identified again
(:func:`preservation.formats.reidentify.reidentify_package`).  This task
queues one ``reidentify`` job per such package, each counted against the
daily read budget of the node its freshest verified copy is on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import PACKAGE_DEACCESSIONED, REPLICA_VERIFIED, Job, Node, Package, Replica, utcnow
from preservation.formats.identify import Signatures, signatures
from preservation.formats.reidentify import read_estimate
from preservation.jobs import kinds
from preservation.package_state import readable_node
from preservation.repository import Repository

BUDGET_SHARE = 0.1
"""The share of a node's daily read budget re-identification may plan in a day (audits keep the rest)."""
MAX_JOBS_PER_TICK = 100


def plan_reidentification(repo: Repository, *, now: datetime | None = None, known: Signatures | None = None,
                          limit: int = MAX_JOBS_PER_TICK) -> dict[str, Any]:
    """Queue a ``reidentify`` job for each package with records of another signature version, within budget.

    A package is read from its most recently verified copy on a readable
    node; what its job will read counts against that node's daily share
    (:data:`BUDGET_SHARE` of its read budget), with what the jobs queued
    since midnight (UTC) already planned.  A package that does not fit
    today waits for a later day; one larger than a whole day's share is
    queued alone on an otherwise unplanned day, so nothing waits forever.
    """
    now = now or utcnow()
    current = (known or signatures()).signature_version
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    audit_budget = repo.policy.audit.read_budget_bytes_per_day
    with repo.catalog.session() as s:
        planned: dict[int, int] = {}
        for (payload,) in s.execute(select(Job.payload).where(Job.kind == kinds.REIDENTIFY,
                                                              Job.created_at >= day_start)):
            node_id, size = payload.get("node_id"), payload.get("bytes")
            if isinstance(node_id, int) and isinstance(size, int):
                planned[node_id] = planned.get(node_id, 0) + size
        # the versions in use first (one pass over their index), then the packages of each older one by the index
        older = [v for (v,) in s.execute(select(FileFormat.signature_version).distinct()) if v != current]
        stale = (select(FileFormat.package_id, func.count().label("files"))
                 .join(Package, Package.id == FileFormat.package_id)
                 .where(FileFormat.signature_version.in_(older), Package.state != PACKAGE_DEACCESSIONED)
                 .group_by(FileFormat.package_id).order_by(FileFormat.package_id))
        live = kinds.packages_with_live_job(s, kinds.REIDENTIFY)
        enqueued, waiting = 0, 0
        for package_id, files in (s.execute(stale) if older else ()):
            if package_id in live:
                continue
            if enqueued >= limit:
                waiting += 1
                continue
            replica = s.scalars(select(Replica).join(Node).where(
                Replica.package_id == package_id, Replica.state == REPLICA_VERIFIED, readable_node())
                .order_by(Replica.verified_at.desc(), Replica.id).limit(1)).first()
            if replica is None:
                waiting += 1
                continue
            sizes = list(s.scalars(select(FileFormat.size).where(FileFormat.package_id == package_id,
                                                                 FileFormat.signature_version.in_(older))))
            cost = read_estimate(sizes)
            share = int((replica.node.read_budget_bytes_per_day or audit_budget) * BUDGET_SHARE)
            used = planned.get(replica.node_id, 0)
            if used + cost > share and used > 0:
                waiting += 1
                continue
            kinds.enqueue_for_package(s, kinds.SCHEDULED_REIDENTIFICATION, package_id, {
                "node_id": replica.node_id, "bytes": cost, "files": files, "signature_version": current})
            planned[replica.node_id] = used + cost
            enqueued += 1
    return {"signature_version": current, "enqueued": enqueued, "waiting": waiting,
            "planned_bytes_today": {str(k): v for k, v in sorted(planned.items())}}

