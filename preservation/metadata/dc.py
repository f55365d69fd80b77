"""Dublin Core XML: ``oai_dc:dc`` records, simple DC in any wrapper, OAI-PMH responses.

Every element holding Dublin Core elements (``http://purl.org/dc/elements/1.1/``
or DCMI terms, ``http://purl.org/dc/terms/``) is one record.  Read:
``title``, ``creator`` (the authors), ``date`` (``YYYY``, ``YYYY-MM`` or
``YYYY-MM-DD``), ``identifier`` (a DOI as ``doi:…``, ``https://doi.org/…`` or
``10.…``; ``urn:isbn:``/``ISBN``; ``urn:issn:``/``ISSN``; ``CN``), ``language``,
``type`` (``book``, ``chapter``/``bookPart``, else an article),
``publisher``, and ``source`` / ``relation`` / ``isPartOf`` as the title of
the journal or book the item belongs to.  A file with exactly one record
also claims the PDF beside it with the same name.
"""

from __future__ import annotations

import re

from lxml import etree

from preservation import codes
from preservation import identifiers as ids
from preservation.identifiers import ID_CN, ID_ISBN_PRINT, ID_ISSN_PRINT
from preservation.metadata.records import LIMITS, Checker, ItemRecord
from preservation.metadata.xmlstream import CLEAR, local_name, text_of

DC = "http://purl.org/dc/elements/1.1/"
TERMS = "http://purl.org/dc/terms/"
TAGS = (f"{{{DC}}}*", f"{{{TERMS}}}*")
_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?(?:[T ].*)?")
_PREFIXES = (
    (re.compile(r"(?:doi:|https?://(?:dx\.)?doi\.org/|10\.)", re.I), ids.DOI),
    (re.compile(r"(?:urn:isbn:|isbn)", re.I), ids.ISBN),
    (re.compile(r"(?:urn:issn:|issn)", re.I), ids.ISSN),
    (re.compile(r"cn ", re.I), ids.CN),
)
_URN = re.compile(r"urn:(?:isbn|issn):", re.I)
_CONTAINER = ("source", "relation", "isPartOf")


class DublinCoreReader:
    name = "dc"
    links_after_done: tuple[bytes, ...] = ()

    def __init__(self, check: Checker) -> None:
        self.check = check
        self._parent: etree._Element | None = None
        self._values: dict[str, list[str]] = {}
        self._pending: list[ItemRecord] = []
        self._records = 0

    def recognised(self) -> bool:
        return self._records > 0 or self._parent is not None

    def start(self, element: etree._Element) -> None:
        pass

    def end(self, element: etree._Element) -> int:
        parent = element.getparent()
        if parent is not self._parent:
            self._flush()
            self._parent = parent
        values = self._values.setdefault(local_name(element), [])
        if len(values) < LIMITS["authors"]:
            values.append(text_of(element))
        return CLEAR

    def link(self, name: str, href: str) -> None:
        pass

    def take(self) -> list[ItemRecord]:
        if len(self._pending) > 1 or self._records > 1:  # a file of many records: none claims the PDF beside it
            pending, self._pending = self._pending, []
            return pending
        return []

    def finish(self) -> list[ItemRecord]:
        self._flush()
        pending, self._pending = self._pending, []
        if self._records == 1 and pending:
            pending[0].files.append((self.check.path.rsplit(".", 1)[0] + ".pdf", "fulltext", False))
        return pending

    def _flush(self) -> None:
        if self._parent is None:
            return
        parent, values = self._parent, self._values
        self._parent, self._values = None, {}
        self._records += 1
        record = self._record(values)
        if record is not None:
            self._pending.append(record)
        parent.clear(keep_tail=False)  # read: it and the records before it may go
        grand = parent.getparent()
        if grand is not None:
            while parent.getprevious() is not None:
                del grand[0]

    def _record(self, values: dict[str, list[str]]) -> ItemRecord | None:
        check = self.check
        first = {name: (found[0] if found else "") for name, found in values.items()}
        kind_text = first.get("type", "").lower()
        kind = "book" if "book" in kind_text and "part" not in kind_text else \
            "chapter" if "chapter" in kind_text or "bookpart" in kind_text else "article"
        r = ItemRecord(kind=kind, source_format="dc", metadata_path=check.path, where=f"record {self._records}")
        r.files.append((check.path, "metadata", True))
        r.item_title = check.text(first.get("title"), "item_title")
        for creator in values.get("creator", []):
            name = check.text(creator, "author")
            if name:
                r.authors.append(name)
        r.language = check.text(first.get("language"), "language")
        r.publisher = check.text(first.get("publisher"), "publisher")
        date = (first.get("date") or first.get("issued") or "").strip()
        if date:
            match = _DATE.fullmatch(date)
            if match is None:
                check.note(codes.MD_NUMBER, f"date {date[:20]!r} is not YYYY, YYYY-MM or YYYY-MM-DD: dropped",
                           field="published")
            else:
                r.year = check.year(match.group(1))
                r.published = check.published(r.year, match.group(2), match.group(3))
        issns: list[str] = []
        for value in values.get("identifier", []):
            self._identifier(r, value.strip(), issns)
        container = next((check.text(v, "title") for name in _CONTAINER for v in values.get(name, [])
                          if v.strip() and not _identifier_like(v)), "")
        if r.kind == "book":
            r.title_kind, r.title = "book", check.text(r.item_title, "title")
            if r.isbn:
                r.identifiers.append((ID_ISBN_PRINT, r.isbn))
        elif issns or container:
            r.title_kind = "book" if r.kind == "chapter" else "journal"
            r.title = container
            r.identifiers.extend((ID_ISSN_PRINT, issn) for issn in issns)
            if r.kind == "chapter" and r.isbn:
                r.identifiers.append((ID_ISBN_PRINT, r.isbn))
        if not r.item_title and not r.doi:
            check.note(codes.MD_NO_TITLE, f"Dublin Core record {self._records} has neither a title nor a DOI: "
                       "no item made", record=self._records)
            return None
        return r

    def _identifier(self, r: ItemRecord, value: str, issns: list[str]) -> None:
        for prefix, scheme in _PREFIXES:
            if prefix.match(value):
                parsed = self.check.identifier(scheme, _URN.sub("", value, 1), "identifier")
                if not parsed:
                    return
                if scheme == ids.DOI and not r.doi:
                    r.doi = parsed
                elif scheme == ids.ISBN and not r.isbn:
                    r.isbn = parsed
                elif scheme == ids.ISSN and parsed not in issns:
                    issns.append(parsed)
                elif scheme == ids.CN:
                    r.identifiers.append((ID_CN, parsed))
                return


def _identifier_like(value: str) -> bool:
    return any(prefix.match(value.strip()) for prefix, _ in _PREFIXES)
