"""JATS (and its predecessor, the NLM journal archiving DTDs): one ``<article>`` per file.

Read: the journal (``journal-meta``: journal title, English translated title,
print and electronic ISSN, publisher), the article (``article-meta``: DOI,
article title, authors, publication date, volume, issue, first and last
page), the language (``article/@xml:lang``) and the files the article names
(``self-uri``: the full text, ``supplementary-material``: its supplements).
The body is never looked at: its elements are discarded as they end.
"""

from __future__ import annotations

from lxml import etree

from preservation import codes
from preservation import identifiers as ids
from preservation.identifiers import ID_ISSN_ONLINE, ID_ISSN_PRINT
from preservation.metadata.records import LIMITS, MAX_FILES, Checker, ItemRecord
from preservation.metadata.xmlstream import CLEAR, CLEAR_BEFORE, DONE, KEEP, local_name, resolve_href, text_of

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ROOT = "article"
# the elements whose end the reader sees: the two metadata blocks, the links to files, and the bulk of the
# body and back matter, discarded as soon as each ends
_FILE_LINKS = ("self-uri", "supplementary-material", "inline-supplementary-material")
_BULK = ("p", "sec", "ref", "fig", "table-wrap", "disp-formula", "list", "body", "back", "sub-article", "response")
TAGS = (ROOT, "front", "journal-meta", "article-meta", *_FILE_LINKS, *_BULK)
# which publication date to believe, best first (JATS 1.x @date-type/@publication-format, NLM 2.x @pub-type)
_DATE_RANK = {"ppub": 0, "print": 0, "pub": 1, "epub": 2, "electronic": 2, "epub-ppub": 1, "collection": 3}
FRONT_LIMIT = 16 * 1024 * 1024
"""Bytes read before the front matter must have ended (a real one is a few KiB; MD019 past it)."""
_PRINT_ISSN = {"ppub", "print"}
_ONLINE_ISSN = {"epub", "electronic", "online"}
_PARTS = {"volume": "volume", "issue": "issue", "fpage": "first_page", "lpage": "last_page"}
"""The article's parts read as text (``check.part``): element name -> field."""


