"""`preserve bag`: build a BagIt bag from a delivery, validate a bag."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from preservation.bagit import create_bag, open_delivery, validate_bag
from preservation.bagit.delivery_base import Delivery
from preservation.errors import BagInvalid, DeliveryRejected
from preservation.findings import Finding

from preservation.text import for_terminal

from .common import console, emit_json, exit_on_findings, fail, json_option, show_progress, table

workers_option = click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Threads reading and hashing files."
)


@click.group("bag")
def bag() -> None:
    """Build and validate BagIt (RFC 8493) bags."""


@bag.command("create")
@click.argument("src", type=click.Path())
@click.argument("dest", type=click.Path())
@click.option(
    "--info",
    "infos",
    multiple=True,
    metavar="KEY=VALUE",
    help="A bag-info.txt tag (repeat for more, or for several values of one tag).",
)
@workers_option
@json_option
def create(src: str, dest: str, infos: tuple[str, ...], workers: int, as_json: bool) -> None:
    """Bag the delivery SRC (directory, bag, .tar, .tar.gz, .zip) into the new directory DEST."""
    bag_info = _parse_infos(infos)
    try:
        delivery = open_delivery(src)
        with delivery, _byte_progress(delivery, "bagging") as progress:
            result = create_bag(delivery, dest, bag_info, workers=workers, progress=progress)
    except DeliveryRejected as e:
        _refused(e, e.findings, as_json)
    except BagInvalid as e:
        _refused(e, list(e.report.findings) if e.report is not None else [], as_json)
    if as_json:
        emit_json(result.to_dict())
        return
    _show_findings(result.findings)
    table(
        f"bag {result.path}",
        ["version", "payload files", "payload bytes", "Payload-Oxum", "algorithms", "from"],
        [
            [
                result.version,
                result.payload_files,
                result.payload_bytes,
                result.payload_oxum,
                ", ".join(result.algorithms),
                result.source_kind,
            ]
        ],
    )


@bag.command("validate")
@click.argument("path", type=click.Path())
@click.option("--profile", "profile", type=click.Path(dir_okay=False), help="A BagIt profile JSON file to check too.")
@click.option("--completeness-only", is_flag=True, help="Check that every file is present; do not read payload bytes.")
@workers_option
@json_option
def validate(path: str, profile: str | None, completeness_only: bool, workers: int, as_json: bool) -> None:
    """Validate the bag at PATH; exit 0 when valid, 1 when it has errors (warnings do not fail)."""
    with _file_progress("validating") as progress:
        report = validate_bag(
            path, workers=workers, profile=profile, completeness_only=completeness_only, progress=progress
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        _show_findings(report.findings)
        verdict = "[green]valid[/]" if report.valid else "[bold red]invalid[/]"
        console().print(
            f"{for_terminal(report.path)}: {verdict} (BagIt {report.version}, {report.payload_files} payload files, "
            f"{len(report.errors)} errors, {len(report.warnings)} warnings)",
            markup=True,
            highlight=False,
        )
    exit_on_findings(report.valid)


def _parse_infos(infos: Iterable[str]) -> dict[str, list[str]]:
    bag_info: dict[str, list[str]] = {}
    for item in infos:
        label, sep, value = item.partition("=")
        if not sep or not label.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--info")
        bag_info.setdefault(label.strip(), []).append(value)
    return bag_info


def _show_findings(findings: Iterable[Finding]) -> None:
    rows = [[f.code, f.severity, f.path or "", f.message] for f in findings]
    if rows:
        table(None, ["code", "severity", "file", "message"], rows)


def _refused(error: DeliveryRejected | BagInvalid, findings: list[Finding], as_json: bool) -> None:
    if as_json:
        emit_json({"error": error.to_dict(), "findings": [f.to_dict() for f in findings]})
    else:
        _show_findings(findings)
    fail(error)


@contextmanager
def _byte_progress(delivery: Delivery, label: str) -> Iterator:
    """A progress callback with a byte bar on a terminal, else None."""
    if not show_progress():
        yield None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done_bytes: int, done_files: int) -> None:
            total = delivery.totals.bytes if delivery.totals is not None else None
            bar.update(task, completed=done_bytes, total=total)

        yield update


@contextmanager
def _file_progress(label: str) -> Iterator:
    if not show_progress():
        yield None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TextColumn("{task.fields[files]} files"))
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None, files=0)

        def update(done_bytes: int, done_files: int) -> None:
            bar.update(task, completed=done_bytes, files=done_files)

        yield update
