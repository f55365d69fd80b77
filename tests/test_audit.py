"""Audit and restore: corruption is found, named and isolated; restores are verified."""

from __future__ import annotations

import hashlib
import os
import random
import shutil

import bagit
import pytest
from sqlalchemy import delete as delete_rows
from sqlalchemy import select

from preservation.codes import FILE_CHANGED, FILE_MISSING, FILE_UNEXPECTED, NOT_REGULAR, REPLICA_ABSENT, SIZE_CHANGED
import storage_adapters.filesystem as filesystem
from preservation.catalog import files as catalog_files
from preservation.audit import audit
from preservation.catalog.chunk_models import FileChunks
from preservation.catalog.models import Job, Package, Replica
from preservation.chunk_digests import CHUNK_BYTES
from preservation.ingest import ingest
from preservation.errors import InvalidRequest, NotFound
from preservation.events import verify_chain
from preservation.repair import repair_replica
from preservation.restore import restore

from .corruption import (
    add_file,
    delete,
    flip_bit,
    replace_with_fifo,
    replace_with_socket,
    replace_with_symlink,
    truncate,
)
from .fixtures import make_repo, node_root

TARGET = "data/期刊/物理学报/2024/第01期/论文-002.pdf"


def _states(repo, package_id):
    with repo.catalog.session() as s:
        return {r.node.name: r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}


def test_clean_audit(repo, preserved):
    report = audit(repo, package_id=preserved)
    assert report.ok and len(report.replicas) == 3
    assert all(r.fixity.files_checked == r.fixity.files_expected > 0 for r in report.replicas)
    assert report.to_dict()["bytes_read_on_node"] > 0


def test_one_flipped_bit_is_found_named_and_isolated(repo, preserved):
    flip_bit(node_root(repo, "cas-nsl") / preserved / TARGET, rng=random.Random(7))
    report = audit(repo, package_id=preserved)
    assert not report.ok
    [bad] = report.failed
    assert bad.node == "cas-nsl"
    assert [(f.code, f.path) for f in bad.fixity.findings] == [(FILE_CHANGED, TARGET)]
    assert _states(repo, preserved) == {"cas-nsl": "corrupt", "uni-pku": "verified", "inst-istic": "verified"}
    with repo.catalog.session() as s:
        assert s.get(Package, preserved).state == "degraded"
        jobs = s.scalars(select(Job).where(Job.kind == "repair")).all()
        assert [j.payload["replica_id"] for j in jobs] == [bad.replica_id]
        assert verify_chain(s).ok


@pytest.mark.parametrize(
    "damage, code",
    [
        (lambda p: delete(p), FILE_MISSING),
        (lambda p: truncate(p, 10), SIZE_CHANGED),
        (lambda p: add_file(p.parent / "intruder.bin"), FILE_UNEXPECTED),
    ],
    ids=["deleted", "truncated", "added"],
)
def test_each_kind_of_damage_has_its_code(repo, preserved, damage, code):
    damage(node_root(repo, "inst-istic") / preserved / TARGET)
    report = audit(repo, node_name="inst-istic")
    assert code in [f.code for f in report.failed[0].fixity.findings]


@pytest.mark.timeout(300)  # a FIFO opened the blocking way would hang the audit: fail instead
@pytest.mark.parametrize("replace, kind", [
    (replace_with_fifo, "fifo"),
    (replace_with_socket, "socket"),
    (lambda p: replace_with_symlink(p, p.parent / "论文-001.pdf"), "symbolic link"),
], ids=["fifo", "socket", "symlink"])
def test_a_fifo_socket_or_link_is_named_never_read_and_repaired(repo, preserved, replace, kind):
    root = node_root(repo, "inst-istic") / preserved
    replace(root / TARGET)
    replace_with_fifo(root / "data/stray-pipe")
    replace_with_socket(root / "data/stray-socket")
    [bad] = audit(repo, node_name="inst-istic").failed
    found = {(f.code, f.path, f.params["kind"]) for f in bad.fixity.findings}
    assert found == {(NOT_REGULAR, TARGET, kind), (NOT_REGULAR, "data/stray-pipe", "fifo"),
                     (NOT_REGULAR, "data/stray-socket", "socket")}
    assert _states(repo, preserved)["inst-istic"] == "corrupt"
    out = repair_replica(repo, bad.replica_id, agent="test")
    assert out["state"] == "verified" and out["files_removed"] == 2
    assert (root / TARGET).is_file() and not (root / TARGET).is_symlink()
    assert not os.path.lexists(root / "data/stray-pipe") and not os.path.lexists(root / "data/stray-socket")


def test_a_whole_copy_gone_is_missing(repo, preserved):
    shutil.rmtree(node_root(repo, "uni-pku") / preserved)
    report = audit(repo, package_id=preserved)
    [bad] = report.failed
    assert REPLICA_ABSENT in [f.code for f in bad.fixity.findings]
    assert _states(repo, preserved)["uni-pku"] == "missing"


def test_every_finding_is_reported_not_just_the_first(repo, preserved):
    root = node_root(repo, "cas-nsl") / preserved
    flip_bit(root / TARGET)
    delete(root / "data/metadata/README.txt")
    add_file(root / "data/extra.txt")
    codes = sorted(f.code for f in audit(repo, node_name="cas-nsl").failed[0].fixity.findings)
    assert codes == sorted([FILE_CHANGED, FILE_MISSING, FILE_UNEXPECTED])


