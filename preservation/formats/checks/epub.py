"""The EPUB check (the OCF zip container), run only inside a validating process.

``mimetype`` first, stored and holding exactly ``application/epub+zip``;
``META-INF/container.xml`` well-formed (parsed as safely as any XML here) and
naming rootfiles that are in the archive; every member's CRC (each member is
read through once, in chunks, so a zip bomb costs time, which the process's
limit stops, never memory); and whether content is encrypted or carries DRM
rights.  zipfile is safe enough here because nothing is written: members are
only read, inside a process with limits.
"""

from __future__ import annotations

import encodings.cp437  # noqa: F401 - zipfile decodes legacy member names with it: loaded before the limits
import zipfile
import zlib
from typing import BinaryIO

from lxml import etree

from preservation import codes
from preservation.formats.checks.base import Report, register
from preservation.formats.checks.markup import PARSER_OPTIONS, local

MIMETYPE = b"application/epub+zip"
CONTAINER = "META-INF/container.xml"
ENCRYPTION = "META-INF/encryption.xml"
RIGHTS = "META-INF/rights.xml"
MAX_META_BYTES = 1 << 20
"""container.xml and encryption.xml are a few hundred bytes; more than a MiB is not read."""
CHUNK = 1 << 20
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
"""Encryption algorithms that only obfuscate embedded fonts: the content stays readable."""


class _Unreadable(Exception):
    pass


def _read_meta(archive: zipfile.ZipFile, name: str) -> etree._Element:
    info = archive.getinfo(name)
    if info.file_size > MAX_META_BYTES:
        raise _Unreadable(f"{name} is {info.file_size} bytes, more than {MAX_META_BYTES}")
    try:
        return etree.fromstring(archive.read(name), etree.XMLParser(**PARSER_OPTIONS))
    except (etree.XMLSyntaxError, zipfile.BadZipFile, zlib.error, ValueError, NotImplementedError, RuntimeError) as e:
        raise _Unreadable(f"{name}: {e}") from e


@register("epub")
def check_epub(stream: BinaryIO, report: Report) -> None:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        report.fault(codes.EPUB_NOT_ZIP, str(e))
        return
    with archive:
        members = archive.infolist()
        names = {m.filename for m in members}
        report.details["members"] = len(members)
        _check_mimetype(archive, members, report)
        _check_container(archive, names, report)
        _check_protection(archive, names, report)
        _check_members(archive, members, report)


def _check_mimetype(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], report: Report) -> None:
    if not members or members[0].filename != "mimetype":
        first = members[0].filename[:80] if members else "nothing"
        report.fault(codes.EPUB_MIMETYPE_FIRST, f"the first member is {first!r}")
    info = next((m for m in members if m.filename == "mimetype"), None)
    if info is None:
        report.fault(codes.EPUB_MIMETYPE_CONTENT, "there is no mimetype member")
        return
    if info.compress_type != zipfile.ZIP_STORED:
        report.fault(codes.EPUB_MIMETYPE_COMPRESSED, f"compression method {info.compress_type}")
    if info.file_size != len(MIMETYPE) or archive.read(info) != MIMETYPE:
        report.fault(codes.EPUB_MIMETYPE_CONTENT, f"mimetype holds {info.file_size} bytes, not {MIMETYPE.decode()}")


def _check_container(archive: zipfile.ZipFile, names: set[str], report: Report) -> None:
    if CONTAINER not in names:
        report.fault(codes.EPUB_NO_CONTAINER, f"{CONTAINER} is missing")
        return
    try:
        container = _read_meta(archive, CONTAINER)
    except _Unreadable as e:
        report.fault(codes.EPUB_NO_CONTAINER, str(e))
        return
    rootfiles = [e.get("full-path") or "" for e in container.iter() if local(e) == "rootfile"]
    if not rootfiles:
        report.fault(codes.EPUB_ROOTFILE, f"{CONTAINER} names no rootfile")
    for path in rootfiles:
        if path not in names:
            report.fault(codes.EPUB_ROOTFILE, f"rootfile {path[:200]!r} is not in the archive")
    if rootfiles:
        report.details["rootfile"] = rootfiles[0][:200]


def _check_protection(archive: zipfile.ZipFile, names: set[str], report: Report) -> None:
    if RIGHTS in names:
        report.drm = True
        report.note(codes.EPUB_RIGHTS, f"{RIGHTS} is present")
    if ENCRYPTION not in names:
        return
    try:
        algorithms = {e.get("Algorithm") or "" for e in _read_meta(archive, ENCRYPTION).iter()
                      if local(e) == "EncryptionMethod"}
    except _Unreadable as e:
        algorithms = {f"unreadable ({e})"}
    real = sorted(algorithms - FONT_OBFUSCATION)
    if real:
        report.encrypted = True
        report.note(codes.EPUB_ENCRYPTED, "encryption: " + ", ".join(a[:100] for a in real[:3]))


def _check_members(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], report: Report) -> None:
    for info in members:
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            report.encrypted = True
            report.note(codes.EPUB_ENCRYPTED, f"member {info.filename[:200]!r} is zip-encrypted: not checked")
            continue
        try:
            with archive.open(info) as member:
                while member.read(CHUNK):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as e:
            report.fault(codes.EPUB_MEMBER_CORRUPT, f"{info.filename[:200]!r}: {e}")
