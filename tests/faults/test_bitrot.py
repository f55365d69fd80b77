"""Bit rot: 100 flipped bits spread over every copy of 20 packages; one audit finds exactly them, repair mends all."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from preservation.audit import audit
from preservation.catalog.models import PackageFile
from preservation.codes import FILE_CHANGED
from preservation.ingest import ingest

from ..corruption import flip_bit
from ..fixtures import NODES, node_root
from . import summary
from .invariants import check_settled, file_digests
from .work import make_corpus, run_worker_once

PACKAGES = 20
DAMAGED_FILES = 100


@pytest.mark.slow
def test_one_audit_finds_every_flipped_bit_and_repair_mends_them(repo, tmp_path):
    rng = random.Random("bit-rot")
    packages = [
        ingest(repo, make_corpus(tmp_path / f"delivery-{i}", 12, seed=100 + i, max_size=6000), "journals")["package_id"]
        for i in range(PACKAGES)
    ]
    order = {package_id: i for i, package_id in enumerate(packages)}  # ids are random: choose by ingest order
    with repo.catalog.session() as s:
        files = sorted(((f.package_id, f.path) for f in s.scalars(select(PackageFile)) if f.size > 0),
                       key=lambda f: (order[f[0]], f[1]))
    nodes = [name for name, _, _ in NODES]
    copies = [(node, package_id, path) for node in nodes for package_id, path in files]

    # every package is hit at least once; no file loses all three of its copies (that would be real loss)
    damaged: set[tuple[str, str, str]] = set()
    for package_id in packages:
        damaged.add(rng.choice([c for c in copies if c[1] == package_id]))
    while len(damaged) < DAMAGED_FILES:
        node, package_id, path = rng.choice(copies)
        if sum((n, package_id, path) in damaged for n in nodes) < len(nodes) - 1:
            damaged.add((node, package_id, path))
    good = {}
    for node, package_id, path in sorted(damaged):
        target = node_root(repo, node) / package_id / path
        good[(package_id, path)] = file_digests(target)
        flip_bit(target, rng=rng, bit=rng.randrange(8))
    assert {n for n, _, _ in damaged} == set(nodes) and {p for _, p, _ in damaged} == set(packages)
    every_copy_hit = sum(all(any(d[0] == n and d[1] == p for d in damaged) for n in nodes) for p in packages)

    report = audit(repo)
    found = {(r.node, r.package_id, f.path) for r in report.replicas for f in r.fixity.findings}
    codes = {f.code for r in report.replicas for f in r.fixity.findings}
    assert len(report.replicas) == PACKAGES * len(nodes)
    assert found - damaged == set(), f"false positives: {sorted(found - damaged)[:5]}"
    assert damaged - found == set(), f"missed: {sorted(damaged - found)[:5]}"
    assert codes == {FILE_CHANGED}
    assert {(r.node, r.package_id) for r in report.failed} == {(n, p) for n, p, _ in damaged}

    worker = run_worker_once(repo)
    assert check_settled(repo, staging=repo.staging_dir) == []
    for node, package_id, path in damaged:
        assert file_digests(node_root(repo, node) / package_id / path) == good[(package_id, path)]
    assert audit(repo).ok
    summary.report(
        f"bit rot: one audit found {len(found & damaged)}/{len(damaged)} flipped files over "
        f"{len(report.failed)} of {len(report.replicas)} copies ({every_copy_hit} packages damaged on every copy), "
        f"0 false positives; {worker['succeeded']} repair jobs brought every package back to fully verified"
    )
