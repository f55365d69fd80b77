"""'As of' access through the access service: a library reads the version delivered within its period.

A package of the ``pca-j`` collection (year 2019) is delivered three times:
in 2021, 2022 and 2023.  Tsinghua (bob) is entitled to 2016-2022: it
cancelled in 2022, so it reads version 2 whatever version's id it names —
the file list, each file's bytes, the zip, an item's files — and a file only
version 3 holds is not found for it.  Staff (carol) see every version as
named.  The API and portal show the versions and what changed in each.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import update

from preservation.access import entitlements
from preservation.catalog.models import Package
from preservation.ingest import ingest

from .conftest import login, make_client
from .live import running_service
from .world import copy_world

V1 = {"articles/a.txt": b"alpha, as first delivered\n", "articles/中文/b.bin": b"bravo " * 500,
      "c.txt": b"charlie, to be retracted\n", "old/d.txt": b"delta, to be moved\n"}
V2 = {**{k: v for k, v in V1.items() if k not in ("c.txt", "old/d.txt")},
      "articles/中文/b.bin": b"bravo, corrected in 2022 " * 100, "new/d.txt": b"delta, to be moved\n",
      "更正/勘误.txt": "勘误：第二版\n".encode()}
V3 = {**V2, "articles/a.txt": b"alpha, revised in 2023\n", "late/e.txt": b"echo, delivered in 2023 only\n"}
DELIVERED = (datetime(2021, 3, 1), datetime(2022, 6, 1), datetime(2023, 2, 1))


def _write(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="module")
def versioned_template(world_template, tmp_path_factory):
    """The access world with the three versions, built once for the module: (home, packages, tokens, ids)."""
    template, packages, tokens = world_template
    base = tmp_path_factory.mktemp("versioned-world")
    world = copy_world(template, packages, tokens, base / "home")
    try:
        ids = []
        for n, files in enumerate((V1, V2, V3), start=1):
            result = ingest(world.repo, _write(base / f"v{n}", files), "pca-j", name="pca-j-archive-2019",
                            bag_info={"Year": "2019"}, version_of=ids[-1] if ids else None)
            assert result["state"] == "preserved", result
            ids.append(result["package_id"])
        with world.repo.catalog.session() as s:
            for pid, when in zip(ids, DELIVERED):
                s.execute(update(Package).where(Package.id == pid).values(created_at=when))
        entitlements.add_entitlement(world.repo, "thu", "pca-j", 2021, 2022)
    finally:
        world.repo.close()
    return base / "home", packages, tokens, ids


@pytest.fixture
def world(versioned_template, tmp_path):
    """A fresh copy of the versioned world; bob's library entitled to 2016-2022 (it cancelled in 2022)."""
    home, packages, tokens, _ = versioned_template
    w = copy_world(home, packages, tokens, tmp_path / "home")
    try:
        yield w
    finally:
        w.repo.close()


@pytest.fixture
def lineage(versioned_template, world):
    """The three versions' ids, oldest first."""
    return list(versioned_template[3])


def _grant(client, world, package_id):
    made = client.post("/api/v1/requests", headers=world.auth("bob"),
                       json={"package_id": package_id, "reason": "post-cancellation access"})
    assert made.status_code == 201 and made.json()["state"] == "approved", made.text


def _url(package_id, path):
    return f"/api/v1/packages/{package_id}/files/data/{quote(path)}"


