"""Copy (or only read) many files on worker threads, digesting each in the same pass.

Both the bag writer and the validator spend their time here.  Per-file
overhead is what matters for deliveries of 100,000 small files, so:

* files travel in batches (one thread-pool task per ~64 files, not per file),
  and a batch of small files stays on the calling thread (:data:`INLINE_BELOW`);
* small files are read with one read on a raw descriptor, digested with one
  call per algorithm and written with one ``os.write``;
* big files stream in :data:`CHUNK_SIZE` chunks through one buffer per
  worker thread, reused for every file, so memory never grows with file
  size or file count;
* hashlib and file I/O release the GIL, so ``workers`` threads use the cores.

A big file hashed while the other workers are idle (one huge file, say)
sends its second algorithm to a helper thread, as
:class:`~storage_adapters.hashing.MultiHasher` does, so both cores work on
it.  While other workers are busy it hashes both algorithms itself:
splitting every chunk across threads then only adds hand-offs, and
measured at half the throughput (440 against 820 MiB/s for four 128 MiB
files on two cores).

A big copy drops its pages from the page cache behind it (see
:class:`_DropBehind`).

Results come back in submission order, with a bounded number of batches in
flight, so memory stays flat whatever the file count.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple, Protocol, Sequence

from preservation.digests import BAGIT_ALGORITHMS, check_algorithms
from preservation.pagecache import advise_dontneed

CHUNK_SIZE = 512 * 1024
"""Bytes per read of a big file, into one buffer per worker thread.

Small enough that a chunk read from the page cache is still in the core's
cache while both algorithms hash it and it is written out (bagging four
128 MiB files took 0.83 s with 4 MiB chunks, 0.65 s with 512 KiB), and
that two workers add only 1 MiB of memory.
"""
DROP_BEHIND = 16 * 1024 * 1024
"""Every this many bytes, a copy sends its written pages to disk and drops those sent before."""
BATCH_FILES = 64
BATCH_BYTES = 8 * 1024 * 1024
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0)
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
PARALLEL_MIN = 256 * 1024
"""Chunks at least this big may be hashed on two threads at once."""
READ = "read"
INLINE_BELOW = 64 * 1024
"""A batch of files this small on average is read (and copied) on the calling thread, not
on the workers: per small file the interpreter lock is held longer than hashing and I/O let
it go, so threads only take turns (validating 10,000 files of 4 KiB: 0.35 s on two worker
threads, 0.25 s here; bagging them: 0.73 s against 0.51 s)."""
WRITE = "write"
PROGRESS_INTERVAL = 0.1

Progress = Callable[[int, int], None]
"""Called with running totals: (bytes done, files done)."""


class Job(NamedTuple):
    """One file to digest and, when ``target`` is set, to copy there.

    Exactly one source: ``source`` (a local path, read on a worker),
    ``open_source`` (a callable returning a raw descriptor, run on a worker),
    ``data`` (bytes already read) or ``opener`` (a callable returning a binary
    file object, run on the calling thread in order, for sequential archives).
    """

    tag: object
    source: bytes | None = None
    data: bytes | None = None
    opener: Callable[[], BinaryIO] | None = None
    target: bytes | None = None
    size: int = 0
    open_source: Callable[[], int] | None = None
    observer: "Observer | None" = None
    """Sees the file's bytes as they pass (see :class:`Observer`)."""
    known: bytes | None = None
    """Digests (concatenated, in algorithm order) that a copy kept elsewhere has: a file (read from ``source``
    or ``open_source``) whose bytes have them is digested but not written to ``target``.  A big file is then
    read twice when it differs (digested, then copied and digested again); the second read must give the
    first's digests, or the file changed while it was read (:class:`FileChanged`)."""


class Observer(Protocol):
    """Something that learns from a file's bytes in the pass that copies them (formats, metadata …).

    ``feed`` gets the file's bytes in order, chunk by chunk, on whichever
    thread copies the file; a chunk may be a view of a buffer that is
    reused as soon as ``feed`` returns, so an observer copies what it keeps.
    ``close(size)`` follows the last chunk of a file read whole.  When the
    copy fails neither is called again.  An observer must not raise.

    An observer may also have ``close_known(size)``, called instead of
    ``close`` when the file's digests proved to be its job's ``known``
    ones (bytes a kept copy holds, of which the observer may know already
    what it wants to learn).
    """

    def feed(self, chunk: bytes | memoryview) -> None: ...

    def close(self, size: int) -> None: ...


