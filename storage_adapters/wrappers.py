"""Behaviour that any adapter can be given by wrapping it (as restic wraps its back ends).

:class:`WrappedAdapter` hands every call to the adapter inside, keys already
checked, and hands on its features, so a service finds an ability (a local
path, digests on the node) however deep the wrapping.  A store on this host
is audited through its ``local_files`` feature (``inventory`` and
``verify_many`` go to it directly); a wrapper that must see every read would
hand on its features without that one.

:class:`RetryingAdapter` is the one place where storage calls are tried
again.  Only a store that cannot be reached just now is retried
(StorageUnavailable: a connection refused or broken, a timeout, a 502, 503 or
504 answer); every other error is raised at once, so a refusal (4xx) never is.
Retries back off exponentially with jitter, at most ``retries`` more tries per
call.  Streams resume rather than restart: a read continues from the byte it
reached, a listing after the last key it gave, a batch of digests with the
keys not answered yet, a check of many files (``verify_many`` of a store
that is not on this host) with the window of rows it was checking.  A write
is tried again only when it failed before it took its first byte of the
data, which cannot be replayed.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from typing import Callable, Container, Iterable, Iterator, Sequence, TypeVar

from preservation.chunk_digests import DIGEST_BYTES, chunk_count
from preservation.errors import PreservationError, StorageUnavailable

from .base import DigestResult, ObjectInfo, StorageAdapter, VerifyBatch
from .features import Features

T = TypeVar("T")
MAX_BACKOFF = 10.0
DIGEST_WINDOW = 10_000
"""Keys handed to the inner adapter's ``digest_many`` at a time (it batches its requests itself)."""
VERIFY_WINDOW = 10_000
"""Rows handed to the inner adapter's ``verify_many`` at a time; what it finds in them is held until they are done."""
VERIFY_WINDOW_CHUNKS = 4 * 1024 * 1024
"""… and at most this many bytes of chunk digests asked for in one window (4 MiB: 128 GiB of files)."""


