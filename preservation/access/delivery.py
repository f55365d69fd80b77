"""Serving bytes: from the healthiest copy, verified before they leave.

A file is read from the most recently verified copy on a readable node
(:mod:`preservation.sources`: every node not offline).  A file larger than
one chunk with chunk digests in the catalog (:mod:`preservation.chunks`) is
streamed chunk by chunk (:class:`ChunkedFile`): each 1 MiB chunk is read
whole and checked against its digest before any byte of it is handed on, so
the first byte leaves after one chunk, and a Range request reads and checks
only the chunks it touches.  A file of one chunk or less is read whole into
memory and checked against its sha256.  A file without chunk digests (a
package ingested before they existed) is spooled through a temporary file
while its sha256 is computed; only when size and sha256 match is the
temporary file handed on, and the chunk digests computed in that pass are
kept, so the next reader gets it streamed (an audit of a copy fills them
too: :mod:`preservation.audit`).

A copy that yields other bytes is dropped, flagged ``suspect`` with a full
audit queued (the audit then marks it corrupt and queues its repair), and
the same bytes are read from the next copy: mid-stream, from the chunk that
failed.  When no copy has that chunk right the stream ends with an error
(NoVerifiedSource): a reader never receives a byte the catalog does not
vouch for.

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

from preservation import chunks, versions
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package, PackageFile
from preservation.chunk_digests import CHUNK_BYTES, ChunkHasher, chunk_digest, chunk_span, digest_at, needs_chunks
from preservation.errors import (
    ChecksumMismatch,
    NotFound,
    NoVerifiedSource,
    PreservationError,
    SourceFailed,
    StorageError,
)
from preservation.layout import PackageLayout
from preservation.package_state import flag_bad_sources
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, blames_copy, from_first_verified, verified_sources

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

    def head(self, n: int) -> bytes:
        """The file's first ``n`` bytes (or all of it, when shorter)."""
        self.file.seek(0)
        return self.file.read(n)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "VerifiedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _spool(src: CopySource, row: FileRow, directory: Path, hasher: ChunkHasher | None = None) -> IO[bytes]:
    """The copy's bytes in a temporary file, checked against the catalog's size and sha256.

    ``hasher`` (a new one for each attempt) computes the chunk digests in the same pass.

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
            if hasher is not None:
                hasher.update(chunk)
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
    blamed: Blamed | None = None, keep_chunks: bool = False,
) -> VerifiedFile:
    """The file's verified bytes from the first copy that has them right.

    Copies that yield wrong or missing bytes are added to ``blamed``, flagged
    suspect and given an audit.  A copy whose node does not answer is skipped
    without blame.  ``keep_chunks``: the file has no chunk digests yet; those
    computed while spooling it are recorded once its sha256 matched.  Raises
    NoVerifiedSource when no copy has the right bytes.
    """
    blamed = Blamed() if blamed is None else blamed
    if sources is None:
        with repo.catalog.session() as s:
            sources = verified_sources(repo, s, package_id)
    directory = spool_dir(repo)
    before = blamed.problems()
    hashers: list[ChunkHasher] = []

    def attempt(src: CopySource) -> IO[bytes]:
        hashers[:] = [ChunkHasher()] if keep_chunks and needs_chunks(row.size) else []
        return _spool(src, row, directory, hashers[0] if hashers else None)

    try:
        src, spooled = from_first_verified(sources, attempt, blamed, doing=f"serve {row.path}", package_id=package_id)
    finally:
        newly_blamed = {rid: problem for rid, problem in blamed.problems().items() if rid not in before}
        if newly_blamed:
            with repo.catalog.session() as s:
                flag_bad_sources(repo.policy, s, s.get(Package, package_id), newly_blamed, agent,
                                 activity="serving it to a reader", path=row.path)
    if hashers:
        with repo.catalog.session() as s:
            chunks.record(s, package_id, row.path, hashers[0].digests())
    return VerifiedFile(row, src.label, spooled)


class ChunkedFile:
    """A file read chunk by chunk from the first copy that has each chunk right, every chunk checked first.

    A chunk is checked against its digest (a file of one chunk: against its
    sha256) before any byte of it is handed on.  A copy whose chunk is wrong,
    short or unreadable is blamed and flagged at once (suspect, an audit
    queued), and the chunk is read again from the next copy, at its offset;
    a copy whose node does not answer is skipped without blame.  When no copy
    is left, :meth:`chunks` raises NoVerifiedSource: the bytes already handed
    on were all right, and none after them is sent.
    """

    def __init__(self, repo: Repository, package_id: str, row: FileRow, digests: bytes | None,
                 sources: list[CopySource], *, agent: str, blamed: Blamed | None = None) -> None:
        self.repo = repo
        self.package_id = package_id
        self.row = row
        self.agent = agent
        self._digests = digests
        self._sources = sources
        self._blamed = Blamed() if blamed is None else blamed
        self._skipped: set[int] = set()
        self._errors: list[str] = []
        self._ready: tuple[int, bytes] | None = None
        self.source = ""

    @property
    def size(self) -> int:
        return self.row.size

    def prepare(self, start: int, end: int) -> None:
        """Read and check the first chunk ``start``..``end`` touches, so that a failure is known before
        a response starts.  Raises NoVerifiedSource."""
        span = chunk_span(start, end)
        first = span[0] if span else 0  # an empty file: its one empty "chunk" is checked against its sha256
        self._ready = (first, bytes(next(self._read(first, first))))

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start``..``end`` (exclusive), one checked chunk (or the part of it asked for) at a time."""
        end = self.row.size if end is None else end
        span = chunk_span(start, end)
        if not span:
            return
        first = span[0]
        if self._ready is not None and self._ready[0] == first:
            pieces = self._after_ready(first, span[-1])
        else:
            pieces = self._read(first, span[-1])
        for index, data in zip(span, pieces):
            base = index * CHUNK_BYTES
            yield bytes(data[max(start - base, 0):min(end - base, len(data))])

    def head(self, n: int) -> bytes:
        """The file's first ``n`` bytes (at most one chunk), checked."""
        if self._ready is not None and self._ready[0] == 0:
            return self._ready[1][:n]
        return bytes(next(self._read(0, 0))[:n])

    def close(self) -> None:
        self._ready = None

    def __enter__(self) -> "ChunkedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _after_ready(self, first: int, last: int) -> Iterator[bytes | memoryview]:
        ready, self._ready = self._ready, None
        yield ready[1]
        if last > first:
            yield from self._read(first + 1, last)

    def _expected_length(self, index: int) -> int:
        return min(CHUNK_BYTES, self.row.size - index * CHUNK_BYTES)

    def _good(self, index: int, data: bytes | memoryview) -> bool:
        if self._digests is None:
            return hashlib.sha256(data).hexdigest() == self.row.sha256
        return chunk_digest(data) == digest_at(self._digests, index)

    def _candidate(self, index: int) -> CopySource:
        for src in self._sources:
            if src.replica_id not in self._blamed and id(src) not in self._skipped:
                return src
        raise NoVerifiedSource(
            f"serve {self.row.path} from byte {index * CHUNK_BYTES} "
            f"({'; '.join(self._errors) or 'no verified copy on a readable node'})", package=self.package_id)

    def _read(self, first: int, last: int) -> Iterator[bytes | memoryview]:
        """Chunks ``first``..``last`` (inclusive), each checked, from one copy while it is right."""
        index = first
        while index <= last:
            src = self._candidate(index)
            offset = index * CHUNK_BYTES
            pieces = _exact_chunks(src, self.row.path, offset, min(self.row.size, (last + 1) * CHUNK_BYTES) - offset)
            try:
                while index <= last:
                    want = self._expected_length(index)
                    try:
                        data = next(pieces, b"")
                    except SourceFailed as failed:
                        self._failed(src, failed.error)
                        break
                    if len(data) != want:
                        self._failed(src, ChecksumMismatch(
                            f"ends {want - len(data)} bytes early in chunk {index}", key=self.row.path))
                        break
                    if not self._good(index, data):
                        self._failed(src, ChecksumMismatch(
                            f"chunk {index} (bytes {offset}-{offset + want - 1}) differs from the catalog's digest"
                            if self._digests is not None else "sha256 differs from the catalog's", key=self.row.path))
                        break
                    self.source = self.source or src.label
                    yield data
                    index += 1
                    offset += want
            finally:
                pieces.close()

    def _failed(self, src: CopySource, error: BaseException) -> None:
        self._errors.append(f"{src.label}: {error}")
        if src.replica_id is None or not blames_copy(error):
            self._skipped.add(id(src))
            return
        problem = str(error) if isinstance(error, ChecksumMismatch) else f"{getattr(error, 'code', '')} {error}"
        self._blamed.add(src.replica_id, problem)
        with self.repo.catalog.session() as s:
            flag_bad_sources(self.repo.policy, s, s.get(Package, self.package_id), {src.replica_id: problem},
                             self.agent, activity="serving it to a reader", path=self.row.path)


