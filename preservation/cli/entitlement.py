"""`preserve entitlement …`: which years of a collection each library paid for."""

from __future__ import annotations

import click

from preservation.access.entitlements import add_entitlement, import_entitlements, list_entitlements
from preservation.errors import ImportRejected

from .access import operator_agent
from .common import emit_json, emit_list, json_option, repo, say, show_findings_of, table


@click.group("entitlement")
def entitlement() -> None:
    """Entitlements: library × collection × year range."""


@entitlement.command("add")
@click.argument("library_code", metavar="LIBRARY")
@click.argument("collection_key", metavar="COLLECTION")
@click.option("--from-year", type=int, required=True)
@click.option("--to-year", type=int, required=True)
@click.option("--note", default="", help="E.g. the licence or invoice reference.")
@json_option
def add(library_code, collection_key, from_year, to_year, note, as_json) -> None:
    """Entitle LIBRARY to COLLECTION's content of the years FROM..TO (inclusive)."""
    result = add_entitlement(repo(), library_code, collection_key, from_year, to_year, note=note,
                             created_by=operator_agent())
    if as_json:
        emit_json(result)
    else:
        say(f"{result['library']} entitled to {result['collection']} {result['from_year']}-{result['to_year']}")


@entitlement.command("list")
@click.option("--library", "library_code", default=None)
@click.option("--collection", "collection_key", default=None)
@json_option
def list_(library_code, collection_key, as_json) -> None:
    """List entitlements."""
    items = list_entitlements(repo(), library_code=library_code, collection_key=collection_key)
    if as_json:
        emit_list("entitlements", items)
        return
    table("entitlements", ["library", "collection", "years", "note"],
          [[e["library"], e["collection"], f"{e['from_year']}-{e['to_year']}", e["note"]] for e in items])


@entitlement.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
def import_(path, as_json) -> None:
    """Add every entitlement in a .csv or .yaml FILE, or none: a bad row refuses the whole file."""
    try:
        result = import_entitlements(repo(), path, created_by=operator_agent())
    except ImportRejected as e:
        show_findings_of(e, as_json)
        raise
    if as_json:
        emit_json({"ok": True, **result})
    else:
        say(f"{result['added']} entitlement(s) added, {result['unchanged']} already present")
