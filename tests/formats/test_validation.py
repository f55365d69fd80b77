"""Format validation: each check on real files of its kind, built here, run in real validating processes."""

from __future__ import annotations

import json
import socket
import threading
import zipfile

import pytest
from lxml import etree

from preservation import codes
from preservation.errors import InvalidRequest
from preservation.findings import WARNING
from preservation.formats.validation import Validator, kind_for
from tests.formats import validation_samples as samples


@pytest.fixture(scope="module")
def validator():
    with Validator(time_limit_s=60, memory_limit_bytes=512 << 20, workers=2) as v:
        yield v


def validate(validator: Validator, path, kind: str):
    return validator.validate(path, kind)


# --- which files get which check ---------------------------------------------------------------


@pytest.mark.parametrize("puid, mime, name, kind", [
    ("fmt/276", "application/pdf", "a.pdf", "pdf"),
    ("fmt/354", None, "a.bin", "pdf"),  # PDF/A-1b by its PUID alone
    (None, "application/pdf; charset=binary", "x", "pdf"),
    ("fmt/101", "application/xml", "article.xml", "xml"),
    ("fmt/101", "application/xml, text/xml", "a.nxml", "xml"),  # PRONOM's own spelling of two MIME types
    (None, "application/jats+xml", "a", "xml"),
    ("x-fmt/111", "text/plain", "article.xml", "xml"),  # a JATS file without an XML declaration
    ("fmt/483", "application/epub+zip", "b.epub", "epub"),
    ("x-fmt/263", "application/zip", "b.epub", "epub"),  # a broken EPUB identified as a plain zip
    ("fmt/11", "image/png", "p.png", "image"),
    ("fmt/43", None, "p", "image"),
    (None, None, "unknown.pdf", "pdf"),  # nothing matched: the name decides
    (None, None, "unknown.txt", None),
    ("x-fmt/263", "application/zip", "really-a-zip.pdf", None),  # identification wins over the name
    ("x-fmt/111", "text/plain", "notes.txt", None),
    ("fmt/40", "application/msword", "a.doc", None),
])
def test_kind_for(puid, mime, name, kind):
    assert kind_for(puid, mime, name) == kind


# --- PDF ---------------------------------------------------------------------------------------


def test_a_valid_pdf(validator, tmp_path):
    result = validate(validator, samples.valid_pdf(tmp_path / "ok.pdf"), "pdf")
    assert result.outcome == "valid" and result.findings == ()
    assert result.details["page_count"] == 3 and result.details["pdfa"] == "2B"
    assert result.details["pdf_version"] == "1.3"
    assert not result.encrypted and not result.drm


def test_an_encrypted_pdf_that_opens_without_a_password(validator, tmp_path):
    result = validate(validator, samples.encrypted_pdf(tmp_path / "enc.pdf"), "pdf")
    assert result.outcome == "valid" and result.encrypted and result.drm
    assert result.codes == [codes.PDF_ENCRYPTED, codes.PDF_RESTRICTED]
    assert result.details["denied"] == ["extract", "modify_assembly", "print_highres"]
    assert result.details["user_password"] is False and result.details["page_count"] == 3


def test_a_pdf_locked_by_a_user_password(validator, tmp_path):
    result = validate(validator, samples.encrypted_pdf(tmp_path / "locked.pdf", user="secret"), "pdf")
    assert result.encrypted and result.drm and result.details["user_password"] is True
    assert result.codes == [codes.PDF_PASSWORD]


def test_a_truncated_pdf_is_invalid(validator, tmp_path):
    result = validate(validator, samples.truncated_pdf(tmp_path / "cut.pdf"), "pdf")
    assert result.outcome == "invalid"
    assert result.codes[0] == codes.PDF_TRUNCATED
    assert codes.PDF_XREF_REPAIRED in result.codes and result.details["xref_repaired"] is True


