"""Fault-injection suite (issue 7): shared fixtures and the per-fault-class summary."""

from __future__ import annotations

import pytest

from . import summary
from .forkserver import ForkServer


@pytest.fixture(scope="session")
def forkserver():
    server = ForkServer()
    try:
        yield server
    finally:
        server.close()


def pytest_terminal_summary(terminalreporter):
    if summary.LINES:
        terminalreporter.section("fault injection")
        for line in summary.LINES:
            terminalreporter.write_line(line)
