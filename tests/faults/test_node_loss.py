"""Node loss: a node's whole storage disappears; audits report it, copies are rebuilt elsewhere, nothing is lost."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from preservation.audit import audit
from preservation.catalog.models import Replica
from preservation.codes import FILE_MISSING, REPLICA_ABSENT
from preservation.ingest import ingest
from preservation.nodes import add_node, set_node_status
from preservation.restore import restore
from preservation.status import status
from preservation.upkeep import missing_copies

from ..fixtures import node_root
from . import summary
from .invariants import check_settled, tree
from .work import AGENT, make_corpus, run_worker_once

PACKAGES = 5


@pytest.fixture
def preserved(repo, tmp_path) -> dict[str, dict[str, bytes]]:
    """Five preserved packages; the bytes of each bag as first written (package id -> path -> bytes)."""
    bags = {}
    for i in range(PACKAGES):
        package_id = ingest(repo, make_corpus(tmp_path / f"delivery-{i}", 15, seed=40 + i), "journals")["package_id"]
        root = node_root(repo, "cas-nsl") / package_id
        bags[package_id] = {path: full.read_bytes() for path, full in tree(root).items()}
    return bags


def _audit_reports_the_loss(repo, lost: str) -> tuple[int, int]:
    """Audit everything; only the lost node's copies fail, each as a whole copy missing; status shows it."""
    report = audit(repo)
    failed = {(r.node, r.package_id): r for r in report.failed}
    assert {node for node, _ in failed} == {lost}
    assert len(failed) == PACKAGES
    for one in failed.values():
        codes = set(one.fixity.findings.codes())
        assert codes == {FILE_MISSING, REPLICA_ABSENT}, codes
        assert one.state == "missing"
    report = status(repo)
    assert report["packages"]["degraded"]["count"] == PACKAGES
    assert report["replicas"]["missing"] == PACKAGES
    [node] = [n for n in report["nodes"] if n["name"] == lost]
    assert node["verified"] == 0 and node["replicas"] == PACKAGES
    return len(failed), sum(len(r.fixity.findings) for r in failed.values()) - len(failed)


def _restores_are_identical(repo, bags, tmp_path) -> None:
    for package_id, files in bags.items():
        out = tmp_path / f"restored-{package_id}"
        restore(repo, package_id, out)
        restored = {path: full.read_bytes() for path, full in tree(out).items()}
        assert restored == files, f"restore of {package_id} differs from the bag first written"


@pytest.mark.slow
def test_lost_node_is_reported_and_replaced_by_a_spare(repo, preserved, tmp_path):
    shutil.rmtree(node_root(repo, "cas-nsl"))

    copies, files = _audit_reports_the_loss(repo, "cas-nsl")
    with repo.catalog.session() as s:
        assert {r.state for r in s.scalars(select(Replica)) if r.node.name == "cas-nsl"} == {"missing"}

    # the operator takes the dead node out and registers a spare of the same organisation type
    add_node(repo, "cas-spare", "cas", "beijing", node_root(repo, "cas-spare").as_uri())
    set_node_status(repo, "cas-nsl", "offline")
    placed = missing_copies.place_missing_copies(repo, agent=AGENT)
    assert placed["placed"] == PACKAGES and placed["unplaceable"] == 0
    run_worker_once(repo)

    assert check_settled(repo, staging=repo.staging_dir) == []
    with repo.catalog.session() as s:
        holders = {}
        for r in s.scalars(select(Replica)):
            if r.state == "verified":
                holders.setdefault(r.package_id, set()).add(r.node.name)
    assert holders == {p: {"uni-pku", "cas-spare", "inst-istic"} for p in preserved}
    _restores_are_identical(repo, preserved, tmp_path)
    summary.report(f"node loss: audit reported {copies} copies missing (A006, {files} files A001) on the lost node; "
                   f"{placed['placed']} copies re-replicated to the spare; all {PACKAGES} packages preserved, "
                   "restores byte-identical")


def test_node_back_with_an_empty_disk_is_repaired_in_place(repo, preserved, tmp_path):
    shutil.rmtree(node_root(repo, "inst-istic"))
    node_root(repo, "inst-istic").mkdir()

    _audit_reports_the_loss(repo, "inst-istic")
    worker = run_worker_once(repo)
    assert worker["succeeded"] == PACKAGES
    assert check_settled(repo, staging=repo.staging_dir) == []
    for package_id, files in preserved.items():
        copy = {path: full.read_bytes() for path, full in tree(node_root(repo, "inst-istic") / package_id).items()}
        assert copy == files
    _restores_are_identical(repo, preserved, tmp_path)
