"""Grants and requests narrowed to volumes of a title: enforced by the one access rule
(``rights.title_grant_covers`` over ``titles.range_covers``), shown in the portal, exported in KBART.

The world (items_world): pca-j is post-cancellation, pku (alice) entitled 2010-2015, thu (bob) 2016-2020;
物理学报 volume 68 (2019, issues 1-6) and 67 (2018, issues 1-3) are in pca-j.  Tests that need volume 69 of
the same title ingest it (2020, two articles) into pca-j.
"""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from devtools.articles import write_articles
from preservation import coverage
from preservation.access import rights
from preservation.access.requests import decide_request
from preservation.catalog.access_models import AccessGrant, AccessRequest
from preservation.ingest import ingest

from .conftest import csrf_of, login, make_client
from .items_world import items, items_template  # noqa: F401  (fixtures)
from .test_title_rules import entitle_volumes, request

REASON = "A reader of our library needs this for a thesis"


def _grant(first_volume="", last_volume="", first_issue="", last_issue="", **more):
    fields = dict(item_id=None, title_id=7, volume=None, issue=None, from_year=None, to_year=None, first_date=None,
                  last_date=None, first_volume=first_volume, last_volume=last_volume, first_issue=first_issue,
                  last_issue=last_issue)
    return SimpleNamespace(**{**fields, **more})


def _article(volume, issue, year=2019, published="", title_id=7):
    return SimpleNamespace(id=1, title_id=title_id, year=year, volume=volume, issue=issue, published=published)


# ------------------------------------------------------------------------------------------------- the one rule


def test_a_grant_of_volume_68_opens_volume_68_issue_3_and_not_volume_69():
    grant = _grant("68", "68")
    assert rights.grant_scope(grant) == "volume"
    assert rights.grant_covers_item(grant, _article("68", "3"))
    assert not rights.grant_covers_item(grant, _article("69", "1", year=2020))
    assert not rights.grant_covers_item(grant, _article("67", "3", year=2018))
    assert not rights.grant_covers_item(grant, _article("", "3"))  # unnumbered: nothing to check it by
    assert not rights.grant_covers_item(grant, _article("68", "3", title_id=8))  # another title


def test_a_grant_bounded_to_the_issue_and_a_volume_range():
    one_issue = _grant("68", "68", "3", "3")
    assert rights.grant_covers_item(one_issue, _article("68", "3"))
    assert not rights.grant_covers_item(one_issue, _article("68", "4"))
    span = _grant("67", "68", "2", "1")  # from 67(2) to 68(1)
    assert [rights.grant_covers_item(span, _article(v, i)) for v, i in
            (("67", "1"), ("67", "2"), ("67", "9"), ("68", "1"), ("68", "2"))] == [False, True, True, True, False]
    dated = _grant("68", "68", first_date="2019-06", last_date="2019-12")  # every bound must hold
    assert not rights.grant_covers_item(dated, _article("68", "3", published="2019-03-01"))
    assert rights.grant_covers_item(dated, _article("68", "9", published="2019-09-01"))


# ------------------------------------------------------------------------------------------------- end to end


@pytest.fixture
def volume_69(items):  # noqa: F811
    """Volume 69 (2020, two articles) of the same title in pca-j; its DOIs."""
    root = items.world.home.parent / "aps-2020"
    dois = write_articles(root, 2, year=2020, volume=69, pdf_size=(3_000, 6_000), seed=19)
    result = ingest(items.repo, root, "pca-j", name="aps-2020", bag_info={"Year": "2020"})
    assert result["state"] == "preserved"
    return dois


def _download(client, items, user, doi):  # noqa: F811
    path = items.fulltext(doi)[1]
    return client.get(f"/api/v1/items/{doi}/files/{path}", headers=items.world.auth(user))


