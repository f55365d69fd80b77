"""Tag files parsed from bytes, and a stored bag's metadata read through a storage adapter."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from preservation.bagit.tagfiles import (
    BagInfo,
    check_bag_info_item,
    format_bag_info,
    parse_bag_info,
    parse_bag_metadata,
    parse_bagit_txt,
    read_bag_metadata,
    read_bag_metadata_from_adapter,
)
from preservation.errors import InvalidText
from preservation.findings import FindingList
from storage_adapters import open_adapter

from .builders import PAYLOAD, digest, make_bag


@pytest.mark.parametrize(
    "data, version, codes",
    [
        (b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", "1.0", []),
        (b"BagIt-Version: 0.93\r\nTag-File-Character-Encoding: UTF-8\r\n", "0.93", []),
        (codecs.BOM_UTF8 + b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", "1.0", ["BAG003"]),
        (b"Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 0.97\n", "0.97", ["BAG009"]),
        (b"BagIt-Version: 1.1\nTag-File-Character-Encoding: UTF-8\n", None, ["BAG005"]),
        (b"BagIt-Version: one\nTag-File-Character-Encoding: UTF-8\n", None, ["BAG005"]),
        (b"BagIt-Version: 1.0\n", "1.0", ["BAG009", "BAG006"]),
        (b"BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n", "1.0", ["BAG008"]),
        (b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n\xff\n", "1.0", ["BAG011", "BAG002"]),
        (b"BagIt-Version : 1.0\nTag-File-Character-Encoding: UTF-8\n", "1.0", ["BAG014"]),
        (b"BagIt-Version:  1.0\nTag-File-Character-Encoding: UTF-8 \n", "1.0", ["BAG014", "BAG014"]),
        (b" BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", "1.0", ["BAG014"]),
        (b"BagIt-Version : 3.0\nTag-File-Character-Encoding: UTF-8\n", None, ["BAG005", "BAG014"]),
        (b"BagIt-Version : 0.96\nTag-File-Character-Encoding:\tUTF-8\n", "0.96", ["BAG015", "BAG015"]),
    ],
)
def test_bagit_txt(data: bytes, version: str | None, codes: list[str]) -> None:
    findings = FindingList()
    declaration = parse_bagit_txt(data, findings)
    assert declaration.version == version
    assert findings.codes() == codes


def test_bag_info_keeps_order_joins_continuations_and_repeats() -> None:
    findings = FindingList()
    info = parse_bag_info(
        [
            "Source-Organization: Springer Nature",
            "External-Description: a description long enough",
            "  to be folded over two lines",
            "\tand three",
            "Keyword: physics",
            "Keyword: chemistry",
            "payload-oxum: 10.2",
        ],
        findings,
    )
    assert findings.codes() == []
    assert info.get("External-Description") == "a description long enough to be folded over two lines and three"
    assert info.values("keyword") == ["physics", "chemistry"]
    assert info.get("Payload-Oxum") == "10.2"  # reserved labels are case-insensitive
    assert info.as_dict()["Keyword"] == ["physics", "chemistry"]


def test_bag_info_label_format_is_a_warning() -> None:
    findings = FindingList()
    info = parse_bag_info(["Contact-Name:Jane", "Contact-Email : j@example.org"], findings)
    assert findings.codes() == ["BAG404", "BAG404"]
    assert info.items == [("Contact-Name", "Jane"), ("Contact-Email", "j@example.org")]


def test_bag_info_round_trips_through_the_formatter() -> None:
    items = [("Source-Organization", "Société Générale d'Édition"), ("Note", "期刊"), ("Note", "second")]
    text = format_bag_info(items).decode("utf-8")
    assert parse_bag_info(text.splitlines(), FindingList()) == BagInfo(items)


def test_metadata_of_a_local_bag(tmp_path: Path) -> None:
    metadata = read_bag_metadata(make_bag(tmp_path))
    assert metadata.version == "1.0" and metadata.findings.codes() == []
    assert metadata.payload_algorithms == ("sha256", "sha512")
    entries = dict(metadata.payload_entries())
    assert entries["data/a.txt"] == {
        "sha256": digest("sha256", PAYLOAD["a.txt"]),
        "sha512": digest("sha512", PAYLOAD["a.txt"]),
    }
    assert set(metadata.tag_manifests["sha256"].entries) == {
        "bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt",
    }


def test_metadata_from_a_storage_adapter_reads_only_tag_files(tmp_path: Path) -> None:
    bag = make_bag(tmp_path)
    store = open_adapter((tmp_path / "node").as_uri())
    for path in sorted(p for p in bag.rglob("*") if p.is_file()):
        store.write(f"pkg-1/{path.relative_to(bag).as_posix()}", path.read_bytes())
    store.write("pkg-1/manifest-sha256.txt.bak/oops", b"not a manifest")
    read: list[str] = []
    real_read = store.read

    def spy(key, offset=0, length=None):
        read.append(key)
        return real_read(key, offset, length)

    store.read = spy  # type: ignore[method-assign]
    metadata = read_bag_metadata_from_adapter(store, "pkg-1")
    assert metadata.findings.codes() == []
    assert metadata.bag_info.get("External-Identifier") == "pkg-0001"
    assert dict(metadata.payload_entries()).keys() == {f"data/{p}" for p in PAYLOAD}
    assert all(not key.startswith("pkg-1/data/") for key in read)
    missing = read_bag_metadata_from_adapter(store, "pkg-2/")
    assert missing.declaration is None and "BAG001" in missing.findings.codes()


def test_metadata_parses_from_any_reader() -> None:
    files = {
        "bagit.txt": b"BagIt-Version: 0.96\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": b"Payload-Oxum: 1.1\n",
        "manifest-md5.txt": f"{digest('md5', b'x')}  data/x\n".encode(),
    }
    metadata = parse_bag_metadata(files.get, files)
    assert metadata.version == "0.96" and metadata.payload_algorithms == ("md5",)
    assert metadata.bag_info.get("Payload-Oxum") == "1.1" and metadata.findings.codes() == []


@pytest.mark.parametrize("label, value", [("Title", "end\uffff"), ("Title", "nul\x00"), ("Ti\ufffetle", "x"),
                                          ("Title", "lone \ud800 surrogate")])
def test_bag_info_that_xml_cannot_carry_is_refused_where_it_enters(label: str, value: str) -> None:
    with pytest.raises(InvalidText) as e:
        check_bag_info_item(label, value)
    assert e.value.code == "E113"


def test_bag_info_read_from_a_bag_reports_what_xml_cannot_carry() -> None:
    findings = FindingList()
    info = parse_bag_info(["Title: fine", "Note: bad \ufffe", "  continued \x1b[31m"], findings)
    assert [(f.code, f.params["line"], f.params["characters"]) for f in findings] == [
        ("BAG407", 2, ["U+FFFE"]),
        ("BAG407", 3, ["U+001B"]),
    ]
    assert info.get("Title") == "fine"
