"""Read-only answers several services share, read through a :class:`~preservation.catalog.reader.Reader`.

The files of a package no copy holds right, who is alive and which nodes answer, the nodes with their usage:
``preserve status`` and ``preserve node list`` read them without SQLAlchemy (a reader on the SQLite file), the
services that hold a session read them through the same code (``Reader.of_session``), so each is written once.
Their queries are defined in :mod:`preservation.read_queries`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from preservation.catalog.reader import Reader
from preservation.catalog.vocabulary import ROLE_SCHEDULER, ROLE_WORKER, utcnow

ALIVE = "alive"
SILENT = "silent"
STOPPED = "stopped"


class LivenessLimits(Protocol):
    """What liveness reads of ``monitoring:`` (MonitoringSettings, or the settings digest of a quick command)."""

    silent_after_seconds: float
    node_unreachable_alert_seconds: float


def iso_seconds(value: datetime | None) -> str | None:
    """A catalog time as reports show it: ISO 8601 to the second (None stays None)."""
    return value.isoformat(timespec="seconds") if value is not None else None


def unrepairable_files(reader: Reader, package_id: str, *, limit: int | None = None) -> dict[str, list[str]]:
    """The package's files that no copy holds right: path -> the nodes whose copy lacks it, paths in order;
    the first ``limit`` paths only, when given."""
    out: dict[str, list[str]] = {}
    for path, node in reader.rows("package.unrepairable_files", package_id=package_id):
        if path not in out and limit is not None and len(out) >= limit:
            break
        out.setdefault(path, []).append(node)
    return out


def process_state(row: Any, now: datetime, settings: LivenessLimits) -> str:
    """Alive, silent (no heartbeat for ``silent_after_seconds`` and never stopped) or stopped."""
    if row.stopped_at is not None:
        return STOPPED
    if now - row.last_seen_at > timedelta(seconds=settings.silent_after_seconds):
        return SILENT
    return ALIVE


def processes(reader: Reader, settings: LivenessLimits, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every known worker and scheduler: alive ones first, then silent, then stopped; newest first in each."""
    now = now or utcnow()
    order = {ALIVE: 0, SILENT: 1, STOPPED: 2}
    out = []
    for row in reader.rows("liveness.heartbeats"):
        state = process_state(row, now, settings)
        out.append({
            "role": row.role, "name": row.name, "host": row.host, "pid": row.pid, "state": state,
            "started_at": iso_seconds(row.started_at), "last_seen_at": iso_seconds(row.last_seen_at),
            "silent_seconds": round((now - row.last_seen_at).total_seconds(), 1) if state == SILENT else None,
            "stopped_at": iso_seconds(row.stopped_at), "doing": row.doing or {},
        })
    out.sort(key=lambda p: order[p["state"]])
    return out


def node_reachability(reader: Reader, settings: LivenessLimits, now: datetime | None = None
                      ) -> dict[int, dict[str, Any]]:
    """The last probe of each node by node id: reachable, unreachable since when, and whether that is past
    the alert threshold (``unreachable``: such a node is shown as unreachable, not as its status)."""
    now = now or utcnow()
    threshold = timedelta(seconds=settings.node_unreachable_alert_seconds)
    out = {}
    for probe in reader.rows("liveness.probes"):
        since = probe.unreachable_since
        out[probe.node_id] = {
            "reachable": probe.reachable, "checked_at": iso_seconds(probe.checked_at),
            "unreachable_since": iso_seconds(since), "error": probe.error,
            "unreachable": (not probe.reachable and since is not None and now - since >= threshold),
        }
    return out


def liveness_report(reader: Reader, settings: LivenessLimits, now: datetime | None = None,
                    nodes: dict[int, str] | None = None) -> dict[str, Any]:
    """Who is alive, who went silent, and which nodes do not answer (for ``preserve status``); ``nodes``: the
    node names by id when the caller has read them already."""
    now = now or utcnow()
    procs = processes(reader, settings, now)
    reach = node_reachability(reader, settings, now)
    names = nodes if nodes is not None else {n.id: n.name for n in reader.rows("nodes.by_name")}
    counts = {state: sum(1 for p in procs if p["state"] == state) for state in (ALIVE, SILENT, STOPPED)}
    return {
        "processes": procs, "counts": counts,
        "scheduler_alive": any(p["role"] == ROLE_SCHEDULER and p["state"] == ALIVE for p in procs),
        "workers_alive": sum(1 for p in procs if p["role"] == ROLE_WORKER and p["state"] == ALIVE),
        "nodes": {names[k]: v for k, v in reach.items() if k in names},
        "silent_after_seconds": settings.silent_after_seconds,
        "node_unreachable_alert_seconds": settings.node_unreachable_alert_seconds,
    }


def node_dict(node: Any, replicas: int = 0, used: int = 0) -> dict[str, Any]:
    """A node as commands and the API show it (a ``Node`` or a row of ``nodes.by_name``)."""
    return {
        "name": node.name,
        "org_type": node.org_type,
        "organisation": node.organisation,
        "region": node.region,
        "uri": node.uri,
        "status": node.status,
        "capacity_bytes": node.capacity_bytes,
        "read_budget_bytes_per_day": node.read_budget_bytes_per_day,
        "replicas": replicas,
        "used_bytes": used,
    }


def list_nodes(reader: Reader) -> list[dict[str, Any]]:
    """Every node by name, with how many copies it holds and their bytes."""
    usage = {row.node_id: (row.replicas, row.bytes or 0) for row in reader.rows("nodes.usage")}
    return [node_dict(n, *usage.get(n.id, (0, 0))) for n in reader.rows("nodes.by_name")]
