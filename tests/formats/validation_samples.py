"""Files of each kind, good and bad, built by the tests themselves (nothing binary is kept in the repository)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pikepdf
from PIL import Image

# --- PDF --------------------------------------------------------------------------------------


def pdf_document(pages: int = 3, pdfa: str | None = "2B") -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for number in range(pages):
        pdf.add_blank_page()
        pdf.pages[-1].Contents = pdf.make_stream(f"BT /F1 12 Tf 72 720 Td (Page {number + 1}) Tj ET".encode())
    if pdfa:
        with pdf.open_metadata() as meta:
            meta["pdfaid:part"] = pdfa[0]
            meta["pdfaid:conformance"] = pdfa[1:]
    return pdf


def valid_pdf(path: Path, **kwargs) -> Path:
    pdf_document(**kwargs).save(path)
    return path


def encrypted_pdf(path: Path, user: str = "") -> Path:
    """Encrypted with owner password ``own`` and user password ``user``; copying and high-quality printing denied."""
    denied = pikepdf.Permissions(extract=False, print_highres=False)
    pdf_document().save(path, encryption=pikepdf.Encryption(owner="own", user=user, allow=denied))
    return path


def truncated_pdf(path: Path) -> Path:
    data = valid_pdf(path).read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def damaged_stream_pdf(path: Path) -> Path:
    """A sound file whose page content claims FlateDecode but holds bytes that do not inflate."""
    pdf = pdf_document(pages=1, pdfa=None)
    bad = pikepdf.Stream(pdf, b"this is not deflate data at all" * 10)
    bad.Filter = pikepdf.Name.FlateDecode
    pdf.pages[0].Contents = bad
    pdf.save(path, compress_streams=False)
    return path


def _zeros_deflate(mib: int) -> bytes:
    """A zlib stream of ``mib`` MiB of zeros, built in milliseconds: after a full flush every MiB deflates alike."""
    compressor = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + again * (mib - 1) + compressor.flush()


def _bomb_stream(pdf: pikepdf.Pdf, mib: int) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, zlib.compress(_zeros_deflate(mib), 9))
    stream.Filter = pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode])
    return stream


def exploding_pdf(path: Path, mib: int = 4096) -> Path:
    """A 10 KB PDF whose one page's content inflates (twice) to ``mib`` MiB, which qpdf holds in memory to parse."""
    pdf = pdf_document(pages=1, pdfa=None)
    pdf.pages[0].Contents = _bomb_stream(pdf, mib)
    pdf.save(path, compress_streams=False)
    return path


