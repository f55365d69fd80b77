"""Checking many local files against expected sizes and digests, fast.

An audit of a copy made of small files is bound by the work done per file,
not by hashing: the file is opened, read and closed, its digest computed and
compared.  This module does exactly that and nothing more, with as few
Python steps per file as it can:

* each file is opened relative to its directory (one checked directory
  handle per directory, so the kernel resolves one name, not the whole path),
  without following a final symbolic link, without blocking on a FIFO and,
  where the files are ours, without writing an access time to each inode;
* a file is read with at most one byte more than the size the catalog
  expects, so a device or an endless file can never make the read run on, and
  a file that grew or shrank is reported as such;
* whatever is not a regular file (a link, FIFO, socket or device) is reported
  as such, never read as data: a link or a socket cannot be opened this way,
  and a FIFO or device gives no bytes or the wrong number of them, which is
  when the file's type is looked at (an empty file costs one ``fstat``, no
  other file does);
* the digest is compared here; only problems travel back, and the chunk
  digests (BLAKE3 per 1 MiB, :mod:`preservation.chunk_digests`) of the files
  whose row asks for them and that matched, computed from the bytes read
  for the digest (never a second read);
* on a cold disk, files of ``DIRECT_MIN`` bytes up to the one-read size
  are read past the page cache (``O_DIRECT``, :mod:`directread`) by reader
  threads, several at once, each hashing and comparing what it read while
  this thread opens the next: a disk answers several requests at once far
  faster than one at a time, and the kernel neither fills nor drops a page
  for them.  Where the file system refuses direct I/O they are read like
  the others;
* of the other files, a few ahead of the one being hashed are opened early
  and their pages asked for (``POSIX_FADV_WILLNEED``; within a file, the
  next step), so that a cold disk always has reads outstanding while a core
  hashes;
* once read, a file that came from the disk has its pages dropped from the
  page cache (``POSIX_FADV_DONTNEED``): an audit reads every copy in full,
  and must not evict the working set of the host to hold bytes it will not
  read again, nor drop what was cached before it came.  Whether a batch
  comes from the disk is asked of its first file (:func:`first_page_uncached`),
  and of every file of ``PROBE_EACH`` bytes or more; what is asked for ahead
  is bounded (``PREFETCH_FILES``, ``PREFETCH_BYTES`` per batch being
  checked), so the cache holds at most that much more.

:func:`verify_batch` is a plain function of plain values so that it can run
in worker processes (:func:`process_pool`), where two cores check files side
by side without sharing one interpreter lock.  The pool is started on first
use and kept for the life of the process, as a long-running worker keeps it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import errno
import hashlib
import multiprocessing
import os
import select
import stat
import sys
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterator, Sequence

from preservation.chunk_digests import ChunkHasher
from preservation.pagecache import advise_dontneed, advise_willneed, first_page_resident

from . import directread

# what a row is: (path under the prefix, expected size, expected hex digests in the order of the algorithms),
# and a fourth element, true when the file's chunk digests are wanted too (only files that need them: it costs a hash)
Row = tuple
# what a problem is: (path, kind, detail); kinds below
Problem = tuple[str, str, tuple]
MISSING = "missing"  # detail: ()
UNREADABLE = "unreadable"  # detail: (errno, message)
REFUSED = "refused"  # detail: (message,)  the key or the object is refused (a link, outside the root)
SIZE = "size"  # detail: (actual size, expected size)
DIGEST = "digest"  # detail: (algorithm, actual hex digest, expected hex digest)
NOT_REGULAR = "not_regular"  # detail: (what it is: 'fifo', 'socket', 'symbolic link' ...)

_KINDS = (
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)

# the calls on a file, looked up here at each use so that the fault-injection tests can make
# them fail as a failing disk would (tests/faults/disk.py)
sys_open, sys_read, sys_readv, sys_close = os.open, os.read, os.readv, os.close

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# an audit should not write: no access-time update per file read (allowed only to the files' owner)
_NOATIME = getattr(os, "O_NOATIME", 0)
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_READ_STEP = 4 * 1024 * 1024
_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)
_OUTSIDE = -2  # a directory that resolves outside the root
_REFUSED = -3  # a directory path with an empty, '.' or '..' segment (never a key: refused, not resolved)
_NOT_NAMES = frozenset({"", ".", ".."})
PREFETCH_FILES = 16  # files of a batch opened and asked for ahead of the one being hashed …
PREFETCH_BYTES = 8 * 1024 * 1024  # … as long as their bytes stay within this (the first is always asked for)
PROBE_EACH = 1024 * 1024  # files this big are each asked whether they come from the disk (one syscall: cheap to them)
DIRECT_MIN = 256 * 1024  # cold files this big, and under _READ_STEP, are read past the page cache …
DIRECT_AHEAD = 2  # … by the reader threads, this many times their number of a batch's files handed to them at most


def verify_batch(
    root: str, prefix: str, rows: Sequence[Row], algorithms: tuple[str, ...],
) -> tuple[int, int, list, dict[str, bytes]]:
    """Check ``rows`` under ``root``/``prefix``: (files that matched, bytes read, problems, chunk digests).

    The chunk digests are those of the files that matched and whose row asked
    for them (``path: n × 32 bytes``).

    ``root`` must be the store's resolved root (``os.path.realpath``).  Nothing
    outside it is ever read: each directory is resolved and checked to lie
    under the root, and the file is opened in it by its last name only,
    without following a link.
    """
    constructors = [getattr(hashlib, a) for a in algorithms]
    flags = _OPEN_FILE | _NOATIME
    matched = 0
    bytes_read = 0
    problems: list[tuple[int, Problem]] = []  # (row index, problem): files read by other threads report late
    chunks: dict[str, bytes] = {}
    dirs: dict[str, int | None] = {}
    last_parent, dir_fd = None, None
    buffer = None
    base = prefix.rstrip("/")
    ahead: dict[int, int] = {}  # row index -> its file, opened early with its pages asked for
    hinted = 0  # rows before this one have been asked for (or were not to be)
    hinted_bytes = 0  # bytes of the rows asked for and not yet read
    cold: bool | None = None  # whether this batch reads from the disk: asked of the first file's first page
    direct = directread.AVAILABLE  # cold files of DIRECT_MIN bytes or more are read past the page cache
    handed: collections.deque = collections.deque()  # (row index, path, fd, future): files the readers have

    def directory(within: str) -> int | None:
        parent = f"{base}/{within}" if base and within else base or within
        if parent not in dirs:
            dirs[parent] = _REFUSED if _bad_segments(within) else _open_dir(root, parent)
        return dirs[parent]

    def asked_bytes(size: int) -> int:
        """What asking for a file ahead brings into the page cache: nothing for a file read past it."""
        return 0 if direct and DIRECT_MIN <= size < _READ_STEP else min(size, PREFETCH_BYTES)

    ask_within, ask_folder = None, None

    def ask_for(index: int) -> int:
        """Open row ``index``'s file now and ask for its pages; the bytes asked for (0: on any trouble,
        or a file read past the page cache, the file is left to its turn)."""
        nonlocal ask_within, ask_folder
        row = rows[index]
        path, size = row[0], row[1]
        asked = asked_bytes(size)
        if not asked:
            return 0
        within, _, name = path.rpartition("/")
        if within != ask_within:
            ask_within, ask_folder = within, directory(within)
        if ask_folder is None or ask_folder < 0 or name in _NOT_NAMES:
            return 0
        try:
            fd = sys_open(name, flags, dir_fd=ask_folder)
        except OSError:
            return 0
        ahead[index] = fd
        advise_willneed(fd, 0, asked)
        return asked

    def tally(index: int, path: str, got: int, problem: Any, digests: Any) -> None:
        """One file's outcome: its bytes read, and its problem or its match (with its chunk digests)."""
        nonlocal matched, bytes_read
        bytes_read += got
        if problem is not None:
            problems.append((index, problem))
        else:
            matched += 1
            if digests is not None:
                chunks[path] = digests

    def collect() -> None:
        """The outcome of the oldest file handed to the readers, waited for."""
        index, path, fd, future = handed.popleft()
        try:
            got, problem, digests = future.result()
        finally:
            sys_close(fd)
        tally(index, path, got, problem, digests)

    count = len(rows)
    try:
        for index, row in enumerate(rows):
            path, size, expected = row[0], row[1], row[2]
            chunked = len(row) > 3 and row[3]
            if index in ahead:
                hinted_bytes -= asked_bytes(size)
            elif hinted <= index:
                hinted = index + 1
            while cold and hinted < count and hinted - index <= PREFETCH_FILES and (
                    hinted == index + 1 or hinted_bytes + asked_bytes(rows[hinted][1]) <= PREFETCH_BYTES):
                hinted_bytes += ask_for(hinted)
                hinted += 1
            within, _, name = path.rpartition("/")
            if within != last_parent:
                last_parent, dir_fd = within, directory(within)
            if dir_fd is None:
                problems.append((index, (path, MISSING, ())))
                continue
            if dir_fd == _OUTSIDE:
                problems.append((index, (path, REFUSED, ("the key resolves outside the storage root",))))
                continue
            if dir_fd == _REFUSED:
                problems.append((index, (path, REFUSED, ("empty, '.' and '..' segments are not allowed",))))
                continue
            if name in _NOT_NAMES:
                problems.append((index, (path, REFUSED, (f"segment {name!r} is not allowed",))))
                continue
            fd = ahead.pop(index, None)
            try:
                if fd is None:
                    fd = sys_open(name, flags, dir_fd=dir_fd)
            except PermissionError as e:
                if not flags & _NOATIME:
                    problems.append((index, _open_failed(path, e, name, dir_fd)))
                    continue
                flags = _OPEN_FILE  # not the owner of this file: read it, and the rest, as anyone may
                try:
                    fd = sys_open(name, flags, dir_fd=dir_fd)
                except OSError as e:
                    problems.append((index, _open_failed(path, e, name, dir_fd)))
                    continue
            except OSError as e:
                problems.append((index, _open_failed(path, e, name, dir_fd)))
                continue
            drop = cold  # pages this audit brought in are dropped after; what was cached stays
            probed = False
            if cold is None and size:
                cold = drop = probed = first_page_uncached(fd)
            elif not cold and size >= PROBE_EACH:
                drop = probed = first_page_uncached(fd)
            if drop and direct and DIRECT_MIN <= size < _READ_STEP:
                if directread.switch_on(fd):
                    # a reader thread reads, hashes and compares it while this one goes on; only the pages a
                    # probe of its first page may have brought in are to be dropped
                    handed.append((index, path, fd, directread.readers().submit(
                        _check_direct, fd, path, size, expected, algorithms, chunked, probed)))
                    if len(handed) > DIRECT_AHEAD * directread.READERS:
                        collect()
                    continue
                if _regular(fd):  # the file system refuses: the rest of the batch is read through the page cache
                    direct = False
            try:
                if size < _READ_STEP:  # the common case, without a call more per file than it needs
                    data = sys_read(fd, size + 1)
                    if len(data) < size:  # a short read: make sure it is the end of the file
                        data = _read_rest(fd, data, size + 1)
                    got, problem, digests = _check_bytes(fd, path, data, size, expected, algorithms, constructors,
                                                         chunked)
                else:
                    if buffer is None:
                        buffer = bytearray(_READ_STEP)
                    got, problem, digests = _check_open(fd, path, size, expected, algorithms, constructors, chunked,
                                                        buffer)
                tally(index, path, got, problem, digests)
            except OSError as e:
                problems.append((index, _read_failed(path, e)))
            finally:
                if drop:
                    advise_dontneed(fd)
                sys_close(fd)
        while handed:
            collect()
    finally:
        for _, _, fd, future in handed:  # after an error: the readers let go of each file before it is closed
            if not future.cancel():
                with contextlib.suppress(Exception):
                    future.result()
            sys_close(fd)
        for fd in ahead.values():
            sys_close(fd)
        for fd in dirs.values():
            if fd is not None and fd >= 0:
                os.close(fd)
    problems.sort(key=_first)
    return matched, bytes_read, [problem for _, problem in problems], chunks


