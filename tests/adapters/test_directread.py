"""Cold files read past the page cache (O_DIRECT) by reader threads: what an audit of a cold disk does with
files between ``fsverify.DIRECT_MIN`` and the one-read size.

The files here are really out of the page cache (written, synced, dropped with POSIX_FADV_DONTNEED until mincore finds none), so
the checker finds each batch cold by itself, in this process and in checker processes.  What is proved:
the reads are direct, several at once, and leave nothing cached; damage is found in every position of
every batch, including the first file of the next batch; a file that changed size after the listing is
reported with its new size; and where the file system refuses direct I/O, when switching or at the
read, the files are read the usual way, with the same findings.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import threading
from pathlib import Path

import pytest

import storage_adapters.filesystem as filesystem
from preservation.pagecache import resident_bytes
from storage_adapters import directread, fsverify
from storage_adapters.base import VERIFY_DIGEST, VERIFY_SIZE
from storage_adapters.filesystem import FilesystemAdapter

from ..coldfiles import make_cold
from ..corruption import flip_bit
from ..services import service_missing

PREFIX = "pkg/"
KIB = 1024


def direct_io_works(directory: Path) -> bool:
    """Whether the file system holding ``directory`` reads a file opened with O_DIRECT."""
    if not directread.AVAILABLE:
        return False
    probe = directory / "direct-probe"
    probe.write_bytes(b"x" * mmap.PAGESIZE)
    buffer = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    try:
        return os.readv(fd, [buffer]) == mmap.PAGESIZE
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()


@pytest.fixture
def cold(tmp_path):
    """A store in which files can be made cold and read directly; ``put(sizes)`` writes a package of
    files of those sizes and returns its rows and paths, out of the page cache."""
    root = tmp_path / "root"
    root.mkdir()
    if not direct_io_works(root):
        service_missing("a file system under the test directory that does direct I/O (O_DIRECT)")

    def put(sizes: list[int]) -> tuple[list, list[Path]]:
        rows, paths = [], []
        for i, size in enumerate(sizes):
            data = os.urandom(size)
            path = root / "pkg" / "data" / f"d{i // 5}" / f"f{i:03d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            rows.append((str(path.relative_to(root / "pkg")), size, (hashlib.sha256(data).hexdigest(),)))
            paths.append(path)
        make_cold(paths)
        with open(paths[0], "rb") as f:
            if not fsverify.first_page_uncached(f.fileno()):
                service_missing("a file system under the test directory that says what it caches (mincore, or a "
                                "read that may not wait)")
        make_cold(paths[:1])  # (a read that may not wait, asked where mincore cannot be, starts a read-ahead)
        return rows, paths

    return FilesystemAdapter(root.as_uri()), root, put


def _direct_reads(monkeypatch) -> list[tuple[int, str]]:
    """Every read of a file switched to direct I/O, as (bytes asked for, the reading thread's name)."""
    reads = []

    def readv(fd, buffers, real=fsverify.sys_readv):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            reads.append((len(buffers[0]), threading.current_thread().name))
        return real(fd, buffers)

    monkeypatch.setattr(fsverify, "sys_readv", readv)
    return reads


def _threads(monkeypatch) -> None:
    monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 10**9)
    monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 10**9)


def _check(adapter, rows, workers=2) -> tuple[int, dict]:
    found, checked = {}, 0
    for batch in adapter.verify_many(PREFIX, iter(rows), ("sha256",), workers=workers):
        checked += batch.checked
        for p in batch.problems:
            assert p.path not in found, f"{p.path} reported twice"
            found[p.path] = p
    return checked, found