def slow_pdf(path: Path, streams: int = 200, mib_each: int = 128) -> Path:
    """A 100 KB PDF of ``streams`` streams that each inflate to ``mib_each`` MiB: decoding them takes many seconds."""
    pdf = pdf_document(pages=1, pdfa=None)
    pdf.Root.Slow = pikepdf.Array([pdf.make_indirect(_bomb_stream(pdf, mib_each)) for _ in range(streams)])
    pdf.save(path, compress_streams=False)
    return path


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF written by hand, object by object (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


CATALOG = b"<< /Type /Catalog /Pages 2 0 R /Extra 4 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> >>"
HOSTILE_STRUCTURES = {
    # 200,000 nested arrays: a recursive parser without a depth limit would exhaust its stack
    "nested-arrays": raw_pdf([CATALOG, PAGES, PAGE, b"[" * 200_000 + b"]" * 200_000]),
    "nested-dictionaries": raw_pdf([CATALOG, PAGES, PAGE, b"<< /A " * 100_000 + b">>" * 100_000]),
    # a page tree that is its own kid: a naive walk never ends
    "page-tree-loop": raw_pdf([CATALOG, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", PAGE, b"null"]),
    # a stream whose /Length is the stream itself
    "self-referencing-length": raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", PAGES,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> /Contents 4 0 R >>",
        b"<< /Length 4 0 R >>\nstream\nBT ET\nendstream"]),
}


def zip_bytes(members: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of ``(name, data, compression)`` members, in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, compression in members:
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buffer.getvalue()


# --- XML: JATS and ONIX -----------------------------------------------------------------------

JATS_GOOD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.3 20210610//EN"
  "JATS-archivearticle1-3.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article" dtd-version="1.3">
  <front>
    <journal-meta>
      <journal-id journal-id-type="publisher-id">JPRES</journal-id>
      <journal-title-group><journal-title>Journal of <italic>Preservation</italic></journal-title></journal-title-group>
      <issn pub-type="ppub">0378-5955</issn>
      <issn pub-type="epub">2049-3630</issn>
      <publisher><publisher-name>Consortium Press</publisher-name></publisher>
    </journal-meta>
    <article-meta>
      <article-id pub-id-type="doi">10.1234/jpres.2024.001</article-id>
      <title-group><article-title>Keeping bits for a century</article-title></title-group>
      <pub-date pub-type="epub"><day>3</day><month>2</month><year>2024</year></pub-date>
      <volume>12</volume>
      <issue>3-4</issue>
    </article-meta>
  </front>
  <body><sec><title>Introduction</title><p>Bits rot.</p></sec></body>
</article>
"""

JATS_BAD = """<?xml version="1.0" encoding="UTF-8"?>
<article>
  <front>
    <journal-meta>
      <issn>0378-5956</issn>
    </journal-meta>
    <article-meta>
      <title-group><article-title>No identifiers</article-title></title-group>
      <pub-date><year>twenty</year></pub-date>
      <volume>&lt;script&gt;</volume>
    </article-meta>
  </front>
  <body><p>text</p></body>
</article>
"""

ONIX_GOOD = """<?xml version="1.0" encoding="UTF-8"?>
<ONIXMessage release="3.0" xmlns="http://ns.editeur.org/onix/3.0/reference">
  <Header><Sender><SenderName>Consortium Press</SenderName></Sender><SentDateTime>20240101</SentDateTime></Header>
  <Product>
    <RecordReference>com.example.9780000000002</RecordReference>
    <NotificationType>03</NotificationType>
    <ProductIdentifier><ProductIDType>15</ProductIDType><IDValue>9780000000002</IDValue></ProductIdentifier>
    <DescriptiveDetail>
      <TitleDetail><TitleType>01</TitleType>
        <TitleElement><TitleElementLevel>01</TitleElementLevel><TitleText>Bits and Rot</TitleText></TitleElement>
      </TitleDetail>
    </DescriptiveDetail>
  </Product>
</ONIXMessage>
"""

ONIX_SHORT_GOOD = """<?xml version="1.0"?>
<ONIXmessage release="3.0" xmlns="http://ns.editeur.org/onix/3.0/short">
  <product><a001>ref-1</a001><productidentifier><b221>15</b221><b244>9780000000002</b244></productidentifier>
    <descriptivedetail><titledetail><b202>01</b202><titleelement><x409>01</x409><b203>Short</b203></titleelement>
    </titledetail></descriptivedetail></product>
</ONIXmessage>
"""

ONIX_BAD = """<?xml version="1.0"?>
<ONIXMessage release="2.1">
  <Product><ProductIdentifier><ProductIDType>15</ProductIDType></ProductIdentifier></Product>
</ONIXMessage>
"""


# --- EPUB -------------------------------------------------------------------------------------

CONTAINER = b"""<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
OPF = b"""<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">urn:isbn:9780000000002</dc:identifier>
<dc:title>Bits</dc:title><dc:language>en</dc:language></metadata>
<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c1"/></spine>
</package>"""
CHAPTER = b"<html xmlns='http://www.w3.org/1999/xhtml'><head><title>1</title></head><body><p>Bits.</p></body></html>"


def epub_members(**replace: tuple[str, bytes, int] | None) -> list[tuple[str, bytes, int]]:
    members = {
        "mimetype": ("mimetype", b"application/epub+zip", zipfile.ZIP_STORED),
        "container": ("META-INF/container.xml", CONTAINER, zipfile.ZIP_DEFLATED),
        "opf": ("OEBPS/content.opf", OPF, zipfile.ZIP_DEFLATED),
        "chapter": ("OEBPS/c1.xhtml", CHAPTER, zipfile.ZIP_DEFLATED),
    }
    for key, member in replace.items():
        members[key] = member
    return [m for m in members.values() if m is not None]


def epub(path: Path, members: list[tuple[str, bytes, int]] | None = None) -> Path:
    path.write_bytes(zip_bytes(members or epub_members()))
    return path


def corrupt_member_epub(path: Path) -> Path:
    """A well-formed EPUB with one byte of the chapter's compressed data changed: its CRC fails."""
    data = bytearray(epub(path).read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("OEBPS/c1.xhtml")
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(data))
    return path


# --- images -------------------------------------------------------------------------------------


def png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path, format="PNG")
    return path


def png_bad_crc(path: Path) -> Path:
    """A PNG whose IDAT chunk's CRC is wrong (its data intact)."""
    data = bytearray(png(path).read_bytes())
    at = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[at: at + 4])
    data[at + 8 + length] ^= 0xFF  # the first byte of the CRC after the chunk's data
    path.write_bytes(bytes(data))
    return path


def jpeg_truncated(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def png_pixel_bomb(path: Path, side: int = 20000) -> Path:
    """A few-KB PNG that claims ``side`` x ``side`` pixels (one bit each, all zero)."""
    raw_row = b"\x00" + bytes((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(raw_row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
