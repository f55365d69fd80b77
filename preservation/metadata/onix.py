"""ONIX for Books 3.0 (reference tag names, with or without the namespace): one item per ``<Product>``.

Read of each product: ``RecordReference`` (to name it in findings), the
ISBN (``ProductIdentifier`` type 15 ISBN-13, 02 ISBN-10, 03 GTIN-13 of a book)
and DOI (type 06), the distinctive title (``TitleDetail`` type 01,
``TitleElement`` level 01: ``TitleText`` or ``TitlePrefix`` +
``TitleWithoutPrefix``, and its ``Subtitle``), the authors (``Contributor``
with role A01, else every A-role contributor), the language (``Language``
role 01), the publisher and the publication date (``PublishingDate`` role
01).  The book is its own title: a catalog title of kind book with the
ISBN, print or online as ``ProductForm`` says.  A product is discarded as
soon as it is read, so a message of any length costs one product.
"""

from __future__ import annotations

import re

from lxml import etree

from preservation import codes
from preservation import identifiers as ids
from preservation.identifiers import ID_ISBN_ONLINE, ID_ISBN_PRINT
from preservation.metadata.records import LIMITS, Checker, ItemRecord
from preservation.metadata.xmlstream import CLEAR_BEFORE, KEEP, local_name, text_of

NAMESPACE = "http://ns.editeur.org/onix/3.0/reference"
ROOTS = (f"{{{NAMESPACE}}}ONIXMessage", "ONIXMessage")
TAGS = (f"{{{NAMESPACE}}}Product", "Product")
_ISBN_TYPES = {"15", "02", "03"}
_DIGITAL_FORMS = re.compile(r"E[A-Z]|AJ|AN|DA|DB|DI")  # e-books, downloadable audio, digital on physical carriers


def _find(element: etree._Element, path: str) -> etree._Element | None:
    return element.find("/".join(f"{{*}}{step}" for step in path.split("/")))


def _findall(element: etree._Element, path: str) -> list[etree._Element]:
    return element.findall("/".join(f"{{*}}{step}" for step in path.split("/")))


def _value(element: etree._Element | None, path: str) -> str:
    found = _find(element, path) if element is not None else None
    return text_of(found).strip() if found is not None else ""


class OnixReader:
    name = "onix"
    links_after_done: tuple[bytes, ...] = ()

    def __init__(self, check: Checker) -> None:
        self.check = check
        self._ready: list[ItemRecord] = []

    def recognised(self) -> bool:
        return True

    def start(self, element: etree._Element) -> None:
        pass

    def end(self, element: etree._Element) -> int:
        if local_name(element) != "Product":
            return KEEP
        record = self._product(element)
        if record is not None:
            self._ready.append(record)
        return CLEAR_BEFORE

    def link(self, name: str, href: str) -> None:
        pass

    def take(self) -> list[ItemRecord]:
        ready, self._ready = self._ready, []
        return ready

    def finish(self) -> list[ItemRecord]:
        return []

    def _product(self, product: etree._Element) -> ItemRecord | None:
        check = self.check
        reference = check.text(_value(product, "RecordReference"), "identifier")
        r = ItemRecord(kind="book", source_format="onix", metadata_path=check.path, title_kind="book",
                       where=reference)
        r.files.append((check.path, "metadata", True))
        for identifier in _findall(product, "ProductIdentifier"):
            kind, value = _value(identifier, "ProductIDType"), _value(identifier, "IDValue")
            if kind in _ISBN_TYPES and not r.isbn and not (kind == "03" and not value.startswith(("978", "979"))):
                r.isbn = check.identifier(ids.ISBN, value, "isbn")
            elif kind == "06" and not r.doi:
                r.doi = check.identifier(ids.DOI, value, "doi")
        detail = _find(product, "DescriptiveDetail")
        r.item_title = check.text(_title(detail), "item_title") if detail is not None else ""
        r.title = check.text(r.item_title, "title")
        authors = [c for c in _findall(detail, "Contributor") if _value(c, "ContributorRole") == "A01"] \
            if detail is not None else []
        if not authors and detail is not None:
            authors = [c for c in _findall(detail, "Contributor") if _value(c, "ContributorRole").startswith("A")]
        for contributor in authors[: LIMITS["authors"]]:
            name = check.text(_person(contributor), "author")
            if name:
                r.authors.append(name)
        if detail is not None:
            for language in _findall(detail, "Language"):
                if _value(language, "LanguageRole") == "01":
                    r.language = check.text(_value(language, "LanguageCode"), "language")
                    break
        publishing = _find(product, "PublishingDetail")
        if publishing is not None:
            r.publisher = check.text(_value(publishing, "Publisher/PublisherName"), "publisher")
            for when in _findall(publishing, "PublishingDate"):
                if _value(when, "PublishingDateRole") == "01":
                    self._date(r, _value(when, "Date"))
                    break
        if r.isbn:
            digital = _DIGITAL_FORMS.fullmatch(_value(detail, "ProductForm")) if detail is not None else None
            r.identifiers.append((ID_ISBN_ONLINE if digital else ID_ISBN_PRINT, r.isbn))
            folder = check.path.rsplit("/", 1)[0]
            r.files.extend((f"{folder}/{r.isbn}.{ext}", "fulltext", False) for ext in ("pdf", "epub"))
        if not r.item_title and not r.doi:
            check.note(codes.MD_NO_TITLE, f"product {reference[:100]!r} has neither a title nor a DOI: no item made",
                       record=reference[:100])
            return None
        return r

    def _date(self, r: ItemRecord, value: str) -> None:
        """``YYYY``, ``YYYYMM`` or ``YYYYMMDD`` (ONIX date formats 05, 01 and 00)."""
        if not re.fullmatch(r"[0-9]{4}(?:[0-9]{2}){0,2}", value):
            if value:
                self.check.note(codes.MD_NUMBER, f"PublishingDate {value[:20]!r} is not YYYY, YYYYMM or YYYYMMDD: "
                                "dropped", field="published")
            return
        r.year = self.check.year(value[:4])
        r.published = self.check.published(r.year, value[4:6], value[6:8])


def _title(detail: etree._Element) -> str:
    for title in _findall(detail, "TitleDetail"):
        if _value(title, "TitleType") != "01":
            continue
        for element in _findall(title, "TitleElement"):
            if _value(element, "TitleElementLevel") != "01":
                continue
            text = _value(element, "TitleText") or " ".join(
                part for part in (_value(element, "TitlePrefix"), _value(element, "TitleWithoutPrefix")) if part)
            subtitle = _value(element, "Subtitle")
            return f"{text}: {subtitle}" if text and subtitle else text
    return ""


def _person(contributor: etree._Element) -> str:
    inverted = _value(contributor, "PersonNameInverted")
    if inverted:
        return inverted
    key, before = _value(contributor, "KeyNames"), _value(contributor, "NamesBeforeKey")
    if key:
        return f"{key}, {before}" if before else key
    return _value(contributor, "PersonName") or _value(contributor, "CorporateName")
