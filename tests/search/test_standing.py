"""Each hit's standing for the caller's library: read, request or dark, by grants, entitlements, triggers and mode."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from preservation import search
from preservation.access import requests, triggers
from preservation.access.accounts import load_principal
from preservation.catalog.access_models import AccessUser

from .world_items import add_title_entitlement


def standings(world, code: str | None, q: str = "物理") -> dict[str, tuple[str | None, str]]:
    result = search.search(world.repo, search.make_query(q), library_code=code)
    return {h["doi"]: (h["standing"], h["standing_reason"]) for h in result["items"]["hits"]}


def principal(world, username: str):
    with world.repo.catalog.session() as s:
        uid = s.execute(select(AccessUser.id).where(AccessUser.username == username)).scalar_one()
    return load_principal(world.repo, uid, "127.0.0.1")


def test_standing_by_mode_and_collection_entitlements(library):
    world = library.world
    pku = {doi: s for doi, (s, _) in standings(world, "pku").items()}
    assert pku == {"10.7498/aps.61.1": "request",  # pca, 2012 within pku's entitled 2010-2015
                   "10.7498/aps.68.1": "dark",  # pca, 2019 outside them: staff decide
                   "10.1000/dark.1": "dark",
                   "10.1000/open/with/slashes/files/x": "read",
                   "10.1000/物理.1": "dark"}  # trigger collection, no trigger recorded
    thu = {doi: s for doi, (s, _) in standings(world, "thu").items()}
    assert thu["10.7498/aps.61.1"] == "dark" and thu["10.7498/aps.68.1"] == "request"


def test_a_grant_makes_it_readable(library):
    world = library.world
    requests.request_access(world.repo, principal(world, "alice"), reason="post-cancellation",
                            package_id=world.packages["pca_2012"])
    standing, why = standings(world, "pku")["10.7498/aps.61.1"]
    assert standing == "read" and why.startswith("grant ")


def test_a_trigger_event_makes_it_requestable(library):
    world = library.world
    triggers.record_trigger(world.repo, "trig-b", kind="publisher_ceased", occurred_on=date(2020, 1, 1),
                            evidence="notice", recorded_by="user:carol")
    assert standings(world, "pku")["10.1000/物理.1"][0] == "request"


def test_a_title_entitlement_covers_items_by_date(library):
    world = library.world
    assert standings(world, "thu")["10.7498/aps.61.1"][0] == "dark"
    add_title_entitlement(world, "thu", library.title_id, "2012-01", "2012-12")
    standing, why = standings(world, "thu")["10.7498/aps.61.1"]
    assert standing == "request" and "title entitlement" in why
    add_title_entitlement(world, "pku", library.title_id, "2013", "")  # 2012 is before it
    assert standings(world, "pku")["10.7498/aps.68.1"][0] == "request"  # 2019, open-ended range


def test_title_hits_have_a_standing_too(library):
    world = library.world
    result = search.search(world.repo, search.make_query("acta physica"), library_code="pku")
    [hit] = result["titles"]["hits"]
    assert hit["standing"] == "request"  # pku holds entitled years of the pca collection
    result = search.search(world.repo, search.make_query("acta physica"), library_code="office")
    assert result["titles"]["hits"][0]["standing"] == "dark"


def test_without_a_library_there_is_no_standing(library):
    assert set(s for s, _ in standings(library.world, None).values()) == {None}


def test_a_grant_of_one_article_makes_that_article_readable(library):
    """A request in library terms (one article), approved by the policy, opens that item only."""
    world = library.world
    requests.request_in_library_terms(world.repo, principal(world, "alice"), scope="item", reason="one article",
                                      doi="10.7498/aps.61.1")
    pku = standings(world, "pku")
    assert pku["10.7498/aps.61.1"][0] == "read"
    assert pku["10.7498/aps.68.1"][0] == "dark"  # the same title, another year: not opened
    titles = search.search(world.repo, search.make_query("acta physica"), library_code="pku")
    assert titles["titles"]["hits"][0]["standing"] == "request"  # an article's grant is not the title's
