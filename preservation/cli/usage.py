"""`preserve usage report`: COUNTER Release 5.1 reports (TR, IR, DR) of one library, or the month's summary."""

from __future__ import annotations

import click

from preservation.access.counter import REPORTS, build_report, build_request, parse_period
from preservation.access.counter_tabular import report_tsv
from preservation.access.usage import report_csv, usage_report
from preservation.errors import InvalidRequest
from preservation.text import for_data_stream

from .common import emit_json, json_option, repo


@click.group("usage")
def usage() -> None:
    """Usage of released content (COUNTER Release 5.1)."""


@usage.command("report")
@click.option("--report", "report_id", type=click.Choice(sorted(REPORTS)), default=None,
              help="A COUNTER 5.1 report: tr (titles), ir (items), dr (databases). Without it: the month's summary.")
@click.option("--library", "library_code", default=None,
              help="The institution (its code); required with --report.")
@click.option("--begin", default=None, help="First month, YYYY-MM (with --report).")
@click.option("--end", default=None, help="Last month, YYYY-MM (with --report; default: --begin).")
@click.option("--month", default=None, help="One month, YYYY-MM (the summary, or --begin and --end at once).")
@click.option("--attributes", default=None,
              help="COUNTER attributes_to_show, e.g. 'YOP|Access_Type|Access_Method' (with --report).")
@click.option("--format", "fmt", type=click.Choice(["tsv", "csv", "json"]), default=None,
              help="tsv (COUNTER tabular) or json (COUNTER 5.1 JSON) with --report; csv or json for the summary.")
@json_option
def report(report_id, library_code, begin, end, month, attributes, fmt, as_json) -> None:
    """A COUNTER 5.1 report (--report tr|ir|dr --library CODE --begin YYYY-MM [--end YYYY-MM]) or a month's summary.

    The COUNTER report counts with the 30-second double-click filter and hourly
    sessions (docs/counter.md); with --json or --format json it is the COUNTER
    5.1 JSON, else the tabular form (TSV with its header rows).
    """
    if report_id is None:
        if month is None:
            raise InvalidRequest("give --month YYYY-MM for the summary, or --report tr|ir|dr for a COUNTER report")
        if fmt == "tsv":
            raise InvalidRequest("the summary is csv or json; tsv is for a COUNTER report (--report)")
        result = usage_report(repo(), month, library_code=library_code)
        if as_json or fmt == "json":
            emit_json(result)
        else:
            click.echo(for_data_stream(report_csv(result)), nl=False)
        return
    if not library_code:
        raise InvalidRequest("a COUNTER report is for one institution: give --library CODE")
    if fmt == "csv":
        raise InvalidRequest("a COUNTER report is tsv (tabular) or json")
    begin = begin or month
    period = parse_period(begin, end or begin)
    params = {"attributes_to_show": attributes} if attributes else {}
    result = build_report(repo(), build_request(report_id, library_code, period, params))
    if as_json or fmt == "json":
        emit_json(result)
    else:
        click.echo(for_data_stream(report_tsv(result)), nl=False)
