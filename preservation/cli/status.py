"""`preserve status`: packages, copies, nodes, audit coverage and jobs."""

from __future__ import annotations

import click

from preservation.status import status as build_status
from preservation.units import human_bytes

from .common import emit_json, json_option, repo, table


def _versions(found: dict) -> None:
    """Versioned packages (docs/versions.md): how many versions, and what each node did not store again."""
    if not found["versions"]:
        return
    table(f"versions: {found['versions']} of {found['versioned_packages']} versioned package(s)",
          ["package", "versions"], [[p["package_id"], p["versions"]] for p in found["per_package"]])
    table("bytes saved by versions (referenced, not stored again)", ["node", "saved"],
          [[node, human_bytes(saved)] for node, saved in found["bytes_saved_per_node"].items()])


@click.command("status")
@json_option
def status(as_json: bool) -> None:
    """Show what is preserved, where, and how recently it was verified."""
    report = build_status(repo())
    if as_json:
        emit_json(report)
        return
    table("packages", ["state", "count", "bytes"],
          [[k, v["count"], human_bytes(v["bytes"])] for k, v in report["packages"].items() if v["count"]])
    table("replicas", ["state", "count"], [[k, v] for k, v in report["replicas"].items() if v])
    table(f"nodes (audit interval {report['audit_interval_days']} days)",
          ["node", "type", "region", "status", "replicas", "bytes", "verified", "verified in interval",
           "oldest verified", "next audit"],
          [[n["name"], n["org_type"], n["region"], n["status"], n["replicas"], human_bytes(n["bytes"]),
            n["verified"], f"{n['audit_coverage']:.0%}", n["oldest_verified"], n["next_audit"]]
           for n in report["nodes"]])
    table("jobs", ["state", "count"], [[k, v] for k, v in report["jobs"].items() if v])
    _versions(report["versions"])
    if report["damaged_packages"]:
        table("DAMAGED packages: no verified copy of some files is left", ["package", "name"],
              [[p["package_id"], p["name"]] for p in report["damaged_packages"]])
    if report["dead_job_list"]:
        table("dead jobs", ["id", "kind", "package", "last error"],
              [[j["id"], j["kind"], j["package_id"], (j["last_error"] or "")[:100]] for j in report["dead_job_list"]])
    if report["locked_files"]["locked"]:
        locked = report["locked_files"]
        click.secho(f"{locked['locked']} file(s) encrypted or DRM-locked ({locked['encrypted']} encrypted, "
                    f"{locked['drm']} DRM): see `preserve formats report`", fg="yellow", err=True)
    if report["dead_jobs"]:
        click.secho(f"{report['dead_jobs']} dead job(s): see `preserve jobs list --state dead`", fg="red", err=True)
