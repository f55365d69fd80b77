"""The CSV item manifest: ``items.csv`` at the root of a delivery that carries no XML metadata.

UTF-8 (a byte-order mark is allowed), comma-separated, RFC 4180 quoting, a
header row naming the columns, one item per row.  Only ``path`` is
required; see ``docs/metadata.md`` for every column.  The file is read as
its bytes stream past, row by row; a bad row is a finding naming its line
and the other rows are kept.
"""

from __future__ import annotations

import codecs
import csv
from typing import Callable

from preservation import codes
from preservation import identifiers as ids
from preservation.catalog.library_models import (
    ID_CN,
    ID_ISBN_ONLINE,
    ID_ISBN_PRINT,
    ID_ISSN_ONLINE,
    ID_ISSN_PRINT,
    ITEM_KINDS,
)
from preservation.metadata.records import LIMITS, MAX_FILES, Checker, ItemRecord, Note
from preservation.metadata.xmlstream import resolve_href

NAME = "items.csv"
PATH = f"data/{NAME}"
"""Where the manifest is in the bag: ``items.csv`` at the delivery's root."""
COLUMNS = (
    "path", "files", "kind", "doi", "title", "authors", "language", "year", "published", "volume", "issue",
    "first_page", "last_page", "journal", "journal_english", "publisher", "issn", "issn_print", "issn_online",
    "isbn", "isbn_online", "cn",
)
MAX_ROW = 1024 * 1024
"""A row longer than this (an unclosed quote swallowing the file?) ends the reading of the manifest."""
BATCH = 1000


