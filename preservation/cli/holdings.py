"""`preserve holdings …`: completeness of what is preserved, per title, and its KBART export."""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
from pathlib import Path

import click

from preservation.coverage import REPORT_CSV_COLUMNS, export, gaps, report, report_csv_rows
from preservation.errors import ImportRejected, InvalidRequest
from preservation.text import for_data_stream

from .common import emit_json, exit_on_findings, json_option, repo, say, show_findings_of, table


@click.group("holdings")
def holdings() -> None:
    """Holdings in library terms: coverage preserved, gaps, verification, KBART export."""


@holdings.command("report")
@click.option("--collection", "collection_key", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              help="table (default), json, or csv (one row per title).")
@json_option
def report_(collection_key, fmt, as_json) -> None:
    """Per title: coverage preserved, expected, gaps, and whether every copy was verified within the audit interval."""
    result = report(repo(), collection_key=collection_key)
    if as_json or fmt == "json":
        emit_json(result)
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(REPORT_CSV_COLUMNS)
        writer.writerows(report_csv_rows(result))
        click.echo(for_data_stream(buffer.getvalue()), nl=False)
        return
    scope = f"collection {collection_key}" if collection_key else "all collections"
    table(f"holdings of {scope} (audit interval {result['audit_interval_days']:g} days)",
          ["title", "identifier", "expected", "preserved", "items", "gaps", "verification"],
          [[t["title"], t["identifier"], "; ".join(t["expected"]), t["preserved_span"] or "nothing",
            t["preserved"]["items"], t["gaps_summary"] or "none", t["standing"]] for t in result["titles"]])


@holdings.command("gaps")
@click.argument("collection_key", metavar="COLLECTION")
@click.option("--against", "against", type=click.Path(dir_okay=False), default=None,
              help="A KBART file to compare with, instead of the imported expected coverage.")
@json_option
def gaps_(collection_key, against, as_json) -> None:
    """Expected years, volumes and issues of COLLECTION that nothing preserved holds (exit 1 when there are any)."""
    try:
        result = gaps(repo(), collection_key, against=against)
    except ImportRejected as e:
        show_findings_of(e, as_json)
        raise
    if as_json:
        emit_json(result)
    elif result["titles"]:
        table(f"gaps in {collection_key}", ["title", "missing"],
              [[t["title"] + ("" if t["in_catalog"] else " (not in the catalog)"), t["summary"]]
               for t in result["titles"]])
    else:
        say(f"no gaps: every expected year, volume and issue of {collection_key} is preserved")
    exit_on_findings(not result["titles"])


@holdings.command("export")
@click.option("--collection", "collection_key", default=None, help="The preserved holdings of a collection.")
@click.option("--library", "library_code", default=None, help="What a library may read.")
@click.option("--expected", is_flag=True, help="The expected coverage (the imported publisher list) instead.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the KBART file here (default: standard output).")
@json_option
def export_(collection_key, library_code, expected, output, as_json) -> None:
    """Write preserved holdings as KBART (Phase II columns, then preserve_* columns; docs/titles.md)."""
    if as_json and output is None:
        raise InvalidRequest("with --json the KBART file needs --output FILE (the JSON is the summary)")
    if output is None:
        tty = sys.stdout.isatty()
        out = _TerminalSafe(sys.stdout) if tty else sys.stdout
        export(repo(), out, collection_key=collection_key, library_code=library_code, expected=expected)
        return
    target = Path(output)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            result = export(repo(), out, collection_key=collection_key, library_code=library_code, expected=expected)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    result["file"] = str(target)
    if as_json:
        emit_json({"ok": True, **result})
    else:
        say(f"{result['rows']} KBART row(s) written to {target}")


class _TerminalSafe:
    """A text stream for a terminal: what could act on it (C1 controls, bidi overrides) is written as \\uXXXX."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(for_data_stream(text))
