"""Reading cold files past the page cache, several at once.

An audit reads every byte of a copy once and will not read it again soon.
Read through the page cache, each of those bytes costs the kernel a page to
allocate and fill, a copy into the reader's buffer, and a page to drop behind
it (so that the audit does not evict the host's working set); a cold disk
sees only the requests the cache's read-ahead makes for it.  A file switched
to direct I/O (``O_DIRECT``) is read by the disk straight into the reader's
buffer: nothing enters the page cache, so there is nothing to drop and
nothing the host kept cached is pushed out.

A direct read waits for the disk, so files are read by several threads at
once (:func:`readers`): a disk that answers many requests at once (a virtual
or solid-state one) then has as many requests in flight as a parallel
``cat`` gives it.  Each thread reads into its own page-aligned buffer (a
private anonymous mapping: not page cache), whole pages from the start of the file, as direct I/O
requires.  A file system that does not do direct I/O refuses it, when the
file is switched (:func:`switch_on` returns False) or at the first read
(``EINVAL``): the caller then reads that file the usual way.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

READERS = 4  # reader threads in one process: each checker process and the process handing out batches has its own
ALIGN = mmap.PAGESIZE  # buffer address, offsets and lengths: a multiple of any logical block size in use
_BUFFER = 4 * 1024 * 1024 + ALIGN  # each reader's buffer to begin with; grown when a longer read is asked for
_O_DIRECT = getattr(os, "O_DIRECT", 0)
AVAILABLE = bool(_O_DIRECT)
"""Whether this platform has direct I/O at all (Linux does; macOS has no ``O_DIRECT``)."""

_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def switch_on(fd: int) -> bool:
    """Read ``fd`` past the page cache from now on; False where its file system (or file type) refuses."""
    if not _O_DIRECT:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT)
    except OSError:
        return False
    return True


def switch_off(fd: int) -> None:
    """Read ``fd`` through the page cache again (after a direct read was refused).  Raises OSError."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~_O_DIRECT)


def read_from_start(fd: int, limit: int, readv: Callable[[int, list], int] = os.readv) -> memoryview:
    """At most ``limit`` bytes of ``fd``, a file switched to direct I/O and positioned at its start, read
    with ``readv`` into this thread's buffer.

    The view is valid until this thread's next read.  Whole pages are asked
    for, so a file may give a few bytes more than ``limit``: they are read
    and left out of the view.  Raises OSError from the read (``EINVAL``: the
    file system refused direct I/O after all).
    """
    want = -(-limit // ALIGN) * ALIGN
    view = _buffer(want)
    got = 0
    while got < want:
        n = readv(fd, [view[got:want]])
        if not n:
            break
        got += n
        if got % ALIGN:  # a direct read ends off a page boundary only at the end of the file
            break
    return view[: min(got, limit)]


def _buffer(size: int) -> memoryview:
    """This thread's aligned buffer, at least ``size`` bytes."""
    view = getattr(_local, "view", None)
    if view is None or len(view) < size:
        # private: a shared anonymous mapping would be counted as page cache (Shmem).  A buffer outgrown
        # is not closed: a caller may still hold a view of it (it goes with the last view)
        view = memoryview(mmap.mmap(-1, max(size, _BUFFER), flags=mmap.MAP_PRIVATE))
        _local.view = view
    return view


def readers() -> ThreadPoolExecutor:
    """The process's :data:`READERS` reader threads, started on first use and kept."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="preserve-direct")
        return _pool


def _forget_pool() -> None:
    """In a forked child: the parent's threads are not there; the next use starts its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)
