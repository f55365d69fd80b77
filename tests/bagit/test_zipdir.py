"""The streaming zip reader: zip64, crafted central directories, and members read through their local headers.

Every crafted archive must end in coded findings from the check, never in an
exception; members that pass the check but are damaged must stop the bag pass
with ZipFormatError (a zipfile.BadZipFile, so the writer reports DLV021).
"""

from __future__ import annotations

import bz2
import io
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import pytest

from preservation.bagit import DeliveryLimits, create_bag, open_delivery
from preservation.bagit.zipdir import ZipFormatError, central_entries, find_central_directory, open_member
from preservation.errors import DeliveryRejected

from .builders import INFO, zip_of
from .rawzip import (
    CD_COMPRESSED_AT,
    CD_EXTRA_LENGTH_AT,
    CD_FLAGS_AT,
    CD_NAME_LENGTH_AT,
    CD_OFFSET_AT,
    END64,
    END_COUNT_AT,
    END_DISK_AT,
    END_OFFSET_AT,
    END_SIZE_AT,
    central_entry,
    end_records,
    local_header,
    stored_zip,
)

MEMBERS = [(b"vol/a.txt", b"alpha\n"), (b"vol/b.txt", b"bravo " * 50), (b"c.bin", bytes(range(256)))]


def contents(path: Path, **kwargs) -> dict[str, bytes]:
    """Check the zip (it must pass) and read every entry whole."""
    with open_delivery(path, **kwargs) as delivery:
        findings = delivery.check()
        assert findings.ok, findings.to_list()
        out = {}
        for entry in delivery.entries():
            with entry.open() as member:
                out[entry.path] = member.read()
            assert len(out[entry.path]) == entry.size
        return out


def codes_of(path: Path) -> set[str]:
    with open_delivery(path) as delivery:
        return set(delivery.check().codes())


def expected(members: list[tuple[bytes, bytes]]) -> dict[str, bytes]:
    return {name.decode(): data for name, data in members}


# --- zip64 -------------------------------------------------------------------------------------------


