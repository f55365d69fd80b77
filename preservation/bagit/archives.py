"""Deliveries that are archives: tar (plain, gzip, bzip2, xz) and zip.

Members are never extracted: :meth:`entries` hands out readers over the
archive and the bag writer streams them into the bag.  :meth:`check` reads
every member header first and reports absolute and ``..`` paths, links,
devices, duplicate and colliding names, encrypted members, zip bombs
(compression ratio, total size, overlapping members, local headers that
disagree with the central directory) and unreadable archives.

Decompressed bytes are counted as they are produced, against a
whole-archive expansion ratio and a cap (:class:`ExpansionMeter`).  To find
duplicates and collisions the check keeps every member path in a temporary
SQLite file (an archive has no directories to walk one at a time), so its
memory does not grow with the member count.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sqlite3
import stat
import struct
import tarfile
import zipfile
import zlib
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO, Iterator

from preservation import codes
from preservation.errors import DeliveryRejected
from preservation.findings import FindingList

from .delivery_base import Delivery, DeliveryEntry, DeliveryLimits, DeliveryTotals, ExpansionLimit, ExpansionMeter
from .names import canonical_path, fold, nfc, shown, unsafe_reason

_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_MAX_LINK_TARGET = 4096
_COMPRESSED_TAR = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
"""Magic bytes of the compressions tarfile reads ("r:*"), and the reader that decompresses each."""
MAX_EXTENDED_HEADER = 1024 * 1024
"""Largest pax or GNU long-name header read: tarfile holds one whole in memory (real ones are a few hundred bytes)."""
_EXTENDED_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                   tarfile.GNUTYPE_LONGLINK)
_TAR_FRAMING = 2 * tarfile.BLOCKSIZE
"""A plain member's header block and the most padding its data can have (longer names cost more, as content)."""


