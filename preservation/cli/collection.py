"""`preserve collection …`: the licensed databases packages belong to."""

from __future__ import annotations

import click

from preservation.collection import ACCESS_MODES, add_collection, list_collections

from .common import emit_json, emit_list, json_option, repo, say, table


@click.group("collection")
def collection() -> None:
    """Collections (licensed databases)."""


@collection.command("add")
@click.argument("key")
@click.option("--title", required=True)
@click.option("--publisher", default="")
@click.option("--licence", default="", help="Licence reference.")
@click.option("--access-mode", type=click.Choice(ACCESS_MODES), default=None, help="Default: the policy's (dark).")
@click.option("--description", default="")
@json_option
def add(key, title, publisher, licence, access_mode, description, as_json) -> None:
    """Add collection KEY."""
    result = add_collection(repo(), key, title, publisher=publisher, licence=licence, access_mode=access_mode,
                            description=description)
    if as_json:
        emit_json(result)
    else:
        say(f"collection {result['key']} added ({result['access_mode']})")


@collection.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List collections."""
    items = list_collections(repo())
    if as_json:
        emit_list("collections", items)
        return
    table("collections", ["key", "title", "publisher", "licence", "access", "packages"], [
        [c["key"], c["title"], c["publisher"], c["licence"], c["access_mode"], c["packages"]] for c in items
    ])
