"""Request signing: what the agent accepts, what it refuses with 401, and that it logs each refusal."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import types

import pytest

from preservation.node_agent import app as agent_app
from preservation.node_agent.auth import NonceCache, NonceCacheFull
from storage_adapters.signing import (
    STREAMING_TRAILER,
    SignatureRefused,
    canonical_query,
    make_trailer,
    sign_request,
    verify_request,
    verify_trailer,
)

from .agents import KEY, KEY_ID, KEYS, ThreadedAgent, raw_request

AUTH_LOGGER = "preservation.node_agent.auth"


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == AUTH_LOGGER and r.levelno == logging.WARNING]


def assert_refused(response, caplog, reason: str) -> None:
    assert response.status == 401, response.body
    body = json.loads(response.body)
    assert body["code"] == "E304" and reason in body["message"]
    assert any(reason in line for line in refusals(caplog)), refusals(caplog)


# --- the signing functions on their own ---------------------------------------------


def test_canonical_query_is_sorted_and_uniformly_encoded():
    assert canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2"
    assert canonical_query(b"prefix=%E5%8C%85%2Fx+y&z=") == canonical_query("z=&prefix=包/x y")


def test_a_signed_request_verifies_and_every_part_is_covered():
    headers = {"Range": "bytes=0-9"}
    signed = {**headers, **sign_request("GET", "/v1/objects/a", "x=1", headers, "0" * 64, KEY_ID, KEY.encode())}
    verified = verify_request("GET", "/v1/objects/a", "x=1", signed, KEYS)
    assert verified.key_id == KEY_ID
    for method, path, query, changed in [
        ("PUT", "/v1/objects/a", "x=1", {}),
        ("GET", "/v1/objects/b", "x=1", {}),
        ("GET", "/v1/objects/a", "x=2", {}),
        ("GET", "/v1/objects/a", "x=1", {"Range": "bytes=0-99"}),
        ("GET", "/v1/objects/a", "x=1", {"X-Preserve-Content-SHA256": "1" * 64}),
        ("GET", "/v1/objects/a", "x=1", {"X-Preserve-Nonce": "f" * 32}),
    ]:
        with pytest.raises(SignatureRefused, match="bad signature"):
            verify_request(method, path, query, {**signed, **changed}, KEYS)


def test_trailer_is_chained_to_the_request_signature():
    trailer = make_trailer(KEY.encode(), "a" * 64, "b" * 64, 123)
    assert verify_trailer(trailer, KEY.encode(), "a" * 64) == ("b" * 64, 123)
    with pytest.raises(SignatureRefused):
        verify_trailer(trailer, KEY.encode(), "c" * 64)
    with pytest.raises(SignatureRefused):
        verify_trailer(trailer.replace(b"123", b"124"), KEY.encode(), "a" * 64)
    with pytest.raises(SignatureRefused):
        verify_trailer(trailer[1:], KEY.encode(), "a" * 64)


def test_nonce_cache_refuses_replays_forgets_expired_and_is_bounded():
    cache = NonceCache(capacity=2)
    cache.remember("k", "n1", expires_at=100, now=0)
    with pytest.raises(SignatureRefused, match="replayed nonce"):
        cache.remember("k", "n1", expires_at=100, now=50)
    cache.remember("other-key", "n1", expires_at=100, now=50)
    with pytest.raises(NonceCacheFull):
        cache.remember("k", "n2", expires_at=200, now=60)
    cache.remember("k", "n2", expires_at=300, now=101)
    assert len(cache) == 1


# --- against a running agent -----------------------------------------------------------


def test_a_correct_signature_is_accepted(agent):
    assert raw_request(agent.port, "GET", "/v1/list").status == 200


def test_health_needs_no_signature_and_says_nothing_more(agent):
    response = raw_request(agent.port, "GET", "/v1/health", sign=False)
    assert response.status == 200
    answer = json.loads(response.body)
    # the disk's free and total bytes under a storage on the agent's host (`preserve config check`), nothing else
    assert set(answer) == {"status", "free_bytes", "total_bytes"} and answer["status"] == "ok"
    assert 0 < answer["free_bytes"] <= answer["total_bytes"]


def test_unsigned_request_is_refused(agent, caplog):
    assert_refused(raw_request(agent.port, "GET", "/v1/list", sign=False), caplog, "not signed")


def test_wrong_key_is_refused(agent, caplog):
    response = raw_request(agent.port, "GET", "/v1/list", key=b"someone-else-entirely-0000")
    assert_refused(response, caplog, "bad signature")


def test_unknown_key_id_is_refused(agent, caplog):
    response = raw_request(agent.port, "GET", "/v1/list", key_id="intruder")
    assert_refused(response, caplog, "unknown key id")


def test_tampered_path_is_refused(agent, caplog):
    (agent.root / "a").write_bytes(b"a")
    response = raw_request(agent.port, "GET", "/v1/objects/b", sign_target="/v1/objects/a")
    assert_refused(response, caplog, "bad signature")


def test_tampered_query_is_refused(agent, caplog):
    response = raw_request(agent.port, "GET", "/v1/list?prefix=b", sign_target="/v1/list?prefix=a")
    assert_refused(response, caplog, "bad signature")


def test_tampered_body_is_refused(agent, caplog):
    body = json.dumps({"keys": ["b"]}).encode()
    response = raw_request(agent.port, "POST", "/v1/digest", body, sign_body=json.dumps({"keys": ["a"]}).encode())
    assert_refused(response, caplog, "the body does not match its signed sha256")


def test_tampered_signed_header_is_refused(agent, caplog):
    (agent.root / "a").write_bytes(b"0123456789")
    signed = sign_request("GET", "/v1/objects/a", "", {"Range": "bytes=0-1"}, hashlib.sha256(b"").hexdigest(),
                          KEY_ID, KEY.encode())
    response = raw_request(agent.port, "GET", "/v1/objects/a", headers={**signed, "Range": "bytes=0-9"}, sign=False)
    assert_refused(response, caplog, "bad signature")


def test_a_repeated_signed_header_is_refused(agent, caplog):
    (agent.root / "a").write_bytes(b"0123456789")
    signed = sign_request("GET", "/v1/objects/a", "", {"Range": "bytes=0-1"}, hashlib.sha256(b"").hexdigest(),
                          KEY_ID, KEY.encode())
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    try:
        conn.putrequest("GET", "/v1/objects/a")
        conn.putheader("Range", "bytes=2-9")
        for name, value in {"Range": "bytes=0-1", **signed}.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 401 and b"repeated header range" in response.read()
    finally:
        conn.close()
    assert any("repeated header range" in line for line in refusals(caplog))


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_timestamp_is_refused(agent, caplog, skew):
    response = raw_request(agent.port, "GET", "/v1/list", timestamp=int(time.time()) + skew)
    assert_refused(response, caplog, "stale timestamp")


@pytest.fixture
def long_running_agent(tmp_path, monkeypatch):
    """An agent that started 400 s ago, as far as its replay guard knows."""
    real_time = time.time
    monkeypatch.setattr(agent_app, "time", types.SimpleNamespace(time=lambda: real_time() - 400))
    (tmp_path / "root").mkdir()
    running = ThreadedAgent(tmp_path / "root").start()
    yield running
    running.stop()


def test_timestamp_within_the_window_is_accepted(long_running_agent):
    response = raw_request(long_running_agent.port, "GET", "/v1/list", timestamp=int(time.time()) - 250)
    assert response.status == 200


def test_a_request_signed_before_the_agent_started_is_refused(agent, caplog):
    # within the clock-skew window, but from before this run of the agent: only a replay can be that
    response = raw_request(agent.port, "GET", "/v1/list", timestamp=int(time.time()) - 250)
    assert_refused(response, caplog, "signed before the agent started")


def test_a_request_captured_before_a_restart_is_refused_after_it(tmp_path, caplog):
    (tmp_path / "root").mkdir()
    first = ThreadedAgent(tmp_path / "root").start()
    try:
        _next_second()  # the request is signed in a second after the first agent's start ...
        captured = dict(timestamp=int(time.time()), nonce="cd" * 16)
        assert raw_request(first.port, "GET", "/v1/list", **captured).status == 200
    finally:
        first.stop()
    _next_second()  # ... and before the second agent's
    second = ThreadedAgent(tmp_path / "root").start()
    try:
        response = raw_request(second.port, "GET", "/v1/list", **captured)
        assert_refused(response, caplog, "signed before the agent started")
        assert raw_request(second.port, "GET", "/v1/list").status == 200
    finally:
        second.stop()


def _next_second() -> None:
    """Wait for the next whole second: timestamps are signed in whole seconds."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def test_replayed_nonce_is_refused(agent, caplog):
    nonce = "ab" * 16
    timestamp = int(time.time())
    assert raw_request(agent.port, "GET", "/v1/list", nonce=nonce, timestamp=timestamp).status == 200
    response = raw_request(agent.port, "GET", "/v1/list", nonce=nonce, timestamp=timestamp)
    assert_refused(response, caplog, "replayed nonce")


