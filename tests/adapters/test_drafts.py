"""A tree of new objects written in the temporary area and made visible by one rename (DraftTree)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from preservation.errors import InvalidKey, StorageError
from storage_adapters import exists, filesystem, read_all, sweep_temporary
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
