"""`preserve init` and `preserve catalog …`: create and migrate the catalog."""

from __future__ import annotations

import click

from preservation.catalog.db import Catalog
from preservation.home import init_home
from preservation.rebuild import rebuild_from_nodes

from .common import console, emit_json, exit_on_findings, json_option, repo, say, say_plain, state


@click.command("init")
@json_option
def init(as_json: bool) -> None:
    """Create the home (config + catalog) or bring its catalog schema up to date."""
    result = init_home(state().home)
    if as_json:
        emit_json(result)
        return
    say(f"home     {result['home']}")
    say(f"catalog  {result['catalog']} (schema revision {result['revision']})")


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
        say(f"catalog at revision {result['revision']} (was {result['revision_before']})")


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
        say(f"catalog schema is current ({revision})")


@catalog.command("rebuild")
@click.option("--from-nodes", "from_nodes", is_flag=True, required=True,
              help="Read the bags on every registered node (required: there is no other source).")
@click.option("--scan", is_flag=True, help="Also find bags without package records by listing every key.")
@click.option("--no-audit", is_flag=True, help="Register only; leave the copies suspect until audited.")
@json_option
def rebuild(from_nodes: bool, scan: bool, no_audit: bool, as_json: bool) -> None:
    """Rebuild packages, files and copies of a lost catalog from the bags on the nodes."""
    out = console()
    report = rebuild_from_nodes(repo(), scan=scan, audit=not no_audit,
                                progress=None if as_json else (lambda pid: say_plain(out, f"registered {pid}")))
    if as_json:
        emit_json(report.to_dict())
    else:
        for f in report.findings:
            say_plain(out, f"  {f}")
        out.print(f"{len(report.packages)} packages, {report.replicas} copies, {report.files} files rebuilt; "
                  f"audit: {report.audited_ok} copies verified, {report.audited_failed} failed")
    exit_on_findings(report.ok)
