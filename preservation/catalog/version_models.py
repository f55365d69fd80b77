"""Versions of a package: which package rows are states of one lineage, and what each references.

A version is a package of its own (its bag, replicas, events and ``files``
rows: what is stored under its prefix).  ``package_versions`` binds it to
its lineage, the package it is a version of (version 1's id), with its
number and the counts of what changed.  ``version_files`` holds, for each
payload file a version did not store again, the ``files`` row of the
earlier version that stored the bytes; its index on ``file_id`` answers
"does a kept version still need this file?" (see docs/versions.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from preservation.catalog.models import Base, utcnow

PATH = String(1024).with_variant(String(1024, collation="C"), "postgresql")
FILE_ID = BigInteger().with_variant(Integer, "sqlite")


class PackageVersion(Base):
    """One version of a lineage: package ``package_id`` is version ``number`` of ``lineage_id``."""

    __tablename__ = "package_versions"
    __table_args__ = (UniqueConstraint("lineage_id", "number", name="uq_package_versions_lineage_number"),)

    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    lineage_id: Mapped[str] = mapped_column(ForeignKey("packages.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[str | None] = mapped_column(ForeignKey("packages.id"), nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Counts against the previous version: added, changed, removed, renamed, unchanged, stored files and bytes."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class VersionFile(Base):
    """A payload file of a version that an earlier version stored: ``file_id`` is that ``files`` row."""

    __tablename__ = "version_files"
    __table_args__ = (Index("ix_version_files_file_id", "file_id"),)

    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(PATH, primary_key=True)
    file_id: Mapped[int] = mapped_column(FILE_ID, ForeignKey("files.id"))
