"""`preserve status`: packages, copies, nodes, audit coverage and jobs."""

from __future__ import annotations

import click

from preservation.status import StatusInputs, report as build_status
from preservation.units import human_bytes

from .common import TIME, emit_json, json_option, quick_catalog, state, table


def _versions(found: dict) -> None:
    """Versioned packages (docs/versions.md): how many versions, and what each node did not store again."""
    if not found["versions"]:
        return
    table(f"versions: {found['versions']} of {found['versioned_packages']} versioned package(s)",
          ["package", "versions"], [[p["package_id"], p["versions"]] for p in found["per_package"]])
    table("bytes saved by versions (referenced, not stored again)", ["node", "saved"],
          [[node, human_bytes(saved)] for node, saved in found["bytes_saved_per_node"].items()])


def _node_status(node: dict) -> str:
    """A node unreachable past the alert threshold shows as UNREACHABLE, never as its catalog status alone."""
    reach = node.get("reachability") or {}
    if reach.get("unreachable"):
        return f"UNREACHABLE since {reach['unreachable_since']} ({node['status']})"
    if reach.get("reachable") is False:
        return f"{node['status']}, not answering since {reach['unreachable_since']}"
    return node["status"]


def _liveness(live: dict) -> None:
    """Workers and schedulers: alive, silent (killed or hung), stopped; and what each is doing."""
    def doing(p: dict) -> str:
        if p["role"] == "scheduler":
            return "active" if (p["doing"] or {}).get("active") else "standby"
        jobs = (p["doing"] or {}).get("jobs") or []
        return ", ".join(f"job {j.get('job')} {j.get('kind') or ''} {(j.get('package') or '')[:8]}".strip()
                         for j in jobs[:5]) or "idle"

    rows = [[p["role"], p["name"], p["host"], p["pid"], p["state"].upper() if p["state"] == "silent" else p["state"],
             p["started_at"], p["last_seen_at"], doing(p) if p["state"] == "alive" else ""]
            for p in live["processes"]]
    table(f"processes (silent after {live['silent_after_seconds']:g}s without a heartbeat)",
          ["role", "name", "host", "pid", "state", "since", "last seen", "doing"], rows)
    if not live["scheduler_alive"]:
        click.secho("no scheduler is alive: nothing plans audits or repairs (start `preserve scheduler`)",
                    fg="red", err=True)
    if not live["workers_alive"]:
        click.secho("no worker is alive: queued jobs wait (start `preserve worker`)", fg="red", err=True)
    silent = [p for p in live["processes"] if p["state"] == "silent"]
    if silent:
        click.secho(f"{len(silent)} process(es) went silent without stopping: killed, hung or host lost",
                    fg="red", err=True)


@click.command("status")
@click.option("--since", type=TIME, default="7d", show_default=True, metavar="TIME",
              help="Start of the recent-incidents window (ISO 8601 or an age: 24h, 30d).")
@json_option
def status(since, as_json: bool) -> None:
    """Show what is preserved, where, how recently it was verified, and the recent incidents."""
    quick = state().quick  # the settings and the catalog without SQLAlchemy or pydantic (preservation.quick)
    inputs = StatusInputs(catalog=quick.catalog_display, policy=quick.policy_label,
                          audit_interval_days=quick.audit_interval_days, monitoring=quick.monitoring)
    with quick_catalog() as reader:
        report = build_status(reader, inputs, incidents_since=since)
    if as_json:
        emit_json(report)
        return
    table("packages", ["state", "count", "versions", "bytes"],
          [[k, v["count"], v["versions"], human_bytes(v["bytes"])] for k, v in report["packages"].items()
           if v["count"]])
    table("replicas", ["state", "count"], [[k, v] for k, v in report["replicas"].items() if v])
    table(f"nodes (audit interval {report['audit_interval_days']} days)",
          ["node", "type", "region", "status", "replicas", "bytes", "verified", "verified in interval",
           "oldest verified", "next audit"],
          [[n["name"], n["org_type"], n["region"], _node_status(n), n["replicas"], human_bytes(n["bytes"]),
            n["verified"], f"{n['audit_coverage']:.0%}", n["oldest_verified"], n["next_audit"]]
           for n in report["nodes"]])
    table("jobs", ["state", "count"], [[k, v] for k, v in report["jobs"].items() if v])
    _liveness(report["liveness"])
    _versions(report["versions"])
    if report["damaged_packages"]:
        table("DAMAGED packages: no verified copy of some files is left", ["package", "name", "files lost"],
              [[p["package_id"], p["name"], p["unrepairable_files"]] for p in report["damaged_packages"]])
        lost = [[p["package_id"][:8], f["path"], ", ".join(f["nodes"])]
                for p in report["damaged_packages"] for f in p["unrepairable"]]
        if lost:
            table("files without any verified copy (`preserve package show`; re-supply: `preserve repair --from-file`)",
                  ["package", "file", "copies lacking it"], lost)
    if report["dead_job_list"]:
        table("dead jobs", ["id", "kind", "package", "last error"],
              [[j["id"], j["kind"], j["package_id"], (j["last_error"] or "")[:100]] for j in report["dead_job_list"]])
    if report["locked_files"]["locked"]:
        locked = report["locked_files"]
        click.secho(f"{locked['locked']} file(s) encrypted or DRM-locked ({locked['encrypted']} encrypted, "
                    f"{locked['drm']} DRM): see `preserve formats report`", fg="yellow", err=True)
    _incidents(report["incidents"])
    if report["dead_jobs"]:
        click.secho(f"{report['dead_jobs']} dead job(s): see `preserve jobs list --state dead`", fg="red", err=True)


def _incidents(found: dict) -> None:
    table(f"recent incidents since {found['since']}", ["incident", "count"],
          [["damage found (copies corrupt or missing)", found["damage_found"]], ["copies repaired", found["repaired"]],
           ["unrepairable (no verified source)", found["unrepairable"]], ["repairs failed", found["repair_failed"]],
           ["jobs dead", found["dead_jobs"]], ["nodes unreachable", len(found["nodes_unreachable"])]])
    if found["nodes_unreachable"]:
        table("nodes unreachable", ["node", "since", "last", "failed reads"],
              [[n["node"], n["since"], n["last"], n["failures"]] for n in found["nodes_unreachable"]])
    if found["recent"]:
        table("latest incidents (`preserve events list --outcome failure --since …`)",
              ["event", "time", "incident", "node", "package", "file", "code", "reason"],
              [[e["seq"], e["occurred_at"], e["incident"], e["node"], (e["package_id"] or "")[:8], e["path"],
                e["code"], (e["reason"] or "")[:100]] for e in found["recent"]])
