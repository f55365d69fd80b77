"""A package delivered in versions is one package wherever packages are listed or counted (catalog.lineages).

`package list`, `collection list` and `status` on SQLite and PostgreSQL: a
lineage of three versions is one row (shown by its newest version that
matches the filters, with its version count and latest version), beside a
package never versioned.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from preservation.catalog.models import PACKAGE_DAMAGED, Package
from preservation.deaccession import deaccession
from preservation.ingest import ingest
from preservation.status import status

from ..fixtures import make_repo
from .helpers import FIRST, second, write_delivery


@pytest.fixture
def listed(catalog_url, tmp_path):
    """A repository holding three versions of one package and one package never versioned: (repo, ids, other)."""
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        third = second(FIRST)
        third["g.txt"] = b"golf\n"
        ids = []
        for n, files in enumerate((FIRST, second(FIRST), third), start=1):
            ids.append(ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals", name="monthly",
                              version_of=ids[-1] if ids else None)["package_id"])
        other = ingest(repo, write_delivery(tmp_path / "other", {"x.txt": b"unversioned"}), "journals",
                       name="single")["package_id"]
        yield repo, ids, other
    finally:
        repo.close()


def test_package_list_shows_one_row_per_package_with_its_versions(listed, run_cli):
    repo, (v1, v2, v3), other = listed
    home = repo.settings.home
    page = run_cli("package", "list", "--collection", "journals", "--json", home=home).json()
    assert page["total"] == 2 and page["count"] == 2
    rows = {p["lineage_id"]: p for p in page["packages"]}
    assert set(rows) == {v1, other}
    assert (rows[v1]["package_id"], rows[v1]["version"], rows[v1]["versions"], rows[v1]["latest_version"],
            rows[v1]["latest_version_id"]) == (v3, 3, 3, 3, v3)
    assert (rows[other]["package_id"], rows[other]["version"], rows[other]["versions"]) == (other, 1, 1)
    text = run_cli("package", "list", "--collection", "journals", home=home).output
    assert "3, latest v3" in text and "packages 1-2 of 2" in text
    one = run_cli("package", "list", "--limit", "1", "--offset", "1", "--json", home=home).json()
    assert one["total"] == 2 and one["count"] == 1  # pages count packages, not versions
    # a filter matching an older version only: the package is listed once, by that version
    with repo.catalog.session() as s:
        s.execute(update(Package).where(Package.id == v2).values(state=PACKAGE_DAMAGED))
    damaged = run_cli("package", "list", "--state", "damaged", "--json", home=home).json()
    assert damaged["total"] == 1 and [(p["package_id"], p["version"], p["versions"]) for p in damaged["packages"]] == [
        (v2, 2, 3)]
    assert "3, latest v3 (row: v2)" in run_cli("package", "list", "--state", "damaged", home=home).output


def test_collection_list_and_status_count_packages_not_versions(listed, run_cli):
    repo, (v1, v2, v3), other = listed
    home = repo.settings.home
    assert run_cli("collection", "list", "--json", home=home).json()["collections"][0]["packages"] == 2
    report = status(repo)
    third_total = next(p["total_bytes"] for p in run_cli("package", "list", "--json", home=home).json()["packages"]
                       if p["package_id"] == v3)
    single_total = next(p["total_bytes"] for p in run_cli("package", "list", "--json", home=home).json()["packages"]
                        if p["package_id"] == other)
    assert report["packages"]["preserved"] == {"count": 2, "versions": 4, "bytes": third_total + single_total}
    assert report["versions"]["versions"] == 3
    text = run_cli("status", home=home).output
    assert "versions" in text.splitlines()[1] or "versions" in text
    with repo.catalog.session() as s:
        s.execute(update(Package).where(Package.id == v1).values(state=PACKAGE_DAMAGED))
    packages = status(repo)["packages"]
    # the damaged version 1 counts its package under damaged; the package still counts as preserved by 2 and 3
    assert packages["damaged"]["count"] == 1 and packages["damaged"]["versions"] == 1
    assert packages["preserved"]["count"] == 2 and packages["preserved"]["versions"] == 3


def test_a_package_whose_every_version_is_withdrawn_is_listed_as_deaccessioned(listed, run_cli):
    repo, (v1, v2, v3), other = listed
    deaccession(repo, v1, versions=[1, 2, 3], reason="the licence forbids keeping it")
    home = repo.settings.home
    page = run_cli("package", "list", "--json", home=home).json()
    rows = {p["lineage_id"]: p for p in page["packages"]}
    assert page["total"] == 2 and rows[v1]["state"] == "deaccessioned" and rows[v1]["package_id"] == v3
    kept = run_cli("package", "list", "--state", "preserved", "--json", home=home).json()
    assert [p["package_id"] for p in kept["packages"]] == [other]
