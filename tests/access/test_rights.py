"""The access policy: who gets what automatically, what waits for staff, what a grant opens, and for how long."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from preservation.access import requests
from preservation.access.accounts import authenticate_token
from preservation.access.requests import ACCESS_DECISION, decide_request, request_access, revoke_grant
from preservation.access.rights import package_year, read_right
from preservation.access.triggers import ACCESS_TRIGGER, record_trigger
from preservation.catalog.access_models import AccessGrant
from preservation.catalog.models import Event, Package, utcnow
from preservation.errors import AlreadyExists, InvalidRequest, NotFound
from preservation.events import verify_chain


def who(world, user):
    return authenticate_token(world.repo, world.tokens[user], scopes=("read", "staff"))


def readable(world, user, label) -> bool:
    principal = who(world, user)
    with world.repo.catalog.session() as s:
        return read_right(s, principal.library_id, s.get(Package, world.packages[label])).allowed


def decision_events(world):
    with world.repo.catalog.session() as s:
        return [(e.outcome, e.agent, e.detail) for e in s.scalars(
            select(Event).where(Event.event_type == ACCESS_DECISION).order_by(Event.seq))]


@pytest.mark.parametrize("bag_info, name, year", [
    ({"Coverage-Year": "2017"}, "x-1999", 2017),
    ({"Year": "2019"}, "x", 2019),
    ({"year": "Volume 12 (2003)"}, "x", 2003),
    ({}, "journals-2011-q3", 2011),
    ({}, "deliverable-12345", None),
    ({"Year": ["unknown", "1998"]}, "x", 1998),
])
def test_package_year_comes_from_bag_info_then_name(bag_info, name, year):
    assert package_year(Package(id="p", name=name, bag_info=bag_info)) == year


def test_world_years(world):
    with world.repo.catalog.session() as s:
        years = {label: package_year(s.get(Package, pid)) for label, pid in world.packages.items()}
    assert years == {"dark": 2020, "pca_2012": 2012, "pca_2019": 2019, "pca_noyear": None, "trigger": 2018,
                     "open": 2021}


def test_open_collection_is_readable_without_asking(world):
    assert readable(world, "alice", "open")
    r = request_access(world.repo, who(world, "alice"), collection_key="open-d", reason="teaching")
    assert r["state"] == "approved" and r["automatic"]


def test_dark_collection_is_never_approved_automatically(world):
    r = request_access(world.repo, who(world, "alice"), package_id=world.packages["dark"], reason="research")
    assert r["state"] == "pending" and r["grants"] == []
    assert "dark" in r["why"]
    assert not readable(world, "alice", "dark")


def test_staff_approval_grants_for_the_policy_days_and_is_an_event(world):
    r = request_access(world.repo, who(world, "alice"), package_id=world.packages["dark"], reason="research")
    before = utcnow()
    decided = decide_request(world.repo, r["id"], approve=True, by="user:carol", why="board decision 2026-04")
    [grant] = decided["grants"]
    assert grant["scope"] == "package" and grant["package_id"] == world.packages["dark"]
    days = world.repo.policy.access.grant_days
    assert before + timedelta(days=days) <= grant["expires_at"] <= utcnow() + timedelta(days=days)
    assert readable(world, "alice", "dark")
    assert not readable(world, "bob", "dark"), "a grant is for one library only"
    outcome, agent, detail = decision_events(world)[-1]
    assert (outcome, agent) == ("success", "user:carol")
    assert detail["why"] == "board decision 2026-04" and detail["automatic"] is False
    assert detail["library"] == "pku" and detail["requested_by"] == "alice"
    with world.repo.catalog.session() as s:
        assert verify_chain(s).ok


def test_denial_is_recorded_and_opens_nothing(world):
    r = request_access(world.repo, who(world, "bob"), collection_key="journals", reason="curiosity")
    denied = decide_request(world.repo, r["id"], approve=False, by="user:carol", why="not a trigger case")
    assert denied["state"] == "denied" and denied["grants"] == []
    assert decision_events(world)[-1][:2] == ("failure", "user:carol")
    with pytest.raises(InvalidRequest, match="denied already"):
        decide_request(world.repo, r["id"], approve=True, by="user:carol", why="changed my mind")


def test_decisions_need_a_reason(world):
    r = request_access(world.repo, who(world, "bob"), collection_key="journals", reason="x")
    with pytest.raises(InvalidRequest):
        decide_request(world.repo, r["id"], approve=True, by="user:carol", why="  ")
    with pytest.raises(InvalidRequest):
        request_access(world.repo, who(world, "bob"), collection_key="journals", reason="")


def test_expired_and_revoked_grants_stop_reading(world):
    r = request_access(world.repo, who(world, "alice"), package_id=world.packages["dark"], reason="r")
    grant_id = decide_request(world.repo, r["id"], approve=True, by="user:carol", why="ok")["grants"][0]["id"]
    assert readable(world, "alice", "dark")
    with world.repo.catalog.session() as s:
        s.execute(update(AccessGrant).where(AccessGrant.id == grant_id)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert not readable(world, "alice", "dark")
    r2 = request_access(world.repo, who(world, "alice"), package_id=world.packages["dark"], reason="renewal")
    grant2 = decide_request(world.repo, r2["id"], approve=True, by="user:carol", why="renewed")["grants"][0]["id"]
    assert readable(world, "alice", "dark")
    revoke_grant(world.repo, grant2, by="user:carol", why="licence dispute")
    assert not readable(world, "alice", "dark")


def test_trigger_collection_waits_for_a_trigger_then_opens_pending_requests(world):
    r = request_access(world.repo, who(world, "bob"), collection_key="trig-b", reason="publisher gone?")
    assert r["state"] == "pending" and "no trigger" in r["why"]
    with pytest.raises(InvalidRequest, match="future"):
        record_trigger(world.repo, "trig-b", kind="publisher_ceased", occurred_on=date.today() + timedelta(days=30),
                       evidence="announced", recorded_by="user:carol")
    with pytest.raises(InvalidRequest):
        record_trigger(world.repo, "trig-b", kind="bankrupt", occurred_on=date(2026, 1, 5), evidence="x",
                       recorded_by="user:carol")
    t = record_trigger(world.repo, "trig-b", kind="publisher_ceased", occurred_on=date(2026, 1, 5),
                       evidence="Notice in the Gazette, 2026-01-05", recorded_by="user:carol")
    assert t["requests_approved"] == [r["id"]] and t["opens_collection"]
    assert readable(world, "bob", "trigger")
    after = request_access(world.repo, who(world, "alice"), collection_key="trig-b", reason="now open")
    assert after["state"] == "approved" and "publisher_ceased" in after["why"]
    with world.repo.catalog.session() as s:
        [ev] = s.scalars(select(Event).where(Event.event_type == ACCESS_TRIGGER)).all()
        assert ev.agent == "user:carol" and ev.detail["evidence"].startswith("Notice")


def test_pca_package_inside_the_entitled_years_is_approved_at_once(world):
    r = request_access(world.repo, who(world, "alice"), package_id=world.packages["pca_2012"], reason="cancelled")
    assert r["state"] == "approved" and r["automatic"] and r["decided_by"] == "preserve:access-policy:default@1"
    assert readable(world, "alice", "pca_2012")


@pytest.mark.parametrize("label, user, why", [
    ("pca_2019", "alice", "outside the entitled years 2010-2015"),
    ("pca_2012", "bob", "outside the entitled years 2016-2020"),
    ("pca_noyear", "alice", "year is unknown"),
])
def test_pca_outside_the_entitlement_waits_for_staff(world, label, user, why):
    r = request_access(world.repo, who(world, user), package_id=world.packages[label], reason="cancelled")
    assert r["state"] == "pending" and why in r["why"]
    assert not readable(world, user, label)


def test_pca_without_any_entitlement_waits_for_staff(world):
    principal = who(world, "carol")
    r = request_access(world.repo, principal, collection_key="pca-j", reason="office copy")
    assert r["state"] == "pending" and "no entitlement" in r["why"]


def test_pca_collection_request_grants_exactly_the_entitled_years(world):
    r = request_access(world.repo, who(world, "alice"), collection_key="pca-j", reason="post-cancellation")
    assert r["state"] == "approved"
    assert [(g["from_year"], g["to_year"], g["scope"]) for g in r["grants"]] == [(2010, 2015, "collection")]
    assert readable(world, "alice", "pca_2012")
    assert not readable(world, "alice", "pca_2019")
    assert not readable(world, "alice", "pca_noyear")


def test_duplicate_pending_request_is_refused(world):
    request_access(world.repo, who(world, "alice"), collection_key="journals", reason="one")
    with pytest.raises(AlreadyExists):
        request_access(world.repo, who(world, "alice"), collection_key="journals", reason="two")
    # another library may ask for the same
    request_access(world.repo, who(world, "bob"), collection_key="journals", reason="three")


def test_request_names_must_match(world):
    with pytest.raises(InvalidRequest, match="belongs to collection"):
        request_access(world.repo, who(world, "alice"), collection_key="open-d", package_id=world.packages["dark"],
                       reason="x")
    with pytest.raises(NotFound):
        request_access(world.repo, who(world, "alice"), package_id="no-such-package", reason="x")


def test_library_sees_only_its_own_requests(world):
    mine = request_access(world.repo, who(world, "alice"), collection_key="journals", reason="a")
    request_access(world.repo, who(world, "bob"), collection_key="journals", reason="b")
    alice = who(world, "alice")
    assert [r["id"] for r in requests.list_requests(world.repo, library_id=alice.library_id)] == [mine["id"]]
    assert len(requests.list_requests(world.repo)) == 2
