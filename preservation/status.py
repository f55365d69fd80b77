"""The status report: what is preserved, where, and how recently it was verified.

Every figure comes from aggregate queries over packages, replicas and jobs;
nothing here scans the file table, so status stays fast at 10^7 files.  The
queries (defined in :mod:`preservation.read_queries`) run through a
:class:`~preservation.catalog.reader.Reader`, so ``preserve status`` reads a
SQLite catalog without importing SQLAlchemy (:mod:`preservation.quick`), and
:func:`status` reads any catalog through a session with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from preservation.catalog.reader import Reader
from preservation.catalog.reads import LivenessLimits, iso_seconds, liveness_report, unrepairable_files
from preservation.catalog.vocabulary import (
    DEAD,
    FIXITY_CHECK,
    JOB_STATES,
    PACKAGE_STATES,
    REPAIR,
    REPLICA_STATES,
    utcnow,
)

if TYPE_CHECKING:  # status() is handed a repository; report() needs neither it nor SQLAlchemy
    from preservation.repository import Repository

LISTED = 50  # damaged packages and dead jobs named in the report (the counts are complete; read_queries uses it)
UNREPAIRABLE_LISTED = 10  # unrepairable files named per damaged package (`preserve package show` names them all)


INCIDENT_WINDOW = timedelta(days=7)
INCIDENTS_LISTED = 20
DAMAGE_STATES = ("corrupt", "missing")


@dataclass(frozen=True)
class StatusInputs:
    """What the report takes from the settings and the policy besides the catalog."""

    catalog: str  # the catalog's URL as shown (no password)
    policy: str  # the policy's label, name@version
    audit_interval_days: float
    monitoring: LivenessLimits


def incidents(reader: Reader, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """What went wrong (and was put right) since ``since``: from the event log and the dead jobs.

    ``damage_found``: audits and challenges that found a copy corrupt or missing; ``repaired``: copies repaired;
    ``unrepairable``: repairs that found no verified source; ``repair_failed``: other failed repairs;
    ``dead_jobs``: jobs that died; ``nodes_unreachable``: nodes whose copies could not be read, since when.
    Only failure events are read one by one (few); successes are counted in the query.
    """
    window = {"since": since, "until": until}
    repaired = reader.scalar("incidents.repaired", **window)
    counts = {"damage_found": 0, "unrepairable": 0, "repair_failed": 0}
    unreachable: dict[str, dict[str, Any]] = {}
    recent: list[dict[str, Any]] = []
    for ev in reader.rows("incidents.failures", **window):
        detail = ev.detail if isinstance(ev.detail, dict) else {}
        kind = _incident_kind(ev.event_type, detail)
        if kind == "node_unreachable" and ev.node_name:
            seen = unreachable.setdefault(ev.node_name, {"node": ev.node_name, "since": iso_seconds(ev.occurred_at),
                                                         "last": iso_seconds(ev.occurred_at), "failures": 0})
            seen["since"] = iso_seconds(ev.occurred_at)  # newest first: the last one seen is the earliest
            seen["failures"] += 1
        if kind in counts:
            counts[kind] += 1
        if kind and len(recent) < INCIDENTS_LISTED:
            findings = detail.get("findings") or []
            first = findings[0] if findings and isinstance(findings[0], dict) else {}
            paths = detail.get("paths") or []
            recent.append({"seq": ev.seq, "occurred_at": iso_seconds(ev.occurred_at), "incident": kind,
                           "event_type": ev.event_type, "node": ev.node_name, "package_id": ev.package_id,
                           "path": first.get("path") or (paths[0] if paths else None),
                           "code": first.get("code"),
                           "reason": first.get("message") or detail.get("reason") or detail.get("state")})
    dead = reader.scalar("incidents.dead_jobs", **window)
    return {"since": iso_seconds(since), "until": iso_seconds(until), **counts, "repaired": int(repaired or 0),
            "dead_jobs": int(dead or 0), "nodes_unreachable": sorted(unreachable.values(), key=lambda n: n["node"]),
            "recent": recent}


def _incident_kind(event_type: str, detail: dict[str, Any]) -> str | None:
    """Which incident a failure event is: damage found, a node that did not answer, a repair that failed."""
    if event_type == FIXITY_CHECK:
        if detail.get("check") == "proof of possession":  # a challenge: a finding is about the bytes
            return "damage_found" if detail.get("finding") else "node_unreachable"
        if detail.get("state") in DAMAGE_STATES:
            return "damage_found"
        return "node_unreachable"  # the audit could not read the copy: it is suspect, not damaged
    if event_type == REPAIR:
        return "unrepairable" if "files_without_verified_copy" in detail or "paths" in detail else "repair_failed"
    return None


def _lost_files(reader: Reader, package_id: str) -> dict[str, Any]:
    """A damaged package's files that no copy holds right (the first few, how many), the copies lacking each."""
    lost = unrepairable_files(reader, package_id, limit=UNREPAIRABLE_LISTED)
    total = reader.scalar("status.unrepairable_count", package_id=package_id)
    return {"unrepairable_files": int(total or 0),
            "unrepairable": [{"path": path, "nodes": nodes} for path, nodes in lost.items()]}


