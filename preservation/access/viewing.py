"""Which files a browser may show inline, decided from what the catalog identified them as.

A file opens in the reader's browser only when its format record (issue 17:
the PRONOM identification stored per payload file at ingest) says it is a
PDF or a raster image that the bytes themselves matched (a signature, not
the name), or plain text (which has no signature: a text file holding HTML
is identified as HTML by its bytes and so is not plain text).  Everything
else — HTML, SVG, XML, scripts, unknown or unidentified files — downloads
as an attachment.  The name never decides: ``report.pdf`` holding HTML is
identified as HTML and downloads.

The web layer sends an inline file with a sandboxing Content-Security-Policy
and ``nosniff`` (:mod:`preservation.access.web.files`), so even a hostile
PDF cannot script the portal's origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import PackageFile
from preservation.catalog.version_models import VersionFile

INLINE_BY_SIGNATURE = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"})
PLAIN_TEXT_PUID = "x-fmt/111"
# PRONOM gives WebP no MIME type; its PUIDs name it
MIME_BY_PUID = {"fmt/566": "image/webp", "fmt/567": "image/webp", "fmt/568": "image/webp"}
_BYTES_MATCHED = ("signature", "container")


@dataclass(frozen=True)
class Viewing:
    """How one file is sent: inline with its type, or as an attachment of unknown type."""

    inline: bool
    media_type: str

    @property
    def disposition(self) -> str:
        return "inline" if self.inline else "attachment"


ATTACHMENT = Viewing(False, "application/octet-stream")


def viewing_for(puid: str | None, mime: str | None, basis: str | None) -> Viewing:
    """The rule (module docstring) for one format record; None values mean no record."""
    if basis is None:
        return ATTACHMENT
    media = (mime or "").split(";", 1)[0].strip().lower() or MIME_BY_PUID.get(puid or "", "")
    if basis in _BYTES_MATCHED and media in INLINE_BY_SIGNATURE:
        return Viewing(True, media)
    if puid == PLAIN_TEXT_PUID and media == "text/plain":
        return Viewing(True, "text/plain")
    return ATTACHMENT


def stored_viewing(session: Session, stored_in: str, stored_path: str) -> Viewing:
    """How the file stored at ``stored_path`` of package ``stored_in`` is sent (its own format record)."""
    row = session.execute(select(FileFormat.puid, FileFormat.mime, FileFormat.basis).where(
        FileFormat.package_id == stored_in, FileFormat.path == stored_path)).first()
    return viewing_for(*row) if row is not None else ATTACHMENT


def viewings(session: Session, version_id: str, paths: Iterable[str]) -> dict[str, Viewing]:
    """How each of ``paths`` of the version ``version_id`` is sent, in two queries: the files the version
    stores itself, and those it references where an earlier version stored them."""
    wanted = list(dict.fromkeys(paths))
    if not wanted:
        return {}
    out = dict.fromkeys(wanted, ATTACHMENT)
    own = session.execute(select(FileFormat.path, FileFormat.puid, FileFormat.mime, FileFormat.basis).where(
        FileFormat.package_id == version_id, FileFormat.path.in_(wanted))).all()
    referenced = session.execute(
        select(VersionFile.path, FileFormat.puid, FileFormat.mime, FileFormat.basis)
        .join(PackageFile, PackageFile.id == VersionFile.file_id)
        .join(FileFormat, (FileFormat.package_id == PackageFile.package_id) & (FileFormat.path == PackageFile.path))
        .where(VersionFile.package_id == version_id, VersionFile.path.in_(wanted))).all()
    for path, puid, mime, basis in [*own, *referenced]:
        out[path] = viewing_for(puid, mime, basis)
    return out