def _first(pair: tuple) -> int:
    return pair[0]


def _check_open(
    fd: int, path: str, size: int, expected: Sequence[str], algorithms: tuple[str, ...], constructors: list,
    chunked: bool, buffer: bytearray | None,
) -> tuple[int, Problem | None, bytes | None]:
    """Read the file open at ``fd`` (from its current position, its start) whole, hash it and compare:
    (bytes read, the problem or None, its chunk digests when it matched and they are asked for).

    ``buffer`` (of ``_READ_STEP`` bytes) is needed for a file of ``_READ_STEP`` bytes or more.  Raises
    OSError from a read.
    """
    if size < _READ_STEP:
        data = sys_read(fd, size + 1)
        if len(data) < size:  # a short read: make sure it is the end of the file
            data = _read_rest(fd, data, size + 1)
        return _check_bytes(fd, path, data, size, expected, algorithms, constructors, chunked)
    got, hashes = _read_large(fd, size, constructors, buffer, chunked)
    if got != size:
        return got, _wrong_size(path, fd, got, size), None
    problem = _compare(path, algorithms, hashes, expected)
    return got, problem, hashes[-1].digests() if chunked and problem is None else None


def _check_bytes(
    fd: int, path: str, data: bytes | memoryview, size: int, expected: Sequence[str], algorithms: tuple[str, ...],
    constructors: list, chunked: bool,
) -> tuple[int, Problem | None, bytes | None]:
    """:func:`_check_open` for a file read whole into ``data`` (at most ``size`` + 1 bytes)."""
    got = len(data)
    if got != size or not got:
        problem = _wrong_size(path, fd, got, size)
        if problem is not None:
            return got, problem, None
    if len(constructors) == 1:  # the routine audit's one digest, the fewest steps per small file
        actual = constructors[0](data).hexdigest()
        if actual != expected[0]:
            return got, (path, DIGEST, (algorithms[0], actual, expected[0])), None
        return got, None, _chunk_digests(data) if chunked else None
    problem = _compare(path, algorithms, [c(data) for c in constructors], expected)
    return got, problem, _chunk_digests(data) if chunked and problem is None else None