def test_a_pdf_with_a_stream_that_does_not_decode(validator, tmp_path):
    result = validate(validator, samples.damaged_stream_pdf(tmp_path / "bad-stream.pdf"), "pdf")
    assert result.outcome == "invalid" and result.codes == [codes.PDF_DAMAGED]
    assert result.details["problems"] >= 1


def test_a_zip_named_pdf_is_not_a_pdf(validator, tmp_path):
    path = tmp_path / "really-a-zip.pdf"
    path.write_bytes(samples.zip_bytes([("a.txt", b"hello", zipfile.ZIP_DEFLATED)]))
    assert kind_for("x-fmt/263", "application/zip", path.name) is None
    result = validate(validator, path, "pdf")  # and if something does ask for a PDF check
    assert result.outcome == "invalid" and result.codes == [codes.PDF_NOT_PDF]


def test_a_pdf_header_on_garbage_cannot_be_opened(validator, tmp_path):
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    result = validate(validator, path, "pdf")
    assert result.outcome == "invalid" and result.codes == [codes.PDF_TRUNCATED, codes.PDF_UNREADABLE]


def test_a_pdf_without_pages(validator, tmp_path):
    result = validate(validator, samples.valid_pdf(tmp_path / "empty.pdf", pages=0, pdfa=None), "pdf")
    assert result.outcome == "invalid" and result.codes == [codes.PDF_NO_PAGES]
    assert result.details["page_count"] == 0


# --- XML, JATS, ONIX ---------------------------------------------------------------------------


