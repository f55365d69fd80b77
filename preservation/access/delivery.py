"""Serving bytes: from the healthiest copy, verified before the first byte leaves.

A file is read from the most recently verified copy on an active node and
spooled through a temporary file while its sha256 is computed (memory stays
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

from preservation.catalog.models import (
    NODE_ACTIVE,
    PACKAGE_DEACCESSIONED,
    REPLICA_VERIFIED,
    Node,
    Package,
    PackageFile,
    Replica,
)
from preservation.errors import NotFound, NoVerifiedSource, PreservationError
from preservation.fixity import FileRow, iter_package_files
from preservation.replication import CopySource, flag_bad_sources
from preservation.repository import Repository

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


def healthiest_sources(repo: Repository, session: Session, package_id: str) -> list[CopySource]:
    """Verified copies on active nodes, most recently verified first."""
    replicas = session.scalars(
        select(Replica).join(Node)
        .where(Replica.package_id == package_id, Replica.state == REPLICA_VERIFIED, Node.status == NODE_ACTIVE)
        .order_by(Replica.verified_at.desc(), Replica.id)
    ).all()
    return [CopySource(repo.adapter(r.node), f"{package_id}/", r.node.name, r.id) for r in replicas]


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


def _spool(src: CopySource, row: FileRow, directory: Path) -> tuple[IO[bytes] | None, str]:
    """(the copy's bytes in a temporary file, "") if they match the catalog, else (None, what is wrong)."""
    tmp = tempfile.TemporaryFile(dir=directory, prefix="spool-")
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in src.read(row.path):
            size += len(chunk)
            if size > row.size:
                tmp.close()
                return None, f"longer than the catalog's {row.size} bytes"
            digest.update(chunk)
            tmp.write(chunk)
    except BaseException:
        tmp.close()
        raise
    if size != row.size:
        tmp.close()
        return None, f"{size} bytes, the catalog says {row.size}"
    if digest.hexdigest() != row.sha256:
        tmp.close()
        return None, f"sha256 {digest.hexdigest()}, the catalog says {row.sha256}"
    tmp.flush()
    tmp.seek(0)
    return tmp, ""


def fetch_verified(
    repo: Repository, package_id: str, row: FileRow, *, agent: str, sources: list[CopySource] | None = None,
    bad: set[int] | None = None,
) -> VerifiedFile:
    """The file's verified bytes from the first copy that has them right.

    Copies that yield wrong or missing bytes are added to ``bad``, flagged
    suspect and given an audit.  A copy whose node does not answer is skipped
    without blame.  Raises NoVerifiedSource when no copy has the right bytes.
    """
    bad = set() if bad is None else bad
    if sources is None:
        with repo.catalog.session() as s:
            sources = healthiest_sources(repo, s, package_id)
    directory = spool_dir(repo)
    newly_bad: list[tuple[int, str]] = []
    errors: list[str] = []
    try:
        for src in sources:
            if src.replica_id in bad:
                continue
            try:
                spooled, problem = _spool(src, row, directory)
            except PreservationError as e:
                errors.append(f"{src.label}: {e}")
                if not e.retryable:
                    bad.add(src.replica_id)
                    newly_bad.append((src.replica_id, f"{e.code} {e}"))
                continue
            except OSError as e:
                errors.append(f"{src.label}: {e}")
                continue
            if spooled is None:
                errors.append(f"{src.label}: {problem}")
                bad.add(src.replica_id)
                newly_bad.append((src.replica_id, problem))
                continue
            return VerifiedFile(row, src.label, spooled)
    finally:
        if newly_bad:
            with repo.catalog.session() as s:
                flag_bad_sources(repo, s, s.get(Package, package_id), dict(newly_bad), agent,
                                 activity="serving it to a reader", path=row.path)
    raise NoVerifiedSource(f"serve {row.path} ({'; '.join(errors) or 'no verified copy on an active node'})",
                           package=package_id)


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


def iter_package_zip(repo: Repository, package_id: str, *, agent: str) -> Iterator[bytes]:
    """The whole bag as a zip (``<package id>/…``), streamed: each file verified, then sent.

    Nothing larger than one file's spool and one chunk is held.  If a file has
    no good copy left the stream stops with NoVerifiedSource, so the reader
    gets an incomplete zip rather than a wrong byte.
    """
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        stamp = package.created_at.timetuple()[:6]
        sources = healthiest_sources(repo, s, package_id)
    bad: set[int] = set()
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for batch in iter_package_files(repo.catalog, package_id):
            for row in batch:
                with fetch_verified(repo, package_id, row, agent=agent, sources=sources, bad=bad) as verified:
                    info = zipfile.ZipInfo(f"{package_id}/{row.path}", date_time=stamp)
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

