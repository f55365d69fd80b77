"""The PDF check (pikepdf / qpdf), run only inside a validating process.

What it establishes, in order: a ``%PDF-`` header in the first KiB, an
``%%EOF`` in the last KiB (else truncated), that qpdf opens the file (with
the empty user password), whether qpdf had to reconstruct the
cross-reference table, encryption and the permissions it restricts, any PDF/A
claim in the XMP metadata, the page count, and ``qpdf --check``'s structural
problems (every stream decoded, every page's content parsed).
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO

import pikepdf

from preservation import codes
from preservation.formats.checks.base import Report, register

HEADER_WINDOW = 1024
"""The PDF header may follow up to a KiB of junk (ISO 32000-1 Annex H); the trailer's %%EOF sits in the last KiB."""

SHOWN_PROBLEMS = 3
_STREAM_NAME = re.compile(r"stream <[^>]*>[:,]?\s*")
_PERMISSIONS = (
    "accessibility", "extract", "modify_annotation", "modify_assembly", "modify_form", "modify_other",
    "print_lowres", "print_highres",
)


def _clean(message: object) -> str:
    """A qpdf message without the name qpdf gives our stream.

    Raises MemoryError when qpdf says an allocation failed: qpdf carries on
    after ``std::bad_alloc`` (a stream "re-processed without filtering"), but
    the file was stopped by the memory limit, not found damaged.
    """
    text = _STREAM_NAME.sub("", str(message)).strip()
    if "std::bad_alloc" in text:
        raise MemoryError(text)
    return text


@register("pdf")
def check_pdf(stream: BinaryIO, report: Report) -> None:
    head = stream.read(HEADER_WINDOW)
    start = head.find(b"%PDF-")
    if start < 0:
        report.fault(codes.PDF_NOT_PDF, "no %PDF- header in the first 1024 bytes")
        return
    version = re.match(rb"%PDF-(\d\.\d)", head[start:])
    if version:
        report.details["header_version"] = version.group(1).decode("ascii")
    size = os.fstat(stream.fileno()).st_size
    stream.seek(max(0, size - HEADER_WINDOW))
    if b"%%EOF" not in stream.read():
        report.fault(codes.PDF_TRUNCATED, "no %%EOF in the last 1024 bytes: the file is cut short")
    stream.seek(0)
    try:
        pdf = pikepdf.open(stream, password="")
    except pikepdf.PasswordError:
        report.encrypted = report.drm = True
        report.details["user_password"] = True
        report.note(codes.PDF_PASSWORD, "the PDF is encrypted with a user password: it cannot be opened")
        return
    except pikepdf.PdfError as e:
        report.fault(codes.PDF_UNREADABLE, _clean(e))
        return
    with pdf:
        _inspect(pdf, report)


def _inspect(pdf: pikepdf.Pdf, report: Report) -> None:
    warnings = [_clean(w) for w in pdf.get_warnings()]
    report.details["pdf_version"] = pdf.pdf_version
    if any("reconstruct" in w for w in warnings):
        report.details["xref_repaired"] = True
        report.fault(codes.PDF_XREF_REPAIRED, "; ".join(warnings[:SHOWN_PROBLEMS]))
    elif warnings:
        report.fault(codes.PDF_DAMAGED, "; ".join(warnings[:SHOWN_PROBLEMS]))
    if pdf.is_encrypted:
        _encryption(pdf, report)
    _pdfa_claim(pdf, report)
    try:
        pages = len(pdf.pages)
    except pikepdf.PdfError as e:
        report.fault(codes.PDF_NO_PAGES, _clean(e))
        return
    report.details["page_count"] = pages
    try:
        problems = [_clean(p) for p in pdf.check_pdf_syntax()]
    except pikepdf.PdfError as e:
        problems = [_clean(e)]
    problems = [p for p in problems if p.removeprefix("WARNING: ") not in warnings]
    if pages == 0:
        report.fault(codes.PDF_NO_PAGES, "the page tree holds no pages")
        problems = [p for p in problems if "does not contain any pages" not in p]
    if problems:
        report.details["problems"] = len(problems)
        report.fault(codes.PDF_DAMAGED, "; ".join(problems[:SHOWN_PROBLEMS]))


def _encryption(pdf: pikepdf.Pdf, report: Report) -> None:
    report.encrypted = True
    info = pdf.encryption
    report.details["encryption"] = {"revision": info.R, "bits": info.bits, "method": info.stream_method.name}
    report.details["user_password"] = False
    report.note(codes.PDF_ENCRYPTED, f"encrypted (revision {info.R}, {info.bits} bits); opens without a password")
    allow = pdf.allow
    denied = [name for name in _PERMISSIONS if not getattr(allow, name)]
    if denied:
        report.drm = True
        report.details["denied"] = denied
        report.note(codes.PDF_RESTRICTED, "permissions deny: " + ", ".join(denied))


def _pdfa_claim(pdf: pikepdf.Pdf, report: Report) -> None:
    try:
        claim = pdf.open_metadata().pdfa_status
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a broken XMP packet is a problem of the file, reported, never fatal
        report.fault(codes.PDF_DAMAGED, f"the XMP metadata cannot be read: {type(e).__name__}: {e}")
        return
    if claim:
        report.details["pdfa"] = claim
