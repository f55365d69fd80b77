"""Filesystem back end specifics: links never lead outside the root; temporary files."""

from __future__ import annotations

import os

import pytest

from preservation.errors import InvalidKey, StorageError
from storage_adapters import read_all, sweep_temporary
from storage_adapters.filesystem import TEMP_DIR, FilesystemAdapter


@pytest.fixture
def fs(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    return FilesystemAdapter((tmp_path / "root").as_uri()), outside


def test_a_link_to_a_file_outside_is_refused(fs):
    adapter, outside = fs
    os.symlink(outside / "secret.txt", os.path.join(adapter.root, "link.txt"))
    for op in (lambda: read_all(adapter, "link.txt"), lambda: adapter.stat("link.txt")):
        with pytest.raises(InvalidKey):
            op()
    assert isinstance(next(adapter.digest_many(["link.txt"])).error, InvalidKey)


def test_a_linked_directory_leading_outside_is_refused_for_reads_and_writes(fs):
    adapter, outside = fs
    os.symlink(outside, os.path.join(adapter.root, "dir"))
    with pytest.raises(InvalidKey):
        read_all(adapter, "dir/secret.txt")
    with pytest.raises(InvalidKey):
        adapter.write("dir/new.txt", b"escape")
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_refused_write_creates_nothing_outside_the_root(fs):
    adapter, outside = fs
    os.symlink(outside, os.path.join(adapter.root, "dir"))
    os.makedirs(os.path.join(adapter.root, "pkg"))
    os.symlink(outside, os.path.join(adapter.root, "pkg", "data"))
    for key in ("dir/new/deeper/file.txt", "pkg/data/a/b/c.txt", "dir/x.txt"):
        with pytest.raises(InvalidKey):
            adapter.write(key, b"escape")
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_file_where_a_directory_should_be_is_refused(fs):
    adapter, _ = fs
    adapter.write("a/file", b"1")
    with pytest.raises(InvalidKey):
        adapter.write("a/file/below", b"2")
    assert read_all(adapter, "a/file") == b"1"


def test_a_linked_temporary_area_is_refused_and_gets_no_bytes(fs):
    adapter, outside = fs
    os.symlink(outside, os.path.join(adapter.root, TEMP_DIR))
    with pytest.raises(StorageError):
        adapter.write("f.txt", b"must not pass through the outside directory")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert not os.path.exists(os.path.join(adapter.root, "f.txt"))


def test_write_after_delete_emptied_the_cached_directory(fs):
    adapter, _ = fs
    adapter.write("a/b/c.txt", b"1")
    adapter.delete("a/b/c.txt")
    assert not os.path.exists(os.path.join(adapter.root, "a"))
    adapter.write("a/b/c.txt", b"2")
    assert read_all(adapter, "a/b/c.txt") == b"2"


def test_leftover_temporary_files_are_swept_and_never_listed(fs):
    adapter, _ = fs
    os.makedirs(os.path.join(adapter.root, TEMP_DIR))
    leftover = os.path.join(adapter.root, TEMP_DIR, "dead.part")
    with open(leftover, "wb") as f:
        f.write(b"half")
    os.utime(leftover, (1, 1))
    assert [o.key for o in adapter.list()] == []
    with pytest.raises(InvalidKey):
        read_all(adapter, f"{TEMP_DIR}/dead.part")
    assert sweep_temporary(adapter, older_than_seconds=60) == 1
    assert not os.path.exists(leftover)



def test_a_few_big_files_are_digested_on_every_worker_at_once(tmp_path, monkeypatch):
    """Two files and two workers: both are hashed at the same time, not one batch on one thread."""
    import threading

    fs = FilesystemAdapter((tmp_path / "root").as_uri())
    fs.write("p/a", b"a" * 1000)
    fs.write("p/b", b"b" * 1000)
    both_running = threading.Barrier(2, timeout=10)
    real = FilesystemAdapter._digest

    def digest(self, key, algorithms):
        both_running.wait()  # raises BrokenBarrierError unless the other file is being digested too
        return real(self, key, algorithms)

    monkeypatch.setattr(FilesystemAdapter, "_digest", digest)
    results = list(fs.digest_many(["p/a", "p/b"], ["sha256"], workers=2))
    assert sorted(r.key for r in results) == ["p/a", "p/b"]
    assert all(r.error is None for r in results)


def test_digest_and_compare_reads_the_reference_once_and_judges_every_other(tmp_path):
    import hashlib

    from storage_adapters.localfiles import digest_and_compare

    data = bytes(range(256)) * 9000  # over two compare chunks
    ref, same, other, shorter = (tmp_path / n for n in ("ref", "same", "other", "shorter"))
    ref.write_bytes(data)
    same.write_bytes(data)
    other.write_bytes(data[:-1] + b"\x00")
    shorter.write_bytes(data[:-1])
    size, digests, results = digest_and_compare(
        str(ref), [str(same), str(other), str(shorter), str(tmp_path / "absent")], ["sha256", "sha512"])
    assert (size, digests["sha256"], digests["sha512"]) == (
        len(data), hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest())
    assert results[:3] == [True, False, False]
    assert isinstance(results[3], FileNotFoundError)


def test_a_stray_file_with_an_undecodable_name_can_be_removed_and_nothing_else(fs):
    adapter, _ = fs
    raw = os.path.join(os.fsencode(adapter.root), b"pkg", b"\xff-stray.bin")
    os.makedirs(os.path.dirname(raw))
    with open(raw, "wb") as f:
        f.write(b"x")
    (key, size), = adapter.inventory("pkg/")
    assert key == "pkg/\udcff-stray.bin" and size is None
    with pytest.raises(InvalidKey, match="not valid UTF-8"):
        adapter.delete(key)  # no ordinary key can name it
    for refused in ("pkg/\udcff\x01.bin", "../\udcff.bin", "/\udcff.bin", "pkg//\udcff.bin", "pkg/\ud800.bin"):
        with pytest.raises(InvalidKey):
            adapter.delete(refused, stray=True)
    assert os.path.exists(raw)
    adapter.delete(key, stray=True)
    assert not os.path.exists(raw)


def test_digest_and_compare_at_exact_chunk_edges(tmp_path):
    from storage_adapters.localfiles import COMPARE_CHUNK, digest_and_compare

    data = os.urandom(2 * COMPARE_CHUNK)
    names = {"ref": data, "same": data, "first-byte": b"\x00" + data[1:] if data[0] else b"\x01" + data[1:],
             "chunk-edge": data[:COMPARE_CHUNK] + bytes([data[COMPARE_CHUNK] ^ 1]) + data[COMPARE_CHUNK + 1:],
             "longer": data + b"x", "empty": b""}
    for name, content in names.items():
        (tmp_path / name).write_bytes(content)
    others = ["same", "first-byte", "chunk-edge", "longer", "empty"]
    size, _, results = digest_and_compare(str(tmp_path / "ref"), [str(tmp_path / n) for n in others], ["sha256"])
    assert size == len(data)
    assert dict(zip(others, results)) == {"same": True, "first-byte": False, "chunk-edge": False,
                                          "longer": False, "empty": False}
    (tmp_path / "empty-ref").write_bytes(b"")
    _, _, results = digest_and_compare(str(tmp_path / "empty-ref"), [str(tmp_path / "empty"), str(tmp_path / "same")],
                                       ["sha256"])
    assert results == [True, False]
