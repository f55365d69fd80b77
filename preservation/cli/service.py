"""What the long-running commands (worker, scheduler) share: logging and signal handling."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from typing import Callable, Iterator

from preservation.text import safe_log_handler


def configure_logging(verbose: bool) -> None:
    """Log lines with time and level to stderr, outside text in them escaped.

    APScheduler's and Alembic's chatter is logged only from warnings up.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[safe_log_handler(sys.stderr)],
                        force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


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
