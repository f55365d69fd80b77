"""Entry point of the `preserve` command."""

from __future__ import annotations

import click

from preservation import logsetup
from preservation.errors import InvalidRequest, PreservationError

from .access import access
from .audit import audit
from .bag import bag
from .catalog import catalog, init
from .challenge import challenge
from .collection import collection
from .config import config
from .common import COMMAND_ARGS, JSON_ERRORS, CLIState, fail, interrupted, json_requested
from .deaccession import deaccession
from .entitlement import entitlement
from .events import events
from .formats import formats
from .holdings import holdings
from .ingest import ingest
from .item import item
from .jobs import jobs
from .library import library
from .node import node
from .package import package
from .repair import repair
from .restore import restore
from .scheduler import scheduler
from .search import search_
from .serve import serve
from .status import status
from .title import title
from .trigger import trigger
from .usage import usage
from .version import version
from .worker import worker


class PreserveGroup(click.Group):
    """Turns every PreservationError into its message (JSON with ``--json``) and exit code."""

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


@click.group(cls=PreserveGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


# Command groups: one module each, attached here (add one line per group).
COMMANDS: list[click.Command] = [
    init, catalog, node, collection, package, ingest, audit, challenge, repair, restore, status, events, bag,  # preservation
    jobs, worker, scheduler, config,  # the system that runs itself, and checking its configuration
    library, entitlement, trigger, access, usage, serve,  # access to dark content
    title, holdings,  # titles, KBART and completeness
    item,  # what the packages hold, in library terms
    formats,  # what the preserved bytes are
    search_,  # titles and items
    version, deaccession,  # versions of a package, and withdrawing them
]
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="preserve")