def _versions(reader: Reader, listed: int = LISTED) -> dict[str, Any]:
    """The versions per package and the bytes each node did not store again (docs/versions.md).

    Reads one row per version (never the file tables): a version's ``referenced_bytes`` are bytes its copies
    reference instead of storing, on every node that holds a copy of it.
    """
    per_lineage: dict[str, int] = {}
    saved: dict[str, int] = {}
    rows = reader.rows("status.versions")
    holders: dict[str, list[str]] = {}
    if rows:
        for package_id, node in reader.rows("status.version_holders"):
            holders.setdefault(package_id, []).append(node)
    for lineage, package_id, changes in rows:
        per_lineage[lineage] = per_lineage.get(lineage, 0) + 1
        referenced = int((changes or {}).get("referenced_bytes") or 0)
        for node in holders.get(package_id, ()):
            saved[node] = saved.get(node, 0) + referenced
    most = sorted(per_lineage.items(), key=lambda kv: (-kv[1], kv[0]))[:listed]
    return {"versioned_packages": len(per_lineage), "versions": sum(per_lineage.values()),
            "per_package": [{"package_id": k, "versions": v} for k, v in most],
            "bytes_saved_per_node": dict(sorted(saved.items()))}


def status(repo: Repository, *, incidents_since: datetime | None = None) -> dict[str, Any]:
    """The report ``preserve status`` shows; ``incidents_since`` (default a week ago) starts its incident window."""
    inputs = StatusInputs(catalog=repo.catalog.display_url, policy=repo.policy.label,
                          audit_interval_days=repo.policy.audit.interval_days, monitoring=repo.settings.monitoring)
    with repo.catalog.session() as s:
        return report(Reader.of_session(s), inputs, incidents_since=incidents_since)


def report(reader: Reader, inputs: StatusInputs, *, incidents_since: datetime | None = None) -> dict[str, Any]:
    """The status report read through ``reader`` (one transaction: every figure from the same moment)."""
    now = utcnow()
    window_start = now - timedelta(days=inputs.audit_interval_days)
    # a package delivered in versions counts once per state its versions are in, with the size of its
    # newest version in that state; "versions" counts every version (catalog.lineages)
    packages = {state: {"count": 0, "bytes": 0, "versions": 0} for state in PACKAGE_STATES}
    for state, count, size in reader.rows("status.packages_by_state"):
        packages[state].update(count=count, bytes=int(size))
    for state, count in reader.rows("status.versions_by_state"):
        packages[state]["versions"] = count
    replicas = {state: 0 for state in REPLICA_STATES}
    for state, count in reader.rows("status.replicas_by_state"):
        replicas[state] = count
    per_node = {row.node_id: row for row in reader.rows("status.per_node", window_start=window_start)}
    node_rows = reader.rows("nodes.by_name")
    live = liveness_report(reader, inputs.monitoring, now, nodes={n.id: n.name for n in node_rows})
    nodes = []
    for n in node_rows:
        row = per_node.get(n.id)
        count = row.replicas if row else 0
        nodes.append({
            "name": n.name, "org_type": n.org_type, "region": n.region, "status": n.status,
            "replicas": count,
            "bytes": int(row.bytes) if row else 0,
            "verified": int(row.verified or 0) if row else 0,
            "audit_coverage": round((row.verified_in_interval or 0) / count, 4) if count else 1.0,
            "oldest_verified": iso_seconds(row.oldest_verified) if row else None,
            "next_audit": iso_seconds(row.next_audit) if row else None,
            "reachability": live["nodes"].get(n.name),
        })
    jobs = {state: 0 for state in JOB_STATES}
    for state, count in reader.rows("status.jobs_by_state"):
        jobs[state] = count
    oldest = reader.scalar("status.oldest_verified")
    locked = reader.one("status.locked_files")  # encrypted or DRM-locked: held, but they may not open later
    damaged = [{"package_id": pid, "name": name, **_lost_files(reader, pid)}
               for pid, name in reader.rows("status.damaged_packages")]
    dead = [
        {"id": j.id, "kind": j.kind, "package_id": j.package_id,
         "last_error": j.last_error.splitlines()[0] if j.last_error else None}
        for j in reader.rows("status.dead_jobs")
    ]
    return {
        "generated_at": iso_seconds(now),
        "catalog": inputs.catalog,
        "policy": inputs.policy,
        "liveness": live,
        "audit_interval_days": inputs.audit_interval_days,
        "packages": packages,
        "replicas": replicas,
        "nodes": nodes,
        "jobs": jobs,
        "dead_jobs": jobs.get(DEAD, 0),
        "dead_job_list": dead,
        "damaged_packages": damaged,
        "locked_files": {"encrypted": int(locked.encrypted), "drm": int(locked.drm), "locked": int(locked.locked)},
        "oldest_verification": iso_seconds(oldest),
        "versions": _versions(reader),
        "incidents": incidents(reader, incidents_since if incidents_since is not None else now - INCIDENT_WINDOW),
    }
