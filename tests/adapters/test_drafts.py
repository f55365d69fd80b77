"""A tree of new objects written in the temporary area and made visible by one rename (DraftTree)."""

from __future__ import annotations

import ctypes
import errno
import os
import time
from pathlib import Path

import pytest

from preservation.errors import InvalidKey, StorageError, StorageFull
from storage_adapters import exists, fanout, filesystem, flush, read_all, sweep_temporary
from storage_adapters.fanout import FanOut
from storage_adapters.filesystem import TEMP_DIR, FilesystemAdapter

ALGORITHMS = ("sha256", "sha512")
FILES = {"bag/bagit.txt": b"BagIt-Version: 1.0\n", "bag/data/a/1.xml": b"<a/>" * 300,
         "bag/data/a/2.xml": b"", "bag/data/b/c/3.bin": os.urandom(300 * 1024 + 5)}


@pytest.fixture
def source(tmp_path) -> FilesystemAdapter:
    store = FilesystemAdapter((tmp_path / "staging").as_uri(), fsync=False)
    for key, data in FILES.items():
        store.write(key, data)
    return store


@pytest.fixture
def node(tmp_path) -> FilesystemAdapter:
    return FilesystemAdapter((tmp_path / "node").as_uri())


def _temporary(store: FilesystemAdapter) -> list[str]:
    tmp = Path(store.root) / TEMP_DIR
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def _write(fan: FanOut, draft, source_key: str, key: str) -> None:
    done = fan.copy(source_key, [(draft, key)], size=len(FILES[source_key]))
    assert done.failed == {} and done.reference == 0
    done.copies[0].commit()


def test_nothing_is_visible_until_the_tree_is_published_by_one_rename(source, node, monkeypatch):
    draft = node.draft("pkg-1/")
    renames = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: renames.append((a, b)) or real_rename(a, b))
    with FanOut(source, ALGORITHMS) as fan:
        for key in FILES:
            _write(fan, draft, key, "pkg-1/" + key.removeprefix("bag/"))
    assert [o.key for o in node.list()] == []  # every file written, read back and committed: none visible
    assert not exists(node, "pkg-1/data/a/1.xml")
    assert renames == []
    synced = []
    monkeypatch.setattr(filesystem, "_sync_filesystem",
                        lambda root: synced.append(os.path.isdir(os.path.join(node.root, "pkg-1"))))
    draft.publish()
    assert synced == [False]  # the bytes were synced before the tree's name appeared
    assert len(renames) == 1
    assert {o.key: read_all(node, o.key) for o in node.list()} == {
        "pkg-1/" + k.removeprefix("bag/"): v for k, v in FILES.items()}
    assert _temporary(node) == []
    draft.discard()  # published: nothing to remove
    assert exists(node, "pkg-1/bagit.txt")


def test_a_draft_given_up_or_left_by_a_crash_leaves_nothing_visible_and_is_swept(source, node):
    with FanOut(source, ALGORITHMS) as fan:
        given_up = node.draft("pkg-1/")
        _write(fan, given_up, "bag/data/a/1.xml", "pkg-1/data/a/1.xml")
        crashed = node.draft("pkg-2/")
        _write(fan, crashed, "bag/data/b/c/3.bin", "pkg-2/data/b/c/3.bin")
    given_up.discard()
    assert len(_temporary(node)) == 1  # the crashed process's draft
    assert [o.key for o in node.list()] == []
    assert sweep_temporary(node, 3600) == 0  # fresh: it may still be written
    assert sweep_temporary(node, 0) == 1
    assert _temporary(node) == []


@pytest.mark.parametrize("touch", [0.0, 3600.0], ids=["kept fresh", "not touched (the sweep takes it)"])
def test_a_draft_written_for_long_is_kept_fresh_against_the_sweep(source, node, monkeypatch, touch):
    monkeypatch.setattr(filesystem, "DRAFT_TOUCH_SECONDS", touch)
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/data/a/1.xml", "pkg-1/data/a/1.xml")
        old = time.time() - 86400
        os.utime(draft.root, (old, old))  # hours of writing deeper in the tree since its top changed
        _write(fan, draft, "bag/data/a/2.xml", "pkg-1/data/a/2.xml")
    assert sweep_temporary(node, 3600) == (0 if touch == 0.0 else 1)