def _exact_chunks(src: CopySource, path: str, offset: int, length: int) -> Iterator[bytes | memoryview]:
    """``length`` bytes of ``path`` from ``offset`` on, in pieces of CHUNK_BYTES (the last one shorter): one read.

    The pieces are views of what the copy gave where they can be (no copy of
    the bytes is made to cut them).  Raises SourceFailed when the copy cannot
    be read.
    """
    pending = bytearray()
    for piece in _stream_range(src, path, offset, length):
        view = memoryview(piece)
        if pending:
            take = view[:CHUNK_BYTES - len(pending)]
            pending += take
            view = view[len(take):]
            if len(pending) < CHUNK_BYTES:
                continue
            yield bytes(pending)
            pending = bytearray()
        while len(view) >= CHUNK_BYTES:
            yield view[:CHUNK_BYTES]
            view = view[CHUNK_BYTES:]
        if view:
            pending += view
    if pending:
        yield bytes(pending)


def _stream_range(src: CopySource, path: str, offset: int, length: int) -> Iterator[bytes]:
    try:
        yield from src.adapter.read(src.key(path), offset, length)
    except PreservationError as e:
        raise SourceFailed(e) from e


def open_verified(
    repo: Repository, package_id: str, row: FileRow, *, agent: str, start: int = 0, end: int | None = None,
    sources: list[CopySource] | None = None, blamed: Blamed | None = None,
) -> VerifiedFile | ChunkedFile:
    """The file ``row`` of ``package_id`` (the package storing its bytes), ready to hand on bytes ``start``..``end``.

    With chunk digests (or at most one chunk long) it is streamed, its first
    chunk already read and checked; without them it is spooled and verified
    whole, and its chunk digests recorded.  Use ``chunks(start, end)`` and
    ``close()``; the file's ``source`` names the copy that gave the first
    chunk.  ``sources`` and ``blamed`` may be shared by the files of one
    piece of work (a zip), so that a copy blamed for one file is not read for
    the next.  Raises NoVerifiedSource when no copy has the first chunk right
    (then nothing has been handed on); ``chunks`` raises it mid-stream when
    no copy has a later chunk right.
    """
    end = row.size if end is None else end
    digests = None
    if needs_chunks(row.size) or sources is None:
        with repo.catalog.session() as s:
            digests = chunks.load(s, package_id, row.path, row.size) if needs_chunks(row.size) else None
            sources = verified_sources(repo, s, package_id) if sources is None else sources
    if digests is None and needs_chunks(row.size):
        return fetch_verified(repo, package_id, row, agent=agent, sources=sources, blamed=blamed, keep_chunks=True)
    streamed = ChunkedFile(repo, package_id, row, digests, sources, agent=agent, blamed=blamed)
    streamed.prepare(start, end)
    return streamed


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
    """The whole bag as a zip (``<package id>/…``), streamed: each file's bytes verified before they are sent,
    chunk by chunk as :func:`open_verified` reads them.

    ``versioned``: the package is a version, whose unchanged files lie where
    earlier versions stored them; the zip holds its complete state.  Nothing
    larger than one chunk is held (or one file's spool, for a file without
    chunk digests).  If a chunk has no good copy left the stream stops with
    NoVerifiedSource, so the reader gets an incomplete zip rather than a
    wrong byte.
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
                with open_verified(repo, holder, row, agent=agent, sources=sources[holder],
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
