"""The portal: sessions, CSRF on every form, login rate limit, security headers, authorization on every page."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from preservation.catalog.access_models import AccessRequest, LoginCounter, TriggerEvent

from .conftest import csrf_of, login, make_client
from .world import CANARY, PASSWORD, PAYLOAD_FILE


def session_cookie(response) -> str:
    [cookie] = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("preserve_session=")]
    return cookie


def count(world, model) -> int:
    with world.repo.catalog.session() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def form_token(client, path="/portal") -> str:
    return csrf_of(client.get(path).text)


def test_login_sets_a_hardened_session_cookie(client):
    r = login(client, "alice")
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    cookie = session_cookie(r).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/portal").status_code == 200


def test_secure_flag_when_configured(world):
    with make_client(world, cookie_secure=True) as c:
        r = login(c, "alice")
        assert "; secure" in session_cookie(r).lower()
        assert "strict-transport-security" in r.headers


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_login_form_needs_its_csrf_token(client, token):
    client.get("/login")
    data = {"username": "alice", "password": PASSWORD}
    if token is not None:
        data["csrf"] = token
    r = client.post("/login", data=data)
    assert r.status_code == 403 and "security token" in r.text
    assert client.get("/portal").status_code == 303


def test_wrong_password_and_unknown_user_look_the_same(client):
    a = login(client, "alice", "wrong password!!")
    b = login(client, "nobody-at-all", "wrong password!!")
    assert a.status_code == b.status_code == 401
    assert "wrong username or password" in a.text and "wrong username or password" in b.text


def test_login_rate_limit_per_username_and_address(world):
    with make_client(world, client=("198.51.100.7", 1)) as attacker, \
            make_client(world, client=("198.51.100.8", 1)) as owner:
        for _ in range(5):
            assert login(attacker, "alice", "guess-guess-guess").status_code == 401
        blocked = login(attacker, "alice", PASSWORD)
        assert blocked.status_code == 429 and "locked after too many failed log-ins, until" in blocked.text
        assert attacker.get("/portal").status_code == 303
        # the owner, from elsewhere, is not locked out; another account from the attacker's address neither
        assert login(owner, "alice").status_code == 303
        assert login(attacker, "bob").status_code == 303
    with world.repo.catalog.session() as s:
        counts = {(c.username, c.client_ip): c.attempts for c in s.query(LoginCounter)}
    # the attacker's 5 failures and refused 6th stay; the owner's success gave the account its attempt back
    assert counts == {("alice", "198.51.100.7"): 5, ("alice", "*"): 5, ("bob", "*"): 0}


def test_failures_expire_after_the_window(world):
    with make_client(world, login_window=timedelta(seconds=0)) as c:
        for _ in range(7):
            assert login(c, "alice", "guess-guess-guess").status_code == 401
        assert login(c, "alice").status_code == 303


def test_success_clears_the_failures(world):
    with make_client(world) as c:
        for _ in range(4):
            login(c, "alice", "guess-guess-guess")
        assert login(c, "alice").status_code == 303
        for _ in range(4):
            assert login(c, "alice", "guess-guess-guess").status_code == 401
        assert login(c, "alice").status_code == 303


def test_security_headers_on_every_kind_of_response(client, world):
    login(client, "alice")
    for path in ("/login", "/portal", "/portal/requests", "/portal/collections/journals", "/no-such-page",
                 "/api/v1/me"):
        r = client.get(path)
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "script-src" not in h["content-security-policy"] and "default-src 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        assert h["cache-control"] == "no-store"


@pytest.mark.parametrize("target, expected", [
    ("//evil.example/x", "/portal"), ("https://evil.example", "/portal"), ("/\\evil.example", "/portal"),
    ("/portal/requests", "/portal/requests"),
])
def test_no_open_redirect_after_login(client, target, expected):
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token, "next": target})
    assert r.headers["location"] == expected


def test_every_portal_page_needs_a_login(client, world):
    pid = world.packages["open"]
    for path in ("/portal", "/portal/requests", "/portal/collections/open-d", f"/portal/packages/{pid}",
                 f"/portal/packages/{pid}/files/{quote(PAYLOAD_FILE)}", f"/portal/packages/{pid}/zip",
                 "/staff/requests", "/staff/triggers", "/staff/usage"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert client.post("/portal/requests", data={"collection": "journals", "reason": "x"}).status_code == 303


def test_staff_pages_refuse_library_users(client, world):
    login(client, "alice")
    token = form_token(client)
    for path in ("/staff/requests", "/staff/triggers", "/staff/usage"):
        assert client.get(path).status_code == 403
    rid = _portal_request(client, package_id=world.packages["dark"])
    r = client.post(f"/staff/requests/{rid}/decide", data={"csrf": token, "decision": "approve", "why": "me"})
    assert r.status_code == 403
    r = client.post("/staff/triggers", data={"csrf": token, "collection": "trig-b", "kind": "publisher_ceased",
                                             "date": "2026-01-01", "evidence": "x"})
    assert r.status_code == 403 and count(world, TriggerEvent) == 0


def _portal_request(client, **fields) -> int:
    token = form_token(client)
    r = client.post("/portal/requests", data={"csrf": token, "reason": "our licence ended", **fields})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("-", 1)[1])


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_request_form_needs_csrf(client, world, token):
    login(client, "alice")
    data = {"collection": "journals", "reason": "x"}
    if token is not None:
        data["csrf"] = token
    assert client.post("/portal/requests", data=data).status_code == 403
    assert count(world, AccessRequest) == 0


@pytest.mark.parametrize("token", [None, "wrong"])
def test_staff_forms_need_csrf(client, world, token):
    login(client, "alice")
    rid = _portal_request(client, package_id=world.packages["dark"])
    client.cookies.clear()
    login(client, "carol")
    data = {"decision": "approve", "why": "ok"}
    if token is not None:
        data["csrf"] = token
    assert client.post(f"/staff/requests/{rid}/decide", data=data).status_code == 403
    trigger = {"collection": "trig-b", "kind": "publisher_ceased", "date": "2026-01-01", "evidence": "x"}
    if token is not None:
        trigger["csrf"] = token
    assert client.post("/staff/triggers", data=trigger).status_code == 403
    assert count(world, TriggerEvent) == 0
    assert client.get("/staff/requests").text.count(f'id="request-{rid}"') == 1  # still pending


def test_csrf_token_of_another_session_is_refused(world):
    with make_client(world) as a, make_client(world) as b:
        login(a, "alice")
        login(b, "bob")
        stolen = form_token(b)
        r = a.post("/portal/requests", data={"csrf": stolen, "collection": "journals", "reason": "x"})
        assert r.status_code == 403


def test_logout_needs_csrf_and_ends_the_session(client):
    login(client, "alice")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/portal").status_code == 200
    assert client.post("/logout", data={"csrf": form_token(client)}).status_code == 303
    assert client.get("/portal").status_code == 303


def test_login_expires(world, monkeypatch):
    with make_client(world, session_seconds=3600) as c:
        assert login(c, "alice").status_code == 303
        assert c.get("/portal").status_code == 200
        later = time.time() + 3601
        monkeypatch.setattr(time, "time", lambda: later)
        assert c.get("/portal").status_code == 303


def test_portal_flow_pca_outside_years_staff_approval_download(world):
    with make_client(world) as library, make_client(world) as staff:
        login(library, "alice")
        pid = world.packages["pca_2019"]
        page = library.get("/portal/collections/pca-j").text
        assert "2010-2015" in page and f'id="package-{pid}"' in page
        assert library.get(f"/portal/packages/{pid}").status_code == 403
        rid = _portal_request(library, package_id=pid)
        assert "outside the entitled years" in library.get("/portal/requests").text
        login(staff, "carol")
        assert f'id="request-{rid}"' in staff.get("/staff/requests").text
        r = staff.post(f"/staff/requests/{rid}/decide",
                       data={"csrf": form_token(staff, "/staff/requests"), "decision": "approve",
                             "why": "cancelled 2016"})
        assert r.status_code == 303
        listing = library.get(f"/portal/packages/{pid}", params={"path": "articles/中文"})  # the file's folder
        assert listing.status_code == 200 and "b.bin" in listing.text
        got = library.get(f"/portal/packages/{pid}/files/{quote(PAYLOAD_FILE)}")
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == got.headers["etag"].strip('"')


def test_library_pages_never_show_another_librarys_requests(world):
    with make_client(world) as bob, make_client(world) as alice:
        login(bob, "bob")
        _portal_request(bob, collection="journals", reason="thu-internal-project-x")
        login(alice, "alice")
        for path in ("/portal/requests", "/portal", "/portal/collections/journals"):
            assert "thu-internal-project-x" not in alice.get(path).text


def test_trigger_form_opens_a_trigger_collection(world):
    with make_client(world) as staff:
        login(staff, "carol")
        r = staff.post("/staff/triggers", data={"csrf": form_token(staff, "/staff/triggers"), "collection": "trig-b",
                                                "kind": "publisher_ceased", "date": "2026-02-01",
                                                "evidence": "Liquidator's notice"})
        assert r.status_code == 303
        assert "Liquidator" in staff.get("/staff/triggers").text
        bad = staff.post("/staff/triggers", data={"csrf": form_token(staff, "/staff/triggers"), "collection": "trig-b",
                                                  "kind": "publisher_ceased", "date": "yesterday", "evidence": "x"})
        assert bad.status_code == 400


@pytest.mark.parametrize("attempt", ["..%2F..%2Fsecret.txt", "%2E%2E/%2E%2E/secret.txt", "/etc/passwd",
                                     "data/../../secret.txt", "data%5C..%5Csecret.txt"])
def test_portal_traversal_attempts_logged_in(world, attempt):
    with make_client(world) as c:
        login(c, "carol")
        pid = world.packages["open"]
        for url in (f"/portal/packages/{pid}/files/{attempt}", f"/portal/packages/{attempt}",
                    f"/portal/collections/{attempt}", f"/staff/requests?state={attempt}",
                    f"/staff/usage?month={attempt}", f"/portal/collections/open-d?offset={attempt}"):
            r = c.get(url)
            assert r.status_code in (400, 404, 422), (url, r.status_code)
            assert CANARY not in r.text
