"""`preserve events …`: the tamper-evident event log."""

from __future__ import annotations

import os
from pathlib import Path

import click

from preservation.events import event_to_dict, iter_events, verify_chain
from preservation.premis import write_premis

from preservation.text import visible_controls

from .common import console, emit_json, exit_on_findings, json_option, repo, say, say_plain


@click.group("events")
def events() -> None:
    """The PREMIS event log (hash-chained)."""


@events.command("list")
@click.option("--package", "package_id", default=None)
@click.option("--limit", type=int, default=None)
@json_option
def list_(package_id, limit, as_json) -> None:
    """List events, oldest first."""
    with repo().catalog.session() as s:
        items = [event_to_dict(e) for e in iter_events(s, package_id=package_id, limit=limit)]
    if as_json:
        emit_json(items)
        return
    out = console()
    for e in items:
        where = f" node={e['node_name']}" if e["node_name"] else ""
        say_plain(out, f"{e['seq']:>6} {e['occurred_at'][:19]} {e['event_type']:<28} {e['outcome']:<8} "
                       f"{e['package_id'] or '-'}{where}")


@events.command("verify")
@json_option
def verify(as_json: bool) -> None:
    """Recompute the whole hash chain; exit 1 and name the first broken link."""
    with repo().catalog.session() as s:
        report = verify_chain(s)
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        say(f"event chain intact: {report.events_checked} events")
    else:
        first = report.breaks[0]
        click.secho(visible_controls(f"event chain BROKEN at event {first.seq} ({first.event_id}): {first.reason}"), fg="red",
                    err=True)
        for b in report.breaks[1:20]:
            say(f"  also event {b.seq}: {b.reason}", err=True)
    exit_on_findings(report.ok)


@events.command("export")
@click.argument("package_id")
@click.option("--premis", "as_premis", is_flag=True, help="PREMIS 3 XML (the only format so far).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="File to write (default: standard output).")
def export(package_id: str, as_premis: bool, output: str | None) -> None:
    """Export PACKAGE_ID's objects, events and agents (each event with its place in the hash chain)."""
    if not as_premis:
        raise click.UsageError("choose the export format: --premis")
    if output is None:
        with click.open_file("-", "wb") as out:
            write_premis(repo(), package_id, out)
        return
    partial = Path(f"{output}.partial")
    try:
        with open(partial, "wb") as out:
            counts = write_premis(repo(), package_id, out)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    say(f"wrote {output}: {counts['files']} files, {counts['events']} events, {counts['agents']} agents",
               err=True)
