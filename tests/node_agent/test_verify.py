"""``POST /v1/verify``: an audit's files checked on the node, only what was found sent back.

The node checks the rows with its storage's own ``verify_many`` (on a disk
there: the local audit, read-ahead and checker processes included); the
client reads a line per batch, falls back to digests on an agent without the
endpoint, and checks a window of rows again whole when the agent could not
be reached.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from preservation.chunk_digests import CHUNK_BYTES, chunk_digest
from preservation.errors import AgentProtocolError
from storage_adapters.base import VERIFY_DIGEST, VERIFY_MISSING, VERIFY_NOT_REGULAR, VERIFY_SIZE

from .agents import ThreadedAgent, raw_request
from .test_adapter import Flaky
from .test_api import ndjson


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_verify_answers_a_line_per_batch_with_problems_and_never_chunk_digests(agent):
    (agent.root / "p" / "data").mkdir(parents=True)
    good, big = os.urandom(4000), os.urandom(CHUNK_BYTES + 10)
    (agent.root / "p/data/good").write_bytes(good)
    (agent.root / "p/data/big").write_bytes(big)
    (agent.root / "p/data/changed").write_bytes(b"not what the catalog says")
    os.mkfifo(agent.root / "p/data/fifo")
    rows = [["data/big", len(big), True, sha256(big)], ["data/changed", 25, True, sha256(b"x" * 25)],
            ["data/fifo", 10, False, sha256(b"")], ["data/good", len(good), False, sha256(good)],
            ["data/gone", 5, False, sha256(b"12345")], ["data/short", 99, False, sha256(b"")]]
    (agent.root / "p/data/short").write_bytes(b"short")
    body = json.dumps({"prefix": "p/", "algorithms": ["sha256"], "rows": rows}).encode()
    response = raw_request(agent.port, "POST", "/v1/verify", body)
    assert response.status == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson(response.body)
    end = lines.pop()
    assert end["end"] is True and end["problems"] == 4
    problems = {p["path"]: p for line in lines for p in line["problems"]}
    assert {path: p["kind"] for path, p in problems.items()} == {
        "data/changed": VERIFY_DIGEST, "data/fifo": VERIFY_NOT_REGULAR, "data/gone": VERIFY_MISSING,
        "data/short": VERIFY_SIZE}
    assert problems["data/gone"]["error"]["code"] == "E302"
    assert sum(line["checked"] for line in lines) == 3  # big, good and the changed one were read whole
    assert all(set(line) == {"checked", "bytes_read", "problems"} for line in lines)  # "chunks" true is ignored


BAD_ROWS = [
    {"rows": "a"},
    {"rows": [["a", 1, False]]},  # no digest
    {"rows": [["a", 1, False, "ab", "cd"]]},  # two digests for one algorithm
    {"rows": [["a", -1, False, "ab"]]},
    {"rows": [["a", 2**63, False, "ab"]]},
    {"rows": [["a", True, False, "ab"]]},
    {"rows": [[1, 1, False, "ab"]]},
    {"rows": [["a", 1, "yes", "ab"]]},
    {"rows": [["a", 1, False, "f" * 129]]},
    {"rows": [["a", 1, False, "ab"]] * 10_001},
    {"rows": [], "algorithms": ["SHA-256"]},  # the digests follow the names given: canonical names only
    {"rows": [], "algorithms": ["sha256", "sha256"]},
    {"rows": [], "algorithms": ["crc32"]},
    {"rows": [], "prefix": "p"},
    {"rows": [], "prefix": 7},
    {"rows": [], "workers": 0},
]


@pytest.mark.parametrize("document", BAD_ROWS)
def test_bad_verify_requests_are_400_and_read_nothing(agent, document):
    document = {"prefix": "", "algorithms": ["sha256"], **document}
    response = raw_request(agent.port, "POST", "/v1/verify", json.dumps(document).encode())
    assert response.status == 400 and json.loads(response.body)["code"] == "E112", response.body


@pytest.mark.parametrize("prefix,path", [("../", "x"), ("p/", "../../etc/passwd"), ("p/", "a//b"), ("/", "x")])
def test_keys_outside_the_store_are_refused_before_any_file_is_read(agent, prefix, path):
    body = json.dumps({"prefix": prefix, "algorithms": ["sha256"], "rows": [[path, 1, False, "ab"]]}).encode()
    response = raw_request(agent.port, "POST", "/v1/verify", body)
    assert response.status == 400 and json.loads(response.body)["code"] == "E301", response.body


def without_verify(app):
    """The agent as it was before ``/v1/verify``: the route is not there."""
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", "") != "/v1/verify"]
    return app


def test_an_agent_without_verify_is_checked_over_digests_with_the_same_findings(tmp_path):
    agent = ThreadedAgent(tmp_path / "root", wrap=without_verify).start()
    try:
        (tmp_path / "root" / "p").mkdir()
        (tmp_path / "root" / "p" / "good").write_bytes(b"good")
        (tmp_path / "root" / "p" / "bad").write_bytes(b"bad!")
        rows = [("bad", 4, (sha256(b"good"),), True), ("good", 4, (sha256(b"good"),)), ("gone", 1, (sha256(b"x"),))]
        with agent.adapter(retries=1, backoff=0.01) as node:
            for _ in range(2):  # the second time it is not asked again
                batches = list(node.verify_many("p/", rows, ("sha256",)))
                assert {p.path: p.kind for b in batches for p in b.problems} == {
                    "bad": VERIFY_DIGEST, "gone": VERIFY_MISSING}
                assert sum(b.checked for b in batches) == 2 and not any(b.chunks for b in batches)
            assert node.inner._verifies is False
    finally:
        agent.stop()


def test_a_check_the_agent_could_not_answer_is_asked_again_whole_without_a_file_twice(tmp_path):
    flaky = {}

    def wrap(app):
        flaky["app"] = Flaky(app, failures=1, status=503)
        return flaky["app"]

    agent = ThreadedAgent(tmp_path / "root", wrap=wrap).start()
    try:
        (tmp_path / "root" / "p").mkdir()
        contents = {f"f{i:02d}": os.urandom(100 + i) for i in range(12)}
        for name, data in contents.items():
            (tmp_path / "root" / "p" / name).write_bytes(data)
        rows = [(name, len(data), (sha256(data),)) for name, data in contents.items()] + [("gone", 1, (sha256(b"x"),))]
        with agent.adapter(retries=2, backoff=0.01) as node:
            batches = list(node.verify_many("p/", rows, ("sha256",)))
        assert [p.path for b in batches for p in b.problems] == ["gone"]
        assert sum(b.checked for b in batches) == len(contents)
        assert flaky["app"].requests == 2
    finally:
        agent.stop()


def test_an_inventory_the_agent_could_not_answer_is_asked_again_and_goes_on_after_the_last_key(tmp_path):
    flaky = {}

    def wrap(app):
        flaky["app"] = Flaky(app, failures=1, status=502)
        return flaky["app"]

    agent = ThreadedAgent(tmp_path / "root", wrap=wrap).start()
    try:
        (tmp_path / "root" / "p").mkdir()
        for i in range(5):
            (tmp_path / "root" / "p" / f"f{i}").write_bytes(b"x")
        with agent.adapter(retries=2, backoff=0.01) as node:
            assert list(node.inventory("p/")) == [(f"p/f{i}", None) for i in range(5)]
        assert flaky["app"].requests == 2
    finally:
        agent.stop()


class Answers:
    """ASGI middleware: answer every request to ``path`` with the NDJSON ``lines`` (an agent that lies or errs)."""

    def __init__(self, app, path: str, lines: list) -> None:
        self.app, self.path, self.lines = app, path, lines
        self.requests = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        self.requests += 1
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        body = b"".join(json.dumps(line).encode() + b"\n" for line in self.lines)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")]})
        await send({"type": "http.response.body", "body": body})


def answering(tmp_path, path: str, lines: list) -> tuple[ThreadedAgent, dict]:
    seen = {}

    def wrap(app):
        seen["app"] = Answers(app, path, lines)
        return seen["app"]

    return ThreadedAgent(tmp_path / "root", wrap=wrap).start(), seen


@pytest.mark.parametrize("keys", [
    ["pkgA/data/a", "pkgA/data/b", "pkgZ/data/a"],  # another package's file, cut to one of this one's paths
    ["pkgA/data/a", "data/a"],
    ["pkgA"],  # the prefix without its '/'
])
def test_an_inventory_naming_a_key_outside_the_prefix_asked_for_is_a_protocol_error(tmp_path, keys):
    agent, seen = answering(tmp_path, "/v1/list", [{"keys": keys, "sizes": [None] * len(keys)}, {"end": True}])
    try:
        with agent.adapter(retries=2, backoff=0.01) as node:
            with pytest.raises(AgentProtocolError) as raised:
                list(node.inventory("pkgA/"))
        assert raised.value.code == "E311" and not raised.value.retryable
        assert seen["app"].requests == 1  # the same answer would come again: not asked twice
    finally:
        agent.stop()


def test_an_audit_through_an_agent_listing_another_packages_key_reports_the_node_not_a_stray(tmp_path):
    from preservation.codes import FILE_UNEXPECTED
    from preservation.fixity import FixityResult, _present

    agent, _ = answering(tmp_path, "/v1/list", [
        {"keys": ["pkgA/data/a", "pkgA/data/b", "pkgZ/data/a"], "sizes": [1, 1, 1]}, {"end": True}])
    try:
        with agent.adapter(retries=1, backoff=0.01) as node:
            result = FixityResult()
            rows = [[("data/a", 1, ("x",)), ("data/b", 1, ("y",))]]
            with pytest.raises(AgentProtocolError):
                list(_present(result, node, "pkgA/", rows))
        assert result.unexpected_paths == [] and FILE_UNEXPECTED not in result.findings.codes()
    finally:
        agent.stop()


def test_chunk_digests_an_agent_sends_are_never_taken(tmp_path):
    """A lying agent cannot plant what served bytes are checked against: the rows ask for none, and
    chunk digests in its answer (well formed, fitting the file's size) are not handed on."""
    data = os.urandom(CHUNK_BYTES + 10)
    planted = (chunk_digest(b"x" * CHUNK_BYTES) + chunk_digest(b"y" * 10)).hex()
    agent, seen = answering(tmp_path, "/v1/verify", [
        {"checked": 1, "bytes_read": len(data), "problems": [], "chunks": {"big": planted}},
        {"end": True, "files": 1, "problems": 0, "bytes_read": len(data)}])
    try:
        with agent.adapter(retries=1, backoff=0.01) as node:
            batches = list(node.verify_many("p/", [("big", len(data), (sha256(data),), True)], ("sha256",)))
        assert sum(b.checked for b in batches) == 1 and not any(b.chunks for b in batches)
        [body] = seen["app"].bodies
        assert json.loads(body)["rows"] == [["big", len(data), False, sha256(data)]]  # none asked for
    finally:
        agent.stop()


GOOD, BAD = b"good", b"bad!"
ROWS = [("bad", 4, (sha256(GOOD),)), ("gone", 1, (sha256(b"x"),))]
LINE = {"checked": 1, "bytes_read": 4, "problems": [
    {"path": "bad", "kind": VERIFY_DIGEST, "algorithm": "sha256", "actual": sha256(BAD), "expected": sha256(GOOD)},
    {"path": "gone", "kind": VERIFY_MISSING, "error": {"code": "E302", "message": "no object", "params": {}}}]}
END = {"end": True, "files": 2, "problems": 2, "bytes_read": 4}


@pytest.mark.parametrize("lines", [
    [{"end": True}],  # nothing about any file: not "no problems"
    [{"checked": 1, "bytes_read": 4, "problems": []}, END],  # a row left out
    [{**LINE, "problems": [{**LINE["problems"][0], "path": "other"}, LINE["problems"][1]]}, END],  # other keys
    [{"checked": 2, "bytes_read": 8, "problems": [{"path": p, "kind": VERIFY_SIZE, "actual": 1, "expected": 9}
                                                   for p in ("x", "y")]}, END],
    [LINE, LINE, END],  # answered twice
    [LINE, {"checked": 0, "bytes_read": 0, "problems": [LINE["problems"][1]]}, END],  # one file twice
    [{"checked": 0, "bytes_read": 0, "problems": [LINE["problems"][0]] * 2}, END],  # digest problems, none read
])
def test_a_check_answer_that_does_not_account_for_exactly_the_rows_sent_is_a_protocol_error(tmp_path, lines):
    agent, seen = answering(tmp_path, "/v1/verify", lines)
    try:
        with agent.adapter(retries=2, backoff=0.01) as node:
            with pytest.raises(AgentProtocolError) as raised:
                list(node.verify_many("p/", ROWS, ("sha256",)))
        assert raised.value.code == "E311" and seen["app"].requests == 1
    finally:
        agent.stop()


def test_a_check_answer_accounting_for_each_row_once_is_taken(tmp_path):
    agent, _ = answering(tmp_path, "/v1/verify", [LINE, END])
    try:
        with agent.adapter(retries=1, backoff=0.01) as node:
            batches = list(node.verify_many("p/", ROWS, ("sha256",)))
        assert {p.path: p.kind for b in batches for p in b.problems} == {"bad": VERIFY_DIGEST, "gone": VERIFY_MISSING}
    finally:
        agent.stop()


def test_an_audit_of_a_copy_whose_agent_leaves_rows_out_reports_the_node_not_a_verified_copy(tmp_path):
    from preservation.catalog.files import FileRow
    from preservation.codes import NODE_UNAVAILABLE
    from preservation.fixity import verify_rows

    agent, _ = answering(tmp_path, "/v1/verify", [{"end": True}])
    try:
        with agent.adapter(retries=1, backoff=0.01) as node:
            rows = [FileRow("bad", 4, sha256(GOOD), hashlib.sha512(GOOD).hexdigest())]
            result = verify_rows(node, "p/", rows, ("sha256",))
        assert not result.ok and result.findings.codes() == [NODE_UNAVAILABLE]
        assert [f.params["error_code"] for f in result.findings] == ["E311"]
    finally:
        agent.stop()


DIGEST_A = {"key": "a", "size": 4, "digests": {"sha256": sha256(GOOD)}, "bytes_read": 4}
DIGEST_B = {"key": "b", "size": 3, "digests": {"sha256": sha256(b"abc")}, "bytes_read": 3}


@pytest.mark.parametrize("lines", [
    [DIGEST_A, {**DIGEST_B, "key": "c"}, {"end": True}],  # a key not asked about
    [DIGEST_A, DIGEST_A, DIGEST_B, {"end": True}],  # one key answered twice
    [DIGEST_A, {**DIGEST_B, "digests": {"md5": "00"}}, {"end": True}],  # not the digest asked for
    [DIGEST_A, {**DIGEST_B, "size": -3}, {"end": True}],  # not a size
    [DIGEST_A, {**DIGEST_B, "key": 7}, {"end": True}],  # not a key
    [DIGEST_A, {"end": True}],  # a key left out
], ids=["other key", "twice", "other digest", "size", "key type", "left out"])
def test_a_digest_answer_about_other_keys_or_twice_or_malformed_is_a_protocol_error(tmp_path, lines):
    """An older agent's ``POST /v1/digest``: the node never gets to choose which files it answers for."""
    agent, seen = answering(tmp_path, "/v1/digest", lines)
    try:
        with agent.adapter(retries=2, backoff=0.01) as node:
            results = list(node.digest_many(["a", "b"], ("sha256",)))
        assert sorted(r.key for r in results) == ["a", "b"]  # one result a key, whatever the node said
        [b] = [r for r in results if r.key == "b"]
        assert b.digests is None and isinstance(b.error, AgentProtocolError) and b.error.code == "E311"
        assert not b.error.retryable and seen["app"].requests == 1  # the same answer would come again
    finally:
        agent.stop()


def test_a_digest_answer_about_each_key_asked_once_is_taken(tmp_path):
    agent, _ = answering(tmp_path, "/v1/digest", [DIGEST_B, {**DIGEST_A, "digests": {
        "sha256": sha256(GOOD), "sha512": "planted"}}, {"end": True}])
    try:
        with agent.adapter(retries=1, backoff=0.01) as node:
            results = {r.key: r for r in node.digest_many(["a", "b"], ("sha256",))}
        assert {k: (r.size, r.digests) for k, r in results.items()} == {
            "a": (4, {"sha256": sha256(GOOD)}), "b": (3, {"sha256": sha256(b"abc")})}  # only what was asked
    finally:
        agent.stop()


def test_a_copy_whose_older_agent_leaves_files_out_of_its_digests_is_not_verified(tmp_path):
    """An agent without ``/v1/verify`` checked over ``/v1/digest``: files it does not answer for are never
    counted as verified, whether it ends its answer early or answers nothing at all."""
    from preservation.catalog.files import FileRow
    from preservation.fixity import verify_rows

    seen = {}

    def wrap(app):
        seen["app"] = Answers(without_verify(app), "/v1/digest", [{"end": True}])
        return seen["app"]

    agent = ThreadedAgent(tmp_path / "root", wrap=wrap).start()
    try:
        with agent.adapter(retries=1, backoff=0.01) as node:
            rows = [FileRow("bad", 4, sha256(GOOD), hashlib.sha512(GOOD).hexdigest())]
            result = verify_rows(node, "p/", rows, ("sha256",))
        assert not result.ok and seen["app"].requests == 1
        assert [f.params["error_code"] for f in result.findings] == ["E311"]
    finally:
        agent.stop()
