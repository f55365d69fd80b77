"""FIFOs, sockets and symbolic links in node storage are never data, on every back end where they can be.

A filesystem store directly, and the same store behind a node agent: the
listing leaves them out (and marks them for a caller that reports them), and
stat, read, digest and challenge refuse them with E310 instead of answering
as if they were empty files, without ever waiting on a FIFO.  (S3 has no such
objects: every key of a bucket is a regular object.)
"""

from __future__ import annotations

import hashlib
import json

import pytest

from preservation.errors import NotRegularFile
from storage_adapters import read_all
from storage_adapters.filesystem import FilesystemAdapter
from tests.node_agent.agents import ThreadedAgent, raw_request

from ..corruption import replace_with_fifo, replace_with_socket, replace_with_symlink

GOOD = b"the only real file"
IRREGULAR = {"pkg/data/pipe": "fifo", "pkg/data/sock": "socket", "pkg/data/link": "symbolic link",
             "pkg/data/dirlink": "symbolic link"}

# a FIFO opened the blocking way would hang the test: fail it instead
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def root(tmp_path):
    data = tmp_path / "root" / "pkg" / "data"
    data.mkdir(parents=True)
    (data / "good.bin").write_bytes(GOOD)
    (data / "sub").mkdir()
    (data / "sub" / "inner.bin").write_bytes(b"inner")
    replace_with_fifo(data / "pipe")
    replace_with_socket(data / "sock")
    replace_with_symlink(data / "link", data / "good.bin")
    replace_with_symlink(data / "dirlink", data / "sub")
    return tmp_path / "root"


@pytest.fixture(params=["file", "node"])
def store(request, root):
    if request.param == "file":
        yield FilesystemAdapter(root.as_uri())
        return
    agent = ThreadedAgent(root).start()
    adapter = agent.adapter(retries=0)
    try:
        yield adapter
    finally:
        adapter.close()
        agent.stop()


def test_a_listing_holds_only_regular_files(store):
    assert [o.key for o in store.list("pkg/")] == ["pkg/data/good.bin", "pkg/data/sub/inner.bin"]
    marked = {o.key: o.irregular for o in store.list("pkg/", irregular=True) if o.irregular}
    assert marked == IRREGULAR


def test_the_inventory_names_them_without_a_size(store):
    listed = dict(store.inventory("pkg/"))
    assert {key: listed[key] for key in IRREGULAR} == dict.fromkeys(IRREGULAR)


@pytest.mark.parametrize("key", sorted(IRREGULAR))
def test_stat_read_digest_and_challenge_refuse_them(store, key):
    for operation in (
        lambda: store.stat(key),
        lambda: read_all(store, key),
        lambda: store.challenge(key, 0, 1, b"n" * 16),
    ):
        with pytest.raises(NotRegularFile) as caught:
            operation()
        assert caught.value.code == "E310"
    (result,) = store.digest_many([key], ("sha256",))
    assert isinstance(result.error, NotRegularFile) and result.error.code == "E310"


def test_digest_many_names_them_and_digests_the_rest(store):
    keys = ["pkg/data/good.bin", *sorted(IRREGULAR)]
    results = {r.key: r for r in store.digest_many(keys, ("sha256",), workers=2)}
    assert results["pkg/data/good.bin"].digests == {"sha256": hashlib.sha256(GOOD).hexdigest()}
    for key in IRREGULAR:
        assert results[key].digests is None and results[key].error.code == "E310", results[key]


def test_the_agent_marks_them_in_its_listing_and_never_digests_a_fifo_as_empty(root):
    agent = ThreadedAgent(root).start()
    try:
        lines = [json.loads(x) for x in raw_request(agent.port, "GET", "/v1/list?prefix=pkg/").body.splitlines()]
        assert {d["key"]: d.get("irregular") for d in lines if "key" in d and d.get("irregular")} == IRREGULAR
        body = json.dumps({"keys": ["pkg/data/pipe"], "algorithms": ["sha256"]}).encode()
        [line, end] = [json.loads(x) for x in raw_request(agent.port, "POST", "/v1/digest", body).body.splitlines()]
        assert "digests" not in line and line["error"]["code"] == "E310" and line["error"]["params"]["kind"] == "fifo"
        assert end["errors"] == 1
        body = json.dumps({"key": "pkg/data/pipe", "offset": 0, "length": 1, "nonce": "ab" * 16}).encode()
        response = raw_request(agent.port, "POST", "/v1/challenge", body)
        assert response.status == 400 and json.loads(response.body)["code"] == "E310"
        response = raw_request(agent.port, "GET", "/v1/objects/pkg/data/pipe")
        assert response.status == 400 and json.loads(response.body)["code"] == "E310"
    finally:
        agent.stop()
