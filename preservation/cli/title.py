"""`preserve title …`: titles and their KBART files (a publisher's list, a library's own file)."""

from __future__ import annotations

import click

from preservation.errors import ImportRejected
from preservation.kbart import import_library_file, import_title_list
from preservation.titles import list_titles, show_title, title_entitlements

from .access import operator_agent
from .common import console, emit_json, emit_list, json_option, repo, say, say_plain, table, show_findings_of


@click.group("title")
def title() -> None:
    """Titles: journals, books and databases, their identifiers and what is preserved of them."""


def _import(run, as_json: bool) -> dict:
    """Run an import; on refusal print every finding (JSON with --json) before the coded error."""
    try:
        result = run()
    except ImportRejected as e:
        show_findings_of(e, as_json)
        raise
    if not as_json:
        err = console(stderr=True)
        for w in result["warnings"]:
            say_plain(err, f"  {w['code']} warning: {w['message']}")
    return result


@title.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--collection", "collection_key", required=True, help="The collection the titles belong to.")
@json_option
def import_(path, collection_key, as_json) -> None:
    """Import a publisher's KBART title list (NISO RP-9-2014) as the collection's titles and expected coverage.

    All or nothing: one bad row refuses the whole file, and every bad line is
    named (finding codes K001-K016, docs/findings.md).
    """
    result = _import(lambda: import_title_list(repo(), path, collection_key), as_json)
    if as_json:
        emit_json({"ok": True, **result})
    else:
        say(f"{result['rows']} row(s): {result['titles_added']} title(s) added, {result['titles_updated']} updated, "
            f"{result['coverage_rows']} coverage range(s), {result['identifiers_added']} new identifier(s)")


@title.command("entitle")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--library", "library_code", required=True, help="The library whose KBART file this is.")
@click.option("--collection", "collection_key", default=None,
              help="Only titles of this collection (and only its entitlements are replaced).")
@json_option
def entitle(path, library_code, collection_key, as_json) -> None:
    """Import a library's own KBART file (KBART Automation, RP-26-2019) as its title entitlements.

    The file replaces the library's title entitlements (of the collection,
    with --collection).  Rows that name no title of the repository are
    skipped with a K014 warning; a bad row refuses the whole file.
    """
    result = _import(lambda: import_library_file(repo(), path, library_code, collection_key=collection_key,
                                                 created_by=operator_agent()), as_json)
    if as_json:
        emit_json({"ok": True, **result})
    else:
        say(f"{result['library']}: {result['entitlements']} title entitlement(s) ({result['added']} added, "
            f"{result['removed']} removed, {result['unchanged']} unchanged), {result['skipped_rows']} row(s) "
            "naming no title here")


@title.command("entitlements")
@click.option("--library", "library_code", required=True)
@click.option("--collection", "collection_key", default=None)
@json_option
def entitlements(library_code, collection_key, as_json) -> None:
    """List a library's title entitlements (the rows of its KBART file)."""
    items = title_entitlements(repo(), library_code, collection_key=collection_key)
    if as_json:
        emit_list("entitlements", items)
        return
    table(f"title entitlements of {library_code}", ["collection", "title", "from", "to"],
          [[e["collection"], e["title"], _end(e["first_date"], e["first_volume"], e["first_issue"]),
            _end(e["last_date"], e["last_volume"], e["last_issue"]) or "present"] for e in items])


def _end(when: str, volume: str, issue: str) -> str:
    return " ".join(b for b in (when, f"v.{volume}" if volume else "", f"no.{issue}" if issue else "") if b)


def _span(c: dict) -> str:
    first = _end(c["first_date"], c["first_volume"], c["first_issue"])
    last = _end(c["last_date"], c["last_volume"], c["last_issue"])
    return f"{first or '…'} – {last or 'present'}" if first or last else ""


def _main_identifier(t: dict) -> str:
    for scheme in ("issn_print", "issn_online", "isbn_print", "isbn_online", "cn", "publisher"):
        if t["identifiers"].get(scheme):
            return t["identifiers"][scheme][0]
    return ""


@title.command("list")
@click.option("--collection", "collection_key", default=None)
@click.option("--offset", type=int, default=0)
@click.option("--limit", type=int, default=100)
@json_option
def list_(collection_key, offset, limit, as_json) -> None:
    """List titles with what is preserved of them."""
    result = list_titles(repo(), collection_key=collection_key, offset=offset, limit=limit)
    if as_json:
        emit_list("titles", result["titles"], total=result["total"], offset=offset, limit=limit)
        return
    table(f"titles {offset + 1}-{offset + len(result['titles'])} of {result['total']}",
          ["id", "collection", "kind", "title", "identifier", "expected", "preserved", "items"],
          [[t["id"], t["collection"], t["kind"], t["title"], _main_identifier(t),
            "; ".join(_span(c) for c in t["expected"]), _span(t["preserved"]), t["preserved"]["items"]]
           for t in result["titles"]])


@title.command("show")
@click.argument("ref", metavar="TITLE")
@click.option("--collection", "collection_key", default=None,
              help="When the identifier names titles of several collections.")
@json_option
def show(ref, collection_key, as_json) -> None:
    """Show a title (by id, ISSN, ISBN, CN number or publisher title id): coverage, issues, packages."""
    t = show_title(repo(), ref, collection_key=collection_key)
    if as_json:
        emit_json(t)
        return
    say(f"{t['title']}  [{t['kind']}, collection {t['collection']}, title {t['id']}]")
    for label in ("title_transliterated", "title_english", "publisher"):
        if t[label]:
            say(f"  {label.replace('_', ' ')}: {t[label]}")
    for scheme, values in t["identifiers"].items():
        say(f"  {scheme}: {', '.join(values)}")
    for c in t["expected"]:
        say(f"  expected: {_span(c)}" + (f" (embargo {c['embargo_info']})" if c["embargo_info"] else ""))
    p = t["preserved"]
    say(f"  preserved: {_span(p) or 'nothing'}; {p['issues']} issue(s), {p['items']} item(s) "
        f"in {p['packages']} package(s)")
    if t["issues"]:
        table("issues preserved", ["year", "volume", "issue", "items", "package"],
              [[i["year"], i["volume"], i["issue"], i["items"], i["package"]] for i in t["issues"]])
    if t["packages"]:
        table("packages holding its items", ["package", "name", "state", "items", "counts as preserved"],
              [[p["id"], p["name"], p["state"], p["items"], "yes" if p["counts_as_preserved"] else "no"]
               for p in t["packages"]])