class Outcome(NamedTuple):
    tag: object
    size: int
    raw: bytes | None
    """Concatenated binary digests in algorithm order; None when ``error`` is set."""
    error: OSError | None = None
    side: str = ""
    """READ when the source failed, WRITE when the target did."""
    written: bool = True
    """False when the file was not written to the job's target (its ``known`` digests matched)."""


class FileChanged(OSError):
    """A file read twice (see :attr:`Job.known`) gave other bytes the second time."""


class _SideError(Exception):
    def __init__(self, side: str, error: OSError) -> None:
        super().__init__(str(error))
        self.side = side
        self.error = error


class FilePipeline:
    """Run :class:`Job` s on ``workers`` threads; see :meth:`run`."""

    def __init__(self, algorithms: Sequence[str], workers: int = 2) -> None:
        # a validator reads with whatever a bag's manifests use; the writer picks from fewer (writer.py)
        self.algorithms = check_algorithms(algorithms, BAGIT_ALGORITHMS)
        self.workers = max(1, int(workers))
        self._constructors = tuple(getattr(hashlib, a) for a in self.algorithms)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._helper: ThreadPoolExecutor | None = None
        self._workers = threading.local()

    # --- driving ------------------------------------------------------------

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Yield one :class:`Outcome` per job, in the order the jobs came.

        ``jobs`` is consumed lazily on the calling thread (so a generator may
        create directories or read archive members as it goes).  Errors of
        single files are returned in their outcome, never raised.
        """
        if len(self.algorithms) > 1:
            self._helper = ThreadPoolExecutor(max_workers=len(self.algorithms) - 1, thread_name_prefix="preserve-hash")
        try:
            yield from self._run(jobs)
        finally:
            if self._helper is not None:
                self._helper.shutdown(wait=True)
                self._helper = None

    def _run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        if self.workers == 1:
            for job in jobs:
                yield self._one(job)
            return
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="preserve-bag")
        pending: deque[Future] = deque()
        window = self.workers * 3
        batch: list[Job] = []
        batch_bytes = 0
        try:
            for job in jobs:
                if job.opener is not None:
                    if batch:
                        pending.append(pool.submit(self._batch, batch))
                        batch, batch_bytes = [], 0
                    while pending:
                        yield from pending.popleft().result()
                    yield self._batch([job])[0]
                    continue
                batch.append(job)
                batch_bytes += job.size
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    if batch_bytes < len(batch) * INLINE_BELOW:
                        while pending:
                            yield from pending.popleft().result()
                        yield from self._batch(batch)
                    else:
                        pending.append(pool.submit(self._batch, batch))
                    batch, batch_bytes = [], 0
                    while len(pending) > window:
                        yield from pending.popleft().result()
            if batch:
                pending.append(pool.submit(self._batch, batch))
            while pending:
                yield from pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _batch(self, jobs: list[Job]) -> list[Outcome]:
        with self._busy_lock:
            self._busy += 1
        try:
            return [self._one(job) for job in jobs]
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _one(self, job: Job) -> Outcome:
        try:
            if job.data is not None:
                data = job.data
                raw = self._digest(data)
                if job.target is not None:
                    _write_new(job.target, data)
                _observe_whole(job.observer, data)
                return Outcome(job.tag, len(data), raw)
            if job.opener is not None:
                return self._from_stream(job)
            return self._from_file(job)
        except _SideError as e:
            return Outcome(job.tag, 0, None, e.error, e.side)
        except OSError as e:
            return Outcome(job.tag, 0, None, e, WRITE if job.data is not None else READ)

    # --- one file -------------------------------------------------------------

    def _worker(self) -> _Worker:
        """This thread's buffer and drop-behind record, made on its first big file and kept for the next ones."""
        worker = getattr(self._workers, "state", None)
        if worker is None:
            worker = self._workers.state = _Worker()
        return worker

    def _digest(self, data: bytes | memoryview) -> bytes:
        return b"".join([c(data).digest() for c in self._constructors])

    def _from_file(self, job: Job) -> Outcome:
        try:
            fd = job.open_source() if job.open_source is not None else os.open(job.source, READ_FLAGS)
        except OSError as e:
            raise _SideError(READ, e) from e
        try:
            first = b""
            want = job.size + 1
            if 0 < want <= CHUNK_SIZE:
                # most likely a small file: one read of its own size, without the worker's buffer
                try:
                    first = os.read(fd, want)
                except OSError as e:
                    raise _SideError(READ, e) from e
                if len(first) < want:
                    # a short read of a regular file is its end: the whole file is in `first`
                    raw = self._digest(first)
                    write = job.target is not None and raw != job.known
                    if write:
                        _write_new(job.target, first)
                    _observe_whole(job.observer, first, known=raw == job.known)
                    return Outcome(job.tag, len(first), raw, written=write)
            if job.known is None or job.target is None:
                return self._stream(job, partial(_read_fd, fd), first)
            return self._stream_unless_known(job, fd, first)
        finally:
            os.close(fd)

    def _stream_unless_known(self, job: Job, fd: int, first: bytes) -> Outcome:
        """Digest a big file without writing it; copy it in a second read only when its digests are not
        ``job.known``, and only if that read gives the same digests."""
        digested = self._stream(job._replace(target=None), partial(_read_fd, fd), first, close=False)
        if job.observer is not None:
            _close(job.observer, digested.size, known=digested.raw == job.known)
        if digested.raw == job.known:
            return digested._replace(written=False)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError as e:
            raise _SideError(READ, e) from e
        copied = self._stream(job._replace(observer=None), partial(_read_fd, fd), b"")
        if (copied.size, copied.raw) != (digested.size, digested.raw):
            with suppress(OSError):
                os.unlink(job.target)
            raise _SideError(READ, FileChanged(f"the file gave other bytes when read again to be copied "
                                               f"({digested.size} then {copied.size} bytes)"))
        return copied

    def _from_stream(self, job: Job) -> Outcome:
        try:
            source = job.opener()
        except OSError as e:
            raise _SideError(READ, e) from e
        with source:
            return self._stream(job, source.readinto, b"")

    def _stream(self, job: Job, readinto: Callable[[memoryview], int | None], first: bytes, close: bool = True
                ) -> Outcome:
        """Digest (and copy) a file chunk by chunk through this worker's buffer, ``first`` being its start
        (``close`` False: the caller closes the observer)."""
        worker = self._worker()
        hashes = [c() for c in self._constructors]
        size = len(first)
        out = None
        observer = job.observer
        if observer is not None and first:
            observer.feed(first)
        try:
            if job.target is not None:
                try:
                    out = os.open(job.target, CREATE_FLAGS, 0o666)
                except OSError as e:
                    raise _SideError(WRITE, e) from e
                worker.behind.begin(out)
                _write_fd(out, first)
            self._hash_chunk(hashes, first)
            buffer = worker.buffer
            while True:
                try:
                    n = readinto(buffer)
                except OSError as e:
                    raise _SideError(READ, e) from e
                if not n:
                    break
                chunk = buffer[:n]
                self._hash_chunk(hashes, chunk)
                if observer is not None:
                    observer.feed(chunk)
                size += n
                if out is not None:
                    _write_fd(out, chunk)
                    worker.behind.wrote(size)
            if out is not None:
                worker.behind.end(job.target, size)
        finally:
            if out is not None:
                os.close(out)
        if observer is not None and close:
            observer.close(size)
        return Outcome(job.tag, size, b"".join(h.digest() for h in hashes))

    def _hash_chunk(self, hashes: list, chunk: bytes | memoryview) -> None:
        """Feed ``chunk`` to every hash: on two threads when no other worker is busy, else on this one."""
        helper = self._helper
        if helper is not None and len(chunk) >= PARALLEL_MIN and self._busy <= 1:
            futures = [helper.submit(h.update, chunk) for h in hashes[1:]]
            hashes[0].update(chunk)
            for future in futures:
                future.result()
        else:
            for h in hashes:
                h.update(chunk)


