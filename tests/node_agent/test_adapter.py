"""NodeAdapter: URIs and credentials, retries and their limits, resumed reads, traffic accounting."""

from __future__ import annotations

import hashlib
import os

import pytest

from preservation.errors import AccessDenied, ConfigError, ObjectNotFound, StorageUnavailable, UnsupportedURI
from storage_adapters import open_adapter, read_all, traffic
from storage_adapters.features import FEATURE_NODE_DIGEST
from storage_adapters.node import NodeAdapter
from tests.services import free_port

from .agents import KEY, KEY_ID, ThreadedAgent

MiB = 1024 * 1024


# --- URIs and credentials -------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "node+http://user:secret@127.0.0.1:8101",
        "node+http://127.0.0.1:8101?key=secret",
        "node+http://127.0.0.1",
        "node+http://127.0.0.1:8101/../up",
        "node+ftp://127.0.0.1:8101",
    ],
)
def test_bad_uris_are_refused(uri):
    with pytest.raises(UnsupportedURI):
        NodeAdapter(uri, key=KEY)


def test_credentials_never_in_the_uri_message_says_where_they_go():
    with pytest.raises(UnsupportedURI, match="PRESERVE_NODE_KEY"):
        NodeAdapter("node+http://user:secret@127.0.0.1:8101", key=KEY)


def test_key_comes_from_options_or_the_environment():
    with pytest.raises(ConfigError, match="PRESERVE_NODE_KEY"):
        NodeAdapter("node+http://127.0.0.1:8101", environ={})
    with pytest.raises(ConfigError, match="shorter"):
        NodeAdapter("node+http://127.0.0.1:8101", key="short")
    adapter = NodeAdapter(
        "node+http://127.0.0.1:8101", environ={"PRESERVE_NODE_KEY": KEY, "PRESERVE_NODE_KEY_ID": "auditor"}
    )
    assert adapter.inner._key_id == "auditor" and KEY not in repr(adapter) and KEY not in adapter.location
    adapter.close()


def test_open_adapter_picks_the_node_back_end_and_it_declares_node_digests(agent):
    with open_adapter(agent.uri, key_id=KEY_ID, key=KEY) as adapter:
        assert isinstance(adapter, NodeAdapter)
        assert FEATURE_NODE_DIGEST in adapter.features


def test_uri_prefix_is_a_key_prefix_on_the_node(agent):
    with agent.adapter(agent.uri + "/tenant/a") as scoped, agent.adapter() as whole:
        scoped.write("pkg/file", b"scoped")
        assert (agent.root / "tenant" / "a" / "pkg" / "file").read_bytes() == b"scoped"
        whole.write("elsewhere", b"not listed by the scoped adapter")
        assert [o.key for o in scoped.list()] == ["pkg/file"]
        assert {r.key for r in scoped.digest_many(["pkg/file"])} == {"pkg/file"}
        assert scoped.location.endswith("/tenant/a")


# --- failures and retries ---------------------------------------------------------------


def test_an_agent_that_is_not_running_is_unavailable_with_a_hint():
    adapter = NodeAdapter(f"node+http://127.0.0.1:{free_port()}", key=KEY, retries=2, backoff=0.01)
    with pytest.raises(StorageUnavailable, match="is `preserve node serve` running") as caught:
        adapter.stat("x")
    assert caught.value.retryable
    results = list(adapter.digest_many(["a", "b"]))
    assert [type(r.error) for r in results] == [StorageUnavailable, StorageUnavailable]
    adapter.close()


def test_wrong_key_is_access_denied_not_retried(agent):
    with NodeAdapter(agent.uri, key_id=KEY_ID, key="a-wrong-key-of-enough-length", retries=3) as adapter:
        with pytest.raises(AccessDenied, match="refused the request"):
            adapter.stat("x")


class Flaky:
    """ASGI middleware: answer the first ``failures`` requests with ``status``; count every request."""

    def __init__(self, app, failures: int, status: int = 503) -> None:
        self.app = app
        self.failures = failures
        self.status = status
        self.requests = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.requests += 1
            if self.failures > 0:
                self.failures -= 1
                await send({"type": "http.response.start", "status": self.status, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_transient_answers_are_retried(tmp_path, status):
    flaky = {}

    def wrap(app):
        flaky["app"] = Flaky(app, failures=2, status=status)
        return flaky["app"]

    agent = ThreadedAgent(tmp_path / "root", wrap=wrap).start()
    try:
        (tmp_path / "root" / "x").write_bytes(b"here")
        with agent.adapter(retries=3, backoff=0.01) as node:
            assert node.stat("x").size == 4
        assert flaky["app"].requests == 3
    finally:
        agent.stop()


def test_client_errors_are_never_retried(tmp_path):
    flaky = {}

    def wrap(app):
        flaky["app"] = Flaky(app, failures=0)
        return flaky["app"]

    agent = ThreadedAgent(tmp_path / "root", wrap=wrap).start()
    try:
        with agent.adapter(retries=3, backoff=0.01) as node:
            with pytest.raises(ObjectNotFound):
                node.stat("missing")
        assert flaky["app"].requests == 1
    finally:
        agent.stop()


class CutsReads:
    """ASGI middleware: cut the first object read after ``after`` body bytes (the connection breaks)."""

    def __init__(self, app, after: int) -> None:
        self.app = app
        self.after = after
        self.cut = False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith("/v1/objects/"):
            await self.app(scope, receive, send)
            return
        sent = 0

        async def cutting_send(message):
            nonlocal sent
            if message["type"] == "http.response.body" and not self.cut:
                body = message.get("body", b"")
                if sent + len(body) > self.after:
                    self.cut = True
                    await send({**message, "body": body[: self.after - sent], "more_body": True})
                    raise ConnectionResetError("cut by the test")
                sent += len(body)
            await send(message)

        await self.app(scope, receive, cutting_send)


def test_a_read_broken_mid_stream_resumes_where_it_stopped(tmp_path):
    wrapped = {}

    def wrap(app):
        wrapped["app"] = CutsReads(app, after=3 * 1024 * 1024 + 17)
        return wrapped["app"]

    data = os.urandom(9 * 1024 * 1024)
    agent = ThreadedAgent(tmp_path / "root", wrap=wrap).start()
    try:
        (tmp_path / "root" / "big").write_bytes(data)
        with agent.adapter(retries=2, backoff=0.01) as node:
            assert hashlib.sha256(read_all(node, "big")).digest() == hashlib.sha256(data).digest()
        assert wrapped["app"].cut
    finally:
        agent.stop()


# --- traffic ---------------------------------------------------------------------------------


def test_traffic_counts_bodies_both_ways_and_digests_cost_little(node):
    data = os.urandom(2 * 1024 * 1024)
    assert traffic(node) == 0
    node.write("t/big", data)
    after_write = traffic(node)
    assert len(data) < after_write < len(data) + 10_000
    assert read_all(node, "t/big") == data
    after_read = traffic(node)
    assert len(data) < after_read - after_write < len(data) + 10_000
    list(node.digest_many(["t/big"], ["sha256", "sha512"]))
    assert 0 < traffic(node) - after_read < 5_000


def test_a_large_write_refused_up_front_reports_the_refusal_not_a_broken_pipe(agent):
    with NodeAdapter(agent.uri, key_id=KEY_ID, key="a-wrong-key-of-enough-length", retries=0) as adapter:
        with pytest.raises(AccessDenied, match="refused the request"):
            adapter.write("big", (os.urandom(MiB) for _ in range(32)))
    assert list(agent.root.iterdir()) == []
