"""Compact per-file records: path, size and digests of every file a bag holds.

A bag may hold millions of files, and the ingest registers each in the
catalog, so the writer and the validator keep one record per file.  A
:class:`RecordTable` stores them column-wise (a list of paths, an array of
sizes, one bytearray of raw digests per algorithm), about a third of the
memory of one object per file; :class:`FileRecord` tuples are made on demand.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import Iterator, Mapping, NamedTuple, Sequence


class FileRecord(NamedTuple):
    path: str
    """'/'-separated path inside the bag ('data/…' for payload files)."""
    size: int
    digests: Mapping[str, str]
    """Lower-case hex digest by algorithm name."""


def digest_sizes(algorithms: Sequence[str]) -> tuple[int, ...]:
    return tuple(hashlib.new(a).digest_size for a in algorithms)


class RecordTable:
    """An append-only, ordered table of :class:`FileRecord`."""

    __slots__ = ("algorithms", "_paths", "_sizes", "_raw", "_widths", "_row")

    def __init__(self, algorithms: Sequence[str]) -> None:
        self.algorithms = tuple(algorithms)
        self._widths = digest_sizes(self.algorithms)
        self._row = sum(self._widths)
        self._paths: list[str] = []
        self._sizes = array("q")
        self._raw = bytearray()

    def append(self, path: str, size: int, raw_digests: bytes) -> None:
        """Add a file; ``raw_digests`` is the concatenated binary digests in ``algorithms`` order."""
        if len(raw_digests) != self._row:
            raise ValueError(f"expected {self._row} digest bytes for {self.algorithms}, got {len(raw_digests)}")
        self._paths.append(path)
        self._sizes.append(size)
        self._raw += raw_digests

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> FileRecord:
        return FileRecord(self._paths[index], self._sizes[index], self.digests_at(index))

    def __iter__(self) -> Iterator[FileRecord]:
        for i in range(len(self._paths)):
            yield self[i]

    def path_at(self, index: int) -> str:
        return self._paths[index]

    def size_at(self, index: int) -> int:
        return self._sizes[index]

    def raw_at(self, index: int) -> bytes:
        return bytes(self._raw[index * self._row : (index + 1) * self._row])

    def digests_at(self, index: int) -> dict[str, str]:
        out: dict[str, str] = {}
        start = index * self._row
        for algorithm, width in zip(self.algorithms, self._widths):
            out[algorithm] = self._raw[start : start + width].hex()
            start += width
        return out

    def hexdigest_at(self, index: int, algorithm: str) -> str:
        start = index * self._row
        for name, width in zip(self.algorithms, self._widths):
            if name == algorithm:
                return self._raw[start : start + width].hex()
            start += width
        raise KeyError(algorithm)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes)

    def order_by_path(self) -> list[int]:
        """Row indexes sorted by path (the order manifests are written in)."""
        paths = self._paths
        return sorted(range(len(paths)), key=paths.__getitem__)

    def to_list(self) -> list[dict]:
        return [{"path": r.path, "size": r.size, "digests": dict(r.digests)} for r in self]
