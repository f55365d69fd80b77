"""The agent's endpoints: ranges, listing pages, guarded deletes, node-side digests, challenges, errors."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import time
from urllib.parse import quote

import pytest

from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    InvalidKey,
    InvalidRequest,
    ObjectNotFound,
    RetentionLocked,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from preservation.node_agent.responses import status_for
from storage_adapters import read_all
from storage_adapters.filesystem import FilesystemAdapter
from storage_adapters.signing import possession_proof

from .agents import ThreadedAgent, raw_request

DATA = bytes(range(256)) * 40  # 10 240 bytes


def ndjson(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line]


# --- reads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header,status,expected,content_range",
    [
        (None, 200, DATA, None),
        ("bytes=10-19", 206, DATA[10:20], "bytes 10-19/10240"),
        ("bytes=10240-", 416, b"", "bytes */10240"),
        ("bytes=10000-", 206, DATA[10000:], "bytes 10000-10239/10240"),
        ("bytes=10000-99999", 206, DATA[10000:], "bytes 10000-10239/10240"),
        ("bytes=-16", 206, DATA[-16:], "bytes 10224-10239/10240"),
        ("bytes=0-1,5-6", 200, DATA, None),
    ],
)
def test_read_honours_single_ranges(agent, header, status, expected, content_range):
    (agent.root / "obj").write_bytes(DATA)
    response = raw_request(agent.port, "GET", "/v1/objects/obj", headers={"Range": header} if header else {})
    assert response.status == status
    assert response.body == expected
    assert response.headers.get("content-range") == content_range


def test_head_and_stat_report_size_without_content(agent):
    (agent.root / "obj").write_bytes(DATA)
    head = raw_request(agent.port, "HEAD", "/v1/objects/obj")
    assert head.status == 200 and head.headers["x-preserve-size"] == str(len(DATA)) and head.body == b""
    stat = json.loads(raw_request(agent.port, "GET", "/v1/stat/obj").body)
    assert stat["key"] == "obj" and stat["size"] == len(DATA) and stat["modified"]


def test_missing_object_is_404_with_the_error_code(agent):
    response = raw_request(agent.port, "GET", "/v1/objects/no/such")
    assert response.status == 404
    assert json.loads(response.body)["code"] == "E302"


# --- listing -----------------------------------------------------------------------


def test_listing_pages_with_start_after_and_limit(agent, node):
    keys = sorted(f"p/{i:02d}" for i in range(25))
    for key in keys + ["q/other"]:
        node.write(key, key.encode())
    seen, cursor = [], None
    while True:
        target = "/v1/list?prefix=p/&limit=10" + (f"&start_after={quote(cursor, safe='')}" if cursor else "")
        lines = ndjson(raw_request(agent.port, "GET", target).body)
        end = lines.pop()
        assert end["end"] is True and end["count"] == len(lines) <= 10
        seen += [line["key"] for line in lines]
        cursor = end["next"]
        if cursor is None:
            break
    assert seen == keys


def test_listing_with_a_bad_limit_is_400(agent):
    assert raw_request(agent.port, "GET", "/v1/list?limit=0").status == 400
    assert raw_request(agent.port, "GET", "/v1/list?limit=ten").status == 400
    assert raw_request(agent.port, "GET", "/v1/list?inventory=yes").status == 400


def test_the_inventory_of_a_disk_gives_names_without_a_stat_each_fifos_included(agent, node):
    for key in ("i/b", "i/a/x", "i/c"):
        node.write(key, b"data")
    os.mkfifo(agent.root / "i" / "fifo")
    lines = ndjson(raw_request(agent.port, "GET", "/v1/list?prefix=i/&inventory=1&limit=3").body)
    end = lines.pop()
    assert lines == [{"keys": ["i/a/x", "i/b", "i/c"], "sizes": [None, None, None]}]  # many entries a line
    assert end == {"end": True, "count": 3, "next": "i/c"}
    assert list(node.inventory("i/")) == [("i/a/x", None), ("i/b", None), ("i/c", None), ("i/fifo", None)]


# --- guarded delete ---------------------------------------------------------------------


def test_delete_is_refused_unless_the_operator_allows_it(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    agent = ThreadedAgent(root, allow_delete=False).start()
    try:
        with agent.adapter(retries=0) as node:
            node.write("keep", b"precious")
            with pytest.raises(AccessDenied, match="--allow-delete"):
                node.delete("keep")
            assert read_all(node, "keep") == b"precious"
    finally:
        agent.stop()


@pytest.mark.parametrize("confirmation", [None, "other", "kee"])
def test_delete_needs_a_confirmation_naming_the_key(agent, node, confirmation):
    node.write("keep", b"precious")
    headers = {"X-Preserve-Confirm-Delete": confirmation} if confirmation else {}
    response = raw_request(agent.port, "DELETE", "/v1/objects/keep", headers=headers)
    assert response.status == 400 and json.loads(response.body)["code"] == "E112"
    assert read_all(node, "keep") == b"precious"


def test_confirmed_delete_of_a_unicode_key(agent, node):
    node.write("包/文件", b"x")
    node.delete("包/文件")
    assert not (agent.root / "包" / "文件").exists()


# --- writes ---------------------------------------------------------------------------


def test_write_with_a_wrong_announced_size_is_422_and_invisible(agent):
    response = raw_request(agent.port, "PUT", "/v1/objects/w", b"seven b", headers={"X-Preserve-Size": "8"})
    assert response.status == 422 and json.loads(response.body)["code"] == "E305"
    assert not (agent.root / "w").exists()


def test_write_reports_the_digests_computed_on_the_node(agent):
    response = raw_request(agent.port, "PUT", "/v1/objects/w?algorithms=sha256,md5", DATA)
    assert response.status == 201
    stored = json.loads(response.body)
    assert stored["size"] == len(DATA)
    assert stored["digests"] == {"sha256": hashlib.sha256(DATA).hexdigest(), "md5": hashlib.md5(DATA).hexdigest()}


def test_write_via_the_adapter_with_a_wrong_expected_digest_raises_and_stores_nothing(agent, node):
    with pytest.raises(ChecksumMismatch):
        node.write("v/bad", DATA, size=len(DATA), expected={"sha256": "0" * 64})
    assert list(agent.root.rglob("bad")) == []


# --- node-side digests ----------------------------------------------------------------------


def test_digest_streams_one_line_per_key_with_errors_inline_and_bytes_read(agent):
    sizes = {f"d/{i}": i * 1000 for i in range(1, 6)}
    (agent.root / "d").mkdir()
    for key, size in sizes.items():
        (agent.root / key).write_bytes(os.urandom(size))
    body = json.dumps({"keys": [*sizes, "d/missing"], "algorithms": ["sha256", "sha512"], "workers": 3}).encode()
    response = raw_request(agent.port, "POST", "/v1/digest", body)
    assert response.status == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson(response.body)
    end = lines.pop()
    assert end == {"end": True, "count": 6, "errors": 1, "bytes_read": sum(sizes.values())}
    by_key = {line["key"]: line for line in lines}
    assert by_key["d/missing"]["error"]["code"] == "E302"
    for key, size in sizes.items():
        content = (agent.root / key).read_bytes()
        assert by_key[key]["bytes_read"] == by_key[key]["size"] == size
        assert by_key[key]["digests"] == {
            "sha256": hashlib.sha256(content).hexdigest(), "sha512": hashlib.sha512(content).hexdigest()
        }


@pytest.mark.parametrize(
    "document",
    [{"keys": "a"}, {"keys": [1]}, {"keys": ["a"], "algorithms": ["crc32"]}, {"keys": ["a"], "workers": 0},
     {"keys": ["a"] * 10_001}],
)
def test_bad_digest_requests_are_400(agent, document):
    response = raw_request(agent.port, "POST", "/v1/digest", json.dumps(document).encode())
    assert response.status == 400 and json.loads(response.body)["code"] == "E112"


def test_adapter_digest_many_fills_bytes_read_from_the_node(agent, node):
    contents = {f"m/{i}": os.urandom(5000 + i) for i in range(7)}
    for key, content in contents.items():
        node.write(key, content)
    node.inner.digest_batch = 3  # several requests, results still one per key
    results = {r.key: r for r in node.digest_many([*contents, "m/missing", "../bad"], ["sha256"], workers=2)}
    assert isinstance(results["m/missing"].error, ObjectNotFound)
    assert isinstance(results["../bad"].error, InvalidKey)
    for key, content in contents.items():
        assert results[key].digests == {"sha256": hashlib.sha256(content).hexdigest()}
        assert results[key].bytes_read == len(content)
    (one,) = node.digest_many(["m/0"], ["sha256"])
    assert one.digests["sha256"] == hashlib.sha256(contents["m/0"]).hexdigest()


class SlowDisk(FilesystemAdapter):
    """A filesystem that takes a while over every digest."""

    def _digest(self, key, algorithms):
        time.sleep(0.3)
        return super()._digest(key, algorithms)


def test_digest_keeps_the_connection_alive_while_a_slow_object_is_read(tmp_path):
    root = tmp_path / "root"
    agent = ThreadedAgent(root, storage=SlowDisk(root.as_uri()), digest_heartbeat=0.05).start()
    try:
        (root / "slow").write_bytes(b"slow bytes")
        response = raw_request(agent.port, "POST", "/v1/digest", json.dumps({"keys": ["slow"]}).encode())
        assert response.body.startswith(b"\n\n")
        assert [line["key"] for line in ndjson(response.body)[:-1]] == ["slow"]
        with agent.adapter(timeout=0.2) as node:
            assert next(node.digest_many(["slow"])).digests["sha256"] == hashlib.sha256(b"slow bytes").hexdigest()
    finally:
        agent.stop()


# --- challenges -----------------------------------------------------------------------------


def test_challenge_answers_sha256_of_nonce_and_range(agent, node):
    node.write("c/obj", DATA)
    nonce = os.urandom(32)
    assert node.challenge("c/obj", 100, 500, nonce) == possession_proof(nonce, [DATA[100:600]])
    assert node.challenge("c/obj", 100, 500, os.urandom(32)) != possession_proof(nonce, [DATA[100:600]])
    assert node.challenge("c/obj", 10_000, 5_000, nonce) == possession_proof(nonce, [DATA[10_000:]])
    with pytest.raises(ObjectNotFound):
        node.challenge("c/missing", 0, 1, nonce)


@pytest.mark.parametrize("nonce", ["", "ab" * 15, "not hex at all!!" * 4, None])
def test_challenge_needs_a_real_nonce(agent, node, nonce):
    node.write("c/obj", DATA)
    body = json.dumps({"key": "c/obj", "offset": 0, "length": 10, "nonce": nonce}).encode()
    response = raw_request(agent.port, "POST", "/v1/challenge", body)
    assert response.status == 400 and json.loads(response.body)["code"] == "E112"


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error,status",
    [
        (ObjectNotFound(key="k", location="l"), 404),
        (InvalidKey("bad", key="k"), 400),
        (InvalidRequest("bad"), 400),
        (ChecksumMismatch("bad", key="k", location="l"), 422),
        (StorageFull("full", location="l"), 507),
        (AccessDenied("no", location="l"), 403),
        (RetentionLocked("locked", key="k", location="l"), 409),
        (StorageUnavailable("down", location="l"), 503),
        (StorageError("broken"), 500),
    ],
)
def test_error_statuses(error, status):
    assert status_for(error) == status


class FullDisk(FilesystemAdapter):
    """A filesystem whose disk is full and whose health probe fails."""

    def _write(self, key, chunks, size):
        collections.deque(chunks, maxlen=0)  # consume the stream, keep nothing
        raise StorageFull(f"no space for {key!r}", location=self.location)

    def _stat(self, key):
        if key == "preserve-node-agent-health-probe":
            raise StorageUnavailable("the disk is gone", location=self.location)
        return super()._stat(key)


def test_storage_errors_cross_the_wire_with_their_class(tmp_path):
    root = tmp_path / "root"
    agent = ThreadedAgent(root, storage=FullDisk(root.as_uri())).start()
    try:
        response = raw_request(agent.port, "PUT", "/v1/objects/x", b"data")
        assert response.status == 507 and json.loads(response.body)["code"] == "E306"
        with agent.adapter(retries=0) as node:
            with pytest.raises(StorageFull, match="no space"):
                node.write("x", b"data")
        health = raw_request(agent.port, "GET", "/v1/health", sign=False)
        assert health.status == 503 and json.loads(health.body) == {"status": "unavailable"}
    finally:
        agent.stop()
