"""Catalog tables in library terms: titles, their identifiers and expected coverage, items and their files.

A **title** is a journal, a book or a database of a collection, as a
publisher's KBART title list or the metadata of a delivery names it.  Its
identifiers (ISSN, ISBN, CN serial number, DOI prefix, the publisher's own
title id) are validated and stored normalised, one row each, so that an
exact lookup is one index probe.

**Expected coverage** rows are the ranges a publisher's KBART file (NISO
RP-9-2014, Phase II) says a collection should hold; one title may have
several.  **Title entitlements** are a library's own KBART file (KBART
Automation, RP-26-2019): which titles, over which dates, the library paid
for, beside the collection × year entitlements of ``access_models``.

An **item** is an article, a book or a chapter found in a package's
metadata (JATS, ONIX, Dublin Core or a CSV manifest) during ingest; its
**files** are paths of that package.  What is preserved of a title (its
coverage) is derived from its items, never stored twice.

Dates from KBART and from metadata keep their precision as ISO 8601 text
(``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``), which also sorts correctly;
volumes and issues are text (``68``, ``3-4``, ``S1``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime

from preservation.catalog.access_models import Library
from preservation.catalog.models import Base, Collection, Package, utcnow

# Identifier schemes, stored normalised: defined with their parsing in preservation.identifiers (which the metadata
# parsing process imports without SQLAlchemy), named here too for the catalog's users
from preservation.identifiers import (  # noqa: F401
    ID_CN,
    ID_DOI_PREFIX,
    ID_ISBN_ONLINE,
    ID_ISBN_PRINT,
    ID_ISSN_ONLINE,
    ID_ISSN_PRINT,
    ID_PUBLISHER,
    ID_SCHEMES,
)

BIG_ID = BigInteger().with_variant(Integer, "sqlite")

TITLE_KINDS = ("journal", "book", "database", "other")


ITEM_KINDS = ("article", "book", "chapter", "other")
ITEM_SOURCES = ("jats", "onix", "dc", "csv")

FILE_ROLES = ("metadata", "fulltext", "supplementary")

DATE_TEXT = 10  # YYYY-MM-DD at most
PART_TEXT = 32  # a volume, an issue, a page


class Title(Base):
    """A journal, book or database of a collection."""

    __tablename__ = "titles"
    __table_args__ = (Index("ix_titles_collection_kind", "collection_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(1000))  # in its original script
    title_transliterated: Mapped[str] = mapped_column(String(1000), default="")  # e.g. Hanyu Pinyin
    title_english: Mapped[str] = mapped_column(String(1000), default="")
    publisher: Mapped[str] = mapped_column(String(300), default="")
    # the KBART columns with no column of their own (title_url, first_author, edition …), for a faithful export
    kbart: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    collection: Mapped[Collection] = relationship()
    identifiers: Mapped[list["TitleIdentifier"]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="TitleIdentifier.id")
    coverage: Mapped[list["ExpectedCoverage"]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="ExpectedCoverage.id")


class TitleIdentifier(Base):
    """One validated identifier of a title, normalised (``scheme`` is one of :data:`ID_SCHEMES`)."""

    __tablename__ = "title_identifiers"
    __table_args__ = (
        UniqueConstraint("title_id", "scheme", "value", name="uq_title_identifiers_title_scheme_value"),
        Index("ix_title_identifiers_scheme_value", "scheme", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"))
    scheme: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))

    title: Mapped[Title] = relationship(back_populates="identifiers")


class ExpectedCoverage(Base):
    """A coverage range a publisher's KBART title list says the collection holds."""

    __tablename__ = "expected_coverage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    first_date: Mapped[str] = mapped_column(String(DATE_TEXT), default="")
    first_volume: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    first_issue: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    last_date: Mapped[str] = mapped_column(String(DATE_TEXT), default="")  # "" while the title goes on
    last_volume: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    last_issue: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    embargo_info: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    coverage_depth: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    line_no: Mapped[int] = mapped_column(Integer, default=0)  # of the KBART file it came from

    title: Mapped[Title] = relationship(back_populates="coverage")


class TitleEntitlement(Base):
    """A library may read a title over a date range: a row of the library's own KBART file."""

    __tablename__ = "title_entitlements"
    __table_args__ = (Index("ix_title_entitlements_library_title", "library_id", "title_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    first_date: Mapped[str] = mapped_column(String(DATE_TEXT), default="")  # "" from the first issue
    first_volume: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    first_issue: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    last_date: Mapped[str] = mapped_column(String(DATE_TEXT), default="")  # "" to the latest
    last_volume: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    last_issue: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    line_no: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    library: Mapped[Library] = relationship()
    title: Mapped[Title] = relationship()


class Item(Base):
    """An article, book or chapter preserved in a package, as its metadata describes it."""

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_title_year_volume_issue", "title_id", "year", "volume", "issue"),
        # a DOI names one item: a second package claiming it gets a finding and its item no DOI
        Index("uq_items_doi", "doi", unique=True,
              sqlite_where=text("doi IS NOT NULL"), postgresql_where=text("doi IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    title_id: Mapped[int | None] = mapped_column(ForeignKey("titles.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    doi: Mapped[str | None] = mapped_column(String(300), nullable=True)  # lower case, without https://doi.org/
    item_title: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[str] = mapped_column(Text, default="")  # "Surname, Given; Surname, Given"
    language: Mapped[str] = mapped_column(String(16), default="")
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published: Mapped[str] = mapped_column(String(DATE_TEXT), default="")
    volume: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    issue: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    first_page: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    last_page: Mapped[str] = mapped_column(String(PART_TEXT), default="")
    isbn: Mapped[str] = mapped_column(String(13), default="")  # a book's ISBN-13
    source_format: Mapped[str] = mapped_column(String(16))  # one of ITEM_SOURCES
    metadata_path: Mapped[str] = mapped_column(String(1024), default="")  # the package path it was read from
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    package: Mapped[Package] = relationship()
    title: Mapped[Title | None] = relationship()
    files: Mapped[list["ItemFile"]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemFile.id")


class ItemFile(Base):
    """A file of the item's package that belongs to the item (its XML, its PDF …)."""

    __tablename__ = "item_files"
    __table_args__ = (
        UniqueConstraint("item_id", "path", name="uq_item_files_item_path"),
        Index("ix_item_files_package_path", "package_id", "path"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    package_id: Mapped[str] = mapped_column(String(36))
    path: Mapped[str] = mapped_column(String(1024))  # the bag path, data/…
    role: Mapped[str] = mapped_column(String(16))  # one of FILE_ROLES

    item: Mapped[Item] = relationship(back_populates="files")
