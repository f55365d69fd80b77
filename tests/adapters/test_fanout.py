"""One file copied to several local stores window by window, every copy read back while it is written."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from preservation.errors import ChecksumMismatch, InvalidKey, ObjectNotFound, SourceFailed, StorageFull
from storage_adapters import exists, fanout, filesystem, read_all
from storage_adapters.fanout import WINDOW, WRITEBACK_LAG, FanOut
from storage_adapters.filesystem import TEMP_DIR, FilesystemAdapter

ALGORITHMS = ("sha256", "sha512")


@pytest.fixture
def source(tmp_path) -> FilesystemAdapter:
    return FilesystemAdapter((tmp_path / "staging").as_uri(), fsync=False)


@pytest.fixture
def nodes(tmp_path) -> list[FilesystemAdapter]:
    return [FilesystemAdapter((tmp_path / name).as_uri()) for name in ("pku", "cas", "istic")]


def _payload(n: int, seed: int = 0) -> bytes:
    block = hashlib.sha512(f"{seed}".encode()).digest() * 64  # 4 KiB that do not repeat within a window
    return (block * (n // len(block) + 1))[:n] if n else b""


def _temporaries(store: FilesystemAdapter) -> list[str]:
    tmp = Path(store.root) / TEMP_DIR
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("kernel", [True, False], ids=["copy_file_range", "user-space"])
@pytest.mark.parametrize("size", [0, 5, 300 * 1024, WINDOW - 1, WINDOW, WINDOW + 1, 3 * WINDOW + 17,
                                  WRITEBACK_LAG + 5 * WINDOW + 3])
def test_every_copy_is_the_source_read_back_and_nothing_is_visible_before_commit(
        source, nodes, monkeypatch, kernel, size):
    if not kernel:
        monkeypatch.setattr(fanout, "_COPY_FILE_RANGE", None)
    data = _payload(size)
    source.write("pkg/数据/文件.bin", data)
    before = _open_descriptors()
    with FanOut(source, ALGORITHMS, drop_source=True) as fan:
        done = fan.copy("pkg/数据/文件.bin", [(n, "p1/数据/文件.bin") for n in nodes], size=size)
        assert done.failed == {} and done.unreadable == {}
        assert done.reference == 0 and done.same == {1: True, 2: True}
        assert done.read_back == size
        assert done.digests == {a: hashlib.new(a, data).hexdigest() for a in ALGORITHMS}
        for node, prepared in zip(nodes, done.copies):
            assert not exists(node, "p1/数据/文件.bin")
            assert Path(prepared.path).parent.name == TEMP_DIR and Path(prepared.path).read_bytes() == data
            prepared.commit()
    assert _open_descriptors() == before  # the descriptors kept for the page cache are closed
    for node in nodes:
        assert read_all(node, "p1/数据/文件.bin") == data
        assert _temporaries(node) == []
    assert read_all(source, "pkg/数据/文件.bin") == data  # dropping the source's pages loses nothing


def test_many_files_at_once_on_several_threads(source, nodes):
    from concurrent.futures import ThreadPoolExecutor

    files = {f"pkg/f{i:02d}": _payload(i * 97_531 + WINDOW // 3, seed=i) for i in range(24)}
    for key, data in files.items():
        source.write(key, data)
    with FanOut(source, ALGORITHMS) as fan, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda item: (item, fan.copy(item[0], [(n, "c/" + item[0]) for n in nodes],
                                                             size=len(item[1]))), files.items()))
    for (key, data), done in results:
        assert done.digests["sha256"] == hashlib.sha256(data).hexdigest()
        assert done.same == {1: True, 2: True}
        for prepared in done.copies:
            prepared.commit()
    for node in nodes:
        assert {k: read_all(node, "c/" + k) for k in files} == files


def test_a_node_that_writes_other_bytes_is_told_apart(source, nodes, monkeypatch):
    size = 2 * WINDOW + 10
    source.write("pkg/f", _payload(size))
    bad_root = nodes[2].root + os.sep
    real = fanout._kernel_copy

    def bad_disk(src, dst, offset, count):
        copied = real(src, dst, offset, count)
        if os.readlink(f"/proc/self/fd/{dst.fileno()}").startswith(bad_root) and offset == WINDOW:
            os.pwrite(dst.fileno(), b"\x00", offset + 7)  # one byte of the second window lands wrong
        return copied

    monkeypatch.setattr(fanout, "_kernel_copy", bad_disk)
    with FanOut(source, ALGORITHMS) as fan:
        done = fan.copy("pkg/f", [(n, "p/f") for n in nodes], size=size)
    assert done.reference == 0 and done.same == {1: True, 2: False}
    for prepared in done.copies:
        prepared.discard()


def test_a_source_of_another_size_or_missing_or_a_bad_key_leaves_nothing(source, nodes):
    source.write("pkg/f", b"abcd")
    with FanOut(source, ALGORITHMS) as fan:
        with pytest.raises(ChecksumMismatch, match="4 bytes, 3 were expected"):
            fan.copy("pkg/f", [(n, "p/f") for n in nodes], size=3)
        with pytest.raises(SourceFailed) as raised:
            fan.copy("pkg/absent", [(n, "p/f") for n in nodes], size=3)
        assert isinstance(raised.value.error, ObjectNotFound)
        with pytest.raises(InvalidKey):
            fan.copy("pkg/f", [(nodes[0], "p/f"), (nodes[1], "../escape")], size=4)
        with pytest.raises(InvalidKey):
            fan.copy("pkg/f", [(nodes[0], f"{TEMP_DIR}/x")], size=4)
    for node in nodes:
        assert _temporaries(node) == [] and not exists(node, "p/f")
    assert not (Path(nodes[1].root).parent / "escape").exists()


def test_a_source_that_shrinks_while_it_is_copied_is_refused(source, nodes, monkeypatch):
    size = 3 * WINDOW
    source.write("pkg/f", _payload(size))
    real = fanout._kernel_copy

    def shrinking(src, dst, offset, count):
        if offset == WINDOW:
            os.truncate(source.local_file("pkg/f"), WINDOW + 100)
        return real(src, dst, offset, count)

    monkeypatch.setattr(fanout, "_kernel_copy", shrinking)
    with FanOut(source, ALGORITHMS) as fan, pytest.raises(ChecksumMismatch, match="changed while it was copied"):
        fan.copy("pkg/f", [(n, "p/f") for n in nodes], size=size)
    assert all(_temporaries(n) == [] for n in nodes)


def _failing_writes(monkeypatch, root: str, after: int, code: int = errno.ENOSPC) -> None:
    """Files created under ``root`` fail to take more than ``after`` bytes (a disk filling up)."""
    real_open = open

    class Full:
        def __init__(self, f):
            self._f, self._written = f, 0

        def write(self, data):
            if self._written + len(data) > after:
                raise OSError(code, os.strerror(code))
            self._written += len(data)
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

    def opener(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Full(f) if str(path).startswith(root + os.sep) and "x" in mode else f

    monkeypatch.setattr(filesystem, "open", opener, raising=False)  # where a copy's temporary file is created


@pytest.mark.parametrize("failing", [0, 1], ids=["the reference", "a compared node"])
def test_a_node_that_fills_up_fails_alone(source, nodes, monkeypatch, failing):
    size = 4 * WINDOW + 1
    data = _payload(size)
    source.write("pkg/f", data)
    _failing_writes(monkeypatch, nodes[failing].root, after=2 * WINDOW)
    with FanOut(source, ALGORITHMS) as fan:
        done = fan.copy("pkg/f", [(n, "p/f") for n in nodes], size=size)
    assert isinstance(done.failed[failing], StorageFull) and done.copies[failing] is None
    assert _temporaries(nodes[failing]) == []
    good = [i for i in range(3) if i != failing]
    assert all(Path(done.copies[i].path).read_bytes() == data for i in good)
    if failing == 0:  # the hash of the reference is lost with it: the caller re-reads the others in full
        assert done.reference is None and done.same == {}
    else:
        assert done.reference == 0 and done.same == {2: True}
    for i in good:
        done.copies[i].discard()


def test_a_copy_that_cannot_be_read_back_is_unreadable_not_failed(source, nodes, monkeypatch):
    source.write("pkg/f", _payload(WINDOW + 3))
    bad_root = nodes[1].root + os.sep
    real = fanout._Target.read

    def read(self, offset, buf, n):
        if self.path.startswith(bad_root):
            raise OSError(errno.EIO, "Input/output error")
        return real(self, offset, buf, n)

    monkeypatch.setattr(fanout._Target, "read", read)
    with FanOut(source, ALGORITHMS) as fan:
        done = fan.copy("pkg/f", [(n, "p/f") for n in nodes], size=WINDOW + 3)
    assert list(done.unreadable) == [1] and done.unreadable[1].errno == errno.EIO
    assert done.copies[1] is None and _temporaries(nodes[1]) == []
    assert done.reference == 0 and done.same == {2: True}
    for i in (0, 2):
        done.copies[i].discard()
