"""What every command module shares: the context object, output and error rendering."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager, Iterable

import click

from preservation import logsetup, units
from preservation.catalog.vocabulary import utcnow
from preservation.errors import EXIT_FINDINGS, Interrupted, InvalidRequest, PreservationError
from preservation.text import for_data_stream, for_terminal, visible_controls

if TYPE_CHECKING:  # the catalog, the settings and Rich are imported by the commands that use them (a fast start)
    from rich.console import Console

    from preservation.catalog.reader import Reader
    from preservation.quick import QuickSettings
    from preservation.repository import Repository
    from preservation.settings import Settings

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@dataclass
class CLIState:
    home: str | None
    log_level: str | None = None  # None: the command's default (warnings; info for services)
    log_file: str | None = None
    log_format: str = "text"

    def configure_logging(self, default_level: str = "warning", *, access_log: bool = True) -> None:
        """Log as the top-level options say (``--log-level``, ``--log-file``, ``--log-format``)."""
        restore = logsetup.configure(self.log_level or default_level, log_file=self.log_file,
                                     log_format=self.log_format, access_log=access_log)
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.find_root().call_on_close(restore)

    @cached_property
    def settings(self) -> Settings:
        from preservation.home import exposed_config
        from preservation.settings import load_settings

        settings = load_settings(self.home)
        _warn_exposed(exposed_config(settings))
        return settings

    @cached_property
    def quick(self) -> QuickSettings:
        """What a quick read-only command needs of the settings and the policy (preservation.quick)."""
        from preservation.quick import quick_settings

        found = quick_settings(self.home)
        _warn_exposed(found.exposed_config)
        return found

    @cached_property
    def repo(self) -> Repository:
        """The repository, its catalog checked to exist (nothing is created) and to be at the current schema."""
        from preservation.home import require_catalog
        from preservation.repository import Repository

        require_catalog(self.settings)
        return Repository(self.settings)


def _warn_exposed(config: Path | None) -> None:
    if config is not None:
        logging.getLogger("preserve.config").warning(
            "%s holds node keys and others than its owner may read it (mode %o): chmod 600 %s",
            config, config.stat().st_mode & 0o777, config)


def state(ctx: click.Context | None = None) -> CLIState:
    ctx = ctx or click.get_current_context()
    return ctx.find_object(CLIState)


def repo() -> Repository:
    return state().repo


def quick_catalog() -> ContextManager[Reader]:
    """A reader on the home's catalog for a read-only command that must start fast (preservation.quick)."""
    from preservation.quick import read_catalog

    return read_catalog(state().quick)


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


PIPE_WIDTH = 10_000  # a table printed to a pipe or file keeps every column whole (rich would cut at 80)


