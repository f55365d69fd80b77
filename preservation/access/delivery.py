"""Serving bytes: from the healthiest copy, verified before the first byte leaves.

A file is read from the most recently verified copy on a readable node
(:mod:`preservation.sources`: every node not offline) and spooled through a temporary file while its sha256 is computed (memory stays
at one chunk whatever the file size).  Only when size and sha256 match the
catalog is the temporary file handed to the caller; a copy that yields other
bytes is dropped, flagged ``suspect`` with a full audit queued (the audit then
marks it corrupt and queues its repair), and the next copy is tried.  A
reader therefore never receives a byte the catalog does not vouch for.

File paths are only ever looked up in the catalog, never joined to a disk
path: the storage key is built from the catalog's own row.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import versions
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package, PackageFile
from preservation.errors import ChecksumMismatch, NotFound, StorageError
from preservation.layout import PackageLayout
from preservation.package_state import flag_bad_sources
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, from_first_verified, verified_sources

SEND_CHUNK = 1024 * 1024
SPOOL_DIR = "access-spool"


def spool_dir(repo: Repository) -> Path:
    path = repo.staging_dir / SPOOL_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_package(session: Session, package_id: str) -> Package:
    package = session.get(Package, package_id) if package_id else None
    if package is None or package.state == PACKAGE_DEACCESSIONED:
        raise NotFound(f"no package {package_id!r}")
    return package


def file_row(session: Session, package_id: str, path: str) -> FileRow:
    """The catalog's row for ``path`` in the package (exact match); raises NotFound."""
    row = session.execute(
        select(PackageFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512)
        .where(PackageFile.package_id == package_id, PackageFile.path == path)
    ).first()
    if row is None:
        raise NotFound(f"package {package_id} has no file {path!r}")
    return FileRow(*row)


def list_files(session: Session, package_id: str, *, offset: int = 0, limit: int = 500) -> list[dict]:
    rows = session.execute(
        select(PackageFile.path, PackageFile.size, PackageFile.sha256, PackageFile.is_tag)
        .where(PackageFile.package_id == package_id)
        .order_by(PackageFile.path).offset(offset).limit(limit)
    ).all()
    return [{"path": p, "size": size, "sha256": sha, "tag_file": is_tag} for p, size, sha, is_tag in rows]


@dataclass
class VerifiedFile:
    """A file's bytes in a temporary file, already checked against the catalog's size and sha256."""

    row: FileRow
    source: str
    file: IO[bytes]

    @property
    def size(self) -> int:
        return self.row.size

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start``..``end`` (exclusive), in pieces of at most SEND_CHUNK."""
        end = self.row.size if end is None else end
        self.file.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = self.file.read(min(SEND_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "VerifiedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _spool(src: CopySource, row: FileRow, directory: Path) -> IO[bytes]:
    """The copy's bytes in a temporary file, checked against the catalog's size and sha256.

    Raises SourceFailed when the copy cannot be read, ChecksumMismatch when
    its bytes are not the catalog's, StorageError when the spool cannot be
    written (the server's own disk: no copy is to blame).
    """
    try:
        tmp = tempfile.TemporaryFile(dir=directory, prefix="spool-")
    except OSError as e:
        raise StorageError(f"the access spool cannot hold {row.path}: {e.strerror or e}") from e
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in src.stream(row.path):
            size += len(chunk)
            if size > row.size:
                raise ChecksumMismatch(f"longer than the catalog's {row.size} bytes", key=row.path)
            digest.update(chunk)
            try:
                tmp.write(chunk)
            except OSError as e:
                raise StorageError(f"the access spool cannot hold {row.path}: {e.strerror or e}") from e
        if size != row.size:
            raise ChecksumMismatch(f"{size} bytes, the catalog says {row.size}", key=row.path)
        if digest.hexdigest() != row.sha256:
            raise ChecksumMismatch(f"sha256 {digest.hexdigest()}, the catalog says {row.sha256}", key=row.path)
        tmp.flush()
    except BaseException:
        tmp.close()
        raise
    tmp.seek(0)
    return tmp


def fetch_verified(
    repo: Repository, package_id: str, row: FileRow, *, agent: str, sources: list[CopySource] | None = None,
    blamed: Blamed | None = None,
) -> VerifiedFile:
    """The file's verified bytes from the first copy that has them right.

    Copies that yield wrong or missing bytes are added to ``blamed``, flagged
    suspect and given an audit.  A copy whose node does not answer is skipped
    without blame.  Raises NoVerifiedSource when no copy has the right bytes.
    """
    blamed = Blamed() if blamed is None else blamed
    if sources is None:
        with repo.catalog.session() as s:
            sources = verified_sources(repo, s, package_id)
    directory = spool_dir(repo)
    before = blamed.problems()
    try:
        src, spooled = from_first_verified(sources, lambda src: _spool(src, row, directory), blamed,
                                           doing=f"serve {row.path}", package_id=package_id)
    finally:
        newly_blamed = {rid: problem for rid, problem in blamed.problems().items() if rid not in before}
        if newly_blamed:
            with repo.catalog.session() as s:
                flag_bad_sources(repo.policy, s, s.get(Package, package_id), newly_blamed, agent,
                                 activity="serving it to a reader", path=row.path)
    return VerifiedFile(row, src.label, spooled)


class _Sink:
    """A write-only, non-seekable stream: what zipfile writes, we hand on."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here: ``take`` hands every byte on."""

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _zip_rows(repo: Repository, package_id: str, versioned: bool) -> Iterator[list[tuple[str, str, FileRow]]]:
    """Batches of (bag path, package holding the bytes, their row) of the files the zip of ``package_id`` holds:
    its files, or a version's delivered state (every payload file where it is stored, its tag files but
    fetch.txt, as a restore writes them: docs/versions.md)."""
    if not versioned:
        for batch in iter_package_files(repo.catalog, package_id):
            yield [(row.path, package_id, row) for row in batch]
        return
    for batch in versions.iter_version_files(repo.catalog, package_id):
        yield [(r.path, r.stored_in, FileRow(r.stored_path, r.size, r.sha256, r.sha512)) for r in batch]


def iter_package_zip(repo: Repository, package_id: str, *, agent: str, versioned: bool = False) -> Iterator[bytes]:
    """The whole bag as a zip (``<package id>/…``), streamed: each file verified, then sent.

    ``versioned``: the package is a version, whose unchanged files lie where
    earlier versions stored them; the zip holds its complete state.  Nothing
    larger than one file's spool and one chunk is held.  If a file has no
    good copy left the stream stops with NoVerifiedSource, so the reader
    gets an incomplete zip rather than a wrong byte.
    """
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        stamp = package.created_at.timetuple()[:6]
    sources: dict[str, list[CopySource]] = {}
    blamed: dict[str, Blamed] = {}
    layout = PackageLayout(package_id)
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for batch in _zip_rows(repo, package_id, versioned):
            for path, holder, row in batch:
                if holder not in sources:
                    with repo.catalog.session() as s:
                        sources[holder] = verified_sources(repo, s, holder)
                    blamed[holder] = Blamed()
                with fetch_verified(repo, holder, row, agent=agent, sources=sources[holder],
                                    blamed=blamed[holder]) as verified:
                    info = zipfile.ZipInfo(layout.key(path), date_time=stamp)
                    info.compress_type = zipfile.ZIP_STORED
                    info.file_size = row.size
                    with zf.open(info, "w") as member:
                        for chunk in verified.chunks():
                            member.write(chunk)
                            data = sink.take()
                            if data:
                                yield data
                data = sink.take()
                if data:
                    yield data
    data = sink.take()
    if data:
        yield data
