"""The catalog's file rows of a package: paths, sizes and digests, read in byte order of path.

Every reader of a package's files (audits, copies, restores, deliveries, the
PREMIS export) reads them here, batch by batch, each batch in a short
transaction of its own, so that no reader holds a transaction or a million
rows in memory while it reads bytes from a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from sqlalchemy import and_, case, select

from preservation.catalog.chunk_models import FileChunks
from preservation.catalog.db import Catalog
from preservation.catalog.models import PackageFile
from preservation.chunk_digests import CHUNK_BYTES

BATCH = 2000
IN_LIST = 500  # paths per IN (...) query


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
    catalog: Catalog, package_id: str, algorithms: Sequence[str], batch: int | None = None, *,
    chunk_flags: bool = False,
) -> Iterator[list[tuple]]:
    """Batches of ``(path, size, digests)`` of the package's files in byte order of path, the
    digests in the order of ``algorithms``; each batch read in a short transaction of its own,
    as plain tuples (an audit of a million small files should not build a million objects).

    With ``chunk_flags`` a fourth item says whether the file needs chunk digests and has none
    (``preservation.chunk_digests.needs_chunks``, no ``file_chunks`` row): what an audit that
    reads the file whole computes for it, in that read (``StorageAdapter.verify_many``)."""
    batch = batch or BATCH
    columns = [getattr(PackageFile, a) for a in algorithms]
    query = select(PackageFile.path, PackageFile.size, *columns)
    if chunk_flags:
        lacking = and_(PackageFile.size > CHUNK_BYTES, FileChunks.path.is_(None))
        query = query.add_columns(case((lacking, True), else_=False)).outerjoin(
            FileChunks, and_(FileChunks.package_id == PackageFile.package_id, FileChunks.path == PackageFile.path))
    query = query.where(PackageFile.package_id == package_id).order_by(PackageFile.path).limit(batch)
    last = None
    while True:
        with catalog.engine.connect() as conn:
            result = conn.execute(query if last is None else query.where(PackageFile.path > last))
            if chunk_flags:
                rows = [(r[0], r[1], tuple(r[2:-1]), bool(r[-1])) for r in result.all()]
            elif len(columns) == 1:
                rows = [(path, size, (digest,)) for path, size, digest in result.all()]
            else:
                rows = [(r[0], r[1], tuple(r[2:])) for r in result.all()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]
        if len(rows) < batch:
            return


def listed_paths(catalog: Catalog, package_id: str, paths: Sequence[str]) -> set[str]:
    """Those of ``paths`` that the catalog lists as files of the package (a name that is not UTF-8, as a
    node may list, never is one)."""
    wanted = [path for path in paths if _is_utf8(path)]
    found: set[str] = set()
    with catalog.engine.connect() as conn:
        for start in range(0, len(wanted), IN_LIST):
            chunk = wanted[start : start + IN_LIST]
            found.update(conn.execute(select(PackageFile.path).where(
                PackageFile.package_id == package_id, PackageFile.path.in_(chunk))).scalars())
    return found


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
