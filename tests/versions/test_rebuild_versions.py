"""A catalog rebuilt from the nodes binds the versions again: their lineage, numbers and references."""

from __future__ import annotations

import bagit
import pytest
from sqlalchemy import select

from preservation.bagit.tagfiles import FetchEntry
from preservation.catalog.models import Package, PackageFile
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.rebuild import rebuild_from_nodes
from preservation.repository import Repository
from preservation.restore import restore
from preservation.versions import rebind_version

from ..fixtures import NODES, node_root
from .helpers import FIRST, second, write_delivery


def _versions(repo):
    with repo.catalog.session() as s:
        rows = {(v.package_id, v.lineage_id, v.number, v.previous_id) for v in s.scalars(select(PackageVersion))}
        refs = set(s.execute(select(VersionFile.package_id, VersionFile.path, PackageFile.package_id, PackageFile.path)
                             .join(PackageFile, PackageFile.id == VersionFile.file_id)).all())
        packages = {p.id: (p.payload_files, p.payload_bytes, p.payload_oxum) for p in s.scalars(select(Package))}
    return rows, refs, packages


def test_rebuild_binds_every_version_again(repo, tmp_path):
    third = second(FIRST)
    third["g.txt"] = b"golf\n"
    ids = []
    for n, files in enumerate((FIRST, second(FIRST), third), start=1):
        ids.append(ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                          version_of=ids[-1] if ids else None)["package_id"])
    before = _versions(repo)
    home = repo.settings.home
    repo.close()
    (home / "catalog.sqlite").unlink()
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / extra).unlink(missing_ok=True)
    init_home(home)
    fresh = Repository.open(home)
    try:
        for name, org_type, region in NODES:
            add_node(fresh, name, org_type, region, node_root(fresh, name).as_uri())
        report = rebuild_from_nodes(fresh)
        assert report.ok, report.to_dict()
        assert report.audited_ok == 9
        assert _versions(fresh) == before
        restore(fresh, ids[0], tmp_path / "restored", version=3)
        assert (tmp_path / "restored" / "data/g.txt").read_bytes() == b"golf\n"
        bagit.Bag(str(tmp_path / "restored")).validate()
    finally:
        fresh.close()


@pytest.mark.parametrize("version", [None, {}, {"lineage_id": 5, "number": 2}, {"lineage_id": "x", "number": "2"},
                                     {"lineage_id": "x", "number": True}, {"lineage_id": "x", "number": 1}])
def test_a_record_whose_version_is_not_understood_binds_nothing(repo, tmp_path, version):
    only = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")["package_id"]
    with repo.catalog.session() as s:
        problems = rebind_version(s, only, {"version": version}, [])
    assert problems and "not understood" in problems[0]
    with repo.catalog.session() as s:
        assert s.scalars(select(PackageVersion)).all() == []


def test_fetch_entries_that_point_anywhere_but_a_stored_file_are_reported_not_bound(repo, tmp_path):
    first = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")["package_id"]
    second_id = ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "journals")["package_id"]
    entries = [FetchEntry("file:../../../etc/passwd", 10, "data/a"), FetchEntry("https://example.org/x", 1, "data/b"),
               FetchEntry(f"file:../{first}/data/nope.txt", 1, "data/c"),
               FetchEntry(f"file:../{first}/data/data-a.txt", 16, "data/data-a.txt")]
    with repo.catalog.session() as s:
        problems = rebind_version(s, second_id, {"version": {"lineage_id": first, "number": 2}}, entries)
    assert len(problems) == 3 and all("no rebuilt package stores" in p for p in problems)
    with repo.catalog.session() as s:
        refs = s.execute(select(VersionFile.path, PackageFile.path).join(PackageFile,
                                                                           PackageFile.id == VersionFile.file_id)).all()
    assert refs == [("data/data-a.txt", "data/data-a.txt")]


def test_a_record_naming_a_lineage_no_node_holds_binds_nothing(repo, tmp_path):
    only = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")["package_id"]
    with repo.catalog.session() as s:
        problems = rebind_version(s, only, {"version": {"lineage_id": "0" * 36, "number": 2, "previous_id": "y"}}, [])
    assert problems and "no node holds" in problems[0]
    with repo.catalog.session() as s:
        assert s.scalars(select(PackageVersion)).all() == []
