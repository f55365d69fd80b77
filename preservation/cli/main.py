"""Entry point of the `preserve` command."""

from __future__ import annotations

import click

from preservation.errors import PreservationError

from .access import access
from .audit import audit
from .bag import bag
from .catalog import catalog, init
from .challenge import challenge
from .collection import collection
from .common import JSON_ERRORS, CLIState, fail
from .entitlement import entitlement
from .events import events
from .formats import formats
from .holdings import holdings
from .ingest import ingest
from .item import item
from .jobs import jobs
from .library import library
from .node import node
from .restore import restore
from .scheduler import scheduler
from .search import search_
from .serve import serve
from .status import status
from .title import title
from .trigger import trigger
from .usage import usage
from .worker import worker


class PreserveGroup(click.Group):
    """Turns every PreservationError into its message (JSON with ``--json``) and exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[JSON_ERRORS] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PreservationError as e:
            fail(e)


@click.group(cls=PreserveGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="PRESERVE_HOME",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory holding preserve.yaml and the default catalog (env PRESERVE_HOME, default ~/.preserve).",
)
@click.version_option(package_name="preserve")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """preserve: BagIt packages, verified replicas on many nodes, audits and repair."""
    ctx.obj = CLIState(home=home)


# Command groups: one module each, attached here (add one line per group).
COMMANDS: list[click.Command] = [
    init, catalog, node, collection, ingest, audit, challenge, restore, status, events, bag,  # preservation
    jobs, worker, scheduler,  # the system that runs itself
    library, entitlement, trigger, access, usage, serve,  # access to dark content
    title, holdings,  # titles, KBART and completeness
    item,  # what the packages hold, in library terms
    formats,  # what the preserved bytes are
    search_,  # titles and items
]
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="preserve")
