"""No request can make the agent read or write outside its root: every endpoint answers 400.

The agent's root is ``tmp_path/root``; ``tmp_path/outside/secret.txt`` is
what an attacker is after.  Request targets are sent byte for byte, so
``..`` reaches the agent without being normalised away by a client.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest

from .agents import raw_request

SECRET = b"the secret that lives outside the storage root"

# How each attack spells a key in a URL path (raw, already percent-encoded where needed).
PATH_ATTACKS = {
    "dotdot": "../outside/secret.txt",
    "deep dotdot": "a/b/../../../outside/secret.txt",
    "encoded dotdot": "%2e%2e/outside/secret.txt",
    "encoded dotdot upper": "a/%2E%2E/%2E%2E/outside/secret.txt",
    "encoded slash dotdot": "..%2Foutside%2Fsecret.txt",
    "absolute": "/{outside}/secret.txt",
    "encoded absolute": "%2F{outside}/secret.txt",
    "nul": "secret.txt%00.pdf",
    "encoded backslash": "..%5Coutside%5Csecret.txt",
    "raw backslash": "..\\outside\\secret.txt",
    "home": "~root/x",
}

# The same attacks as plain keys, for JSON bodies and query strings.
KEY_ATTACKS = {
    "dotdot": "../outside/secret.txt",
    "deep dotdot": "a/b/../../../outside/secret.txt",
    "absolute": "/{outside}/secret.txt",
    "nul": "secret.txt\x00.pdf",
    "backslash": "..\\outside\\secret.txt",
    "drive": "C:/outside/secret.txt",
}


@pytest.fixture
def outside(tmp_path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_bytes(SECRET)
    return directory


def snapshot(tmp_path: Path) -> dict[str, bytes]:
    """Every file under tmp_path, with its content."""
    files = {}
    for dirpath, _, names in os.walk(tmp_path):
        for name in names:
            path = Path(dirpath) / name
            files[str(path.relative_to(tmp_path))] = path.read_bytes()
    return files


def _path(template: str, outside: Path) -> str:
    return template.format(outside=str(outside).lstrip("/"))


def _key(template: str, outside: Path) -> str:
    return template.format(outside=str(outside).lstrip("/"))


def assert_refused(response) -> None:
    assert response.status == 400, (response.status, response.body[:300])
    assert SECRET not in response.body
    if response.body:
        assert json.loads(response.body)["code"] in ("E301", "E112")


@pytest.mark.parametrize("attack", sorted(PATH_ATTACKS))
@pytest.mark.parametrize(
    "method,route",
    [("GET", "/v1/objects/"), ("HEAD", "/v1/objects/"), ("PUT", "/v1/objects/"), ("DELETE", "/v1/objects/"),
     ("GET", "/v1/stat/")],
)
def test_keys_in_paths_are_refused(agent, tmp_path, outside, attack, method, route):
    before = snapshot(tmp_path)
    target = route + _path(PATH_ATTACKS[attack], outside)
    headers = {"X-Preserve-Confirm-Delete": quote(target[len(route):], safe="")} if method == "DELETE" else {}
    response = raw_request(agent.port, method, target, b"overwritten!" if method == "PUT" else b"", headers)
    assert_refused(response)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("attack", sorted(KEY_ATTACKS))
def test_list_prefixes_and_cursors_are_refused(agent, tmp_path, outside, attack):
    key = quote(_key(KEY_ATTACKS[attack], outside), safe="")
    for target in (f"/v1/list?prefix={key}", f"/v1/list?start_after={key}"):
        assert_refused(raw_request(agent.port, "GET", target))


def test_digest_refuses_the_whole_request_and_lists_every_bad_key(agent, tmp_path, outside):
    (agent.root / "fine").write_bytes(b"fine")
    bad = [_key(k, outside) for k in KEY_ATTACKS.values()]
    body = json.dumps({"keys": ["fine", *bad], "algorithms": ["sha256"]}).encode()
    response = raw_request(agent.port, "POST", "/v1/digest", body)
    assert_refused(response)
    findings = json.loads(response.body)["findings"]
    assert [f["key"] for f in findings] == bad
    assert {f["code"] for f in findings} == {"E301"}


@pytest.mark.parametrize("attack", sorted(KEY_ATTACKS))
def test_challenge_refuses_bad_keys(agent, outside, attack):
    body = json.dumps({"key": _key(KEY_ATTACKS[attack], outside), "offset": 0, "length": 10, "nonce": "ab" * 16})
    assert_refused(raw_request(agent.port, "POST", "/v1/challenge", body.encode()))


def test_symlink_out_of_the_root_is_refused(agent, tmp_path, outside):
    (agent.root / "link").symlink_to(outside, target_is_directory=True)
    for method, target in [("GET", "/v1/objects/link/secret.txt"), ("GET", "/v1/stat/link/secret.txt")]:
        assert_refused(raw_request(agent.port, method, target))
    body = json.dumps({"key": "link/secret.txt", "offset": 0, "length": 10, "nonce": "ab" * 16}).encode()
    assert_refused(raw_request(agent.port, "POST", "/v1/challenge", body))
    before = snapshot(tmp_path)
    assert_refused(raw_request(agent.port, "PUT", "/v1/objects/link/secret.txt", b"overwritten!"))
    assert snapshot(tmp_path) == before


def test_a_refused_write_through_a_link_creates_no_directory_outside(agent, tmp_path, outside):
    (agent.root / "link").symlink_to(outside, target_is_directory=True)
    (agent.root / "pkg").mkdir()
    (agent.root / "pkg" / "data").symlink_to(outside, target_is_directory=True)
    for target in ("/v1/objects/link/new/deeper/f.txt", "/v1/objects/pkg/data/a/b/f.txt"):
        assert_refused(raw_request(agent.port, "PUT", target, b"escape"))
    assert sorted(os.listdir(outside)) == ["secret.txt"]