class _MemberIndex:
    """Every member path, kept in a temporary SQLite file rather than in memory, for the checks that need them all.

    Duplicates, file/directory clashes, colliding names and empty
    directories can only be judged once every member has been seen (an
    archive lists them in any order).  Rows go to disk in batches and the
    judging is a few sorted queries at :meth:`finish`, so memory stays flat
    whatever the member count (a set of paths cost about 730 bytes per
    member).  Paths are stored as UTF-8 with lone surrogates passed
    through, so undecodable names survive the round trip.
    """

    _BATCH = 10_000

    def __init__(self, delivery: "ArchiveDelivery", findings: FindingList, totals: DeliveryTotals) -> None:
        self.delivery = delivery
        self.findings = findings
        self.totals = totals
        self.members = 0
        self.over_size = False
        self.held_bag = False
        # "" opens a private database in a temporary file, deleted when it is closed
        self._db = sqlite3.connect("")
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-2048"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE member (path BLOB NOT NULL, parent BLOB NOT NULL, kind INTEGER NOT NULL)")
        self._db.create_function("folded_name", 1, _folded_name, deterministic=True)
        self._rows: list[tuple[bytes, bytes, int]] = []
        self._chain: frozenset[str] = frozenset()
        """The directories above the previous member, whose rows are already written."""

    def __enter__(self) -> "_MemberIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()

    def path_of(self, raw: str) -> str | None:
        """The canonical relative path of member name ``raw``; None (after reporting) when unsafe or the root."""
        name = raw.rstrip("/") if raw not in ("/", "") else raw
        reason = unsafe_reason(name)
        if reason is not None:
            code = codes.ABSOLUTE_PATH if reason == "absolute path" else codes.PATH_TRAVERSAL
            self.delivery.note(self.findings, code, f"{reason}: the member is never extracted", shown(raw))
            return None
        path = canonical_path(name)
        if path in ("", "."):
            return None
        depth = path.count("/") + 1
        if depth > self.delivery.limits.max_depth:
            self.delivery.note(
                self.findings,
                codes.TOO_DEEP,
                f"the member is {depth} levels deep (limit {self.delivery.limits.max_depth})",
                shown(path),
                limit=self.delivery.limits.max_depth,
            )
            return None
        return path

    def _add(self, path: str, kind: int) -> None:
        parent = path.rpartition("/")[0]
        self._rows.append((_blob(path), _blob(parent), kind))
        if parent and parent not in self._chain:
            segments = parent.split("/")
            chain = frozenset("/".join(segments[: i + 1]) for i in range(len(segments)))
            for directory in chain - self._chain:
                self._rows.append((_blob(directory), _blob(directory.rpartition("/")[0]), _IMPLIED))
            self._chain = chain
        if len(self._rows) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO member (path, parent, kind) VALUES (?, ?, ?)", self._rows)
        self._rows.clear()

    def count_member(self) -> bool:
        """Count one member; False (after reporting once) when the member limit is passed."""
        self.members += 1
        if self.members > self.delivery.limits.max_members:
            self.delivery.note(
                self.findings,
                codes.TOTAL_SIZE_LIMIT,
                f"the archive has more than {self.delivery.limits.max_members} members; inspection stopped",
                None,
                limit=self.delivery.limits.max_members,
            )
            return False
        return True

    def add_file(self, path: str, size: int) -> None:
        self._add(path, _FILE)
        self.delivery.check_path_length(self.findings, path)
        self.totals.files += 1
        self.totals.bytes += size
        limit = self.delivery.limits.max_total_bytes
        if self.totals.bytes > limit and not self.over_size:
            self.over_size = True
            self.delivery.note(
                self.findings,
                codes.TOTAL_SIZE_LIMIT,
                f"the archive expands to more than {limit} bytes",
                None,
                limit=limit,
            )
        if not self.held_bag and (path == "bagit.txt" or (path.count("/") == 1 and path.endswith("/bagit.txt"))):
            self.held_bag = True
            self.delivery.note(
                self.findings,
                codes.ARCHIVE_HOLDS_BAG,
                "the archive holds a bag; it will be bagged as payload (unpack it to keep it as it is)",
                shown(path),
            )

    def add_dir(self, path: str) -> None:
        self._add(path, _DIRECTORY)

    def add_other(self, path: str) -> None:
        self._add(path, _OTHER)

    def finish(self) -> None:
        """Judge every member path at once: names, collisions, duplicates, clashes, empty directories."""
        self._flush()
        self._names()
        note, findings = self.delivery.note, self.findings
        # one sorted pass: how often each path is a file, an explicit directory, a directory above a member
        rows = self._db.execute(
            "SELECT path, SUM(kind = ?) AS files, SUM(kind = ?) AS dirs, SUM(kind = ?) AS above FROM member"
            " GROUP BY path HAVING files > 1 OR (files > 0 AND dirs + above > 0) OR (dirs > 0 AND above = 0)",
            (_FILE, _DIRECTORY, _IMPLIED),
        )
        for path, files, dirs, above in rows:
            shown_path = shown(_text(path))
            if files > 1:
                note(findings, codes.DUPLICATE_MEMBER, "the archive holds this path twice", shown_path)
            if files and dirs + above:
                note(findings, codes.FILE_AND_DIRECTORY, "the path is both a file and a directory", shown_path)
            elif dirs and not above:
                note(findings, codes.EMPTY_DIRECTORY, "an empty directory cannot be carried in a bag", shown_path)

    def _names(self) -> None:
        """Each distinct name once, then siblings that one filesystem or another would store as one."""
        rows = self._db.execute(
            "WITH distinct_paths AS MATERIALIZED (SELECT DISTINCT parent, path FROM member)"
            " SELECT parent, path, folded_name(path) AS folded FROM distinct_paths ORDER BY parent, folded, path"
        )
        check_name, check_siblings, findings = self.delivery.check_name, self.delivery.check_siblings, self.findings
        group: list[str] = []
        key: tuple[bytes, bytes] | None = None
        for parent, path, folded in rows:
            text = _text(path)
            name = text.rpartition("/")[2]
            check_name(findings, text, name)
            if (parent, folded) != key:
                if len(group) > 1 and key is not None:
                    check_siblings(findings, _text(key[0]), group)
                group, key = [], (parent, folded)
            group.append(name)
        if len(group) > 1 and key is not None:
            check_siblings(findings, _text(key[0]), group)


_FILE, _DIRECTORY, _OTHER, _IMPLIED = range(4)
"""Kinds of member row; implied rows are the directories above a member."""


def _folded_name(path: bytes) -> bytes:
    """The key under which a case-insensitive filesystem stores the last segment of ``path``."""
    return _blob(fold(_text(path).rpartition("/")[2]))


