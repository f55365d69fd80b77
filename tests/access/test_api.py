"""The JSON API: every refusal the rules call for, ranges, zips, and no way out of the catalog."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import timedelta
from urllib.parse import quote

import bagit
import pytest
from sqlalchemy import select, update

from preservation.access.accounts import create_token, list_tokens, revoke_token
from preservation.catalog.access_models import AccessGrant, ApiToken, Library
from preservation.catalog.models import PackageFile, utcnow

from .conftest import login, make_client
from .world import CANARY, FIXITY_KEY, PAYLOAD_FILE


def catalog_file(world, label, path=PAYLOAD_FILE):
    with world.repo.catalog.session() as s:
        row = s.execute(select(PackageFile).where(PackageFile.package_id == world.packages[label],
                                                  PackageFile.path == path)).scalar_one()
        return row.size, row.sha256


def file_url(world, label, path=PAYLOAD_FILE):
    return f"/api/v1/packages/{world.packages[label]}/files/{quote(path)}"


def grant(client, world, label, user="alice"):
    """Ask for the package as ``user`` and have staff approve it; returns the request."""
    r = client.post("/api/v1/requests", headers=world.auth(user),
                    json={"package_id": world.packages[label], "reason": "needed"}).json()
    if r["state"] == "pending":
        r = client.post(f"/api/v1/requests/{r['id']}/approve", headers=world.auth("carol"), json={"why": "ok"}).json()
    assert r["state"] == "approved"
    return r


def test_every_api_route_needs_a_key(client, world):
    pid = world.packages["open"]
    for path in ["/api/v1/me", "/api/v1/collections", "/api/v1/collections/open-d/packages",
                 f"/api/v1/packages/{pid}", f"/api/v1/packages/{pid}/files", file_url(world, "open"),
                 f"/api/v1/packages/{pid}/zip", "/api/v1/requests", "/api/v1/grants", "/api/v1/triggers",
                 "/api/v1/usage?month=2026-01"]:
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "E801" and r.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": "Bearer not-a-key"}).status_code == 401
    assert client.post("/api/v1/requests", json={"collection": "journals", "reason": "x"}).status_code == 401


def test_cookies_do_not_authenticate_the_api(client, world):
    assert login(client, "alice").status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_open_collection_downloads_verified_bytes(client, world):
    size, sha = catalog_file(world, "open")
    r = client.get(file_url(world, "open"), headers=world.auth("bob"))
    assert r.status_code == 200 and len(r.content) == size
    assert hashlib.sha256(r.content).hexdigest() == sha == r.headers["etag"].strip('"')
    assert r.headers["content-type"] == "application/octet-stream"
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["repr-digest"].startswith("sha-256=:")


@pytest.mark.parametrize("label", ["dark", "pca_2012", "pca_2019", "trigger"])
def test_nothing_dark_is_served_without_a_grant(client, world, label):
    for url in (file_url(world, label), f"/api/v1/packages/{world.packages[label]}/zip",
                f"/api/v1/packages/{world.packages[label]}/files"):
        r = client.get(url, headers=world.auth("alice"))
        assert r.status_code == 403, url
        assert r.json()["error"]["code"] == "E800"


def test_dark_request_waits_and_staff_approval_opens_it(client, world):
    r = client.post("/api/v1/requests", headers=world.auth("alice"),
                    json={"package_id": world.packages["dark"], "reason": "catastrophic loss at publisher"})
    assert r.status_code == 201 and r.json()["state"] == "pending"
    assert client.get(file_url(world, "dark"), headers=world.auth("alice")).status_code == 403
    client.post(f"/api/v1/requests/{r.json()['id']}/approve", headers=world.auth("carol"), json={"why": "board"})
    ok = client.get(file_url(world, "dark"), headers=world.auth("alice"))
    assert ok.status_code == 200 and hashlib.sha256(ok.content).hexdigest() == catalog_file(world, "dark")[1]


def test_a_grant_is_for_one_library_and_one_package(client, world):
    grant(client, world, "dark", user="alice")
    assert client.get(file_url(world, "dark"), headers=world.auth("bob")).status_code == 403
    assert client.get(file_url(world, "pca_2019"), headers=world.auth("alice")).status_code == 403


def test_expired_grant_is_refused(client, world):
    grant(client, world, "dark")
    with world.repo.catalog.session() as s:
        s.execute(update(AccessGrant).values(expires_at=utcnow() - timedelta(minutes=1)))
    r = client.get(file_url(world, "dark"), headers=world.auth("alice"))
    assert r.status_code == 403 and "no active grant" in r.json()["error"]["message"]


def test_pca_inside_years_is_automatic_outside_is_pending(client, world):
    inside = client.post("/api/v1/requests", headers=world.auth("alice"),
                         json={"package_id": world.packages["pca_2012"], "reason": "cancelled 2016"}).json()
    outside = client.post("/api/v1/requests", headers=world.auth("alice"),
                          json={"package_id": world.packages["pca_2019"], "reason": "cancelled 2016"}).json()
    assert inside["state"] == "approved" and outside["state"] == "pending"
    assert client.get(file_url(world, "pca_2012"), headers=world.auth("alice")).status_code == 200
    assert client.get(file_url(world, "pca_2019"), headers=world.auth("alice")).status_code == 403


def test_library_never_sees_another_librarys_requests(client, world):
    theirs = client.post("/api/v1/requests", headers=world.auth("bob"),
                         json={"collection": "journals", "reason": "secret project"}).json()
    r = client.get(f"/api/v1/requests/{theirs['id']}", headers=world.auth("alice"))
    assert r.status_code == 404 and "secret" not in r.text
    assert client.get("/api/v1/requests", headers=world.auth("alice")).json() == []
    assert client.get("/api/v1/grants", headers=world.auth("alice")).json() == []
    assert [x["id"] for x in client.get("/api/v1/requests", headers=world.auth("carol")).json()] == [theirs["id"]]
    assert client.get(f"/api/v1/requests/{theirs['id']}", headers=world.auth("bob")).status_code == 200


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/v1/requests/{rid}/approve", {"why": "self-service"}),
    ("post", "/api/v1/requests/{rid}/deny", {"why": "x"}),
    ("post", "/api/v1/triggers", {"collection": "trig-b", "kind": "publisher_ceased", "date": "2026-01-01",
                                  "evidence": "x"}),
])
def test_staff_routes_refuse_library_users(client, world, method, path, body):
    rid = client.post("/api/v1/requests", headers=world.auth("alice"),
                      json={"collection": "journals", "reason": "x"}).json()["id"]
    r = getattr(client, method)(path.format(rid=rid), headers=world.auth("alice"), json=body)
    assert r.status_code == 403
    assert client.get(f"/api/v1/requests/{rid}", headers=world.auth("alice")).json()["state"] == "pending"


def test_usage_of_other_libraries_is_staff_only(client, world):
    assert client.get("/api/v1/usage?month=2026-01&library=thu", headers=world.auth("alice")).status_code == 403
    assert client.get("/api/v1/usage?month=2026-01", headers=world.auth("alice")).status_code == 200
    assert client.get("/api/v1/usage?month=2026-01&library=thu", headers=world.auth("carol")).status_code == 200


def test_revoked_and_expired_keys_and_disabled_users_are_refused(client, world):
    [key] = list_tokens(world.repo, "alice")
    revoke_token(world.repo, key["id"])
    assert client.get("/api/v1/me", headers=world.auth("alice")).status_code == 401
    short = create_token(world.repo, "bob", days=1)["token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {short}"}).status_code == 200
    with world.repo.catalog.session() as s:
        s.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {short}"}).status_code == 401
    with world.repo.catalog.session() as s:
        s.execute(update(Library).where(Library.code == "office").values(active=False))
        s.execute(update(ApiToken).values(expires_at=None))
    assert client.get("/api/v1/me", headers=world.auth("carol")).status_code == 401


def test_library_ip_ranges_are_enforced(world):
    with world.repo.catalog.session() as s:
        s.execute(update(Library).where(Library.code == "pku").values(ip_ranges=["10.8.0.0/16"]))
    with make_client(world, client=("10.8.3.4", 50000)) as inside:
        assert inside.get("/api/v1/me", headers=world.auth("alice")).status_code == 200
    with make_client(world, client=("192.0.2.7", 50000)) as outside:
        r = outside.get("/api/v1/me", headers=world.auth("alice"))
        assert r.status_code == 403 and "registered addresses" in r.json()["error"]["message"]
        assert login(outside, "alice").status_code == 401  # the same answer as a wrong password: test_login.py
        # staff of another library are not bound by pku's ranges
        assert outside.get("/api/v1/me", headers=world.auth("carol")).status_code == 200


# --- ranges and zips ---------------------------------------------------------------


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-9", 0, 10), ("bytes=100-", 100, None), ("bytes=-16", -16, None), ("bytes=5-5", 5, 6),
    ("bytes=69990-99999999", 69990, None),
])
def test_ranges(client, world, header, start, end):
    size, _ = catalog_file(world, "open")
    whole = client.get(file_url(world, "open"), headers=world.auth("bob")).content
    r = client.get(file_url(world, "open"), headers={**world.auth("bob"), "Range": header})
    assert r.status_code == 206
    expected = whole[start:end] if end is not None else whole[start:]
    assert r.content == expected
    first = start % size
    assert r.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
    assert int(r.headers["content-length"]) == len(expected)


def test_unsatisfiable_and_ignored_ranges(client, world):
    size, _ = catalog_file(world, "open")
    r = client.get(file_url(world, "open"), headers={**world.auth("bob"), "Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    for ignored in ("bytes=0-1,5-6", "items=0-5", "bytes=9-3", "garbage"):
        r = client.get(file_url(world, "open"), headers={**world.auth("bob"), "Range": ignored})
        assert r.status_code == 200 and len(r.content) == size
    r = client.get(file_url(world, "open"), headers={**world.auth("bob"), "Range": "bytes=0-3", "If-Range": '"stale"'})
    assert r.status_code == 200


def test_zip_is_a_valid_bag_streamed_without_a_length(client, world, tmp_path):
    pid = world.packages["open"]
    r = client.get(f"/api/v1/packages/{pid}/zip", headers=world.auth("bob"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "content-length" not in r.headers  # streamed, never assembled
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        zf.extractall(tmp_path / "out")
    bag = bagit.Bag(str(tmp_path / "out" / pid))
    bag.validate()
    assert "data/articles/中文/b.bin" in bag.payload_entries()


# --- no way out of the catalog ---------------------------------------------------------


TRAVERSALS = ["../../../secret.txt", "..%2F..%2F..%2Fsecret.txt", "%2E%2E/%2E%2E/secret.txt", "/etc/passwd",
              "%2Fetc%2Fpasswd", "data/../../../secret.txt", "data%5C..%5C..%5Csecret.txt", "data/%00/x",
              "..%252F..%252Fsecret.txt", "%C0%AE%C0%AE/secret.txt"]


@pytest.mark.parametrize("attempt", TRAVERSALS)
def test_traversal_in_every_path_and_query_parameter(client, world, attempt):
    grant(client, world, "dark")
    pid = world.packages["dark"]
    urls = [
        f"/api/v1/packages/{pid}/files/{attempt}",
        f"/api/v1/packages/{attempt}/files/{quote(PAYLOAD_FILE)}",
        f"/api/v1/packages/{attempt}",
        f"/api/v1/packages/{attempt}/zip",
        f"/api/v1/packages/{attempt}/files",
        f"/api/v1/collections/{attempt}/packages",
        f"/api/v1/requests/{attempt}",
        f"/api/v1/triggers?collection={attempt}",
        f"/api/v1/usage?month={attempt}",
        f"/api/v1/usage?month=2026-01&library={attempt}",
        f"/api/v1/collections/journals/packages?offset={attempt}",
        f"/api/v1/requests?state={attempt}",
        f"/api/v2/file/{attempt}/?username=carol&api_key={world.tokens[FIXITY_KEY]}",
        f"/api/v2/file/{attempt}/check_fixity/?username=carol&api_key={world.tokens[FIXITY_KEY]}",
        f"/api/v2/file/?username=carol&api_key={world.tokens[FIXITY_KEY]}&offset={attempt}",
        f"/login?next={attempt}",
    ]
    for url in urls:
        r = client.get(url, headers=world.auth("carol") if url.startswith("/api/v1/usage") else world.auth("alice"))
        allowed = (200, 400) if url.startswith("/login") else (400, 404, 422)  # the login page ignores a bad next
        assert r.status_code in allowed, (url, r.status_code)
        assert CANARY not in r.text, url
        assert "root:" not in r.text, url


def test_traversal_cannot_reach_another_packages_file(client, world):
    grant(client, world, "dark")
    other = world.packages["pca_2019"]
    url = f"/api/v1/packages/{world.packages['dark']}/files/..%2F{other}%2F{quote(PAYLOAD_FILE, safe='')}"
    assert client.get(url, headers=world.auth("alice")).status_code == 404


def test_openapi_describes_the_api(client):
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/v1/requests", "/api/v1/packages/{package_id}/files/{path}", "/api/v1/packages/{package_id}/zip",
              "/api/v2/file/", "/api/v2/file/{package_id}/check_fixity/"):
        assert p in paths, p
    assert not any(p.startswith(("/portal", "/staff", "/login")) for p in paths)


def test_validation_errors_are_coded(client, world):
    r = client.post("/api/v1/requests", headers=world.auth("alice"), json={"collection": "journals"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "E112"
    r = client.post("/api/v1/requests", headers=world.auth("alice"), json={"collection": "nope", "reason": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "E110"


def test_staff_record_a_trigger_and_the_waiting_library_gets_in(client, world):
    waiting = client.post("/api/v1/requests", headers=world.auth("bob"),
                          json={"collection": "trig-b", "reason": "publisher gone?"}).json()
    assert waiting["state"] == "pending"
    r = client.post("/api/v1/triggers", headers=world.auth("carol"),
                    json={"collection": "trig-b", "kind": "title_discontinued", "date": "2026-03-01",
                          "evidence": "Publisher letter of 2026-03-01"})
    assert r.status_code == 201 and r.json()["requests_approved"] == [waiting["id"]]
    bad = client.post("/api/v1/triggers", headers=world.auth("carol"),
                      json={"collection": "trig-b", "kind": "meteor", "date": "2026-03-01", "evidence": "x"})
    assert bad.status_code == 422
    assert client.get(file_url(world, "trigger"), headers=world.auth("bob")).status_code == 200
    standing = {c["key"]: c for c in client.get("/api/v1/collections", headers=world.auth("bob")).json()}
    assert standing["trig-b"]["trigger"] == {"kind": "title_discontinued", "date": "2026-03-01"}
    assert standing["trig-b"]["active_grants"] == 1 and standing["pca-j"]["entitled_years"] == ["2016-2020"]
    assert [t["kind"] for t in client.get("/api/v1/triggers", headers=world.auth("alice")).json()] == \
        ["title_discontinued"]
