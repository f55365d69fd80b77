"""The status report: what is preserved, where, and how recently it was verified.

Every figure comes from aggregate queries over packages, replicas and jobs;
nothing here scans the file table, so status stays fast at 10^7 files.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, select

from preservation.catalog.models import (
    PACKAGE_DAMAGED,
    PACKAGE_STATES,
    REPLICA_STATES,
    REPLICA_VERIFIED,
    Job,
    Node,
    Package,
    Replica,
    utcnow,
)
from preservation.formats.report import locked_files
from preservation.jobs.queue import DEAD, JOB_STATES
from preservation.repository import Repository
from preservation.versions import storage_summary

LISTED = 50  # damaged packages and dead jobs named in the report (the counts are complete)


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def status(repo: Repository) -> dict[str, Any]:
    now = utcnow()
    interval = timedelta(days=repo.policy.audit.interval_days)
    window_start = now - interval
    with repo.catalog.session() as s:
        packages = {state: {"count": 0, "bytes": 0} for state in PACKAGE_STATES}
        for state, count, size in s.execute(
            select(Package.state, func.count(), func.coalesce(func.sum(Package.total_bytes), 0)).group_by(Package.state)
        ):
            packages[state] = {"count": count, "bytes": int(size)}
        replicas = {state: 0 for state in REPLICA_STATES}
        for state, count in s.execute(select(Replica.state, func.count()).group_by(Replica.state)):
            replicas[state] = count
        in_window = case((and_(Replica.state == REPLICA_VERIFIED, Replica.verified_at >= window_start), 1), else_=0)
        is_verified = case((Replica.state == REPLICA_VERIFIED, 1), else_=0)
        per_node = {
            row.node_id: row
            for row in s.execute(
                select(
                    Replica.node_id,
                    func.count().label("replicas"),
                    func.coalesce(func.sum(Replica.bytes), 0).label("bytes"),
                    func.sum(is_verified).label("verified"),
                    func.sum(in_window).label("verified_in_interval"),
                    func.min(Replica.verified_at).label("oldest_verified"),
                    func.min(Replica.next_audit_at).label("next_audit"),
                ).group_by(Replica.node_id)
            )
        }
        nodes = []
        for n in s.scalars(select(Node).order_by(Node.name)):
            row = per_node.get(n.id)
            count = row.replicas if row else 0
            nodes.append({
                "name": n.name, "org_type": n.org_type, "region": n.region, "status": n.status,
                "replicas": count,
                "bytes": int(row.bytes) if row else 0,
                "verified": int(row.verified or 0) if row else 0,
                "audit_coverage": round((row.verified_in_interval or 0) / count, 4) if count else 1.0,
                "oldest_verified": _iso(row.oldest_verified) if row else None,
                "next_audit": _iso(row.next_audit) if row else None,
            })
        jobs = {state: 0 for state in JOB_STATES}
        for state, count in s.execute(select(Job.state, func.count()).group_by(Job.state)):
            jobs[state] = count
        oldest = s.execute(select(func.min(Replica.verified_at))).scalar_one()
        locked = locked_files(s)  # encrypted or DRM-locked: held, but they may not open later
        versioned = storage_summary(s)  # versions per package, bytes each node did not store again
        damaged = [
            {"package_id": pid, "name": name}
            for pid, name in s.execute(
                select(Package.id, Package.name).where(Package.state == PACKAGE_DAMAGED)
                .order_by(Package.created_at).limit(LISTED)
            )
        ]
        dead = [
            {"id": j.id, "kind": j.kind, "package_id": j.package_id,
             "last_error": j.last_error.splitlines()[0] if j.last_error else None}
            for j in s.scalars(select(Job).where(Job.state == DEAD).order_by(Job.id.desc()).limit(LISTED))
        ]
    return {
        "generated_at": _iso(now),
        "catalog": repo.catalog.display_url,
        "policy": repo.policy.label,
        "audit_interval_days": repo.policy.audit.interval_days,
        "packages": packages,
        "replicas": replicas,
        "nodes": nodes,
        "jobs": jobs,
        "dead_jobs": jobs.get(DEAD, 0),
        "dead_job_list": dead,
        "damaged_packages": damaged,
        "locked_files": locked,
        "oldest_verification": _iso(oldest),
        "versions": versioned,
    }
