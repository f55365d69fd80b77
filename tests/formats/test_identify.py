"""Identification from a file's head and tail: the same answers as FIDO's own matcher, from fewer bytes."""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import pytest

from preservation.formats import identify
from preservation.formats.identify import BUFSIZE, HeadTail, signatures

from . import validation_samples as samples


@pytest.fixture(scope="module")
def sigs():
    return signatures()


def _fido_puids(sigs, head: bytes, tail: bytes) -> list[str]:
    """What FIDO's own ``match_formats`` says, in its order, without repeats."""
    return list(dict.fromkeys(f.findtext("puid") for f, _ in sigs._fido.match_formats(head, tail)))


CONTENT_TYPES = (b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                 b'wordprocessingml.document.main+xml"/></Types>')


def docx_members() -> list[tuple[str, bytes, int]]:
    """The two members a word-processing OOXML package needs for PRONOM's container signature."""
    return [("[Content_Types].xml", CONTENT_TYPES, zipfile.ZIP_DEFLATED),
            ("word/document.xml", b"<w:document/>", zipfile.ZIP_DEFLATED)]


def _head_tail(data: bytes) -> tuple[bytes, bytes]:
    return data[:BUFSIZE], data[-BUFSIZE:]


def _built(tmp_path: Path) -> dict[str, bytes]:
    rng = random.Random(17)
    made = {
        "valid.pdf": samples.valid_pdf(tmp_path / "v.pdf").read_bytes(),
        "encrypted.pdf": samples.encrypted_pdf(tmp_path / "e.pdf").read_bytes(),
        "truncated.pdf": samples.truncated_pdf(tmp_path / "t.pdf").read_bytes(),
        "image.png": samples.png(tmp_path / "i.png").read_bytes(),
        "bad-crc.png": samples.png_bad_crc(tmp_path / "b.png").read_bytes(),
        "half.jpg": samples.jpeg_truncated(tmp_path / "h.jpg").read_bytes(),
        "book.epub": samples.epub(tmp_path / "b.epub").read_bytes(),
        "letter.docx": samples.zip_bytes(docx_members()),
        "jats.xml": samples.JATS_GOOD.encode(),
        "onix.xml": samples.ONIX_GOOD.encode(),
        "page.html": b"<!DOCTYPE html><html><head><title>t</title></head><body></body></html>",
        "random.bin": rng.randbytes(5000),
        "big-random.bin": rng.randbytes(3 * BUFSIZE + 11),
        "one-byte": b"%",
        "gif.gif": b"GIF89a" + rng.randbytes(200) + b"\x00\x3b",
        "text.txt": "《物理学报》 Acta Physica Sinica\n".encode() * 50,
        "plain.zip": samples.zip_bytes([("a.txt", b"hello" * 100, zipfile.ZIP_DEFLATED)]),
    }
    # a big PDF: its %%EOF is only in the tail, far from the head
    made["big.pdf"] = b"%PDF-1.7\n" + rng.randbytes(2 * BUFSIZE) + b"\n%%EOF\n"
    return made


def test_the_compiled_matcher_answers_as_fido_does(sigs, tmp_path):
    corpus = _built(tmp_path)
    for name, data in corpus.items():
        head, tail = _head_tail(data)
        ours = [sigs._formats[i].puid for i in sigs.match(head, tail)]
        assert ours == _fido_puids(sigs, head, tail), name
    assert [sigs._formats[i].puid for i in sigs.match(*_head_tail(corpus["valid.pdf"]))]  # not vacuous


def test_the_matcher_answers_as_fido_does_on_files_of_this_machine(sigs):
    """Whatever files the system ships (documentation, images, fonts …): the index never changes an answer."""
    seen = 0
    for root in ("/usr/share/doc", "/usr/share/pixmaps", "/usr/share/fonts", "/usr/lib/python3"):
        for dirpath, _, names in os.walk(root):
            for name in names[:20]:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                head, tail = _head_tail(data)
                assert [sigs._formats[i].puid for i in sigs.match(head, tail)] == _fido_puids(sigs, head, tail), path
                seen += 1
                if seen >= 400:
                    return
    assert seen >= 50


@pytest.mark.parametrize("name, puid, basis", [
    ("valid.pdf", "fmt/17", "signature"),  # PDF 1.3, as pikepdf writes a new document
    ("image.png", "fmt/11", "signature"),
    ("book.epub", "fmt/483", "signature"),  # PRONOM's EPUB has a byte signature: `mimetype` first, stored
    ("letter.docx", "fmt/412", "container"),  # OOXML only through [Content_Types].xml inside the zip
    ("jats.xml", "fmt/101", "signature"),
    ("random.bin", None, "extension"),
    ("plain.zip", "x-fmt/263", "signature"),
])
def test_what_each_file_is(sigs, tmp_path, name, puid, basis):
    data = _built(tmp_path)[name]
    found = sigs.identify(*_head_tail(data), len(data), name)
    assert found.basis == basis
    if puid is not None:
        assert found.puid == puid
    assert not found.extension_mismatch


def test_a_pdf_name_on_a_zip_is_identified_as_a_zip_and_the_mismatch_noted(sigs):
    data = samples.zip_bytes([("a.txt", b"x" * 1000, zipfile.ZIP_DEFLATED)])
    found = sigs.identify(*_head_tail(data), len(data), "article.pdf")
    assert found.puid == "x-fmt/263" and found.basis == "signature" and found.extension_mismatch
    assert found.details()["extension_mismatch"] is True


