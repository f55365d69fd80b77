"""Page-cache advice shared by the bag writer and the filesystem stores.

A preservation copy is written to be kept, not read again soon: once its
bytes are safe, its pages should make room for others.  On Linux
``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages without waiting
and drops clean ones, so calling it right after writing starts the flush,
and calling it again after the flush drops what was written.
``sync_file_range`` starts (:func:`start_writeback`) or waits for
(:func:`wait_writeback`) the writeback of a range, so that a range can be
dropped for certain once it is written.
"""

from __future__ import annotations

import ctypes
import os
import stat
from contextlib import suppress
from mmap import PAGESIZE

FADVISE = getattr(os, "posix_fadvise", None)
"""Not on every platform (macOS has none): the advice is then skipped."""


def advise_dontneed(fd: int, offset: int = 0, end: int | None = None) -> None:
    """POSIX_FADV_DONTNEED for bytes [offset, end) (to the end of the file when ``end`` is None);
    advice only, so it never fails."""
    if FADVISE is None or (end is not None and end <= offset):
        return
    with suppress(OSError):  # a filesystem that refuses it still holds every byte
        FADVISE(fd, offset, 0 if end is None else end - offset, os.POSIX_FADV_DONTNEED)


def advise_willneed(fd: int, offset: int, end: int) -> None:
    """POSIX_FADV_WILLNEED for bytes [offset, end): the kernel starts reading them in; advice only."""
    if FADVISE is None or end <= offset:
        return
    with suppress(OSError):
        FADVISE(fd, offset, end - offset, os.POSIX_FADV_WILLNEED)


def _libc_calls():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mmap, munmap, mincore = libc.mmap, libc.munmap, libc.mincore
    except (AttributeError, OSError):
        return None
    # the offset is an off_t, a long where the C library's mmap is not the 64-bit one (32-bit systems)
    mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    mmap.restype = ctypes.c_void_p
    munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    return mmap, munmap, mincore


_MINCORE = _libc_calls()
_MAP_FAILED = ctypes.c_void_p(-1).value


def _resident_pages(fd: int, length: int) -> bytes | None:
    """mincore's vector for the first ``length`` bytes (more than 0) of the file open at ``fd``: a byte a page, its
    lowest bit set when the page is in the page cache (over a read-only shared map, which touches no page); None
    where the file will not map."""
    mmap, munmap, mincore = _MINCORE
    address = mmap(None, length, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
    if address in (None, _MAP_FAILED):
        return None
    try:
        vector = (ctypes.c_ubyte * ((length + PAGESIZE - 1) // PAGESIZE))()
        if mincore(address, length, vector) != 0:
            return None
        return bytes(vector)
    finally:
        munmap(address, length)


def resident_bytes(path: str) -> int | None:
    """How many bytes of the file at ``path`` are in the page cache now (mincore), without reading any;
    None where that cannot be asked.  For checks and benchmarks of what reading leaves cached."""
    if _MINCORE is None:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if not size:
            return 0
        pages = _resident_pages(fd, size)
        return None if pages is None else min(size, sum(v & 1 for v in pages) * PAGESIZE)
    finally:
        os.close(fd)


def first_page_resident(fd: int) -> bool | None:
    """Whether the first page of the regular file open at ``fd`` is in the page cache (mincore over a one-page
    map), without reading it or starting a read; None where that cannot be asked truly: no mincore, not a
    regular file, an empty one, a file system that will not map, or a file the kernel answers falsely about
    (since Linux 5.0 mincore says every page of a file is cached unless the caller owns the file, may write to
    it or is privileged: :func:`_owned_or_writable`).  Unlike a read that may not wait (RWF_NOWAIT), which
    starts a read-ahead and finds the page there once a fast disk has answered, it tells what was cached
    before the question."""
    if _MINCORE is None:
        return None
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode) or not status.st_size or not _owned_or_writable(fd, status):
        return None
    pages = _resident_pages(fd, PAGESIZE)
    return None if pages is None else bool(pages[0] & 1)


def _owned_or_writable(fd: int, status: os.stat_result) -> bool:
    """Whether mincore tells the truth about the file open at ``fd``: the kernel answers for the pages of a file
    only to its owner, to the privileged (CAP_FOWNER, taken here for root) and to whoever may write to it (not on
    a read-only mount)."""
    euid = os.geteuid()
    if euid == 0 or status.st_uid == euid:
        return True
    with suppress(OSError):  # (no /proc: not asked)
        return os.access(f"/proc/self/fd/{fd}", os.W_OK, effective_ids=os.access in os.supports_effective_ids)
    return False


def _sync_file_range():
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):  # not Linux: writeback is left to the kernel and the final flush
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4  # SYNC_FILE_RANGE_* of <fcntl.h>


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing the dirty pages of bytes [offset, offset + length) to disk, without waiting.

    Not a durability barrier (neither this nor :func:`wait_writeback` flushes
    metadata or the disk's cache): the fsync or syncfs of a commit still is."""
    if _SYNC_FILE_RANGE is not None and length > 0:
        _SYNC_FILE_RANGE(fd, offset, length, _WRITE)


def wait_writeback(fd: int, offset: int, length: int) -> None:
    """Write the dirty pages of bytes [offset, offset + length) and wait until they are written,
    so that POSIX_FADV_DONTNEED can drop them; errors are left to the commit's fsync to report."""
    if _SYNC_FILE_RANGE is not None and length > 0:
        _SYNC_FILE_RANGE(fd, offset, length, _WAIT_BEFORE | _WRITE | _WAIT_AFTER)
