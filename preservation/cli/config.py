"""`preserve config check`: the config file, policy, keys, free space, catalog and every node, each ok/warn/fail."""

from __future__ import annotations

import click

from preservation.config_check import DEFAULT_MIN_FREE, FAIL, WARN, check_config
from preservation.units import human_bytes

from .common import emit_list, exit_on_findings, json_option, parse_size, say, state, table


@click.group("config")
def config() -> None:
    """Check this home's configuration."""


@config.command("check")
@click.option("--min-free", default=None, metavar="SIZE",
              help=f"Free space every place written to keeps beyond what it must receive "
                   f"(default {human_bytes(DEFAULT_MIN_FREE)}; e.g. 500M, 20G).")
@click.option("--no-probe", is_flag=True, help="Do not contact the nodes (credentials are still checked).")
@json_option
def check(min_free: str | None, no_probe: bool, as_json: bool) -> None:
    """Check the config, policy, key files, free space, the catalog and every node; exit 1 when a check fails.

    Each node not offline is probed: reachable, a small object written, read back and deleted under
    .preserve/tmp/, and free space against the copies it has still to receive (measured here, asked of a
    node agent; an info row for a store that reports none, such as S3).  Nothing else changes.
    """
    margin = parse_size(min_free)
    report = check_config(state().home, min_free_bytes=DEFAULT_MIN_FREE if margin is None else margin,
                          probe_nodes=not no_probe)
    rows = [c.to_dict() for c in report.checks]
    if as_json:
        emit_list("checks", rows, passed=report.ok, counts=report.counts(), home=report.home)
    else:
        table(f"config check of {report.home}", ["check", "subject", "status", "code", "message"],
              [[r["check"], r["subject"], r["status"].upper() if r["status"] in (WARN, FAIL) else r["status"],
                r["code"] or "", r["message"]] for r in rows])
        counts = report.counts()
        say(f"{counts['ok']} ok, {counts['info']} info, {counts['warn']} warn, {counts['fail']} fail")
    exit_on_findings(report.ok)
