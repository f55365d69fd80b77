"""Reading and comparing files of local stores: the pieces the filesystem back end and the
one-pass fan-out (:mod:`storage_adapters.fanout`) share, and that a service uses on the
paths a ``local_files`` feature gives it (:mod:`storage_adapters.features`).

A file is always opened without following a final symbolic link and without
waiting on a FIFO (:func:`no_follow`), and its type is checked before a byte
of it is trusted (:func:`regular_size`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from typing import Sequence

from preservation.chunk_digests import ChunkHasher
from preservation.pagecache import advise_dontneed

from . import fsverify
from .hashing import CHUNK_SIZE, MultiHasher

EARLY_WRITEBACK = 256 * 1024
"""A kernel copy at least this big starts its writeback at once, so the flush later finds it on disk."""
COMPARE_CHUNK = 1024 * 1024
WRITE_SIDE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
"""Errors of a kernel copy that are the writing side's alone (any other could be either side's)."""


class NotRegularPath(OSError):
    """An opened path is a FIFO, socket or device, not a regular file (``kind`` says which)."""

    def __init__(self, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file but a {kind}")
        self.kind = kind


def regular_size(fd: int) -> int:
    """The size of the open file ``fd``; raises NotRegularPath unless it is a regular file (a FIFO
    would read as empty, a device as anything)."""
    st = os.fstat(fd)
    kind = fsverify.irregular_kind(st.st_mode)
    if kind is not None:
        raise NotRegularPath(kind)
    return st.st_size


def no_follow(path: str, flags: int) -> int:
    """Open for reading without following a symbolic link in the last component (ELOOP
    instead), and without waiting for a writer if the name is a FIFO."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)


def digest_path(path: str, algorithms: Sequence[str], chunker: ChunkHasher | None = None) -> tuple[int, dict[str, str]]:
    """Size and digests of the file at ``path`` (not following a final symbolic link); raises
    OSError, NotRegularPath for a FIFO, socket or device.  ``chunker`` is fed the same bytes
    (the file's chunk digests, from this one read).

    A file that came from the disk leaves the page cache once it is digested (``POSIX_FADV_DONTNEED``):
    a copy is checked to be kept, not read again soon, and a node agent's audit must not evict its
    host's working set; a file that was cached stays so."""
    hasher = MultiHasher(algorithms)
    with open(path, "rb", buffering=0, opener=no_follow) as f:
        drop = False
        try:
            size = regular_size(f.fileno())
            drop = fsverify.first_page_uncached(f.fileno())  # asked of a regular file only
            feed = hasher.update if chunker is None else _both(hasher, chunker)
            if size < CHUNK_SIZE:
                # small files (most files of most bags): one read, no 4 MiB buffer to allocate
                feed(f.read(size + 1))
            buf = bytearray(CHUNK_SIZE) if size >= CHUNK_SIZE else bytearray(64 * 1024)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                feed(view[:n])
        finally:
            if drop:
                advise_dontneed(f.fileno())
    return hasher.size, hasher.hexdigests()


def _both(hasher: MultiHasher, chunker: ChunkHasher):
    def feed(piece) -> None:
        hasher.update(piece)
        chunker.update(piece)
    return feed


def digest_and_compare(
    path: str, others: Sequence[str], algorithms: Sequence[str]
) -> tuple[int, dict[str, str], list[bool | OSError]]:
    """Size and digests of ``path`` and, in the same read of it, whether each of ``others`` holds
    the same bytes (True, False, or the error that stopped reading it).

    Reads go into two buffers this thread keeps (a fresh megabyte per read
    would cost the kernel more than the comparison), compared with memcmp.
    """
    hasher = MultiHasher(algorithms)
    results: list[bool | OSError] = [True] * len(others)
    buf, other = compare_buffers()
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open(path, "rb", buffering=0, opener=no_follow))
        size = regular_size(f.fileno())
        readers = []
        for k, name in enumerate(others):
            try:
                g = stack.enter_context(open(name, "rb", buffering=0, opener=no_follow))
                if regular_size(g.fileno()) != size:
                    results[k] = False
            except OSError as e:
                g, results[k] = None, e
            readers.append(g)
        while True:
            n = fill(f, buf)
            if n:
                hasher.update(memoryview(buf)[:n])
            for k, g in enumerate(readers):
                if results[k] is True:
                    try:
                        m = fill(g, other, n + 1 if n < len(other) else n)
                        if m != n or (buf != other if n == len(buf) else buf[:n] != other[:n]):
                            results[k] = False
                    except OSError as e:
                        results[k] = e
            if not n:
                return hasher.size, hasher.hexdigests(), results


_buffers = threading.local()


def compare_buffers() -> tuple[bytearray, bytearray]:
    pair = getattr(_buffers, "pair", None)
    if pair is None:
        pair = _buffers.pair = (bytearray(COMPARE_CHUNK), bytearray(COMPARE_CHUNK))
    return pair


def fill(f, buf: bytearray, want: int | None = None) -> int:
    """Read into ``buf`` until ``want`` bytes (all of it by default) or the end of the file."""
    want = len(buf) if want is None else want
    view = memoryview(buf)
    got = 0
    while got < want:
        n = f.readinto(view[got:want])
        if not n:
            break
        got += n
    return got


def same_content(path: str, other: str) -> bool:
    """True when the two files hold the same bytes (read side by side, compared chunk by chunk)."""
    with open(path, "rb", buffering=0, opener=no_follow) as a, open(other, "rb", buffering=0, opener=no_follow) as b:
        if regular_size(a.fileno()) != regular_size(b.fileno()):
            return False
        while True:
            x = a.read(COMPARE_CHUNK)
            if x != b.read(COMPARE_CHUNK):
                return False
            if not x:
                return True


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
