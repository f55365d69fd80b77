"""Fixtures for the node agent tests: an in-process agent over a filesystem root, and its adapter."""

from __future__ import annotations

import pytest

from .agents import ThreadedAgent


@pytest.fixture
def agent(tmp_path):
    """An agent (deletes allowed) over ``tmp_path/root``, beside ``tmp_path/outside``."""
    (tmp_path / "root").mkdir()
    running = ThreadedAgent(tmp_path / "root", allow_delete=True).start()
    yield running
    running.stop()


@pytest.fixture
def node(agent):
    """A NodeAdapter talking to ``agent``."""
    adapter = agent.adapter(retries=1, backoff=0.01)
    yield adapter
    adapter.close()
