"""Checking one replica's files against the catalog, with coded findings.

The node's listing and the catalog's file rows are both in byte order, so a
merge of the two finds missing, unexpected and resized files in one pass with
memory independent of the file count; only files present with the right size
are then digested (on the node, where the adapter can).

An audit that reads a file whole also gives the file's chunk digests
(BLAKE3 per 1 MiB, the access service's piece-by-piece check) when the
catalog has none for it, computed in that read, for the files that matched
(``keep_chunks``).
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from preservation.bagit.names import shown
from preservation.catalog.db import Catalog
from preservation.catalog.files import FileRow, iter_expected
from preservation.codes import (
    CHUNKS_DIFFER,
    FILE_CHANGED,
    FILE_MISSING,
    FILE_UNEXPECTED,
    FILE_UNREADABLE,
    NODE_UNAVAILABLE,
    NOT_REGULAR,
    REPLICA_ABSENT,
    SIZE_CHANGED,
)
from preservation.errors import NotRegularFile, PreservationError, StorageError, error_class
from preservation.findings import WARNING, FindingList
from preservation.layout import PackageLayout
from storage_adapters import StorageAdapter, traffic
from storage_adapters.base import VERIFY_MISSING, VERIFY_NOT_REGULAR, VERIFY_SIZE, VERIFY_UNREADABLE, VerifyBatch
from storage_adapters.hashing import check_algorithms

@dataclass
class FixityResult:
    files_expected: int = 0
    files_checked: int = 0
    bytes_expected: int = 0
    bytes_read_on_node: int = 0
    bytes_over_network: int = 0
    findings: FindingList = field(default_factory=FindingList)
    bad_paths: list[str] = field(default_factory=list)
    unexpected_paths: list[str] = field(default_factory=list)
    chunks_recorded: int = 0

    @property
    def ok(self) -> bool:
        return self.findings.ok

    @property
    def absent(self) -> bool:
        """True when no expected file was found at all."""
        codes = self.findings.codes()
        return self.files_expected > 0 and codes.count(FILE_MISSING) == self.files_expected

    def to_dict(self) -> dict:
        return {
            "files_expected": self.files_expected,
            "files_checked": self.files_checked,
            "bytes_expected": self.bytes_expected,
            "bytes_read_on_node": self.bytes_read_on_node,
            "bytes_over_network": self.bytes_over_network,
            "chunks_recorded": self.chunks_recorded,
            "findings": self.findings.to_list(),
        }

    def node_error(self, location: str, doing: str | None = None) -> PreservationError:
        """The error of the node that did not answer (the first A007 finding), as its own class.

        A job that raises it is retried only when the failure may pass (an
        unreachable node), never for a denied access or a refused key.
        ``doing`` names what could not be done, for the message.  Call it only
        when NODE_UNAVAILABLE is among the findings.
        """
        finding = next(f for f in self.findings if f.code == NODE_UNAVAILABLE)
        detail = finding.message if doing is None else f"cannot {doing}: {finding.message}"
        return error_class(finding.params.get("error_code"))(detail, location=location)


KeepChunks = Callable[[Mapping[str, bytes]], Iterable[str]]
"""Stores the chunk digests of files that matched (path: digests); returns the paths whose stored digests differ."""


def check_replica(
    catalog: Catalog,
    adapter: StorageAdapter,
    package_id: str,
    algorithms: Sequence[str] = ("sha256",),
    workers: int = 2,
    keep_chunks: KeepChunks | None = None,
) -> FixityResult:
    """Re-read every file of one replica and compare with the catalog; never stops early.

    With ``keep_chunks``, the files that need chunk digests and have none in the
    catalog get them from this read, only when they match: each batch's are
    handed to ``keep_chunks``, and a file whose stored chunk digests turn out to
    differ (another reader recorded others meanwhile) is a CHUNKS_DIFFER warning.
    """
    result = FixityResult()
    prefix = PackageLayout(package_id).prefix
    algorithms = check_algorithms(algorithms)
    traffic_before = traffic(adapter)
    try:
        rows = iter_expected(catalog, package_id, algorithms, chunk_flags=keep_chunks is not None)
        present = _present(result, adapter, prefix, rows)
        for batch in adapter.verify_many(prefix, present, algorithms, workers=workers):
            _record(result, batch)
            if keep_chunks is not None and batch.chunks:
                _keep(result, keep_chunks, batch.chunks)
    except StorageError as e:
        result.findings.add(NODE_UNAVAILABLE, str(e), error_code=e.code, retryable=e.retryable)
    result.bytes_over_network = max(0, traffic(adapter) - traffic_before)
    if result.absent:
        result.findings.add(REPLICA_ABSENT, f"none of the {result.files_expected} files are on the node")
    return result


def _keep(result: FixityResult, keep_chunks: KeepChunks, found: Mapping[str, bytes]) -> None:
    differ = set(keep_chunks(found))
    result.chunks_recorded += len(found) - len(differ)
    for path in sorted(differ):
        result.findings.add(CHUNKS_DIFFER, "the file matches its digests, but not the chunk digests the catalog "
                            "holds for it: they were kept, not replaced", path=path, severity=WARNING)


def _present(
    result: FixityResult, adapter: StorageAdapter, prefix: str,
    batches: Iterable[list[tuple[str, int, tuple[str, ...]]]],
) -> Iterator[tuple[str, int, tuple[str, ...]]]:
    """The rows whose file the node lists (at the right size, where the listing gives sizes).

    The catalog rows and the node's inventory are both in code point order, so
    one merge finds the missing and the unexpected files, with memory flat in
    the file count.  A batch of rows is first compared with as many listed
    keys in one step (the common case: they are the same), and merged one by
    one only when they differ.
    """
    cut = len(prefix)
    listing = adapter.inventory(prefix)
    back: collections.deque[tuple[str, int | None]] = collections.deque()  # listed, taken, not yet merged

    def take() -> tuple[str, int | None] | None:
        return back.popleft() if back else next(listing, None)

    for rows in batches:
        result.files_expected += len(rows)
        result.bytes_expected += sum(row[1] for row in rows)
        chunk = [back.popleft() for _ in range(min(len(back), len(rows)))]
        chunk += itertools.islice(listing, len(rows) - len(chunk))
        if [key[cut:] for key, _ in chunk] == [row[0] for row in rows]:
            if all(listed is None for _, listed in chunk):  # a local listing: no sizes to compare
                yield from rows
                continue
            for row, (_, listed) in zip(rows, chunk):
                if listed is None or listed == row[1]:
                    yield row
                else:
                    _size_changed(result, row[0], row[1], listed)
            continue
        back.extendleft(reversed(chunk))
        obj = take()
        for row in rows:
            path = row[0]
            while obj is not None and obj[0][cut:] < path:
                _unexpected(result, adapter, obj, cut)
                obj = take()
            if obj is None or obj[0][cut:] != path:
                result.bad_paths.append(path)
                result.findings.add(FILE_MISSING, "missing on the node", path=path)
                continue
            listed = obj[1]
            obj = take()
            if listed is not None and listed != row[1]:
                _size_changed(result, path, row[1], listed)
                continue
            yield row
        if obj is not None:
            back.appendleft(obj)
    while (obj := take()) is not None:
        _unexpected(result, adapter, obj, cut)


def _unexpected(result: FixityResult, adapter: StorageAdapter, obj: tuple[str, int | None], cut: int) -> None:
    key, size = obj
    path = key[cut:]
    result.unexpected_paths.append(path)  # as listed, so that a repair can remove it
    if size is None:
        try:
            size = adapter.stat(key).size
        except NotRegularFile as e:
            _not_regular(result, shown(path), e)
            return
        except PreservationError:
            size = None
    result.findings.add(FILE_UNEXPECTED, "not part of the package", path=shown(path), size=size)


def _not_regular(result: FixityResult, path: str, error: PreservationError | None) -> None:
    """A FIFO, socket, link or device: reported as what it is, never read as a file's bytes."""
    kind = (error.params.get("kind") if error is not None else None) or "not a regular file"
    result.findings.add(NOT_REGULAR, f"not a regular file: {kind}", path=path, kind=kind,
                        error_code=getattr(error, "code", None))


