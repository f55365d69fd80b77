"""POSIX filesystem back end: ``file:///absolute/path``.

Writes go to ``<root>/.preserve-tmp/`` and are renamed into place only when
complete, so a half-written object is never visible under its key (a crash
leaves at most a temporary file, which ``list`` never shows and
``sweep_temporary`` removes).  Every resolved path is checked to lie under
the root after symlinks are followed.

A FIFO, socket, symbolic link or device in the store is never an object:
listed only to be reported (``ObjectInfo.irregular``), refused with
NotRegularFile when read, stat-ed or digested, and never waited on (it is
opened without blocking, and its type checked before a byte is read).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import io
import itertools
import os
import shutil
import stat
import time
import uuid
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    InvalidKey,
    NotRegularFile,
    ObjectNotFound,
    SourceFailed,
    StorageError,
    StorageFull,
    StorageUnavailable,
    UnsupportedURI,
)
from preservation.chunk_digests import ChunkHasher
from preservation.concurrency import bounded_map
from preservation.pagecache import advise_dontneed

from . import fsverify
from .base import (
    VERIFY_DIGEST,
    VERIFY_MISSING,
    VERIFY_NOT_REGULAR,
    VERIFY_SIZE,
    VERIFY_UNREADABLE,
    DigestResult,
    ObjectInfo,
    StorageAdapter,
    VerifyBatch,
    VerifyProblem,
    check_key,
)
from .fanout import FanOut
from .features import FEATURE_FLUSH, FEATURE_LOCAL_FILES, FEATURE_TEMPORARY_FILES
from .hashing import CHUNK_SIZE
from .localfiles import (
    EARLY_WRITEBACK,
    WRITE_SIDE_ERRORS,
    NotRegularPath,
    digest_path,
    no_follow,
    regular_size,
    unlink_quietly,
)

TEMP_DIR = ".preserve-tmp"
_SMALL_FILE = 1024 * 1024
_DIR_CACHE = 100_000
_VERIFY_FILES = 500
_VERIFY_BYTES = 32 * 1024 * 1024
_PROCESS_MIN_BATCHES = 4  # fewer batches than this are checked here, by threads
_PROCESS_START_BATCHES = 16  # and the processes are only started for this many (a command run once pays the start)
_PROCESS_MAX_AVERAGE = 1024 * 1024  # files this big on average are hashed as fast by threads
_SYNCFS = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
_COPY_FILE_RANGE = getattr(os, "copy_file_range", None)
_KERNEL_COPY_STEP = 64 * 1024 * 1024
_SWEPT = ".swept"  # a draft claimed by a sweep of temporary files is renamed to end so
_TEMP_PREFIX = uuid.uuid4().hex[:16]  # random per process; a counter, not a getrandom() call, per file
_temp_counter = itertools.count()
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
T = TypeVar("T")


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


class FilesystemAdapter(StorageAdapter):
    scheme = "file"
    abilities = frozenset({FEATURE_LOCAL_FILES, FEATURE_FLUSH, FEATURE_TEMPORARY_FILES})

    def __init__(self, uri: str, create: bool = True, fsync: bool | None = None) -> None:
        super().__init__(uri)
        parts = urlsplit(uri)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise UnsupportedURI("use file:///absolute/path", uri=uri)
        path = unquote(parts.path)
        if not os.path.isabs(path):
            raise UnsupportedURI("the path must be absolute (file:///srv/preserve/node1)", uri=uri)
        options = parse_qs(parts.query)
        if fsync is None:
            fsync = options.get("fsync", ["1"])[0] not in ("0", "false", "no")
        self.fsync = fsync
        self.root = os.path.realpath(path)
        if create:
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as e:
                raise self.translate(e, "") from e
        if not os.path.isdir(self.root):
            raise StorageUnavailable("the root directory does not exist", location=self.root)
        self._root_prefix = self.root.rstrip(os.sep) + os.sep
        self._dirty = False
        self._dirs: dict[str, str] = {}  # directory -> resolved path, checked to be inside the root
        self._made: set[str] = set()  # directories this adapter has created or found

    @property
    def location(self) -> str:
        return f"file://{self.root}"

    # --- paths -------------------------------------------------------------

    def object_path(self, key: str) -> str:
        """Where ``key``'s file goes under the root, its links not resolved; refuses the temporary area."""
        if key.split("/", 1)[0] == TEMP_DIR:
            raise InvalidKey(f"{TEMP_DIR}/ is reserved for temporary files", key=key)
        return os.path.join(self.root, *key.split("/"))

    def _check_inside(self, path: str, key: str) -> str:
        """``path`` with every symbolic link resolved, refused unless it lies under the root."""
        real = os.path.realpath(path)
        if not (real + os.sep).startswith(self._root_prefix):
            raise InvalidKey("the key resolves outside the storage root", key=key)
        return real

    def _real_dir(self, directory: str, key: str) -> str:
        """The resolved ``directory``, checked to be under the root; cached, since every file
        of a bag shares a few directories and resolving costs a dozen system calls."""
        real = self._dirs.get(directory)
        if real is None:
            real = self._check_inside(directory, key)
            if len(self._dirs) >= _DIR_CACHE:
                self._dirs.clear()
            self._dirs[directory] = real
        return real

    def _file(self, key: str) -> str:
        """Where ``key``'s file is: its directory resolved and checked; the file itself is
        opened without following a link (see ``no_follow``)."""
        directory, name = os.path.split(self.object_path(key))
        return os.path.join(self._real_dir(directory, key), name)

    def _forget_dirs(self) -> None:
        self._dirs.clear()
        self._made.clear()

    def translate(self, e: OSError, key: str) -> StorageError:
        """The coded error for an OSError on ``key`` here."""
        if isinstance(e, NotRegularPath):
            return NotRegularFile(f"the object is a {e.kind}, not a file; refused", key=key, kind=e.kind)
        if e.errno == errno.ELOOP:
            return NotRegularFile("the object is a symbolic link; refused", key=key, kind="symbolic link")
        if e.errno == errno.ENXIO:
            return NotRegularFile("the object is a socket, not a file; refused", key=key, kind="socket")
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            return ObjectNotFound(key=key, location=self.location)
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return AccessDenied(f"{e.strerror} for {key!r}: check the permissions of {self.root}", location=self.location)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(f"{e.strerror} while writing {key!r}", location=self.location)
        return StorageError(f"{e.strerror or e} on {key!r} in {self.location}")

    # --- interface ---------------------------------------------------------

    def _stat(self, key: str) -> ObjectInfo:
        path = self._file(key)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError as e:
            raise self.translate(e, key) from e
        kind = fsverify.irregular_kind(st.st_mode)
        if kind == "directory":
            raise ObjectNotFound(key=key, location=self.location)
        if kind is not None:
            raise self.translate(NotRegularPath(kind), key)
        return ObjectInfo(key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        """The inventory's walk, with one ``lstat`` per file for its size, time and type."""
        start = self._listing_start(prefix)
        if start is None:
            return
        real, cut = start[0], len(start[1])
        for key, _ in self._names(*start):
            try:
                st = os.stat(os.path.join(real, key[cut:]), follow_symlinks=False)
            except OSError:
                continue  # gone since it was listed
            yield ObjectInfo(key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, timezone.utc),
                             irregular=fsverify.irregular_kind(st.st_mode))

    def _listing_start(self, prefix: str) -> tuple[str, str, str, bool] | None:
        """Where a listing of ``prefix`` starts: the resolved directory, the key prefix of its
        entries, the start their names must have, and whether it is the root; None for nothing
        (the temporary area, or a directory that resolves outside the root)."""
        if prefix.split("/", 1)[0] == TEMP_DIR:
            return None
        head, _, tail = prefix.rpartition("/")
        start = os.path.join(self.root, *head.split("/")) if head else self.root
        try:
            real = self._check_inside(start, prefix)
        except InvalidKey:
            return None
        return real, head + "/" if head else "", tail, not head

    def inventory_local(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        """``inventory`` here, with a checked ``prefix``: names only, no stat per file (the
        content check finds a wrong size)."""
        start = self._listing_start(prefix)
        if start is not None:
            yield from self._names(*start)

    def _names(self, directory: str, key_prefix: str, name_prefix: str, top: bool) -> Iterator[tuple[str, None]]:
        # depth first with a stack of directories: one generator frame however deep the tree,
        # and the files between two subdirectories handed on as one run
        stack = [(directory, key_prefix, iter(self._sorted_names(directory, key_prefix, name_prefix, top)))]
        while stack:
            path, prefix, names = stack[-1]
            run = []
            inner = None
            for name in names:
                if name[-1] == "/":
                    inner = name
                    break
                run.append(prefix + name)
            if run:
                yield from zip(run, itertools.repeat(None))
            if inner is None:
                stack.pop()
                continue
            inner_path = os.path.join(path, inner[:-1])
            stack.append((inner_path, prefix + inner, iter(self._sorted_names(inner_path, prefix + inner, "", False))))

    def _sorted_names(self, directory: str, key_prefix: str, name_prefix: str, top: bool) -> list[str]:
        """The names in ``directory`` in key order, a directory's with '/' after it (so it sorts
        as its keys do); no stat: the kind comes with the directory entry."""
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self.translate(e, key_prefix) from e
        try:
            names = [e.name + "/" if e.is_dir(follow_symlinks=False) else e.name for e in entries]
        except OSError:  # an entry whose kind the listing did not give and that is gone now
            names = [e.name + "/" if _is_dir(e) else e.name for e in entries]
        if top or name_prefix:
            names = [n for n in names if n.startswith(name_prefix) and not (top and n.rstrip("/") == TEMP_DIR)]
        names.sort()
        return names

    def _read(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        path = self._file(key)
        try:
            f = open(path, "rb", buffering=0, opener=no_follow)
        except OSError as e:
            raise self.translate(e, key) from e
        try:
            regular_size(f.fileno())
        except OSError as e:
            f.close()
            raise self.translate(e, key) from e
        return self._read_file(f, key, offset, length)

    def _read_file(self, f, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        with f:
            try:
                if offset:
                    f.seek(offset)
                remaining = length
                while remaining is None or remaining > 0:
                    n = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                    chunk = f.read(n)
                    if not chunk:
                        return
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk
            except OSError as e:
                raise self.translate(e, key) from e

    def _write(self, key: str, chunks: Iterable[bytes], size: int | None) -> None:
        tmp = self._temporary()
        try:
            with open(tmp, "wb", buffering=0) as f:
                source = iter(chunks)
                while True:
                    try:
                        chunk = next(source)
                    except StopIteration:
                        break
                    except OSError as e:
                        raise SourceFailed(e) from e
                    view = memoryview(chunk)
                    while view:
                        written = f.write(view)
                        view = view[written:]
                if self.fsync and (size or 0) > _SMALL_FILE:
                    os.fsync(f.fileno())
            self._commit(tmp, key)
        except SourceFailed as e:
            unlink_quietly(tmp)
            if isinstance(e.error, OSError):  # the chunks' own read failed: theirs to report, untranslated
                raise e.error from None
            raise
        except OSError as e:
            unlink_quietly(tmp)
            raise self.translate(e, key) from e
        except BaseException:
            unlink_quietly(tmp)
            raise

    def copy_local(
        self, source: "FilesystemAdapter", source_key: str, key: str, *, size: int, check: Callable[[str], T]
    ) -> T:
        """Copy ``source_key`` of another local store into ``key``, in the kernel where it can.

        ``check(path)`` is called with the finished temporary file and
        must re-read it (raising, e.g. ChecksumMismatch, when it is wrong)
        before the object becomes visible; its result is returned.  A failure
        to read the source raises :class:`SourceFailed`, so a caller can tell
        it from this store's own failures.
        """
        prepared = self.prepare_copy(source, source_key, key, size=size)
        try:
            result = check(prepared.path)
            prepared.commit()
        except BaseException:
            prepared.discard()
            raise
        return result

    def prepare_copy(self, source: "FilesystemAdapter", source_key: str, key: str, *, size: int) -> "PreparedCopy":
        """Copy ``source_key`` of another local store into a temporary file; its writeback starts at once.

        Nothing is visible under ``key`` until the caller has re-read the
        copy and calls :meth:`PreparedCopy.commit` (which makes it durable
        first); :meth:`PreparedCopy.discard` removes it.  A source of another size raises ChecksumMismatch; a
        failure to read the source raises :class:`SourceFailed`.
        """
        key = check_key(key)
        source_key = check_key(source_key)
        tmp = self._temporary()
        try:
            try:
                src = open(source._file(source_key), "rb", buffering=0, opener=no_follow)
            except OSError as e:
                raise SourceFailed(source.translate(e, source_key)) from e
            try:
                regular_size(src.fileno())
            except OSError as e:
                src.close()
                raise SourceFailed(source.translate(e, source_key)) from e
            with src, open(tmp, "wb", buffering=0) as dst:
                try:
                    copied = _copy_file_data(src, dst)
                except SourceFailed as e:
                    raise SourceFailed(source.translate(e.error, source_key)) from e.error
                if copied != size:
                    raise ChecksumMismatch(f"the source has {copied} bytes, {size} were expected",
                                           key=source_key, location=source.location)
                if copied >= EARLY_WRITEBACK:
                    advise_dontneed(dst.fileno())  # dirty pages: starts their writeback, does not wait
        except OSError as e:
            unlink_quietly(tmp)
            raise self.translate(e, key) from e
        except BaseException:
            unlink_quietly(tmp)
            raise
        return PreparedCopy(self, tmp, key, size)

    def _temporary(self) -> str:
        """A new temporary path under the root (its directory made again if a disk swap removed it)."""
        self._make_temporary_dir()
        return self._temporary_path()

    def _temporary_path(self) -> str:
        """A new temporary path under the root, its directory not checked (see ``_make_temporary_dir``)."""
        return os.path.join(self.root, TEMP_DIR, f"{_TEMP_PREFIX}-{os.getpid()}-{next(_temp_counter)}.part")

    def create_temporary(self, key: str) -> tuple[str, io.FileIO]:
        """A new temporary file for a copy of ``key``, open unbuffered to write and read back; raises
        the store's error (StorageFull …)."""
        path = self._temporary_path()
        try:
            try:
                return path, open(path, "x+b", buffering=0)
            except FileNotFoundError:  # the first copy to this store, or a disk swap removed the directory
                self._make_temporary_dir()
                return path, open(path, "x+b", buffering=0)
        except OSError as e:
            raise self.translate(e, key) from e

    def draft(self, prefix: str) -> "DraftTree":
        """A new tree of objects under ``prefix``, visible only once published whole (:class:`DraftTree`)."""
        return DraftTree(self, prefix)

    def _make_temporary_dir(self) -> None:
        """Make the temporary area if it is gone; refuse it unless it is a directory, not a link
        (the bytes of every write would otherwise land wherever the link leads)."""
        path = os.path.join(self.root, TEMP_DIR)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
            mode = os.lstat(path).st_mode
        except OSError as e:
            raise self.translate(e, TEMP_DIR) from e
        if not stat.S_ISDIR(mode):
            raise StorageError(f"{path} is not a directory (a symbolic link?): remove it, then write again")

    def _commit(self, tmp: str, key: str) -> None:
        """Rename the finished temporary file ``tmp`` into place as ``key`` (atomically)."""
        final = self.object_path(key)
        parent, name = os.path.split(final)
        if parent not in self._made:
            self._make_parents(key)
            self._made.add(parent)
        target = os.path.join(self._real_dir(parent, key), name)
        if os.path.isdir(target) and not os.path.islink(target):
            raise StorageError(f"{key!r} is a directory in {self.location}; refusing to replace it")
        try:
            os.replace(tmp, target)
        except FileNotFoundError:
            # the directory went away (a delete emptied it) since it was cached
            self._forget_dirs()
            self._make_parents(key)
            os.replace(tmp, os.path.join(self._real_dir(parent, key), name))
        self._dirty = True

    def _make_parents(self, key: str) -> None:
        """Make the directories of ``key`` under the root, one level at a time, never through a link.

        Each level is opened relative to the one above without following a
        link, and made there only when it is absent, so a link on the way is
        refused before anything is created.  (``os.makedirs`` follows links:
        with ``dir`` a link to a directory outside the root, writing
        ``dir/a/b/f`` made ``a/b`` out there before the write was refused.)
        Raises InvalidKey for a link or a file where a directory should be.
        """
        fd = os.open(self.root, _OPEN_DIRECTORY)
        try:
            for name in key.split("/")[:-1]:
                try:
                    inner = os.open(name, _OPEN_DIRECTORY, dir_fd=fd)
                except FileNotFoundError:
                    with contextlib.suppress(FileExistsError):  # another writer made it just now
                        os.mkdir(name, dir_fd=fd)
                    inner = os.open(name, _OPEN_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidKey("a directory of the key is a symbolic link or a file; refused", key=key) from e
            raise
        finally:
            os.close(fd)

    def _delete(self, key: str) -> None:
        path = self._file(key)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                raise ObjectNotFound(key=key, location=self.location)
            os.unlink(path)
        except OSError as e:
            raise self.translate(e, key) from e
        parent = os.path.dirname(path)
        while parent != self.root and parent.startswith(self._root_prefix):
            try:
                os.rmdir(parent)
            except OSError:
                break
            self._forget_dirs()
            parent = os.path.dirname(parent)

    def _digest(self, key: str, algorithms: Sequence[str], chunks: bool = False) -> DigestResult:
        chunker = ChunkHasher() if chunks else None
        try:
            size, digests = digest_path(self._file(key), algorithms, chunker)
        except OSError as e:
            raise self.translate(e, key) from e
        return DigestResult(key=key, size=size, digests=digests, bytes_read=size,
                            chunks=None if chunker is None else chunker.digests())

    def verify_local(
        self, prefix: str, rows: Iterable[tuple[str, int, tuple[str, ...]]], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        """``verify_many`` here, with a checked ``prefix`` and canonical ``algorithms``: files
        checked by :mod:`fsverify`, in batches.

        Many small files go to worker processes (per-file work holds the
        interpreter lock, so threads would take turns); big files, or a few
        batches of anything, go to threads (hashlib releases the lock while it
        hashes a big buffer, and no process needs starting).
        """
        batches = _verify_batches(rows)
        enough = _PROCESS_MIN_BATCHES if fsverify.pool_running() else _PROCESS_START_BATCHES
        ahead = list(itertools.islice(batches, enough))
        if not ahead:
            return
        files = sum(len(b) for b in ahead)
        average = sum(row[1] for b in ahead for row in b) / files
        if workers > 1 and len(ahead) == enough and average < _PROCESS_MAX_AVERAGE:
            yield from self._verify_in_processes(prefix, itertools.chain(ahead, batches), algorithms, workers)
            return

        def verify(batch: list) -> VerifyBatch:
            return self._verified(prefix, fsverify.verify_batch(self.root, prefix, batch, algorithms))

        yield from bounded_map(verify, itertools.chain(ahead, batches), workers=workers, window=workers * 2)

    def _verify_in_processes(
        self, prefix: str, batches: Iterator[list], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        """``workers`` checker processes take batches; this process, which also reads the
        catalog and the listing, checks a batch itself whenever they are all busy, so no
        core waits while this one still has batches to hand out."""
        window = 2 * workers
        pending: collections.deque = collections.deque()
        pool = fsverify.process_pool(workers)

        def here(batch: list) -> VerifyBatch:
            return self._verified(prefix, fsverify.verify_batch(self.root, prefix, batch, algorithms))

        def lost() -> None:
            # a worker died (killed, out of memory): this process checks the rest itself
            nonlocal pool
            pool = None
            fsverify.discard_pool()

        def send(batch: list) -> None:
            if pool is not None:
                try:
                    pending.append((batch, pool.submit(fsverify.verify_batch, self.root, prefix, batch, algorithms)))
                    return
                except (BrokenProcessPool, OSError, RuntimeError):  # a worker died, or none could start
                    lost()
            pending.append((batch, None))  # checked here when its turn comes

        def collected(batch: list, future) -> VerifyBatch:
            if future is not None and pool is not None:
                try:
                    return self._verified(prefix, future.result())
                except BrokenProcessPool:
                    lost()
                except CancelledError:  # another audit in this process dropped the pool: not ours to drop
                    return here(batch)
            return here(batch)

        try:
            for batch in batches:
                if pool is None:
                    yield here(batch)
                elif len(pending) < window:
                    send(batch)
                elif pending[0][1] is None or pending[0][1].done():
                    yield collected(*pending.popleft())
                    send(batch)
                else:
                    yield here(batch)
            while pending:
                yield collected(*pending.popleft())
        finally:
            for _, future in pending:
                if future is not None:
                    future.cancel()

    def _verified(self, prefix: str, outcome: tuple[int, int, list, dict[str, bytes]]) -> VerifyBatch:
        checked, bytes_read, found, chunks = outcome
        problems = []
        for path, kind, detail in found:
            key = prefix + path
            if kind == fsverify.MISSING:
                problem = VerifyProblem(path, VERIFY_MISSING, error=ObjectNotFound(key=key, location=self.location))
            elif kind == fsverify.REFUSED:
                problem = VerifyProblem(path, VERIFY_UNREADABLE, error=InvalidKey(detail[0], key=key))
            elif kind == fsverify.UNREADABLE:
                problem = VerifyProblem(path, VERIFY_UNREADABLE, error=self.translate(OSError(*detail), key))
            elif kind == fsverify.SIZE:
                problem = VerifyProblem(path, VERIFY_SIZE, actual=detail[0], expected=detail[1])
            elif kind == fsverify.NOT_REGULAR:
                problem = VerifyProblem(path, VERIFY_NOT_REGULAR, error=self.translate(NotRegularPath(detail[0]), key))
            else:
                checked += 1
                problem = VerifyProblem(path, VERIFY_DIGEST, algorithm=detail[0], actual=detail[1], expected=detail[2])
            problems.append(problem)
        return VerifyBatch(checked=checked, bytes_read=bytes_read, problems=problems, chunks=chunks)

    def fan_out(self, algorithms: Sequence[str], *, drop_source: bool = False) -> FanOut:
        """A one-pass copier from this store to several local stores (see :mod:`storage_adapters.fanout`)."""
        return FanOut(self, algorithms, drop_source=drop_source)

    def adopt(self, path: str, key: str, size: int) -> "PreparedCopy":
        """The finished temporary file ``path`` of this store, to become ``key``'s object on commit."""
        return PreparedCopy(self, path, key, size)

    def local_file(self, key: str) -> str:
        """The checked path of ``key``'s file, for local comparisons (open it with ``no_follow``)."""
        return self._file(check_key(key))

    def flush(self) -> None:
        """Make every completed write durable (one sync instead of one per file)."""
        if self.fsync and self._dirty:
            try:
                _sync_filesystem(self.root)
            except OSError as e:
                raise self.translate(e, "(every write since the last flush)") from e
        self._dirty = False

    def sweep_temporary(self, older_than_seconds: float = 3600.0) -> int:
        """Remove temporary files and drafts left by interrupted writes; returns how many were taken.

        A draft counts once it is claimed (renamed aside: it can never be published); a writer that has
        not noticed yet may still be making files in it, so what of it cannot be removed now is left, like
        the claimed draft of a sweep that died, to a later sweep, which removes and counts it whatever its
        age."""
        tmp_dir = os.path.join(self.root, TEMP_DIR)
        removed = 0
        cutoff = time.time() - older_than_seconds
        try:
            entries = list(os.scandir(tmp_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                claimed = entry.name.endswith(_SWEPT)  # by a sweep that did not finish
                if claimed or entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    if entry.is_dir(follow_symlinks=False):  # a draft never published (DraftTree)
                        path = entry.path
                        if not claimed:  # claimed first, by a rename no writer makes: a draft's
                            # publish and this sweep cannot both win, and the draft's writer sees it
                            path = f"{entry.path}.{uuid.uuid4().hex[:12]}{_SWEPT}"
                            os.rename(entry.path, path)
                            removed += 1
                            shutil.rmtree(path)
                            continue
                        shutil.rmtree(path)
                        removed += 1
                    else:
                        os.unlink(entry.path)
                        removed += 1
            except OSError:
                continue
        return removed


def _verify_batches(rows: Iterable[tuple[str, int, tuple[str, ...]]]) -> Iterator[list]:
    """Rows in batches of at most ``_VERIFY_FILES`` files or about ``_VERIFY_BYTES`` bytes: small
    files travel many to a task (the hand-off costs more than one file), big ones one or a few."""
    rows = iter(rows)
    while batch := list(itertools.islice(rows, _VERIFY_FILES)):
        if sum(row[1] for row in batch) < _VERIFY_BYTES:
            yield batch
            continue
        part: list = []
        size = 0
        for row in batch:
            part.append(row)
            size += row[1]
            if size >= _VERIFY_BYTES:
                yield part
                part, size = [], 0
        if part:
            yield part


def _sync_filesystem(root: str) -> None:
    """Flush the filesystem holding ``root`` (syncfs), not every filesystem of the host.  Raises
    the OSError syncfs reports (EIO, ENOSPC: a writeback that failed, since Linux 5.8): the bytes
    are not known to be on stable storage.  Only where there is no syncfs is every filesystem
    synced (os.sync, which reports nothing)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS is None:
            os.sync()
        elif _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), root)
    finally:
        os.close(fd)


class PreparedCopy:
    """A finished copy in a temporary file of a filesystem store, not yet visible under its key."""

    def __init__(self, store: FilesystemAdapter, path: str, key: str, size: int) -> None:
        self.store = store
        self.path = path
        self.key = key
        self.size = size

    def commit(self) -> None:
        """Make a large copy durable (its writeback began when it was written), rename it into
        place, and let its pages leave the page cache: a preservation copy is written to be
        kept, not read again soon.  Small copies are made durable by the store's ``flush``;
        a copy of a megabyte or so is still advised out of the cache here (its writeback,
        started when it was written, has usually finished by now), so that the next copies
        reuse its pages: on a virtual machine fresh pages cost the kernel far more (500 files
        of 1 MiB to three nodes: 2.8 s of kernel time before, 2.0 s after)."""
        fd = None
        try:
            if self.size >= EARLY_WRITEBACK:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                if self.store.fsync and self.size > _SMALL_FILE:
                    os.fsync(fd)
            self.store._commit(self.path, self.key)
            if fd is not None:
                advise_dontneed(fd)
        except OSError as e:
            self.discard()
            raise self.store.translate(e, self.key) from e
        except BaseException:
            self.discard()
            raise
        finally:
            if fd is not None:
                os.close(fd)

    def discard(self) -> None:
        unlink_quietly(self.path)


DRAFT_TOUCH_SECONDS = 60.0
"""A draft being written has its directory's time refreshed this often (as files are made and
committed, and at each window of a long file), so that a sweep of interrupted writes (hours old)
never takes one still in use; a draft's commit checks it is intact this often too."""


class DraftTree:
    """New objects under one prefix, written into a directory of the temporary area laid out as
    they will lie under the prefix, and made visible together by one rename (:meth:`publish`).

    A fan-out writes and reads back each file in place (:meth:`create_temporary`, :meth:`adopt`:
    the same hands as the store's own, but a file's commit moves nothing).  Until the tree is
    published nothing of it is visible under a key, so a crash leaves only the directory, which
    ``sweep_temporary`` removes (renamed aside first, so a sweep and a publish never both win; the
    draft's own writer then fails, and nothing is made under the draft's name again: files are
    made through the draft directory's descriptor).  Publishing first syncs the filesystem, so every byte of every
    file is on stable storage before its name appears; the store's next ``flush`` makes the rename
    itself durable.  One rename per tree instead of one per file: each rename out of the temporary
    area changes two directories in the filesystem's journal.

    The prefix must not hold objects yet (a new package's): :meth:`publish` refuses a non-empty one.
    """

    def __init__(self, store: FilesystemAdapter, prefix: str) -> None:
        name = check_key(prefix.removesuffix("/"))
        if not prefix.endswith("/"):
            raise InvalidKey("a draft is written under a prefix ending in '/'", key=prefix)
        self.store = store
        self.prefix = prefix
        self.fsync = store.fsync
        self._final = store.object_path(name)  # refuses the temporary area
        self._name = name
        self.root = store._temporary()
        try:
            os.mkdir(self.root)
        except OSError as e:
            raise store.translate(e, prefix) from e
        try:  # held by descriptor: every file and directory of the draft is made in this directory
            self._fd = os.open(self.root, _OPEN_DIRECTORY)
            st = os.fstat(self._fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.rmdir(self.root)
            raise store.translate(e, prefix) from e
        self._identity = (st.st_dev, st.st_ino)
        self._touched = self._checked = time.monotonic()
        self._synced = False
        self.published = False

    def object_path(self, key: str) -> str:
        """Where ``key``'s file lies in the draft; refuses a key outside the prefix."""
        if not key.startswith(self.prefix) or key == self.prefix:
            raise InvalidKey(f"the key is not under the draft's prefix {self.prefix!r}", key=key)
        return os.path.join(self.root, *key[len(self.prefix):].split("/"))

    def translate(self, e: OSError, key: str) -> StorageError:
        """The store's error, or :meth:`_gone`'s when a file is missing because the draft is."""
        if e.errno == errno.ENOENT and not self._intact():
            return self._gone(key)
        return self.store.translate(e, key)

    def create_temporary(self, key: str) -> tuple[str, io.FileIO]:
        """The new file of ``key`` in the draft (its directories made), open unbuffered to write and
        read back; raises the store's error.  Every directory and file is made relative to the
        draft's own descriptor, never by its name: once the draft is removed (a sweep of temporary
        files) nothing can be made in it, and no directory of that name is ever made again.  Every
        directory in the draft was made here, and the file is created exclusively, so no link can
        lead the write elsewhere."""
        path = self.object_path(key)
        relative = key[len(self.prefix):]

        def in_draft(_: str, flags: int) -> int:
            return os.open(relative, flags | os.O_NOFOLLOW, 0o666, dir_fd=self._fd)

        try:
            try:
                f = open(path, "x+b", buffering=0, opener=in_draft)
            except FileNotFoundError:
                parts = relative.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    with contextlib.suppress(FileExistsError):
                        os.mkdir("/".join(parts[:depth]), dir_fd=self._fd)
                f = open(path, "x+b", buffering=0, opener=in_draft)
        except OSError as e:
            raise self.translate(e, key) from e
        self.keep_fresh()
        return path, f

    def keep_fresh(self) -> None:
        """Refresh the draft directory's time when :data:`DRAFT_TOUCH_SECONDS` have passed since it
        was last refreshed: a sweep of temporary files takes only drafts left alone for hours.  Called
        as each file is made and committed, and by a fan-out at each window of a file being copied
        (writing deeper in the tree never changes the draft directory's own time)."""
        now = time.monotonic()
        if now - self._touched >= DRAFT_TOUCH_SECONDS:
            self._touched = now
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def _intact(self) -> bool:
        """Whether the draft still lies where it was made: the same directory (device and inode)
        under its name in the temporary area, not removed or claimed by a sweep."""
        try:
            st = os.stat(self.root, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def _gone(self, key: str) -> StorageError:
        return StorageError(f"the draft of {self.prefix!r} in {self.store.location} was removed while it was "
                            f"being written (a sweep of temporary files?): the copy of {key!r} is given up",
                            key=key, location=self.store.location)

    def _check(self, key: str) -> None:
        """Raise :meth:`_gone`'s error unless the draft is :meth:`_intact`."""
        self._checked = time.monotonic()
        if not self._intact():
            raise self._gone(key)

    def adopt(self, path: str, key: str, size: int) -> PreparedCopy:
        """The finished file ``path`` of the draft: its commit only makes a big one durable."""
        return PreparedCopy(self, path, key, size)

    def _commit(self, tmp: str, key: str) -> None:
        """Nothing to move: the file already lies where it will be once the tree is published.  The
        draft is kept fresh, and checked to be intact when it was not for a while: a copy written into
        a draft that a sweep took fails here rather than at :meth:`publish`."""
        self.keep_fresh()
        if time.monotonic() - self._checked >= DRAFT_TOUCH_SECONDS:
            self._check(key)

    def sync(self) -> None:
        """Put every file of the draft on stable storage (the filesystem synced: several drafts on one
        filesystem are best all synced before any is published, so one sync finds the others done).
        Raises StorageError when the draft is gone (:meth:`_check`) or the sync failed."""
        self._check(self.prefix)
        if self.fsync:
            try:
                _sync_filesystem(self.root)
            except OSError as e:
                raise self.translate(e, self.prefix) from e
        self._synced = True

    def publish(self) -> None:
        """Rename the draft onto the prefix, synced first (:meth:`sync`) unless it was; the store's
        ``flush`` makes the rename durable.  Raises StorageError when the prefix holds objects
        already or the draft is gone (removed or claimed by a sweep: whichever of the sweep's rename
        and this one comes first wins, the other fails), InvalidKey when a directory on its way is
        a link.  The draft's directory is never made again here: a draft that is gone is not
        published, whatever was written since."""
        store = self.store
        if not self._synced:
            self.sync()
        self._check(self.prefix)
        parent, name = os.path.split(self._final)
        if parent != store.root and parent not in store._made:
            store._make_parents(self._name)
            store._made.add(parent)
        target = os.path.join(store._real_dir(parent, self._name), name)
        try:
            os.rename(self.root, target)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise StorageError(f"{self.prefix!r} holds objects already in {store.location}: "
                                   "its copy is finished file by file") from e
            raise self.translate(e, self.prefix) from e
        self.published = True
        store._dirty = True
        self._close()

    def discard(self) -> None:
        """Remove the draft unless it was published (a copy that failed, or was given up)."""
        self._close()
        if not self.published:
            shutil.rmtree(self.root, ignore_errors=True)

    def _close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _copy_file_data(src, dst) -> int:
    """Copy all of ``src`` into ``dst`` (both open files); returns the byte count.

    Between two real files this is ``copy_file_range`` (the bytes never
    enter user space).  When the kernel cannot (another filesystem, an old
    kernel) or an error could be either side's (EIO), the copy is redone
    through user space, where a failed read raises SourceFailed (with the OSError) and a
    failed write raises the store's own error.
    """
    if _COPY_FILE_RANGE is not None and type(src) is io.FileIO and type(dst) is io.FileIO:
        total = 0
        try:
            while True:
                n = _COPY_FILE_RANGE(src.fileno(), dst.fileno(), _KERNEL_COPY_STEP)
                if not n:
                    return total
                total += n
        except OSError as e:
            if e.errno in WRITE_SIDE_ERRORS:
                raise
            src.seek(0)
            dst.seek(0)
            dst.truncate()
    total = 0
    buf = bytearray(min(CHUNK_SIZE, 1024 * 1024))
    view = memoryview(buf)
    while True:
        try:
            n = src.readinto(buf)
        except OSError as e:
            raise SourceFailed(e) from e
        if not n:
            return total
        chunk = view[:n]
        while chunk:
            chunk = chunk[dst.write(chunk):]
        total += n