def console(stderr: bool = False) -> Console:
    """A Rich console; when it does not print to a terminal, wide enough that no cell is ever cut."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = PIPE_WIDTH
    return out


def emit_list(key: str, items: list[Any], **counts: Any) -> None:
    """A list as JSON in the one shape lists have: ``{key: [...], "count": n, **counts}``."""
    emit_json({key: items, "count": len(items), **counts})


def stream_list(key: str, items: Iterable[Any]) -> int:
    """:func:`emit_list` for a list too long to hold: each item printed as it comes, the count last.

    Returns the count.
    """
    count = 0
    click.echo(f'{{"{key}": [', nl=False)
    for item in items:
        body = json.dumps(item, ensure_ascii=False, default=_default)
        click.echo(("," if count else "") + "\n  " + for_data_stream(body), nl=False)
        count += 1
    click.echo(f'{chr(10) if count else ""}], "count": {count}}}')
    return count


class PackageIdType(click.ParamType):
    """A package id or a unique prefix of it (at least 4 characters), resolved to the full id.

    The one resolver (:func:`preservation.packages.resolve_package_id`) for every command that takes a package id:
    an unknown id is NotFound, an ambiguous prefix AmbiguousId listing the candidates.
    """

    name = "package_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from preservation.packages import resolve_package_id

        with state(ctx).repo.catalog.session() as s:
            return resolve_package_id(s, value)


class JobIdType(click.ParamType):
    """A job id: a whole number from 1, digits only (no sign, no spaces, no underscores)."""

    name = "job_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        text = str(value)
        if not (text.isascii() and text.isdigit()) or int(text) < 1 or len(text) > 18:
            raise InvalidRequest(f"{for_terminal(text)!r} is not a job id (a whole number from 1): "
                                 "see `preserve jobs list`")
        return int(text)


class TimeType(click.ParamType):
    """A point in time, naive UTC as the catalog stores it: ISO 8601 (UTC unless it names a zone) or ``N[mhd]``
    for that long ago (``30m``, ``24h``, ``7d``; at most 36,500 days)."""

    name = "time"
    _AGO = re.compile(r"([0-9]{1,6})([mhd])")
    _UNITS = {"m": "minutes", "h": "hours", "d": "days"}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        ago = self._AGO.fullmatch(text)
        if ago:
            delta = timedelta(**{self._UNITS[ago.group(2)]: int(ago.group(1))})
            if delta > timedelta(days=36_500):
                raise InvalidRequest(f"{for_terminal(text)!r} is too long ago (at most 36500d)")
            return utcnow() - delta
        try:
            when = datetime.fromisoformat(text) if text.isascii() and len(text) <= 40 else None
        except ValueError:
            when = None
        if when is None:
            raise InvalidRequest(f"{for_terminal(text)!r} is not a time: use ISO 8601 (2026-12-01, "
                                 "2026-12-01T08:00:00+08:00) or an age (30m, 24h, 7d)")
        if when.tzinfo is not None:
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
        return when


TIME = TimeType()
PACKAGE_ID = PackageIdType()
JOB_ID = JobIdType()


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
    from rich.table import Table

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


COMMAND_ARGS = "preserve.command_args"  # ctx.meta key: the command line as typed (to name what Ctrl-C stopped)

# What an interrupted command leaves behind and what finishes it (the default covers every other command:
# each commits in whole transactions, so an interruption leaves the catalog as it was before or after one).
INTERRUPT_NOTES = {
    "ingest": "a delivery not yet registered left nothing in the catalog and its staging copy was removed; "
              "one already registered (see `preserve package list`) has its copies pending: workers "
              "(`preserve worker`) write them, at once when they were queued for workers (as with --wait, which "
              "only stopped waiting), once this command's lease has expired (5 minutes) under --inline",
    "restore": "the partial restore (DEST.partial) was removed and the destination left as it was; "
               "run the restore again",
    "audit": "copies audited before the interruption keep their results; the others keep their previous state "
             "and are audited by the scheduler in turn, or by running `preserve audit` again",
    "challenge": "challenges answered before the interruption are recorded; the others run at their next turn",
    "catalog rebuild": "the catalog is as the last completed step left it: run `preserve catalog rebuild` again",
    "bag": "no bag was completed at the destination (partial output is removed); run the command again",
}
DEFAULT_INTERRUPT_NOTE = ("work the catalog had recorded stays, nothing half-done was registered; queued jobs are "
                          "finished by workers (`preserve status` shows what is pending)")


def interrupted(ctx: click.Context) -> "Interrupted":
    """The error Ctrl-C becomes: which command stopped, what state it left and what will finish it."""
    group = ctx.command if isinstance(ctx.command, click.Group) else None
    words: list[str] = []
    args = ctx.meta.get(COMMAND_ARGS, [])
    name = ctx.invoked_subcommand
    if name and name in args:
        words.append(name)
        sub = group.get_command(ctx, name) if group else None
        rest = [a for a in args[args.index(name) + 1:] if not a.startswith("-")]
        if isinstance(sub, click.Group) and rest:
            words.append(rest[0])
    path = " ".join(words)
    note = INTERRUPT_NOTES.get(path) or INTERRUPT_NOTES.get(words[0] if words else "") or DEFAULT_INTERRUPT_NOTE
    return Interrupted(f"`preserve {path}` stopped by Ctrl-C: {note}" if path else f"stopped by Ctrl-C: {note}",
                       command=path)


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


def show_findings_of(error: PreservationError, as_json: bool) -> None:
    """Before a refusal that carries findings is raised: every finding (JSON with --json), not only the first."""
    findings = getattr(error, "findings", None) or []
    if as_json:
        emit_json({"ok": False, "error": error.to_dict(), "findings": [f.to_dict() for f in findings]})
    else:
        err = console(stderr=True)
        for f in findings:
            say_plain(err, f"  {f}")


def exit_on_findings(ok: bool) -> None:
    """End a command whose report holds findings: exit 1 unless ``ok``, so that scripts see the failure."""
    if not ok:
        raise SystemExit(EXIT_FINDINGS)


def show_progress() -> bool:
    return sys.stderr.isatty() and not os.environ.get("PRESERVE_NO_PROGRESS")