def test_a_file_no_signature_or_name_matches_is_unidentified(sigs):
    data = random.Random(3).randbytes(4096)
    found = sigs.identify(*_head_tail(data), len(data), "mystery.zz9q")
    assert found == identify.UNIDENTIFIED and found.puid is None and found.basis == "none"
    assert not found.identified


def test_an_empty_file_is_judged_by_its_name_only(sigs):
    assert sigs.identify(b"", b"", 0, "empty.pdf").basis == "extension"
    assert sigs.identify(b"", b"", 0, "empty").basis == "none"


def test_a_container_member_between_head_and_tail_leaves_the_container_undecided(sigs):
    """A DOCX whose [Content_Types].xml sits between two big members: neither kept range holds it."""
    members = [("word/media/1.bin", os.urandom(200 * 1024), zipfile.ZIP_STORED), *docx_members(),
               ("word/media/2.bin", os.urandom(300 * 1024), zipfile.ZIP_STORED)]
    data = samples.zip_bytes(members)
    found = sigs.identify(*_head_tail(data), len(data), "letter.docx")
    assert found.basis == "signature" and found.puid == "x-fmt/263"
    assert any("undecided" in n for n in found.notes)
    whole = sigs.identify(data, data, len(data), "letter.docx")  # FIDO reading the whole file would see it
    assert whole.basis == "container" and whole.puid == "fmt/412"


def test_a_container_member_over_the_size_limit_is_not_read(sigs, monkeypatch):
    data = samples.zip_bytes(docx_members())
    assert sigs.identify(*_head_tail(data), len(data), "letter.docx").basis == "container"
    monkeypatch.setattr(identify, "MAX_CONTAINER_MEMBER", 4)
    found = sigs.identify(*_head_tail(data), len(data), "letter.docx")
    assert found.basis == "signature"  # [Content_Types].xml is over a 4-byte limit: never opened


@pytest.mark.parametrize("size", [0, 1, BUFSIZE - 1, BUFSIZE, BUFSIZE + 1, 2 * BUFSIZE - 1, 2 * BUFSIZE,
                                  2 * BUFSIZE + 1, 5 * BUFSIZE + 17])
@pytest.mark.parametrize("chunk", [1000, 65536, BUFSIZE, 3 * BUFSIZE, 1 << 20])
def test_head_tail_keeps_exactly_the_first_and_last_bytes(size, chunk):
    data = random.Random(size).randbytes(size)
    kept = HeadTail()
    view = memoryview(bytearray(data))  # fed views of a buffer, as the bagging pass does
    for at in range(0, size, chunk):
        kept.feed(view[at:at + chunk])
    assert bytes(kept.head) == data[:BUFSIZE]
    assert kept.tail == data[-BUFSIZE:] if size else kept.tail == b""
    assert kept.size == size
    assert len(kept.head) + len(kept._rest) <= 3 * BUFSIZE  # never the whole file


def test_head_tail_copies_what_it_keeps():
    buffer = bytearray(b"a" * 100)
    kept = HeadTail()
    kept.feed(memoryview(buffer))
    buffer[:] = b"b" * 100  # the bagging pass reuses its buffer
    assert bytes(kept.head) == b"a" * 100 and kept.tail == b"a" * 100


def test_signatures_name_the_tool_and_the_signature_files(sigs):
    import fido

    assert sigs.tool == "fido" and sigs.tool_version == fido.__version__
    assert sigs.signature_version.startswith("v") and "container-" in sigs.signature_version
    assert signatures() is sigs  # loaded once per process


def test_garbage_in_a_zip_container_is_only_unreadable(sigs):
    data = b"PK\x03\x04" + os.urandom(2000) + b"PK\x05\x06" + b"\xff" * 18
    found = sigs.identify(*_head_tail(data), len(data), "x.docx")
    assert found.basis in ("signature", "extension", "none")  # never raises


def test_a_broken_ole2_file_is_only_a_signature_match(sigs):
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)  # the OLE2 magic, then nothing sound
    found = sigs.identify(data, data, len(data), "x.doc")
    assert found.basis in ("signature", "extension")


class _CountingScan:
    """The head scan of a Signatures, counting its passes over a head (overlapping or not)."""

    def __init__(self, scan):
        self.scan, self.passes = scan, []

    def find_matches_as_indexes(self, head, overlapping=False):
        self.passes.append(overlapping)
        return self.scan.find_matches_as_indexes(head, overlapping=overlapping)


def test_a_big_head_is_scanned_once_a_small_one_looked_at_quickly_first(sigs, monkeypatch):
    counting = _CountingScan(sigs._head_scan)
    monkeypatch.setattr(sigs, "_head_scan", counting)
    rng = random.Random(5)
    big = rng.randbytes(BUFSIZE)
    before = [sigs._formats[i].puid for i in sigs.match(big, big)]
    assert counting.passes == [True]  # straight to the full scan: no quick look that would mostly find something
    counting.passes.clear()
    small = b"\x01" * 4096  # none of the strings
    assert sigs.match(small, small) == []
    assert counting.passes == [False]  # a quick look found nothing: no full scan
    monkeypatch.undo()
    assert [sigs._formats[i].puid for i in sigs.match(big, big)] == before == _fido_puids(sigs, big, big)
