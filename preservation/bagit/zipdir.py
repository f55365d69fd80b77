"""A zip's central directory, read one entry at a time, and its members, read without ``zipfile.ZipFile``.

``zipfile.ZipFile`` reads the whole central directory into memory and keeps
a ``ZipInfo`` per member (about 720 bytes each: 7 GB at the ten-million
member limit).  Here the end records are found where ``zipfile`` finds them
(an archive comment, and bytes prepended to the archive, are accepted
alike), the directory is walked through a bounded window
(:func:`central_entries`), and a member is opened by reading its local
header and decompressing its data as it is read (:func:`open_member`), its
size and CRC checked at its end.

Every fault of structure raises :class:`ZipFormatError`, a
``zipfile.BadZipFile``: numbers that point outside the archive, lengths that
run past their record, a central directory that does not fit before its end
record.  Nothing here trusts a number before it is range-checked.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Iterator

STORED, DEFLATED, BZIP2, LZMA = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA
METHODS = frozenset({STORED, DEFLATED, BZIP2, LZMA})
"""Compression methods a member may use."""
ENCRYPTED = 0x0001
PATCHED = 0x0020
"""Flag bits: an encrypted member; "compressed patched data", which needs the file it patches."""
DATA_DESCRIPTOR = 0x0008
"""Flag bit: sizes and CRC follow the data; the local header holds zeros."""
UNIX = 3
"""``create_system`` whose external attributes carry a Unix mode in their high 16 bits."""

_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIGNATURE = b"PK\x01\x02"
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_SEARCHED = (1 << 16) + _END.size
"""How far from the end the end record is looked for: as zipfile, the longest comment and the record."""
_WINDOW = 256 * 1024
"""Bytes of the central directory read at a time (one entry is at most 46 + 3 × 65,535 bytes)."""
_CHUNK = 64 * 1024
"""Compressed bytes read at a time."""
ZIP64_MARK = 0xFFFF_FFFF
"""A 32-bit size or offset of this value stands for the 64-bit one in the zip64 extra field."""
_LARGEST = 2**63 - 1
"""Larger sizes and offsets are refused: no file holds them, and every expansion cap is far below."""
_ZLIB = type(zlib.decompressobj())


class ZipFormatError(zipfile.BadZipFile):
    """The zip's structure is broken or points outside the archive; the message says where."""


@dataclass(frozen=True, slots=True)
class CentralDirectory:
    """Where the central directory is, and what the end record says of it."""

    start: int
    """File offset of the first entry."""
    size: int
    declared_members: int
    zip64: bool
    prefix: int
    """Bytes before the archive proper (a self-extractor's stub): added to every offset the archive records."""

    @property
    def end(self) -> int:
        return self.start + self.size

    def counts(self, members: int) -> bool:
        """Whether the end record's member count agrees with ``members``, the entries the directory holds.

        A plain end record has 16 bits for it: writers that do not switch to
        zip64 store the count modulo 65,536 or 65,535 itself.
        """
        if self.zip64 or members < 0xFFFF:
            return self.declared_members == members
        return self.declared_members in (members & 0xFFFF, 0xFFFF)


@dataclass(frozen=True, slots=True)
class CentralEntry:
    """One member as the central directory describes it (zip64 sizes and offsets already applied)."""

    index: int
    """Position in the central directory, from 0."""
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    """File offset of the member's local header (the archive's prefix added)."""
    create_system: int
    external_attr: int

    @property
    def name(self) -> str:
        """The name as UTF-8, bytes that are not kept as surrogate escapes (so the name check reports them).

        Flagged UTF-8 or not: Info-ZIP writes UTF-8 without the flag, and a
        name in cp437 is the same bytes as ASCII where it is ASCII.
        """
        return self.raw_name.decode("utf-8", "surrogateescape")

    @property
    def mode(self) -> int:
        """The Unix mode from the external attributes; 0 when the archive was not made on Unix."""
        return self.external_attr >> 16 if self.create_system == UNIX else 0

    @property
    def is_dir(self) -> bool:
        return self.raw_name.endswith(b"/")


@dataclass(frozen=True, slots=True)
class LocalHeader:
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    names_match: bool
    """Whether the local header names the member exactly as the central directory does."""
    data_start: int
    """File offset of the member's data."""