def _check_direct(
    fd: int, path: str, size: int, expected: Sequence[str], algorithms: tuple[str, ...], chunked: bool,
    probed: bool,
) -> tuple[int, Problem | None, bytes | None]:
    """In a reader thread: :func:`_check_open` for a file switched to direct I/O, read past the page cache;
    read the usual way (and its pages dropped) where the file system refuses after all.  A read that
    fails is its problem; nothing is raised."""
    constructors = [getattr(hashlib, a) for a in algorithms]
    try:
        try:
            data = directread.read_from_start(fd, size + 1, sys_readv)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            directread.switch_off(fd)
            os.lseek(fd, 0, os.SEEK_SET)
            try:
                return _check_open(fd, path, size, expected, algorithms, constructors, chunked, None)
            finally:
                advise_dontneed(fd)
        return _check_bytes(fd, path, data, size, expected, algorithms, constructors, chunked)
    except OSError as e:
        return 0, _read_failed(path, e), None
    finally:
        if probed:  # asked with a read that may not wait (where mincore cannot be), that read may have brought a few
            advise_dontneed(fd)


def _regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _compare(path: str, algorithms: tuple[str, ...], hashes: list, expected: Sequence[str]) -> Problem | None:
    """The first digest of ``hashes`` that differs from the one ``expected``, as a problem; None if all match."""
    for algorithm, h, want in zip(algorithms, hashes, expected):
        actual = h.hexdigest()
        if actual != want:
            return (path, DIGEST, (algorithm, actual, want))
    return None


