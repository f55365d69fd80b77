"""Checking one replica's files against the catalog, with coded findings.

The node's listing and the catalog's file rows are both in byte order, so a
merge of the two finds missing, unexpected and resized files in one pass with
memory independent of the file count; only files present with the right size
are then digested (on the node, where the adapter can).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from sqlalchemy import select

from preservation.catalog.db import Catalog
from preservation.catalog.models import PackageFile
from preservation.errors import ObjectNotFound, PreservationError, StorageError
from preservation.findings import FindingList
from storage_adapters import ObjectInfo, StorageAdapter

FILE_MISSING = "A001"
FILE_CHANGED = "A002"
SIZE_CHANGED = "A003"
FILE_UNEXPECTED = "A004"
FILE_UNREADABLE = "A005"
REPLICA_ABSENT = "A006"
NODE_UNAVAILABLE = "A007"

FINDING_CODES = {
    FILE_MISSING: "a file the catalog lists is not on the node",
    FILE_CHANGED: "a file's digest differs from the catalog",
    SIZE_CHANGED: "a file's size differs from the catalog",
    FILE_UNEXPECTED: "the node holds a file the package does not have",
    FILE_UNREADABLE: "a file could not be read",
    REPLICA_ABSENT: "none of the package's files are on the node",
    NODE_UNAVAILABLE: "the node's storage did not answer",
}

BATCH = 2000


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    sha256: str
    sha512: str

    def digest(self, algorithm: str) -> str:
        return getattr(self, algorithm)


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
            "findings": self.findings.to_list(),
        }


def iter_package_files(catalog: Catalog, package_id: str, batch: int = BATCH) -> Iterator[list[FileRow]]:
    """The package's file rows in byte order of path, in batches of short transactions."""
    last = None
    while True:
        with catalog.session() as s:
            stmt = (
                select(PackageFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512)
                .where(PackageFile.package_id == package_id)
                .order_by(PackageFile.path)
                .limit(batch)
            )
            if last is not None:
                stmt = stmt.where(PackageFile.path > last)
            rows = [FileRow(*r) for r in s.execute(stmt)]
        if not rows:
            return
        yield rows
        last = rows[-1].path
        if len(rows) < batch:
            return


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _merge(
    rows: Iterable[FileRow], listing: Iterable[ObjectInfo], prefix: str
) -> Iterator[tuple[FileRow | None, ObjectInfo | None]]:
    """Merge catalog rows and listed objects, both in byte order of path."""
    rows_it, list_it = iter(rows), iter(listing)
    row = next(rows_it, None)
    obj = next(list_it, None)
    while row is not None or obj is not None:
        obj_path = obj.key[len(prefix) :] if obj is not None else None
        if obj is None or (row is not None and _utf8(row.path) < _utf8(obj_path)):
            yield row, None
            row = next(rows_it, None)
        elif row is None or _utf8(obj_path) < _utf8(row.path):
            yield None, obj
            obj = next(list_it, None)
        else:
            yield row, obj
            row = next(rows_it, None)
            obj = next(list_it, None)


def check_replica(
    catalog: Catalog,
    adapter: StorageAdapter,
    package_id: str,
    algorithms: Sequence[str] = ("sha256",),
    workers: int = 2,
) -> FixityResult:
    """Re-read every file of one replica and compare with the catalog; never stops early."""
    result = FixityResult()
    prefix = f"{package_id}/"
    traffic_before = adapter.traffic()
    rows = (row for batch in iter_package_files(catalog, package_id) for row in batch)
    try:
        listing = adapter.list(prefix)
        to_digest: list[FileRow] = []
        for row, obj in _merge(rows, listing, prefix):
            if row is not None:
                result.files_expected += 1
                result.bytes_expected += row.size
            if row is None:
                path = obj.key[len(prefix) :]
                result.unexpected_paths.append(path)
                result.findings.add(FILE_UNEXPECTED, "not part of the package", path=path, size=obj.size)
            elif obj is None:
                result.bad_paths.append(row.path)
                result.findings.add(FILE_MISSING, "missing on the node", path=row.path)
            elif obj.size != row.size:
                result.bad_paths.append(row.path)
                result.findings.add(
                    SIZE_CHANGED, f"size is {obj.size}, the catalog says {row.size}", path=row.path,
                    expected=row.size, actual=obj.size,
                )
            else:
                to_digest.append(row)
                if len(to_digest) >= BATCH:
                    _digest_batch(adapter, prefix, to_digest, algorithms, workers, result)
                    to_digest = []
        if to_digest:
            _digest_batch(adapter, prefix, to_digest, algorithms, workers, result)
    except StorageError as e:
        result.findings.add(NODE_UNAVAILABLE, str(e), error_code=e.code)
    result.bytes_over_network = max(0, adapter.traffic() - traffic_before)
    if result.absent:
        result.findings.add(REPLICA_ABSENT, f"none of the {result.files_expected} files are on the node")
    return result


def _digest_batch(
    adapter: StorageAdapter,
    prefix: str,
    rows: list[FileRow],
    algorithms: Sequence[str],
    workers: int,
    result: FixityResult,
) -> None:
    by_key = {prefix + r.path: r for r in rows}
    for res in adapter.digest_many(list(by_key), algorithms, workers=workers):
        row = by_key[res.key]
        result.bytes_read_on_node += res.bytes_read
        if res.error is not None:
            result.bad_paths.append(row.path)
            if isinstance(res.error, ObjectNotFound):
                result.findings.add(FILE_MISSING, "missing on the node", path=row.path)
            else:
                result.findings.add(FILE_UNREADABLE, str(res.error), path=row.path, error_code=res.error.code)
            continue
        result.files_checked += 1
        for algorithm in algorithms:
            got = (res.digests or {}).get(algorithm)
            if got != row.digest(algorithm):
                result.bad_paths.append(row.path)
                result.findings.add(
                    FILE_CHANGED, f"{algorithm} differs from the catalog", path=row.path,
                    algorithm=algorithm, expected=row.digest(algorithm), actual=got,
                )
                break


def verify_rows(
    adapter: StorageAdapter, prefix: str, rows: list[FileRow], algorithms: Sequence[str], workers: int = 2
) -> FixityResult:
    """Digest exactly ``rows`` (no listing): used right after writing them."""
    result = FixityResult(files_expected=len(rows), bytes_expected=sum(r.size for r in rows))
    traffic_before = adapter.traffic()
    try:
        _digest_batch(adapter, prefix, rows, algorithms, workers, result)
    except PreservationError as e:
        result.findings.add(NODE_UNAVAILABLE, str(e), error_code=e.code)
    result.bytes_over_network = max(0, adapter.traffic() - traffic_before)
    return result