def read_at(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file); b"" for a negative offset."""
    if offset < 0 or size <= 0:
        return b""
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def find_central_directory(fd: int, file_size: int) -> CentralDirectory:
    """Find the end record (and zip64 end record) of the zip open on ``fd``, as zipfile does.

    The record is either the last 22 bytes (no comment) or the last end
    signature in the final 64 KiB.  Raises ZipFormatError when there is none,
    when the archive spans several disks, or when the central directory the
    record describes does not fit between the start of the file and the
    record.
    """
    tail_start = max(file_size - _SEARCHED, 0)
    tail = read_at(fd, file_size - tail_start, tail_start)
    at = len(tail) - _END.size
    if not (at >= 0 and tail[at : at + 4] == _END_SIGNATURE and tail[-2:] == b"\0\0"):
        at = tail.rfind(_END_SIGNATURE)
        if at < 0 or at + _END.size > len(tail):
            raise ZipFormatError("no end of central directory record: not a zip, or truncated")
    _, disk, first_disk, _, members, size, offset, _ = _END.unpack_from(tail, at)
    location = tail_start + at
    zip64 = _read_end64(fd, location)
    if zip64 is not None:
        members, size, offset = zip64
        before = location - _LOCATOR.size - _END64.size
    elif disk or first_disk:
        raise ZipFormatError(f"the archive spans several disks (this is disk {disk}); join it first")
    else:
        before = location
    start = before - size
    if start < 0:
        raise ZipFormatError(f"the end record announces a central directory of {size} bytes, more than the "
                             f"{before} bytes before it")
    if offset > start:
        raise ZipFormatError(f"the end record puts the central directory at offset {offset}, past where it can "
                             f"start ({start})")
    return CentralDirectory(start, size, members, zip64 is not None, start - offset)


def _read_end64(fd: int, location: int) -> tuple[int, int, int] | None:
    """(members, size, offset) from the zip64 end record before ``location``; None when there is none.

    As zipfile: the record is looked for right before its locator (no
    extensible data), and a locator or record without its signature is no
    record at all.
    """
    locator = read_at(fd, _LOCATOR.size, location - _LOCATOR.size)
    if len(locator) != _LOCATOR.size:
        return None
    signature, disk, _, disks = _LOCATOR.unpack(locator)
    if signature != _LOCATOR_SIGNATURE:
        return None
    if disk != 0 or disks > 1:
        raise ZipFormatError(f"the archive spans {disks} disks; join it first")
    record = read_at(fd, _END64.size, location - _LOCATOR.size - _END64.size)
    if len(record) != _END64.size:
        return None
    signature, _, _, _, disk, first_disk, _, members, size, offset = _END64.unpack(record)
    if signature != _END64_SIGNATURE:
        return None
    if disk or first_disk:
        raise ZipFormatError(f"the archive spans several disks (this is disk {disk}); join it first")
    return members, size, offset


class _Window:
    """Sequential reads of one byte range of a file through a buffer of bounded size."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._next = start
        self._end = end
        self._buffer = b""
        self._at = 0

    @property
    def remaining(self) -> int:
        return self._end - self._next + len(self._buffer) - self._at

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes; the caller has checked that the range holds them."""
        if len(self._buffer) - self._at < size:
            want = min(max(size, _WINDOW), self._end - self._next)
            more = read_at(self._fd, want, self._next)
            self._next += len(more)
            self._buffer = self._buffer[self._at :] + more
            self._at = 0
            if len(self._buffer) < size:
                raise ZipFormatError("the file ends inside the central directory")
        data = self._buffer[self._at : self._at + size]
        self._at += size
        return data


def central_entries(fd: int, directory: CentralDirectory) -> Iterator[CentralEntry]:
    """Every entry of the central directory, in order, read through a bounded window.

    Raises ZipFormatError at an entry without its signature, one whose
    name, extra field and comment run past the end of the directory, and a
    corrupt extra field.
    """
    window = _Window(fd, directory.start, directory.end)
    index = 0
    while window.remaining:
        if window.remaining < _CENTRAL.size:
            raise ZipFormatError(f"the central directory ends inside entry {index}")
        fields = _CENTRAL.unpack(window.take(_CENTRAL.size))
        if fields[0] != _CENTRAL_SIGNATURE:
            raise ZipFormatError(f"entry {index} of the central directory has no signature")
        (_, _, create_system, _, _, flags, method, _, _, crc, compressed, size,
         name_length, extra_length, comment_length, _, _, external_attr, offset) = fields
        variable = name_length + extra_length + comment_length
        if variable > window.remaining:
            raise ZipFormatError(
                f"entry {index}'s name, extra field and comment ({variable} bytes) run past the end of the "
                f"central directory ({window.remaining} bytes left)"
            )
        name = window.take(name_length)
        extra = window.take(extra_length)
        window.take(comment_length)
        size, compressed, offset = _zip64_values(extra, size, compressed, offset, index)
        yield CentralEntry(index, name, flags, method, crc, compressed, size, offset + directory.prefix,
                           create_system, external_attr)
        index += 1


def _zip64_values(extra: bytes, size: int, compressed: int, offset: int, index: int) -> tuple[int, int, int]:
    """Sizes and offset with the zip64 extra field's 64-bit values for those stored as 0xFFFFFFFF."""
    at = 0
    while len(extra) - at >= 4:
        tag, length = struct.unpack_from("<HH", extra, at)
        body, at = at + 4, at + 4 + length
        if at > len(extra):
            raise ZipFormatError(f"entry {index}: extra field {tag:#06x} runs {at - len(extra)} bytes past its end")
        if tag != 0x0001:
            continue
        values = iter(range(body, at - 7, 8))
        try:
            if size == ZIP64_MARK:
                (size,) = struct.unpack_from("<Q", extra, next(values))
            if compressed == ZIP64_MARK:
                (compressed,) = struct.unpack_from("<Q", extra, next(values))
            if offset == ZIP64_MARK:
                (offset,) = struct.unpack_from("<Q", extra, next(values))
        except StopIteration:
            raise ZipFormatError(f"entry {index}: the zip64 extra field lacks a size or offset it must hold") from None
    if max(size, compressed, offset) > _LARGEST:
        raise ZipFormatError(f"entry {index}: a size or offset of 2**63 bytes or more")
    return size, compressed, offset