def test_publishing_onto_objects_already_there_is_refused_and_changes_nothing(source, node):
    node.write("pkg-1/data/old.txt", b"kept")
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/bagit.txt", "pkg-1/bagit.txt")
    with pytest.raises(StorageError, match="holds objects already"):
        draft.publish()
    draft.discard()
    assert [o.key for o in node.list()] == ["pkg-1/data/old.txt"]
    assert _temporary(node) == []


def test_bad_prefixes_and_keys_outside_the_draft_are_refused(source, node):
    for prefix in ("pkg-1", "../pkg/", f"{TEMP_DIR}/", "/abs/"):
        with pytest.raises(InvalidKey):
            node.draft(prefix)
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        for key in ("pkg-2/bagit.txt", "pkg-1/../escape", "pkg-1/"):
            with pytest.raises(InvalidKey):
                fan.copy("bag/bagit.txt", [(draft, key)], size=len(FILES["bag/bagit.txt"]))
    draft.discard()
    assert _temporary(node) == [] and not (Path(node.root).parent / "escape").exists()


def _published(node: FilesystemAdapter) -> list[str]:
    return [o.key for o in node.list()]


def test_a_draft_swept_while_written_is_never_published_without_its_earlier_files(source, node):
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/data/b/c/3.bin", "pkg-1/data/b/c/3.bin")
        assert sweep_temporary(node, 0) == 1  # a worker paused for hours: the sweep takes its draft
        done = fan.copy("bag/data/a/1.xml", [(draft, "pkg-1/data/a/1.xml")], size=len(FILES["bag/data/a/1.xml"]))
        assert done.copies == [None]
        error = done.failed[0]
        assert type(error) is StorageError and error.retryable and "removed" in str(error)
        assert fan.copy("bag/bagit.txt", [(draft, "pkg-1/bagit.txt")], size=len(FILES["bag/bagit.txt"])).failed
    with pytest.raises(StorageError, match="removed while it was being written"):
        draft.publish()
    assert not draft.published
    draft.discard()
    assert _published(node) == [] and not (Path(node.root) / "pkg-1").exists()
    assert _temporary(node) == []


def test_a_file_committed_into_a_swept_draft_fails_its_copy(source, node, monkeypatch):
    monkeypatch.setattr(filesystem, "DRAFT_TOUCH_SECONDS", 0.0)
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        small = fan.copy("bag/data/a/1.xml", [(draft, "pkg-1/data/a/1.xml")], size=len(FILES["bag/data/a/1.xml"]))
        big = fan.copy("bag/data/b/c/3.bin", [(draft, "pkg-1/data/b/c/3.bin")], size=len(FILES["bag/data/b/c/3.bin"]))
        assert sweep_temporary(node, 0) == 1
        for done in (small, big):  # a small one by the draft's check, a big one (fsynced by name) too
            with pytest.raises(StorageError, match="removed while it was being written"):
                done.copies[0].commit()
    draft.discard()
    assert _published(node) == [] and _temporary(node) == []


def test_the_sweep_claims_a_draft_by_renaming_it_aside_before_removing_it(source, node, monkeypatch):
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/bagit.txt", "pkg-1/bagit.txt")
    removed = []
    real_rmtree = filesystem.shutil.rmtree

    def rmtree(path, *args, **kwargs):
        removed.append((os.path.basename(path), os.path.exists(draft.root)))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(filesystem.shutil, "rmtree", rmtree)
    assert sweep_temporary(node, 0) == 1
    [(name, root_there)] = removed
    assert name.startswith(os.path.basename(draft.root)) and name.endswith(".swept") and not root_there
    with pytest.raises(StorageError, match="removed while it was being written"):
        draft.publish()
    # a claimed draft left by a sweep that died is removed by the next, whatever its age
    os.mkdir(Path(node.root) / TEMP_DIR / "x.part.0123.swept")
    assert sweep_temporary(node, 3600) == 1
    draft.discard()
    assert _temporary(node) == [] and _published(node) == []


def test_a_sweep_and_a_publish_cannot_both_win(source, node, monkeypatch):
    # the sweep claims the draft between the publish's check and its rename: the publish fails
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/bagit.txt", "pkg-1/bagit.txt")
    real_check = filesystem.DraftTree._check
    calls = []

    def check(self, key):
        real_check(self, key)
        calls.append(key)
        if len(calls) == 2:  # sync's check, then publish's: the sweep comes right after it
            assert sweep_temporary(node, 0) == 1

    monkeypatch.setattr(filesystem.DraftTree, "_check", check)
    with pytest.raises(StorageError, match="removed while it was being written"):
        draft.publish()
    draft.discard()
    assert _published(node) == [] and _temporary(node) == []
    monkeypatch.setattr(filesystem.DraftTree, "_check", real_check)
    # the publish renames first: the sweep finds nothing to take, the objects stay
    draft = node.draft("pkg-2/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/bagit.txt", "pkg-2/bagit.txt")
    draft.publish()
    assert sweep_temporary(node, 0) == 0
    assert _published(node) == ["pkg-2/bagit.txt"]


