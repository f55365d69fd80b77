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
SQLite file (:mod:`.member_index`), and a zip is read through its central
directory one entry at a time (:mod:`.zipdir`), never through
``zipfile.ZipFile``, so the check's memory does not grow with the member
count.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
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
from .member_index import DIRECTORY, FILE, OTHER, MemberIndex, ZipMembers
from .names import canonical_path, shown, unsafe_reason
from .zipdir import (
    DATA_DESCRIPTOR,
    ENCRYPTED,
    METHODS,
    PATCHED,
    STORED,
    ZIP64_MARK,
    CentralDirectory,
    CentralEntry,
    ZipFormatError,
    central_entries,
    find_central_directory,
    open_member,
    read_local_header,
)

_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)
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

    def note_expansion(self, findings: FindingList, limit: ExpansionLimit, index: MemberIndex) -> None:
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
        with MemberIndex(self, findings, totals) as index:
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

    def _inspect_member(self, index: MemberIndex, findings: FindingList, member: tarfile.TarInfo) -> None:
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


def _zip_kind(entry: CentralEntry) -> int:
    mode = entry.mode
    if entry.is_dir or stat.S_ISDIR(mode):
        return DIRECTORY
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return OTHER
    return FILE


class ZipDelivery(ArchiveDelivery):
    """A zip archive, read through its central directory one entry at a time (:mod:`.zipdir`).

    The check opens the archive once and keeps each entry in a temporary
    SQLite file (:class:`ZipMembers`); the bag pass reads the members the
    check saw through that same descriptor, each checked for size and CRC
    while it streams.
    """

    kind = "zip"

    def __init__(self, path: str, *, strict: bool = True, limits: DeliveryLimits | None = None) -> None:
        super().__init__(path, strict=strict, limits=limits)
        self._fd: int | None = None
        self._members: ZipMembers | None = None

    def close(self) -> None:
        if self._members is not None:
            self._members.close()
            self._members = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None:
        self.close()
        self._members = ZipMembers()
        with MemberIndex(self, findings, totals) as index:
            try:
                # non-blocking: a FIFO put in the archive's place must not hang the open
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
                status = os.fstat(self._fd)
                if not stat.S_ISREG(status.st_mode):
                    raise ZipFormatError("the archive is no longer a regular file")
                directory = find_central_directory(self._fd, status.st_size)
                self._read_directory(index, findings, directory)
                # a member never produces more than its declared size (zipdir checks): their sum bounds the expansion
                self._meter().add(totals.bytes)
            except ExpansionLimit as e:
                self.note_expansion(findings, e, index)
            except _ARCHIVE_ERRORS as e:
                self.note(findings, codes.ARCHIVE_UNREADABLE, f"the zip archive cannot be read: {e}", self.source)
            index.finish()

    def _meter(self) -> ExpansionMeter:
        size = os.fstat(self._fd).st_size if self._fd is not None else os.path.getsize(self.path)
        return ExpansionMeter(size, self.limits)

    def _read_directory(self, index: MemberIndex, findings: FindingList, directory: CentralDirectory) -> None:
        """Judge every entry as it is read, then the directory's count and the members' layout."""
        fd, members = self._fd, self._members
        assert fd is not None and members is not None
        count = 0
        for entry in central_entries(fd, directory):
            if not index.count_member():
                return
            count += 1
            kind = _zip_kind(entry)
            self._inspect_member(index, findings, entry, kind)
            members.add(entry, kind, self._inspect_local_header(findings, fd, entry))
        if not directory.counts(count):
            self.note(
                findings,
                codes.ARCHIVE_LAYOUT,
                f"the end record counts {directory.declared_members} members, the central directory holds {count}",
                None,
            )
        members.complete = True
        self._inspect_overlaps(findings, members, directory.start)

    def _inspect_member(self, index: MemberIndex, findings: FindingList, entry: CentralEntry, kind: int) -> None:
        path = index.path_of(entry.name)
        if path is None:
            return
        if kind == DIRECTORY:
            index.add_dir(path)
            return
        mode = entry.mode
        if stat.S_ISLNK(mode):
            index.add_other(path)
            self._link(findings, path, self._link_target(entry))
            return
        if kind == OTHER:
            index.add_other(path)
            self.note(findings, codes.SPECIAL_FILE, "a device, FIFO or socket member", shown(path))
            return
        index.add_file(path, entry.size)
        if entry.flags & ENCRYPTED:
            self.note(findings, codes.ENCRYPTED_MEMBER, "an encrypted member cannot be read or verified", shown(path))
        if entry.method not in METHODS:
            self.note(
                findings,
                codes.UNSUPPORTED_MEMBER,
                f"compression method {entry.method} is not supported",
                shown(path),
                method=entry.method,
            )
        if entry.flags & PATCHED:
            self.note(findings, codes.UNSUPPORTED_MEMBER, "compressed patched data (flag bit 5) cannot be read alone",
                      shown(path))
        limits = self.limits
        compressed = max(entry.compressed_size, 1)
        if entry.size >= limits.ratio_min_size and entry.size > limits.max_compression_ratio * compressed:
            ratio = entry.size / compressed
            self.note(
                findings,
                codes.COMPRESSION_RATIO,
                f"{entry.compressed_size} bytes expand to {entry.size} (ratio {ratio:.0f}, "
                f"limit {limits.max_compression_ratio:g}): a zip bomb",
                shown(path),
                ratio=round(ratio),
                limit=limits.max_compression_ratio,
            )

    def _link_target(self, entry: CentralEntry) -> str:
        """The link's target, or "/" (judged outside) when it cannot be read safely."""
        if entry.flags & (ENCRYPTED | PATCHED) or entry.size > _MAX_LINK_TARGET or entry.method not in METHODS:
            return "/"
        assert self._fd is not None
        try:
            with io.BufferedReader(open_member(self._fd, entry)) as reader:
                return reader.read().decode("utf-8", "surrogateescape")
        except _ARCHIVE_ERRORS:
            return "/"

    def _inspect_local_header(self, findings: FindingList, fd: int, entry: CentralEntry) -> int | None:
        """Where the member's data ends; None (after reporting) when it has no local header."""
        header = read_local_header(fd, entry)
        name = shown(entry.name)
        if header is None:
            self.note(findings, codes.ARCHIVE_LAYOUT, "no local file header where the directory says", name)
            return None
        if not header.names_match:
            self.note(findings, codes.ARCHIVE_LAYOUT, "the local header names another file than the central directory",
                      name)
        local = (header.compressed_size, header.size, header.crc)
        if not header.flags & DATA_DESCRIPTOR and ZIP64_MARK not in local[:2]:
            if local != (entry.compressed_size, entry.size, entry.crc):
                self.note(
                    findings,
                    codes.ARCHIVE_LAYOUT,
                    f"declared sizes differ: local header {header.size} bytes ({header.compressed_size} compressed), "
                    f"central directory {entry.size} ({entry.compressed_size} compressed)",
                    name,
                )
        if entry.method == STORED and entry.compressed_size != entry.size:
            self.note(
                findings,
                codes.ARCHIVE_LAYOUT,
                f"a stored member of {entry.size} bytes takes {entry.compressed_size} in the archive",
                name,
            )
        return header.data_start + entry.compressed_size

    def _inspect_overlaps(self, findings: FindingList, members: ZipMembers, end_of_data: int) -> None:
        """Members must not overlap (the construction of the worst zip bombs) nor run into the directory."""
        previous: tuple[int, str] | None = None
        furthest: tuple[int, str] | None = None
        for start, end, raw in members.spans():
            name = shown(raw.decode("utf-8", "surrogateescape"))
            if previous is not None and previous[0] > start:
                self.note(
                    findings,
                    codes.ARCHIVE_LAYOUT,
                    f"the member's data overlaps member {name!r} (a zip bomb construction)",
                    previous[1],
                )
            previous = (end, name)
            if furthest is None or end > furthest[0]:
                furthest = previous
        if furthest is not None and furthest[0] > end_of_data:
            self.note(findings, codes.ARCHIVE_LAYOUT, "the member's data runs past the end of the archive", furthest[1])

    def entries(self) -> Iterator[DeliveryEntry]:
        """The regular members the check saw; reading them raises ExpansionLimit at the archive's limits.

        Raises ZipFormatError when the check could not read the whole
        central directory.
        """
        if self._members is None:
            self.check()
        members, fd = self._members, self._fd
        if members is None or fd is None or not members.complete:
            raise ZipFormatError("the central directory was not read whole; the check refuses this archive")
        meter = self._meter()
        for entry in members.files():
            raw = entry.name
            if unsafe_reason(raw) is not None:
                raise self._refuse_member(raw, "unsafe path")
            yield DeliveryEntry(canonical_path(raw), entry.size, partial(_open_metered, fd, entry, meter))


def _open_metered(fd: int, entry: CentralEntry, meter: ExpansionMeter) -> BinaryIO:
    return io.BufferedReader(_Metered(open_member(fd, entry), meter))


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