def test_cold_files_are_read_directly_several_at_once_and_leave_nothing_cached(cold, monkeypatch):
    adapter, root, put = cold
    rows, paths = put([fsverify.DIRECT_MIN + i * 4099 for i in range(24)])
    _threads(monkeypatch)
    reads = []
    lock = threading.Lock()
    together = threading.Barrier(2, timeout=30)  # the first two reads pass only when both are in flight at once

    def readv(fd, buffers, real=fsverify.sys_readv):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            with lock:
                reads.append(threading.current_thread().name)
                first_two = len(reads) <= 2
            if first_two:
                together.wait()
        return real(fd, buffers)

    monkeypatch.setattr(fsverify, "sys_readv", readv)
    asked = []
    real_willneed = fsverify.advise_willneed
    monkeypatch.setattr(fsverify, "advise_willneed", lambda fd, start, end: (asked.append(end - start),
                                                                           real_willneed(fd, start, end)))
    checked, found = _check(adapter, rows, workers=1)
    assert (checked, found) == (len(rows), {})
    assert len(reads) >= len(rows) and all(name.startswith("preserve-direct") for name in reads)
    assert asked == []  # nothing asked into the page cache ahead of its turn
    assert sum(resident_bytes(str(p)) for p in paths) == 0


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_damage_is_found_in_every_position_of_every_batch(cold, monkeypatch, mode):
    """Files read directly and small files read ahead through the page cache, mixed, in batches of a few:
    a bit flipped in any one of them, the first, the last, the first of the next batch, is that file's
    digest problem and nothing else's."""
    adapter, root, put = cold
    sizes = [300 * KIB + i if i % 3 else 20 * KIB + i for i in range(15)]
    rows, paths = put(sizes)
    monkeypatch.setattr(filesystem, "_VERIFY_BYTES", 700 * KIB)
    batches = list(filesystem._verify_batches(iter(rows)))
    assert len(batches) >= 4 and max(len(b) for b in batches) >= 3
    if mode == "threads":
        _threads(monkeypatch)
        monkeypatch.setattr(fsverify, "DIRECT_AHEAD", 1)  # collected along the batch, not only at its end
        reads = _direct_reads(monkeypatch)
    else:
        monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 1)
        monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 1)
    for i, path in enumerate(paths):
        original = path.read_bytes()
        flip_bit(path, offset=0 if i % 2 else len(original) - 1)
        make_cold(paths)
        checked, found = _check(adapter, rows)
        assert {p: (f.kind, f.actual != f.expected) for p, f in found.items()} == {rows[i][0]: (VERIFY_DIGEST, True)}
        assert checked == len(rows)
        path.write_bytes(original)
    make_cold(paths)
    assert _check(adapter, rows) == (len(rows), {})
    if mode == "threads":
        assert {size for size, _ in reads} >= {-(-(s + 1) // mmap.PAGESIZE) * mmap.PAGESIZE for s in sizes[1::3]}
    assert sum(resident_bytes(str(p)) for p in paths) == 0


def test_a_file_that_changed_size_after_the_listing_is_reported_with_its_new_size(cold, monkeypatch):
    adapter, root, put = cold
    page = mmap.PAGESIZE
    rows, paths = put([64 * page, 64 * page, 300 * KIB, 300 * KIB, 300 * KIB, 70 * page + 5])
    _threads(monkeypatch)
    reads = _direct_reads(monkeypatch)
    new_sizes = {
        0: 64 * page + 1,  # one byte more than a whole number of pages: the read asks one page more
        1: 64 * page - page,  # a page less: the read ends on a page boundary
        2: 300 * KIB + 1024 * KIB,  # far more than the read asks for
        3: 1,
        4: 5 * 1024 * KIB,  # more than the one-read size
    }
    for i, size in new_sizes.items():
        with open(paths[i], "r+b") as f:
            f.truncate(size)
    make_cold(paths)
    checked, found = _check(adapter, rows)
    assert {p: (f.kind, f.actual, f.expected) for p, f in found.items()} == {
        rows[i][0]: (VERIFY_SIZE, size, rows[i][1]) for i, size in new_sizes.items()}
    assert checked == len(rows) - len(new_sizes)
    assert len(reads) >= len(rows)


def test_where_switching_to_direct_io_is_refused_files_are_read_ahead_through_the_cache(cold, monkeypatch):
    adapter, root, put = cold
    rows, paths = put([300 * KIB + i for i in range(12)])
    flip_bit(paths[7], offset=5)
    make_cold(paths)
    _threads(monkeypatch)
    refused = []
    monkeypatch.setattr(directread, "switch_on", lambda fd: refused.append(fd) and False)
    asked = []
    real_willneed = fsverify.advise_willneed
    monkeypatch.setattr(fsverify, "advise_willneed", lambda fd, start, end: (asked.append(start),
                                                                           real_willneed(fd, start, end)))
    checked, found = _check(adapter, rows, workers=1)
    assert {p: f.kind for p, f in found.items()} == {rows[7][0]: VERIFY_DIGEST} and checked == len(rows)
    assert len(refused) == 1  # refused once: the rest of the batch is read through the page cache …
    assert asked.count(0) >= len(rows) - 2  # … with its files asked for ahead of their turn
    assert sum(resident_bytes(str(p)) for p in paths) == 0


def test_where_a_direct_read_is_refused_the_file_is_read_the_usual_way(cold, monkeypatch):
    adapter, root, put = cold
    rows, paths = put([300 * KIB + i for i in range(12)])
    flip_bit(paths[0], offset=300 * KIB - 1)
    flip_bit(paths[11], offset=0)
    make_cold(paths)
    _threads(monkeypatch)
    refused = []

    def readv(fd, buffers, real=fsverify.sys_readv):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(fd)
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real(fd, buffers)

    monkeypatch.setattr(fsverify, "sys_readv", readv)
    checked, found = _check(adapter, rows)
    assert {p: f.kind for p, f in found.items()} == {rows[0][0]: VERIFY_DIGEST, rows[11][0]: VERIFY_DIGEST}
    assert checked == len(rows) and len(refused) == len(rows)
    assert sum(resident_bytes(str(p)) for p in paths) == 0  # the pages the usual read brought in are dropped


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no /proc/self/maps on this system")
def test_the_readers_buffers_are_private_memory_not_page_cache(cold):
    """A shared anonymous mapping is counted in the page cache (Shmem): eight readers' buffers in each of three
    processes would break the 64 MiB bound by themselves."""
    adapter, root, put = cold
    rows, paths = put([300 * KIB])
    fd = os.open(paths[0], os.O_RDONLY)
    try:
        assert directread.switch_on(fd)
        view = directread.read_from_start(fd, rows[0][1] + 1)
        assert hashlib.sha256(view).hexdigest() == rows[0][2][0]
        address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    finally:
        os.close(fd)
    with open("/proc/self/maps", encoding="ascii") as f:
        for line in f:
            span, permissions = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                assert permissions.endswith("p"), line  # private, not shared
                return
    raise AssertionError("the buffer is in no mapping of this process")