def _blob(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _text(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogatepass")


class ArchiveDelivery(Delivery):
    sequential = True
    stream_errors = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)

    def __init__(self, path: str, *, strict: bool = True, limits: DeliveryLimits | None = None) -> None:
        super().__init__(path, strict=strict, limits=limits)
        self.path = os.path.abspath(path)

    def _link(self, findings: FindingList, path: str, target: str) -> None:
        parent = path.rpartition("/")[0]
        joined = f"{parent}/{target}" if parent else target
        if unsafe_reason(target) is None and unsafe_reason(joined) is None:
            self.note(
                findings,
                codes.SYMLINK_INSIDE,
                f"a symbolic link member (to {shown(target)!r}); links are never extracted",
                shown(path),
                target=shown(target),
            )
        else:
            self.note(
                findings,
                codes.SYMLINK_OUTSIDE,
                f"a symbolic link member pointing outside the archive (to {shown(target)!r})",
                shown(path),
                target=shown(target),
            )

    def note_expansion(self, findings: FindingList, limit: ExpansionLimit, index: _MemberIndex) -> None:
        """Report the limit decompression met, unless the declared sizes already passed the same cap."""
        if limit.code == codes.TOTAL_SIZE_LIMIT and index.over_size:
            return
        self.note(findings, limit.code, str(limit), None, produced=limit.produced, limit=limit.limit)

    def _refuse_member(self, raw: str, reason: str) -> DeliveryRejected:
        return DeliveryRejected(f"member {shown(raw)!r}: {reason}; run the check first", source=self.source)


class _UnsupportedHeader(tarfile.TarError):
    """A tar header refused before tarfile would hold what it announces in memory."""


class _GuardedTarInfo(tarfile.TarInfo):
    """Tar headers as tarfile reads them, less the two it would hold whole in memory however large.

    An extended header (pax, GNU long name) is read into memory in one
    piece, and a sparse member's map into a list of numbers: within the
    expansion limits, a crafted archive could take gigabytes either way
    (a 61 MB tar.gz with a 100 MB pax header grew the check by 315 MB).
    Both raise :class:`_UnsupportedHeader` instead: headers past
    :data:`MAX_EXTENDED_HEADER`, and sparse members of every format.
    """

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_EXTENDED_HEADER:
            raise _UnsupportedHeader(
                f"an extended header of {self.size} bytes (at most {MAX_EXTENDED_HEADER} are read)"
            )
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _UnsupportedHeader("a sparse member (pack the archive without --sparse)")
        return super()._proc_member(archive)

    def _refuse_sparse(self, *args: object) -> None:
        raise _UnsupportedHeader("a sparse member (pack the archive without --sparse)")

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


def is_tar(path: str) -> bool:
    """Whether ``path`` holds a tar archive (plain or compressed); raises OSError when it cannot be read."""
    try:
        with tarfile.open(path, "r:*", tarinfo=_GuardedTarInfo):
            return True
    except _UnsupportedHeader:
        return True  # a tar, whose check will say what is refused in it
    except tarfile.TarError:
        return False


class TarDelivery(ArchiveDelivery):
    """A tar archive, plain or compressed (gzip, bzip2, xz), read in one forward pass."""

    kind = "tar"

    @contextmanager
    def _open(self, meter: ExpansionMeter) -> Iterator[tarfile.TarFile]:
        """The archive, read forward; ``meter`` counts the bytes decompression produces as they come.

        A plain tar is read as it is (it cannot expand, and member data is
        skipped by seeking, not read).
        """
        with open(self.path, "rb") as raw:
            head = raw.read(6)
            raw.seek(0)
            reader: BinaryIO = raw
            for magic, decompressor in _COMPRESSED_TAR:
                if head.startswith(magic):
                    reader = _Metered(decompressor(raw), meter)
                    break
            with reader, tarfile.open(fileobj=reader, mode="r:", tarinfo=_GuardedTarInfo) as tar:
                yield tar

    def _meter(self) -> ExpansionMeter:
        return ExpansionMeter(os.path.getsize(self.path), self.limits)

    def _members(self, tar: tarfile.TarFile, meter: ExpansionMeter) -> Iterator[tarfile.TarInfo]:
        while True:
            member = tar.next()
            if member is None:
                return
            # TarFile keeps every header it has read; drop them, so memory stays flat
            tar.members.clear()
            meter.credit(_TAR_FRAMING)
            yield member

    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None:
        meter = self._meter()
        with _MemberIndex(self, findings, totals) as index:
            try:
                with self._open(meter) as tar:
                    for member in self._members(tar, meter):
                        if not index.count_member():
                            break
                        self._inspect_member(index, findings, member)
            except ExpansionLimit as e:
                self.note_expansion(findings, e, index)
            except _UnsupportedHeader as e:
                self.note(findings, codes.UNSUPPORTED_MEMBER, f"{e}: inspection stopped", self.source)
            except _ARCHIVE_ERRORS as e:
                self.note(findings, codes.ARCHIVE_UNREADABLE, f"the tar archive cannot be read: {e}", self.source)
            index.finish()

    def _inspect_member(self, index: _MemberIndex, findings: FindingList, member: tarfile.TarInfo) -> None:
        path = index.path_of(member.name)
        if path is None:
            return
        if member.isreg():
            index.add_file(path, member.size)
        elif member.isdir():
            index.add_dir(path)
        elif member.issym():
            index.add_other(path)
            self._link(findings, path, member.linkname)
        elif member.islnk():
            index.add_other(path)
            # unlike a hard-linked file in a directory, this member has no bytes of its own: always an error
            codes.note(
                findings,
                codes.HARD_LINK,
                f"a hard link member (to {shown(member.linkname)!r}) cannot be carried",
                shown(path),
                target=shown(member.linkname),
            )
        elif member.ischr() or member.isblk() or member.isfifo():
            index.add_other(path)
            what = "character device" if member.ischr() else "block device" if member.isblk() else "FIFO"
            self.note(findings, codes.SPECIAL_FILE, f"a {what} member: only regular files can be preserved", shown(path))
        else:
            index.add_other(path)
            self.note(
                findings,
                codes.UNSUPPORTED_MEMBER,
                f"a member of unsupported tar type {member.type!r}",
                shown(path),
            )

    def entries(self) -> Iterator[DeliveryEntry]:
        """The regular members, in archive order; reading them raises ExpansionLimit at the archive's limits."""
        meter = self._meter()
        with self._open(meter) as tar:
            for member in self._members(tar, meter):
                if not member.isreg():
                    continue
                if unsafe_reason(member.name.rstrip("/")) is not None:
                    raise self._refuse_member(member.name, "unsafe path")
                path = canonical_path(member.name)
                yield DeliveryEntry(path, member.size, partial(_extract, tar, member))


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo):
    reader = tar.extractfile(member)
    if reader is None:
        raise OSError(f"{member.name!r} has no data")
    return reader


