"""`preserve repair`: repair a package's damaged copies now, or re-supply lost files from outside the network."""

from __future__ import annotations

import click

from preservation.repair import repair_package
from preservation.resupply import parse_offer, resupply

from .common import PACKAGE_ID, console, emit_json, exit_on_findings, json_option, repo, say_plain, table


@click.command("repair")
@click.argument("package_id", type=PACKAGE_ID)
@click.option("--from-file", "offers", multiple=True, metavar="PATH=LOCALFILE",
              help="Re-supply the package file PATH from LOCALFILE (e.g. the original delivery), checked against "
                   "the catalog's size, sha256 and sha512 first; repeat for several files.")
@json_option
def repair(package_id: str, offers: tuple[str, ...], as_json: bool) -> None:
    """Repair PACKAGE_ID's damaged copies now, or re-supply lost files with --from-file."""
    if offers:
        result = resupply(repo(), package_id, [parse_offer(o) for o in offers])
        if as_json:
            emit_json(result)
        else:
            out = console()
            table(f"re-supplied to {package_id}", ["file", "written to", "already right", "not reached"],
                  [[f["path"], ", ".join(f["written"]) or "-", ", ".join(f["already_right"]) or "-",
                    ", ".join(f["not_reached"]) or "-"] for f in result["files"]])
            for node, state in result["audits"].items():
                say_plain(out, f"copy on {node} audited: {state}")
            say_plain(out, f"package {result['package_state']}")
        exit_on_findings(not any(f["not_reached"] for f in result["files"]))
        return
    result = repair_package(repo(), package_id)
    if as_json:
        emit_json(result)
    else:
        out = console()
        table(f"repair of {package_id}", ["node", "state", "files repaired", "unrepairable", "error"],
              [[c["node"], c.get("state", ""), c.get("files_repaired", ""), c.get("unrepairable", ""),
                (c.get("error") or {}).get("message", c.get("skipped", ""))] for c in result["copies"]])
        if result["unrepairable"]:
            table("files without any verified copy: re-supply them with --from-file PATH=LOCALFILE",
                  ["file", "copies lacking it"], [[f["path"], ", ".join(f["nodes"])] for f in result["unrepairable"]])
        say_plain(out, f"package {result['package_state']}")
    exit_on_findings(not result["unrepairable"] and not any("error" in c for c in result["copies"]))
