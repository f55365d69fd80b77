"""One rule of what a title entitlement or a title grant covers (``preservation.titles.range_covers``), used by
every access decision and by the per-library KBART export; and a title page whose queries do not grow with its
issues.

The world (items_world): pca-j is post-cancellation, pku (alice) entitled 2010-2015, thu (bob) 2016-2020;
物理学报 volume 68 (2019, issues 1-6) and 67 (2018, issues 1-3) are in pca-j.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import event, select

from preservation import coverage
from preservation.access import rights, title_view
from preservation.access.accounts import load_principal
from preservation.catalog.access_models import AccessGrant, AccessUser, Library
from preservation.catalog.library_models import Item, TitleEntitlement
from preservation.catalog.models import Collection, utcnow

from .conftest import make_client
from .items_world import items, items_template  # noqa: F401  (fixtures)

REASON = "A reader of our library needs this for a thesis"


def _library_id(s, code: str) -> int:
    return s.execute(select(Library.id).where(Library.code == code)).scalar_one()


def entitle_volumes(items, library: str, first_volume: str, last_volume: str) -> None:  # noqa: F811
    """A KBART row of the library bounded by volume only (no dates)."""
    title_id = items.title_id()
    with items.repo.catalog.session() as s:
        s.add(TitleEntitlement(library_id=_library_id(s, library), title_id=title_id, first_date="", last_date="",
                               first_volume=first_volume, last_volume=last_volume))


def request(client, items, user, **body):  # noqa: F811
    r = client.post("/api/v1/item-requests", json={"reason": REASON, **body}, headers=items.world.auth(user))
    assert r.status_code in (200, 201), r.text
    return r.json()


def bound(first_date="", last_date="", first_volume="", last_volume=""):
    return SimpleNamespace(first_date=first_date, last_date=last_date, first_volume=first_volume,
                           first_issue="", last_volume=last_volume, last_issue="")


# ------------------------------------------------------------------------------------------------- the one rule


def test_an_item_of_a_year_is_not_within_a_range_ending_in_that_years_middle():
    assert rights.covering_entitlement([bound(last_date="2019-06")], "2019") is None
    assert rights.covering_entitlement([bound(first_date="2019-06")], "2019") is None
    row = bound(first_date="2019-01", last_date="2019-12")
    assert rights.covering_entitlement([row], "2019") is row
    assert rights.covering_entitlement([row], "2019-06-03") is row
    # a catalog date that is no real date is read as its year, or as no date, never as an error
    assert rights.covering_entitlement([row], "2019-13-45") is row
    assert rights.covering_entitlement([row], "Spring") is None
    assert rights.covering_entitlement([bound()], "Spring") is not None


def test_a_volume_only_entitlement_covers_its_volumes_and_nothing_undated_or_unnumbered():
    row = bound(first_volume="68", last_volume="68")
    assert rights.covering_entitlement([row], "2018-03", "67", "1") is None
    assert rights.covering_entitlement([row], "2019-03", "68", "1") is row
    assert rights.covering_entitlement([row], "2019-03") is None  # no volume: nothing to check it by
    whole = bound()
    assert rights.covering_entitlement([whole], "") is whole  # a row with no bound at all is the whole title


def test_a_title_grant_ending_mid_year_does_not_open_an_item_known_only_by_its_year():
    grant = SimpleNamespace(item_id=None, title_id=7, volume=None, issue=None, from_year=None, to_year=None,
                            first_date="2019-01", last_date="2019-06")
    only_year = SimpleNamespace(id=1, title_id=7, year=2019, volume="68", issue="1", published="")
    dated = SimpleNamespace(id=2, title_id=7, year=2019, volume="68", issue="1", published="2019-03-05")
    assert not rights.grant_covers_item(grant, only_year)
    assert rights.grant_covers_item(grant, dated)


def test_a_volume_only_kbart_row_approves_articles_of_its_volumes_only(items):  # noqa: F811
    entitle_volumes(items, "pku", "68", "68")
    with make_client(items.world) as client:
        page = client.get(f"/api/v1/titles/{items.title_id()}?year=2018", headers=items.world.auth("alice")).json()
        standings = {a["standing"] for i in page["volumes"][0]["issues"] for a in i["articles"]}
        assert standings == {"dark"}  # volume 67 is outside the row
        assert {i["standing"] for i in page["volumes"][0]["issues"]} == {"dark"}
        page = client.get(f"/api/v1/titles/{items.title_id()}?year=2019", headers=items.world.auth("alice")).json()
        assert {a["standing"] for i in page["volumes"][0]["issues"] for a in i["articles"]} == {"request"}
        assert {i["standing"] for i in page["volumes"][0]["issues"]} == {"request"}
        outside = request(client, items, "alice", scope="item", doi=items.dois["aps_2018"][0])
        assert outside["state"] == "pending" and not outside["automatic"]
        inside = request(client, items, "alice", scope="item", doi=items.dois["aps_2019"][0])
        assert inside["state"] == "approved" and inside["automatic"]


def test_a_title_request_does_not_turn_a_volume_only_row_into_an_open_grant(items):  # noqa: F811
    entitle_volumes(items, "pku", "68", "68")
    with make_client(items.world) as client:
        created = request(client, items, "alice", scope="title", title_id=items.title_id())
        assert created["state"] == "approved"  # for pku's entitled years 2010-2015, and for volume 68 only
        spans = [(g["from_year"], g["to_year"], g["first_date"], g["last_date"], g["first_volume"], g["last_volume"])
                 for g in created["grants"]]
        assert spans == [(2010, 2015, None, None, None, None), (None, None, None, None, "68", "68")]
        doi = items.dois["aps_2018"][0]
        path = items.fulltext(doi)[1]
        r = client.get(f"/api/v1/items/{doi}/files/{path}", headers=items.world.auth("alice"))
        assert r.status_code == 403


def test_an_issue_request_is_judged_by_its_volume_against_a_volume_only_row(items):  # noqa: F811
    entitle_volumes(items, "pku", "68", "68")
    with make_client(items.world) as client:
        inside = request(client, items, "alice", scope="issue", title_id=items.title_id(), year=2019, volume="68",
                         issue="2")
        assert inside["state"] == "approved" and inside["automatic"]  # as the title page says: volume 68 is entitled
        outside = request(client, items, "alice", scope="issue", title_id=items.title_id(), year=2018, volume="67",
                          issue="1")
        assert outside["state"] == "pending" and not outside["automatic"]


# ------------------------------------------------------------------------------------------------- the KBART export


def _grant(items, library: str, **scope) -> None:  # noqa: F811
    with items.repo.catalog.session() as s:
        collection_id = s.execute(select(Collection.id).where(Collection.key == "pca-j")).scalar_one()
        s.add(AccessGrant(library_id=_library_id(s, library), collection_id=collection_id, granted_by="carol",
                          expires_at=utcnow() + timedelta(days=30), **scope))


def _exported(items, library: str) -> list[dict[str, str]]:  # noqa: F811
    out = io.StringIO()
    coverage.export(items.repo, out, library_code=library)
    return list(csv.DictReader(io.StringIO(out.getvalue()), delimiter="\t"))


def test_the_library_export_lists_what_its_title_issue_and_article_grants_open(items):  # noqa: F811
    assert _exported(items, "pku") == []  # pku's years 2010-2015 cover nothing held
    title_id = items.title_id()
    _grant(items, "pku", title_id=title_id, from_year=2019, to_year=2019, volume="68", issue="2")
    rows = _exported(items, "pku")
    assert [(r["num_first_vol_online"], r["num_first_issue_online"], r["num_last_issue_online"]) for r in rows] \
        == [("68", "2", "2")]
    with items.repo.catalog.session() as s:
        article = s.execute(select(Item.id).where(Item.doi == items.dois["aps_2018"][1])).scalar_one()
        issue = s.get(Item, article).issue
    _grant(items, "pku", item_id=article)
    rows = _exported(items, "pku")
    # one run of consecutive years: from the article's issue of 2018 to the granted issue of 2019
    assert [(r["num_first_vol_online"], r["num_first_issue_online"], r["num_last_vol_online"],
             r["num_last_issue_online"]) for r in rows] == [("67", issue, "68", "2")]


def test_the_library_export_of_a_dated_title_grant_keeps_to_its_dates(items):  # noqa: F811
    _grant(items, "pku", title_id=items.title_id(), first_date="2018-01", last_date="2018-12")
    rows = _exported(items, "pku")
    assert [(r["num_first_vol_online"], r["num_last_vol_online"]) for r in rows] == [("67", "67")]


# ------------------------------------------------------------------------------------------------- the title page


def _add_issues(items, count: int) -> None:  # noqa: F811
    """``count`` more issues of volume 68 (2019), one article each, in the aps-2019 package."""
    with items.repo.catalog.session() as s:
        first = s.execute(select(Item).where(Item.doi == items.dois["aps_2019"][0])).scalar_one()
        for n in range(count):
            s.add(Item(package_id=first.package_id, title_id=first.title_id, kind="article", year=2019,
                       volume="68", issue=str(100 + n), published=f"2019-{1 + n % 12:02d}-01",
                       item_title=f"Added {n}", source_format="jats"))


def _statements(items, principal, limit: int) -> tuple[int, int]:  # noqa: F811
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = items.repo.catalog.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = title_view.title_page(items.repo, principal, items.title_id(), year=2019, limit=limit)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen), sum(len(v["issues"]) for v in page["volumes"])


def test_a_title_pages_queries_do_not_grow_with_its_issues(items):  # noqa: F811
    _add_issues(items, 60)
    entitle_volumes(items, "pku", "68", "68")  # a title entitlement row, so every issue is judged by it
    with items.repo.catalog.session() as s:
        uid = s.execute(select(AccessUser.id).where(AccessUser.username == "alice")).scalar_one()
    alice = load_principal(items.repo, uid, "127.0.0.1")
    one, issues_one = _statements(items, alice, 1)
    fifty, issues_fifty = _statements(items, alice, 50)
    assert (issues_one, issues_fifty) == (1, 50)
    assert fifty == one, (one, fifty)
