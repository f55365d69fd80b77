"""Item-level access (issue 16 point 6): a title's years, volumes, issues and articles in the portal and the
API; requests of a title, an issue or an article, decided by the policy or by staff; the grants they produce
opening exactly what they name, through the item API and the portal's download link.

The world (items_world): pca-j is post-cancellation, pku (alice) entitled 2010-2015, thu (bob) 2016-2020;
物理学报 volume 68 (2019) and 67 (2018) are in pca-j, volume 69 (2020) in the dark collection ``journals``.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import func, select

from preservation.catalog.access_models import AccessGrant, AccessRequest

from .conftest import csrf_of, login, make_client
from .items_world import items, items_template  # noqa: F401  (fixtures)

REASON = "A reader of our library needs this for a thesis"


@pytest.fixture
def client(items):  # noqa: F811
    with make_client(items.world) as c:
        yield c


def api_request(client, items, user, **body):  # noqa: F811
    return client.post("/api/v1/item-requests", json={"reason": REASON, **body}, headers=items.world.auth(user))


def approve(client, items, request_id):  # noqa: F811
    r = client.post(f"/api/v1/requests/{request_id}/approve", json={"why": "Staff extend access"},
                    headers=items.world.auth("carol"))
    assert r.status_code == 200, r.text
    return r.json()


def item_file_url(items, doi):  # noqa: F811
    _, path, _, _ = items.fulltext(doi)
    return f"/api/v1/items/{doi}/files/{quote(path)}"


def download(client, items, user, doi):  # noqa: F811
    return client.get(item_file_url(items, doi), headers=items.world.auth(user))


def counts(items) -> tuple[int, int]:  # noqa: F811
    with items.repo.catalog.session() as s:
        return (s.execute(select(func.count()).select_from(AccessRequest)).scalar_one(),
                s.execute(select(func.count()).select_from(AccessGrant)).scalar_one())


def portal_login(client, user):
    assert login(client, user).status_code == 303


# ------------------------------------------------------------------------------------------------- the title page


def test_title_page_shows_years_volumes_issues_and_articles_with_standing(client, items):  # noqa: F811
    title_id = items.title_id()
    r = client.get(f"/api/v1/titles/{title_id}", headers=items.world.auth("bob"))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["title"]["title"] == "物理学报"
    assert {"scheme": "issn_print", "value": "1000-3290"} in page["title"]["identifiers"]
    assert page["years"] == [{"year": 2019, "volumes": 1, "issues": 6, "articles": 6},
                             {"year": 2018, "volumes": 1, "issues": 3, "articles": 3}]
    assert page["year"] == 2019 and page["total"] == 6  # the latest year by default
    [volume] = page["volumes"]
    assert volume["volume"] == "68" and [i["issue"] for i in volume["issues"]] == ["1", "2", "3", "4", "5", "6"]
    articles = [a for i in volume["issues"] for a in i["articles"]]
    assert [a["doi"] for a in articles] == items.dois["aps_2019"]
    # bob's library (thu) is entitled to 2016-2020 in this pca collection: the policy would approve at once
    assert {a["standing"] for a in articles} == {"request"} and page["standing"] == "request"
    # alice's (pku, 2010-2015) is not: staff decide
    alice = client.get(f"/api/v1/titles/{title_id}?year=2018", headers=items.world.auth("alice")).json()
    assert alice["year"] == 2018 and [v["volume"] for v in alice["volumes"]] == ["67"]
    assert {a["standing"] for i in alice["volumes"][0]["issues"] for a in i["articles"]} == {"dark"}


def test_title_page_in_the_portal_is_reached_from_collection_search_and_item(client, items):  # noqa: F811
    title_id = items.title_id()
    portal_login(client, "alice")
    collection = client.get("/portal/collections/pca-j")
    assert 'href="/portal/collections/pca-j/titles"' in collection.text
    titles = client.get("/portal/collections/pca-j/titles")
    assert titles.status_code == 200 and f'href="/portal/titles/{title_id}"' in titles.text
    results = client.get("/portal/search", params={"q": "物理学报"})
    assert f'href="/portal/titles/{title_id}"' in results.text
    doi = items.dois["aps_2019"][1]
    item = client.get(f"/portal/items/{doi}")
    assert f'href="/portal/titles/{title_id}?year=2019"' in item.text
    page = client.get(f"/portal/titles/{title_id}")
    assert page.status_code == 200
    html = page.text
    assert "物理学报" in html and "Volume 68" in html and "Issue 2" in html
    assert html.index("Issue 1") < html.index("Issue 2") < html.index("Issue 6")
    assert f'data-doi="{doi}"' in html and 'data-standing="dark"' in html
    assert 'id="request-title"' in html and 'id="request-issue-68-2"' in html
    assert html.count('class="inline request-item"') == 6
    assert 'href="/portal/titles/%d?year=2018"' % title_id in html


def test_an_issue_links_to_its_folder_for_whoever_may_list_the_package(client, items):  # noqa: F811
    title_id = items.title_id()
    portal_login(client, "carol")  # staff list any package
    page = client.get(f"/portal/titles/{title_id}?year=2019").text
    folders = re.findall(r'href="/portal/packages/([^"?]+)\?path=([^"]+)" class="issue-folder" data-path="([^"]+)"', page)
    assert [unquote(path) for _, path, _ in folders] == [f"期刊/物理学报/2019/第{n:02d}期" for n in range(1, 7)]
    package_id, path, _ = folders[1]
    listing = client.get(f"/portal/packages/{package_id}?path={path}")
    assert listing.status_code == 200 and "aps-68-00002.pdf" in listing.text  # article 2 is in issue 2
    with make_client(items.world) as library:
        portal_login(library, "alice")  # pku is not entitled to 2019: no folder to open
        assert 'class="issue-folder"' not in library.get(f"/portal/titles/{title_id}?year=2019").text
        created = api_request(library, items, "alice", scope="issue", title_id=title_id, year=2019, volume="68",
                              issue="2").json()
        approve(library, items, created["id"])  # the issue opens its articles, not the package's folders
        assert 'class="issue-folder"' not in library.get(f"/portal/titles/{title_id}?year=2019").text


def test_title_page_speaks_chinese(items):  # noqa: F811
    with make_client(items.world) as c:
        c.cookies.set("preserve_lang", "zh_Hans_CN")
        portal_login(c, "carol")
        html = c.get(f"/portal/titles/{items.title_id()}?year=2019").text
    assert "第 68 卷" in html and "第 2 期" in html and "浏览本期文件" in html and "页码" in html
    for english in ("Volume 68", "Issue 2", "Browse the issue", "Page range", "Years"):
        assert english not in html


def test_title_page_pages_through_a_year(client, items):  # noqa: F811
    url = f"/api/v1/titles/{items.title_id()}?year=2019&limit=2"
    first = client.get(url, headers=items.world.auth("alice")).json()
    second = client.get(url + "&offset=2", headers=items.world.auth("alice")).json()
    assert first["total"] == second["total"] == 6
    assert [i["issue"] for i in first["volumes"][0]["issues"]] == ["1", "2"]
    assert [a["doi"] for i in second["volumes"][0]["issues"] for a in i["articles"]] == items.dois["aps_2019"][2:4]
    past = client.get(url + "&offset=6", headers=items.world.auth("alice")).json()
    assert past["volumes"] == [] and past["total"] == 6


def test_title_page_lists_undated_articles_apart(client, items):  # noqa: F811
    from preservation.catalog.library_models import Item

    undated = items.dois["aps_2018"]
    with items.repo.catalog.session() as s:
        s.execute(Item.__table__.update().where(Item.doi.in_(undated)).values(year=None, published=""))
    url = f"/api/v1/titles/{items.title_id()}"
    page = client.get(url, headers=items.world.auth("bob")).json()
    assert [y["year"] for y in page["years"]] == [2019, None] and page["year"] == 2019 and not page["undated"]
    apart = client.get(url + "?undated=true", headers=items.world.auth("bob")).json()
    assert apart["undated"] and apart["year"] is None and apart["total"] == 3
    assert [a["doi"] for i in apart["volumes"][0]["issues"] for a in i["articles"]] == undated
    # bob's entitled years cover the package's year (2018): each article may be requested, not the issue
    assert {a["standing"] for i in apart["volumes"][0]["issues"] for a in i["articles"]} == {"request"}
    both = client.get(url + "?undated=true&year=2019", headers=items.world.auth("bob"))
    assert both.status_code == 400
    portal_login(client, "bob")
    html = client.get(f"/portal/titles/{items.title_id()}?undated=true").text
    assert 'id="undated-link"' in html and "request-issue-" not in html and 'class="inline request-item"' in html
    created = client.post("/portal/item-requests", data=portal_form(
        client, items, scope="item", item_id=str(items.item(undated[0])["id"])))
    assert created.status_code == 303


def test_title_page_escapes_catalog_text(client, items):  # noqa: F811
    from preservation.catalog.library_models import Item

    doi = items.dois["aps_2019"][0]
    with items.repo.catalog.session() as s:
        s.execute(Item.__table__.update().where(Item.doi == doi).values(item_title='<script>alert(1)</script>"'))
    portal_login(client, "alice")
    html = client.get(f"/portal/titles/{items.title_id()}").text
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("path, status", [
    ("/titles/abc", 422), ("/titles/0", 422), ("/titles/+1", 422), ("/titles/1.0", 422),
    ("/titles/99999999999999999999", 422), ("/titles/999999", 404), ("/titles/{t}?year=20x9", 422),
    ("/titles/{t}?year=%EF%BC%92%EF%BC%90%EF%BC%91%EF%BC%99", 422), ("/titles/{t}?year=1999", 404),
    ("/titles/{t}?offset=-1", 422), ("/titles/{t}?limit=501", 422), ("/collections/nope/titles", 404),
])
def test_title_page_refuses_bad_ids_and_numbers(client, items, path, status):  # noqa: F811
    path = path.replace("{t}", str(items.title_id()))
    r = client.get("/api/v1" + path, headers=items.world.auth("alice"))
    assert r.status_code == status and "error" in r.json()
    portal_login(client, "alice")
    page = client.get("/portal" + path.replace("&limit=501", "").replace("?limit=501", ""))
    assert page.status_code in (status, 200 if "limit=501" in path else status)


# ------------------------------------------------------------------------------- requests of each scope, grants


def test_article_request_approved_by_staff_opens_that_article_only(client, items):  # noqa: F811
    doi, neighbour = items.dois["aps_2019"][0], items.dois["aps_2019"][1]
    assert download(client, items, "alice", doi).status_code == 403
    r = api_request(client, items, "alice", scope="item", doi=doi.upper())  # any form of the DOI
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["scope"] == "item" and created["state"] == "pending" and created["doi"] == doi
    assert "outside the entitled years" in created["why"]
    decided = approve(client, items, created["id"])
    [grant] = decided["grants"]
    assert grant["scope"] == "item" and grant["item_id"] == items.item(doi)["id"] and grant["package_id"] is None
    got = download(client, items, "alice", doi)
    package_id, path, size, sha256 = items.fulltext(doi)
    assert got.status_code == 200 and len(got.content) == size
    assert hashlib.sha256(got.content).hexdigest() == sha256
    # the article's page now lists its files; nothing else of the package opened
    detail = client.get(f"/api/v1/items/{doi}", headers=items.world.auth("alice")).json()
    assert detail["standing"] == "read" and {f["path"] for f in detail["files"]} >= {path}
    assert download(client, items, "alice", neighbour).status_code == 403
    pkg = f"/api/v1/packages/{package_id}"
    assert client.get(f"{pkg}/zip", headers=items.world.auth("alice")).status_code == 403
    assert client.get(f"{pkg}/files", headers=items.world.auth("alice")).status_code == 403
    assert client.get(f"{pkg}/files/{quote(items.fulltext(neighbour)[1])}",
                      headers=items.world.auth("alice")).status_code == 403
    # another library gains nothing from alice's grant
    assert download(client, items, "bob", doi).status_code == 403


def test_search_hits_show_an_item_grant_as_read(client, items):  # noqa: F811
    doi = items.dois["aps_2019"][0]

    def standing():
        found = client.get("/api/v1/search", params={"doi": doi}, headers=items.world.auth("alice")).json()
        [hit] = found["items"]["hits"]
        return hit["standing"]

    assert standing() == "dark"
    created = api_request(client, items, "alice", scope="item", doi=doi).json()
    approve(client, items, created["id"])
    assert standing() == "read"


def test_portal_download_link_honours_an_item_grant(client, items):  # noqa: F811
    doi = items.dois["aps_2018"][2]
    package_id, path, size, sha256 = items.fulltext(doi)
    link = f"/portal/packages/{package_id}/files/{quote(path)}"
    portal_login(client, "alice")
    assert client.get(link).status_code == 403
    created = api_request(client, items, "alice", scope="item", doi=doi).json()
    approve(client, items, created["id"])
    page = client.get(f"/portal/items/{doi}")
    assert f'href="{link}"' in page.text and 'data-standing="read"' in page.text
    got = client.get(link)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha256


def test_issue_request_opens_the_issue_and_nothing_else(client, items):  # noqa: F811
    title_id = items.title_id()
    in_issue, other_issue = items.dois["aps_2019"][1], items.dois["aps_2019"][2]  # issues 2 and 3
    created = api_request(client, items, "alice", scope="issue", title_id=title_id, year=2019, volume="68",
                          issue="2").json()
    assert created["scope"] == "issue" and created["state"] == "pending"
    assert (created["issue_year"], created["volume"], created["issue"]) == (2019, "68", "2")
    [grant] = approve(client, items, created["id"])["grants"]
    assert grant["scope"] == "issue" and (grant["from_year"], grant["to_year"]) == (2019, 2019)
    assert download(client, items, "alice", in_issue).status_code == 200
    assert download(client, items, "alice", other_issue).status_code == 403
    page = client.get(f"/api/v1/titles/{title_id}", headers=items.world.auth("alice")).json()
    standing = {i["issue"]: i["standing"] for i in page["volumes"][0]["issues"]}
    assert standing["2"] == "read" and standing["3"] == "dark"


def test_issue_the_title_does_not_have_is_refused(client, items):  # noqa: F811
    before = counts(items)
    r = api_request(client, items, "alice", scope="issue", title_id=items.title_id(), year=2019, volume="68",
                    issue="99")
    assert r.status_code == 400 and r.json()["error"]["code"] == "E112"
    assert counts(items) == before


def test_title_request_in_pca_is_approved_for_the_entitled_years_only(client, items):  # noqa: F811
    title_id = items.title_id()
    created = api_request(client, items, "bob", scope="title", title_id=title_id).json()
    assert created["state"] == "approved" and created["automatic"]  # thu: 2016-2020, by the policy
    [grant] = created["grants"]
    assert grant["scope"] == "title" and (grant["from_year"], grant["to_year"]) == (2016, 2020)
    assert download(client, items, "bob", items.dois["aps_2018"][0]).status_code == 200
    # alice's library is entitled 2010-2015: her title grant opens none of 2018-2019
    mine = api_request(client, items, "alice", scope="title", title_id=title_id).json()
    assert mine["state"] == "approved" and mine["grants"][0]["to_year"] == 2015
    assert download(client, items, "alice", items.dois["aps_2018"][0]).status_code == 403


def test_pca_title_entitlement_approves_an_article_request(client, items):  # noqa: F811
    doi = items.dois["aps_2019"][3]  # published 2019-02
    items.entitle_title("pku", "2019-01", "2019-12")
    page = client.get(f"/api/v1/titles/{items.title_id()}", headers=items.world.auth("alice")).json()
    assert {a["standing"] for i in page["volumes"][0]["issues"] for a in i["articles"]} == {"request"}
    created = api_request(client, items, "alice", scope="item", doi=doi).json()
    assert created["state"] == "approved" and created["automatic"]
    assert "title entitlement" in created["why"]
    assert download(client, items, "alice", doi).status_code == 200


def test_pca_title_request_gets_the_title_entitlement_dates(client, items):  # noqa: F811
    items.entitle_title("pku", "2019-02", "2019-12")
    created = api_request(client, items, "alice", scope="title", title_id=items.title_id()).json()
    assert created["state"] == "approved"
    spans = [(g["from_year"], g["to_year"], g["first_date"], g["last_date"]) for g in created["grants"]]
    assert spans == [(2010, 2015, None, None), (None, None, "2019-02", "2019-12")]
    assert download(client, items, "alice", items.dois["aps_2019"][3]).status_code == 200  # 2019-02-05
    assert download(client, items, "alice", items.dois["aps_2019"][0]).status_code == 403  # 2019-01-05
    assert download(client, items, "alice", items.dois["aps_2018"][0]).status_code == 403


def test_dark_article_is_refused_until_staff_approve(client, items):  # noqa: F811
    doi = items.dois["aps_dark"][0]
    detail = client.get(f"/api/v1/items/{doi}", headers=items.world.auth("bob")).json()
    assert detail["standing"] == "dark" and detail["files"] is None
    assert download(client, items, "bob", doi).status_code == 403
    dark_title = items.title_id("journals")
    page = client.get(f"/api/v1/titles/{dark_title}", headers=items.world.auth("bob")).json()
    assert page["standing"] == "dark"
    assert {a["standing"] for i in page["volumes"][0]["issues"] for a in i["articles"]} == {"dark"}
    created = api_request(client, items, "bob", scope="title", title_id=dark_title).json()
    assert created["state"] == "pending" and "dark" in created["why"]
    assert download(client, items, "bob", doi).status_code == 403
    approve(client, items, created["id"])
    assert download(client, items, "bob", doi).status_code == 200


def test_a_trigger_event_lets_waiting_item_requests_in(client, items):  # noqa: F811
    from preservation.catalog.models import Collection

    with items.repo.catalog.session() as s:
        s.execute(Collection.__table__.update().where(Collection.key == "journals").values(access_mode="trigger"))
    doi, other = items.dois["aps_dark"]
    article = api_request(client, items, "bob", scope="item", doi=doi).json()
    issue = api_request(client, items, "alice", scope="issue", title_id=items.title_id("journals"), year=2020,
                        volume="69", issue="2").json()
    assert article["state"] == issue["state"] == "pending" and "no trigger event" in article["why"]
    r = client.post("/api/v1/triggers", headers=items.world.auth("carol"), json={
        "collection": "journals", "kind": "publisher_ceased", "date": "2026-01-01", "evidence": "Gazette 2026/1"})
    assert r.status_code == 201, r.text
    for created in (article, issue):
        after = client.get(f"/api/v1/requests/{created['id']}", headers=items.world.auth("carol")).json()
        assert after["state"] == "approved" and after["automatic"]
        assert after["grants"][0]["scope"] == created["scope"]
    assert download(client, items, "bob", doi).status_code == 200
    assert download(client, items, "bob", other).status_code == 403  # bob asked for one article
    assert download(client, items, "alice", other).status_code == 200  # issue 2 of volume 69
    assert download(client, items, "alice", doi).status_code == 403


def test_revoked_item_grant_no_longer_opens_the_article(client, items):  # noqa: F811
    doi = items.dois["aps_2019"][4]
    created = api_request(client, items, "alice", scope="item", doi=doi).json()
    [grant] = approve(client, items, created["id"])["grants"]
    assert download(client, items, "alice", doi).status_code == 200
    from preservation.access.requests import revoke_grant
    revoke_grant(items.repo, grant["id"], by="user:carol", why="licence dispute")
    assert download(client, items, "alice", doi).status_code == 403


def test_same_pending_request_twice_is_a_conflict(client, items):  # noqa: F811
    doi = items.dois["aps_2019"][0]
    assert api_request(client, items, "alice", scope="item", doi=doi).status_code == 201
    before = counts(items)
    again = api_request(client, items, "alice", scope="item", doi=doi)
    assert again.status_code == 409 and counts(items) == before
    assert api_request(client, items, "bob", scope="item", doi=doi).status_code == 201  # bob's is his own


# ------------------------------------------------------------------------------------------------ hostile input


@pytest.mark.parametrize("body, status", [
    ({"scope": "package", "title_id": 1}, 422),
    ({"scope": "item"}, 400),
    ({"scope": "item", "doi": "not a doi"}, 400),
    ({"scope": "item", "doi": "10.7498/no.such.article"}, 404),
    ({"scope": "item", "item_id": "1"}, 422),
    ({"scope": "item", "item_id": 1.0}, 422),
    ({"scope": "item", "item_id": 0}, 422),
    ({"scope": "item", "item_id": 2**63}, 422),
    ({"scope": "title", "title_id": 999999}, 404),
    ({"scope": "title", "title_id": True}, 422),
    ({"scope": "issue", "title_id": "1", "year": 2019, "volume": "68", "issue": "1"}, 422),
    ({"scope": "issue", "year": 2019, "volume": "68", "issue": "1"}, 400),
    ({"scope": "issue", "title_id": "T", "volume": "68", "issue": "1"}, 400),
    ({"scope": "issue", "title_id": "T", "year": 99999, "volume": "68", "issue": "1"}, 422),
    ({"scope": "issue", "title_id": "T", "year": 2019, "volume": "68\x00", "issue": "1"}, 400),
    ({"scope": "issue", "title_id": "T", "year": 2019, "volume": "68", "issue": "1\n2"}, 400),
    ({"scope": "issue", "title_id": "T", "year": 2019, "volume": "6" * 33, "issue": "1"}, 422),
    ({"scope": "item", "doi": "DOI", "reason": ""}, 422),
    ({"scope": "item", "doi": "DOI", "reason": "   "}, 400),
    ({"scope": "item", "doi": "DOI", "reason": "x" * 2001}, 422),
    ({"scope": "item", "doi": "DOI", "reason": "red \x1b[31m text"}, 400),
    ({"scope": "item", "doi": "DOI", "reason": "NUL \x00 here"}, 400),
    ({"scope": "item", "doi": "DOI", "reason": "not XML \ufffe"}, 400),
    ({"scope": "item", "doi": "DOI", "reason": "C1 control \x85 here"}, 400),
])
def test_bad_item_requests_are_refused_and_change_nothing(client, items, body, status):  # noqa: F811
    title_id = items.title_id()
    body = {k: (title_id if v == "T" else items.dois["aps_2019"][0] if v == "DOI" else v) for k, v in body.items()}
    before = counts(items)
    r = client.post("/api/v1/item-requests", json={"reason": REASON, **body}, headers=items.world.auth("alice"))
    assert r.status_code == status, r.text
    assert "error" in r.json()
    assert counts(items) == before


def portal_form(client, items, **fields):  # noqa: F811
    page = client.get(f"/portal/titles/{items.title_id()}")
    return {"csrf": csrf_of(page.text), "reason": REASON, **fields}


@pytest.mark.parametrize("fields, status", [
    ({"scope": "item", "item_id": "1e3"}, 400),
    ({"scope": "item", "item_id": "+1"}, 400),
    ({"scope": "item", "item_id": " 1"}, 400),
    ({"scope": "item", "item_id": "\uff11"}, 400),  # a full-width digit one
    ({"scope": "item", "item_id": "9" * 30}, 400),
    ({"scope": "item", "item_id": "-1"}, 400),
    ({"scope": "title", "title_id": "0x1"}, 400),
    ({"scope": "issue", "title_id": "T", "year": "２０１９", "volume": "68", "issue": "1"}, 400),
    ({"scope": "issue", "title_id": "T", "year": "2019", "volume": "68", "issue": "1\x1b"}, 400),
    ({"scope": "all", "title_id": "T"}, 400),
    ({"scope": "item", "item_id": "I", "reason": "bell \x07"}, 400),
    ({"scope": "item", "item_id": "I", "reason": "y" * 2001}, 400),
])
def test_bad_portal_request_forms_are_refused(client, items, fields, status):  # noqa: F811
    portal_login(client, "alice")
    title_id, item_id = items.title_id(), items.item(items.dois["aps_2019"][0])["id"]
    fields = {k: (str(title_id) if v == "T" else str(item_id) if v == "I" else v) for k, v in fields.items()}
    before = counts(items)
    r = client.post("/portal/item-requests", data=portal_form(client, items, **fields))
    assert r.status_code == status, r.text
    assert counts(items) == before


def test_portal_request_needs_the_sessions_csrf_token(client, items):  # noqa: F811
    portal_login(client, "alice")
    item_id = str(items.item(items.dois["aps_2019"][0])["id"])
    before = counts(items)
    form = {"scope": "item", "item_id": item_id, "reason": REASON}
    assert client.post("/portal/item-requests", data=form).status_code == 403
    assert client.post("/portal/item-requests", data={**form, "csrf": "forged"}).status_code == 403
    assert counts(items) == before
    ok = client.post("/portal/item-requests", data=portal_form(client, items, scope="item", item_id=item_id))
    assert ok.status_code == 303 and ok.headers["location"].startswith("/portal/requests#request-")
    assert counts(items)[0] == before[0] + 1


def test_portal_request_without_login_goes_to_the_login_page(client, items):  # noqa: F811
    r = client.post("/portal/item-requests", data={"scope": "title", "title_id": "1", "reason": REASON})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert counts(items) == (0, 0)


def test_a_library_cannot_see_or_act_on_another_librarys_request(client, items):  # noqa: F811
    doi = items.dois["aps_2019"][0]
    mine = api_request(client, items, "alice", scope="item", doi=doi).json()
    bob = items.world.auth("bob")
    assert client.get(f"/api/v1/requests/{mine['id']}", headers=bob).status_code == 404
    assert mine["id"] not in [r["id"] for r in client.get("/api/v1/requests", headers=bob).json()]
    assert client.post(f"/api/v1/requests/{mine['id']}/approve", json={"why": "me"}, headers=bob).status_code == 403
    assert client.post(f"/api/v1/requests/{mine['id']}/approve", json={"why": "me"},
                       headers=items.world.auth("alice")).status_code == 403
    portal_login(client, "bob")
    assert f'id="request-{mine["id"]}"' not in client.get("/portal/requests").text
    page = client.get(f"/portal/titles/{items.title_id()}")
    assert f"Request {mine['id']} pending" not in page.text
    assert client.get("/staff/requests").status_code == 403
    token = csrf_of(page.text)
    r = client.post(f"/staff/requests/{mine['id']}/decide", data={"csrf": token, "why": "x", "decision": "approve"})
    assert r.status_code == 403
    with items.repo.catalog.session() as s:
        assert s.get(AccessRequest, mine["id"]).state == "pending"
    # and alice sees her own, pending, on the title page and her requests page
    client.post("/logout", data={"csrf": token})
    portal_login(client, "alice")
    assert f"Request {mine['id']} pending" in client.get(f"/portal/titles/{items.title_id()}").text
    assert f'id="request-{mine["id"]}"' in client.get("/portal/requests").text


def test_staff_see_and_decide_item_requests_in_their_pages(client, items):  # noqa: F811
    doi = items.dois["aps_2019"][5]
    created = api_request(client, items, "alice", scope="item", doi=doi).json()
    issue = api_request(client, items, "alice", scope="issue", title_id=items.title_id(), year=2018, volume="67",
                        issue="1").json()
    portal_login(client, "carol")
    page = client.get("/staff/requests")
    assert f'id="request-{created["id"]}"' in page.text and f'class="asked-item">' in page.text
    assert "2018, vol. 67, no. 1" in page.text
    token = csrf_of(page.text)
    r = client.post(f"/staff/requests/{created['id']}/decide",
                    data={"csrf": token, "why": "Approved for the thesis", "decision": "approve"})
    assert r.status_code == 303
    r = client.post(f"/staff/requests/{issue['id']}/decide",
                    data={"csrf": token, "why": "Not this one", "decision": "deny"})
    assert r.status_code == 303
    assert download(client, items, "alice", doi).status_code == 200
    assert download(client, items, "alice", items.dois["aps_2018"][0]).status_code == 403
    with items.repo.catalog.session() as s:
        assert s.get(AccessRequest, issue["id"]).state == "denied"


def test_operators_see_and_approve_item_requests_with_the_cli(client, items, run_cli, monkeypatch):  # noqa: F811
    monkeypatch.setenv("COLUMNS", "400")  # one table row per request
    doi = items.dois["aps_2019"][2]
    created = api_request(client, items, "alice", scope="item", doi=doi).json()
    issue = api_request(client, items, "alice", scope="issue", title_id=items.title_id(), year=2018, volume="67",
                        issue="2").json()
    listed = {r["id"]: r for r in run_cli("access", "requests", "--json", home=items.world.home).json()["requests"]}
    assert listed[created["id"]]["scope"] == "item" and listed[created["id"]]["doi"] == doi
    assert listed[issue["id"]]["scope"] == "issue"
    shown = run_cli("access", "requests", home=items.world.home).output
    assert f"article {doi}: " in shown and "issue 物理学报 2018, vol. 67, no. 2" in shown
    run_cli("access", "approve", created["id"], "--why", "thesis", home=items.world.home)
    assert download(client, items, "alice", doi).status_code == 200


# ------------------------------------------------------------------------------------ on SQLite and PostgreSQL


def test_title_page_requests_and_item_grants_on_each_catalog(catalog_url, tmp_path):
    """The same rules through the library functions, on SQLite and on PostgreSQL (ordering, grouping, scopes)."""
    from devtools.articles import write_articles
    from preservation.access import accounts
    from preservation.access.requests import decide_request, request_in_library_terms
    from preservation.access.rights import require_read
    from preservation.access.title_view import collection_titles, title_page
    from preservation.catalog.library_models import Item, ItemFile
    from preservation.catalog.models import Package
    from preservation.collection import add_collection
    from preservation.errors import AccessRefused, InvalidRequest
    from preservation.ingest import ingest

    from ..fixtures import make_repo

    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        add_collection(repo, "aps", "物理学报 backfile", publisher="CPS", access_mode="pca")
        dois = write_articles(tmp_path / "delivery", 12, year=2019, volume=68, pdf_size=(2_000, 3_000))
        package_id = ingest(repo, tmp_path / "delivery", "aps", name="aps-2019", bag_info={"Year": "2019"})[
            "package_id"]
        accounts.add_library(repo, "pku", "Peking University Library")
        accounts.add_user(repo, "pku", "alice", "correct horse battery staple")
        alice = accounts.authenticate_password(repo, "alice", "correct horse battery staple", "127.0.0.1")
        [listed] = collection_titles(repo, "aps")["titles"]
        page = title_page(repo, alice, listed["id"])
        issues = page["volumes"][0]["issues"]
        # issue numbers in numeric order: 1, 2 … 10, 11, 12 (not 1, 10, 11, 12, 2 …)
        assert [i["issue"] for i in issues] == [str(n) for n in range(1, 13)]
        assert {a["standing"] for i in issues for a in i["articles"]} == {"dark"}
        with pytest.raises(InvalidRequest):
            request_in_library_terms(repo, alice, scope="issue", reason=REASON, title_id=listed["id"],
                                     year="2019", volume="68", issue="13")
        asked = request_in_library_terms(repo, alice, scope="issue", reason=REASON, title_id=str(listed["id"]),
                                         year="2019", volume="68", issue="10")
        decided = decide_request(repo, asked["id"], approve=True, by="user:carol", why="thesis")
        assert decided["grants"][0]["scope"] == "issue"
        page = title_page(repo, alice, listed["id"])
        readable = [a["doi"] for i in page["volumes"][0]["issues"] for a in i["articles"] if a["standing"] == "read"]
        assert readable == [dois[9]]
        with repo.catalog.session() as s:
            package = s.get(Package, package_id)
            paths = dict(s.execute(select(Item.doi, ItemFile.path).join(ItemFile, ItemFile.item_id == Item.id)
                                   .where(ItemFile.path.like("%.pdf"))).all())
            assert require_read(s, alice.library_id, package, paths[dois[9]]).allowed
            with pytest.raises(AccessRefused):
                require_read(s, alice.library_id, package, paths[dois[8]])
            with pytest.raises(AccessRefused):
                require_read(s, alice.library_id, package)
    finally:
        repo.close()