def test_a_library_granted_volume_68_reads_volume_68_issue_3_but_not_volume_69(items, volume_69):  # noqa: F811
    title_id = items.title_id()
    issue_3 = next(d for d in items.dois["aps_2019"] if items.item(d)["issue"] == "3")
    with make_client(items.world) as client:
        # pku's entitled years (2010-2015) cover neither volume: staff decide, and grant volume 68 only
        created = request(client, items, "alice", scope="volume", title_id=title_id, volume="68")
        assert created["state"] == "pending" and created["scope"] == "volume"
        assert (created["first_volume"], created["last_volume"]) == ("68", "68")
        assert _download(client, items, "alice", issue_3).status_code == 403
        decided = decide_request(items.repo, created["id"], approve=True, by="carol", why="thesis, volume 68")
        [grant] = decided["grants"]
        assert (grant["scope"], grant["first_volume"], grant["last_volume"], grant["covers"]) == (
            "volume", "68", "68", "volume 68")
        r = _download(client, items, "alice", issue_3)
        assert r.status_code == 200 and len(r.content) == items.fulltext(issue_3)[2]
        assert _download(client, items, "alice", volume_69[0]).status_code == 403
        assert _download(client, items, "alice", items.dois["aps_2018"][0]).status_code == 403
        # the title page says the same, article by article
        page = client.get(f"/api/v1/titles/{title_id}?year=2019", headers=items.world.auth("alice")).json()
        assert {a["standing"] for i in page["volumes"][0]["issues"] for a in i["articles"]} == {"read"}
        page = client.get(f"/api/v1/titles/{title_id}?year=2020", headers=items.world.auth("alice")).json()
        assert "read" not in {a["standing"] for i in page["volumes"][0]["issues"] for a in i["articles"]}
        # and search, hit by hit
        hits = client.get("/api/v1/search", params={"doi": issue_3}, headers=items.world.auth("alice")).json()
        assert [h["standing"] for h in hits["items"]["hits"]] == ["read"]
        hits = client.get("/api/v1/search", params={"doi": volume_69[0]}, headers=items.world.auth("alice")).json()
        assert [h["standing"] for h in hits["items"]["hits"]] != ["read"]
    # the library's KBART export lists volume 68 only
    out = io.StringIO()
    coverage.export(items.repo, out, library_code="pku")
    rows = list(csv.DictReader(io.StringIO(out.getvalue()), delimiter="\t"))
    assert [(r["num_first_vol_online"], r["num_last_vol_online"]) for r in rows] == [("68", "68")]


def test_a_volume_request_within_a_volume_bounded_entitlement_is_approved_at_once(items, volume_69):  # noqa: F811
    entitle_volumes(items, "pku", "68", "68")
    with make_client(items.world) as client:
        inside = request(client, items, "alice", scope="volume", title_id=items.title_id(), volume="68")
        assert inside["state"] == "approved" and inside["automatic"]
        assert [g["covers"] for g in inside["grants"]] == ["volume 68"]
        wider = request(client, items, "alice", scope="volume", title_id=items.title_id(), volume="68",
                        last_volume="69")
        assert wider["state"] == "pending" and not wider["automatic"]


def test_a_title_request_carries_a_volume_bounded_entitlement_into_its_grant(items, volume_69):  # noqa: F811
    entitle_volumes(items, "pku", "68", "68")
    with make_client(items.world) as client:
        created = request(client, items, "alice", scope="title", title_id=items.title_id())
        assert created["state"] == "approved"
        spans = sorted((g["from_year"] or 0, g["first_volume"], g["last_volume"], g["first_date"])
                       for g in created["grants"])
        assert spans == [(0, "68", "68", None), (2010, None, None, None)]
        issue_3 = next(d for d in items.dois["aps_2019"] if items.item(d)["issue"] == "3")
        assert _download(client, items, "alice", issue_3).status_code == 200
        assert _download(client, items, "alice", volume_69[0]).status_code == 403
        assert _download(client, items, "alice", items.dois["aps_2018"][0]).status_code == 403


@pytest.mark.parametrize("body, message", [
    ({"volume": "S1"}, "not a volume number"),
    ({"volume": ""}, "volume is required"),
    ({}, "volume is required"),
    ({"volume": "69", "last_volume": "68"}, "comes before"),
    ({"volume": "99"}, "nothing preserved of volume"),
    ({"volume": "6\n8"}, "one line"),
    ({"volume": "68", "last_volume": "x"}, "not a volume number"),
])
def test_a_bad_volume_request_is_refused_and_nothing_is_recorded(items, body, message):  # noqa: F811
    with make_client(items.world) as client:
        r = client.post("/api/v1/item-requests", json={"reason": REASON, "scope": "volume",
                                                       "title_id": items.title_id(), **body},
                        headers=items.world.auth("alice"))
        assert r.status_code in (400, 422), r.text
        if r.status_code == 400:
            assert message in r.json()["error"]["message"]
    with items.repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(AccessRequest)) == 0
        assert s.scalar(select(func.count()).select_from(AccessGrant)) == 0


def test_the_portal_offers_volumes_and_shows_what_a_grant_covers(items):  # noqa: F811
    title_id = items.title_id()
    with make_client(items.world) as client:
        assert login(client, "alice").status_code == 303
        page = client.get(f"/portal/titles/{title_id}?year=2019")
        assert page.status_code == 200 and 'id="request-volume-68"' in page.text
        r = client.post("/portal/item-requests", data={
            "csrf": csrf_of(page.text), "scope": "volume", "title_id": str(title_id), "volume": "68",
            "reason": REASON})
        assert r.status_code == 303
        page = client.get(f"/portal/titles/{title_id}?year=2019")
        assert 'id="request-volume-68"' not in page.text and "for this volume is pending." in page.text
        [pending] = client.get("/api/v1/requests", headers=items.world.auth("alice")).json()
        decide_request(items.repo, pending["id"], approve=True, by="carol", why="volume 68")
        mine = client.get("/portal/requests")
        assert 'class="asked-volume"' in mine.text and "vol. 68" in mine.text
        assert 'class="grant-covers">vol. 68<' in mine.text