def read_local_header(fd: int, entry: CentralEntry) -> LocalHeader | None:
    """The local header at ``entry.header_offset``; None when there is none (no signature, outside the file)."""
    raw = read_at(fd, LOCAL_HEADER.size + len(entry.raw_name), entry.header_offset)
    if len(raw) < LOCAL_HEADER.size or raw[:4] != _LOCAL_SIGNATURE:
        return None
    _, _, flags, method, _, _, crc, compressed, size, name_length, extra_length = LOCAL_HEADER.unpack_from(raw)
    names_match = name_length == len(entry.raw_name) and raw[LOCAL_HEADER.size :] == entry.raw_name
    data_start = entry.header_offset + LOCAL_HEADER.size + name_length + extra_length
    return LocalHeader(flags, method, crc, compressed, size, names_match, data_start)


def open_member(fd: int, entry: CentralEntry) -> io.RawIOBase:
    """A reader of the member's decompressed bytes, checked against the central directory's size and CRC.

    Raises ZipFormatError when the local header is missing or names another
    file, and for encrypted, patched or unsupported members; reading raises
    ZipFormatError when the data ends early, produces more than declared or
    fails its CRC (the last bytes are withheld until the CRC is right), and
    zlib.error, OSError, EOFError or lzma.LZMAError when it is corrupt.
    """
    header = read_local_header(fd, entry)
    if header is None:
        raise ZipFormatError(f"{entry.name!r}: no local file header where the central directory says")
    if not header.names_match:
        raise ZipFormatError(f"{entry.name!r}: the local header names another file")
    if entry.flags & (ENCRYPTED | PATCHED) or entry.method not in METHODS:
        raise ZipFormatError(f"{entry.name!r}: encrypted, patched or compressed with method {entry.method}")
    if entry.method == STORED and entry.compressed_size != entry.size:
        raise ZipFormatError(f"{entry.name!r}: a stored member of {entry.size} bytes takes {entry.compressed_size}")
    return _MemberReader(fd, entry, header.data_start)


