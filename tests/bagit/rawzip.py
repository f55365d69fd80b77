"""Zips written byte by byte, for the cases zipfile will not write and the sizes it writes slowly.

Offsets of the records' fields follow APPNOTE.TXT (4.3.7 local header, 4.3.12 central directory entry,
4.3.14-16 the end records); the ``*_AT`` constants name the fields the tests patch.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

LOCAL = struct.Struct("<4s5H3L2H")
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
END = struct.Struct("<4s4H2LH")
END64 = struct.Struct("<4sQ2H2L4Q")
LOCATOR = struct.Struct("<4sLQL")
FILE_MODE = 0o100644 << 16
"""External attributes of a regular file made on Unix."""

# byte offsets inside a central directory entry
CD_FLAGS_AT, CD_CRC_AT, CD_COMPRESSED_AT, CD_SIZE_AT, CD_NAME_LENGTH_AT, CD_EXTRA_LENGTH_AT = 8, 16, 20, 24, 28, 30
CD_OFFSET_AT = 42
# ... inside the end record
END_DISK_AT, END_COUNT_AT, END_SIZE_AT, END_OFFSET_AT = 4, 8, 12, 16


def local_header(name: bytes, data: bytes, *, crc: int, size: int, method: int = 0, flags: int = 0,
                 extra: bytes = b"") -> bytes:
    return LOCAL.pack(b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(data), size, len(name), len(extra)) + name + extra


def central_entry(name: bytes, *, crc: int, compressed: int, size: int, offset: int, method: int = 0, flags: int = 0,
                  extra: bytes = b"", attributes: int = FILE_MODE) -> bytes:
    return CENTRAL.pack(b"PK\x01\x02", 20, 3, 20, 0, flags, method, 0, 0x21, crc, compressed, size, len(name),
                        len(extra), 0, 0, 0, attributes, offset) + name + extra


def end_records(count: int, cd_size: int, cd_offset: int, *, zip64: bool = False, comment: bytes = b"") -> bytes:
    """The end record, preceded by the zip64 end record and its locator when ``zip64`` (or the count needs it)."""
    out = b""
    if zip64 or count > 0xFFFF:
        end64_at = cd_offset + cd_size
        out += END64.pack(b"PK\x06\x06", END64.size - 12, 45, 45, 0, 0, count, count, cd_size, cd_offset)
        out += LOCATOR.pack(b"PK\x06\x07", 0, end64_at, 1)
    return out + END.pack(b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), min(cd_size, 0xFFFF_FFFF),
                          min(cd_offset, 0xFFFF_FFFF), len(comment)) + comment


def stored_zip(members: list[tuple[bytes, bytes]], *, prefix: bytes = b"", comment: bytes = b"",
               zip64: bool = False) -> bytes:
    """A zip of stored members, offsets counted from the start of the archive proper (after ``prefix``)."""
    body, central = bytearray(), bytearray()
    for name, data in members:
        crc = zlib.crc32(data)
        central += central_entry(name, crc=crc, compressed=len(data), size=len(data), offset=len(body))
        body += local_header(name, data, crc=crc, size=len(data)) + data
    return prefix + bytes(body) + bytes(central) + end_records(len(members), len(central), len(body), zip64=zip64,
                                                               comment=comment)


def many_member_zip(path: Path, members: int) -> Path:
    """``members`` empty files in directories of 1,000, written in batches (zipfile takes a minute for 200,000)."""
    central = bytearray()
    offset = 0
    with open(path, "wb") as out:
        batch = bytearray()
        for i in range(members):
            name = b"vol-%04d/article-%07d.xml" % (i // 1000, i)
            central += central_entry(name, crc=0, compressed=0, size=0, offset=offset)
            header = local_header(name, b"", crc=0, size=0)
            batch += header
            offset += len(header)
            if len(batch) >= 4 * 1024 * 1024:
                out.write(batch)
                batch.clear()
        out.write(batch)
        out.write(central)
        out.write(end_records(members, len(central), offset))
    return path
