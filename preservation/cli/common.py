"""What every command module shares: the context object, output and error rendering."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from preservation import units
from preservation.errors import EXIT_FINDINGS, PreservationError
from preservation.repository import Repository
from preservation.settings import Settings, load_settings
from preservation.text import for_data_stream, for_terminal, visible_controls

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@dataclass
class CLIState:
    home: str | None

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.home)

    @cached_property
    def repo(self) -> Repository:
        """The repository, its catalog checked to be at the current schema."""
        return Repository(self.settings)


def state(ctx: click.Context | None = None) -> CLIState:
    ctx = ctx or click.get_current_context()
    return ctx.find_object(CLIState)


def repo() -> Repository:
    return state().repo


def parse_size(text: str | None) -> int | None:
    """A size option ('500G', '2T', '1.5TiB') in bytes; None stays None."""
    if text is None:
        return None
    try:
        return units.parse_size(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 500G, 2T, 1.5TiB)") from None



def _default(o: Any) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def emit_json(data: Any) -> None:
    click.echo(for_data_stream(json.dumps(data, ensure_ascii=False, indent=2, default=_default)))


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def say(text: str, *, err: bool = False) -> None:
    """Print one plain line for a person.

    Lines carry outside text (names, reasons, paths, error messages): its
    control characters are shown as ``\\xNN`` instead of moving the cursor,
    recolouring the terminal or starting a second line.
    """
    click.echo(visible_controls(text), err=err)


def say_plain(out: Console, text: str) -> None:
    """:func:`say` on a Rich console, markup off: for lines printed between Rich output."""
    out.print(visible_controls(text), markup=False, highlight=False)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A table of cells that are data, never markup: ``[bold]`` shows as typed, controls as ``\\xNN``."""
    t = Table(title=None if title is None else for_terminal(title), show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else for_terminal(v) for v in r])
    console().print(t)


JSON_ERRORS = "preserve.json_errors"  # ctx.meta key: the command line holds --json


def json_requested() -> bool:
    """True when the command line asked for ``--json`` (the top group notes it before parsing)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(JSON_ERRORS))


def fail(error: PreservationError, *, as_json: bool | None = None) -> None:
    """Print a coded error to stderr and exit with its exit code.

    With ``--json`` the error is one JSON object (``{"ok": false, "error": {...}}``) so that scripts
    parse failures as they parse results; otherwise a line whose outside text is escaped.
    """
    if as_json if as_json is not None else json_requested():
        click.echo(for_data_stream(json.dumps({"ok": False, "error": error.to_dict()}, ensure_ascii=False)), err=True)
    else:
        console(stderr=True).print(f"[bold red]error {error.code}[/]: {for_terminal(error.message)}", markup=True,
                                   highlight=False)
    raise SystemExit(error.exit_code)


def exit_on_findings(ok: bool) -> None:
    """End a command whose report holds findings: exit 1 unless ``ok``, so that scripts see the failure."""
    if not ok:
        raise SystemExit(EXIT_FINDINGS)


def show_progress() -> bool:
    return sys.stderr.isatty() and not os.environ.get("PRESERVE_NO_PROGRESS")