class ZipDelivery(ArchiveDelivery):
    """A zip archive; member data is checked for size and CRC while it streams."""

    kind = "zip"

    def __init__(self, path: str, *, strict: bool = True, limits: DeliveryLimits | None = None) -> None:
        super().__init__(path, strict=strict, limits=limits)
        self._zip: zipfile.ZipFile | None = None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None:
        with _MemberIndex(self, findings, totals) as index:
            try:
                archive = self._archive()
                infos = archive.infolist()
                self._inspect_layout(findings, archive, infos)
                for info in infos:
                    if not index.count_member():
                        break
                    self._inspect_member(index, findings, archive, info)
                # zipfile never lets a member produce more than its declared size: their sum bounds the expansion
                self._meter().add(totals.bytes)
            except ExpansionLimit as e:
                self.note_expansion(findings, e, index)
            except _ARCHIVE_ERRORS as e:
                self.note(findings, codes.ARCHIVE_UNREADABLE, f"the zip archive cannot be read: {e}", self.source)
            index.finish()

    def _meter(self) -> ExpansionMeter:
        return ExpansionMeter(os.path.getsize(self.path), self.limits)

    def _inspect_member(
        self, index: _MemberIndex, findings: FindingList, archive: zipfile.ZipFile, info: zipfile.ZipInfo
    ) -> None:
        path = index.path_of(member_name(info))
        if path is None:
            return
        mode = (info.external_attr >> 16) if info.create_system == 3 else 0
        if info.is_dir() or stat.S_ISDIR(mode):
            index.add_dir(path)
            return
        if stat.S_ISLNK(mode):
            index.add_other(path)
            self._link(findings, path, self._link_target(archive, info))
            return
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            index.add_other(path)
            self.note(findings, codes.SPECIAL_FILE, "a device, FIFO or socket member", shown(path))
            return
        index.add_file(path, info.file_size)
        if info.flag_bits & 0x1:
            self.note(findings, codes.ENCRYPTED_MEMBER, "an encrypted member cannot be read or verified", shown(path))
        if info.compress_type not in _ZIP_METHODS:
            self.note(
                findings,
                codes.UNSUPPORTED_MEMBER,
                f"compression method {info.compress_type} is not supported",
                shown(path),
                method=info.compress_type,
            )
        limits = self.limits
        if (
            info.file_size >= limits.ratio_min_size
            and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1)
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            self.note(
                findings,
                codes.COMPRESSION_RATIO,
                f"{info.compress_size} bytes expand to {info.file_size} (ratio {ratio:.0f}, "
                f"limit {limits.max_compression_ratio:g}): a zip bomb",
                shown(path),
                ratio=round(ratio),
                limit=limits.max_compression_ratio,
            )

    def _link_target(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
        """The link's target, or "/" (judged outside) when it cannot be read safely."""
        if info.flag_bits & 0x1 or info.file_size > _MAX_LINK_TARGET or info.compress_type not in _ZIP_METHODS:
            return "/"
        try:
            return archive.read(info).decode("utf-8", "surrogateescape")
        except _ARCHIVE_ERRORS:
            return "/"

    def _inspect_layout(self, findings: FindingList, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
        """Local headers must agree with the central directory and members must not overlap."""
        end_of_data = getattr(archive, "start_dir", None) or os.path.getsize(self.path)
        fp = archive.fp
        spans: list[tuple[int, int, str]] = []
        for info in infos:
            fp.seek(info.header_offset)
            header = fp.read(_LOCAL_HEADER.size)
            name = shown(member_name(info))
            if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
                self.note(findings, codes.ARCHIVE_LAYOUT, "no local file header where the directory says", name)
                continue
            fields = _LOCAL_HEADER.unpack(header)
            flags, crc, compressed, size, name_len, extra_len = fields[2], fields[6], fields[7], fields[8], fields[9], fields[10]
            local_name = fp.read(name_len)
            if local_name != _raw_name(info):
                self.note(
                    findings,
                    codes.ARCHIVE_LAYOUT,
                    "the local header names another file than the central directory",
                    name,
                )
            if not flags & 0x08 and 0xFFFFFFFF not in (compressed, size):
                if (compressed, size, crc) != (info.compress_size, info.file_size, info.CRC):
                    self.note(
                        findings,
                        codes.ARCHIVE_LAYOUT,
                        f"declared sizes differ: local header {size} bytes ({compressed} compressed), "
                        f"central directory {info.file_size} ({info.compress_size} compressed)",
                        name,
                    )
            start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
            spans.append((info.header_offset, start + info.compress_size, name))
        spans.sort()
        for (_, end, name), (next_start, _, next_name) in zip(spans, spans[1:]):
            if end > next_start:
                self.note(
                    findings,
                    codes.ARCHIVE_LAYOUT,
                    f"the member's data overlaps member {next_name!r} (a zip bomb construction)",
                    name,
                )
        if spans and spans[-1][1] > end_of_data:
            self.note(findings, codes.ARCHIVE_LAYOUT, "the member's data runs past the end of the archive", spans[-1][2])

    def entries(self) -> Iterator[DeliveryEntry]:
        """The regular members; reading them raises ExpansionLimit at the archive's limits."""
        archive = self._archive()
        meter = self._meter()
        for info in archive.infolist():
            if info.is_dir():
                continue
            mode = (info.external_attr >> 16) if info.create_system == 3 else 0
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                continue
            raw = member_name(info)
            if unsafe_reason(raw) is not None:
                raise self._refuse_member(raw, "unsafe path")
            yield DeliveryEntry(canonical_path(raw), info.file_size, partial(_open_metered, archive, info, meter))


def _open_metered(archive: zipfile.ZipFile, info: zipfile.ZipInfo, meter: ExpansionMeter) -> BinaryIO:
    return io.BufferedReader(_Metered(archive.open(info), meter))


class _Metered(io.RawIOBase):
    """A reader of decompressed bytes that counts them on ``meter`` as they are produced.

    It seeks forward only, by reading (and counting) what it skips, as a
    decompressor's own seek does: tarfile skips member data that way.
    """

    _SKIP = 256 * 1024

    def __init__(self, inner: BinaryIO, meter: ExpansionMeter) -> None:
        self._inner = inner
        self._meter = meter
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        count = self._inner.readinto(buffer)
        self._meter.add(count)
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self._position if whence == io.SEEK_CUR else 0)
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self._position:
            raise io.UnsupportedOperation("a decompressed stream only seeks forward")
        scratch = memoryview(bytearray(min(self._SKIP, target - self._position)))
        while self._position < target:
            if not self.readinto(scratch[: target - self._position]):
                break
        return self._position

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    if info.flag_bits & 0x800:
        return info.orig_filename.encode("utf-8")
    try:
        return info.orig_filename.encode("cp437")
    except UnicodeEncodeError:
        return info.orig_filename.encode("utf-8")


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name: UTF-8 when flagged, or when its undeclared bytes are valid UTF-8 (as Info-ZIP writes).

    Names that are not UTF-8 keep their bytes as surrogate escapes, so the
    name check reports them.  NUL bytes are kept (zipfile cuts names there).
    """
    name = info.orig_filename
    if info.flag_bits & 0x800 or name.isascii():
        return name
    return _raw_name(info).decode("utf-8", "surrogateescape")