def _size_changed(result: FixityResult, path: str, expected: int, actual: int | None) -> None:
    result.bad_paths.append(path)
    result.findings.add(
        SIZE_CHANGED, f"size is {actual}, the catalog says {expected}", path=path, expected=expected, actual=actual,
    )


def _record(result: FixityResult, batch: VerifyBatch) -> None:
    result.files_checked += batch.checked
    result.bytes_read_on_node += batch.bytes_read
    for problem in batch.problems:
        path = problem.path
        if problem.kind == VERIFY_SIZE:
            _size_changed(result, path, problem.expected, problem.actual)
            continue
        result.bad_paths.append(path)
        if problem.kind == VERIFY_NOT_REGULAR:
            _not_regular(result, path, problem.error)
            continue
        if problem.kind == VERIFY_MISSING:
            result.findings.add(FILE_MISSING, "missing on the node", path=path)
        elif problem.kind == VERIFY_UNREADABLE:
            error = problem.error
            result.findings.add(FILE_UNREADABLE, str(error), path=path, error_code=getattr(error, "code", None))
        else:
            result.findings.add(
                FILE_CHANGED, f"{problem.algorithm} differs from the catalog", path=path,
                algorithm=problem.algorithm, expected=problem.expected, actual=problem.actual,
            )


def verify_rows(
    adapter: StorageAdapter, prefix: str, rows: list[FileRow], algorithms: Sequence[str], workers: int = 2
) -> FixityResult:
    """Digest exactly ``rows`` (no listing): used right after writing them."""
    result = FixityResult(files_expected=len(rows), bytes_expected=sum(r.size for r in rows))
    algorithms = check_algorithms(algorithms)
    traffic_before = traffic(adapter)
    try:
        expected = [(r.path, r.size, tuple(r.digest(a) for a in algorithms)) for r in rows]
        for batch in adapter.verify_many(prefix, expected, algorithms, workers=workers):
            _record(result, batch)
    except PreservationError as e:
        result.findings.add(NODE_UNAVAILABLE, str(e), error_code=e.code, retryable=e.retryable)
    result.bytes_over_network = max(0, traffic(adapter) - traffic_before)
    return result
