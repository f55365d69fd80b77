"""The catalog's file rows of a package: paths, sizes and digests, read in byte order of path.

Every reader of a package's files (audits, copies, restores, deliveries, the
PREMIS export) reads them here, batch by batch, each batch in a short
transaction of its own, so that no reader holds a transaction or a million
rows in memory while it reads bytes from a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from sqlalchemy import select

from preservation.catalog.db import Catalog
from preservation.catalog.models import PackageFile

BATCH = 2000


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    sha256: str
    sha512: str

    def digest(self, algorithm: str) -> str:
        return getattr(self, algorithm)


def iter_package_files(catalog: Catalog, package_id: str, batch: int | None = None) -> Iterator[list[FileRow]]:
    """The package's file rows (both digests) in byte order of path, in batches of short transactions."""
    for rows in iter_expected(catalog, package_id, ("sha256", "sha512"), batch):
        yield [FileRow(path, size, sha256, sha512) for path, size, (sha256, sha512) in rows]


def iter_expected(
    catalog: Catalog, package_id: str, algorithms: Sequence[str], batch: int | None = None
) -> Iterator[list[tuple[str, int, tuple[str, ...]]]]:
    """Batches of ``(path, size, digests)`` of the package's files in byte order of path, the
    digests in the order of ``algorithms``; each batch read in a short transaction of its own,
    as plain tuples (an audit of a million small files should not build a million objects)."""
    batch = batch or BATCH
    columns = [getattr(PackageFile, a) for a in algorithms]
    query = (
        select(PackageFile.path, PackageFile.size, *columns)
        .where(PackageFile.package_id == package_id)
        .order_by(PackageFile.path)
        .limit(batch)
    )
    last = None
    while True:
        with catalog.engine.connect() as conn:
            result = conn.execute(query if last is None else query.where(PackageFile.path > last))
            if len(columns) == 1:
                rows = [(path, size, (digest,)) for path, size, digest in result.all()]
            else:
                rows = [(r[0], r[1], tuple(r[2:])) for r in result.all()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]
        if len(rows) < batch:
            return
