"""`preserve trigger …`: record the events that open ``trigger`` collections."""

from __future__ import annotations

import click

from preservation.access.triggers import list_triggers, parse_date, record_trigger
from preservation.catalog.access_models import TRIGGER_KINDS

from .access import operator_agent
from .common import emit_json, emit_list, json_option, repo, say, table


@click.group("trigger")
def trigger() -> None:
    """Trigger events (publisher ceased, title discontinued …)."""


@trigger.command("record")
@click.argument("collection_key", metavar="COLLECTION")
@click.option("--kind", type=click.Choice(TRIGGER_KINDS), required=True)
@click.option("--date", "when", required=True, help="When it happened, YYYY-MM-DD.")
@click.option("--evidence", required=True, help="Reference, URL or statement an auditor can check.")
@click.option("--by", "by", default=None, help="Who records it (default: this operator account).")
@json_option
def record(collection_key, kind, when, evidence, by, as_json) -> None:
    """Record a trigger event for COLLECTION; pending requests it opens are approved."""
    result = record_trigger(repo(), collection_key, kind=kind, occurred_on=parse_date(when), evidence=evidence,
                            recorded_by=by or operator_agent())
    if as_json:
        emit_json(result)
        return
    say(f"trigger {result['id']} recorded for {result['collection']}: {result['kind']} on {result['date']}")
    if not result["opens_collection"]:
        click.echo("note: the collection's access mode is not 'trigger', so this opens nothing by itself")
    if result["requests_approved"]:
        say(f"approved pending request(s): {', '.join(map(str, result['requests_approved']))}")


@trigger.command("list")
@click.argument("collection_key", metavar="[COLLECTION]", required=False)
@json_option
def list_(collection_key, as_json) -> None:
    """List trigger events."""
    items = list_triggers(repo(), collection_key)
    if as_json:
        emit_list("triggers", items)
        return
    table("trigger events", ["id", "date", "collection", "kind", "evidence", "recorded by"],
          [[t["id"], t["date"], t["collection"], t["kind"], t["evidence"], t["recorded_by"]] for t in items])
