"""Odd input is a 4xx with a code, never a server error: huge numbers in Range, offsets, ids and months."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .test_api import grant
from .world import FIXITY_KEY, PAYLOAD_FILE

HUGE = "9" * 5000
BIG = "1" + "0" * 23  # 1e23, written out


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize("header, status", [
    (f"bytes={HUGE}-", 416),
    (f"bytes={BIG}-", 416),
    (f"bytes=0-{HUGE}", 206),  # to the end, as RFC 9110 says of a last position past the end
    (f"bytes=-{HUGE}", 206),  # a suffix longer than the file is the whole file
])
def test_huge_range_positions(client, world, header, status):
    grant(client, world, "open")
    url = f"/api/v1/packages/{world.packages['open']}/files/{quote(PAYLOAD_FILE)}"
    r = client.get(url, headers={**world.auth("alice"), "Range": header})
    assert r.status_code == status, r.text
    if status == 416:
        assert error_code(r) == "E112" and r.headers["content-range"].startswith("bytes */")
    else:
        assert r.headers["content-range"].startswith("bytes 0-")


@pytest.mark.parametrize("offset", [BIG, "1e23", HUGE, "-1", "+5", "1_000", "1.0", " 5", "５"])
def test_offsets_are_whole_numbers_in_range(client, world, offset):
    for url, headers in [("/api/v1/collections/pca-j/packages", world.auth("alice")),
                         (f"/api/v1/packages/{world.packages['open']}/files", world.auth("alice")),
                         ("/api/v2/file/", {})]:
        params = {"offset": offset}
        if url.startswith("/api/v2"):
            params.update(username="carol", api_key=world.tokens[FIXITY_KEY])
        r = client.get(url, params=params, headers=headers)
        assert r.status_code in (400, 422) and error_code(r) == "E112", (url, offset, r.status_code, r.text)


@pytest.mark.parametrize("url", ["/api/v1/requests/{n}", "/api/v1/requests/{n}/approve"])
def test_huge_ids(client, world, url):
    method = client.post if url.endswith("approve") else client.get
    kwargs = {"json": {"why": "x"}} if url.endswith("approve") else {}
    r = method(url.format(n=BIG), headers=world.auth("carol"), **kwargs)
    assert r.status_code in (404, 422) and error_code(r) in ("E110", "E112"), r.text


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "0001-01", "2026-13", "2026-00"])
def test_usage_months_outside_the_calendar(client, world, month):
    r = client.get("/api/v1/usage", params={"month": month}, headers=world.auth("carol"))
    assert r.status_code in (400, 422) and error_code(r) == "E112", r.text