def test_a_library_cancelled_in_2022_reads_version_2_through_every_route(client, world, lineage):
    v1, v2, v3 = lineage
    _grant(client, world, v3)
    for named in lineage:  # any version's id names the package: bob reads version 2
        listing = client.get(f"/api/v1/packages/{named}/files", headers=world.auth("bob"))
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert body["version"]["number"] == 2 and body["version"]["package_id"] == v2
        payload = {f["path"]: f for f in body["files"] if not f["tag_file"]}
        assert set(payload) == {f"data/{p}" for p in V2}
        assert "fetch.txt" not in {f["path"] for f in body["files"]}
        assert body["total"] == len(body["files"])
        got = client.get(_url(named, "articles/中文/b.bin"), headers=world.auth("bob"))
        assert got.status_code == 200 and got.content == V2["articles/中文/b.bin"]  # version 2's bytes, not 1's
        assert got.headers["x-preserve-version"] == "2"
        got = client.get(_url(named, "articles/a.txt"), headers=world.auth("bob"))
        assert got.content == V1["articles/a.txt"]  # stored by version 1, referenced by 2; not 3's revision
        only_later = client.get(_url(named, "late/e.txt"), headers=world.auth("bob"))
        assert only_later.status_code == 404 and only_later.json()["error"]["code"] == "E110"
        removed = client.get(_url(named, "c.txt"), headers=world.auth("bob"))
        assert removed.status_code == 404
        assert client.get(f"/api/v1/packages/{named}/files/fetch.txt", headers=world.auth("bob")).status_code == 404
    renamed = client.get(_url(v3, "new/d.txt"), headers=world.auth("bob"))  # stored by version 1 as old/d.txt
    assert renamed.status_code == 200 and renamed.content == V1["old/d.txt"]
    zipped = client.get(f"/api/v1/packages/{v3}/zip", headers=world.auth("bob"))
    assert zipped.status_code == 200 and zipped.headers["x-preserve-version"] == "2"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        names = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
    assert {n: d for n, d in names.items() if n.startswith("data/")} == {f"data/{p}": d for p, d in V2.items()}
    assert "fetch.txt" not in names and "bag-info.txt" in names and "manifest-sha256.txt" in names


def test_staff_see_every_version_as_named_and_an_open_period_reads_the_newest(client, world, lineage):
    v1, v2, v3 = lineage
    for number, named, files in ((1, v1, V1), (3, v3, V3)):
        body = client.get(f"/api/v1/packages/{named}/files", headers=world.auth("carol")).json()
        assert body["version"]["number"] == number
        assert {f["path"] for f in body["files"] if not f["tag_file"]} == {f"data/{p}" for p in files}
    entitlements.add_entitlement(world.repo, "thu", "pca-j", 2023, 2024)
    _grant(client, world, v1)
    got = client.get(_url(v1, "late/e.txt"), headers=world.auth("bob"))  # entitled into 2024 now: version 3
    assert got.status_code == 200 and got.content == V3["late/e.txt"]


def test_without_a_grant_nothing_is_served_and_pku_whose_years_end_in_2015_is_refused(client, world, lineage):
    v1, v2, v3 = lineage
    for user in ("bob", "alice"):
        refused = client.get(_url(v2, "articles/a.txt"), headers=world.auth(user))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "E800", refused.text
    assert client.get(f"/api/v1/packages/{v2}/files", headers=world.auth("alice")).status_code == 403