class _Worker:
    """What one worker thread keeps from file to file."""

    def __init__(self) -> None:
        self.buffer = memoryview(bytearray(CHUNK_SIZE))
        self.behind = _DropBehind()


class _DropBehind:
    """One worker's recent copies: sent to disk as they are written, then dropped from the page cache.

    Writing into page-cache pages the machine has not touched before is
    slow and erratic where a virtual machine's memory is handed out lazily:
    copying 500 files of 1 MiB took 0.18 to 1.3 s here, and a steady 0.18
    to 0.31 s with drop-behind, because the pages dropped behind the copy
    are the next ones reused, still warm.  The bag's bytes also reach the
    disk while it is copied rather than all at the final sync, and a bag,
    rarely read back, does not push other data out of the page cache.

    POSIX_FADV_DONTNEED starts the writeback of dirty pages and drops clean
    ones, so each call starts the window just written and drops the one
    before it, whose writeback has had a window's time to finish.  Whole
    files go the same way: each is started when complete and dropped once
    DROP_BEHIND bytes of later files have been written.  Only streamed
    files (:data:`CHUNK_SIZE` and more) take part: for small ones the extra
    system calls would cost more than they save.
    """

    def __init__(self) -> None:
        self._fd = -1
        self._started = 0
        self._dropped = 0
        self._earlier: deque[tuple[bytes, int, int]] = deque()
        """Complete files whose pages may still be cached: path, first byte not yet dropped, size."""
        self._earlier_bytes = 0

    def begin(self, fd: int) -> None:
        self._fd, self._started, self._dropped = fd, 0, 0

    def wrote(self, size: int) -> None:
        """The current file now has ``size`` bytes."""
        if size - self._started >= DROP_BEHIND:
            advise_dontneed(self._fd, self._dropped, size)
            self._dropped, self._started = self._started, size

    def end(self, path: bytes, size: int) -> None:
        """The current file is complete at ``size`` bytes."""
        advise_dontneed(self._fd, self._dropped, size)
        self._earlier.append((path, self._dropped, size))
        self._earlier_bytes += size - self._dropped
        while self._earlier_bytes > DROP_BEHIND and len(self._earlier) > 1:
            path, offset, end = self._earlier.popleft()
            self._earlier_bytes -= end - offset
            with suppress(OSError):  # the bag may be gone already (a failed copy): nothing left to drop then
                fd = os.open(path, READ_FLAGS)
                try:
                    advise_dontneed(fd, offset, end)
                finally:
                    os.close(fd)


