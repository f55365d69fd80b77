"""`preserve item …`: articles, books and chapters found in the packages' metadata."""

from __future__ import annotations

import click

from preservation import units
from preservation.metadata.items import item_by_doi

from .common import console, emit_json, json_option, repo, say_plain


@click.group("item")
def item() -> None:
    """Items (articles, books, chapters) read from deliveries' metadata."""


@item.command("show")
@click.argument("doi")
@json_option
def show(doi: str, as_json: bool) -> None:
    """Show the item with DOI: its metadata, title, package and files."""
    found = item_by_doi(repo(), doi)
    if as_json:
        emit_json(found)
        return
    out = console()
    pages = "-".join(p for p in (found["first_page"], found["last_page"]) if p)
    for label, value in (("doi", found["doi"]), ("kind", found["kind"]), ("title", found["title"]),
                         ("authors", "; ".join(found["authors"])), ("language", found["language"]),
                         ("published", found["published"] or found["year"] or ""), ("volume", found["volume"]),
                         ("issue", found["issue"]), ("pages", pages), ("isbn", found["isbn"]),
                         ("metadata", f"{found['metadata_path']} ({found['source_format']})")):
        if value:
            say_plain(out, f"{label:<10} {value}")
    journal = found["journal"]
    if journal is not None:
        ids = ", ".join(f"{i['scheme']} {i['value']}" for i in journal["identifiers"])
        english = f" ({journal['title_english']})" if journal["title_english"] else ""
        say_plain(out, f"{journal['kind']:<10} {journal['title']}{english}{'; ' + ids if ids else ''}")
    package = found["package"]
    copies = ", ".join(f"{c['node']} {c['state']}" for c in package["copies"])
    say_plain(out, f"{'package':<10} {package['id']} {package['name']} ({package['collection']}): {package['state']}"
              f"{'; ' + copies if copies else ''}")
    say_plain(out, "files:")
    for f in found["files"]:  # whole lines, never cut to the terminal's width: a digest is copied from here
        size = "absent" if f["size"] is None else units.human_bytes(f["size"])
        say_plain(out, f"  {f['role']:<13} {f['path']}  {size}  sha256 {f['sha256'] or '-'}")
