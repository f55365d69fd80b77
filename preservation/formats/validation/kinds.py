"""Which check a file gets, from what identification said of it (most files get none, and cost nothing)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

KINDS = ("pdf", "xml", "jats", "onix", "epub", "image")
"""The kinds the validating process checks (``xml`` applies JATS or ONIX rules by the root element)."""

# What identification says, mapped to a kind: MIME types first, PRONOM ids when there is no MIME type.
_MIME_KINDS = {
    "application/pdf": "pdf", "application/x-pdf": "pdf",
    "application/xml": "xml", "text/xml": "xml", "application/epub+zip": "epub",
    "image/png": "image", "image/jpeg": "image", "image/gif": "image", "image/tiff": "image",
    "image/bmp": "image", "image/webp": "image", "image/jp2": "image",
}
_PDF_PUIDS = {f"fmt/{n}" for n in (14, 15, 16, 17, 18, 19, 20, 95, 144, 145, 146, 147, 148, 157, 158, 276, 354, 476,
                                   477, 478, 479, 480, 481, 488, 489, 490, 491, 492, 493, 1129, 1451)}
_PUID_KINDS = {
    **{puid: "pdf" for puid in _PDF_PUIDS},
    "fmt/101": "xml", "fmt/483": "epub", "fmt/11": "image", "fmt/12": "image", "fmt/13": "image",
    "fmt/41": "image", "fmt/42": "image", "fmt/43": "image", "fmt/44": "image", "x-fmt/398": "image",
    "x-fmt/390": "image", "x-fmt/391": "image", "fmt/3": "image", "fmt/4": "image", "fmt/353": "image",
}
_EXTENSION_KINDS = {
    ".pdf": "pdf", ".xml": "xml", ".nxml": "xml", ".epub": "epub", ".png": "image", ".jpg": "image",
    ".jpeg": "image", ".gif": "image", ".tif": "image", ".tiff": "image",
}
_ZIP = {"application/zip", "x-fmt/263"}
_PLAIN = {"text/plain", "x-fmt/111", "application/octet-stream"}


def kind_for(puid: str | None, mime: str | None, name: str) -> str | None:
    """The check a file gets, or None (not validated) — from its identification, its name only as a fallback.

    Identification wins: a file named ``.pdf`` that identification calls a zip
    is not validated as a PDF.  The name decides only when identification has
    no answer (no PUID, no MIME type), when it says plain text or bare bytes of
    a ``.xml`` file, or a plain zip of a ``.epub`` file (a broken EPUB is often
    identified as a zip).
    """
    # a MIME type may carry parameters (``; charset=…``) or, from PRONOM, alternatives (``application/xml, text/xml``)
    mime = re.split(r"[;,]", mime or "", maxsplit=1)[0].strip().lower() or None
    extension = PurePosixPath(name or "").suffix.lower()
    by_name = _EXTENSION_KINDS.get(extension)
    if mime in _MIME_KINDS:
        return _MIME_KINDS[mime]
    if puid in _PUID_KINDS:
        return _PUID_KINDS[puid]
    if mime is not None and mime.endswith("+xml"):
        return "xml"
    if puid is None and mime is None:
        return by_name
    if by_name == "xml" and (mime in _PLAIN or puid in _PLAIN):
        return "xml"
    if by_name == "epub" and (mime in _ZIP or puid in _ZIP):
        return "epub"
    return None
