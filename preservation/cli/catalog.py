"""`preserve init` and `preserve catalog …`: create, migrate, back up and restore the catalog."""

from __future__ import annotations

import click

from preservation.catalog.backup import backup_catalog, restore_catalog
from preservation.catalog.db import Catalog
from preservation.errors import CatalogOutdated
from preservation.units import human_bytes
from preservation.home import init_home, require_catalog
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
    """The catalog database: schema upgrades, checks, backups."""


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


@catalog.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@json_option
def backup(dest: str, force: bool, as_json: bool) -> None:
    """Write a consistent copy of the catalog to the file DEST while workers keep running."""
    require_catalog(state().settings)
    cat = Catalog(state().settings.catalog_url)
    try:
        result = backup_catalog(cat, dest, force=force)
    finally:
        cat.dispose()
    if as_json:
        emit_json(result)
        return
    say(f"catalog backed up to {result['dest']} ({human_bytes(result['bytes'])}, {result['method']}, "
        f"schema revision {result['revision']})")
    say("rows: " + ", ".join(f"{table} {count}" for table, count in result["rows"].items()))


@catalog.command("restore")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True,
              help="Replace a catalog that holds tables (stop workers, scheduler, serve first).")
@json_option
def restore(src: str, force: bool, as_json: bool) -> None:
    """Replace the catalog with the backup SRC (made by `preserve catalog backup`)."""
    cat = Catalog(state().settings.catalog_url)
    try:
        result = restore_catalog(cat, src, force=force)
        try:
            cat.check_schema()
            result["schema"] = "current"
        except CatalogOutdated as e:  # an older backup: the restore stands, the schema is upgraded next
            result["schema"] = f"outdated: {e.message}; run `preserve catalog upgrade`"
    finally:
        cat.dispose()
    if as_json:
        emit_json(result)
        return
    say(f"catalog {result['catalog']} restored from {result['src']} (schema revision {result['revision']}, "
        f"{result['schema']})")
    say("rows: " + ", ".join(f"{table} {count}" for table, count in result["rows"].items()))