class CsvObserver:
    """Reads ``items.csv`` as it streams past; never raises."""

    def __init__(self, path: str, emit: Callable[[list[ItemRecord]], None],
                 notes: Callable[[str, list[Note]], None]) -> None:
        self.path = path
        self.check = Checker(path)
        self._emit = emit
        self._notes = notes
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._buffer = ""
        self._scanned = 0  # how far into the buffer newlines were looked for
        self._quotes = 0  # quotes in the row so far: a newline inside quotes does not end it
        self._line = 0  # the line the next row starts on
        self._header: list[str] | None = None
        self._ready: list[ItemRecord] = []
        self._done = False

    def feed(self, chunk: bytes | memoryview) -> None:
        if self._done:
            return
        try:
            self._buffer += self._decoder.decode(bytes(chunk))
        except UnicodeDecodeError:
            self._stop(f"the manifest is not UTF-8 (after line {self._line}): no item read from there on")
            return
        self._rows()

    def close(self, size: int) -> None:
        if not self._done:
            try:
                self._buffer += self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._stop(f"the manifest is not UTF-8 (after line {self._line}): no item read from there on")
            if not self._done:
                self._rows()
                if self._buffer.strip():
                    self._row(self._buffer)
                if self._header is None:
                    self._stop("the manifest has no header row")
        if self._ready:
            self._emit(self._ready)
            self._ready = []
        self._done = True
        self._notes(self.path, self.check.notes)

    def _rows(self) -> None:
        buffer, start = self._buffer, 0
        while not self._done:
            newline = buffer.find("\n", self._scanned)
            if newline < 0:
                break
            self._quotes += buffer.count('"', self._scanned, newline)
            self._scanned = newline + 1
            if self._quotes % 2 == 0:
                self._row(buffer[start:newline + 1])
                start, self._quotes = newline + 1, 0
        self._buffer = buffer[start:]
        self._scanned -= start
        if len(self._buffer) > MAX_ROW and not self._done:
            self._stop(f"the row at line {self._line + 1} is longer than {MAX_ROW} bytes: no item read from there on")
        if len(self._ready) >= BATCH:
            self._emit(self._ready)
            self._ready = []

    def _row(self, text: str) -> None:
        line = self._line + 1
        self._line += text.count("\n")
        try:
            cells = next(csv.reader([text]), [])
        except csv.Error as e:
            self.check.note(codes.MD_CSV_ROW, f"line {line}: {e}: row skipped", line=line)
            return
        if not any(c.strip() for c in cells):
            return
        if self._header is None:
            self._set_header(cells)
            return
        if len(cells) != len(self._header):
            self.check.note(codes.MD_CSV_ROW, f"line {line}: {len(cells)} fields where the header has "
                            f"{len(self._header)}: row skipped", line=line)
            return
        record = self._record(dict(zip(self._header, cells)), line)
        if record is not None:
            self._ready.append(record)

    def _set_header(self, cells: list[str]) -> None:
        header = [c.strip().lower() for c in cells]
        for name in header:
            if name not in COLUMNS:
                self.check.note(codes.MD_CSV_COLUMN, f"the manifest has a column {name[:50]!r} this format does not "
                                "know: ignored", column=name[:50])
        if "path" not in header or len(set(header)) != len(header):
            self._stop("the manifest's header has no `path` column, or names a column twice")
            return
        self._header = header

    def _record(self, row: dict[str, str], line: int) -> ItemRecord | None:
        check = self.check
        kind = row.get("kind", "").strip().lower() or "article"
        if kind not in ITEM_KINDS:
            check.note(codes.MD_CSV_ROW, f"line {line}: kind {kind[:20]!r} is not one of {', '.join(ITEM_KINDS)}: "
                       "row skipped", line=line)
            return None
        r = ItemRecord(kind=kind, source_format="csv", metadata_path=self.path, where=f"line {line}")
        paths = [("fulltext", row["path"])] + [("supplementary", p) for p in row.get("files", "").split(";") if p.strip()]
        for role, value in paths[:MAX_FILES]:
            try:
                path = resolve_href(self.path, value.strip())
            except ValueError as e:
                check.note(codes.MD_FILE_OUTSIDE, f"line {line}: {value[:100]!r} names a file {e}: ignored", line=line)
                continue
            if path is not None:
                r.files.append((path, role, True))
        if not r.files:
            check.note(codes.MD_CSV_ROW, f"line {line}: no file of the delivery in `path`: row skipped", line=line)
            return None
        r.doi = check.identifier(ids.DOI, row.get("doi"), "doi")
        r.item_title = check.text(row.get("title"), "item_title")
        for author in (row.get("authors") or "").split(";")[: LIMITS["authors"]]:
            name = check.text(author, "author")
            if name:
                r.authors.append(name)
        r.language = check.text(row.get("language"), "language")
        r.year = check.year(row.get("year"))
        published = (row.get("published") or "").strip()
        if published:
            parts = published.split("-")
            year = check.year(parts[0], "published")
            r.published = check.published(year, *(parts[1:3] + ["", ""])[:2]) if len(parts) <= 3 else ""
            r.year = r.year or year
        for name in ("volume", "issue", "first_page", "last_page"):
            setattr(r, name, check.part(row.get(name), name))
        r.publisher = check.text(row.get("publisher"), "publisher")
        r.isbn = check.identifier(ids.ISBN, row.get("isbn"), "isbn")
        for column, scheme, kind_of in (("issn", ids.ISSN, ID_ISSN_PRINT), ("issn_print", ids.ISSN, ID_ISSN_PRINT),
                                        ("issn_online", ids.ISSN, ID_ISSN_ONLINE), ("isbn_online", ids.ISBN,
                                        ID_ISBN_ONLINE), ("cn", ids.CN, ID_CN)):
            value = check.identifier(scheme, row.get(column), column)
            if value and (kind_of, value) not in r.identifiers:
                r.identifiers.append((kind_of, value))
        if kind == "book":
            r.title_kind, r.title = "book", check.text(r.item_title, "title")
            if r.isbn:
                r.identifiers.append((ID_ISBN_PRINT, r.isbn))
        elif row.get("journal", "").strip() or r.identifiers:
            r.title_kind = "book" if kind == "chapter" else "journal"
            r.title = check.text(row.get("journal"), "title")
            if kind == "chapter" and r.isbn:
                r.identifiers.append((ID_ISBN_PRINT, r.isbn))
        r.title_english = check.text(row.get("journal_english"), "title_english")
        if not r.item_title and not r.doi:
            check.note(codes.MD_NO_TITLE, f"line {line}: neither a title nor a DOI: no item made", line=line)
            return None
        return r

    def _stop(self, message: str) -> None:
        self.check.note(codes.MD_CSV_ROW, message, line=self._line)
        self._done = True