def test_versions_and_their_changes_in_the_api(client, world, lineage):
    v1, v2, v3 = lineage
    _grant(client, world, v2)
    listed = client.get(f"/api/v1/packages/{v3}/versions", headers=world.auth("bob")).json()
    assert listed["lineage_id"] == v1 and listed["total"] == 3 and listed["count"] == 3
    assert listed["reads"]["number"] == 2
    assert [(v["number"], v["package_id"], v["changes_listed"]) for v in listed["versions"]] == [
        (1, v1, True), (2, v2, True), (3, v3, False)]
    assert listed["versions"][1]["changes"] == {"added": 1, "changed": 1, "removed": 1, "renamed": 1,
                                                "unchanged": 1}
    changes = client.get(f"/api/v1/packages/{v1}/versions/2/changes", headers=world.auth("bob")).json()
    assert changes["counts"]["changed"] == 1 and changes["total"] == 4
    assert [c["path"] for c in changes["changes"]] == sorted(c["path"] for c in changes["changes"])
    assert {(c["kind"], c["path"]) for c in changes["changes"]} == {
        ("changed", "data/articles/中文/b.bin"), ("removed", "data/c.txt"), ("renamed", "data/new/d.txt"),
        ("added", "data/更正/勘误.txt")}
    paged = client.get(f"/api/v1/packages/{v1}/versions/2/changes?limit=1&offset=1", headers=world.auth("bob"))
    assert paged.json()["count"] == 1 and paged.json()["changes"] == changes["changes"][1:2]
    added = client.get(f"/api/v1/packages/{v1}/versions/2/changes?kind=added", headers=world.auth("bob")).json()
    assert added["changes"] == [{"kind": "added", "path": "data/更正/勘误.txt"}]
    first = client.get(f"/api/v1/packages/{v2}/versions/1/changes", headers=world.auth("bob")).json()
    assert first["counts"]["added"] == 4 and len(first["changes"]) == 4
    later = client.get(f"/api/v1/packages/{v1}/versions/3/changes", headers=world.auth("bob"))
    assert later.status_code == 403 and later.json()["error"]["code"] == "E800"  # after bob's period
    staff = client.get(f"/api/v1/packages/{v1}/versions/3/changes", headers=world.auth("carol")).json()
    assert {(c["kind"], c["path"]) for c in staff["changes"]} == {("changed", "data/articles/a.txt"),
                                                                  ("added", "data/late/e.txt")}


BAD = [
    ("versions/0/changes", 422), ("versions/-1/changes", 422), ("versions/%2B2/changes", 422),
    ("versions/２/changes", 422), ("versions/1.0/changes", 422), ("versions/99999999999999999999/changes", 422),
    ("versions/2147483648/changes", 422), ("versions/4/changes", 404), ("versions/2/changes?kind=moved", 422),
    ("versions/2/changes?limit=0", 422), ("versions/2/changes?offset=-1", 422), ("versions?limit=501", 422),
    ("versions/2/changes?offset=%EF%BC%91", 422), ("versions?offset=1e3", 422),
]


def test_bad_numbers_are_coded_4xx_and_change_nothing(client, world, lineage):
    with world.repo.catalog.session() as s:
        before = s.query(Package).count()
    for suffix, status in BAD:
        got = client.get(f"/api/v1/packages/{lineage[0]}/{suffix}", headers=world.auth("carol"))
        assert got.status_code == status, (suffix, got.text)
        assert got.json()["error"]["code"] == ("E110" if status == 404 else "E112"), (suffix, got.text)
    with world.repo.catalog.session() as s:
        assert s.query(Package).count() == before


def test_an_unknown_package_is_404(client, world, lineage):
    for url in ("/api/v1/packages/nope/versions", "/api/v1/packages/nope/versions/1/changes"):
        got = client.get(url, headers=world.auth("carol"))
        assert got.status_code == 404 and got.json()["error"]["code"] == "E110"


def test_the_portal_shows_versions_and_a_page_of_changes_escaped(world, lineage, tmp_path):
    v1, v2, v3 = lineage
    with make_client(world) as c:
        assert login(c, "carol").status_code == 303
        page = c.get(f"/portal/packages/{v1}")
        assert page.status_code == 200 and 'id="versions"' in page.text
        assert f'href="/portal/packages/{v1}/versions/3"' in page.text
        changes = c.get(f"/portal/packages/{v1}/versions/2")
        assert changes.status_code == 200
        assert "data/更正/勘误.txt" in changes.text and "data/old/d.txt → data/new/d.txt" in changes.text
        assert c.get(f"/portal/packages/{v1}/versions/9").status_code == 404
        assert c.get(f"/portal/packages/{v1}/versions/x").status_code == 422
        assert c.get(f"/portal/packages/{v1}/versions/2?kind=%3Cscript%3E").status_code == 422


def test_markup_in_a_file_name_is_shown_as_text(world, tmp_path):
    repo = world.repo
    v1 = ingest(repo, _write(tmp_path / "m1", {"a.txt": b"a\n"}), "open-d", name="open-markup")["package_id"]
    ingest(repo, _write(tmp_path / "m2", {"a.txt": b"a\n", "<b onmouseover=x>&.txt": b"b\n"}), "open-d",
           version_of=v1)
    with make_client(world) as c:
        assert login(c, "alice").status_code == 303
        page = c.get(f"/portal/packages/{v1}/versions/2")
        assert page.status_code == 200
        assert "<b onmouseover" not in page.text and "&lt;b onmouseover=x&gt;&amp;.txt" in page.text


