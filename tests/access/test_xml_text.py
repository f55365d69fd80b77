"""Text XML 1.0 cannot carry is refused where it enters the access service — API, portal forms, CLI options,
entitlement files — with E113 (HTTP 400, exit 2), and nothing is stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from preservation.access.entitlements import import_entitlements
from preservation.access.requests import request_access
from preservation.catalog.access_models import (
    AccessGrant,
    AccessRequest,
    ApiToken,
    Entitlement,
    Library,
    TriggerEvent,
)
from preservation.catalog.models import Event
from preservation.errors import ImportRejected

from .conftest import csrf_of, login
from .test_rights import who

BAD = ["\uffff", "\ufffe", "\x01", "\x0b", "\ud800"]
TABLES = (AccessRequest, AccessGrant, TriggerEvent, Event, Library, Entitlement, ApiToken)


def stored(world) -> dict[str, int]:
    with world.repo.catalog.session() as s:
        return {t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def refused_over_http(response) -> None:
    assert response.status_code == 400, response.text
    if response.headers["content-type"].startswith("application/json"):
        assert response.json()["error"]["code"] == "E113"
    else:
        assert "E113" in response.text


@pytest.mark.parametrize("bad", BAD)
def test_api_refuses_a_reason_xml_cannot_carry(client, world, bad):
    """(A lone surrogate does not even parse as a JSON string: 422, E112.)"""
    before = stored(world)
    body = json.dumps({"collection": "journals", "reason": f"our licence{bad}ended"})  # \uXXXX escapes
    r = client.post("/api/v1/requests", headers={**world.auth("alice"), "content-type": "application/json"},
                    content=body)
    if bad == "\ud800":
        assert r.status_code == 422 and r.json()["error"]["code"] == "E112"
    else:
        refused_over_http(r)
    assert stored(world) == before


@pytest.mark.parametrize("bad", ["\uffff", "\x01"])
def test_api_refuses_staff_text_xml_cannot_carry(client, world, bad):
    rid = client.post("/api/v1/requests", headers=world.auth("alice"),
                      json={"package_id": world.packages["dark"], "reason": "needed"}).json()["id"]
    before = stored(world)
    for path, body in [(f"/api/v1/requests/{rid}/approve", {"why": f"ok{bad}"}),
                       (f"/api/v1/requests/{rid}/deny", {"why": f"no{bad}"}),
                       ("/api/v1/triggers", {"collection": "trig-b", "kind": "publisher_ceased",
                                             "date": "2026-01-01", "evidence": f"notice{bad}"}),
                       ("/api/v1/requests", {"collection": f"journals{bad}", "reason": "x"})]:
        refused_over_http(client.post(path, headers=world.auth("carol" if "requests/" in path or "triggers" in path
                                                               else "alice"), json=body))
    assert stored(world) == before
    assert client.get(f"/api/v1/requests/{rid}", headers=world.auth("alice")).json()["state"] == "pending"


def test_portal_forms_refuse_text_xml_cannot_carry(world):
    from .conftest import make_client

    with make_client(world) as library, make_client(world) as staff:
        login(library, "alice")
        before = stored(world)
        token = csrf_of(library.get("/portal").text)
        refused_over_http(library.post("/portal/requests", data={"csrf": token, "collection": "journals",
                                                                 "reason": "licence\uffffended"}))
        rid = request_access(world.repo, who(world, "bob"), package_id=world.packages["dark"], reason="r")["id"]
        before = stored(world)
        login(staff, "carol")
        token = csrf_of(staff.get("/staff/requests").text)
        refused_over_http(staff.post(f"/staff/requests/{rid}/decide",
                                     data={"csrf": token, "decision": "approve", "why": "o\x0bk"}))
        token = csrf_of(staff.get("/staff/triggers").text)
        refused_over_http(staff.post("/staff/triggers", data={"csrf": token, "collection": "trig-b",
                                                              "kind": "publisher_ceased", "date": "2026-01-01",
                                                              "evidence": "gone\ufffe"}))
        assert stored(world) == before


@pytest.mark.parametrize("args", [
    ("library", "add", "fdu", "--name", "Fudan\uffff"),
    ("library", "add", "fdu", "--name", "Fudan", "--contact", "ill@fudan\x01"),
    ("library", "token", "create", "carol", "--name", "cron\x1b[31m"),
    ("trigger", "record", "trig-b", "--kind", "publisher_ceased", "--date", "2025-12-31", "--evidence", "x\uffff"),
    ("trigger", "record", "trig-b", "--kind", "publisher_ceased", "--date", "2025-12-31", "--evidence", "x",
     "--by", "op\x07"),
    ("entitlement", "add", "thu", "journals", "--from-year", "2001", "--to-year", "2002", "--note", "inv\ufffe"),
])
def test_cli_options_refuse_text_xml_cannot_carry(world, run_cli, args):
    before = stored(world)
    out = run_cli(*args, exit_code=2, home=world.home)
    assert "E113" in out.stderr
    assert stored(world) == before


@pytest.mark.parametrize("option", ["--why", "--by"])
def test_cli_decisions_refuse_text_xml_cannot_carry(world, run_cli, option):
    rid = request_access(world.repo, who(world, "bob"), package_id=world.packages["dark"], reason="r")["id"]
    before = stored(world)
    args = {"--why": "ok", "--by": "operator:me", option: "bad\uffff"}
    out = run_cli("access", "approve", str(rid), "--why", args["--why"], "--by", args["--by"], exit_code=2,
                  home=world.home)
    assert "E113" in out.stderr
    assert stored(world) == before


def test_entitlement_files_name_the_row_and_field(world, tmp_path):
    path = tmp_path / "ent.csv"
    path.write_text("library,collection,from_year,to_year,note\nthu,journals,2001,2002,ok\n"
                    "thu\x00,journals,2003,2004,\uffff\n", encoding="utf-8")
    before = stored(world)
    with pytest.raises(ImportRejected) as e:
        import_entitlements(world.repo, path)
    assert {(f.code, f.params["row"], f.params["field"]) for f in e.value.findings} == {
        ("I009", 3, "library"), ("I009", 3, "note")}
    assert stored(world) == before
