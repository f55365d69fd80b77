"""`preserve search QUERY`: titles and items by words of their titles, identifier, author and year."""

from __future__ import annotations

import click

from preservation.search import DEFAULT_LIMIT, make_query, search

from .common import emit_json, json_option, repo, say, table


def _standing(hit: dict) -> str:
    return hit["standing"] or "-"


@click.command("search")
@click.argument("query", required=False, default="")
@click.option("--issn", default=None, help="Titles with this ISSN (print or online), check digit verified.")
@click.option("--isbn", default=None, help="Books with this ISBN (ISBN-10 or ISBN-13).")
@click.option("--cn", default=None, help="Titles with this Chinese CN serial number, e.g. 'CN 11-1958/O4'.")
@click.option("--doi", default=None, help="The item with this DOI.")
@click.option("--author", default=None, help="Items with an author whose name contains these words.")
@click.option("--year", default=None, help="Only items published in this year.")
@click.option("--library", "library_code", default=None,
              help="Show this library's standing on each hit (read, request or dark).")
@click.option("--limit", default=str(DEFAULT_LIMIT), show_default=True, help="Hits per page (1-100).")
@click.option("--offset", default="0", show_default=True, help="Hits to skip.")
@json_option
def search_(query, issn, isbn, cn, doi, author, year, library_code, limit, offset, as_json) -> None:
    """Find titles and items by words of their titles (Chinese too: 物理 finds 中国物理学报), or exactly by
    ISSN, ISBN, CN number or DOI; narrow by author and year."""
    q = make_query(query or None, issn=issn, isbn=isbn, cn=cn, doi=doi, author=author, year=year,
                   offset=offset, limit=limit)
    result = search(repo(), q, library_code=library_code)
    if as_json:
        emit_json(result)
        return
    titles, items = result["titles"], result["items"]
    if titles["hits"]:
        table(f"titles ({_total(titles)})", ["id", "kind", "title", "english", "collection", "standing"],
              [[t["id"], t["kind"], t["title"], t["title_english"], t["collection"], _standing(t)]
               for t in titles["hits"]])
    if items["hits"]:
        table(f"items ({_total(items)})", ["doi", "title", "authors", "year", "journal", "standing"],
              [[i["doi"] or "", i["title"], "; ".join(i["authors"]), i["year"],
                (i["journal"] or {}).get("title", ""), _standing(i)] for i in items["hits"]])
    if not titles["hits"] and not items["hits"]:
        say("nothing found")


def _total(part: dict) -> str:
    return str(part["total"]) if part["total_exact"] else f"more than {part['total']}"