def _observe_whole(observer: Observer | None, data: bytes | memoryview, known: bool = False) -> None:
    if observer is not None:
        if data:
            observer.feed(data)
        _close(observer, len(data), known)


def _close(observer: Observer, size: int, known: bool) -> None:
    """Close ``observer``; ``known``: the file's digests were its job's ``known`` ones (see :class:`Observer`)."""
    close_known = getattr(observer, "close_known", None) if known else None
    if close_known is not None:
        close_known(size)
    else:
        observer.close(size)


def _read_fd(fd: int, buffer: memoryview) -> int:
    return os.readv(fd, [buffer])


def _write_new(target: bytes, data: bytes | memoryview) -> None:
    try:
        fd = os.open(target, CREATE_FLAGS, 0o666)
    except OSError as e:
        raise _SideError(WRITE, e) from e
    try:
        _write_fd(fd, data)
    finally:
        os.close(fd)


def _write_fd(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as e:
        raise _SideError(WRITE, e) from e


class ProgressMeter:
    """Running totals for the progress callback, reported at most every PROGRESS_INTERVAL seconds."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.bytes = 0
        self.files = 0
        self._last = 0.0

    def add(self, size: int) -> None:
        self.bytes += size
        self.files += 1
        if self.progress is not None:
            now = time.monotonic()
            if now - self._last >= PROGRESS_INTERVAL:
                self._last = now
                self.progress(self.bytes, self.files)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.bytes, self.files)