def test_a_long_file_keeps_its_draft_fresh_while_it_is_written(tmp_path, node, monkeypatch):
    big = FilesystemAdapter((tmp_path / "big").as_uri(), fsync=False)
    size = 3 * fanout.WINDOW + 7
    big.write("bag/data/big.bin", os.urandom(size))
    monkeypatch.setattr(filesystem, "DRAFT_TOUCH_SECONDS", 0.0)
    draft = node.draft("pkg-1/")
    touched = []
    real_utime = os.utime
    monkeypatch.setattr(os, "utime", lambda target, *a, **k: touched.append(target) or real_utime(target, *a, **k))
    with FanOut(big, ALGORITHMS) as fan:
        done = fan.copy("bag/data/big.bin", [(draft, "pkg-1/data/big.bin")], size=size)
    assert done.failed == {}
    assert touched.count(draft._fd) >= 4  # when the file was made, and at each of its windows
    done.copies[0].commit()
    draft.publish()
    assert _published(node) == ["pkg-1/data/big.bin"]


def _failing_syncfs(code: int, calls: list):
    def syncfs(fd: int) -> int:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        ctypes.set_errno(code)
        return -1
    return syncfs


@pytest.mark.parametrize("code, error", [(errno.EIO, StorageError), (errno.ENOSPC, StorageFull)])
def test_a_failed_syncfs_fails_the_publish_and_the_flush(source, node, monkeypatch, code, error):
    calls = []
    monkeypatch.setattr(filesystem, "_SYNCFS", _failing_syncfs(code, calls))
    synced_all = []
    monkeypatch.setattr(os, "sync", lambda: synced_all.append(True))
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/bagit.txt", "pkg-1/bagit.txt")
    with pytest.raises(error) as raised:
        draft.publish()  # the writeback of the draft failed: its bytes are not known to be on the disk
    assert type(raised.value) is error and os.strerror(code) in str(raised.value)
    assert calls == [draft.root] and synced_all == []  # not replaced by a sync that reports nothing
    draft.discard()
    assert _published(node) == [] and _temporary(node) == []
    node.write("pkg-2/bagit.txt", b"x")
    with pytest.raises(error):
        flush(node)
    assert synced_all == []


def test_without_syncfs_every_filesystem_is_synced(source, node, monkeypatch):
    monkeypatch.setattr(filesystem, "_SYNCFS", None)
    synced_all = []
    real_sync = os.sync
    monkeypatch.setattr(os, "sync", lambda: synced_all.append(True) or real_sync())
    draft = node.draft("pkg-1/")
    with FanOut(source, ALGORITHMS) as fan:
        _write(fan, draft, "bag/bagit.txt", "pkg-1/bagit.txt")
    draft.publish()
    assert synced_all == [True] and _published(node) == ["pkg-1/bagit.txt"]


def test_a_claimed_draft_counts_even_when_it_cannot_be_removed_at_once(source, node, monkeypatch):
    """A writer still making files in a draft the sweep renamed aside can make its removal fail: the draft is
    taken all the same (it can never be published) and counted; a later sweep removes what is left of it."""
    with FanOut(source, ALGORITHMS) as fan:
        draft = node.draft("pkg-1/")
        _write(fan, draft, "bag/data/a/1.xml", "pkg-1/data/a/1.xml")
    real_rmtree = filesystem.shutil.rmtree
    failures = []

    def busy_rmtree(path, *args, **kwargs):  # a file made inside it meanwhile: "Directory not empty"
        if not failures:
            failures.append(path)
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(filesystem.shutil, "rmtree", busy_rmtree)
    assert sweep_temporary(node, 0) == 1
    assert failures and failures[0].endswith(".swept") and os.path.isdir(failures[0])
    assert sweep_temporary(node, 3600) == 1  # what was left, removed whatever its age
    assert _temporary(node) == []
    with pytest.raises(StorageError, match="removed while it was being written"):
        draft.publish()
    draft.discard()
    assert _published(node) == []
