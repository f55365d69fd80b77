"""The chunk digests of a package's files in the catalog: recorded at ingest, filled in later, read to serve.

Ingest records them through :class:`ChunkAnalyser`, an analyser
(:mod:`preservation.analysis`) whose observer hashes each chunk on the
thread that copies the file, in the pass that computes sha256 and sha512:
no file is read twice.  Its rows are written in the ingest transaction,
beside the files rows, and only for the files the package stores (a
version's unchanged files keep the rows of the version that stored them).

Files ingested before chunk digests existed get theirs from a pass that
reads the whole file anyway and finds it matches its sha256: an audit of a
copy, which computes them in the read that checks the file
(:func:`record_found`), or serving it spooled (:func:`record`).  Stored
chunk digests are never replaced: different ones found later are reported.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from preservation.catalog.bulk import insert_rows
from preservation.catalog.chunk_models import FileChunks
from preservation.catalog.db import Catalog
from preservation.catalog.models import PackageFile
from preservation.chunk_digests import ALGORITHM, CHUNK_BYTES, DIGEST_BYTES, ChunkHasher, chunk_count, needs_chunks
from preservation.findings import FindingList

COLUMNS = ("package_id", "path", "chunk_bytes", "algorithm", "digests")


class _ChunkObserver:
    __slots__ = ("_analyser", "_path", "_hasher")

    def __init__(self, analyser: "ChunkAnalyser", path: str) -> None:
        self._analyser = analyser
        self._path = path
        self._hasher = ChunkHasher()

    def feed(self, chunk: bytes | memoryview) -> None:
        self._hasher.update(chunk)

    def close(self, size: int) -> None:
        if self._hasher.size == size:
            self._analyser._learnt(self._path, self._hasher.digests())


class ChunkAnalyser:
    """Chunk digests of every payload file larger than one chunk, hashed in the bagging pass."""

    name = "chunks"
    reads_staged_payload = False

    def __init__(self) -> None:
        self._digests: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def observer(self, path: str, size: int) -> _ChunkObserver | None:
        return _ChunkObserver(self, path) if needs_chunks(size) else None

    def _learnt(self, path: str, digests: bytes) -> None:
        with self._lock:
            self._digests[path] = digests

    def finish(self, bag_root: str, findings: FindingList) -> None:
        """Nothing to check: the digests are of the bytes just bagged."""

    def register(self, session: Session, package_id: str, findings: FindingList) -> dict[str, Any]:
        if not self._digests:
            return {"files": 0}
        # only the files this package stores: a version's unchanged files are served with their first digests
        stored = {path: size for path, size in session.execute(
            select(PackageFile.path, PackageFile.size)
            .where(PackageFile.package_id == package_id, PackageFile.size > CHUNK_BYTES))}
        rows = [(package_id, path, CHUNK_BYTES, ALGORITHM, digests) for path, digests in sorted(self._digests.items())
                if path in stored and len(digests) == chunk_count(stored[path]) * DIGEST_BYTES]
        insert_rows(session.connection(), FileChunks.__table__, COLUMNS, rows)
        return {"files": len(rows)}


def load(session: Session, package_id: str, path: str, size: int) -> bytes | None:
    """The chunk digests of a stored file (``n × 32`` bytes), or None when it has none the service can use."""
    row = session.execute(
        select(FileChunks.chunk_bytes, FileChunks.algorithm, FileChunks.digests)
        .where(FileChunks.package_id == package_id, FileChunks.path == path)
    ).first()
    if row is None or row.chunk_bytes != CHUNK_BYTES or row.algorithm != ALGORITHM:
        return None
    if len(row.digests) != chunk_count(size) * DIGEST_BYTES:
        return None
    return row.digests


def record(session: Session, package_id: str, path: str, digests: bytes) -> bool:
    """Keep the chunk digests of a file just read whole and found to match its sha256; False if it had some."""
    if session.get(FileChunks, (package_id, path)) is not None:
        return False
    session.add(FileChunks(package_id=package_id, path=path, chunk_bytes=CHUNK_BYTES, algorithm=ALGORITHM,
                           digests=digests))
    return True


def record_found(catalog: Catalog, package_id: str, found: Mapping[str, bytes]) -> list[str]:
    """Keep the chunk digests an audit computed for files of ``package_id`` that it found matching their
    digests (``path: digests``); returns the paths whose stored chunk digests differ (kept, not replaced).

    Digests that do not fit the file's size (or a file of one chunk or less) are not kept.  When another
    reader records one of the files meanwhile (an audit of another copy, a spooled serving), the batch is
    compared again with what is stored now.
    """
    for attempt in range(2):
        try:
            with catalog.session() as s:
                return _record_found(s, package_id, found)
        except IntegrityError:
            if attempt:
                raise
    return []


def _record_found(session: Session, package_id: str, found: Mapping[str, bytes]) -> list[str]:
    paths = sorted(found)
    sizes = {path: size for path, size in session.execute(select(PackageFile.path, PackageFile.size).where(
        PackageFile.package_id == package_id, PackageFile.path.in_(paths)))}
    stored = {row.path: (row.chunk_bytes, row.algorithm, row.digests) for row in session.execute(
        select(FileChunks.path, FileChunks.chunk_bytes, FileChunks.algorithm, FileChunks.digests)
        .where(FileChunks.package_id == package_id, FileChunks.path.in_(paths)))}
    new, differ = [], []
    for path in paths:
        digests, size = found[path], sizes.get(path)
        if size is None or not needs_chunks(size) or len(digests) != chunk_count(size) * DIGEST_BYTES:
            continue
        if path not in stored:
            new.append({"package_id": package_id, "path": path, "chunk_bytes": CHUNK_BYTES, "algorithm": ALGORITHM,
                        "digests": digests})
        elif stored[path] != (CHUNK_BYTES, ALGORITHM, digests):
            differ.append(path)
    if new:
        session.execute(insert(FileChunks), new)
    return differ
