"""`preserve events …`: the tamper-evident event log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from preservation import checkpoints as checkpoint_log
from preservation import events as events_module
from preservation import witness
from preservation.errors import InvalidRequest
from preservation.events import event_to_dict, iter_events, verify_chain
from preservation.premis import write_premis
from preservation.text import visible_controls

from .common import (PACKAGE_ID, TIME, console, emit_json, exit_on_findings, json_option, repo, say, say_plain,
                     stream_list)


@click.group("events")
def events() -> None:
    """The PREMIS event log (hash-chained)."""


OUTCOMES = (events_module.SUCCESS, events_module.FAILURE, events_module.WARNING, "started")


@events.command("list")
@click.option("--package", "package_id", type=PACKAGE_ID, default=None, help="Only this package (id or prefix).")
@click.option("--outcome", type=click.Choice(OUTCOMES), default=None, help="Only events with this outcome.")
@click.option("--type", "event_type", default=None, help="Only this event type, e.g. 'fixity check', repair.")
@click.option("--node", "node_name", default=None, help="Only events about this node.")
@click.option("--since", type=TIME, default=None, metavar="TIME",
              help="From this time on (ISO 8601, UTC unless a zone is given; or 24h, 7d ago).")
@click.option("--until", type=TIME, default=None, metavar="TIME", help="Before this time (same forms as --since).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many events.")
@json_option
def list_(package_id, outcome, event_type, node_name, since, until, limit, as_json) -> None:
    """List events, oldest first; filters combine (all must match)."""
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("--since must be before --until")
    with repo().catalog.session() as s:  # streamed: memory does not grow with the log
        items = _dicts(s, iter_events(s, package_id=package_id, limit=limit, outcome=outcome, event_type=event_type,
                                      node_name=node_name, since=since, until=until))
        if as_json:
            stream_list("events", items)
            return
        out = console()
        for e in items:
            where = f" node={e['node_name']}" if e["node_name"] else ""
            say_plain(out, f"{e['seq']:>6} {e['occurred_at'][:19]} {e['event_type']:<28} {e['outcome']:<8} "
                           f"{e['package_id'] or '-'}{where}")


def _dicts(session, found):
    for event in found:
        yield event_to_dict(event)
        session.expunge(event)  # the session keeps no event it has printed


@events.command("verify")
@click.option("--witnesses", "against_witnesses", is_flag=True,
              help="Also check the log against every checkpoint every node holds; name the first event that is "
                   "not what a node witnessed.")
@json_option
def verify(against_witnesses: bool, as_json: bool) -> None:
    """Recompute the whole hash chain; exit 1 and name the first broken link."""
    if against_witnesses:
        _verify_witnesses(as_json)
        return
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


def _verify_witnesses(as_json: bool) -> None:
    report = witness.verify_witnesses(repo())
    if as_json:
        emit_json(report)
        exit_on_findings(report["ok"])
        return
    chain = report["chain"]
    if chain["ok"]:
        say(f"event chain intact: {chain['events_checked']} events")
    else:
        first = chain["first_break"]
        say(f"event chain BROKEN at event {first['seq']} ({first['event_id']}): {first['reason']}", err=True)
    for n in report["nodes"]:
        state = "consistent" if n["ok"] else "NOT CONSISTENT"
        say(f"node {n['node']}: {n['checkpoints']} checkpoints held (latest {n.get('latest', 0)} events): {state}")
        for problem in n["problems"][:20]:
            say(f"  {problem}", err=True)
        if n.get("first_bad"):
            say(f"  {n['first_bad']['reason']}", err=True)
    first = report["first_bad_event"]
    if first is not None:
        click.secho(visible_controls(f"first event not as witnessed: event {first['seq']} ({first['event_id']}) "
                                     f"on node {first['node']}: {first['reason']}"), fg="red", err=True)
    elif report["ok"]:
        say(f"the log is consistent with every checkpoint held by {report['count']} nodes")
    exit_on_findings(report["ok"])


def _format_chosen(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if not value and not ctx.resilient_parsing:
        raise click.UsageError("choose the export format: --premis", ctx=ctx)
    return value


@events.command("export")
@click.argument("package_id", type=PACKAGE_ID)
@click.option("--premis", "as_premis", is_flag=True, is_eager=True, callback=_format_chosen,
              help="PREMIS 3 XML (the only format so far).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="File to write (default: standard output).")
@json_option
def export(package_id: str, as_premis: bool, output: str | None, as_json: bool) -> None:
    """Export PACKAGE_ID's objects, events and agents (each event with its place in the hash chain).

    With --json (which needs --output: the XML is the file's) the counts written are printed as JSON.
    """
    if output is None:
        if as_json:
            raise click.UsageError("--json prints what was written: give the file with --output")
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
    if as_json:
        emit_json({"package_id": package_id, "output": output, **counts})
        return
    say(f"wrote {output}: {counts['files']} files, {counts['events']} events, {counts['agents']} agents",
        err=True)



@events.command("checkpoint")
@click.option("--rotate-key", is_flag=True,
              help="First replace the signing key (the old one is retired, its public key kept for old checkpoints).")
@json_option
def checkpoint(rotate_key: bool, as_json: bool) -> None:
    """Sign a checkpoint of the event log now (tree size, Merkle root, time) and have every node witness it;
    exit 1 when a node refuses it (see docs/evidence.md)."""
    r = repo()
    rotated = checkpoint_log.rotate_key(r.settings) if rotate_key else None
    try:
        with r.catalog.session() as s:
            made = checkpoint_log.make_checkpoint(s, r.settings)
    except Exception:
        if rotated is not None:  # all or nothing: no new key without the checkpoint it signs
            checkpoint_log.undo_rotation(r.settings, rotated)
        raise
    if rotated is not None:
        made["rotated"] = rotated
    made["witnesses"] = witness.witness_nodes(r)
    if as_json:
        emit_json(made)
        exit_on_findings(not made["witnesses"]["refused"])
        return
    if rotated is not None:
        say(f"new signing key {rotated['key']} (key {rotated['retired']} retired); public key: {rotated['verifier_key']}")
    state = "signed" if made["new"] else "unchanged since the last checkpoint"
    say(f"checkpoint at {made['size']} events, {state} (key {made['key_id']}):")
    click.echo(visible_controls(made["note"], keep_newlines=True), nl=False)
    _say_witnesses(made["witnesses"])
    exit_on_findings(not made["witnesses"]["refused"])


def _say_witnesses(witnessed: dict) -> None:
    for n in witnessed["nodes"]:
        line = f"node {n['node']} ({n['witness']}): {n['status']}"
        if "size" in n:
            line += f" at {n['size']} events"
        if "error" in n:
            line += f": {n['error'].get('message')}"
        say(line, err=n["status"] in ("refused", "failed"))


@events.command("rotate-key")
@click.option("--lost", is_flag=True, required=True,
              help="The signing key is lost: a new key signs a checkpoint naming it, and is installed once a "
                   "quorum of witness nodes co-signed it.")
@json_option
def rotate_key(lost: bool, as_json: bool) -> None:
    """Replace a lost checkpoint signing key with the nodes' help (docs/evidence.md); with the old key at hand
    use `preserve events checkpoint --rotate-key`.  Exit 44 (E704) until a quorum co-signed: run it again."""
    result = witness.introduce_key(repo())
    if as_json:
        emit_json(result)
        return
    say(f"new signing key {result['key_id']} installed: its checkpoint of {result['checkpoint']} events is "
        f"co-signed by {result['cosigned_by']} witnesses (quorum {result['quorum']}); public key:")
    click.echo(result["verifier_key"])
    _say_witnesses(result["witnesses"])


@events.command("prove")
@click.argument("event_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="File to write the proof to (default: standard output).")
@json_option
def prove(event_id: str, output: str | None, as_json: bool) -> None:
    """Print an inclusion proof of EVENT_ID against the latest signed checkpoint (JSON; check it with
    tools/verify_proof.py and the public key alone)."""
    if len(event_id) > 64:
        raise InvalidRequest("an event id is at most 64 characters")
    with repo().catalog.session() as s:
        proof = checkpoint_log.prove_event(s, event_id)
    text = json.dumps(proof, ensure_ascii=False, indent=1) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    partial = Path(f"{output}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    if as_json:
        emit_json({"event_id": event_id, "output": output, "tree_size": proof["tree_size"]})
    else:
        say(f"wrote {output}: event {proof['event']['seq']} in the checkpoint of {proof['tree_size']} events", err=True)