class JatsReader:
    name = "jats"
    # after the front matter the body is not parsed, only scanned for the supplements it names
    links_after_done = (b"<supplementary-material", b"<inline-supplementary-material", b"<self-uri")
    held_limit = FRONT_LIMIT
    done_at = b"</front>"

    def __init__(self, check: Checker) -> None:
        self.check = check
        self.record = ItemRecord(kind="article", source_format="jats", metadata_path=check.path, title_kind="journal")
        self.record.files.append((check.path, "metadata", True))
        self._root: etree._Element | None = None
        self._finished = False
        self._links = 0
        self._in_front = False
        self._seen: set[tuple[str, str | None]] = set()

    def recognised(self) -> bool:
        return True

    def start(self, element: etree._Element) -> None:
        if self._root is None and element.getparent() is None:
            self._root = element
            self.record.language = self.check.text(element.get(XML_LANG), "language")
        elif local_name(element) == "front":
            self._in_front = True
        elif local_name(element) in _FILE_LINKS:  # its attributes are complete at its start tag
            self._add_link(local_name(element), element.get(XLINK_HREF))

    def end(self, element: etree._Element) -> int:
        name = local_name(element)
        if name in _BULK:  # in the front matter (an abstract's paragraphs) its earlier siblings may still be needed
            return CLEAR if self._in_front else CLEAR_BEFORE
        if name in _FILE_LINKS:
            return CLEAR  # read at its start
        if name in ("journal-meta", "article-meta") and self._top_level(element):
            (self._journal if name == "journal-meta" else self._article)(element)
            return CLEAR
        if name == "front":
            self._in_front = False
            if element.getparent() is self._root:  # all the reader needs but the supplements' links in the body
                self._finished = True
                return DONE
        elif element is self._root:
            self._finished = True
        return KEEP

    def take(self) -> list[ItemRecord]:
        return []

    def link(self, name: str, href: str) -> None:
        self._add_link(name, href)

    def finish(self) -> list[ItemRecord]:
        if not self._finished:
            return []
        r = self.record
        if not r.item_title and not r.doi:
            self.check.note(codes.MD_NO_TITLE, "the article has neither a title nor a DOI: no item made")
            return []
        stem = self.check.path.rsplit(".", 1)[0]
        r.files.append((stem + ".pdf", "fulltext", False))  # a full text beside it, with the same name
        return [r]

    def _top_level(self, element: etree._Element) -> bool:
        parent = element.getparent()  # <front> of the root <article>, not of a sub-article
        return parent is not None and local_name(parent) == "front" and parent.getparent() is self._root

    # The fields are found by walking each block's children once, filtered by name inside lxml
    # (``iterchildren`` with tags), not with ``find`` and paths, which go through lxml's ElementPath in Python:
    # ~25 finds an article cost some 80 us, most of the reader's time.  ``_first(e, "a", "b")`` is
    # ``e.find("a/b")``; the order in which values are checked (and notes made) is the document's.

    def _journal(self, meta: etree._Element) -> None:
        r, check = self.record, self.check
        title = _first(meta, "journal-title-group", "journal-title")
        if title is None:
            title = _first(meta, "journal-title")  # NLM 2.x
        r.title = check.text(text_of(title), "title") if title is not None else ""
        groups, issns, publisher = [], [], None
        for child in meta.iterchildren("journal-title-group", "issn", "publisher"):
            if child.tag == "issn":
                issns.append(child)
            elif child.tag == "journal-title-group":
                groups.append(child)
            elif publisher is None:
                publisher = _first(child, "publisher-name")
        for group in groups:
            english = next((found for trans in group.iterchildren("trans-title-group")
                            if (trans.get(XML_LANG) or "").lower().startswith("en")
                            and (found := _first(trans, "trans-title")) is not None), None)
            if english is not None:
                r.title_english = check.text(text_of(english), "title_english")
                break
        for issn in issns:
            kind = (issn.get("publication-format") or issn.get("pub-type") or "").lower()
            value = check.identifier(ids.ISSN, text_of(issn), "issn")
            if value:
                r.identifiers.append((ID_ISSN_ONLINE if kind in _ONLINE_ISSN else ID_ISSN_PRINT, value))
        if publisher is not None:
            r.publisher = check.text(text_of(publisher), "publisher")

    def _article(self, meta: etree._Element) -> None:
        r, check = self.record, self.check
        doi = title = None
        groups, dates, parts = [], [], {}
        for child in meta.iterchildren("article-id", "title-group", "contrib-group", "pub-date", *_PARTS):
            tag = child.tag
            if tag == "article-id":
                if doi is None and child.get("pub-id-type") == "doi":
                    doi = child
            elif tag == "title-group":
                if title is None:
                    title = _first(child, "article-title")
            elif tag == "contrib-group":
                groups.append(child)
            elif tag == "pub-date":
                dates.append(child)
            else:
                parts.setdefault(tag, child)  # volume, issue, fpage, lpage: the first of each
        if doi is not None:
            r.doi = check.identifier(ids.DOI, text_of(doi), "doi")
        if title is not None:
            r.item_title = check.text(text_of(title), "item_title")
        for group in groups:
            for contrib in group.iterchildren("contrib"):
                if contrib.get("contrib-type", "author") != "author":
                    continue
                if len(r.authors) == LIMITS["authors"]:
                    check.note(codes.MD_FIELD_TOO_LONG, f"more than {LIMITS['authors']} authors: the rest are left out",
                               field="authors", limit=LIMITS["authors"])
                    break
                author = check.text(_person(contrib), "author")
                if author:
                    r.authors.append(author)
        self._date(dates)
        for name, field in _PARTS.items():
            if name in parts:
                setattr(r, field, check.part(text_of(parts[name]), field))

    def _date(self, dates: list[etree._Element]) -> None:
        if not dates:
            return

        def rank(element: etree._Element) -> int:
            kind = (element.get("date-type") or element.get("pub-type") or "").lower()
            form = (element.get("publication-format") or "").lower()
            return min(_DATE_RANK.get(kind, 4), _DATE_RANK.get(form, 4))

        best = min(dates, key=rank)  # min keeps document order among equals
        parts: dict[str, str] = {}
        for child in best.iterchildren("year", "month", "day"):
            parts.setdefault(child.tag, text_of(child))  # the first of each
        parts = {name: parts.get(name, "") for name in ("year", "month", "day")}
        self.record.year = self.check.year(parts["year"])
        self.record.published = self.check.published(self.record.year, parts["month"], parts["day"])

    def _add_link(self, name: str, href: str | None) -> None:
        if (name, href) in self._seen:  # parsed, then met again by the scan of the last bytes parsed
            return
        if len(self._seen) <= MAX_FILES:
            self._seen.add((name, href))
        try:
            path = resolve_href(self.check.path, href)
        except ValueError as e:
            self.check.note(codes.MD_FILE_OUTSIDE, f"<{name}> names a file {e}: ignored", href=(href or "")[:200])
            return
        if path is None:
            return
        self._links += 1
        if self._links > MAX_FILES:
            if self._links == MAX_FILES + 1:
                self.check.note(codes.MD_FIELD_TOO_LONG, f"the article names more than {MAX_FILES} files: the rest "
                                "are left out", field="files", limit=MAX_FILES)
            return
        role = "fulltext" if name == "self-uri" else "supplementary"
        self.record.files.append((path, role, True))


def _first(element: etree._Element, *path: str) -> etree._Element | None:
    """The first element at ``path`` (names of children, no namespace) below ``element``, as ``find`` with the
    path joined by ``/`` finds it; None when there is none."""
    name, rest = path[0], path[1:]
    for child in element.iterchildren(name):
        found = _first(child, *rest) if rest else child
        if found is not None:
            return found
    return None


def _person(contrib: etree._Element) -> str:
    """``Surname, Given names`` of a contributor (the first of its name alternatives), or its string name."""
    first: dict[str, etree._Element] = {}
    alternatives: list[etree._Element] = []
    for child in contrib.iterchildren("name", "name-alternatives", "string-name", "collab"):
        if child.tag == "name-alternatives":
            alternatives.append(child)
        else:
            first.setdefault(child.tag, child)
    name = first.get("name")
    if name is None:
        name = next((n for a in alternatives if (n := _first(a, "name")) is not None), None)
    if name is not None:
        parts: dict[str, str] = {}
        for part in name.iterchildren("surname", "given-names"):
            parts.setdefault(part.tag, text_of(part).strip())
        surname_text, given_text = parts.get("surname", ""), parts.get("given-names", "")
        return f"{surname_text}, {given_text}" if surname_text and given_text else surname_text or given_text
    element = first.get("string-name")
    if element is None:
        element = next((n for a in alternatives if (n := _first(a, "string-name")) is not None), None)
    if element is None:
        element = first.get("collab")
    return text_of(element) if element is not None else ""
