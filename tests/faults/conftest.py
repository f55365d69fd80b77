"""Fault-injection suite (issue 7): shared fixtures and the per-fault-class summary."""

from __future__ import annotations

import pytest

from .forkserver import ForkServer


@pytest.fixture(scope="session")
def forkserver():
    server = ForkServer()
    try:
        yield server
    finally:
        server.close()
