"""`preserve audit`: re-read copies and compare them with the catalog."""

from __future__ import annotations

import click

from preservation.audit import audit as run_audit
from preservation.units import human_bytes

from preservation.text import for_terminal

from .common import PACKAGE_ID, console, emit_json, exit_on_findings, json_option, repo, say_plain


@click.command("audit")
@click.option("--package", "package_id", type=PACKAGE_ID, default=None, help="Only this package (id or prefix).")
@click.option("--node", "node_name", default=None, help="Only copies on this node.")
@json_option
def audit(package_id, node_name, as_json) -> None:
    """Re-read every selected copy in full; exit 1 if any copy failed."""
    out = console()

    def show(one) -> None:
        if as_json:
            return
        mark = "[green]ok[/]" if one.ok else "[bold red]FAILED[/]"
        out.print(f"{mark} {for_terminal(one.package_id)} on {for_terminal(one.node)}: {one.fixity.files_checked}/{one.fixity.files_expected} "
                  f"files, {human_bytes(one.fixity.bytes_read_on_node)} read on node, "
                  f"{human_bytes(one.fixity.bytes_over_network)} over network → {one.state}")
        for f in one.fixity.findings:
            say_plain(out, f"    {f.code} {one.node}:{f.path or ''} {f.message}")

    report = run_audit(repo(), package_id=package_id, node_name=node_name, progress=show)
    if as_json:
        emit_json(report.to_dict())
    else:
        say_plain(out, f"{len(report.replicas)} copies audited, {len(report.failed)} failed")
    exit_on_findings(report.ok)
