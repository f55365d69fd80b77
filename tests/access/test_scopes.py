"""API key scopes: least privilege by default; a fixity key reads the fixity API and nothing else;
staff decisions need a staff key; a staff key is never accepted in a URL."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from preservation.access.accounts import create_token
from preservation.catalog.access_models import AccessGrant, TriggerEvent
from preservation.errors import InvalidRequest

from .world import FIXITY_KEY, PAYLOAD_FILE


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def pending_request(client, world) -> int:
    r = client.post("/api/v1/requests", headers=world.auth("alice"),
                    json={"package_id": world.packages["dark"], "reason": "needed"})
    assert r.status_code == 201 and r.json()["state"] == "pending"
    return r.json()["id"]


def grants(world) -> int:
    with world.repo.catalog.session() as s:
        return s.execute(select(func.count()).select_from(AccessGrant)).scalar_one()


def test_a_fixity_key_can_neither_decide_nor_read_content(client, world):
    rid = pending_request(client, world)
    before = grants(world)
    key = bearer(world.tokens[FIXITY_KEY])
    pid = world.packages["open"]
    for method, path, body in [
        ("POST", f"/api/v1/requests/{rid}/approve", {"why": "ok"}),
        ("POST", f"/api/v1/requests/{rid}/deny", {"why": "no"}),
        ("POST", "/api/v1/triggers", {"collection": "trig-b", "kind": "publisher_ceased", "date": "2026-01-01",
                                      "evidence": "notice"}),
        ("GET", f"/api/v1/packages/{pid}/files/{quote(PAYLOAD_FILE)}", None),
        ("GET", f"/api/v1/packages/{pid}/zip", None),
        ("GET", "/api/v1/requests", None),
        ("GET", "/api/v1/me", None),
    ]:
        r = client.request(method, path, headers=key, json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "E800", (path, r.text)
        assert "fixity key" in r.json()["error"]["message"]
    assert grants(world) == before
    with world.repo.catalog.session() as s:
        assert s.execute(select(func.count()).select_from(TriggerEvent)).scalar_one() == 0
    ok = client.get("/api/v2/file/", params={"username": "carol", "api_key": world.tokens[FIXITY_KEY]})
    assert ok.status_code == 200 and ok.json()["meta"]["total_count"] == len(world.packages)


def test_a_staff_users_read_key_reads_but_cannot_decide(client, world):
    rid = pending_request(client, world)
    read_key = bearer(create_token(world.repo, "carol", name="dashboard")["token"])
    assert client.get("/api/v1/requests", headers=read_key).status_code == 200
    r = client.post(f"/api/v1/requests/{rid}/approve", headers=read_key, json={"why": "ok"})
    assert r.status_code == 403 and "staff key" in r.json()["error"]["message"]
    assert client.post(f"/api/v1/requests/{rid}/approve", headers=world.auth("carol"),
                       json={"why": "ok"}).json()["state"] == "approved"


def test_keys_are_least_privilege_by_default_and_staff_scopes_need_staff(world, run_cli):
    created = run_cli("library", "token", "create", "carol", "--json", home=world.home).json()
    assert created["scope"] == "read"
    fixity = run_cli("library", "token", "create", "carol", "--scope", "fixity", "--json", home=world.home).json()
    assert fixity["scope"] == "fixity"
    for scope in ("staff", "fixity"):
        refused = run_cli("library", "token", "create", "alice", "--scope", scope, exit_code=2, home=world.home)
        assert "E112" in refused.stderr and "needs a staff user" in refused.stderr
    run_cli("library", "token", "create", "carol", "--scope", "admin", exit_code=2, home=world.home)
    listed = {t["id"]: t["scope"] for t in run_cli("library", "token", "list", "--json", home=world.home).json()["tokens"]}
    assert listed[created["id"]] == "read" and listed[fixity["id"]] == "fixity"
    with pytest.raises(InvalidRequest):
        create_token(world.repo, "carol", scope="everything")
