"""The status report: what is preserved, where, and how recently it was verified.

Every figure comes from aggregate queries over packages, replicas and jobs;
nothing here scans the file table, so status stays fast at 10^7 files.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from preservation import events
from preservation.catalog import lineages
from preservation.catalog.models import (
    PACKAGE_DAMAGED,
    PACKAGE_STATES,
    REPLICA_STATES,
    REPLICA_VERIFIED,
    Event,
    Job,
    Node,
    Package,
    Replica,
    UnrepairableFile,
    utcnow,
)
from preservation.formats.report import locked_files
from preservation.jobs.queue import DEAD, JOB_STATES
from preservation.liveness import liveness_report
from preservation.package_state import unrepairable_files, verified_within
from preservation.repository import Repository
from preservation.versions import storage_summary

LISTED = 50  # damaged packages and dead jobs named in the report (the counts are complete)
UNREPAIRABLE_LISTED = 10  # unrepairable files named per damaged package (`preserve package show` names them all)


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


INCIDENT_WINDOW = timedelta(days=7)
INCIDENTS_LISTED = 20
DAMAGE_STATES = ("corrupt", "missing")


def incidents(session, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """What went wrong (and was put right) since ``since``: from the event log and the dead jobs.

    ``damage_found``: audits and challenges that found a copy corrupt or missing; ``repaired``: copies repaired;
    ``unrepairable``: repairs that found no verified source; ``repair_failed``: other failed repairs;
    ``dead_jobs``: jobs that died; ``nodes_unreachable``: nodes whose copies could not be read, since when.
    Only failure events are read one by one (few); successes are counted in the query.
    """
    window = [Event.occurred_at >= since] + ([Event.occurred_at < until] if until is not None else [])
    repaired = session.scalar(select(func.count()).select_from(Event).where(
        Event.event_type == events.REPAIR, Event.outcome == events.SUCCESS, *window))
    counts = {"damage_found": 0, "unrepairable": 0, "repair_failed": 0}
    unreachable: dict[str, dict[str, Any]] = {}
    recent: list[dict[str, Any]] = []
    failures = select(Event).where(Event.outcome == events.FAILURE, *window).order_by(Event.seq.desc())
    for ev in session.scalars(failures.execution_options(yield_per=500)):
        detail = ev.detail if isinstance(ev.detail, dict) else {}
        kind = _incident_kind(ev.event_type, detail)
        if kind == "node_unreachable" and ev.node_name:
            seen = unreachable.setdefault(ev.node_name, {"node": ev.node_name, "since": _iso(ev.occurred_at),
                                                         "last": _iso(ev.occurred_at), "failures": 0})
            seen["since"] = _iso(ev.occurred_at)  # newest first: the last one seen is the earliest
            seen["failures"] += 1
        if kind in counts:
            counts[kind] += 1
        if kind and len(recent) < INCIDENTS_LISTED:
            findings = detail.get("findings") or []
            first = findings[0] if findings and isinstance(findings[0], dict) else {}
            paths = detail.get("paths") or []
            recent.append({"seq": ev.seq, "occurred_at": _iso(ev.occurred_at), "incident": kind,
                           "event_type": ev.event_type, "node": ev.node_name, "package_id": ev.package_id,
                           "path": first.get("path") or (paths[0] if paths else None),
                           "code": first.get("code"),
                           "reason": first.get("message") or detail.get("reason") or detail.get("state")})
    dead_since = [Job.state == DEAD, Job.finished_at >= since] + ([Job.finished_at < until] if until else [])
    dead = session.scalar(select(func.count()).select_from(Job).where(*dead_since))
    return {"since": _iso(since), "until": _iso(until), **counts, "repaired": int(repaired or 0),
            "dead_jobs": int(dead or 0), "nodes_unreachable": sorted(unreachable.values(), key=lambda n: n["node"]),
            "recent": recent}


def _incident_kind(event_type: str, detail: dict[str, Any]) -> str | None:
    """Which incident a failure event is: damage found, a node that did not answer, a repair that failed."""
    if event_type == events.FIXITY_CHECK:
        if detail.get("check") == "proof of possession":  # a challenge: a finding is about the bytes
            return "damage_found" if detail.get("finding") else "node_unreachable"
        if detail.get("state") in DAMAGE_STATES:
            return "damage_found"
        return "node_unreachable"  # the audit could not read the copy: it is suspect, not damaged
    if event_type == events.REPAIR:
        return "unrepairable" if "files_without_verified_copy" in detail or "paths" in detail else "repair_failed"
    return None


def _lost_files(session, package_id: str) -> dict[str, Any]:
    """A damaged package's files that no copy holds right (the first few, how many), the copies lacking each."""
    lost = unrepairable_files(session, package_id, limit=UNREPAIRABLE_LISTED)
    total = session.scalar(select(func.count(func.distinct(UnrepairableFile.path)))
                           .where(UnrepairableFile.package_id == package_id))
    return {"unrepairable_files": int(total or 0),
            "unrepairable": [{"path": path, "nodes": nodes} for path, nodes in lost.items()]}


def status(repo: Repository, *, incidents_since: datetime | None = None) -> dict[str, Any]:
    """The report ``preserve status`` shows; ``incidents_since`` (default a week ago) starts its incident window."""
    now = utcnow()
    interval = timedelta(days=repo.policy.audit.interval_days)
    window_start = now - interval
    with repo.catalog.session() as s:
        # a package delivered in versions counts once per state its versions are in, with the size of its
        # newest version in that state; "versions" counts every version (catalog.lineages)
        packages = {state: {"count": 0, "bytes": 0, "versions": 0} for state in PACKAGE_STATES}
        heads = lineages.heads(by=[Package.state])
        for state, count, size in s.execute(
            select(Package.state, func.count(), func.coalesce(func.sum(Package.total_bytes), 0))
            .join(heads, heads.c.id == Package.id).group_by(Package.state)
        ):
            packages[state].update(count=count, bytes=int(size))
        for state, count in s.execute(select(Package.state, func.count()).group_by(Package.state)):
            packages[state]["versions"] = count
        replicas = {state: 0 for state in REPLICA_STATES}
        for state, count in s.execute(select(Replica.state, func.count()).group_by(Replica.state)):
            replicas[state] = count
        in_window = case((verified_within(window_start), 1), else_=0)
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
        live = liveness_report(s, repo.settings.monitoring, now)  # who is alive, which nodes answer
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
                "reachability": live["nodes"].get(n.name),
            })
        jobs = {state: 0 for state in JOB_STATES}
        for state, count in s.execute(select(Job.state, func.count()).group_by(Job.state)):
            jobs[state] = count
        oldest = s.execute(select(func.min(Replica.verified_at))).scalar_one()
        locked = locked_files(s)  # encrypted or DRM-locked: held, but they may not open later
        versioned = storage_summary(s)  # versions per package, bytes each node did not store again
        damaged = [
            {"package_id": pid, "name": name, **_lost_files(s, pid)}
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
        recent_incidents = incidents(s, incidents_since if incidents_since is not None else now - INCIDENT_WINDOW)
    return {
        "generated_at": _iso(now),
        "catalog": repo.catalog.display_url,
        "policy": repo.policy.label,
        "liveness": live,
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
        "incidents": recent_incidents,
    }
