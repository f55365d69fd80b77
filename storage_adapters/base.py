"""The storage interface every node back end implements.

Public methods validate the key once, here, before any I/O, then call the
``_``-prefixed method that a back end implements.  A back end never sees an
unchecked key.

What callers see is eleven methods, one way to do each thing: ``stat``,
``list``, ``read``, ``write``, ``delete`` and ``close``; the audit's
``inventory`` (names, with sizes only where they are free) and
``verify_many``; ``digest_many`` (one key is a one-element call);
``challenge``; and ``copy_from`` (server-side copy, where both ends allow it).
Each has a default here that a back end may make faster.  Conveniences over
them are functions, not methods: :func:`exists` and :func:`read_all`.

Optional abilities (a local path for kernel copies, digests on the node,
server-side copy, object lock, deferred syncs, network counters, sweeping
interrupted writes) are found through ``features``, asked for by name
however the adapter is wrapped, never from an adapter's class (see
:mod:`storage_adapters.features`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar, Container, Iterable, Iterator, Mapping, Sequence, Sized, TypeVar

from preservation.chunk_digests import ChunkHasher
from preservation.concurrency import bounded_map
from preservation.errors import (
    ChecksumMismatch,
    InvalidKey,
    NotRegularFile,
    ObjectNotFound,
    PreservationError,
    StorageError,
)

from .features import Features
from .hashing import CHUNK_SIZE, MultiHasher, check_algorithms, files_in_parallel
from .signing import possession_proof

MAX_KEY_BYTES = 1024
DIGEST_BATCH = 16
VERIFY_BATCH = 2000
MAX_SEGMENT_BYTES = 255

# C0 controls, DEL, and lone surrogates (a name that was not valid UTF-8, kept by surrogateescape)
_BAD_CHARACTER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_BAD_SEGMENT = re.compile(r"(?:^|/)(\.{0,2})(?=/|$)")

T = TypeVar("T")

@dataclass(frozen=True)
class ObjectInfo:
    """One listed entry.  ``irregular`` names what it is when it is not a regular file
    ('fifo', 'socket', 'symbolic link', 'character device' ...): such an entry is never
    an object, and ``list`` gives it only to a caller that asks in order to report it."""

    key: str
    size: int
    modified: datetime | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)
    irregular: str | None = None


@dataclass(frozen=True)
class WriteResult:
    key: str
    size: int
    digests: Mapping[str, str]


@dataclass(frozen=True)
class DigestResult:
    """Outcome of digesting one key: digests, or the error that stopped it; ``chunks``: its chunk
    digests (:mod:`preservation.chunk_digests`) when they were asked for and the back end read it whole here."""

    key: str
    size: int | None
    digests: Mapping[str, str] | None
    error: PreservationError | None = None
    bytes_read: int = 0
    chunks: bytes | None = None


VERIFY_MISSING = "missing"
VERIFY_UNREADABLE = "unreadable"
VERIFY_SIZE = "size"
VERIFY_DIGEST = "digest"
VERIFY_NOT_REGULAR = "not_regular"


@dataclass(frozen=True)
class VerifyProblem:
    """One file that did not check out in ``verify_many``.

    ``kind`` is ``missing``, ``unreadable`` (``error`` says why), ``size``
    (``actual`` and ``expected`` are sizes), ``digest`` (``algorithm``
    differs; ``actual`` and ``expected`` are its hex digests) or
    ``not_regular`` (a FIFO, socket, link or device is there; ``error`` is
    the NotRegularFile naming it).
    """

    path: str
    kind: str
    error: PreservationError | None = None
    algorithm: str | None = None
    actual: int | str | None = None
    expected: int | str | None = None


@dataclass
class VerifyBatch:
    """What ``verify_many`` found in one batch of files.

    ``checked`` counts the files read in full at the expected size (their
    digests compared, matching or not); ``bytes_read`` every byte read;
    ``chunks`` the chunk digests (``path: n × 32 bytes``) of the files whose
    row asked for them and that matched, computed in the read that checked them.
    """

    checked: int = 0
    bytes_read: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)
    chunks: dict[str, bytes] = field(default_factory=dict)


def check_key(key: object, *, allow_prefix: bool = False, allow_undecodable: bool = False) -> str:
    """Return ``key`` if it is a safe relative object key, else raise InvalidKey.

    A key is a '/'-separated relative path of UTF-8 segments.  Refused: empty
    keys, absolute paths, drive letters, backslashes, '.' and '..' segments,
    empty segments, NUL and other control characters, names that cannot be
    encoded as UTF-8 and over-long names.  With ``allow_prefix`` the empty
    string and a trailing '/' are accepted (listing prefixes).  With
    ``allow_undecodable`` a name that was not UTF-8 (surrogate escapes, as a
    local listing gives it) is accepted: only to remove such a stray file.
    """
    if not isinstance(key, str):
        raise InvalidKey("a key must be a string", key=key)
    if key == "" and allow_prefix:
        return key
    if key == "":
        raise InvalidKey("the key is empty", key=key)
    if key.startswith("/") or key.startswith("~"):
        raise InvalidKey("absolute paths are not allowed", key=key)
    if "\\" in key:
        raise InvalidKey("backslashes are not allowed in keys", key=key)
    if len(key) >= 2 and key[1] == ":" and key[0].isalpha():
        raise InvalidKey("drive letters are not allowed", key=key)
    bad = _BAD_CHARACTER.search(key)
    if bad is not None:
        code = ord(bad.group())
        if code < 0xD800:
            raise InvalidKey(f"control character U+{code:04X} is not allowed", key=key)
        if not allow_undecodable:
            raise InvalidKey("the name is not valid UTF-8", key=key)
        if _CONTROL.search(key) is not None:
            raise InvalidKey("control characters are not allowed", key=key)
    try:
        encoded = key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:  # a surrogate that no undecodable byte becomes
        raise InvalidKey("the name is neither UTF-8 nor bytes a listing could give", key=key) from e
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"the key is longer than {MAX_KEY_BYTES} bytes", key=key)
    body = key[:-1] if (allow_prefix and key.endswith("/")) else key
    bad = _BAD_SEGMENT.search(body)
    if bad is not None:
        raise InvalidKey(f"segment {bad.group(1)!r} is not allowed", key=key)
    if len(encoded) > MAX_SEGMENT_BYTES:  # only then can one name be too long
        for segment in body.split("/"):
            if len(segment.encode("utf-8", "surrogateescape")) > MAX_SEGMENT_BYTES:
                raise InvalidKey(f"a name is longer than {MAX_SEGMENT_BYTES} bytes", key=key)
    return key


def iter_chunks(data: bytes | IO[bytes] | Iterable[bytes], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Turn bytes, a binary file object or an iterable of chunks into chunks."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    read = getattr(data, "read", None)
    if read is not None:
        while True:
            chunk = read(chunk_size)
            if not chunk:
                return
            yield chunk
        return
    for chunk in data:  # type: ignore[union-attr]
        if chunk:
            yield chunk


class VerifyingStream:
    """Wrap a chunk iterator: count, hash and, at the end, check expected digests.

    Raises :class:`ChecksumMismatch` when the stream ends with other digests
    or size than announced, *before* the last chunk is handed on, so a writer
    that commits only after exhausting the stream never commits bad bytes.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        algorithms: Sequence[str],
        expected: Mapping[str, str] | None = None,
        expected_size: int | None = None,
        key: str = "",
        location: str = "",
    ) -> None:
        wanted = list(algorithms) + [a for a in (expected or {}) if a not in algorithms]
        self._hasher = MultiHasher(wanted)
        self._chunks = iter(chunks)
        self._expected = {k.lower(): v.lower() for k, v in (expected or {}).items()}
        self._expected_size = expected_size
        self._key = key
        self._location = location

    def __iter__(self) -> Iterator[bytes]:
        pending: bytes | None = None
        for chunk in self._chunks:
            if not chunk:
                continue
            self._hasher.update(chunk)
            if self._expected_size is not None and self._hasher.size > self._expected_size:
                raise ChecksumMismatch(
                    f"more than the announced {self._expected_size} bytes", key=self._key, location=self._location
                )
            if pending is not None:
                yield pending
            pending = chunk
        self.check()
        if pending is not None:
            yield pending

    @property
    def size(self) -> int:
        return self._hasher.size

    def digests(self) -> dict[str, str]:
        return self._hasher.hexdigests()

    def check(self) -> None:
        if self._expected_size is not None and self._hasher.size != self._expected_size:
            raise ChecksumMismatch(
                f"got {self._hasher.size} bytes, {self._expected_size} were announced",
                key=self._key,
                location=self._location,
            )
        got = self._hasher.hexdigests()
        for algorithm, value in self._expected.items():
            if got.get(algorithm) != value:
                raise ChecksumMismatch(
                    f"{algorithm} is {got.get(algorithm)}, {value} was announced", key=self._key, location=self._location
                )


