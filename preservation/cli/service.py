"""What the long-running commands (worker, scheduler) share: logging and signal handling."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Callable


def configure_logging(verbose: bool) -> None:
    """Log lines with time and level to stderr (APScheduler's and Alembic's chatter only from warnings up)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True,
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def on_stop_signals(first: Callable[[], None], again: Callable[[], None]) -> None:
    """SIGTERM/SIGINT call ``first``; a second one calls ``again``."""
    received = []

    def handle(signum, _frame) -> None:
        logging.getLogger("preserve").info("received %s", signal.Signals(signum).name)
        (again if received else first)()
        received.append(signum)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
