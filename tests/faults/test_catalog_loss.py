"""Catalog loss: the catalog file is deleted, rebuilt from the bags on four nodes; audits clean, restores exact,
and every event of every package comes back from the nodes."""

from __future__ import annotations

import shutil

import bagit
import pytest
from sqlalchemy import select

from preservation.audit import audit
from preservation.catalog.models import Event, Package, PackageFile, Replica
from preservation.events import verify_chain
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.rebuild import rebuild_from_nodes
from preservation.repository import Repository
from preservation.restore import restore

from ..fixtures import NODES, make_repo, node_root
from . import summary
from .invariants import check_settled, tree
from .work import make_corpus

NETWORK = [*NODES, ("uni-thu", "university", "beijing")]  # placement alternates the two universities


def _snapshot(repo):
    with repo.catalog.session() as s:
        files = {(f.package_id, f.path, f.size, f.sha256, f.sha512, f.is_tag) for f in s.scalars(select(PackageFile))}
        packages = {p.id: (p.name, p.collection.key, p.payload_oxum, p.payload_files, p.payload_bytes, p.source_kind)
                    for p in s.scalars(select(Package))}
        holders = {(r.package_id, r.node.name) for r in s.scalars(select(Replica))}
    return files, packages, holders


def _history(repo):
    """Every event of a package: its id, type, outcome and hash."""
    with repo.catalog.session() as s:
        return {e.event_id: (e.package_id, e.event_type, e.outcome, e.hash)
                for e in s.scalars(select(Event).where(Event.package_id.is_not(None)))}


def _restored_history(repo):
    """The events restored from the nodes, as :func:`_history` gave them before the catalog was lost."""
    with repo.catalog.session() as s:
        return {e.detail["restored"]["event_id"]: (e.package_id, e.event_type, e.outcome, e.detail["restored"]["hash"])
                for e in s.scalars(select(Event)) if "restored" in (e.detail or {})}


@pytest.mark.slow
def test_catalog_rebuilt_from_the_nodes_audits_clean_and_restores_exactly(tmp_path):
    home = tmp_path / "home"
    repo = make_repo(home, nodes=NETWORK)
    deliveries = [make_corpus(tmp_path / f"delivery-{i}", 10 + 5 * i, seed=60 + i) for i in range(4)]
    foreign = tmp_path / "foreign-bag"
    shutil.copytree(make_corpus(tmp_path / "foreign-src", 12, seed=99), foreign)
    bagit.make_bag(str(foreign), {"Source-Organization": "Other Press"}, checksums=["md5"])
    try:
        ids = [ingest(repo, d, "journals")["package_id"] for d in deliveries]
        ids.append(ingest(repo, foreign, "journals")["package_id"])
        before = _snapshot(repo)
        history = _history(repo)
        restored_before = {}
        for package_id in ids:
            restore(repo, package_id, tmp_path / "before" / package_id)
            restored_before[package_id] = {p: f.read_bytes() for p, f in tree(tmp_path / "before" / package_id).items()}
    finally:
        repo.close()
    assert {node for _, node in before[2]} == {name for name, _, _ in NETWORK}, "the packages do not span the network"

    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / name).unlink(missing_ok=True)
    init_home(home)
    with Repository.open(home) as fresh:
        for name, org_type, region in NETWORK:
            add_node(fresh, name, org_type, region, node_root(fresh, name).as_uri())
        report = rebuild_from_nodes(fresh)
        assert report.ok, report.to_dict()
        assert sorted(report.packages) == sorted(ids)
        assert report.replicas == len(ids) * 3 == report.audited_ok and report.audited_failed == 0
        after = _snapshot(fresh)
        assert after == before
        assert report.events_restored == len(history) and _restored_history(fresh) == history
        assert audit(fresh).ok
        assert check_settled(fresh, staging=fresh.staging_dir) == []
        with fresh.catalog.session() as s:
            assert verify_chain(s).ok
        for package_id in ids:
            out = tmp_path / "after" / package_id
            restore(fresh, package_id, out)
            assert {p: f.read_bytes() for p, f in tree(out).items()} == restored_before[package_id]
    summary.report(f"catalog loss: {len(ids)} packages (1 foreign md5-only bag) over {len(NETWORK)} nodes rebuilt "
                   f"from the nodes: {report.replicas} copies, {report.files} files, identical rows, "
                   f"{report.events_restored} package events restored, audits clean, restores byte-identical")
