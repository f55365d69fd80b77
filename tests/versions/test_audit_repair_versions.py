"""Audits read each stored byte once however many versions reference it; a repair heals every version."""

from __future__ import annotations

from datetime import timedelta

import bagit
import pytest
from sqlalchemy import func, select, update

from preservation.audit import audit
from preservation.catalog.models import NODE_OFFLINE, Node, PackageFile, Replica
from preservation.ingest import ingest
from preservation.repair import repair_replica
from preservation.restore import restore

from ..corruption import flip_bit
from ..fixtures import node_root, replicas_by_node
from .helpers import FIRST, write_delivery

SHARED = "data/data-a.txt"


@pytest.fixture
def five_versions(repo, tmp_path):
    """Five monthly versions: each adds a file and corrects the one before; data-a.txt never changes."""
    ids, states, files = [], [], dict(FIRST)
    for month in range(1, 6):
        if month > 1:
            files = dict(files)
            files[f"month-{month}.txt"] = f"new in month {month}\n".encode()
            files["b.txt"] = f"bravo, corrected in month {month}\n".encode()
        out = ingest(repo, write_delivery(tmp_path / f"m{month}", files), "journals",
                     version_of=ids[-1] if ids else None)
        assert out["state"] == "preserved"
        ids.append(out["package_id"])
        states.append(files)
    return ids, states


def test_an_audit_of_everything_reads_each_stored_byte_once(repo, five_versions):
    ids, states = five_versions
    report = audit(repo)
    assert report.ok and len(report.replicas) == 15
    read = sum(r.fixity.bytes_read_on_node for r in report.replicas)
    with repo.catalog.session() as s:
        stored = s.scalar(select(func.sum(PackageFile.size)))
        payload = s.scalar(select(func.sum(PackageFile.size)).where(PackageFile.path.like("data/%")))
    assert read == 3 * stored  # every file row is a stored file, read once on each of the three nodes
    whole = sum(len(b) for files in states for b in files.values())  # what reading every version's view would cost
    assert payload < whole / 2


def test_a_repair_of_a_file_shared_by_five_versions_heals_every_version(repo, five_versions, tmp_path):
    ids, states = five_versions
    damaged = node_root(repo, "cas-nsl") / ids[0] / SHARED
    flip_bit(damaged)
    assert not audit(repo, package_id=ids[0]).ok
    replica = replicas_by_node(repo, ids[0])["cas-nsl"]
    assert replica.state == "corrupt"
    out = repair_replica(repo, replica.id, agent="test")
    assert out["state"] == "verified" and out["files_repaired"] == 1
    assert damaged.read_bytes() == FIRST["data-a.txt"]
    # only the repaired node is left to read from: every version's shared file comes from the healed copy
    with repo.catalog.session() as s:
        s.execute(update(Node).where(Node.name != "cas-nsl").values(status=NODE_OFFLINE))
    for n, files in enumerate(states, start=1):
        dest = tmp_path / f"restored-{n}"
        result = restore(repo, ids[0], dest, version=n)
        assert set(result["sources"]) == {"cas-nsl"} and result["bad_copies"] == []
        assert (dest / SHARED).read_bytes() == FIRST["data-a.txt"]
        bagit.Bag(str(dest)).validate()


def test_a_restore_that_meets_a_damaged_shared_file_blames_the_version_that_stored_it(repo, five_versions, tmp_path):
    ids, states = five_versions
    first = replicas_by_node(repo, ids[0])
    with repo.catalog.session() as s:  # the damaged copy is the freshest, so it is read first
        s.execute(update(Replica).where(Replica.id == first["uni-pku"].id)
                  .values(verified_at=first["uni-pku"].verified_at + timedelta(days=1)))
    flip_bit(node_root(repo, "uni-pku") / ids[0] / SHARED)
    result = restore(repo, ids[0], tmp_path / "v5", version=5)
    assert (tmp_path / "v5" / SHARED).read_bytes() == FIRST["data-a.txt"]
    bagit.Bag(str(tmp_path / "v5")).validate()
    assert result["bad_copies"] == [first["uni-pku"].id]
    assert replicas_by_node(repo, ids[0])["uni-pku"].state == "suspect"  # version 1 stored the file
    assert {r.state for r in replicas_by_node(repo, ids[4]).values()} == {"verified"}  # version 5 holds nothing wrong