def _chunk_digests(data: bytes) -> bytes:
    hasher = ChunkHasher()
    hasher.update(data)
    return hasher.digests()


_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def first_page_uncached(fd: int) -> bool:
    """Whether the first page of ``fd`` must come from the disk (mincore, :func:`first_page_resident`).

    Asked once per batch of small files, so that files already in the page cache (a copy just written,
    a warm host) cost no advice per file and stay cached, and a cold disk gets reads ahead and its pages
    dropped behind.  Where mincore cannot be asked, a one-byte read that may not wait (RWF_NOWAIT) is
    put instead, which gets EAGAIN when the page is not there (it starts a read of that page, and a fast
    disk may answer before the kernel looks again: then the batch is taken as cached).  False where
    neither can be asked (nothing is then advised).
    """
    resident = first_page_resident(fd)
    if resident is not None:
        return not resident
    if _NOWAIT is None:
        return False
    try:
        os.preadv(fd, [bytearray(1)], 0, _NOWAIT)
    except BlockingIOError:
        return True
    except OSError:  # a FIFO, a device, a filesystem without the flag: its turn will tell
        return False
    return False


def irregular_kind(mode: int) -> str | None:
    """What an entry of ``mode`` (from ``lstat``) is when it is not a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "file of unknown type"


def _bad_segments(within: str) -> bool:
    """Checked once per directory, not per file."""
    return bool(within) and any(segment in _NOT_NAMES for segment in within.split("/"))


def _open_dir(root: str, parent: str) -> int | None:
    """A handle on ``root``/``parent`` if it resolves inside ``root``; None if it is not
    there, ``_OUTSIDE`` if a link leads out of the store (never followed)."""
    directory = os.path.join(root, *parent.split("/")) if parent else root
    real = os.path.realpath(directory)
    if not (real + os.sep).startswith(root.rstrip(os.sep) + os.sep):
        return _OUTSIDE
    try:
        return os.open(real, _OPEN_DIR)
    except OSError:
        return None


def _read_rest(fd: int, data: bytes, limit: int) -> bytes:
    parts = [data]
    got = len(data)
    while got < limit:
        more = sys_read(fd, limit - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _read_large(fd: int, size: int, constructors: list, buffer: bytearray, chunked: bool) -> tuple[int, list]:
    """Read a big file in steps, hashing each step as it comes; with ``chunked`` the last hash is a ChunkHasher."""
    hashes = [c() for c in constructors]
    if chunked:
        hashes.append(ChunkHasher())
    view = memoryview(buffer)
    got = 0
    limit = size + 1
    while got < limit:
        n = sys_readv(fd, [view[: min(len(buffer), limit - got)]])
        if not n:
            break
        got += n
        advise_willneed(fd, got, min(got + len(buffer), limit))  # the next step is read while this one hashes
        chunk = view[:n]
        for h in hashes:
            h.update(chunk)
    return got, hashes


def _wrong_size(path: str, fd: int, got: int, size: int) -> Problem | None:
    """The problem with a file that gave ``got`` bytes where ``size`` were expected (or none):
    a FIFO or device is no file at all; a regular file of the expected empty size is fine (None)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return (path, SIZE, (got, size))
    kind = irregular_kind(st.st_mode)
    if kind is not None:
        return (path, NOT_REGULAR, (kind,))
    if got == size:
        return None
    return (path, SIZE, (st.st_size, size))