@pytest.mark.parametrize("batch", [1, 3, 2000])
@pytest.mark.parametrize("where", ["threads", "processes"])
def test_exactly_the_damage_is_found_whatever_the_batches(repo, preserved, monkeypatch, batch, where):
    """The catalog/listing merge compares batches in one step and falls back to one by one:
    missing, changed and unexpected files at batch edges, in Chinese and in invalid UTF-8."""
    monkeypatch.setattr(catalog_files, "BATCH", batch)
    if where == "processes":
        monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 1)
        monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 1)
        monkeypatch.setattr(filesystem, "_VERIFY_FILES", 2)
    root = node_root(repo, "cas-nsl") / preserved
    files = sorted(p for p in root.rglob("*") if p.is_file())
    rng = random.Random(batch)
    deleted = rng.sample(files, 3)
    changed = rng.sample([f for f in files if f not in deleted and f.stat().st_size > 0], 3)
    for path in deleted:
        delete(path)
    for path in changed:
        flip_bit(path, rng=rng)
    intruders = [root / "0-first.bin", root / "data/期刊/插入.bin", root / "data/zzz/last.bin", root / "zzz.txt"]
    for path in intruders:
        add_file(path)
    with open(os.path.join(os.fsencode(root), b"data", b"\xff\xfe-not-utf8.bin"), "wb") as f:
        f.write(b"bad name")

    [bad] = audit(repo, node_name="cas-nsl").failed

    def rel(path):
        return path.relative_to(root).as_posix()
    expected = ({(FILE_MISSING, rel(p)) for p in deleted} | {(FILE_CHANGED, rel(p)) for p in changed}
                | {(FILE_UNEXPECTED, rel(p)) for p in intruders} | {(FILE_UNEXPECTED, r"data/\udcff\udcfe-not-utf8.bin")})
    assert {(f.code, f.path) for f in bad.fixity.findings} == expected
    assert len(bad.fixity.findings) == len(expected)
    assert bad.fixity.files_expected == len(files)
    assert bad.fixity.files_checked == len(files) - len(deleted)
    if batch == 3:  # a repair removes every stray file, the undecodable one too, and restores the rest
        out = repair_replica(repo, bad.replica_id, agent="test")
        assert out["state"] == "verified" and out["files_removed"] == len(intruders) + 1
        assert not [p for p in intruders if p.exists()]
        assert b"\xff\xfe-not-utf8.bin" not in os.listdir(os.path.join(os.fsencode(root), b"data"))


def test_audit_selection_errors(repo, preserved):
    with pytest.raises(NotFound):
        audit(repo, package_id="no-such-package")
    with pytest.raises(NotFound):
        audit(repo, node_name="no-such-node")


def test_restore_writes_a_verified_bag(repo, preserved, tmp_path, sample_delivery):
    out = restore(repo, preserved, tmp_path / "restored")
    bag = tmp_path / "restored"
    assert out["files"] > 9
    original = (sample_delivery / "期刊/物理学报/2024/第01期/论文-002.pdf").read_bytes()
    assert (bag / TARGET).read_bytes() == original

    bagit.Bag(str(bag)).validate()


def test_restore_fails_over_from_a_corrupt_copy(repo, preserved, tmp_path, sample_delivery):
    # corrupt the copy restore prefers (most recently verified) and check the bytes still come out right
    with repo.catalog.session() as s:
        first = s.scalars(
            select(Replica).where(Replica.package_id == preserved).order_by(Replica.verified_at.desc())
        ).first()
        first_node = first.node.name
    flip_bit(node_root(repo, first_node) / preserved / TARGET)
    out = restore(repo, preserved, tmp_path / "r")
    original = (sample_delivery / "期刊/物理学报/2024/第01期/论文-002.pdf").read_bytes()
    assert hashlib.sha256((tmp_path / "r" / TARGET).read_bytes()).digest() == hashlib.sha256(original).digest()
    assert out["bad_copies"] == [first.id]
    assert _states(repo, preserved)[first_node] == "suspect"


def test_restore_refuses_a_non_empty_destination(repo, preserved, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    with pytest.raises(InvalidRequest):
        restore(repo, preserved, tmp_path / "busy")
    assert (tmp_path / "busy" / "x").read_text() == "keep me"


def test_an_audit_fills_the_chunk_digests_a_package_lacks_on_either_catalog(catalog_url, tmp_path):
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        delivery = tmp_path / "delivery"
        delivery.mkdir()
        (delivery / "big.bin").write_bytes(random.Random(3).randbytes(2 * CHUNK_BYTES + 1))
        (delivery / "small.txt").write_bytes(b"one chunk or less: its sha256 checks it\n")
        pid = ingest(repo, delivery, "journals")["package_id"]

        def stored():
            with repo.catalog.session() as s:
                return s.execute(select(FileChunks.path, FileChunks.digests).where(FileChunks.package_id == pid)).all()

        ingested = stored()
        assert [path for path, _ in ingested] == ["data/big.bin"]
        with repo.catalog.session() as s:
            s.execute(delete_rows(FileChunks).where(FileChunks.package_id == pid))
        report = audit(repo, package_id=pid)
        assert report.ok and [r.fixity.chunks_recorded for r in report.replicas] == [1, 0, 0]
        assert stored() == ingested
    finally:
        repo.close()