def test_a_zip_of_70000_members_written_by_zipfile_is_read_through_its_zip64_end_record(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(70_000):
            zf.writestr(f"v{i // 1000:02d}/{i:05d}", b"")
    with open(path, "rb") as f:
        directory = find_central_directory(f.fileno(), os.fstat(f.fileno()).st_size)
        assert directory.zip64 and directory.declared_members == 70_000 and directory.prefix == 0
        assert sum(1 for _ in central_entries(f.fileno(), directory)) == 70_000
    with open_delivery(path) as delivery:
        assert delivery.check().ok
        assert delivery.totals.files == 70_000


def test_members_written_with_force_zip64_are_read(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    data = {"big/one.bin": os.urandom(70_000), "two.txt": b"two\n" * 1000}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in data.items():
            with zf.open(name, "w", force_zip64=True) as out:
                out.write(payload)
    assert contents(path) == data


def test_sizes_and_offsets_in_the_central_zip64_extra_field_are_used(tmp_path: Path) -> None:
    """Central sizes and offset stored as 0xFFFFFFFF, their values in a zip64 extra field after another field."""
    name, data = b"deep/zip64.bin", os.urandom(5000)
    crc, mark = zlib.crc32(data), 0xFFFF_FFFF
    local = local_header(name, data, crc=crc, size=len(data))
    extra = struct.pack("<HH4s", 0x5455, 4, b"time") + struct.pack("<HHQQQ", 0x0001, 24, len(data), len(data), 0)
    central = central_entry(name, crc=crc, compressed=mark, size=mark, offset=mark, extra=extra)
    body = local + data
    path = tmp_path / "d.zip"
    path.write_bytes(body + central + end_records(1, len(central), len(body), zip64=True))
    assert contents(path) == {"deep/zip64.bin": data}


def test_a_whole_archive_bags_through_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    path.write_bytes(stored_zip(MEMBERS, zip64=True))
    with open_delivery(path) as delivery:
        result = create_bag(delivery, tmp_path / "bag", INFO, fsync=False)
    assert len(result.payload) == len(MEMBERS)
    for name, data in MEMBERS:
        assert (tmp_path / "bag" / "data" / name.decode()).read_bytes() == data


# --- what zipfile accepts, accepted alike ------------------------------------------------------------


def test_a_comment_and_bytes_before_and_after_the_archive_are_accepted_as_zipfile_accepts_them(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    archive = stored_zip(MEMBERS, prefix=b"#!/bin/sh\nexit 0\n" + bytes(1000), comment=b"made by hand")
    path.write_bytes(archive + b"bytes after the comment that the end record does not count")
    with zipfile.ZipFile(path) as zf:  # the reference: zipfile reads it too
        assert zf.read("c.bin") == bytes(range(256))
    assert contents(path) == expected(MEMBERS)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
def test_every_supported_method_reads_back_exactly(tmp_path: Path, compression: int) -> None:
    data = {"text.txt": b"the same line again\n" * 5000, "random.bin": os.urandom(300_000), "empty": b""}
    path = zip_of(tmp_path / "d.zip", list(data.items()), compression)
    assert contents(path) == data


def test_members_with_data_descriptors_are_read(tmp_path: Path) -> None:
    """zipfile writes a data descriptor (flag bit 3, zeros in the local header) when its output cannot seek."""
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.data += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("streamed.txt", b"streamed " * 4000)
    path = tmp_path / "d.zip"
    path.write_bytes(bytes(sink.data))
    assert b"PK\x07\x08" in sink.data
    assert contents(path) == {"streamed.txt": b"streamed " * 4000}


# --- crafted central directories: coded findings, never an exception ---------------------------------


def _end_at(data: bytearray) -> int:
    return data.rfind(b"PK\x05\x06")


def _first_entry_at(data: bytearray) -> int:
    return data.find(b"PK\x01\x02")


def _put(fmt: str, field: int, *values: int | bytes, where: Callable[[bytearray], int] = _end_at):
    def patch(data: bytearray) -> None:
        struct.pack_into(fmt, data, where(data) + field, *values)

    return patch


def _zip64_record_lies(data: bytearray) -> None:
    at = data.rfind(b"PK\x06\x06")
    fields = list(END64.unpack_from(data, at))
    fields[8] = 2**40  # the central directory's size
    END64.pack_into(data, at, *fields)


def _extra_field_overruns(data: bytearray) -> None:
    """The first entry's name becomes a 4-byte extra field header announcing 200 bytes, in an entry of 9."""
    at = _first_entry_at(data)
    struct.pack_into("<HH", data, at + CD_NAME_LENGTH_AT, 5, 4)
    struct.pack_into("<HH", data, at + 46 + 5, 0x7875, 200)


def _truncate_directory(data: bytearray) -> None:
    """The end record's size ends the central directory 20 bytes into its first entry."""
    struct.pack_into("<L", data, _end_at(data) + END_SIZE_AT, 20)
    struct.pack_into("<L", data, _end_at(data) + END_OFFSET_AT, _end_at(data) - 20)


UNREADABLE = {"DLV021", "DLV023"}
"""The archive cannot be read, so it has no files either."""

CRAFTED: dict[str, tuple[Callable[[bytearray], None], set[str]]] = {
    "end record offset out of range": (_put("<L", END_OFFSET_AT, 0xFFFF_FF00), UNREADABLE),
    "end record size larger than the file": (_put("<L", END_SIZE_AT, 0x7FFF_FFFF), UNREADABLE),
    "end record counts more members": (_put("<HH", END_COUNT_AT, 5, 5), {"DLV015"}),
    "end record counts fewer members": (_put("<H", END_COUNT_AT + 2, 1), {"DLV015"}),
    "archive on several disks": (_put("<H", END_DISK_AT, 1), UNREADABLE),
    "zip64 record announces a directory past the file": (_zip64_record_lies, UNREADABLE),
    "directory ends inside an entry": (_truncate_directory, UNREADABLE),
    "name length runs past the directory": (_put("<H", CD_NAME_LENGTH_AT, 0xFFFF, where=_first_entry_at), UNREADABLE),
    "extra length runs past the directory": (_put("<H", CD_EXTRA_LENGTH_AT, 0xFFF0, where=_first_entry_at), UNREADABLE),
    "extra field runs past its end": (_extra_field_overruns, UNREADABLE),
    "no signature on an entry": (_put("<4s", 0, b"PK\x01\x09", where=_first_entry_at), UNREADABLE),
    "local header offset past the directory": (_put("<L", CD_OFFSET_AT, 0x00FF_FFFF, where=_first_entry_at), {"DLV015"}),
    "local header offset inside another member": (_put("<L", CD_OFFSET_AT, 7, where=_first_entry_at), {"DLV015"}),
    "stored sizes that differ": (_put("<L", CD_COMPRESSED_AT, 3, where=_first_entry_at), {"DLV015"}),
    "data running into the next member and the directory":
        (_put("<LL", CD_COMPRESSED_AT, 900, 900, where=_first_entry_at), {"DLV015"}),
    "an encrypted entry": (_put("<H", CD_FLAGS_AT, 0x1, where=_first_entry_at), {"DLV017"}),
    "patched data": (_put("<H", CD_FLAGS_AT, 0x20, where=_first_entry_at), {"DLV018"}),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_central_directory_gives_coded_findings(tmp_path: Path, case: str) -> None:
    patch, codes = CRAFTED[case]
    data = bytearray(stored_zip(MEMBERS, zip64=case.startswith("zip64")))
    patch(data)
    path = tmp_path / "d.zip"
    path.write_bytes(bytes(data))
    assert codes_of(path) == codes


def test_a_zip64_extra_field_that_lacks_a_value_is_unreadable(tmp_path: Path) -> None:
    name, data = b"a.bin", b"data"
    local = local_header(name, data, crc=zlib.crc32(data), size=len(data))
    central = central_entry(name, crc=zlib.crc32(data), compressed=4, size=0xFFFF_FFFF, offset=0,
                            extra=struct.pack("<HH", 0x0001, 0))
    path = tmp_path / "d.zip"
    path.write_bytes(local + data + central + end_records(1, len(central), len(local) + 4))
    assert codes_of(path) == UNREADABLE


def test_a_size_of_2_to_the_63_is_refused(tmp_path: Path) -> None:
    name = b"a.bin"
    local = local_header(name, b"", crc=0, size=0)
    central = central_entry(name, crc=0, compressed=0, size=0xFFFF_FFFF, offset=0,
                            extra=struct.pack("<HHQ", 0x0001, 8, 2**63))
    path = tmp_path / "d.zip"
    path.write_bytes(local + central + end_records(1, len(central), len(local)))
    assert codes_of(path) == UNREADABLE


def test_no_single_byte_change_or_truncation_of_the_directory_makes_the_check_raise(tmp_path: Path) -> None:
    """Each byte of the central directory and end records set to 0x00, 0xFF or a random value, and every cut."""
    original = stored_zip(MEMBERS, zip64=True)
    start = original.find(b"PK\x01\x02")
    rng = random.Random(14)
    variants = [original[:cut] for cut in range(start, len(original))]
    for at in range(start, len(original)):
        for value in (0x00, 0xFF, rng.randrange(256)):
            changed = bytearray(original)
            changed[at] = value
            variants.append(bytes(changed))
    path = tmp_path / "d.zip"
    for variant in variants:
        path.write_bytes(variant)
        with open_delivery(path) as delivery:
            findings = delivery.check()
            if not findings.ok:
                continue
            for entry in delivery.entries():  # what passes the check reads back, or stops with a zip error
                try:
                    with entry.open() as member:
                        member.read()
                except zipfile.BadZipFile:
                    pass


# --- members read through their local headers --------------------------------------------------------


def _bag_codes(path: Path, tmp_path: Path, **kwargs) -> list[str]:
    (tmp_path / "out").mkdir()
    with open_delivery(path, **kwargs) as delivery:
        assert delivery.check().ok, delivery.check().to_list()
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "out" / "bag", INFO, fsync=False)
    assert os.listdir(tmp_path / "out") == []
    return [f.code for f in refused.value.findings]


def _deflated_zip(name: bytes, plain: bytes, *, declared: int, crc: int | None = None) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = compressor.compress(plain) + compressor.flush()
    crc = zlib.crc32(plain) if crc is None else crc
    local = local_header(name, packed, crc=crc, size=declared, method=8)
    central = central_entry(name, crc=crc, compressed=len(packed), size=declared, offset=0, method=8)
    return local + packed + central + end_records(1, len(central), len(local) + len(packed))


@pytest.mark.parametrize("case", ["declares more", "declares less", "bad crc"])
def test_a_member_that_breaks_its_declared_size_or_crc_stops_the_bag(tmp_path: Path, case: str) -> None:
    plain = b"a line of text\n" * 2000
    declared = len(plain) + 10 if case == "declares more" else len(plain) - 10 if case == "declares less" else len(plain)
    path = tmp_path / "d.zip"
    path.write_bytes(_deflated_zip(b"text.txt", plain, declared=declared,
                                   crc=zlib.crc32(plain) ^ 1 if case == "bad crc" else zlib.crc32(plain[:declared])))
    assert _bag_codes(path, tmp_path) == ["DLV021"]


def test_a_member_read_stops_at_the_declared_size_and_withholds_the_last_bytes_until_the_crc_is_checked(
    tmp_path: Path,
) -> None:
    plain = os.urandom(10_000)
    path = tmp_path / "d.zip"
    path.write_bytes(_deflated_zip(b"r.bin", plain, declared=len(plain), crc=zlib.crc32(plain) ^ 1))
    with open(path, "rb") as f:
        (entry,) = central_entries(f.fileno(), find_central_directory(f.fileno(), os.fstat(f.fileno()).st_size))
        with open_member(f.fileno(), entry) as member:
            got = member.read(9_000)
            assert 0 < len(got) <= 9_000 and got == plain[: len(got)]
            with pytest.raises(ZipFormatError, match="CRC"):
                while member.read(4096):
                    pass


def test_a_member_swapped_after_the_check_is_refused_while_it_is_read(tmp_path: Path) -> None:
    """The bag pass reads the local header again: one that names another file stops the bag."""
    path = tmp_path / "d.zip"
    path.write_bytes(stored_zip(MEMBERS))
    with open_delivery(path) as delivery:
        assert delivery.check().ok
        with open(path, "r+b") as f:  # the same file (the check's descriptor sees it), its first name changed
            f.seek(30)
            f.write(b"vol/x.txt")
        entries = iter(delivery.entries())
        with pytest.raises(ZipFormatError, match="names another file"):
            next(entries).open()


def test_a_bzip2_member_that_is_a_bomb_is_stopped_by_the_meter_while_it_is_read(tmp_path: Path) -> None:
    """A lenient check, then the limits tightened: decompression is counted as it produces."""
    path = zip_of(tmp_path / "d.zip", [("zeros.bin", bytes(64 * 1024 * 1024))], zipfile.ZIP_BZIP2)
    assert os.path.getsize(path) < 1000
    (tmp_path / "out").mkdir()
    with open_delivery(path, limits=DeliveryLimits(max_compression_ratio=10**6)) as delivery:
        assert delivery.check().ok
        delivery.limits = DeliveryLimits(max_compression_ratio=1000)
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "out" / "bag", INFO, fsync=False)
    assert [f.code for f in refused.value.findings] == ["DLV013"]


def test_entries_of_an_archive_whose_directory_could_not_be_read_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    path.write_bytes(stored_zip(MEMBERS)[:-10])
    with open_delivery(path) as delivery:
        assert "DLV021" in delivery.check().codes()
        with pytest.raises(ZipFormatError):
            next(iter(delivery.entries()))


def test_bytes_after_the_end_of_a_members_compressed_stream_are_ignored_as_zipfile_ignores_them(
    tmp_path: Path,
) -> None:
    """The directory's size and CRC are those of the first stream, and so is what is read."""
    plain = b"first stream\n" * 100
    packed = bz2.compress(plain) + bz2.compress(b"a second stream the directory does not count")
    name, crc = b"multi.txt", zlib.crc32(plain)
    local = local_header(name, packed, crc=crc, size=len(plain), method=12)
    central = central_entry(name, crc=crc, compressed=len(packed), size=len(plain), offset=0, method=12)
    path = tmp_path / "d.zip"
    path.write_bytes(local + packed + central + end_records(1, len(central), len(local) + len(packed)))
    assert contents(path) == {"multi.txt": plain}


@pytest.mark.parametrize(("name", "flags", "codes"), [
    (b"caf\xe9.txt", 0x800, {"DLV007"}),  # flagged UTF-8 but is not: zipfile refused the whole archive
    (b"caf\xc3\xa9.txt", 0, set()),  # UTF-8 without the flag, as Info-ZIP writes it
    (b"a.txt\x00.exe", 0, {"DLV006"}),  # zipfile cuts the name at the NUL; the check sees all of it
])
def test_names_are_judged_on_their_raw_bytes(tmp_path: Path, name: bytes, flags: int, codes: set[str]) -> None:
    data = b"x"
    local = local_header(name, data, crc=zlib.crc32(data), size=1, flags=flags)
    central = central_entry(name, crc=zlib.crc32(data), compressed=1, size=1, offset=0, flags=flags)
    other = local_header(b"ok.txt", data, crc=zlib.crc32(data), size=1)
    other_central = central_entry(b"ok.txt", crc=zlib.crc32(data), compressed=1, size=1, offset=len(local) + 1)
    body = local + data + other + data
    path = tmp_path / "d.zip"
    path.write_bytes(body + central + other_central + end_records(2, len(central) + len(other_central), len(body)))
    assert codes_of(path) == codes


def test_a_fifo_in_place_of_the_archive_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    path.write_bytes(stored_zip(MEMBERS))
    with open_delivery(path) as delivery:  # opened as a file, then the file is swapped for a FIFO
        path.unlink()
        os.mkfifo(path)
        assert set(delivery.check().codes()) == UNREADABLE
