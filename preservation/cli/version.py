"""`preserve version …`: the versions of a package and what changed in each (docs/versions.md)."""

from __future__ import annotations

import click

from preservation.catalog.models import Package
from preservation.units import human_bytes
from preservation.versions import changes, lineage_versions, resolve_version

from .common import PACKAGE_ID, console, emit_json, emit_list, json_option, repo, say_plain, table


@click.group("version")
def version() -> None:
    """Versions of a package: list them, show what changed."""


@version.command("list")
@click.argument("package_id", type=PACKAGE_ID)
@json_option
def list_(package_id: str, as_json: bool) -> None:
    """The versions of PACKAGE_ID (any version's id), oldest first, with what changed in each."""
    r = repo()
    with r.catalog.session() as s:
        found = lineage_versions(s, package_id)
        rows = []
        for v in found or []:
            p = s.get(Package, v.package_id)
            rows.append({**v.to_dict(), "state": p.state, "delivered_at": p.created_at.isoformat(),
                         "files": p.payload_files, "bytes": p.payload_bytes})
        if not rows:
            p = s.get(Package, package_id)
            rows.append({"package_id": p.id, "lineage_id": p.id, "number": 1, "previous_id": None, "changes": {},
                         "state": p.state, "delivered_at": p.created_at.isoformat(), "files": p.payload_files,
                         "bytes": p.payload_bytes})
    if as_json:
        emit_list("versions", rows)
        return
    table(f"versions of {rows[0]['lineage_id']}",
          ["version", "id", "delivered", "state", "files", "added", "changed", "removed", "renamed", "stored"],
          [[v["number"], v["package_id"], v["delivered_at"], v["state"], v["files"], v["changes"].get("added", ""),
            v["changes"].get("changed", ""), v["changes"].get("removed", ""), v["changes"].get("renamed", ""),
            human_bytes(v["changes"]["stored_bytes"]) if "stored_bytes" in v["changes"] else "all"]
           for v in rows])


@version.command("changes")
@click.argument("package_id", type=PACKAGE_ID)
@click.option("--version", "number", type=click.IntRange(min=1), default=None, metavar="N",
              help="Version N of the package (default: the version PACKAGE_ID is).")
@json_option
def changes_(package_id: str, number: int | None, as_json: bool) -> None:
    """The files added, changed, removed and renamed in a version, against the version before it."""
    r = repo()
    if number is not None:
        with r.catalog.session() as s:
            package_id = resolve_version(s, package_id, number)
    out = changes(r.catalog, package_id)
    if as_json:
        emit_json(out)
        return
    c = out["counts"]
    con = console()
    say_plain(con, f"version {out['number']} ({out['package_id']}): {c['added']} added, {c['changed']} changed, "
                   f"{c['removed']} removed, {c['renamed']} renamed, {c['unchanged']} unchanged")
    for kind in ("added", "changed", "removed"):
        for path in out[kind] or []:
            say_plain(con, f"  {kind:<8} {path}")
    for moved in out["renamed"]:
        say_plain(con, f"  renamed  {moved['from']} -> {moved['to']}")