def _open_failed(path: str, e: OSError, name: str, dir_fd: int) -> Problem:
    if e.errno in _ABSENT:
        return (path, MISSING, ())
    if e.errno == errno.ELOOP:
        return (path, NOT_REGULAR, ("symbolic link",))
    if e.errno == errno.ENXIO:  # a socket (or a device without its driver): nothing to read
        try:
            kind = irregular_kind(os.lstat(name, dir_fd=dir_fd).st_mode)
        except OSError:
            kind = None
        return (path, NOT_REGULAR, (kind or "socket",))
    return (path, UNREADABLE, (e.errno, e.strerror or str(e)))


def _read_failed(path: str, e: OSError) -> Problem:
    if e.errno == errno.EISDIR:
        return (path, MISSING, ())
    return (path, UNREADABLE, (e.errno, e.strerror or str(e)))


# --- the worker processes -------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """The shared pool of ``workers`` checker processes, started on first use.

    Processes come from a fork server (never a fork of this process, which
    may hold threads and open database connections) that has this module
    loaded already, and all of them are started here, at once, without the
    program's main script: a worker runs this module and nothing else (not
    the command line interface, not a caller's unguarded script), so it
    starts in milliseconds and stays small.
    """
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                       initializer=_follow, initargs=(os.getpid(),))
            with _main_hidden():
                # the pool starts a process per task while none is idle: give it tasks until all run
                while len(getattr(pool, "_processes", None) or ()) < workers:
                    for future in [pool.submit(os.getpid) for _ in range(workers)]:
                        future.result()
            _pool, _pool_size = pool, workers
        return _pool


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """While workers start, ``__main__`` is an empty module, so that they do not import the
    main script again (multiprocessing would, to find functions defined there; ours are not)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield  # run as ``python -m``/``-c``: multiprocessing imports nothing for it
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _follow(owner: int) -> None:
    """In a checker process: exit as soon as the process that started the pool is gone.

    A pool's workers wait on a queue whose writing end they hold themselves,
    so a killed owner (SIGKILL, out of memory) would leave them waiting
    forever; a thread watching the owner's pidfd ends them at once.
    """
    try:
        watched = os.pidfd_open(owner)
    except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): poll instead
        watched = None

    def watch() -> None:
        if watched is not None:
            select.select([watched], [], [])
        else:
            while _alive(owner):
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="preserve-follow", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def discard_pool() -> None:
    """Forget the pool (after a worker died); the next use starts a new one."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool, _pool_size = None, 0


def pool_running() -> bool:
    """True once the pool has been started (and not discarded)."""
    return _pool is not None


def worker_pids() -> list[int]:
    """The process ids of the pool's workers now (none before the pool is used)."""
    with _pool_lock:
        processes = getattr(_pool, "_processes", None) or {}
        return list(processes)


def warm_pool(workers: int) -> None:
    """Start the pool's processes now rather than at the first batch."""
    process_pool(workers)


atexit.register(discard_pool)
