"""`preserve usage report`: COUNTER-style monthly usage per institution."""

from __future__ import annotations

import click

from preservation.access.usage import report_csv, usage_report
from preservation.text import for_data_stream

from .common import emit_json, repo


@click.group("usage")
def usage() -> None:
    """Usage of released content."""


@usage.command("report")
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--library", "library_code", default=None, help="Only this institution.")
def report(month, fmt, library_code) -> None:
    """Title (TR) and database (DR) rows: Total_Item_Investigations, Total_Item_Requests, Unique_Title_Requests."""
    result = usage_report(repo(), month, library_code=library_code)
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(for_data_stream(report_csv(result)), nl=False)