class StorageAdapter(ABC):
    """One storage location.  Subclasses implement the ``_`` methods."""

    scheme: ClassVar[str] = ""
    abilities: ClassVar[frozenset[str]] = frozenset()
    """The optional abilities this back end provides itself (names in :mod:`storage_adapters.features`)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    # --- naming ---------------------------------------------------------

    @property
    def location(self) -> str:
        """Where this adapter points, for messages (no secrets)."""
        return self.uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    @property
    def features(self) -> Features:
        """What this adapter can do beyond the interface, and who provides it (wrappers hand it on)."""
        return Features.of(self, self.abilities)

    # --- public, checked API ---------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Size (and stored checksums, where known) of ``key``; raises ObjectNotFound."""
        return self._stat(check_key(key))

    def list(self, prefix: str = "", *, irregular: bool = False) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order.

        Entries that are not regular files (``ObjectInfo.irregular`` set: a
        FIFO, socket, link or device on a local store) are never objects; with
        ``irregular`` they are listed too, marked, for a caller that reports them.
        """
        entries = self._list(check_key(prefix, allow_prefix=True))
        return entries if irregular else (info for info in entries if info.irregular is None)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the bytes of ``key`` from ``offset``, at most ``length`` of them."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        return self._read(check_key(key), offset, length)

    def write(
        self,
        key: str,
        data: bytes | IO[bytes] | Iterable[bytes],
        *,
        size: int | None = None,
        expected: Mapping[str, str] | None = None,
        algorithms: Sequence[str] = ("sha256",),
    ) -> WriteResult:
        """Store ``data`` under ``key`` atomically and return its size and digests.

        The digests in ``algorithms`` are computed in the pass that sends the
        bytes.  With ``expected`` (and ``size``) the stream is checked before
        the object becomes visible; a mismatch raises ChecksumMismatch and
        leaves no object under ``key``.
        """
        key = check_key(key)
        stream = VerifyingStream(
            iter_chunks(data), check_algorithms(algorithms), expected, size, key=key, location=self.location
        )
        self._write(key, stream, size)
        return WriteResult(key=key, size=stream.size, digests=stream.digests())

    def delete(self, key: str, *, stray: bool = False) -> None:
        """Remove ``key``; raises ObjectNotFound when there is none.

        With ``stray`` the key may be a name that is not UTF-8, as ``inventory``
        lists a local file that belongs to nothing (no object's key can be one):
        only to remove such a file.
        """
        self._delete(check_key(key, allow_undecodable=stray))

    def digest_many(
        self, keys: Iterable[str], algorithms: Sequence[str] = ("sha256",), workers: int = 2
    ) -> Iterator[DigestResult]:
        """Digests of whole objects, computed here unless the back end can do better (on the node).

        One result per key, in any order; a key that cannot be digested gets
        its error in ``DigestResult.error`` rather than raising.  For one key:
        ``next(adapter.digest_many([key]))``.
        """
        algos = check_algorithms(algorithms)
        return self._digest_many(keys, algos, workers)

    def inventory(self, prefix: str = "") -> Iterator[tuple[str, int | None]]:
        """``(key, size)`` of every entry under ``prefix`` in key order (code point order,
        which is UTF-8 byte order); ``size`` is None where the listing does not give it
        for free (a local directory), and the check of the content finds a wrong size.
        Entries that are not regular files are included, with size None: ``stat`` or
        the content check raises NotRegularFile for them, so an audit reports them.
        A store on this host lists names only (its ``local_files`` feature)."""
        prefix = check_key(prefix, allow_prefix=True)
        local = self.features.local
        return self._inventory(prefix) if local is None else local.inventory_local(prefix)

    def verify_many(
        self, prefix: str, rows: Iterable[tuple[str, int, tuple[str, ...]]],
        algorithms: Sequence[str] = ("sha256",), workers: int = 2,
    ) -> Iterator[VerifyBatch]:
        """Check that each ``prefix + path`` has the expected size and digests.

        ``prefix`` is empty or ends in '/'; ``rows`` are ``(path, size, digests)``
        with the hex digests in the order of ``algorithms``, or ``(path, size,
        digests, True)`` for a file whose chunk digests are wanted too: a file
        that matches then has them in ``VerifyBatch.chunks``, computed in this
        process in the same read that checked its digests (a back end that does
        not read the file here, a node agent, gives none: what served bytes are
        checked against is never taken from a node's word).  Rows are consumed lazily, so a
        stream of millions keeps memory flat.  Yields one :class:`VerifyBatch`
        per batch of rows; only problems are itemised.
        Nothing outside the store is ever read: each key is checked before its
        object is read (a local store checks each directory once, resolved,
        and opens the file in it by its last name without following a link).
        A store on this host checks its files itself (its ``local_files`` feature);
        any other is checked over ``digest_many``.
        """
        algos = check_algorithms(algorithms)
        if algos != tuple(algorithms):
            raise ValueError(f"give the algorithms by their canonical names, once each: {', '.join(algos)}")
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"the prefix must be a directory, ending in '/': {prefix!r}")
        prefix = check_key(prefix, allow_prefix=True)
        local = self.features.local
        if local is not None:
            return local.verify_local(prefix, rows, algos, workers)
        return self._verify_many(prefix, rows, algos, workers)

    def challenge(self, key: str, offset: int, length: int, nonce: bytes) -> str:
        """sha256(nonce ‖ bytes[offset:offset+length]) of ``key``.

        Computed here from a ranged read; the node agent answers on the node,
        which proves the node holds the bytes without sending them.
        """
        return possession_proof(nonce, self.read(key, offset, length))

    def copy_from(self, source: "StorageAdapter", source_key: str, key: str) -> bool:
        """Server-side copy when both ends allow it; False when the caller must stream."""
        return False

    def close(self) -> None:
        """Release connections and pools."""

    def __enter__(self) -> "StorageAdapter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- defaults a back end may override (``_digest``, ``_digest_many``) ---------

    def _digest(self, key: str, algorithms: Sequence[str], chunks: bool = False) -> DigestResult:
        """Digests of ``key`` from a read of it here; with ``chunks`` its chunk digests too, from that read."""
        hasher = MultiHasher(algorithms)
        chunker = ChunkHasher() if chunks else None
        for chunk in self._read(key, 0, None):
            hasher.update(chunk)
            if chunker is not None:
                chunker.update(chunk)
        return DigestResult(key=key, size=hasher.size, digests=hasher.hexdigests(), bytes_read=hasher.size,
                            chunks=None if chunker is None else chunker.digests())

    def _digest_many(
        self, keys: Iterable[str], algorithms: Sequence[str], workers: int, chunked: Container[str] = frozenset(),
    ) -> Iterator[DigestResult]:
        """Digests of ``keys`` (see ``digest_many``); those in ``chunked`` with their chunk digests too."""
        def one(key: str) -> DigestResult:
            try:
                if key in chunked:
                    return self._digest(check_key(key), algorithms, True)
                return self._digest(check_key(key), algorithms)
            except PreservationError as e:
                return DigestResult(key=key, size=None, digests=None, error=e)
            except OSError as e:
                return DigestResult(
                    key=key, size=None, digests=None, error=StorageError(f"{key!r} unreadable in {self.location}: {e}")
                )

        if workers <= 1:
            for key in keys:
                yield one(key)
            return

        def several(batch: list[str]) -> list[DigestResult]:
            with files_in_parallel():
                return [one(key) for key in batch]

        # keys go to the threads in small batches (per-task overhead matters for small files);
        # a bounded window keeps memory flat for millions of keys
        # a short list goes out a key at a time, so a few big files still spread over every worker
        batch = DIGEST_BATCH
        if isinstance(keys, Sized):
            batch = max(1, min(DIGEST_BATCH, len(keys) // (workers * 4)))
        for results in bounded_map(several, _batches(keys, batch), workers=workers, window=workers * 2):
            yield from results

    # --- the checks of a store not on this host, over the methods above ----------

    def _inventory(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        for info in self._list(prefix):
            yield info.key, (info.size if info.irregular is None else None)

    def _verify_many(
        self, prefix: str, rows: Iterable[tuple[str, int, tuple[str, ...]]], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        for batch in _batches(rows, VERIFY_BATCH):
            expected = {prefix + row[0]: row for row in batch}
            chunked = {key for key, row in expected.items() if len(row) > 3 and row[3]}
            out = VerifyBatch()
            unanswered = set(expected)
            for res in self._digest_many(list(expected), algorithms, workers, chunked):
                if res.key not in unanswered:  # not asked for, or answered already: the first answer stands
                    continue
                unanswered.discard(res.key)
                path, size, want = expected[res.key][:3]
                out.bytes_read += res.bytes_read
                if res.error is not None:
                    out.problems.append(VerifyProblem(path, _problem_kind(res.error), error=res.error))
                elif res.size is not None and res.size != size:
                    out.problems.append(VerifyProblem(path, VERIFY_SIZE, actual=res.size, expected=size))
                else:
                    out.checked += 1
                    found = res.digests or {}
                    for algorithm, digest in zip(algorithms, want):
                        if found.get(algorithm) != digest:
                            out.problems.append(VerifyProblem(
                                path, VERIFY_DIGEST, algorithm=algorithm, actual=found.get(algorithm), expected=digest))
                            break
                    else:
                        if res.chunks is not None and res.key in chunked:
                            out.chunks[path] = res.chunks
            for key in sorted(unanswered):  # digest_many owes one result a key: a file never passes unread
                error = StorageError(f"no digest came back for {key}", key=key, location=self.location)
                out.problems.append(VerifyProblem(expected[key][0], VERIFY_UNREADABLE, error=error))
            yield out

    # --- what a back end must implement -------------------------------------

    @abstractmethod
    def _stat(self, key: str) -> ObjectInfo: ...

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def _read(self, key: str, offset: int, length: int | None) -> Iterator[bytes]: ...

    @abstractmethod
    def _write(self, key: str, chunks: Iterable[bytes], size: int | None) -> None:
        """Consume ``chunks`` completely, then make the object visible under ``key``.

        If iterating ``chunks`` raises, nothing may become visible.
        """

    @abstractmethod
    def _delete(self, key: str) -> None: ...


def exists(adapter: StorageAdapter, key: str) -> bool:
    """Whether ``adapter`` has an object under ``key`` (its ``stat`` does not raise ObjectNotFound)."""
    try:
        adapter.stat(key)
    except ObjectNotFound:
        return False
    return True


def read_all(adapter: StorageAdapter, key: str, offset: int = 0, length: int | None = None) -> bytes:
    """The bytes of ``key`` (from ``offset``, at most ``length``) in memory: for small objects only
    (a package record, a tag file); anything else is streamed with ``read``."""
    return b"".join(adapter.read(key, offset, length))


def _problem_kind(error: PreservationError) -> str:
    if isinstance(error, ObjectNotFound):
        return VERIFY_MISSING
    if isinstance(error, NotRegularFile):
        return VERIFY_NOT_REGULAR
    return VERIFY_UNREADABLE


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