def test_write_must_stream_with_a_trailer(agent, caplog):
    body = b"payload"
    signed = sign_request("PUT", "/v1/objects/w", "", {}, hashlib.sha256(body).hexdigest(), KEY_ID, KEY.encode())
    response = raw_request(agent.port, "PUT", "/v1/objects/w", headers=signed, sign=False)
    assert_refused(response, caplog, "STREAMING-TRAILER")
    assert not (agent.root / "w").exists()


def test_forged_trailer_is_refused_and_nothing_is_stored(agent, caplog):
    # The request is signed with the right key, the trailer with another: the body is not authenticated.
    signed = sign_request("PUT", "/v1/objects/w", "", {}, STREAMING_TRAILER, KEY_ID, KEY.encode())
    signature = signed["Authorization"].rpartition("=")[2]
    payload = b"forged payload"
    trailer = make_trailer(b"not-the-agents-key-at-all", signature, hashlib.sha256(payload).hexdigest(), len(payload))
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    try:
        conn.request("PUT", "/v1/objects/w", body=payload + trailer, headers=signed)
        response = conn.getresponse()
        assert response.status == 401
        assert "trailer signature" in json.loads(response.read())["message"]
    finally:
        conn.close()
    assert not (agent.root / "w").exists()
    assert any("trailer signature" in line for line in refusals(caplog))


def test_payload_altered_under_a_valid_trailer_is_422_and_nothing_is_stored(agent):
    signed = sign_request("PUT", "/v1/objects/w", "", {}, STREAMING_TRAILER, KEY_ID, KEY.encode())
    signature = signed["Authorization"].rpartition("=")[2]
    payload = b"the bytes that were sent"
    trailer = make_trailer(KEY.encode(), signature, hashlib.sha256(payload).hexdigest(), len(payload))
    altered = payload.replace(b"sent", b"SENT")
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    try:
        conn.request("PUT", "/v1/objects/w", body=altered + trailer, headers=signed)
        response = conn.getresponse()
        assert response.status == 422
        assert json.loads(response.read())["code"] == "E305"
    finally:
        conn.close()
    assert not (agent.root / "w").exists()
