"""Witness agents shared by the evidence tests (started once: each test's log has its own origin, so its own
records on them)."""

from __future__ import annotations

import pytest

from .witnesses import start_witnesses


@pytest.fixture(scope="package")
def agents(tmp_path_factory):
    """Three node agents with witness keys, as processes."""
    running = start_witnesses(tmp_path_factory.mktemp("witnesses"))
    try:
        yield running
    finally:
        for agent in running.values():
            agent.stop()
