"""`preserve package …`: list packages with filters and pages, show one (by id or a short prefix)."""

from __future__ import annotations

import json

import click

from preservation.catalog.models import PACKAGE_STATES
from preservation.packages import MAX_PAGE, list_packages, show_package
from preservation.units import human_bytes

from .common import PACKAGE_ID, console, emit_json, json_option, repo, say_plain, table


@click.group("package")
def package() -> None:
    """Preserved packages: list them, show one."""


@package.command("list")
@click.option("--state", type=click.Choice(PACKAGE_STATES), default=None, help="Only packages in this state.")
@click.option("--collection", default=None, help="Only this collection (its key).")
@click.option("--node", default=None, help="Only packages with a copy on this node.")
@click.option("--name", default=None, help="Only packages whose name contains this text.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True, help="Packages per page.")
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="Packages to skip.")
@json_option
def list_(state, collection, node, name, limit, offset, as_json) -> None:
    """List packages, oldest first, a page at a time (the short ids are accepted wherever an id is).

    A package delivered in versions is one row, shown by its newest version that matches the filters;
    `preserve version list ID` lists its versions."""
    page = list_packages(repo(), state=state, collection=collection, node=node, name=name, limit=limit,
                         offset=offset)
    if as_json:
        emit_json(page)
        return
    table(f"packages {offset + 1 if page['count'] else offset}-{offset + page['count']} of {page['total']}",
          ["id", "name", "collection", "state", "files", "size", "copies", "versions"],
          [[p["short_id"], p["name"], p["collection"], p["state"], p["files"], human_bytes(p["total_bytes"]),
            f"{p['verified_copies']}/{p['copies']} verified", _versions(p)] for p in page["packages"]])
    if offset + page["count"] < page["total"]:
        say_plain(console(), f"more: --offset {offset + page['count']}")


def _versions(p: dict) -> str:
    """``1`` for a package never versioned; else how many, and which one the row shows when not the latest."""
    if p["versions"] == 1:
        return "1"
    shown = "" if p["version"] == p["latest_version"] else f" (row: v{p['version']})"
    return f"{p['versions']}, latest v{p['latest_version']}{shown}"


@package.command("show")
@click.argument("package_id", type=PACKAGE_ID)
@json_option
def show(package_id: str, as_json: bool) -> None:
    """Show PACKAGE_ID (an id or a unique prefix of at least 4 characters): its copies, jobs and events."""
    info = show_package(repo(), package_id)
    if as_json:
        emit_json(info)
        return
    out = console()
    for key in ("package_id", "name", "collection", "state", "files", "payload_bytes", "total_bytes", "payload_oxum",
                "policy", "source_kind", "source", "created_at", "preserved_at", "events"):
        say_plain(out, f"{key:<14} {'' if info[key] is None else info[key]}")
    for key, value in sorted(info["bag_info"].items()):
        say_plain(out, f"bag-info       {key}: {json.dumps(value, ensure_ascii=False)}")
    table("copies", ["node", "state", "size", "verified", "next audit", "last error"],
          [[c["node"], c["state"], human_bytes(c["bytes"]), c["verified_at"], c["next_audit_at"], c["last_error"]]
           for c in info["replicas"]])
    if info["unrepairable"]:
        table(f"{len(info['unrepairable'])} file(s) without any verified copy: re-supply them "
              f"(preserve repair {info['package_id']} --from-file PATH=FILE)", ["file", "copies lacking it"],
              [[f["path"], ", ".join(f["nodes"])] for f in info["unrepairable"]])
    if info["formats"]:
        table("formats (preserve formats show for each file)", ["PUID", "format", "files", "size"],
              [[f["puid"] or "(unidentified)", f"{f['format_name']} {f['format_version']}".strip(), f["files"],
                human_bytes(f["bytes"])] for f in info["formats"]])
    if info["jobs"]:
        table("jobs (live and dead)", ["id", "kind", "state", "attempts", "last error"],
              [[j["id"], j["kind"], j["state"], j["attempts"], j["last_error"]] for j in info["jobs"]])