def test_a_real_http_service_serves_version_2_to_the_cancelled_library(world, lineage):
    v1, v2, v3 = lineage
    with running_service(world.repo) as base, httpx.Client(base_url=base, headers=world.auth("bob")) as http:
        made = http.post("/api/v1/requests", json={"package_id": v1, "reason": "pca"})
        assert made.status_code == 201 and made.json()["state"] == "approved"
        got = http.get(_url(v3, "articles/中文/b.bin"))  # corrected in version 2
        assert got.status_code == 200 and got.content == V2["articles/中文/b.bin"] != V1["articles/中文/b.bin"]
        got = http.get(_url(v3, "articles/a.txt"))  # revised in version 3
        assert got.status_code == 200 and got.content == V2["articles/a.txt"] != V3["articles/a.txt"]
        assert http.get(_url(v3, "late/e.txt")).status_code == 404


def test_a_collection_lists_a_versioned_package_once_with_its_versions(client, world, lineage):
    v1, v2, v3 = lineage
    before = len(world.packages)  # the world's own packages: one version each
    pca = [p for label, p in world.packages.items() if label.startswith("pca_")]
    body = client.get("/api/v1/collections/pca-j/packages", headers=world.auth("bob")).json()
    rows = {p["lineage_id"]: p for p in body["packages"]}
    assert body["total"] == len(pca) + 1 == len(body["packages"]) and set(rows) == {*pca, v1}
    row = rows[v1]
    assert (row["id"], row["version"], row["versions"], row["latest_version"]) == (v3, 3, 3, 3)
    assert not row["readable"]  # no grant yet
    _grant(client, world, v1)  # a grant of version 1's id opens the package, shown by version 3
    row = {p["lineage_id"]: p for p in client.get("/api/v1/collections/pca-j/packages",
                                                   headers=world.auth("bob")).json()["packages"]}[v1]
    assert row["readable"] and row["id"] == v3
    assert all(p["versions"] == 1 and p["lineage_id"] == p["id"] for p in rows.values() if p["lineage_id"] != v1)
    held = {c["key"]: c["packages"] for c in client.get("/api/v1/collections", headers=world.auth("bob")).json()}
    assert held["pca-j"] == len(pca) + 1 and sum(held.values()) == before + 1
    with make_client(world) as c:
        assert login(c, "bob").status_code == 303
        page = c.get("/portal/collections/pca-j")
        assert page.status_code == 200
        assert page.text.count('id="package-') == len(pca) + 1 and f'id="package-{v3}"' in page.text
        assert f'id="package-{v1}"' not in page.text and f'id="package-{v2}"' not in page.text
        assert f'<a href="/portal/packages/{v3}#versions">3, latest 3</a>' in page.text
        assert f"({len(pca) + 1})" in page.text  # the heading's count
        versions_page = c.get(f"/portal/packages/{v3}")
        assert versions_page.status_code == 200 and f'href="/portal/packages/{v3}/versions/2"' in versions_page.text


def test_a_deaccessioned_newest_version_leaves_the_package_listed_by_the_newest_kept(client, world, lineage):
    from preservation.deaccession import deaccession

    v1, v2, v3 = lineage
    deaccession(world.repo, v1, versions=[3], reason="withdrawn by the publisher")
    rows = {p["lineage_id"]: p for p in client.get("/api/v1/collections/pca-j/packages",
                                                   headers=world.auth("carol")).json()["packages"]}
    # a reader is shown the versions kept; `preserve package list` counts the withdrawn one too
    assert (rows[v1]["id"], rows[v1]["version"], rows[v1]["versions"], rows[v1]["latest_version"]) == (v2, 2, 2, 2)
