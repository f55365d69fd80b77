"""`preserve init` and `preserve catalog …`: create and migrate the catalog."""

from __future__ import annotations

import click

from preservation.catalog.db import Catalog
from preservation.registry import init_home

from .common import emit_json, json_option, state


@click.command("init")
@json_option
def init(as_json: bool) -> None:
    """Create the home (config + catalog) or bring its catalog schema up to date."""
    result = init_home(state().home)
    if as_json:
        emit_json(result)
        return
    click.echo(f"home     {result['home']}")
    click.echo(f"catalog  {result['catalog']} (schema revision {result['revision']})")


@click.group("catalog")
def catalog() -> None:
    """The catalog database: schema upgrades and checks."""


@catalog.command("upgrade")
@json_option
def upgrade(as_json: bool) -> None:
    """Apply pending schema migrations (back the catalog up first)."""
    result = init_home(state().home)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"catalog at revision {result['revision']} (was {result['revision_before']})")


@catalog.command("check")
@json_option
def check(as_json: bool) -> None:
    """Exit non-zero unless the catalog is at the schema this preserve needs."""
    cat = Catalog(state().settings.catalog_url)
    try:
        cat.check_schema()
        revision = cat.current_revision()
    finally:
        cat.dispose()
    if as_json:
        emit_json({"ok": True, "revision": revision})
    else:
        click.echo(f"catalog schema is current ({revision})")
