"""Every storage back end the contract suite runs against.

A back end (or a wrapper) joins the suite by adding one factory here: it takes
the pytest ``request`` and ``tmp_path`` and returns a fresh, empty adapter.
The node back end is itself a wrapper: NodeAdapter is the retry wrapper
around NodeStore.
"""

from __future__ import annotations

from typing import Callable

from storage_adapters import StorageAdapter, open_adapter
from storage_adapters.wrappers import RetryingAdapter
from tests.node_agent.agents import ThreadedAgent


def make_file_adapter(request, tmp_path) -> StorageAdapter:
    return open_adapter((tmp_path / "fsnode").as_uri())


def make_s3_adapter(request, tmp_path) -> StorageAdapter:
    server = request.getfixturevalue("s3_env")
    return open_adapter(server.uri(request.getfixturevalue("s3_bucket"), "node"))


def make_node_adapter(request, tmp_path) -> StorageAdapter:
    agent = ThreadedAgent(tmp_path / "agent-root", allow_delete=True).start()
    request.addfinalizer(agent.stop)
    return agent.adapter()


def make_retrying_file_adapter(request, tmp_path) -> StorageAdapter:
    """A wrapper joins the suite too: it must keep every promise of what it wraps."""
    return RetryingAdapter(make_file_adapter(request, tmp_path), retries=2, backoff=0)


BACKENDS: dict[str, Callable] = {
    "file": make_file_adapter,
    "file-retrying": make_retrying_file_adapter,
    "node": make_node_adapter,
    "s3": make_s3_adapter,
}
