"""Catalog loss: the catalog is rebuilt from the bags on the nodes and audits clean."""

from __future__ import annotations

import shutil

import bagit
import pytest
from sqlalchemy import select

from preservation.catalog.models import Package, PackageFile
from preservation.errors import InvalidRequest
from preservation.events import verify_chain
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.rebuild import rebuild_from_nodes
from preservation.repository import Repository

from .fixtures import NODES, node_root


def _snapshot(repo):
    with repo.catalog.session() as s:
        files = {(f.package_id, f.path, f.size, f.sha256, f.sha512) for f in s.scalars(select(PackageFile))}
        packages = {p.id: (p.name, p.collection.key, p.payload_oxum, p.payload_files) for p in s.scalars(select(Package))}
    return files, packages


def test_rebuild_from_nodes_restores_an_auditable_catalog(repo, sample_delivery, tmp_path):
    ours = ingest(repo, sample_delivery, "journals")["package_id"]
    foreign = tmp_path / "foreign"
    shutil.copytree(sample_delivery / "books", foreign)
    bagit.make_bag(str(foreign), {"Source-Organization": "Other Press"}, checksums=["md5"])
    theirs = ingest(repo, foreign, "journals")["package_id"]
    files_before, packages_before = _snapshot(repo)
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
        assert sorted(report.packages) == sorted([ours, theirs])
        assert report.replicas == 6 and report.audited_ok == 6
        files_after, packages_after = _snapshot(fresh)
        assert files_after == files_before
        assert packages_after == packages_before
        with fresh.catalog.session() as s:
            assert {p.state for p in s.scalars(select(Package))} == {"preserved"}
            assert verify_chain(s).ok
        with pytest.raises(InvalidRequest):
            rebuild_from_nodes(fresh)
    finally:
        fresh.close()
