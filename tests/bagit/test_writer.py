"""create_bag: round trips, interoperability with bagit-python, byte-identical bag copies, no half bags."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import bagit
import pytest

from preservation import pagecache
from preservation.bagit import create_bag, open_delivery, pipeline, validate_bag, writer
from preservation.bagit.delivery import DeliveryEntry, DirectoryDelivery
from preservation.errors import AlreadyExists, BagInvalid, DeliveryRejected, InvalidRequest

from .builders import INFO, make_bag, make_tree, tar_of, zip_of

DELIVERY = {
    "期刊/2024/第1期/文章.pdf": b"%PDF-1.7 " * 500,
    "Zeitschriften/Ärzteblatt/Übersicht.xml": b"<x>\xc3\xa4</x>",
    "empty.dat": b"",
    "nested/a/b/c/d/leaf.txt": b"leaf",
    "100% sure.txt": b"percent",
}
ODD = {"two\nlines.txt": b"line feed in the name", "Icon\r": b"carriage return"}


def payload_of(result) -> dict[str, tuple[int, dict[str, str]]]:
    return {r.path: (r.size, dict(r.digests)) for r in result.payload}


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_of_a_strict_delivery(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", DELIVERY)
    result = create_bag(open_delivery(source), tmp_path / "bag", INFO, fsync=False)
    bag = tmp_path / "bag"
    assert result.path == str(bag) and result.version == "1.0" and result.source_kind == "directory"
    for rel, data in DELIVERY.items():
        assert (bag / "data" / rel).read_bytes() == data
        size, digests = payload_of(result)[f"data/{rel}"]
        assert size == len(data)
        assert digests == {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
    assert result.payload_oxum == f"{sum(map(len, DELIVERY.values()))}.{len(DELIVERY)}"
    assert (bag / "bagit.txt").read_bytes() == b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    info = (bag / "bag-info.txt").read_text()
    assert info.startswith("External-Identifier: pkg-0001\nBag-Group-Identifier: springer-journals\n")
    assert f"Payload-Oxum: {result.payload_oxum}\n" in info and "Bag-Size: " in info
    assert "  data/100%25 sure.txt\n" in (bag / "manifest-sha256.txt").read_text()
    assert {r.path for r in result.tag_files} == {
        "bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt",
        "tagmanifest-sha256.txt", "tagmanifest-sha512.txt",
    }
    report = validate_bag(bag)
    assert report.valid and report.findings.codes() == []
    assert payload_of(result) == {r.path: (r.size, dict(r.digests)) for r in report.files if r.path.startswith("data/")}


def test_lenient_round_trip_carries_line_breaks_in_names(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", ODD)
    result = create_bag(open_delivery(source, strict=False), tmp_path / "bag", INFO, fsync=False)
    manifest = (tmp_path / "bag" / "manifest-sha256.txt").read_text()
    assert "  data/two%0Alines.txt\n" in manifest and "  data/Icon%0D\n" in manifest
    assert [f.code for f in result.findings] == ["DLV008", "DLV008"]
    assert validate_bag(tmp_path / "bag").findings.codes() == []


def test_bagit_python_validates_our_bags(tmp_path: Path) -> None:
    # bagit-python 1.9 does not decode %25 (LibraryOfCongress/bagit-python#157), so no '%' name here
    files = {k: v for k, v in DELIVERY.items() if "%" not in k} | ODD
    create_bag(open_delivery(make_tree(tmp_path / "src", files), strict=False), tmp_path / "bag", INFO, fsync=False)
    theirs = bagit.Bag(str(tmp_path / "bag"))
    theirs.validate()
    assert theirs.info["External-Identifier"] == "pkg-0001"


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip"])
def test_archives_bag_like_the_directory_they_hold(tmp_path: Path, kind: str) -> None:
    files = DELIVERY | {"big.bin": os.urandom(pipeline.CHUNK_SIZE + 12345)}
    direct = create_bag(open_delivery(make_tree(tmp_path / "src", files)), tmp_path / "from-dir", INFO, fsync=False)
    if kind == "zip":
        archive = zip_of(tmp_path / "d.zip", list(files.items()))
    else:
        archive = tar_of(tmp_path / f"d.{kind}", list(files.items()), mode="w:gz" if kind == "tar.gz" else "w")
    with open_delivery(archive) as delivery:
        packed = create_bag(delivery, tmp_path / "from-archive", INFO, fsync=False)
    assert payload_of(packed) == payload_of(direct)
    for name in ("manifest-sha256.txt", "manifest-sha512.txt", "bagit.txt", "bag-info.txt"):
        assert (tmp_path / "from-archive" / name).read_bytes() == (tmp_path / "from-dir" / name).read_bytes()
    assert packed.source_kind == ("zip" if kind == "zip" else "tar")


@pytest.mark.parametrize("checksums", [["sha256", "sha512"], ["md5"]])
def test_existing_bag_is_copied_byte_identical(tmp_path: Path, checksums: list[str]) -> None:
    source = make_tree(tmp_path / "theirs", DELIVERY)
    bagit.make_bag(str(source), {"Source-Organization": "Their Press"}, checksums=checksums)
    (source / "extra-tags").mkdir()
    (source / "extra-tags" / "notes.txt").write_text("a tag directory")
    before = files_under(source)
    result = create_bag(open_delivery(source), tmp_path / "copy", {"External-Identifier": "ignored"}, fsync=False)
    assert files_under(tmp_path / "copy") == before == files_under(source)
    assert result.source_kind == "bag" and result.version == "0.97"  # what bagit-python 1.9 writes
    assert result.bag_info["Source-Organization"] == "Their Press"
    records = payload_of(result)
    data = DELIVERY["期刊/2024/第1期/文章.pdf"]
    assert records["data/期刊/2024/第1期/文章.pdf"][1]["sha512"] == hashlib.sha512(data).hexdigest()
    assert set(result.algorithms) == {"sha256", "sha512", *checksums}
    assert "extra-tags/notes.txt" in {r.path for r in result.tag_files}
    assert [f.code for f in result.findings] == ["BAG303"]  # the extra tag file is in no tag manifest


def test_existing_bag_with_a_changed_file_is_refused_and_not_copied(tmp_path: Path) -> None:
    bag = make_bag(tmp_path, DELIVERY, name="theirs")
    (bag / "data" / "empty.dat").write_bytes(b"")
    (bag / "data" / "nested" / "a" / "b" / "c" / "d" / "leaf.txt").write_bytes(b"LEAF")
    with pytest.raises(BagInvalid) as refused:
        create_bag(open_delivery(bag), tmp_path / "copy", {}, fsync=False)
    assert [f.code for f in refused.value.report.errors] == ["BAG202", "BAG202"]
    assert not (tmp_path / "copy").exists() and not list(tmp_path.glob(".copy.bagging-*"))


def test_incomplete_existing_bag_is_refused_before_copying(tmp_path: Path) -> None:
    bag = make_bag(tmp_path, DELIVERY, name="theirs")
    (bag / "data" / "empty.dat").unlink()
    with pytest.raises(BagInvalid) as refused:
        create_bag(open_delivery(bag), tmp_path / "copy", {}, fsync=False)
    assert set(refused.value.report.findings.codes()) == {"BAG201", "BAG406"}
    assert not (tmp_path / "copy").exists()


def test_destination_must_be_new_or_empty(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"a": b"a"})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("occupied")
    with pytest.raises(AlreadyExists):
        create_bag(open_delivery(source), tmp_path / "full", INFO, fsync=False)
    assert files_under(tmp_path / "full") == {"x": b"occupied"}
    (tmp_path / "empty").mkdir()
    create_bag(open_delivery(source), tmp_path / "empty", INFO)
    assert (tmp_path / "empty" / "data" / "a").read_bytes() == b"a"
    with pytest.raises(InvalidRequest):
        create_bag(open_delivery(source), source / "inside", INFO, fsync=False)


@pytest.mark.parametrize(
    "bag_info",
    [{"Payload-Oxum": "1.1"}, {"Bag-Size": "1 GB"}, {"Bad:Label": "x"}, {"Note": "two\nlines"}, {" padded": "x"}],
)
def test_bad_bag_info_is_refused_before_anything_is_written(tmp_path: Path, bag_info: dict) -> None:
    with pytest.raises(InvalidRequest):
        create_bag(open_delivery(make_tree(tmp_path / "src", {"a": b"a"})), tmp_path / "bag", bag_info)
    assert not (tmp_path / "bag").exists()


def test_repeated_bag_info_values_and_default_bagging_date(tmp_path: Path) -> None:
    info = {"Source-Organization": ["Press A", "Press B"], "External-Identifier": "x"}
    result = create_bag(open_delivery(make_tree(tmp_path / "src", {"a": b"a"})), tmp_path / "bag", info, fsync=False)
    assert result.bag_info["Source-Organization"] == ["Press A", "Press B"]
    assert len(result.bag_info["Bagging-Date"]) == 10


def test_a_file_that_changes_while_bagging_leaves_no_bag(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", DELIVERY)
    delivery = open_delivery(source)
    assert delivery.check().ok
    (source / "empty.dat").write_bytes(b"now with bytes")
    with pytest.raises(DeliveryRejected) as refused:
        create_bag(delivery, tmp_path / "bag", INFO, fsync=False)
    assert [f.code for f in refused.value.findings] == ["DLV027"]
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_a_write_failure_removes_the_partial_bag(tmp_path: Path, monkeypatch) -> None:
    source = make_tree(tmp_path / "src", {f"f{i:03d}": b"x" * i for i in range(300)})
    real = pipeline._write_new
    written = []

    def fail_after_some(target, data):
        if len(written) >= 150:
            raise OSError(28, "No space left on device")
        written.append(target)
        real(target, data)

    monkeypatch.setattr(pipeline, "_write_new", fail_after_some)
    with pytest.raises(Exception, match="No space left"):
        create_bag(open_delivery(source), tmp_path / "bag", INFO, fsync=False)
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize("workers", [1, 4])
def test_workers_do_not_change_the_bag(tmp_path: Path, workers: int) -> None:
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(i % 5000) for i in range(400)}
    source = make_tree(tmp_path / "src", files)
    one = create_bag(open_delivery(source), tmp_path / "a", INFO, workers=2, fsync=False)
    other = create_bag(open_delivery(source), tmp_path / "b", INFO, workers=workers, fsync=False)
    assert payload_of(one) == payload_of(other)
    assert (tmp_path / "a" / "manifest-sha512.txt").read_bytes() == (tmp_path / "b" / "manifest-sha512.txt").read_bytes()


def test_progress_gets_running_totals(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    create_bag(
        open_delivery(make_tree(tmp_path / "src", DELIVERY)), tmp_path / "bag", INFO,
        progress=lambda b, f: seen.append((b, f)), fsync=False,
    )
    assert seen[-1] == (sum(map(len, DELIVERY.values())), len(DELIVERY))


def test_other_algorithms_can_be_chosen(tmp_path: Path) -> None:
    result = create_bag(
        open_delivery(make_tree(tmp_path / "src", {"a": b"a"})), tmp_path / "bag", INFO, algorithms=["md5"], fsync=False
    )
    assert result.algorithms == ("md5",)
    assert sorted(p.name for p in (tmp_path / "bag").glob("*manifest-*")) == ["manifest-md5.txt", "tagmanifest-md5.txt"]
    with pytest.raises(InvalidRequest):
        create_bag(open_delivery(tmp_path / "src"), tmp_path / "bag2", INFO, algorithms=["crc32"])
    shutil.rmtree(tmp_path / "bag")


class _ShrinkingDelivery(DirectoryDelivery):
    """A directory whose listing promises one byte more than a.txt then holds."""

    def entries(self):
        for entry in super().entries():
            size = entry.size + 1 if entry.path == "a.txt" else entry.size
            yield DeliveryEntry(entry.path, size, entry.open, entry.open_fd)


def test_a_file_that_changes_during_the_copy_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    files = {"a.txt": b"abc"} | {f"later/{i:05d}": b"x" * 100 for i in range(3000)}
    delivery = _ShrinkingDelivery(str(make_tree(tmp_path / "src", files)))
    with pytest.raises(DeliveryRejected) as refused:
        create_bag(delivery, tmp_path / "bag", INFO, fsync=False)
    assert [(f.code, f.path) for f in refused.value.findings] == [("DLV027", "a.txt")]
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize("size", [50_000, writer.SMALL_MEMBER + 4096], ids=["read-whole", "streamed"])
def test_a_corrupt_zip_member_stops_the_bag(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    archive = zip_of(tmp_path / "d.zip", [("ok.txt", b"fine"), ("data.bin", data)], zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    at = raw.find(data[:64])
    raw[at + 1000] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with open_delivery(archive) as delivery:
        assert delivery.check().ok
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "bag", INFO, fsync=False)
    assert [f.code for f in refused.value.findings] == ["DLV021"]
    assert sorted(os.listdir(tmp_path)) == ["d.zip"]


def test_drop_behind_leaves_bags_byte_identical(tmp_path: Path, monkeypatch) -> None:
    files = {f"big/{i}.bin": os.urandom(700_000 + i * 50_000) for i in range(6)} | DELIVERY
    source = make_tree(tmp_path / "src", files)
    plain = create_bag(open_delivery(source), tmp_path / "plain", INFO, fsync=False)
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 64 * 1024)
    monkeypatch.setattr(pipeline, "DROP_BEHIND", 256 * 1024)
    advised = []
    monkeypatch.setattr(pagecache, "FADVISE", lambda fd, offset, length, advice: advised.append(advice))
    dropped = create_bag(open_delivery(source), tmp_path / "dropped", INFO, fsync=False)
    assert advised and set(advised) == {os.POSIX_FADV_DONTNEED}
    assert payload_of(dropped) == payload_of(plain)
    assert files_under(tmp_path / "dropped" / "data") == files
    for name in ("manifest-sha256.txt", "manifest-sha512.txt"):
        assert (tmp_path / "dropped" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    assert validate_bag(tmp_path / "dropped").valid


def test_files_a_kept_copy_holds_are_listed_but_not_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(writer, "KNOWN_LOOKAHEAD", 2)  # several batches of questions
    source = make_tree(tmp_path / "src", DELIVERY)
    kept = {"data/期刊/2024/第1期/文章.pdf": DELIVERY["期刊/2024/第1期/文章.pdf"],  # the same bytes: left out
            "data/nested/a/b/c/d/leaf.txt": b"leaf but other bytes"}  # other bytes: written
    asked: list[list[tuple[str, int]]] = []

    def known(batch):
        asked.append(batch)
        return {path: hashlib.sha256(kept[path]).digest() + hashlib.sha512(kept[path]).digest()
                for path, _ in batch if path in kept}

    result = create_bag(open_delivery(source), tmp_path / "bag", INFO, fsync=False, known=known)
    assert sorted(p for batch in asked for p, _ in batch) == sorted(f"data/{rel}" for rel in DELIVERY)
    assert max(len(batch) for batch in asked) == 2
    assert result.unwritten == 1
    assert [result.payload.path_at(i) for i in result.unwritten_rows] == ["data/期刊/2024/第1期/文章.pdf"]
    assert sorted(files_under(tmp_path / "bag" / "data")) == sorted(
        rel for rel in DELIVERY if rel != "期刊/2024/第1期/文章.pdf")
    assert payload_of(result) == payload_of(create_bag(open_delivery(source), tmp_path / "whole", INFO, fsync=False))
    assert (tmp_path / "bag" / "manifest-sha512.txt").read_bytes() == (
        tmp_path / "whole" / "manifest-sha512.txt").read_bytes()


def test_an_archive_is_bagged_whole_whatever_a_kept_copy_holds(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "d.zip", list(DELIVERY.items()))

    def known(batch):
        raise AssertionError("an archive's members are read in order, once: nothing is asked")

    result = create_bag(open_delivery(archive), tmp_path / "bag", INFO, fsync=False, known=known)
    assert result.unwritten == 0 and files_under(tmp_path / "bag" / "data") == DELIVERY