def _xml(tmp_path, text: str, name: str = "doc.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_jats_article_that_passes(validator, tmp_path):
    result = validate(validator, _xml(tmp_path, samples.JATS_GOOD), "xml")
    assert result.outcome == "valid" and result.findings == ()
    assert result.details == {"profile": "jats", "doi": "10.1234/jpres.2024.001", "pub_year": 2024}


def test_a_jats_article_that_fails(validator, tmp_path):
    result = validate(validator, _xml(tmp_path, samples.JATS_BAD), "jats")
    assert result.outcome == "invalid"
    assert result.codes == [codes.JATS_NO_JOURNAL_TITLE, codes.JATS_ISSN, codes.JATS_NO_ARTICLE_ID,
                            codes.JATS_NO_PUB_YEAR, codes.JATS_VOLUME_ISSUE]


def test_jats_rules_forced_on_another_root(validator, tmp_path):
    result = validate(validator, _xml(tmp_path, "<book><front/></book>"), "jats")
    assert result.codes == [codes.JATS_ROOT, codes.JATS_NO_JOURNAL_TITLE, codes.JATS_NO_ISSN,
                            codes.JATS_NO_ARTICLE_META]


def test_a_jats_article_without_front_or_with_a_bad_doi(validator, tmp_path):
    assert validate(validator, _xml(tmp_path, '<article dtd-version="1.3"><body/></article>'), "xml").codes == [
        codes.JATS_NO_ARTICLE_META]
    bad_doi = samples.JATS_GOOD.replace("10.1234/jpres.2024.001", "doi:jpres 2024")
    assert validate(validator, _xml(tmp_path, bad_doi), "xml").codes == [codes.JATS_DOI]


def test_jats_relying_on_its_dtd_for_entities_is_noted_and_nothing_is_loaded(validator, tmp_path):
    text = samples.JATS_GOOD.replace("Bits rot.", "Bits &mdash; rot.")
    result = validate(validator, _xml(tmp_path, text), "xml")
    assert result.outcome == "valid" and result.codes == [codes.XML_ENTITY_UNDECLARED]
    assert "mdash" in result.findings[0][1]


def test_onix_messages(validator, tmp_path):
    good = validate(validator, _xml(tmp_path, samples.ONIX_GOOD), "xml")
    assert good.outcome == "valid" and good.details == {"profile": "onix", "release": "3.0", "products": 1}
    short = validate(validator, _xml(tmp_path, samples.ONIX_SHORT_GOOD), "onix")
    assert short.outcome == "valid" and short.details["products"] == 1
    bad = validate(validator, _xml(tmp_path, samples.ONIX_BAD), "xml")
    assert bad.outcome == "invalid"
    assert bad.codes == [codes.ONIX_ROOT, codes.ONIX_NO_RECORD_REFERENCE, codes.ONIX_NO_PRODUCT_IDENTIFIER,
                         codes.ONIX_NO_TITLE]
    empty = validate(validator, _xml(tmp_path, '<ONIXMessage release="3.1"><Header/></ONIXMessage>'), "xml")
    assert empty.codes == [codes.ONIX_NO_PRODUCT]


def test_onix_findings_are_capped_and_counted(validator, tmp_path):
    products = "<Product/>" * 400
    result = validate(validator, _xml(tmp_path, f'<ONIXMessage release="3.0">{products}</ONIXMessage>'), "xml")
    assert len(result.findings) == 50 and result.details["findings_dropped"] == 3 * 400 - 50
    assert result.details["products"] == 400


def test_xml_that_is_not_well_formed(validator, tmp_path):
    result = validate(validator, _xml(tmp_path, "<a><b></a>"), "xml")
    assert result.outcome == "invalid" and result.codes == [codes.XML_MALFORMED]
    assert "line 1" in result.findings[0][1]
    assert validate(validator, _xml(tmp_path, ""), "xml").codes == [codes.XML_MALFORMED]


@pytest.mark.parametrize("text, jats", [
    ('<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.2 20190208//EN" "x.dtd">'
     "<article/>", True),
    ('<article article-type="editorial"/>', True),
    ("<article><title>DocBook 4</title></article>", False),
    ('<article xmlns="http://docbook.org/ns/docbook" version="5.0"><title>DocBook 5</title></article>', False),
])
def test_only_an_article_that_says_it_is_jats_gets_the_jats_rules(validator, tmp_path, text, jats):
    result = validate(validator, _xml(tmp_path, text), "xml")
    assert (result.details.get("profile") == "jats") is jats
    assert (result.outcome == "invalid") is jats  # these JATS articles are empty: every rule fails


def test_plain_xml_is_only_checked_for_well_formedness(validator, tmp_path):
    result = validate(validator, _xml(tmp_path, "<catalog><item n='1'/></catalog>"), "xml")
    assert result.outcome == "valid" and result.findings == () and result.details == {}


class _CountingServer:
    """A TCP listener on 127.0.0.1 that counts the connections it is offered (there must be none)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.socket.close()


@pytest.fixture
def listener():
    server = _CountingServer()
    yield server
    server.close()


def test_external_entities_and_entity_bombs_are_refused_without_fetching(validator, tmp_path, listener):
    """Refused (FMV202) before anything is expanded.  The listener is a second guard: this machine's libxml2
    may be built without HTTP, but a file:// entity would be read by any parser that resolves entities."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    url = f"http://127.0.0.1:{listener.port}"
    documents = {
        "xxe-http": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}/x">]><r>&x;</r>',
        "xxe-file": f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]><r>&x;</r>',
        "xxe-parameter": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><r/>',
        "billion-laughs": '<!DOCTYPE lolz [<!ENTITY lol "lol">'
                          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
                                    for i in range(1, 10))
                          + "]><lolz>&lol9;</lolz>",
    }
    for name, text in documents.items():
        result = validate(validator, _xml(tmp_path, text, name + ".xml"), "xml")
        assert result.outcome == "invalid" and result.codes == [codes.XML_ENTITY_DECLARED], name
        assert "TOP-SECRET" not in json.dumps(result.to_dict())
    # the file entity is one a resolving parser does read: the check above could have failed
    resolving = etree.parse(str(tmp_path / "xxe-file.xml"), etree.XMLParser(resolve_entities=True))
    assert b"TOP-SECRET" in etree.tostring(resolving)
    # an external DTD is named, never loaded; an XInclude is never followed
    dtd = validate(validator, _xml(tmp_path, f'<!DOCTYPE r SYSTEM "{url}/r.dtd"><r/>'), "xml")
    xinclude = validate(validator, _xml(
        tmp_path, f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{url}/i"/></r>'), "xml")
    assert dtd.outcome == xinclude.outcome == "valid"
    assert listener.connections == 0


# --- EPUB --------------------------------------------------------------------------------------


def test_a_valid_epub(validator, tmp_path):
    result = validate(validator, samples.epub(tmp_path / "book.epub"), "epub")
    assert result.outcome == "valid" and result.findings == ()
    assert result.details == {"members": 4, "rootfile": "OEBPS/content.opf"}


@pytest.mark.parametrize("change, expected", [
    # mimetype after the container, and deflated
    ({"mimetype": None, "chapter": ("mimetype", b"application/epub+zip", zipfile.ZIP_DEFLATED)},
     [codes.EPUB_MIMETYPE_FIRST, codes.EPUB_MIMETYPE_COMPRESSED]),
    ({"mimetype": ("mimetype", b"application/epub+zip\n", zipfile.ZIP_STORED)}, [codes.EPUB_MIMETYPE_CONTENT]),
    ({"mimetype": None}, [codes.EPUB_MIMETYPE_FIRST, codes.EPUB_MIMETYPE_CONTENT]),
    ({"container": None}, [codes.EPUB_NO_CONTAINER]),
    ({"container": ("META-INF/container.xml", b"<container><rootfiles>", zipfile.ZIP_DEFLATED)},
     [codes.EPUB_NO_CONTAINER]),
    ({"opf": None}, [codes.EPUB_ROOTFILE]),
    ({"container": ("META-INF/container.xml", b"<container/>", zipfile.ZIP_STORED)}, [codes.EPUB_ROOTFILE]),
])
def test_a_broken_epub(validator, tmp_path, change, expected):
    result = validate(validator, samples.epub(tmp_path / "broken.epub", samples.epub_members(**change)), "epub")
    assert result.outcome == "invalid" and result.codes == expected


def test_an_epub_member_that_fails_its_crc(validator, tmp_path):
    result = validate(validator, samples.corrupt_member_epub(tmp_path / "crc.epub"), "epub")
    assert result.outcome == "invalid" and result.codes == [codes.EPUB_MEMBER_CORRUPT]
    assert "OEBPS/c1.xhtml" in result.findings[0][1]


def test_an_epub_that_is_not_a_zip(validator, tmp_path):
    path = tmp_path / "text.epub"
    path.write_text("just words")
    assert validate(validator, path, "epub").codes == [codes.EPUB_NOT_ZIP]


def test_epub_drm_and_encryption_are_flagged_but_font_obfuscation_is_not(validator, tmp_path):
    def encryption(algorithm: str) -> tuple[str, bytes, int]:
        xml = (f'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
               f'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
               f'<enc:EncryptionMethod Algorithm="{algorithm}"/></enc:EncryptedData></encryption>')
        return ("META-INF/encryption.xml", xml.encode(), zipfile.ZIP_DEFLATED)

    locked = samples.epub_members(rights=("META-INF/rights.xml", b"<rights/>", zipfile.ZIP_DEFLATED),
                                  encryption=encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc"))
    result = validate(validator, samples.epub(tmp_path / "drm.epub", locked), "epub")
    assert result.outcome == "valid" and result.encrypted and result.drm
    assert result.codes == [codes.EPUB_RIGHTS, codes.EPUB_ENCRYPTED]
    fonts = samples.epub_members(encryption=encryption("http://www.idpf.org/2008/embedding"))
    result = validate(validator, samples.epub(tmp_path / "fonts.epub", fonts), "epub")
    assert result.outcome == "valid" and not result.encrypted and result.findings == ()


# --- images ----------------------------------------------------------------------------------------


def test_a_valid_png(validator, tmp_path):
    result = validate(validator, samples.png(tmp_path / "ok.png"), "image")
    assert result.outcome == "valid" and result.findings == ()
    assert result.details == {"image_format": "PNG", "width": 64, "height": 48, "mode": "RGB", "frames": 1}


def test_a_png_with_a_bad_crc(validator, tmp_path):
    result = validate(validator, samples.png_bad_crc(tmp_path / "crc.png"), "image")
    assert result.outcome == "invalid" and result.codes == [codes.IMAGE_BROKEN]
    assert "IDAT" in result.findings[0][1]


def test_a_truncated_jpeg(validator, tmp_path):
    result = validate(validator, samples.jpeg_truncated(tmp_path / "cut.jpg"), "image")
    assert result.outcome == "invalid" and result.codes == [codes.IMAGE_TRUNCATED]


def test_a_file_that_is_no_image(validator, tmp_path):
    path = tmp_path / "words.png"
    path.write_text("no pixels here")
    assert validate(validator, path, "image").codes == [codes.IMAGE_UNIDENTIFIED]


def test_a_pixel_bomb_is_never_decoded(tmp_path):
    with Validator(time_limit_s=60, memory_limit_bytes=256 << 20, workers=1) as small:
        result = small.validate(samples.png_pixel_bomb(tmp_path / "bomb.png"), "image")
        assert result.outcome == "limit" and result.codes == [codes.IMAGE_TOO_LARGE]
        assert small.peak_rss_bytes < 256 << 20


# --- what every file gets -----------------------------------------------------------------------


def test_findings_are_warnings_with_their_codes(validator, tmp_path):
    result = validate(validator, samples.truncated_pdf(tmp_path / "cut.pdf"), "pdf")
    findings = result.finding_list("data/cut.pdf")
    assert [f.code for f in findings] == result.codes
    assert {f.severity for f in findings} == {WARNING} and findings.ok
    assert all(f.path == "data/cut.pdf" and f.params["kind"] == "pdf" for f in findings)


def test_files_that_cannot_be_opened_are_errors_and_nothing_blocks(validator, tmp_path):
    import os

    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    link = tmp_path / "link.pdf"
    link.symlink_to(samples.valid_pdf(tmp_path / "target.pdf"))
    items = [("missing", tmp_path / "absent.pdf", "pdf"), ("fifo", fifo, "pdf"), ("link", link, "pdf"),
             ("directory", tmp_path, "pdf")]
    results = dict(validator.validate_many(items))
    for key in ("missing", "fifo", "link", "directory"):
        assert results[key].outcome == "error" and results[key].codes == [codes.VALIDATION_UNREADABLE], key


def test_bad_arguments_are_refused(tmp_path):
    for kwargs in ({"time_limit_s": 0}, {"time_limit_s": float("nan")}, {"time_limit_s": True},
                   {"memory_limit_bytes": 1 << 20}, {"memory_limit_bytes": 2.5e9}, {"workers": 0},
                   {"workers": "2"}, {"files_per_process": 0}):
        with pytest.raises(InvalidRequest):
            Validator(**kwargs)
    with Validator() as idle:
        for kind in (None, "", "PDF", "pdf; rm", 3):
            with pytest.raises(InvalidRequest):
                list(idle.validate_many([("k", tmp_path / "x", kind)]))
        assert idle.stats()["processes_started"] == 0  # refused before any process was started


def test_an_unknown_kind_is_an_error_from_the_process(validator, tmp_path):
    result = validate(validator, samples.png(tmp_path / "p.png"), "midi")
    assert result.outcome == "error" and result.codes == [codes.VALIDATION_FAILED]


def test_no_file_no_process(tmp_path):
    with Validator() as v:
        assert list(v.validate_many([])) == []
        assert v.stats()["processes_started"] == 0 and v.process_ids == []
