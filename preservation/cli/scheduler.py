"""`preserve scheduler`: plan audits, place missing copies, requeue repairs — one active, others standby."""

from __future__ import annotations

import click

from preservation.runtime.scheduler import SchedulerService

from .common import json_option, repo
from .service import configure_logging, hangup_signal, stop_signals


@click.command("scheduler")
@click.option("--tick", type=click.FloatRange(0.1), default=60, show_default=True, envvar="PRESERVE_TICK_SECONDS",
              metavar="SECONDS", help="How often the periodic tasks run.")
@click.option("--standby-retry", type=click.FloatRange(0.1), default=5, show_default=True, metavar="SECONDS",
              help="How often a standby tries to become the active scheduler.")
@click.option("--verbose", "-v", is_flag=True)
@json_option
def scheduler(tick: float, standby_retry: float, verbose: bool, as_json: bool) -> None:
    """Run the periodic tasks while this is the active scheduler; wait as a standby otherwise.

    SIGHUP, or a change of the policy file, reloads the policy without a restart (a bad one is refused).
    """
    configure_logging(verbose, as_json=as_json)
    service = SchedulerService(repo(), tick=tick, standby_retry=standby_retry)
    with stop_signals(service.stop, service.stop), hangup_signal(service.reload_policy):
        service.run()
