"""Copy (or only read) many files on worker threads, digesting each in the same pass.

Both the bag writer and the validator spend their time here.  Per-file
overhead is what matters for deliveries of 100,000 small files, so:

* files travel in batches (one thread-pool task per ~64 files, not per file);
* small files are read with one ``os.read`` on a raw descriptor, digested
  with one call per algorithm and written with one ``os.write``;
* big files stream in :data:`CHUNK_SIZE` chunks, so memory never grows with
  file size;
* hashlib and file I/O release the GIL, so ``workers`` threads use the cores.

A big file hashed while the other workers are idle (one huge file, say)
sends its second algorithm to a helper thread, as
:class:`~storage_adapters.hashing.MultiHasher` does, so both cores work on
it.  While other workers are busy it hashes both algorithms itself:
splitting every chunk across threads then only adds hand-offs, and
measured at half the throughput (440 against 820 MiB/s for four 128 MiB
files on two cores).

Results come back in submission order, with a bounded number of batches in
flight, so memory stays flat whatever the file count.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple, Sequence

from storage_adapters.hashing import CHUNK_SIZE, check_algorithms

BATCH_FILES = 64
BATCH_BYTES = 8 * 1024 * 1024
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0)
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
PARALLEL_MIN = 256 * 1024
"""Chunks at least this big may be hashed on two threads at once."""
READ = "read"
WRITE = "write"
PROGRESS_INTERVAL = 0.1

Progress = Callable[[int, int], None]
"""Called with running totals: (bytes done, files done)."""


class Job(NamedTuple):
    """One file to digest and, when ``target`` is set, to copy there.

    Exactly one source: ``source`` (a local path, read on a worker),
    ``data`` (bytes already read) or ``opener`` (a callable returning a binary
    file object, run on the calling thread in order, for sequential archives).
    """

    tag: object
    source: bytes | None = None
    data: bytes | None = None
    opener: Callable[[], BinaryIO] | None = None
    target: bytes | None = None
    size: int = 0


class Outcome(NamedTuple):
    tag: object
    size: int
    raw: bytes | None
    """Concatenated binary digests in algorithm order; None when ``error`` is set."""
    error: OSError | None = None
    side: str = ""
    """READ when the source failed, WRITE when the target did."""


class _SideError(Exception):
    def __init__(self, side: str, error: OSError) -> None:
        super().__init__(str(error))
        self.side = side
        self.error = error


class FilePipeline:
    """Run :class:`Job` s on ``workers`` threads; see :meth:`run`."""

    def __init__(self, algorithms: Sequence[str], workers: int = 2) -> None:
        self.algorithms = check_algorithms(algorithms)
        self.workers = max(1, int(workers))
        self._constructors = tuple(getattr(hashlib, a) for a in self.algorithms)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._helper: ThreadPoolExecutor | None = None

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
                return Outcome(job.tag, len(data), raw)
            if job.opener is not None:
                return self._from_stream(job)
            return self._from_file(job)
        except _SideError as e:
            return Outcome(job.tag, 0, None, e.error, e.side)
        except OSError as e:
            return Outcome(job.tag, 0, None, e, WRITE if job.data is not None else READ)

    # --- one file -------------------------------------------------------------

    def _digest(self, data: bytes | memoryview) -> bytes:
        return b"".join([c(data).digest() for c in self._constructors])

    def _from_file(self, job: Job) -> Outcome:
        try:
            fd = os.open(job.source, READ_FLAGS)
        except OSError as e:
            raise _SideError(READ, e) from e
        try:
            want = min(job.size + 1, CHUNK_SIZE) if job.size >= 0 else CHUNK_SIZE
            try:
                first = os.read(fd, max(want, 1))
            except OSError as e:
                raise _SideError(READ, e) from e
            if len(first) < want:
                # a short read of a regular file is its end: the whole file is in `first`
                raw = self._digest(first)
                if job.target is not None:
                    _write_new(job.target, first)
                return Outcome(job.tag, len(first), raw)
            with io.FileIO(fd, "rb", closefd=False) as source:
                return self._stream(job, source, first)
        finally:
            os.close(fd)

    def _from_stream(self, job: Job) -> Outcome:
        try:
            source = job.opener()
        except OSError as e:
            raise _SideError(READ, e) from e
        with source:
            return self._stream(job, source, b"")

    def _stream(self, job: Job, source: BinaryIO, first: bytes) -> Outcome:
        hashes = [hashlib.new(a) for a in self.algorithms]
        size = 0
        out = None
        try:
            if job.target is not None:
                try:
                    out = os.open(job.target, CREATE_FLAGS, 0o666)
                except OSError as e:
                    raise _SideError(WRITE, e) from e
            if first:
                self._hash_chunk(hashes, first)
                size += len(first)
                if out is not None:
                    _write_fd(out, first)
            buffer = bytearray(CHUNK_SIZE)
            view = memoryview(buffer)
            while True:
                try:
                    n = source.readinto(buffer)
                except OSError as e:
                    raise _SideError(READ, e) from e
                if not n:
                    break
                chunk = view[:n]
                self._hash_chunk(hashes, chunk)
                size += n
                if out is not None:
                    _write_fd(out, chunk)
        finally:
            if out is not None:
                os.close(out)
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
