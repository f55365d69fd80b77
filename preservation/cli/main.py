"""Entry point of the `preserve` command."""

from __future__ import annotations

import importlib
from gettext import gettext
from typing import Any

import click

from preservation import logsetup
from preservation.errors import InvalidRequest, PreservationError

from .common import COMMAND_ARGS, JSON_ERRORS, CLIState, fail, interrupted, json_requested

# Every command group, by name: "module:attribute" of its click object, and the short help `preserve --help`
# shows.  A command module is imported only when its command runs (or a walk loads them all: `cli.load_all()`),
# so `preserve --help`, `preserve status` and `preserve node list` never load the access service, FIDO or the
# validators.  To add a command group: one line here.  tests/test_cli_start.py fails when a module's command
# group is missing here or its help here differs from the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    # preservation
    "init": ("preservation.cli.catalog:init", "Create the home (config + catalog) or bring its catalog schema up to date."),
    "catalog": ("preservation.cli.catalog:catalog", "The catalog database: schema upgrades, checks, backups."),
    "node": ("preservation.cli.node:node",
             "Preservation nodes: register, list, change status, re-point, rename, remove, serve."),
    "collection": ("preservation.cli.collection:collection", "Collections (licensed databases)."),
    "package": ("preservation.cli.package:package", "Preserved packages: list them, show one."),
    "ingest": ("preservation.cli.ingest:ingest", "Ingest SOURCE (directory, bag, .tar, .tar.gz, .zip) into COLLECTION."),
    "audit": ("preservation.cli.audit:audit", "Re-read every selected copy in full; exit 1 if any copy failed."),
    "challenge": ("preservation.cli.challenge:challenge",
                  "Ask random verified copies for a digest of random bytes; exit 1 if any answer is wrong."),
    "repair": ("preservation.cli.repair:repair",
               "Repair PACKAGE_ID's damaged copies now, or re-supply lost files with --from-file."),
    "restore": ("preservation.cli.restore:restore",
                "Write the bag of PACKAGE_ID (of its version N) into the new directory DEST."),
    "status": ("preservation.cli.status:status",
               "Show what is preserved, where, how recently it was verified, and the recent incidents."),
    "events": ("preservation.cli.events:events", "The PREMIS event log (hash-chained)."),
    "witness-keys": ("preservation.cli.witness_keys:witness_keys",
                     "The nodes' witness keys: list, show, trust (import) and rotate them."),
    "bag": ("preservation.cli.bag:bag", "Build and validate BagIt (RFC 8493) bags."),
    # the system that runs itself
    "jobs": ("preservation.cli.jobs:jobs", "The job queue workers take their work from."),
    "worker": ("preservation.cli.worker:worker",
               "Claim jobs from the catalog and run them until stopped (SIGTERM/SIGINT: finish, then exit 0)."),
    "scheduler": ("preservation.cli.scheduler:scheduler",
                  "Run the periodic tasks while this is the active scheduler; wait as a standby otherwise."),
    "config": ("preservation.cli.config:config", "Check this home's configuration."),
    # access to dark content
    "library": ("preservation.cli.library:library", "Member libraries, their users and API keys."),
    "entitlement": ("preservation.cli.entitlement:entitlement", "Entitlements: library × collection × year range."),
    "trigger": ("preservation.cli.trigger:trigger", "Trigger events (publisher ceased, title discontinued …)."),
    "access": ("preservation.cli.access:access", "Access requests, decisions and grants."),
    "usage": ("preservation.cli.usage:usage", "Usage of released content (COUNTER Release 5.1)."),
    "serve": ("preservation.cli.serve:serve",
              "Serve the access portal and APIs until interrupted (an access log line per request, dated)."),
    # titles, KBART and completeness; what the packages hold, in library terms
    "title": ("preservation.cli.title:title",
              "Titles: journals, books and databases, their identifiers and what is preserved of them."),
    "holdings": ("preservation.cli.holdings:holdings",
                 "Holdings in library terms: coverage preserved, gaps, verification, KBART export."),
    "item": ("preservation.cli.item:item", "Items (articles, books, chapters) read from deliveries' metadata."),
    # what the preserved bytes are
    "formats": ("preservation.cli.formats:formats",
                "What the preserved bytes are: PRONOM formats, validation, what is at risk."),
    # titles and items
    "search": ("preservation.cli.search:search_",
               "Find titles and items by words of their titles (Chinese too: 物理 finds 中国物理学报), or exactly by ISSN, "
               "ISBN, CN number or DOI; narrow by author and year."),
    # versions of a package, and withdrawing them
    "version": ("preservation.cli.version:version", "Versions of a package: list them, show what changed."),
    "deaccession": ("preservation.cli.deaccession:deaccession",
                    "Withdraw PACKAGE_ID (or its --version N …) and delete the bytes it stored from every node."),
}


class PreserveGroup(click.Group):
    """Loads each command group on first use (``lazy``: :data:`COMMANDS`); turns every PreservationError into
    its message (JSON with ``--json``) and exit code."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = self.commands.get(name)
        if command is None and name in self.lazy:
            module, _, attribute = self.lazy[name][0].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from the short help in :data:`COMMANDS`: no command is imported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:  # click's own shortening, on a stand-in that carries the help text
                command = click.Command(name, help=self.lazy[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section(gettext("Commands")):
            formatter.write_dl(rows)

    def load_all(self) -> dict[str, click.Command]:
        """Every command group, imported: for walks over the whole tree, and for a process that forks many."""
        ctx = click.Context(self)
        return {name: command for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[JSON_ERRORS] = "--json" in args
        ctx.meta[COMMAND_ARGS] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PreservationError as e:
            fail(e)
        except click.ClickException as e:
            if not json_requested():
                raise
            error = InvalidRequest(e.format_message(), usage=True)
            error.exit_code = e.exit_code  # the exit code click would have used, the message as JSON
            fail(error)
        except (KeyboardInterrupt, click.Abort):
            fail(interrupted(ctx))  # what state was left and what finishes it, not "Aborted!"


@click.group(cls=PreserveGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="PRESERVE_HOME",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory holding preserve.yaml and the default catalog (env PRESERVE_HOME, default ~/.preserve).",
)
@click.option("--log-level", envvar="PRESERVE_LOG_LEVEL", type=click.Choice(logsetup.LEVELS, case_sensitive=False),
              default=None, help="Log from this level up (default: warning; info for worker, scheduler, serve).")
@click.option("--log-file", envvar="PRESERVE_LOG_FILE", type=click.Path(dir_okay=False), default=None,
              help="Append log lines to this file instead of standard error.")
@click.option("--log-format", envvar="PRESERVE_LOG_FORMAT", type=click.Choice(logsetup.FORMATS), default="text",
              show_default=True, help="text lines, or one JSON object per line.")
@click.version_option(package_name="preserve")
@click.pass_context
def cli(ctx: click.Context, home: str | None, log_level: str | None, log_file: str | None, log_format: str) -> None:
    """preserve: BagIt packages, verified replicas on many nodes, audits and repair."""
    ctx.obj = CLIState(home=home, log_level=log_level, log_file=log_file, log_format=log_format)
    if log_level or log_file or log_format != "text":
        ctx.obj.configure_logging()


def main() -> None:
    cli(prog_name="preserve")
