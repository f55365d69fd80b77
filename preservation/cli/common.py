"""What every command module shares: the context object, output and error rendering."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from preservation.errors import PreservationError
from preservation.repository import Repository
from preservation.settings import Settings, load_settings

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
    """'500G', '2T', '1.5TiB', '1000000' → bytes (decimal units, binary with 'i')."""
    if text is None:
        return None
    t = text.strip().upper().removesuffix("B")
    units = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
             "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40, "PI": 2**50}
    for suffix in sorted(units, key=len, reverse=True):
        if t.endswith(suffix):
            number = t[: -len(suffix)]
            try:
                return int(float(number) * units[suffix])
            except ValueError:
                break
    try:
        return int(t)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 500G, 2T, 1.5TiB)") from None


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _default(o: Any) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_default))


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console().print(t)


def fail(error: PreservationError) -> None:
    """Print a coded error to stderr and exit with its exit code."""
    console(stderr=True).print(f"[bold red]error {error.code}[/]: {error.message}", markup=True, highlight=False)
    raise SystemExit(error.exit_code)


def show_progress() -> bool:
    return sys.stderr.isatty() and not os.environ.get("PRESERVE_NO_PROGRESS")


def run_guarded(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except PreservationError as e:
        fail(e)
