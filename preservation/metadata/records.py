"""What extraction keeps of one item: a small, bounded record, and the spool that holds them.

Every value comes from a publisher's file and is hostile until checked
here: text XML cannot carry is dropped, over-long text is cut to the
column it is stored in, numbers are parsed strictly and range-checked.
Each problem becomes a *note* (a finding code, a message and its
parameters) that the analyser turns into a finding; a record never raises.

The records of a delivery wait in a :class:`RecordSpool` (JSON lines in a
spooled temporary file) between the bagging pass and the ingest
transaction, so a delivery of millions of items costs disk, not memory.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field, fields
from datetime import date
from operator import attrgetter
from typing import Any, Iterator

from preservation import codes
from preservation import identifiers as ids
from preservation.errors import InvalidRequest
from preservation.text import xml_forbidden

# the longest value kept of each field (the catalog's columns, or a sane bound where the column is TEXT)
LIMITS = {
    "item_title": 2000, "authors": 100, "author": 200, "language": 16, "volume": 32, "issue": 32,
    "first_page": 32, "last_page": 32, "doi": 300, "title": 1000, "title_english": 1000, "publisher": 300,
    "identifier": 200, "href": 1024,
}
MAX_FILES = 200
"""Files one item may name (self-uri, supplementary material); the rest are ignored with a note."""
FIRST_YEAR = 1450
"""No item printed before this year is expected (a smaller year is a typo or a hostile value)."""
_NUMBER = re.compile(r"[0-9]{1,9}")
_YEAR = re.compile(r"[0-9]{4}")
_MONTH_OR_DAY = re.compile(r"[0-9]{1,2}")
_SPACES = re.compile(r"\s+")
_IDENTIFIER_CODES = {ids.ISSN: codes.MD_ISSN, ids.ISBN: codes.MD_ISBN, ids.DOI: codes.MD_DOI, ids.CN: codes.MD_CN}

Note = tuple[str, str, dict[str, Any]]
"""A finding code, its message and its parameters."""


@dataclass(slots=True)
class ItemRecord:
    """One article, book or chapter as its metadata describes it (every field bounded)."""

    kind: str
    source_format: str
    metadata_path: str
    doi: str = ""
    item_title: str = ""
    authors: list[str] = field(default_factory=list)
    language: str = ""
    year: int | None = None
    published: str = ""
    volume: str = ""
    issue: str = ""
    first_page: str = ""
    last_page: str = ""
    isbn: str = ""
    # the title (journal, book) the item belongs to
    title_kind: str = ""
    title: str = ""
    title_english: str = ""
    publisher: str = ""
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (scheme, normalised value)
    # files, as bag paths (data/…): (path, role, named) — ``named`` when the metadata names it explicitly
    files: list[tuple[str, str, bool]] = field(default_factory=list)
    where: str = ""
    """Where in the metadata file the item is (an ONIX record reference, a CSV line), for findings."""

    def to_json(self) -> str:
        return _ENCODE(_VALUES(self))

    @classmethod
    def from_values(cls, values: list) -> "ItemRecord":
        """The record whose :meth:`to_json` gave ``values`` (decoded)."""
        record = cls(*values)
        record.identifiers = [tuple(i) for i in record.identifiers]
        record.files = [tuple(f) for f in record.files]
        return record


_FIELDS = tuple(f.name for f in fields(ItemRecord))
_VALUES = attrgetter(*_FIELDS)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_TODAY = [0.0, 0]  # when the year below was read (monotonic seconds), and the year


def _this_year() -> int:
    """The current year, read again each minute (``date.today()`` for every item cost a tenth of a record)."""
    now = time.monotonic()
    if now - _TODAY[0] > 60 or not _TODAY[1]:
        _TODAY[:] = [now, date.today().year]
    return _TODAY[1]


class Checker:
    """Checks the values of one metadata file, collecting notes (never raising)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.notes: list[Note] = []

    def note(self, code: str, message: str, **params: Any) -> None:
        if len(self.notes) < 100:  # a file full of bad values says so a hundred times, not a million
            self.notes.append((code, message, params))

    def text(self, value: str | None, name: str, limit: str | None = None) -> str:
        """``value`` with runs of white space made one space, checked for XML and cut to its limit."""
        if not value:
            return ""
        if value.isprintable() and "  " not in value:
            # no control character, no separator but the space, no run of spaces: nothing to fold or refuse
            # (every character XML cannot carry is a control, a surrogate or a non-character: not printable)
            value = value.strip()
        else:
            value = _SPACES.sub(" ", value).strip()
            bad = xml_forbidden(value)
            if bad:
                self.note(codes.MD_TEXT_REFUSED, f"{name} holds characters XML cannot carry ({', '.join(bad[:3])}): "
                          f"dropped", field=name)
                return ""
        maximum = LIMITS[limit or name]
        if len(value) > maximum:
            self.note(codes.MD_FIELD_TOO_LONG, f"{name} is longer than {maximum} characters: cut",
                      field=name, length=len(value), limit=maximum)
            value = value[:maximum]
        return value

    def identifier(self, scheme: str, value: str | None, name: str) -> str:
        """``value`` parsed as ``scheme`` (see :mod:`preservation.identifiers`) and normalised, else "" (with a note)."""
        value = (value or "").strip()
        if not value:
            return ""
        try:
            return ids.parse(scheme, value)
        except InvalidRequest as e:  # InvalidIdentifier, or InvalidText for what XML cannot carry
            self.note(_IDENTIFIER_CODES[scheme], f"{name}: {e.message}", field=name, scheme=scheme)
            return ""

    def year(self, value: str | None, name: str = "year") -> int | None:
        """A four-digit year between :data:`FIRST_YEAR` and next year, else None (with a note)."""
        value = (value or "").strip()
        if not value:
            return None
        if not _YEAR.fullmatch(value) or not FIRST_YEAR <= int(value) <= _this_year() + 1:
            self.note(codes.MD_NUMBER, f"{name} {value[:20]!r} is not a year from {FIRST_YEAR} to next year: "
                      "dropped", field=name)
            return None
        return int(value)

    def part(self, value: str | None, name: str) -> str:
        """A volume, an issue or a page: text (``68``, ``3-4``, ``S1``); a plain number must be 1 to 999,999,999."""
        value = self.text(value, name)
        if value.isdigit() and not (_NUMBER.fullmatch(value) and int(value) > 0):
            self.note(codes.MD_NUMBER, f"{name} {value[:20]!r} is not a number from 1 to 999999999: dropped",
                      field=name)
            return ""
        return value

    def published(self, year: int | None, month: str | None, day: str | None) -> str:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` from checked parts; a bad month or day keeps the year only."""
        if year is None:
            return ""
        month, day = (month or "").strip(), (day or "").strip()
        if not month:
            return f"{year:04d}"
        if not _MONTH_OR_DAY.fullmatch(month) or not 1 <= int(month) <= 12:
            self.note(codes.MD_NUMBER, f"month {month[:20]!r} is not 1 to 12: only the year is kept", field="month")
            return f"{year:04d}"
        if not day:
            return f"{year:04d}-{int(month):02d}"
        try:
            if not _MONTH_OR_DAY.fullmatch(day):
                raise ValueError(day)
            return date(year, int(month), int(day)).isoformat()
        except ValueError:
            self.note(codes.MD_NUMBER, f"day {day[:20]!r} is not a day of {year}-{int(month):02d}: the month is kept",
                      field="day")
            return f"{year:04d}-{int(month):02d}"


_DECODE_CHARACTERS = 256 * 1024
"""The spool's lines decoded at once when it is read back: this many characters of them, and the line that
crosses the mark (a record's fields are bounded, so its line is too)."""


class RecordSpool:
    """The records of one delivery, in the order they were found, kept on disk past ``memory`` bytes.

    Observers of different files add from different threads.
    """

    def __init__(self, memory: int = 8 * 1024 * 1024) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=memory, mode="w+", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0
        # an ingest that fails before registering never reads its records: the file goes with the spool
        self._closer = weakref.finalize(self, self._file.close)

    def add(self, records: list[ItemRecord]) -> None:
        self.add_lines("".join(r.to_json() + "\n" for r in records), len(records))

    def add_lines(self, lines: str, count: int) -> None:
        """``count`` records already written as :meth:`ItemRecord.to_json` lines (each ending with a newline)."""
        with self._lock:
            self._file.write(lines)
            self.count += count

    def __iter__(self) -> Iterator[ItemRecord]:
        with self._lock:
            self._file.flush()
            self._file.seek(0)
            while lines := self._file.readlines(_DECODE_CHARACTERS):
                # one decoding for many lines (a call of json.loads each cost more than its decoding)
                for values in json.loads("[" + ",".join(lines) + "]"):
                    yield ItemRecord.from_values(values)

    def close(self) -> None:
        self._closer()
