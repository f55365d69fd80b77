"""Format records: what each payload file of a package is, and whether it opens.

One row per payload file, keyed by (package, path) like ``files``: the
PRONOM identification (PUID, MIME type, name and version, on what basis,
by which tool and signature file, when) and the outcome of validation
(``valid`` / ``invalid`` / ``limit`` / ``error``, or NULL when the format
is not one that is validated), with the encryption and DRM flags and the
coded findings.  The report groups by ``puid``; re-identification looks
rows up by ``signature_version``; ``status`` counts ``encrypted`` and
``drm``: each has its index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime

from preservation.catalog.models import Base, utcnow

PATH = String(1024).with_variant(String(1024, collation="C"), "postgresql")

BASES = ("signature", "container", "extension", "none")
VALIDATION_OUTCOMES = ("valid", "invalid", "limit", "error")


class FileFormat(Base):
    """What one payload file is (identification) and whether it opens (validation)."""

    __tablename__ = "file_formats"
    __table_args__ = (
        Index("ix_file_formats_puid", "puid"),
        Index("ix_file_formats_signature_version", "signature_version"),
        Index("ix_file_formats_encrypted", "encrypted"),
        Index("ix_file_formats_drm", "drm"),
    )

    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(PATH, primary_key=True)
    puid: Mapped[str | None] = mapped_column(String(32), nullable=True)  # NULL: unidentified
    mime: Mapped[str] = mapped_column(String(200), default="")
    format_name: Mapped[str] = mapped_column(String(300), default="")
    format_version: Mapped[str] = mapped_column(String(100), default="")
    basis: Mapped[str] = mapped_column(String(16))  # signature | container | extension | none
    tool: Mapped[str] = mapped_column(String(32))
    tool_version: Mapped[str] = mapped_column(String(32))
    signature_version: Mapped[str] = mapped_column(String(64))
    identified_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    validation: Mapped[str | None] = mapped_column(String(16), nullable=True)  # NULL: not a validated format
    validation_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # pdf, xml, jats, epub …
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    drm: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # the file's, for bytes per format without a join
