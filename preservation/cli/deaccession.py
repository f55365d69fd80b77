"""`preserve deaccession`: withdraw a package, or versions of it, and delete their stored bytes."""

from __future__ import annotations

import click

from preservation.deaccession import deaccession as run_deaccession

from .common import PACKAGE_ID, emit_json, json_option, repo, say


@click.command("deaccession")
@click.argument("package_id", type=PACKAGE_ID)
@click.option("--version", "versions", type=click.IntRange(min=1), multiple=True, metavar="N",
              help="Withdraw version N of the package (repeatable; default: the version PACKAGE_ID is).")
@click.option("--reason", required=True, help="Why the content is withdrawn (recorded in the event).")
@click.option("--yes", is_flag=True, help="Confirm: the stored bytes are deleted from every node.")
@json_option
def deaccession(package_id, versions, reason, yes, as_json) -> None:
    """Withdraw PACKAGE_ID (or its --version N …) and delete the bytes it stored from every node.

    Refused when a version that is kept references a file the removed ones
    stored; the event states which versions are removed and which are kept.
    """
    if not yes:
        raise click.UsageError("deaccession deletes the stored bytes from every node: add --yes to confirm")
    result = run_deaccession(repo(), package_id, versions=list(versions) or None, reason=reason)
    if as_json:
        emit_json(result)
        return
    say(f"deaccessioned version(s) {', '.join(map(str, result['versions_removed']))} of {result['package_id']}; "
        f"{sum(result['files_deleted'].values())} stored file(s) deleted from the nodes")
    if result["versions_kept"]:
        say(f"  kept: version(s) {', '.join(map(str, result['versions_kept']))}")
