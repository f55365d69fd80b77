"""GET /api/v1/search, the item API by DOI (slashes, percent-encoding, unicode, hostile paths) and the portal page."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest
from sqlalchemy import select

from preservation.access import requests
from preservation.catalog.access_models import UsageEvent
from preservation.catalog.models import PackageFile

from ..access.conftest import login
from .test_standing import principal
from .world_items import BINARY_FILE, OTHER_FILE, TEXT_FILE

OPEN_DOI = "10.1000/open/with/slashes/files/x"  # holds "/files/" itself
PCA_DOI = "10.7498/aps.61.1"


def catalog_sha256(world, label: str, path: str) -> str:
    with world.repo.catalog.session() as s:
        return s.execute(select(PackageFile.sha256).where(PackageFile.package_id == world.packages[label],
                                                          PackageFile.path == path)).scalar_one()


def test_search_api_gives_hits_with_the_callers_standing(client, library):
    world = library.world
    r = client.get("/api/v1/search", params={"q": "物理"}, headers=world.auth("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    got = {h["doi"]: h["standing"] for h in body["items"]["hits"]}
    assert got[PCA_DOI] == "request" and got[OPEN_DOI] == "read" and got["10.1000/dark.1"] == "dark"
    assert body["items"]["total"] == 5 and body["items"]["total_exact"] is True
    r = client.get("/api/v1/search", params={"issn": "1000-3290", "year": "2012"}, headers=world.auth("bob"))
    assert [h["doi"] for h in r.json()["items"]["hits"]] == [PCA_DOI]
    assert r.json()["titles"]["hits"][0]["title"] == "物理学报"
    r = client.get("/api/v1/search", params={"author": "smith"}, headers=world.auth("alice"))
    assert [h["doi"] for h in r.json()["items"]["hits"]] == [OPEN_DOI]


@pytest.mark.parametrize("params, status, code", [
    ({}, 400, "E112"),
    ({"q": "x"}, 400, "E112"),
    ({"q": "物理" * 101}, 422, "E112"),
    ({"q": "物理\u202e"}, 200, None),  # a bidi override is only a character to look for
    ({"q": "物理\uffff"}, 400, "E113"),
    ({"issn": "1000-3291"}, 400, "E115"),
    ({"doi": "doi:nothing"}, 400, "E115"),
    ({"q": "物理", "limit": "0"}, 422, "E112"),
    ({"q": "物理", "limit": "101"}, 422, "E112"),
    ({"q": "物理", "limit": "1.0"}, 422, "E112"),
    ({"q": "物理", "offset": "-1"}, 422, "E112"),
    ({"q": "物理", "offset": "10001"}, 422, "E112"),
    ({"q": "物理", "year": "2o19"}, 422, "E112"),
    ({"q": "物理", "year": "99999999999999999999999"}, 422, "E112"),
    ({"q": '" OR * NEAR(a b) ^c AND (x'}, 200, None),
])
def test_search_api_refuses_bad_input_with_4xx(client, library, params, status, code):
    r = client.get("/api/v1/search", params=params, headers=library.world.auth("alice"))
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"]["code"] == code


def test_control_characters_in_the_query_are_refused_before_routing(client, library):
    r = client.get("/api/v1/search?q=%E7%89%A9%00%E7%90%86", headers=library.world.auth("alice"))
    assert r.status_code == 400


def test_search_api_needs_a_key(client, library):
    assert client.get("/api/v1/search", params={"q": "物理"}).status_code == 401


@pytest.mark.parametrize("doi", [OPEN_DOI, OPEN_DOI.upper(), quote(OPEN_DOI, safe=""), f"doi:{OPEN_DOI}"])
def test_item_by_doi_with_slashes_in_any_spelling(client, library, doi):
    r = client.get(f"/api/v1/items/{doi}", headers=library.world.auth("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["doi"] == OPEN_DOI and body["standing"] == "read"
    files = {f["path"]: f for f in body["files"]}
    assert set(files) == {TEXT_FILE, BINARY_FILE}
    assert files[BINARY_FILE]["sha256"] == catalog_sha256(library.world, "open", BINARY_FILE)
    assert files[BINARY_FILE]["size"] == 70_000


def test_item_with_a_unicode_doi(client, library):
    r = client.get("/api/v1/items/" + quote("10.1000/物理.1"), headers=library.world.auth("alice"))
    assert r.status_code == 200 and r.json()["title"] == "触发物理档案"


def test_an_unreadable_items_files_are_hidden_but_staff_see_them(client, library):
    world = library.world
    body = client.get(f"/api/v1/items/{PCA_DOI}", headers=world.auth("alice")).json()
    assert body["standing"] == "request" and body["files"] is None
    staff = client.get(f"/api/v1/items/{PCA_DOI}", headers=world.auth("carol")).json()
    assert {f["path"] for f in staff["files"]} == {TEXT_FILE, BINARY_FILE}


@pytest.mark.parametrize("doi, status, code", [
    ("10.1000/no.such.item", 404, "E110"),
    ("not-a-doi", 400, "E115"),
    ("10.1000/" + "x" * 400, 400, "E115"),
])
def test_unknown_and_malformed_dois(client, library, doi, status, code):
    r = client.get(f"/api/v1/items/{doi}", headers=library.world.auth("alice"))
    assert r.status_code == status and r.json()["error"]["code"] == code


def test_download_an_items_file_verified_and_counted(client, library):
    world = library.world
    r = client.get(f"/api/v1/items/{OPEN_DOI}/files/{quote(BINARY_FILE)}", headers=world.auth("alice"))
    assert r.status_code == 200, r.text
    assert hashlib.sha256(r.content).hexdigest() == catalog_sha256(world, "open", BINARY_FILE)
    partial = client.get(f"/api/v1/items/{OPEN_DOI}/files/{TEXT_FILE}", headers={**world.auth("alice"),
                                                                                "Range": "bytes=0-9"})
    assert partial.status_code == 206 and len(partial.content) == 10
    with world.repo.catalog.session() as s:
        events = s.execute(select(UsageEvent.metric, UsageEvent.item_id, UsageEvent.path)
                           .where(UsageEvent.metric == "request")).all()
    assert {(m, i, p) for m, i, p in events} == {("request", library.items[OPEN_DOI], BINARY_FILE),
                                                ("request", library.items[OPEN_DOI], TEXT_FILE)}


@pytest.mark.parametrize("path", [
    OTHER_FILE,  # a file of the package, but not of this item
    "bagit.txt", "manifest-sha256.txt",  # tag files of the bag
    "data/articles/../index.xml", "data/articles/%2E%2E/index.xml", "../data/articles/a.txt",
    "data/articles/a.txt/", "/data/articles/a.txt", "data//articles/a.txt", "DATA/articles/a.txt",
    "data/articles/a.txt%00", "",
])
def test_paths_that_are_not_the_items_files_are_not_found(client, library, path):
    r = client.get(f"/api/v1/items/{OPEN_DOI}/files/{path}", headers=library.world.auth("alice"))
    assert r.status_code in (400, 404), (path, r.status_code)
    assert r.status_code == 400 or r.json()["error"]["code"] == "E110"


def test_a_file_of_an_item_needs_a_read_right(client, library):
    world = library.world
    r = client.get(f"/api/v1/items/{PCA_DOI}/files/{TEXT_FILE}", headers=world.auth("alice"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "E800"
    requests.request_access(world.repo, principal(world, "alice"), reason="post-cancellation",
                            package_id=world.packages["pca_2012"])  # within pku's years: approved at once
    r = client.get(f"/api/v1/items/{PCA_DOI}/files/{TEXT_FILE}", headers=world.auth("alice"))
    assert r.status_code == 200
    assert client.get(f"/api/v1/items/{PCA_DOI}/files/{TEXT_FILE}", headers=world.auth("bob")).status_code == 403


def test_portal_search_page_lists_hits_with_standing(client, library):
    login(client, "alice")
    page = client.get("/portal/search", params={"q": "物理"})
    assert page.status_code == 200
    assert 'data-standing="read"' in page.text and 'data-standing="dark"' in page.text
    assert "量子物理研究" in page.text and f'href="/portal/items/{PCA_DOI}"' in page.text
    empty = client.get("/portal/search")
    assert empty.status_code == 200 and 'id="search-q"' in empty.text


def test_portal_search_escapes_and_refuses(client, library):
    login(client, "alice")
    page = client.get("/portal/search", params={"q": "<script>alert(1)</script>"})
    assert page.status_code == 200 and "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert client.get("/portal/search", params={"q": "x"}).status_code == 400
    assert client.get("/portal/search", params={"q": "物理", "offset": "-5"}).status_code == 422


def test_portal_item_page_offers_request_or_download(client, library):
    login(client, "alice")
    page = client.get(f"/portal/items/{PCA_DOI}")
    assert page.status_code == 200 and 'id="request-item"' in page.text
    page = client.get(f"/portal/items/{OPEN_DOI}")
    assert page.status_code == 200 and 'class="file-link"' in page.text and 'id="request-item"' not in page.text
    assert client.get("/portal/items/10.1000/none").status_code == 404


def test_portal_search_needs_a_login(client, library):
    r = client.get("/portal/search", params={"q": "物理"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
