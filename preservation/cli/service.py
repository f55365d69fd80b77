"""What the long-running commands (worker, scheduler) share: logging and signal handling."""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import Callable, Iterator

import click

from .common import CLIState, state


def configure_logging(verbose: bool = False, *, access_log: bool = True, as_json: bool = False) -> None:
    """Log lines with a UTC time and the level, outside text in them escaped (:mod:`preservation.logsetup`).

    Info and up unless ``--log-level`` (or ``-v``: debug) says otherwise; per-request lines
    of HTTP libraries, APScheduler's and Alembic's chatter only from warnings up.
    """
    ctx = click.get_current_context(silent=True)
    cli_state = ctx and state(ctx) or CLIState(home=None)
    if as_json:  # a service's --json: its log lines are JSON objects (as --log-format json)
        cli_state.log_format = "json"
    cli_state.configure_logging("debug" if verbose else "info", access_log=access_log)


@contextlib.contextmanager
def hangup_signal(reload: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGHUP calls ``reload`` (it must only set a flag); the old handler comes back after."""

    def handle(signum, _frame) -> None:
        logging.getLogger("preserve").info("received SIGHUP: reloading the policy")
        reload()

    previous = signal.signal(signal.SIGHUP, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextlib.contextmanager
def stop_signals(first: Callable[[], None], again: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGTERM/SIGINT call ``first`` and any further one ``again``; the old handlers come back after."""
    received = []

    def handle(signum, _frame) -> None:
        logging.getLogger("preserve").info("received %s", signal.Signals(signum).name)
        (again if received else first)()
        received.append(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
