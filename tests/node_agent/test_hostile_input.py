"""Odd numbers, deep JSON and repeated parameters: each a 400 with its code, never a 500, nothing stored.

Numbers from outside are read by one strict parser (``preservation.units.parse_decimal``,
tested in ``tests/test_units.py``): ASCII digits only, range-checked, the length checked first.
"""

from __future__ import annotations

import json

import pytest

from .agents import raw_request


def assert_bad_request(response, words: str) -> None:
    assert response.status == 400, (response.status, response.body[:300])
    body = json.loads(response.body)
    assert body["code"] == "E112", body
    assert words in body["message"], body["message"]


def test_a_unicode_digit_as_timestamp_is_400(agent):
    # '²'.isdigit() is True, and int('²') raises: this used to be a 500
    response = raw_request(agent.port, "GET", "/v1/list", timestamp="²")
    assert_bad_request(response, "malformed timestamp")


def test_a_unicode_digit_as_listing_limit_is_400(agent):
    assert_bad_request(raw_request(agent.port, "GET", "/v1/list?limit=%C2%B2"), "limit")


def test_a_unicode_digit_as_size_is_400_and_stores_nothing(agent):
    response = raw_request(agent.port, "PUT", "/v1/objects/sized", b"payload", {"X-Preserve-Size": "²"})
    assert_bad_request(response, "X-Preserve-Size")
    assert not (agent.root / "sized").exists()


@pytest.mark.parametrize("field", ["offset", "length"])
def test_a_challenge_range_beyond_63_bits_is_400(agent, field):
    (agent.root / "f").write_bytes(b"x" * 100)
    document = {"key": "f", "offset": 0, "length": 10, "nonce": "ab" * 16, field: 2**63}
    response = raw_request(agent.port, "POST", "/v1/challenge", json.dumps(document).encode())
    assert_bad_request(response, field)


@pytest.mark.parametrize("endpoint", ["/v1/digest", "/v1/challenge"])
def test_json_nested_100000_deep_is_400(agent, endpoint):
    body = b'{"keys": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_bad_request(raw_request(agent.port, "POST", endpoint, body), "nests deeper")


def test_brackets_inside_strings_do_not_count_as_nesting(agent):
    (agent.root / "[[[[[[").write_bytes(b"odd name")
    body = json.dumps({"keys": ["[[[[[[", 'b"[[[[[[']}).encode()  # an escaped quote inside a string
    response = raw_request(agent.port, "POST", "/v1/digest", body)
    assert response.status == 200, response.body
    assert json.loads(response.body.splitlines()[0])["key"] == "[[[[[["


def test_a_range_of_5000_digits_is_416_not_500(agent):
    (agent.root / "f").write_bytes(b"x" * 100)
    response = raw_request(agent.port, "GET", "/v1/objects/f", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert response.status == 416
    response = raw_request(agent.port, "GET", "/v1/objects/f", headers={"Range": "bytes=90-" + "9" * 5000})
    assert (response.status, response.body) == (206, b"x" * 10)


@pytest.mark.parametrize("query", ["limit=1&limit=5", "limit=1&%6cimit=5", "prefix=a&prefix=b&limit=2"])
def test_a_repeated_query_parameter_is_400(agent, query):
    for name in ("a1", "a2", "b1"):
        (agent.root / name).write_bytes(b"x")
    # signed correctly: the signature covers both values, the handler would read one of them
    assert_bad_request(raw_request(agent.port, "GET", f"/v1/list?{query}"), "more than once")
