"""`preserve formats`: the format profile of what is preserved, one package's formats, re-identification."""

from __future__ import annotations

import click

from preservation.formats.reidentify import reidentify_due
from preservation.formats.report import format_report, package_formats, report_csv
from preservation.text import for_data_stream
from preservation.units import human_bytes

from .common import PACKAGE_ID, emit_json, emit_list, json_option, repo, say, table


@click.group("formats")
def formats() -> None:
    """What the preserved bytes are: PRONOM formats, validation, what is at risk."""


def _profile_table(title: str, report: dict) -> None:
    table(title, ["PUID", "format", "files", "bytes", "invalid", "locked", "at risk"],
          [[f["puid"] or "(none)", f"{f['format_name']} {f['format_version']}".strip(), f["files"],
            human_bytes(f["bytes"]), f["invalid"], max(f["encrypted"], f["drm"]), f["at_risk"]]
           for f in report["formats"]])
    t = report["totals"]
    say(f"{t['files']} file(s), {human_bytes(t['bytes'])}: {t['unidentified']} unidentified, {t['invalid']} invalid, "
        f"{t['encrypted']} encrypted, {t['drm']} DRM-locked, {t['at_risk']} at risk "
        f"({human_bytes(t['at_risk_bytes'])}; at risk means: {', '.join(report['at_risk_means']) or 'nothing'})")
    if report["signature_versions"]:
        say(f"identified with signature file(s): {', '.join(report['signature_versions'])}")


@formats.command("report")
@click.option("--collection", default=None, help="Only this collection's packages (its key).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              help="table (default), json, or csv (one row per format).")
@json_option
def report(collection: str | None, fmt: str, as_json: bool) -> None:
    """Files and bytes per format (PUID), with the unidentified, invalid, encrypted, DRM-locked and at risk."""
    result = format_report(repo(), collection)
    if as_json or fmt == "json":
        emit_json(result)
    elif fmt == "csv":
        click.echo(for_data_stream(report_csv(result)), nl=False)
    else:
        _profile_table(f"formats of {collection}" if collection else "formats", result)


@formats.command("show")
@click.argument("package_id", type=PACKAGE_ID)
@json_option
def show(package_id: str, as_json: bool) -> None:
    """One package's files with their formats and validation, and its per-format summary (an id or a prefix)."""
    result = package_formats(repo(), package_id)
    if as_json:
        emit_json(result)
        return
    table(f"package {package_id} ({result['name']})",
          ["path", "PUID", "format", "basis", "validation", "locked", "at risk", "findings"],
          [[f["path"], f["puid"] or "(none)", f"{f['format_name']} {f['format_version']}".strip(), f["basis"],
            f["validation"] or "", " ".join(w for w, on in (("encrypted", f["encrypted"]), ("DRM", f["drm"])) if on),
            "yes" if f["at_risk"] else "", " ".join(f["findings"])]
           for f in result["files"]])
    if result["listed"] < result["totals"]["files"]:
        say(f"(the first {result['listed']} of {result['totals']['files']} files; --json for the same list)")
    _profile_table("per format", result)


@formats.command("reidentify")
@click.option("--package", "package_id", type=PACKAGE_ID, default=None, help="Only this package (its id); default: every package "
              "with records of another signature file.")
@json_option
def reidentify(package_id: str | None, as_json: bool) -> None:
    """Identify again, now, the files recorded with another signature file (heads and tails of verified copies).

    The scheduler does the same within the nodes' read budgets; this runs it at once.
    """
    reports = reidentify_due(repo(), package_id)
    if as_json:
        emit_list("packages", reports)
        return
    table("re-identified", ["package", "files", "changed", "read", "unread"],
          [[r["package_id"], r["reidentified"], r["changed"], human_bytes(r["bytes_read"]), len(r["findings"])]
           for r in reports])