class _MemberReader(io.RawIOBase):
    """Decompresses one member's data as it is read, never producing more per call than the caller asked for."""

    def __init__(self, fd: int, entry: CentralEntry, data_start: int) -> None:
        self._fd = fd
        self._entry = entry
        self._next = data_start
        self._left_in = entry.compressed_size
        self._left_out = entry.size
        self._crc = 0
        self._pending = b""
        self._stream_ended = False
        self._finished = False
        self._decompressor: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor | None = None
        if entry.method == DEFLATED:
            self._decompressor = zlib.decompressobj(-15)
        elif entry.method == BZIP2:
            self._decompressor = bz2.BZ2Decompressor()
        elif entry.method == LZMA:
            self._decompressor = self._lzma()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._finished:
            return 0
        if self._left_out == 0:
            self._finish()
            return 0
        want = min(len(buffer), self._left_out + 1)
        while True:
            data = self._produce(want)
            if data:
                break
            if self._stream_ended:
                raise ZipFormatError(f"{self._entry.name!r}: the data ends after "
                                     f"{self._entry.size - self._left_out} of {self._entry.size} bytes")
        if len(data) > self._left_out:
            raise ZipFormatError(f"{self._entry.name!r}: the data holds more than the {self._entry.size} bytes declared")
        self._crc = zlib.crc32(data, self._crc)
        self._left_out -= len(data)
        if self._left_out == 0:
            self._finish()
        count = len(data)
        buffer[:count] = data
        return count

    def _finish(self) -> None:
        """At the declared size: the stream must hold nothing more, and the CRC must be right."""
        while not self._stream_ended:
            if self._produce(1):
                raise ZipFormatError(f"{self._entry.name!r}: the data holds more than the {self._entry.size} "
                                     "bytes declared")
        if self._crc != self._entry.crc:
            raise ZipFormatError(f"{self._entry.name!r}: bad CRC-32 ({self._crc:08x}, the directory says "
                                 f"{self._entry.crc:08x})")
        self._finished = True

    def _input(self, size: int = _CHUNK) -> bytes:
        """The next compressed bytes, at most ``size``; raises ZipFormatError when the file ends first."""
        want = min(size, self._left_in)
        data = read_at(self._fd, want, self._next)
        if len(data) != want:
            raise ZipFormatError(f"{self._entry.name!r}: the archive ends inside the member's data")
        self._next += want
        self._left_in -= want
        return data

    def _produce(self, want: int) -> bytes:
        """Up to ``want`` decompressed bytes; b"" with ``_stream_ended`` set at the end of the stream."""
        if self._stream_ended:
            return b""
        decompressor = self._decompressor
        if decompressor is None:
            data = self._input(want)
            self._stream_ended = self._left_in == 0
            return data
        if isinstance(decompressor, _ZLIB):
            if not self._pending and self._left_in:
                self._pending = self._input()
            data = decompressor.decompress(self._pending, want)
            self._pending = decompressor.unconsumed_tail
            self._stream_ended = decompressor.eof or not (self._pending or self._left_in or data)
            return data
        if decompressor.eof:
            self._stream_ended = True
            return b""
        feed = self._input() if decompressor.needs_input and self._left_in else b""
        if decompressor.needs_input and not feed:
            self._stream_ended = True
            return b""
        data = decompressor.decompress(feed, want)
        self._stream_ended = decompressor.eof
        return data

    def _lzma(self) -> lzma.LZMADecompressor:
        """Zip's LZMA: a 4-byte header (version, properties length), the LZMA1 properties, then a raw stream."""
        header = self._input(4)
        length = int.from_bytes(header[2:], "little") if len(header) == 4 else 0
        properties = self._input(length)
        if length != 5 or len(properties) != 5:
            raise ZipFormatError(f"{self._entry.name!r}: LZMA properties of {len(properties)} bytes (5 expected)")
        literal, dictionary = properties[0], int.from_bytes(properties[1:], "little")
        if literal >= 9 * 5 * 5:
            raise ZipFormatError(f"{self._entry.name!r}: invalid LZMA properties")
        lc, rest = literal % 9, literal // 9
        lp, pb = rest % 5, rest // 5
        spec = {"id": lzma.FILTER_LZMA1, "dict_size": dictionary, "lc": lc, "lp": lp, "pb": pb}
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[spec])
