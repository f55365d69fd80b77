"""Digest helpers shared by the adapters, the bag writer and the audits.

:class:`MultiHasher` feeds every chunk to several hash objects.  For large
chunks the extra algorithms run on a shared worker thread (hashlib releases
the GIL for buffers over 2 KiB), so sha256 and sha512 of one big file use both
cores while the bytes are read only once.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

from preservation.digests import SUPPORTED_ALGORITHMS, check_algorithms

__all__ = [
    "CHUNK_SIZE",
    "SUPPORTED_ALGORITHMS",
    "MultiHasher",
    "check_algorithms",
    "digest_bytes",
    "digest_chunks",
    "files_in_parallel",
]

CHUNK_SIZE = 4 * 1024 * 1024
_PARALLEL_THRESHOLD = 256 * 1024

_pool: ThreadPoolExecutor | None = None
_local = threading.local()


@contextmanager
def files_in_parallel() -> Iterator[None]:
    """Mark this thread as one of several hashing different files at once.

    Splitting one file's algorithms across threads then only adds hand-offs
    (the cores are already busy with other files), so MultiHasher stays on
    the calling thread.
    """
    previous = getattr(_local, "busy", False)
    _local.busy = True
    try:
        yield
    finally:
        _local.busy = previous


def _hash_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="preserve-hash")
    return _pool


class MultiHasher:
    """Several digests of one byte stream, computed in one pass."""

    def __init__(self, algorithms: Sequence[str], parallel: bool = True) -> None:
        self.algorithms = check_algorithms(algorithms)
        self._hashes = [hashlib.new(a) for a in self.algorithms]
        self._parallel = parallel and len(self._hashes) > 1 and not getattr(_local, "busy", False)
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        self.size += n
        if self._parallel and n >= _PARALLEL_THRESHOLD:
            pool = _hash_pool()
            futures = [pool.submit(h.update, chunk) for h in self._hashes[1:]]
            self._hashes[0].update(chunk)
            for f in futures:
                f.result()
        else:
            for h in self._hashes:
                h.update(chunk)

    def hexdigests(self) -> dict[str, str]:
        return {a: h.hexdigest() for a, h in zip(self.algorithms, self._hashes)}


def digest_bytes(data: bytes, algorithms: Sequence[str]) -> dict[str, str]:
    hasher = MultiHasher(algorithms, parallel=False)
    hasher.update(data)
    return hasher.hexdigests()


def digest_chunks(chunks: Iterable[bytes], algorithms: Sequence[str]) -> tuple[dict[str, str], int]:
    hasher = MultiHasher(algorithms)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigests(), hasher.size
