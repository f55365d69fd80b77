"""Deliveries: each bad delivery maps to the exact codes it must produce, and is never bagged."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import unicodedata
import zipfile
from pathlib import Path

import pytest

from preservation.bagit import DeliveryLimits, create_bag, open_delivery
from preservation.errors import DeliveryRejected, NotFound

from .builders import INFO, make_bag, make_tree, tar_member, tar_of, zip_of, zip_symlink

GOOD = {"a.txt": b"a", "dir/b.txt": b"bb"}


# --- directories --------------------------------------------------------------------------


def dir_symlink_inside(tmp: Path) -> Path:
    root = make_tree(tmp / "d", GOOD)
    os.symlink("a.txt", root / "link")
    return root


def dir_symlink_outside(tmp: Path) -> Path:
    root = make_tree(tmp / "d", GOOD)
    os.symlink("/etc/passwd", root / "dir" / "passwd")
    return root


def dir_hard_link(tmp: Path) -> Path:
    root = make_tree(tmp / "d", GOOD)
    os.link(root / "a.txt", root / "dir" / "again.txt")
    return root


def dir_fifo(tmp: Path) -> Path:
    root = make_tree(tmp / "d", GOOD)
    os.mkfifo(root / "pipe")
    return root


def dir_nfc_nfd_duplicates(tmp: Path) -> Path:
    return make_tree(
        tmp / "d",
        {unicodedata.normalize("NFC", "café.txt"): b"1", unicodedata.normalize("NFD", "café.txt"): b"2"},
    )


def dir_case_only_duplicates(tmp: Path) -> Path:
    return make_tree(tmp / "d", {"Report.PDF": b"1", "report.pdf": b"2"})


def dir_line_feed_in_name(tmp: Path) -> Path:
    return make_tree(tmp / "d", {"two\nlines.txt": b"x"})


def dir_carriage_return_in_name(tmp: Path) -> Path:
    return make_tree(tmp / "d", {"Icon\r": b"x"})


def dir_name_not_utf8(tmp: Path) -> Path:
    return make_tree(tmp / "d", {b"caf\xe9.txt": b"latin-1 name"})


def dir_backslash_in_name(tmp: Path) -> Path:
    return make_tree(tmp / "d", {"a\\b.txt": b"x"})


def dir_too_deep(tmp: Path) -> Path:
    return make_tree(tmp / "d", {"/".join(["x"] * 7) + "/f.txt": b"deep"})


def dir_empty(tmp: Path) -> Path:
    (tmp / "d").mkdir()
    return tmp / "d"


def bag_with_fetch(tmp: Path) -> Path:
    bag = make_bag(tmp, GOOD)
    (bag / "fetch.txt").write_text("https://example.org/x 1 data/x\n")
    return bag


# --- tar ------------------------------------------------------------------------------------


def tar_parent_traversal(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), ("../evil.txt", b"evil")])


def tar_absolute_member(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), ("/etc/cron.d/evil", b"evil")])


def tar_symlink_member(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), tar_member("link", tarfile.SYMTYPE, "/etc/passwd")])


def tar_symlink_member_inside(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), tar_member("link", tarfile.SYMTYPE, "ok.txt")])


def tar_device_member(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), tar_member("dev/sda", tarfile.BLKTYPE)])


def tar_fifo_member(tmp: Path) -> Path:
    return tar_of(tmp / "d.tgz", [("ok.txt", b"ok"), tar_member("pipe", tarfile.FIFOTYPE)], mode="w:gz")


def tar_hard_link_member(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), tar_member("again.txt", tarfile.LNKTYPE, "ok.txt")])


def tar_duplicate_member(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("ok.txt", b"ok"), ("ok.txt", b"second")])


def tar_file_and_directory(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("x", b"a file"), ("x/y.txt", b"under it")])


def tar_truncated(tmp: Path) -> Path:
    path = tar_of(tmp / "d.tar", [("ok.txt", b"ok"), ("big.bin", os.urandom(4000))])
    data = path.read_bytes()
    path.write_bytes(data[:2000])
    return path


def tar_name_not_utf8(tmp: Path) -> Path:
    info = tarfile.TarInfo(os.fsdecode(b"caf\xe9.txt"))
    info.size = 1
    path = tmp / "d.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    return path


def tar_holding_a_bag(tmp: Path) -> Path:
    return tar_of(tmp / "d.tar", [("bag/bagit.txt", b"BagIt-Version: 1.0\n"), ("bag/data/x", b"x")])


# --- zip -------------------------------------------------------------------------------------


def zip_parent_traversal(tmp: Path) -> Path:
    return zip_of(tmp / "d.zip", [("ok.txt", b"ok"), ("a/../../evil.txt", b"evil")])


def zip_bomb_ratio(tmp: Path) -> Path:
    return zip_of(tmp / "d.zip", [("zeros.bin", bytes(8 * 1024 * 1024))])


def zip_over_total_size(tmp: Path) -> Path:
    block = os.urandom(5 * 1024 * 1024)
    return zip_of(tmp / "d.zip", [("a.bin", block), ("b.bin", block)], zipfile.ZIP_STORED)


def zip_encrypted_member(tmp: Path) -> Path:
    path = zip_of(tmp / "d.zip", [("secret.txt", b"sealed")], zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        (flags,) = struct.unpack_from("<H", data, at + flag_offset)
        struct.pack_into("<H", data, at + flag_offset, flags | 0x1)
    path.write_bytes(bytes(data))
    return path


def zip_overlapping_members(tmp: Path) -> Path:
    """Two directory entries share one local header: the construction of overlapping zip bombs."""
    path = zip_of(tmp / "d.zip", [("one.txt", b"payload " * 100)], zipfile.ZIP_STORED)
    data = path.read_bytes()
    start = data.find(b"PK\x01\x02")
    end_record = data.find(b"PK\x05\x06")
    central = data[start:end_record]
    twin = bytearray(central)
    twin[46:53] = b"two.txt"
    eocd = bytearray(data[end_record:])
    entries, size = struct.unpack_from("<H", eocd, 10)[0], len(central) * 2
    struct.pack_into("<HHL", eocd, 8, entries * 2, entries * 2, size)
    path.write_bytes(data[:start] + central + bytes(twin) + bytes(eocd))
    return path


def zip_symlink_member(tmp: Path) -> Path:
    return zip_of(tmp / "d.zip", [("ok.txt", b"ok"), zip_symlink("evil", "../../etc/passwd")])


def zip_name_not_utf8(tmp: Path) -> Path:
    path = zip_of(tmp / "d.zip", [("caf_.txt", b"x")], zipfile.ZIP_STORED)
    path.write_bytes(path.read_bytes().replace(b"caf_.txt", b"caf\xff.txt"))
    return path


def zip_absolute_member(tmp: Path) -> Path:
    return zip_of(tmp / "d.zip", [("/abs.txt", b"x")])


def not_an_archive(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("just text")
    return tmp / "notes.txt"


SMALL_LIMITS = DeliveryLimits(max_depth=5, max_total_bytes=9 * 1024 * 1024)

BAD_DELIVERIES = {
    dir_symlink_inside: {"DLV001"},
    dir_symlink_outside: {"DLV002"},
    dir_hard_link: {"DLV003"},
    dir_fifo: {"DLV004"},
    dir_nfc_nfd_duplicates: {"DLV009"},
    dir_case_only_duplicates: {"DLV010"},
    dir_line_feed_in_name: {"DLV008"},
    dir_carriage_return_in_name: {"DLV008"},
    dir_name_not_utf8: {"DLV007"},
    dir_backslash_in_name: {"DLV022"},
    dir_too_deep: {"DLV016", "DLV023"},
    dir_empty: {"DLV023"},
    bag_with_fetch: {"DLV025"},
    tar_parent_traversal: {"DLV006"},
    tar_absolute_member: {"DLV005"},
    tar_symlink_member: {"DLV002"},
    tar_symlink_member_inside: {"DLV001"},
    tar_device_member: {"DLV004"},
    tar_fifo_member: {"DLV004"},
    tar_hard_link_member: {"DLV003"},
    tar_duplicate_member: {"DLV019"},
    tar_file_and_directory: {"DLV020"},
    tar_truncated: {"DLV021"},
    tar_name_not_utf8: {"DLV007"},
    zip_parent_traversal: {"DLV006"},
    zip_bomb_ratio: {"DLV013"},
    zip_over_total_size: {"DLV014"},
    zip_encrypted_member: {"DLV017"},
    zip_overlapping_members: {"DLV015"},
    zip_symlink_member: {"DLV002"},
    zip_name_not_utf8: {"DLV007"},
    zip_absolute_member: {"DLV005", "DLV023"},
}
"""Builder -> the exact codes its delivery must produce (checked with SMALL_LIMITS, strict)."""


@pytest.mark.parametrize("build", list(BAD_DELIVERIES), ids=lambda f: f.__name__)
def test_bad_delivery_is_refused_with_its_codes_and_leaves_no_bag(tmp_path: Path, build) -> None:
    source = build(tmp_path)
    (tmp_path / "out").mkdir()
    delivery = open_delivery(source, limits=SMALL_LIMITS)
    assert set(delivery.check().codes()) == BAD_DELIVERIES[build], delivery.check().to_list()
    dest = tmp_path / "out" / "bag"
    with pytest.raises(DeliveryRejected) as refused:
        create_bag(delivery, dest, INFO, fsync=False)
    assert {f.code for f in refused.value.findings} == BAD_DELIVERIES[build]
    assert not dest.exists()
    assert not any((tmp_path / "out").iterdir()), "no partial bag is left behind"


def test_not_an_archive_is_refused_when_opened(tmp_path: Path) -> None:
    with pytest.raises(DeliveryRejected) as refused:
        open_delivery(not_an_archive(tmp_path))
    assert [f.code for f in refused.value.findings] == ["DLV026"]
    with pytest.raises(NotFound):
        open_delivery(tmp_path / "missing")


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch) -> None:
    root = make_tree(tmp_path / "d", GOOD)
    real_open = os.open

    def deny(path, flags, *args, **kwargs):
        # files are opened by name relative to their directory's descriptor
        if os.fsencode(path) == b"b.txt" and kwargs.get("dir_fd") is not None:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    findings = open_delivery(root).check()
    assert findings.codes() == ["DLV011"] and findings.errors[0].path == "dir/b.txt"


def test_lenient_mode_downgrades_what_can_still_be_bagged(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"two\nlines.txt": b"x", "Report.PDF": b"1", "report.pdf": b"2"})
    os.link(root / "Report.PDF", root / "hard.pdf")
    findings = open_delivery(root, strict=False).check()
    assert findings.ok and set(findings.codes()) == {"DLV003", "DLV008", "DLV010"}


def test_empty_directories_are_warnings(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", GOOD)
    (root / "nothing" / "here").mkdir(parents=True)
    findings = open_delivery(root).check()
    assert findings.ok and findings.codes() == ["DLV012"] and findings.warnings[0].path == "nothing/here"


def test_tar_empty_directory_member_is_a_warning(tmp_path: Path) -> None:
    path = tar_of(tmp_path / "d.tar", [("ok.txt", b"ok"), tar_member("empty", tarfile.DIRTYPE)])
    findings = open_delivery(path).check()
    assert findings.ok and findings.codes() == ["DLV012"]


def test_archive_holding_a_bag_is_a_warning(tmp_path: Path) -> None:
    findings = open_delivery(tar_holding_a_bag(tmp_path)).check()
    assert findings.ok and findings.codes() == ["DLV024"]


def test_normal_names_are_valid(tmp_path: Path) -> None:
    files = {
        "期刊/2024/第1期/文章.pdf": b"%PDF",
        "Zeitschriften/Ärzteblatt/Übersicht.xml": b"<x/>",
        "empty.dat": b"",
        "100% sure.txt": b"%",
        "/".join(f"level{i}" for i in range(40)) + "/leaf.txt": b"deep but fine",
    }
    delivery = open_delivery(make_tree(tmp_path / "d", files))
    assert delivery.check().codes() == []
    assert delivery.totals.files == len(files) and delivery.totals.bytes == sum(map(len, files.values()))


def test_entries_are_sorted_streamed_and_readable(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"b/2.txt": b"2", "a.txt": b"1", "b/1.txt": b"11", "c/d/e.txt": b"e"})
    with open_delivery(root) as delivery:
        entries = list(delivery.entries())
        assert [e.path for e in entries] == ["a.txt", "b/1.txt", "b/2.txt", "c/d/e.txt"]
        assert [e.size for e in entries] == [1, 2, 1, 1]
        with entries[1].open() as f:
            assert f.read() == b"11"


@pytest.mark.parametrize("kind", ["tar", "tgz", "zip"])
def test_archive_entries_match_the_directory(tmp_path: Path, kind: str) -> None:
    files = {"x/中文.txt": "内容".encode(), "y.bin": os.urandom(3000), "empty": b""}
    if kind == "zip":
        path = zip_of(tmp_path / "d.zip", list(files.items()))
    else:
        path = tar_of(tmp_path / f"d.{kind}", list(files.items()), mode="w:gz" if kind == "tgz" else "w")
    delivery = open_delivery(path)
    assert delivery.kind == ("zip" if kind == "zip" else "tar")
    assert delivery.check().codes() == []
    got = {}
    for entry in delivery.entries():
        with entry.open() as f:
            got[entry.path] = f.read()
    assert got == files
    delivery.close()


def test_kinds_are_recognised(tmp_path: Path) -> None:
    assert open_delivery(make_tree(tmp_path / "plain", GOOD)).kind == "directory"
    assert open_delivery(make_bag(tmp_path, GOOD)).kind == "bag"
    renamed = tar_of(tmp_path / "delivery.bin", [("ok.txt", b"ok")])
    assert open_delivery(renamed).kind == "tar"