class WrappedAdapter(StorageAdapter):
    """An adapter around ``inner`` that, unless a subclass says otherwise, does exactly what it does."""

    def __init__(self, inner: StorageAdapter) -> None:
        super().__init__(inner.uri)
        self.inner = inner

    @property
    def location(self) -> str:
        return self.inner.location

    @property
    def features(self) -> Features:
        return self.inner.features

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def _stat(self, key: str) -> ObjectInfo:
        return self.inner._stat(key)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner._list(prefix)

    def _inventory(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        return self.inner._inventory(prefix)

    def _read(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        return self.inner._read(key, offset, length)

    def _write(self, key: str, chunks: Iterable[bytes], size: int | None) -> None:
        self.inner._write(key, chunks, size)

    def _delete(self, key: str) -> None:
        self.inner._delete(key)

    def _digest(self, key: str, algorithms: Sequence[str], chunks: bool = False) -> DigestResult:
        return self.inner._digest(key, algorithms, chunks)

    def _digest_many(
        self, keys: Iterable[str], algorithms: Sequence[str], workers: int, chunked: Container[str] = frozenset(),
    ) -> Iterator[DigestResult]:
        return self.inner._digest_many(keys, algorithms, workers, chunked)

    def _verify_many(
        self, prefix: str, rows: Iterable[tuple], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        return self.inner._verify_many(prefix, rows, algorithms, workers)

    def challenge(self, key: str, offset: int, length: int, nonce: bytes) -> str:
        return self.inner.challenge(key, offset, length, nonce)

    def copy_from(self, source: StorageAdapter, source_key: str, key: str) -> bool:
        return self.inner.copy_from(source, source_key, key)

    def close(self) -> None:
        self.inner.close()


def transient(error: BaseException) -> bool:
    """Whether ``error`` says the store cannot be reached just now (and may be tried again at once)."""
    return isinstance(error, StorageUnavailable)


class RetryingAdapter(WrappedAdapter):
    """``inner`` with its transient failures tried again; see the module."""

    def __init__(self, inner: StorageAdapter, *, retries: int = 4, backoff: float = 0.5) -> None:
        super().__init__(inner)
        self.retries = retries
        self.backoff = backoff

    def _may_retry(self, error: PreservationError, attempt: int) -> bool:
        """Whether to try again after ``error`` ended try ``attempt`` (0 is the first); waits first if so."""
        if not transient(error) or attempt >= self.retries:
            return False
        time.sleep(min(self.backoff * 2**attempt, MAX_BACKOFF) * (0.5 + random.random()))
        return True

    def _call(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except PreservationError as e:
                if not self._may_retry(e, attempt):
                    raise
            attempt += 1

    def _stat(self, key: str) -> ObjectInfo:
        return self._call(lambda: self.inner._stat(key))

    def _delete(self, key: str) -> None:
        self._call(lambda: self.inner._delete(key))

    def _digest(self, key: str, algorithms: Sequence[str], chunks: bool = False) -> DigestResult:
        return self._call(lambda: self.inner._digest(key, algorithms, chunks))

    def challenge(self, key: str, offset: int, length: int, nonce: bytes) -> str:
        return self._call(lambda: self.inner.challenge(key, offset, length, nonce))

    def copy_from(self, source: StorageAdapter, source_key: str, key: str) -> bool:
        return self._call(lambda: self.inner.copy_from(source, source_key, key))

    def _resumed(self, reopen: Callable[[], Iterator[T]], first: Iterator[T] | None = None) -> Iterator[T]:
        """The items of a stream that, broken off, is opened again by ``reopen`` (which knows where it stopped)."""
        items = reopen() if first is None else first
        attempt = 0
        while True:
            try:
                yield from items
                return
            except PreservationError as e:
                if not self._may_retry(e, attempt):
                    raise
            attempt += 1
            items = reopen()

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        """A listing in key order that, broken off, is listed again and goes on after the last key it gave."""
        return self._after_last(lambda: self.inner._list(prefix), lambda entry: entry.key)

    def _inventory(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        """The inventory, in key order, resumed after the last key it gave as a listing is."""
        return self._after_last(lambda: self.inner._inventory(prefix), lambda entry: entry[0])

    def _after_last(self, listing: Callable[[], Iterator[T]], key_of: Callable[[T], str]) -> Iterator[T]:
        last: str | None = None

        def after_last() -> Iterator[T]:
            nonlocal last
            for entry in listing():
                key = key_of(entry)
                if last is None or key > last:
                    last = key
                    yield entry

        return self._resumed(after_last)

    def _read(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        """A read that, broken off, goes on with a ranged read from the byte it reached."""
        position, remaining = offset, length

        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            nonlocal position, remaining
            for chunk in chunks:
                position += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

        def rest() -> Iterator[bytes]:
            if remaining == 0:
                return iter(())
            return counted(self._call(lambda: self.inner._read(key, position, remaining)))

        # the first request is made now, so that a missing object raises here, not on iteration
        first = self._call(lambda: self.inner._read(key, offset, length))
        return self._resumed(rest, counted(first))

    def _write(self, key: str, chunks: Iterable[bytes], size: int | None) -> None:
        data = _Taken(iter(chunks))
        attempt = 0
        while True:
            try:
                self.inner._write(key, data, size)
                return
            except PreservationError as e:
                if data.taken or not self._may_retry(e, attempt):
                    raise
            attempt += 1

    def _digest_many(
        self, keys: Iterable[str], algorithms: Sequence[str], workers: int, chunked: Container[str] = frozenset(),
    ) -> Iterator[DigestResult]:
        """One result per key.  Keys are handed on a window at a time (memory stays flat for
        millions); a window broken off is asked again for the keys not answered yet, and when
        the store cannot be asked, every key left in it gets the error."""
        keys = iter(keys)
        while window := list(itertools.islice(keys, DIGEST_WINDOW)):
            yield from self._digest_window(window, algorithms, workers, chunked)

    def _digest_window(
        self, pending: list[str], algorithms: Sequence[str], workers: int, chunked: Container[str],
    ) -> Iterator[DigestResult]:
        attempt = 0
        while pending:
            answered: Counter[str] = Counter()
            try:
                for result in self.inner._digest_many(pending, algorithms, workers, chunked):
                    answered[result.key] += 1
                    yield result
                return
            except PreservationError as e:
                pending = _unanswered(pending, answered)
                if not self._may_retry(e, attempt):
                    for key in pending:
                        yield DigestResult(key=key, size=None, digests=None, error=e)
                    return
            attempt += 1


    def _verify_many(
        self, prefix: str, rows: Iterable[tuple], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        """The inner store's check, a window of rows at a time: a window whose check broke off (the
        store could not be reached) is checked again whole, so its findings are handed on only once
        it is complete (a file is never reported twice, nor missed); raises when the retries are spent."""
        for window in _verify_windows(rows):
            yield from self._call(lambda: list(self.inner._verify_many(prefix, window, algorithms, workers)))


def _verify_windows(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    """Rows in windows of at most VERIFY_WINDOW rows and VERIFY_WINDOW_CHUNKS bytes of chunk digests asked for."""
    window: list[tuple] = []
    chunk_bytes = 0
    for row in rows:
        if len(row) > 3 and row[3]:
            chunk_bytes += chunk_count(row[1]) * DIGEST_BYTES
        window.append(row)
        if len(window) >= VERIFY_WINDOW or chunk_bytes >= VERIFY_WINDOW_CHUNKS:
            yield window
            window, chunk_bytes = [], 0
    if window:
        yield window


class _Taken:
    """The data of a write, noting whether any of it has been taken (a write cannot be replayed then)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.taken = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.taken = True
            yield chunk


def _unanswered(keys: list[str], answered: Counter[str]) -> list[str]:
    left = Counter(answered)
    out = []
    for key in keys:
        if left[key] > 0:
            left[key] -= 1
        else:
            out.append(key)
    return out
