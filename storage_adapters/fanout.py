"""One file of a local store copied into several others, every copy checked while it is written.

:class:`FanOut` copies a file a window at a time (:data:`WINDOW` bytes)
into a temporary file on each target store, in the kernel where it can
(``copy_file_range``), and reads every window back at once: the first
target's copy (the *reference*) with each digest asked for, the others
compared byte for byte with it.  Nothing becomes visible here; the caller
judges the digests and commits (or discards) each :class:`PreparedCopy`.

Behind the pass, each window is sent to disk as soon as it is checked, and
dropped from the page cache once :data:`WRITEBACK_LAG` bytes of later
windows have been written, waiting for its writeback first.  So a pass
holds a few megabytes of page cache per thread whatever the file sizes,
the pages it drops are the next ones it reuses, and the copies reach the
disk while the pass goes on rather than at the final flush.  On a virtual
machine whose memory is handed out lazily this matters most: a page-cache
page the guest has not used before (or has handed back) costs the kernel
many times one it reuses.  Copying four files of 128 MiB whole to three
nodes, each copy of a file took 0.3 s of kernel time in new pages and 0.04 s
in reused ones; window by window the whole copy pass took 1.3 s instead of
2.0 s.  A source being read sequentially is read ahead
(:data:`READ_AHEAD`), and with ``drop_source`` (a staging bag, read once)
its windows are dropped from the cache behind the copy too.

Reading a window back right after writing it reads the page cache, not the
disk's media: it proves the bytes the kernel will write are the bytes of
the catalog.  The media are first read back by the copy's first audit.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Sequence

from preservation.errors import ChecksumMismatch, PreservationError, SourceFailed
from preservation.pagecache import advise_dontneed, advise_willneed, start_writeback, wait_writeback

from .base import check_key
from .hashing import MultiHasher
from .localfiles import COMPARE_CHUNK, EARLY_WRITEBACK, WRITE_SIDE_ERRORS, compare_buffers, fill, no_follow, unlink_quietly

if TYPE_CHECKING:
    from .filesystem import DraftTree, FilesystemAdapter, PreparedCopy

    Target = FilesystemAdapter | DraftTree
    """Where a fan-out writes a copy: a store (each file renamed into place on commit) or a draft
    of one (the whole tree published by one rename)."""

_COPY_FILE_RANGE = getattr(os, "copy_file_range", None)

WINDOW = COMPARE_CHUNK
"""Bytes copied to every target and read back before the next window (small enough to stay in the
CPU's cache between the copy and its read-back: 1, 2 and 4 MiB windows measured alike, 8 and 16 MiB slower)."""
WRITEBACK_LAG = 8 * WINDOW
"""Windows this many bytes behind the newest one are waited for and dropped from the page cache."""
READ_AHEAD = 32 * 1024 * 1024
"""How far ahead of the copy the source is read into the cache (a staging bag written a while ago
is on disk by now; waiting for each window's read would stall the pass)."""


class FannedCopy:
    """What :meth:`FanOut.copy` made of one file, per target in the order they were given."""

    def __init__(self, targets: int) -> None:
        self.copies: list[PreparedCopy | None] = [None] * targets
        """The finished temporary copies; None where the target failed."""
        self.failed: dict[int, PreservationError] = {}
        """Targets whose copy could not be written, with the store's error."""
        self.unreadable: dict[int, OSError] = {}
        """Targets whose copy was written but could not be read back."""
        self.reference: int | None = None
        """The target whose copy was read back in full with every digest; None when none was
        (its target failed in the middle): the caller must then check the others in full."""
        self.digests: dict[str, str] = {}
        """The reference copy's digests, as read back."""
        self.read_back = 0
        """Bytes of the reference copy read back (its size as it reads)."""
        self.same: dict[int, bool] = {}
        """Every other finished target: whether its copy read back the reference's bytes."""


class _Target:
    """One target's temporary copy while it is written and read back (one descriptor for both)."""

    def __init__(self, index: int, store: Target, key: str) -> None:
        self.index = index
        self.store = store
        self.key = key
        self.path, self.file = store.create_temporary(key)
        self.kernel = _COPY_FILE_RANGE is not None and type(self.file) is io.FileIO
        self.held: _Held | None = None
        self.keep_fresh = getattr(store, "keep_fresh", None)
        """A draft's: called at each window, so that a long file keeps its draft fresh against a sweep."""

    def write(self, offset: int, data: memoryview) -> None:
        self.file.seek(offset)
        while data:
            data = data[self.file.write(data):]

    def read(self, offset: int, buf: bytearray, n: int) -> int:
        self.file.seek(offset)
        return fill(self.file, buf, n)

    def close(self) -> None:
        """Close the file; its descriptor for the windows still to be dropped stays open until they are."""
        with contextlib.suppress(OSError):
            self.file.close()
        if self.held is not None:
            self.held.release()
            self.held = None

    def discard(self) -> None:
        self.close()
        unlink_quietly(self.path)


class _Held:
    """A descriptor of a copy kept open until its last window has left the page cache."""

    __slots__ = ("fd", "refs")

    def __init__(self, fd: int) -> None:
        self.fd = os.dup(fd)
        self.refs = 1

    def release(self) -> None:
        self.refs -= 1
        if not self.refs:
            os.close(self.fd)


class FanOut:
    """Copies from one local store to several, for as many files as asked; see the module.

    One pass over a package: thread-safe, so several files can be copied at
    once; :meth:`close` (or leaving the ``with`` block) waits for what is
    still being written back and lets it leave the page cache.
    """

    def __init__(self, source: FilesystemAdapter, algorithms: Sequence[str], *, drop_source: bool = False) -> None:
        self.source = source
        self.algorithms = tuple(algorithms)
        self.drop_source = drop_source
        self._behind: deque[tuple[list[_Held], int, int]] = deque()
        self._behind_bytes = 0
        self._lock = threading.Lock()
        self._active = 0
        self._scratch = threading.local()

    def __enter__(self) -> FanOut:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for every window still being written back and drop it from the page cache."""
        with self._lock:
            behind, self._behind, self._behind_bytes = list(self._behind), deque(), 0
        for held, offset, n in behind:
            _drop(held, offset, n)

    def copy(self, source_key: str, targets: Sequence[tuple[Target, str]], *, size: int) -> FannedCopy:
        """Copy ``source_key`` to ``key`` on every ``(store, key)`` target, into temporary files (a
        target may be a store's :class:`~storage_adapters.filesystem.DraftTree`).

        A target that cannot be written fails alone (``failed``); one that
        cannot be read back too (``unreadable``).  Raises SourceFailed when
        the source cannot be read, ChecksumMismatch when it does not hold
        ``size`` bytes, InvalidKey for a key outside a store; no temporary
        file is left behind then.
        """
        keys = [check_key(key) for _, key in targets]
        for (store, _), key in zip(targets, keys):
            store.object_path(key)  # refuses the store's temporary area
        done = FannedCopy(len(targets))
        try:
            src = open(self.source.local_file(source_key), "rb", buffering=0, opener=no_follow)
        except OSError as e:
            raise SourceFailed(self.source.translate(e, source_key)) from e
        live: list[_Target] = []
        with src:
            try:
                found = os.fstat(src.fileno()).st_size
            except OSError as e:
                raise SourceFailed(self.source.translate(e, source_key)) from e
            if found != size:
                raise ChecksumMismatch(f"the source has {found} bytes, {size} were expected",
                                       key=source_key, location=self.source.location)
            for i, ((store, _), key) in enumerate(zip(targets, keys)):
                try:
                    live.append(_Target(i, store, key))
                except PreservationError as e:
                    done.failed[i] = e
            with self._lock:
                self._active += 1
            try:
                self._copy(src, source_key, size, live, done)
            except BaseException:
                for target in live:
                    target.discard()
                raise
            finally:
                with self._lock:
                    self._active -= 1
        for target in live:
            target.close()
            done.copies[target.index] = target.store.adopt(target.path, target.key, size)
        return done

    def _copy(self, src, source_key: str, size: int, live: list[_Target], done: FannedCopy) -> None:
        streamed = size >= EARLY_WRITEBACK
        for target in live if streamed else ():
            target.held = _Held(target.file.fileno())
        reference = live[0] if live else None
        # the second digest on a helper thread only while no other file is being copied: with
        # two at once both cores are busy, and splitting each window only adds hand-offs
        # (500 files of 1 MiB to three nodes: 2.3 s alone, 2.55 s split)
        hasher = MultiHasher(self.algorithms, parallel=self._active == 1)
        same = {target.index: True for target in live[1:]}
        buf, other = compare_buffers()
        ahead = 0
        offset = 0

        def fail(target: _Target, error: PreservationError | OSError) -> None:
            nonlocal reference
            live.remove(target)
            target.discard()
            if isinstance(error, OSError):
                done.unreadable[target.index] = error
            else:
                done.failed[target.index] = error
            same.pop(target.index, None)
            if target is reference:
                reference = None

        while True:
            if size > WINDOW and offset + READ_AHEAD // 2 >= ahead:
                advise_willneed(src.fileno(), ahead, offset + READ_AHEAD)
                ahead = offset + READ_AHEAD
            n = self._copy_window(src, source_key, offset, min(WINDOW, size - offset), live, fail)
            if not live:
                return  # every target failed on its own: nothing to check
            if streamed:
                for target in live:
                    start_writeback(target.file.fileno(), offset, n)
            if reference is not None:
                try:
                    m = reference.read(offset, buf, n)
                except OSError as e:
                    fail(reference, e)
                else:
                    hasher.update(memoryview(buf)[:m])
                    for target in live:
                        if target is reference or not same[target.index]:
                            continue
                        try:
                            k = target.read(offset, other, n)
                        except OSError as e:
                            fail(target, e)
                            continue
                        if k != m or (buf != other if m == len(buf) else buf[:m] != other[:m]):
                            same[target.index] = False
            if streamed:
                if self.drop_source:
                    advise_dontneed(src.fileno(), offset, offset + n)
                self._behind_window([t.held for t in live], offset, n)
                for target in live:
                    if target.keep_fresh is not None:
                        target.keep_fresh()
            offset += n
            if offset == size:
                break
        if reference is not None:
            done.reference = reference.index
            done.digests = hasher.hexdigests()
            done.read_back = hasher.size
            done.same = same

    def _copy_window(self, src, source_key: str, offset: int, count: int, live: list[_Target], fail) -> int:
        """Copy the ``count`` bytes at ``offset`` to every live target (a source that has fewer
        now than it had raises ChecksumMismatch); returns ``count``."""
        by_hand = []
        for target in list(live):
            if target.kernel:
                try:
                    got = _kernel_copy(src, target.file, offset, count)
                except OSError as e:
                    if e.errno in WRITE_SIDE_ERRORS:
                        fail(target, target.store.translate(e, target.key))
                        continue
                    target.kernel = False  # another filesystem, an old kernel, or EIO on either side
                    by_hand.append(target)
                    continue
                if got != count:
                    raise _changed(self.source, source_key)
            else:
                by_hand.append(target)
        if by_hand:
            scratch = self._scratch_buffer()
            try:
                src.seek(offset)
                got = fill(src, scratch, count)
            except OSError as e:
                raise SourceFailed(self.source.translate(e, source_key)) from e
            if got != count:
                raise _changed(self.source, source_key)
            for target in by_hand:
                try:
                    target.write(offset, memoryview(scratch)[:count])
                except OSError as e:
                    fail(target, target.store.translate(e, target.key))
        return count

    def _scratch_buffer(self) -> bytearray:
        buf = getattr(self._scratch, "buf", None)
        if buf is None:
            buf = self._scratch.buf = bytearray(WINDOW)
        return buf

    def _behind_window(self, held: list[_Held], offset: int, n: int) -> None:
        """Queue a window just written; wait for and drop the ones now WRITEBACK_LAG behind it."""
        for h in held:
            h.refs += 1
        ready = []
        with self._lock:
            self._behind.append((held, offset, n))
            self._behind_bytes += n
            while self._behind_bytes > WRITEBACK_LAG and len(self._behind) > 1:
                entry = self._behind.popleft()
                self._behind_bytes -= entry[2]
                ready.append(entry)
        for entry in ready:
            _drop(*entry)


def _drop(held: list[_Held], offset: int, n: int) -> None:
    for h in held:
        wait_writeback(h.fd, offset, n)
        advise_dontneed(h.fd, offset, offset + n)
        h.release()


def _kernel_copy(src, dst, offset: int, count: int) -> int:
    """Copy up to ``count`` bytes at ``offset`` of ``src`` to the same offset of ``dst`` in the kernel."""
    total = 0
    while total < count:
        n = _COPY_FILE_RANGE(src.fileno(), dst.fileno(), count - total, offset + total, offset + total)
        if not n:
            break
        total += n
    return total


def _changed(source: FilesystemAdapter, key: str) -> ChecksumMismatch:
    return ChecksumMismatch("the source changed while it was copied", key=key, location=source.location)

