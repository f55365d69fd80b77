"""A DOI URL whose percent-encoding is not UTF-8 is a 400 with its code, on every way in, never a 500."""

from __future__ import annotations

import pytest

BAD = ["https://doi.org/10.1234/%ff", "https://doi.org/10.1234/%C3", "http://dx.doi.org/10.1234/a%e4%b8"]


@pytest.mark.parametrize("bad", BAD)
def test_search_api_refuses_a_doi_url_that_is_not_utf8(client, library, bad):
    r = client.get("/api/v1/search", params={"doi": bad}, headers=library.world.auth("alice"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "E115"


@pytest.mark.parametrize("bad", BAD)
def test_in_a_free_query_it_is_only_words_that_match_nothing(client, library, bad):
    r = client.get("/api/v1/search", params={"q": bad}, headers=library.world.auth("alice"))
    assert r.status_code == 200, r.text
    assert r.json()["items"]["hits"] == []


@pytest.mark.parametrize("bad", BAD)
def test_portal_search_answers_with_a_page(client, library, bad):
    from ..access.conftest import login

    login(client, "alice")
    r = client.get("/portal/search", params={"q": bad})
    assert r.status_code == 200 and "<form" in r.text
