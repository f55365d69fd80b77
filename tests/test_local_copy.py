"""Copies between local filesystem stores: kernel copy, verified before visible, compared with a verified copy."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from preservation import events
from preservation.catalog.models import Event, Replica
from preservation.errors import (
    ChecksumMismatch,
    InvalidKey,
    NoVerifiedSource,
    ObjectNotFound,
    PreservationError,
    SourceFailed,
)
from preservation.ingest import ingest
from preservation.local_copy import replicate_together
from preservation.replication import COMPARED, DIGESTED, replicate_replica
from storage_adapters import exists, fanout, filesystem, read_all, sweep_temporary
from storage_adapters.filesystem import TEMP_DIR, FilesystemAdapter

from .faults.disk import FailingDisk
from .faults.invariants import check_catalog_against_nodes, tree
from .fixtures import node_root


@pytest.fixture
def stores(tmp_path):
    source = FilesystemAdapter((tmp_path / "a").as_uri())
    dest = FilesystemAdapter((tmp_path / "b").as_uri())
    return source, dest


def _payload(n: int) -> bytes:
    return bytes((i * 7 + n) % 251 for i in range(n))


@pytest.mark.parametrize("kernel", [True, False], ids=["copy_file_range", "user-space"])
@pytest.mark.parametrize("size", [0, 5, 3 * 1024 * 1024 + 17])
def test_copy_local_is_byte_identical_and_checked_before_it_is_visible(stores, monkeypatch, kernel, size):
    source, dest = stores
    if not kernel:
        monkeypatch.setattr(filesystem, "_COPY_FILE_RANGE", None)
    data = _payload(size)
    source.write("p/数据/文件.bin", data)
    seen = []

    def check(path: str) -> str:
        seen.append((Path(path).read_bytes() == data, exists(dest, "q/数据/文件.bin"), Path(path).parent.name))
        return "ok"

    assert dest.copy_local(source, "p/数据/文件.bin", "q/数据/文件.bin", size=size, check=check) == "ok"
    assert seen == [(True, False, TEMP_DIR)]
    assert read_all(dest, "q/数据/文件.bin") == data
    assert os.listdir(Path(dest.root) / TEMP_DIR) == []


def test_copy_local_that_fails_its_check_leaves_nothing(stores):
    source, dest = stores
    source.write("p/f", b"abc")

    def check(path: str) -> str:
        raise ChecksumMismatch("wrong", key="p/f")

    with pytest.raises(ChecksumMismatch):
        dest.copy_local(source, "p/f", "q/f", size=3, check=check)
    assert not exists(dest, "q/f")
    assert os.listdir(Path(dest.root) / TEMP_DIR) == []


def test_copy_local_refuses_a_source_of_another_size(stores):
    source, dest = stores
    source.write("p/f", b"abcd")
    with pytest.raises(ChecksumMismatch, match="4 bytes, 3 were expected"):
        dest.copy_local(source, "p/f", "q/f", size=3, check=lambda path: "ok")
    assert not exists(dest, "q/f")


def test_copy_local_blames_a_missing_source_not_itself(stores):
    source, dest = stores
    with pytest.raises(SourceFailed) as raised:
        dest.copy_local(source, "p/absent", "q/f", size=3, check=lambda path: "ok")
    assert isinstance(raised.value.error, ObjectNotFound)
    assert not exists(dest, "q/f")


def test_copy_local_refuses_keys_outside_the_root(stores):
    source, dest = stores
    source.write("p/f", b"abc")
    with pytest.raises(InvalidKey):
        dest.copy_local(source, "p/f", "../escape", size=3, check=lambda path: "ok")
    with pytest.raises(InvalidKey):
        dest.copy_local(source, "../a/p/f", "q/f", size=3, check=lambda path: "ok")
    assert not (Path(dest.root).parent / "escape").exists()


def _replication_details(repo, package_id: str) -> dict[str, dict]:
    with repo.catalog.session() as s:
        rows = s.scalars(select(Event).where(Event.package_id == package_id, Event.event_type == events.REPLICATION,
                                             Event.outcome == events.SUCCESS)).all()
        return {e.node_name: e.detail for e in rows}


def test_ingest_verifies_the_first_copy_by_digests_and_the_others_by_comparison(repo, sample_delivery):
    result = ingest(repo, sample_delivery, "journals")
    details = _replication_details(repo, result["package_id"])
    assert len(details) == 3
    how = sorted((d["verified_by"][DIGESTED], d["verified_by"][COMPARED]) for d in details.values())
    files = details[result["nodes"][0]]["files"]
    assert how == [(0, files), (0, files), (files, 0)]
    compared = [d for d in details.values() if d["verified_by"][COMPARED]]
    assert all(d["compared_with"] == "the copy hashed in the same pass, on another node" for d in compared)


def test_a_rotten_reference_is_caught_and_flagged_and_the_new_copy_still_verifies(repo, sample_delivery):
    result = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id = result["package_id"]
    first, second, *_ = result["replica_ids"]
    replicate_replica(repo, first)
    with repo.catalog.session() as s:
        first_node = s.get(Replica, first).node.name
    payload = sorted(p for p in (node_root(repo, first_node) / package_id / "data").rglob("*") if p.is_file())
    rotten = payload[0]
    data = bytearray(rotten.read_bytes())
    data[len(data) // 2] ^= 0x10
    rotten.write_bytes(bytes(data))  # bit rot on the verified copy, after its verification

    outcome = replicate_replica(repo, second)
    assert outcome["state"] == "verified"
    assert outcome["verified_by"][DIGESTED] >= 1  # the file that differed from the reference was hashed
    assert outcome["bad_sources"] == [first]
    with repo.catalog.session() as s:
        assert s.get(Replica, first).state == "suspect"
        second_node = s.get(Replica, second).node.name
    copy = node_root(repo, second_node) / package_id / rotten.relative_to(node_root(repo, first_node) / package_id)
    assert copy.read_bytes() != bytes(data)


def test_a_bad_staging_byte_never_becomes_a_visible_copy(repo, sample_delivery):
    result = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id = result["package_id"]
    staged = sorted(p for p in (repo.staging_dir / package_id).rglob("*") if p.is_file() and "data" in p.parts)
    data = bytearray(staged[0].read_bytes())
    data[0] ^= 0x01
    staged[0].write_bytes(bytes(data))
    replica_id = result["replica_ids"][0]
    with repo.catalog.session() as s:
        node = s.get(Replica, replica_id).node.name
    with pytest.raises(NoVerifiedSource, match="staging: .*sha256 and sha512"):
        replicate_replica(repo, replica_id)
    relative = staged[0].relative_to(repo.staging_dir / package_id)
    assert not (node_root(repo, node) / package_id / relative).exists()
    with repo.catalog.session() as s:
        assert s.get(Replica, replica_id).state == "pending"


# --- all copies of a new package in one pass over the staging bag -------------------------------


def _node_of(repo, replica_id: int) -> str:
    with repo.catalog.session() as s:
        return s.get(Replica, replica_id).node.name


def _bad_writes_on(monkeypatch, repo, node: str) -> list[str]:
    """The disk under ``node`` writes one wrong byte into every copy it is given (before it is re-read)."""
    root = str(node_root(repo, node).resolve()) + os.sep
    real = fanout._kernel_copy
    spoiled = []

    def kernel_copy(src, dst, offset: int, count: int) -> int:
        copied = real(src, dst, offset, count)
        path = os.readlink(f"/proc/self/fd/{dst.fileno()}")
        if path.startswith(root) and offset == 0 and copied:
            with open(path, "rb") as f:  # the writer is write-only
                first = f.read(1)
            os.pwrite(dst.fileno(), bytes([first[0] ^ 0x01]), 0)
            spoiled.append(path)
        return copied

    monkeypatch.setattr(fanout, "_kernel_copy", kernel_copy)
    return spoiled


def _visible_files(repo, node: str, package_id: str) -> list[Path]:
    return [p for p in (node_root(repo, node) / package_id).rglob("*") if p.is_file()]


@pytest.mark.parametrize("position", [0, 1], ids=["the hashed copy", "a compared copy"])
def test_one_node_writing_wrong_bytes_fails_alone_and_nothing_wrong_becomes_visible(
        repo, sample_delivery, monkeypatch, position):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id, replica_ids = registered["package_id"], registered["replica_ids"]
    bad_node = _node_of(repo, sorted(replica_ids)[position])
    spoiled = _bad_writes_on(monkeypatch, repo, bad_node)

    outcomes = replicate_together(repo, replica_ids)
    assert spoiled
    by_node = {_node_of(repo, rid): outcome for rid, outcome in zip(replica_ids, outcomes)}
    assert isinstance(by_node[bad_node], PreservationError)
    assert by_node[bad_node].code in ("E305", "E501")  # read back with other digests / other bytes
    assert _visible_files(repo, bad_node, package_id) == []
    good = {n: o for n, o in by_node.items() if n != bad_node}
    assert all(o["state"] == "verified" for o in good.values())
    assert sorted(o["verified_by"][DIGESTED] > 0 for o in good.values()) == [False, True]
    with repo.catalog.session() as s:
        states = {r.node.name: r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}
    assert states == {bad_node: "pending", **{n: "verified" for n in good}}

    monkeypatch.undo()  # the disk is replaced: the queued job finishes the copy
    assert replicate_replica(repo, next(r for r in replica_ids if _node_of(repo, r) == bad_node))["state"] == \
        "verified"


def test_a_corrupt_staging_bag_verifies_no_copy_anywhere(repo, sample_delivery):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id = registered["package_id"]
    staged = sorted(p for p in (repo.staging_dir / package_id / "data").rglob("*") if p.is_file())
    staged[-1].write_bytes(bytes(b ^ 0xFF for b in staged[-1].read_bytes()))

    outcomes = replicate_together(repo, registered["replica_ids"])
    assert [o.code for o in outcomes] == ["E502"] * 3
    relative = staged[-1].relative_to(repo.staging_dir / package_id)
    for rid in registered["replica_ids"]:
        node = _node_of(repo, rid)
        assert not (node_root(repo, node) / package_id / relative).exists()
    with repo.catalog.session() as s:
        assert {r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))} == {"pending"}


def test_copies_not_all_local_or_not_new_are_left_to_the_one_by_one_path(repo, sample_delivery):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    first, *others = registered["replica_ids"]
    replicate_replica(repo, first)
    assert replicate_together(repo, registered["replica_ids"]) is None  # one is verified already
    assert replicate_together(repo, others[:1]) is None  # a single copy
    assert [o["state"] for o in replicate_together(repo, others)] == ["verified", "verified"]


@pytest.mark.parametrize("position", [0, 1], ids=["the hashed copy", "a compared copy"])
def test_a_node_filling_up_mid_file_fails_alone_and_the_others_still_verify(repo, sample_delivery, monkeypatch, position):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    replica_ids = registered["replica_ids"]
    full_node = _node_of(repo, sorted(replica_ids)[position])
    disk = FailingDisk(node_root(repo, full_node))
    disk.fill_after(300_000)  # about a third of the payload, in the middle of a file
    disk.install(monkeypatch)

    outcomes = replicate_together(repo, replica_ids)
    assert disk.failed_writes >= 1  # one per file in flight to it
    by_node = {_node_of(repo, rid): outcome for rid, outcome in zip(replica_ids, outcomes)}
    assert by_node[full_node].code == "E306"
    good = {n: o for n, o in by_node.items() if n != full_node}
    assert all(o["state"] == "verified" for o in good.values())
    for outcome in good.values():  # every file of a good copy hashed, or equal to a hashed copy
        assert outcome["files"] > 0 and sum(outcome["verified_by"].values()) == outcome["files"]
    if position == 0:  # the hashed copy was lost mid-file: a good copy was hashed from then on
        assert sum(o["verified_by"][DIGESTED] for o in good.values()) > 0
    assert tree(node_root(repo, full_node) / TEMP_DIR) == {}
    assert check_catalog_against_nodes(repo) == []


def test_a_new_package_appears_on_each_node_by_one_rename_once_every_file_is_checked(repo, sample_delivery, monkeypatch):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id, replica_ids = registered["package_id"], registered["replica_ids"]
    nodes = [_node_of(repo, rid) for rid in replica_ids]
    with repo.catalog.session() as s:
        files = s.get(Replica, replica_ids[0]).package.payload_files
    seen = []
    steps = []
    real_publish, real_sync = filesystem.DraftTree.publish, filesystem.DraftTree.sync

    def publish(draft):
        steps.append("publish")
        seen.append(([n for n in nodes if (node_root(repo, n) / package_id).exists()], len(tree(Path(draft.root)))))
        real_publish(draft)

    def sync(draft):
        steps.append("sync")
        real_sync(draft)

    renames = []
    real_rename, real_replace = os.rename, os.replace
    monkeypatch.setattr(filesystem.DraftTree, "publish", publish)
    monkeypatch.setattr(filesystem.DraftTree, "sync", sync)
    monkeypatch.setattr(os, "rename", lambda a, b: renames.append(b) or real_rename(a, b))
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append(b) or real_replace(a, b))

    outcomes = replicate_together(repo, replica_ids)
    assert [o["state"] for o in outcomes] == ["verified"] * 3
    assert len(seen) == 3
    assert steps == ["sync"] * 3 + ["publish"] * 3  # every node's files on stable storage before any is visible
    assert seen[0][0] == []  # nothing of the package on any node before the first publish
    assert all(count > files for _, count in seen)  # every payload and tag file was in the draft
    package_renames = [r for r in renames if os.path.basename(r) == package_id]
    assert len(package_renames) == 3  # one per node
    assert all("/.preserve/packages/" in r for r in renames if r not in package_renames)  # and the nodes' records
    assert check_catalog_against_nodes(repo) == []
    for node in nodes:
        assert tree(node_root(repo, node) / TEMP_DIR) == {}


def test_a_draft_swept_during_the_copy_fails_its_node_and_publishes_nothing(repo, sample_delivery, monkeypatch):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id, replica_ids = registered["package_id"], registered["replica_ids"]
    swept_node = _node_of(repo, replica_ids[0])
    real_create = filesystem.DraftTree.create_temporary
    swept = []
    made = []
    stores = []

    def create_temporary(draft, key):  # a sweep of temporary files takes one node's draft mid-copy
        if draft.store.location.endswith("/" + swept_node):
            made.append(key)
            if len(made) == 3:
                stores.append(draft.store)
                # older than "an hour from now": the draft whatever its age, though other copying threads
                # refresh its time as they make files (with 0 a refresh after the sweep's clock read wins)
                swept.append(sweep_temporary(draft.store, -3600))
        return real_create(draft, key)

    monkeypatch.setattr(filesystem.DraftTree, "create_temporary", create_temporary)
    outcomes = replicate_together(repo, replica_ids)
    assert swept == [1]
    by_node = {_node_of(repo, rid): outcome for rid, outcome in zip(replica_ids, outcomes)}
    error = by_node[swept_node]
    assert isinstance(error, PreservationError) and error.code == "E300" and error.retryable
    assert "removed while it was being written" in str(error)
    assert not (node_root(repo, swept_node) / package_id).exists()
    # the other copying threads may have made files in the draft while the sweep removed it: what is left
    # of a claimed draft is the next sweep's, whatever its age
    sweep_temporary(stores[0], 3600)
    assert tree(node_root(repo, swept_node) / TEMP_DIR) == {}
    good = {n: o for n, o in by_node.items() if n != swept_node}
    assert all(o["state"] == "verified" for o in good.values())
    with repo.catalog.session() as s:
        states = {r.node.name: r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}
    assert states == {swept_node: "pending", **{n: "verified" for n in good}}
    assert check_catalog_against_nodes(repo) == []
    monkeypatch.undo()
    assert replicate_replica(repo, replica_ids[0])["state"] == "verified"  # the job retried copies it whole


def test_a_node_whose_syncfs_fails_is_not_verified(repo, sample_delivery, monkeypatch):
    registered = ingest(repo, sample_delivery, "journals", replicate=False)
    package_id, replica_ids = registered["package_id"], registered["replica_ids"]
    bad_node = _node_of(repo, replica_ids[1])
    bad_root = str(node_root(repo, bad_node)) + os.sep
    real_syncfs = filesystem._SYNCFS
    failed = []

    def syncfs(fd: int) -> int:  # the writeback of that node's filesystem failed (EIO)
        if os.readlink(f"/proc/self/fd/{fd}").startswith(bad_root):
            failed.append(fd)
            ctypes.set_errno(errno.EIO)
            return -1
        return real_syncfs(fd)

    monkeypatch.setattr(filesystem, "_SYNCFS", syncfs)
    outcomes = replicate_together(repo, replica_ids)
    assert failed
    by_node = {_node_of(repo, rid): outcome for rid, outcome in zip(replica_ids, outcomes)}
    error = by_node[bad_node]
    assert isinstance(error, PreservationError) and error.code == "E300" and error.retryable
    assert os.strerror(errno.EIO) in str(error)
    assert not (node_root(repo, bad_node) / package_id).exists()
    good = {n: o for n, o in by_node.items() if n != bad_node}
    assert all(o["state"] == "verified" for o in good.values())
    with repo.catalog.session() as s:
        states = {r.node.name: r.state for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}
    assert states == {bad_node: "pending", **{n: "verified" for n in good}}
