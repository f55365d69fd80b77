"""KBART files: a publisher's title list in, a library's holdings file in, preserved holdings out.

The format is NISO KBART Phase II (RP-9-2014): UTF-8 text, one header row
naming the 25 standard columns in their order, then one tab-separated row
per title and coverage range.  A library's own file (KBART Automation,
RP-26-2019) has the same columns, its rows being what the library holds.

Reading is strict and streams (:func:`read_rows`): a byte-order mark is
skipped, CRLF or LF ends a line, each line is decoded as UTF-8 on its own;
controls and characters XML cannot carry, wrong field counts, dates that are
not ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` in 1500-2100, unknown
``publication_type`` values and bad identifiers are coded findings (family
``K``) naming the line and field.  An import is all or nothing: it runs in
one transaction, and one error finding refuses the whole file
(:class:`~preservation.errors.ImportRejected`, E803).

Columns after the standard ones may follow: ``preserve_kind``,
``preserve_cn``, ``preserve_doi_prefix``, ``preserve_title_transliterated``
and ``preserve_title_english`` are read; ``preserve_verification`` and
``preserve_last_verified`` (what an export adds) are ignored; any other is
kept in the title's ``kbart`` record (K016 warning).
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from sqlalchemy import Connection, Table, bindparam, delete, func, select
from sqlalchemy.orm import Session

from preservation import identifiers as ids
from preservation.access.accounts import get_library
from preservation.catalog.bulk import KeyedCopy, WriteBehind, can_write_behind, insert_rows
from preservation.catalog.library_models import (
    DATE_TEXT,
    TITLE_KINDS,
    ExpectedCoverage,
    Title,
    TitleEntitlement,
    TitleIdentifier,
)
from preservation.catalog.models import utcnow
from preservation.catalog.search_index import index_pending
from preservation.codes import (
    KBART_CODED_VALUE,
    KBART_DATE,
    KBART_EXTRA_COLUMN,
    KBART_FIELD_COUNT,
    KBART_HEADER,
    KBART_IDENTIFIER,
    KBART_NO_IDENTIFIER,
    KBART_NO_SUCH_TITLE,
    KBART_PUBLICATION_TYPE,
    KBART_REPEATED,
    KBART_REQUIRED,
    KBART_REVERSED,
    KBART_TEXT,
    KBART_TOO_LONG,
    KBART_TWO_TITLES,
    KBART_UNREADABLE,
)
from preservation.collection import get_collection
from preservation.errors import ImportRejected, InvalidIdentifier, InvalidRequest
from preservation.findings import ERROR, WARNING, FindingList
from preservation.repository import Repository
from preservation.titles import MATCH_FAMILY, identifier_index, parse_partial_date, part_number

COLUMNS = (
    "publication_title", "print_identifier", "online_identifier", "date_first_issue_online", "num_first_vol_online",
    "num_first_issue_online", "date_last_issue_online", "num_last_vol_online", "num_last_issue_online", "title_url",
    "first_author", "title_id", "embargo_info", "coverage_depth", "notes", "publisher_name", "publication_type",
    "date_monograph_published_print", "date_monograph_published_online", "monograph_volume", "monograph_edition",
    "first_editor", "parent_publication_title_id", "preceding_publication_title_id", "access_type",
)
EXTRA_READ = ("preserve_kind", "preserve_cn", "preserve_doi_prefix", "preserve_title_transliterated",
              "preserve_title_english")
EXTRA_VERIFICATION = ("preserve_verification", "preserve_last_verified")
EXTRA_WRITTEN = EXTRA_READ + EXTRA_VERIFICATION
_STANDARD_NAMES = frozenset(COLUMNS)

# Title-level columns kept in Title.kbart (the coverage columns have their own table).
TITLE_KBART = ("title_url", "first_author", "notes", "publication_type", "date_monograph_published_print",
               "date_monograph_published_online", "monograph_volume", "monograph_edition", "first_editor",
               "parent_publication_title_id", "preceding_publication_title_id", "access_type")
PART_COLUMNS = ("num_first_vol_online", "num_first_issue_online", "num_last_vol_online", "num_last_issue_online",
                "monograph_volume", "monograph_edition")
LIMITS = {"publication_title": 1000, "title_url": 1000, "first_author": 300, "notes": 1000, "publisher_name": 300,
          "first_editor": 300, "preserve_title_transliterated": 1000, "preserve_title_english": 1000}
DEFAULT_LIMIT = 200
PART_LIMIT = 32
PUBLICATION_TYPES = {"serial": "journal", "monograph": "book"}
COVERAGE_DEPTHS = ("abstracts", "fulltext", "selected articles")
ACCESS_TYPES = ("F", "P")
_EMBARGO = re.compile(r"[RP][0-9]{1,4}[DMY](?:;[RP][0-9]{1,4}[DMY])?")
_URL = re.compile(r"https?://[^\s]+")
# Characters no KBART field may hold: C0 (TAB and line ends are syntax), DEL, C1, and what XML cannot carry.
_BAD_CHARS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

MAX_FILE_BYTES = 256 * 2**20
MAX_ROWS = 1_000_000
MAX_LINE_BYTES = 64 * 2**10
MAX_EXTRA_COLUMNS = 20
MAX_ERRORS = 100  # then checking stops: the file is refused anyway
BATCH = 5000  # identifiers and coverage rows written at once (on SQLite, where the batch is checked)
BATCH_BEHIND = 20000  # the same, written behind the checking (PostgreSQL): each of a batch's statements costs the
# writing thread a wait for the GIL, held by the checking thread, so fewer, larger batches


# --- reading ------------------------------------------------------------------------------


@dataclass
class KbartRow:
    """One data row, checked: what a title, its identifiers and one coverage range are made of."""

    line: int
    kind: str
    title: str
    publisher: str
    transliterated: str
    english: str
    identifiers: list[tuple[str, str]]
    coverage: tuple[str, str, str, str, str, str, str, str]  # first date/vol/issue, last date/vol/issue, embargo, depth
    kbart: dict[str, Any]

    @property
    def keys(self) -> set[tuple[str, str]]:
        return {(MATCH_FAMILY[s], v) for s, v in self.identifiers if MATCH_FAMILY[s]}


class _Stop(Exception):
    """Enough errors: the file is refused, checking the rest would only cost time."""


@dataclass
class _Reader:
    path: Path
    findings: FindingList = field(default_factory=FindingList)
    header: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    rows: int = 0
    errors: int = 0

    def bad(self, code: str, line: int, column: str | None, message: str, severity: str = ERROR) -> None:
        where = f"line {line}" + (f", {column}" if column else "")
        self.findings.add(code, f"{where}: {message}", severity=severity, line=line,
                          **({"field": column} if column else {}))
        if severity == ERROR:
            self.errors += 1
            if self.errors >= MAX_ERRORS:
                raise _Stop

    def lines(self, stream: IO[bytes]) -> Iterator[tuple[int, str | None]]:
        """``(line number, text)`` of every line, decoded, without its line end; the header is line 1.

        A line that is not UTF-8 gets its finding and comes as ``None``.
        """
        number = 0
        total = 0
        while True:
            raw = stream.readline(MAX_LINE_BYTES + 2)
            if not raw:
                return
            number += 1
            total += len(raw)
            if total > MAX_FILE_BYTES:
                self.bad(KBART_UNREADABLE, number, None, f"the file is larger than {MAX_FILE_BYTES} bytes")
                raise _Stop
            if not raw.endswith(b"\n") and len(raw) > MAX_LINE_BYTES:
                self.bad(KBART_UNREADABLE, number, None, f"longer than {MAX_LINE_BYTES} bytes")
                raise _Stop
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self.bad(KBART_UNREADABLE, number, None, f"not UTF-8 (byte {e.start + 1})")
                yield number, None

    def read_header(self, line: int, text: str) -> bool:
        names = text.split("\t")
        if tuple(names[:len(COLUMNS)]) != COLUMNS:
            wrong = next((i for i, (a, b) in enumerate(zip(names, COLUMNS)) if a != b), min(len(names), len(COLUMNS)))
            shown = ascii(names[wrong][:40]) if wrong < len(names) else "nothing"
            self.bad(KBART_HEADER, line, None, f"column {wrong + 1} should be {COLUMNS[wrong]}, not {shown} "
                                               "(a KBART Phase II header: the 25 standard columns in order)")
            return False
        self.extras = names[len(COLUMNS):]
        if len(self.extras) > MAX_EXTRA_COLUMNS or len(set(self.extras)) != len(self.extras) \
                or not _STANDARD_NAMES.isdisjoint(self.extras) \
                or any(not n or _BAD_CHARS.search(n) or len(n) > 64 for n in self.extras):
            self.bad(KBART_HEADER, line, None, f"the columns after the standard ones must be at most "
                                               f"{MAX_EXTRA_COLUMNS} distinct, non-empty names, none of them "
                                               "a standard column's")
            return False
        for name in self.extras:
            if name not in EXTRA_WRITTEN:
                self.bad(KBART_EXTRA_COLUMN, line, name, "not a column preserve reads", severity=WARNING)
        self.header = names
        return True


def _limit(name: str) -> int:
    return PART_LIMIT if name in PART_COLUMNS else LIMITS.get(name, DEFAULT_LIMIT)


@lru_cache(maxsize=1 << 16)
def _good_date(value: str) -> bool:
    """Whether ``value`` is a partial date (remembered: a list of 100,000 rows holds a few thousand dates)."""
    try:
        parse_partial_date(value)
    except InvalidRequest:
        return False
    return True


def _date(reader: _Reader, line: int, name: str, value: str) -> str:
    if _good_date(value):
        return value
    try:
        return parse_partial_date(value, name)
    except InvalidRequest as e:
        reader.bad(KBART_DATE, line, name, str(e))
        return ""


def _identifier(reader: _Reader, line: int, name: str, value: str, parser) -> str | None:
    try:
        return parser(value)
    except InvalidIdentifier as e:
        reader.bad(KBART_IDENTIFIER, line, name, str(e))
        return None


# A partial date as the first day it can mean, and as a string no later day of its span exceeds.
_FIRST_DAY = {4: "-01-01", 7: "-01", 10: ""}
_LAST_DAY = {4: "-12-31", 7: "-31", 10: ""}
_SCHEMES = {"monograph": (ids.ID_ISBN_PRINT, ids.ID_ISBN_ONLINE), "serial": (ids.ID_ISSN_PRINT, ids.ID_ISSN_ONLINE)}
_LIMITS = {name: _limit(name) for name in COLUMNS + EXTRA_WRITTEN}
_SHORTEST_LIMIT = min(*_LIMITS.values(), DEFAULT_LIMIT)
_STANDARD = len(COLUMNS)
_TITLE_KBART_AT = tuple((name, COLUMNS.index(name)) for name in TITLE_KBART)
_NO_EXTRAS: dict[str, str] = {}
_part_number = lru_cache(maxsize=1 << 12)(part_number)  # a list repeats its volume numbers


def _check_row(reader: _Reader, line: int, text: str) -> KbartRow | None:
    """One data line → a :class:`KbartRow`, or None after its findings.

    Written for speed, as it runs per row: the standard columns are read by
    their place (the header starts with them, in order), fields left empty
    cost nothing, and each rule is one comparison when the value is good.
    """
    before = reader.errors
    header = reader.header
    fields = text.split("\t")
    if len(fields) != len(header):
        reader.bad(KBART_FIELD_COUNT, line, None, f"{len(fields)} fields, the header has {len(header)}")
        return None
    bad = _BAD_CHARS.search(text)
    if bad:
        column = header[text.count("\t", 0, bad.start())]
        reader.bad(KBART_TEXT, line, column, f"holds the character U+{ord(bad.group()):04X}")
        return None
    if text[:1] == " " or text[-1:] == " " or " \t" in text or "\t " in text:
        fields = [f.strip(" ") for f in fields]
    if max(map(len, fields)) > _SHORTEST_LIMIT:  # most rows need no field by field look
        for name, value in zip(header, fields):
            if len(value) > _LIMITS.get(name, DEFAULT_LIMIT):
                reader.bad(KBART_TOO_LONG, line, name, f"longer than {_LIMITS.get(name, DEFAULT_LIMIT)} characters")
    (title, print_id, online_id, first, first_vol, first_issue, last, last_vol, last_issue, url, _author,
     title_id, embargo, depth, _notes, publisher, ptype, print_date, online_date, _volume, _edition, _editor,
     parent, preceding, access) = fields[:_STANDARD]
    extra = dict(zip(header[_STANDARD:], fields[_STANDARD:])) if len(fields) > _STANDARD else _NO_EXTRAS
    if not title:
        reader.bad(KBART_REQUIRED, line, "publication_title", "empty")
    ptype_given, ptype = ptype, ptype.lower()
    if not ptype:
        reader.bad(KBART_REQUIRED, line, "publication_type", "empty")
    elif ptype not in PUBLICATION_TYPES:
        reader.bad(KBART_PUBLICATION_TYPE, line, "publication_type",
                   f"{ascii(ptype_given[:40])} is neither serial nor monograph")
    kind = PUBLICATION_TYPES.get(ptype, "other")
    preserve_kind = extra.get("preserve_kind")
    if preserve_kind:
        if preserve_kind in TITLE_KINDS:
            kind = preserve_kind
        else:
            reader.bad(KBART_CODED_VALUE, line, "preserve_kind", f"not one of {', '.join(TITLE_KINDS)}")
    if first and not _good_date(first):
        first = _date(reader, line, "date_first_issue_online", first)
    if last and not _good_date(last):
        last = _date(reader, line, "date_last_issue_online", last)
    if print_date and not _good_date(print_date):
        _date(reader, line, "date_monograph_published_print", print_date)
    if online_date and not _good_date(online_date):
        _date(reader, line, "date_monograph_published_online", online_date)
    identifiers: list[tuple[str, str]] = []
    identifying = False
    if ptype == "monograph":
        standard, (print_scheme, online_scheme) = ids.parse_isbn, _SCHEMES["monograph"]
    else:
        standard, (print_scheme, online_scheme) = ids.parse_issn, _SCHEMES["serial"]
    for name, scheme, raw, parse in (("print_identifier", print_scheme, print_id, standard),
                                     ("online_identifier", online_scheme, online_id, standard),
                                     ("title_id", ids.ID_PUBLISHER, title_id, ids.parse_publisher_id),
                                     ("preserve_cn", ids.ID_CN, extra.get("preserve_cn"), ids.parse_cn),
                                     ("preserve_doi_prefix", ids.ID_DOI_PREFIX, extra.get("preserve_doi_prefix"),
                                      ids.parse_doi_prefix)):
        if raw:
            value = _identifier(reader, line, name, raw, parse)
            if value is not None:
                identifiers.append((scheme, value))
                identifying = identifying or scheme != ids.ID_DOI_PREFIX
    if parent:
        _identifier(reader, line, "parent_publication_title_id", parent, ids.parse_publisher_id)
    if preceding:
        _identifier(reader, line, "preceding_publication_title_id", preceding, ids.parse_publisher_id)
    if not identifying and reader.errors == before:
        reader.bad(KBART_NO_IDENTIFIER, line, None, "no print_identifier, online_identifier, title_id or preserve_cn")
    if embargo and not _EMBARGO.fullmatch(embargo):
        reader.bad(KBART_CODED_VALUE, line, "embargo_info", f"{ascii(embargo[:40])} is not R/P + number + D/M/Y "
                                                            "(e.g. P1Y, R10Y, P6M;R5Y)")
    depth = depth.lower()
    if depth and depth not in COVERAGE_DEPTHS:
        reader.bad(KBART_CODED_VALUE, line, "coverage_depth", f"not one of {', '.join(COVERAGE_DEPTHS)}")
    access = access.upper()
    if access and access not in ACCESS_TYPES:
        reader.bad(KBART_CODED_VALUE, line, "access_type", "not F (free) or P (paid)")
    if url and not _URL.fullmatch(url):
        reader.bad(KBART_CODED_VALUE, line, "title_url", "not an http:// or https:// URL")
    if first and last and first + _FIRST_DAY[len(first)] > last + _LAST_DAY[len(last)]:
        reader.bad(KBART_REVERSED, line, "date_last_issue_online", f"{last} is before {first}")
    if first_vol and last_vol:
        first_number, last_number = _part_number(first_vol), _part_number(last_vol)
        if first_number is not None and last_number is not None and first_number > last_number:
            reader.bad(KBART_REVERSED, line, "num_last_vol_online", f"volume {last_number} is before {first_number}")
    if reader.errors > before:
        return None
    kbart = {name: fields[i] for name, i in _TITLE_KBART_AT if fields[i]}
    if ptype:
        kbart["publication_type"] = ptype
    if access:
        kbart["access_type"] = access
    if extra:
        kept = {n: v for n, v in extra.items() if v and n not in EXTRA_WRITTEN}
        if kept:
            kbart["extra"] = kept
    return KbartRow(line, kind, title, publisher, extra.get("preserve_title_transliterated") or "",
                    extra.get("preserve_title_english") or "", identifiers,
                    (first, first_vol, first_issue, last, last_vol, last_issue, embargo, depth), kbart)


def read_rows(path: str | Path, reader: _Reader | None = None) -> Iterator[KbartRow]:
    """Every good row of a KBART file, streamed; the findings collect in ``reader.findings``.

    Stops (quietly: the findings say why) on a header that is not KBART, an
    over-long line, a file over :data:`MAX_FILE_BYTES` or :data:`MAX_ROWS`,
    or after :data:`MAX_ERRORS` errors.
    """
    reader = reader or _Reader(Path(path))
    try:
        with open(reader.path, "rb") as stream:
            lines = reader.lines(stream)
            for line, text in lines:
                if text is None or not reader.read_header(line, text):
                    return
                break
            else:
                reader.bad(KBART_UNREADABLE, 1, None, "the file is empty: no header row")
                return
            for line, text in lines:
                if text == "":
                    continue  # a blank line (as a trailing one) carries nothing
                reader.rows += 1
                if reader.rows > MAX_ROWS:
                    reader.bad(KBART_UNREADABLE, line, None, f"more than {MAX_ROWS} rows")
                    return
                row = _check_row(reader, line, text) if text is not None else None
                if row is not None:
                    yield row
            if reader.rows == 0:
                reader.bad(KBART_UNREADABLE, 1, None, "the file holds no rows after its header")
    except _Stop:
        return
    except OSError as e:
        reader.findings.add(KBART_UNREADABLE, f"cannot read it: {e.strerror or e}", line=0)


def check_file(path: str | Path) -> tuple[list[KbartRow], FindingList]:
    """Every row of a small KBART file and the findings (for ``holdings gaps --against``)."""
    reader = _Reader(Path(path))
    rows = list(read_rows(path, reader))
    return rows, reader.findings


def _refuse(reader: _Reader) -> None:
    if not reader.findings.ok:
        errors = reader.findings.errors
        more = " (checking stopped there)" if len(errors) >= MAX_ERRORS else ""
        raise ImportRejected(f"{len(errors)} problem(s){more}, first: {errors[0].message}",
                             findings=list(reader.findings), source=str(reader.path))


# --- a publisher's title list -------------------------------------------------------------


def new_ids(conn: Connection, table: Table, count: int) -> list[int] | None:
    """``count`` ids for new rows of ``table`` (its integer ``id``), or None where the database cannot give them.

    PostgreSQL draws them from the column's sequence, as its own INSERTs
    would.  SQLite counts on from the largest id: safe, because a writer that
    commits in between makes this transaction's first write fail
    (SQLITE_BUSY), it cannot interleave ids.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return list(conn.execute(
            select(func.nextval(func.pg_get_serial_sequence(table.name, "id"))).select_from(
                func.generate_series(1, count))).scalars())
    if dialect == "sqlite":
        first = (conn.execute(select(func.max(table.c.id))).scalar_one() or 0) + 1
        return list(range(first, first + count))
    return None


@dataclass
class _Batch:
    """What one flush writes."""

    new_titles: list[tuple[int, KbartRow]]
    updated: list[tuple[int, KbartRow]]
    clear: list[int]
    identifiers: list[tuple[int, str, str]]
    coverage: list[tuple[int, KbartRow]]


_Rows = list[tuple] | KeyedCopy  # a table's rows of a batch, the title reference first (a KeyedCopy: as COPY text)


class _TitleListImport:
    """One publisher list into one collection, in batches inside the caller's transaction.

    What matching needs from the catalog (the collection's identifiers) is
    read once, before the first row; rows are then checked, matched to
    titles and written a batch at a time.  A batch's rows name their title
    by a reference (a new title's is negative until its id is drawn, when
    its batch is written), so that checking never waits for the database.

    On PostgreSQL (psycopg) the writes run behind the checking
    (:class:`~preservation.catalog.bulk.WriteBehind`): each batch is made
    into COPY text on the checking thread and sent by a thread that only
    waits for the server, so the server's work on one batch and the checking
    of the next use both cores.  Elsewhere (SQLite) a batch is written where
    it is made: each row SQLite's ``executemany`` steps gives the GIL away
    and waits to get it back, so a writer thread beside the checking would
    only take turns with it.  Use it as a context manager: leaving it waits
    for the writes (and raises a write's error).
    """

    def __init__(self, session: Session, collection_id: int, reader: _Reader) -> None:
        self.conn, self.collection_id, self.reader = session.connection(), collection_id, reader
        self.by_key: dict[tuple[str, str], int] = {}
        self.ambiguous: set[tuple[str, str]] = set()
        for key, title_ids in identifier_index(session, collection_id=collection_id).items():
            if len(title_ids) == 1:
                self.by_key[key] = next(iter(title_ids))
            else:
                self.ambiguous.add(key)
        self.existing: dict[int, set[tuple[str, str]]] = {}
        for title_id, scheme, value in session.execute(
                select(TitleIdentifier.title_id, TitleIdentifier.scheme, TitleIdentifier.value)
                .join(Title).where(Title.collection_id == collection_id)):
            self.existing.setdefault(title_id, set()).add((scheme, value))
        self.known: dict[int, set[tuple[str, str]]] = {}
        self.first_line: dict[int, int] = {}
        self.coverage_seen: set[tuple[int, tuple]] = set()
        self.new_titles: dict[int, KbartRow] = {}
        self.updated: list[tuple[int, KbartRow]] = []
        self.identifiers: list[tuple[int, str, str]] = []
        self.coverage: list[tuple[int, KbartRow]] = []
        self.clear: list[int] = []
        self.real: dict[int, int] = {}  # a new title's reference -> its id (filled by the writes)
        self.next_ref = -1
        self.counts = {"titles_added": 0, "titles_updated": 0, "identifiers_added": 0, "coverage_rows": 0}
        self.behind = WriteBehind() if can_write_behind(self.conn) else None
        self.batch = BATCH_BEHIND if self.behind is not None else BATCH

    def __enter__(self) -> "_TitleListImport":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.behind is not None:
            self.behind.__exit__(*exc)

    def add(self, row: KbartRow) -> None:
        keys = row.keys
        if self.ambiguous and not keys.isdisjoint(self.ambiguous):
            self.reader.bad(KBART_TWO_TITLES, row.line, None, "an identifier of the row names two titles of the "
                                                              "collection already")
            return
        by_key = self.by_key
        refs = {by_key[k] for k in keys if k in by_key}
        if len(refs) > 1:
            self.reader.bad(KBART_TWO_TITLES, row.line, None,
                            "its identifiers belong to " + " and ".join(self._name(r) for r in sorted(refs, key=lambda r: (r < 0, abs(r)))))
            return
        if refs:
            ref = refs.pop()
        else:
            ref, self.next_ref = self.next_ref, self.next_ref - 1
        known = self.known.get(ref)
        if known is None:  # the title's first row in the file
            self.first_line[ref] = row.line
            if ref < 0:
                self.new_titles[ref] = row
                known = self.known[ref] = set()
            else:
                self.updated.append((ref, row))
                self.clear.append(ref)
                known = self.known[ref] = self.existing.get(ref, set())
        for key in keys:
            by_key.setdefault(key, ref)
        for pair in row.identifiers:
            if pair not in known:
                known.add(pair)
                self.identifiers.append((ref, *pair))
        seen = (ref, row.coverage)
        if seen in self.coverage_seen:
            self.reader.bad(KBART_REPEATED, row.line, None, "repeats an earlier coverage of the same title",
                            severity=WARNING)
            return
        self.coverage_seen.add(seen)
        self.coverage.append((ref, row))

    def _name(self, ref: int) -> str:
        return f"title {ref}" if ref > 0 else f"the title of line {self.first_line[ref]}"

    def full(self) -> bool:
        return len(self.coverage) + len(self.identifiers) >= self.batch

    def flush(self) -> None:
        """Write what is pending (nothing once the file is bad: it is rolled back, writing would only cost time)."""
        batch = _Batch(list(self.new_titles.items()), self.updated, self.clear, self.identifiers, self.coverage)
        self.new_titles, self.updated, self.clear, self.identifiers, self.coverage = {}, [], [], [], []
        if not self.reader.findings.ok:
            return
        write = self._prepare(batch)
        if self.behind is not None:
            self.behind.submit(write)
        else:
            write()

    def _prepare(self, batch: _Batch) -> Callable[[], None]:
        """The batch's rows, made on this thread; returns their write, the part that needs the connection."""
        now = utcnow()
        collection_id = self.collection_id
        titles: _Rows = [(ref, collection_id, row.kind, row.title, row.transliterated, row.english, row.publisher,
                          row.kbart, now, now) for ref, row in batch.new_titles]
        identifiers: _Rows = batch.identifiers
        coverage: _Rows = [(ref, *row.coverage, row.line) for ref, row in batch.coverage]
        updated = [{"title_id": ref, **self._title_values(row, now)} for ref, row in batch.updated]
        if self.behind is not None:  # as COPY text now, while the writes of the batch before run
            conn = self.conn
            titles = KeyedCopy(conn, Title.__table__, _NEW_TITLE_COLUMNS, titles)
            identifiers = KeyedCopy(conn, TitleIdentifier.__table__, IDENTIFIER_COLUMNS, identifiers)
            coverage = KeyedCopy(conn, ExpectedCoverage.__table__, COVERAGE_COLUMNS, coverage)
        counts = self.counts
        counts["titles_added"] += len(titles)
        counts["titles_updated"] += len(updated)
        counts["identifiers_added"] += len(identifiers)
        counts["coverage_rows"] += len(coverage)
        return lambda: self._write(titles, updated, batch.clear, identifiers, coverage)

    def _write(self, titles: _Rows, updated: list[dict[str, Any]], clear: list[int], identifiers: _Rows,
               coverage: _Rows) -> None:
        # Core inserts on the session's connection (same transaction): the ORM's per-row bookkeeping would
        # cost more than the database does at 100,000 rows.
        conn, real = self.conn, self.real
        table = Title.__table__
        if len(titles):
            ids_ = new_ids(conn, table, len(titles))
            refs = titles.keys if isinstance(titles, KeyedCopy) else [row[0] for row in titles]
            if ids_ is None:  # (rows, not COPY text: that is PostgreSQL's) RETURNING would go row by row on SQLite
                ids_ = conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True),
                                    [dict(zip(_NEW_TITLE_COLUMNS[1:], row[1:])) for row in titles]).scalars().all()
                real.update(zip(refs, ids_, strict=True))
            else:
                real.update(zip(refs, ids_, strict=True))
                _insert(conn, table, _NEW_TITLE_COLUMNS, titles, real)
        if updated:
            conn.execute(table.update().where(table.c.id == bindparam("title_id")), updated)
        if clear:
            table = ExpectedCoverage.__table__
            conn.execute(delete(table).where(table.c.title_id.in_(clear)))
        _insert(conn, TitleIdentifier.__table__, IDENTIFIER_COLUMNS, identifiers, real)
        _insert(conn, ExpectedCoverage.__table__, COVERAGE_COLUMNS, coverage, real)
        index_pending(conn)  # the batch's titles into the search index (SQLite), while its pages are at hand

    @staticmethod
    def _title_values(row: KbartRow, now: datetime) -> dict[str, Any]:
        return {"kind": row.kind, "title": row.title, "title_transliterated": row.transliterated,
                "title_english": row.english, "publisher": row.publisher, "kbart": row.kbart, "updated_at": now}


def _insert(conn: Connection, table: Table, columns: tuple[str, ...], rows: _Rows, real: dict[int, int]) -> None:
    """A batch's rows of one table, each row's title reference (its first column) written as the title's id."""
    if isinstance(rows, KeyedCopy):
        rows.send(conn, real)
    elif rows:
        insert_rows(conn, table, columns, [(real.get(row[0], row[0]), *row[1:]) for row in rows])


_NEW_TITLE_COLUMNS = ("id", "collection_id", "kind", "title", "title_transliterated", "title_english", "publisher",
                      "kbart", "created_at", "updated_at")
IDENTIFIER_COLUMNS = ("title_id", "scheme", "value")
COVERAGE_COLUMNS = ("title_id", "first_date", "first_volume", "first_issue", "last_date", "last_volume", "last_issue",
                    "embargo_info", "coverage_depth", "line_no")  # in the order of KbartRow.coverage


def import_title_list(repo: Repository, path: str | Path, collection_key: str) -> dict[str, Any]:
    """A publisher's KBART title list as the collection's titles and expected coverage, all or nothing.

    Each row's title is found by any of its identifiers (or created); a
    title in the file has its fields and its expected coverage replaced by
    the file's, and gains the file's new identifiers.  Titles the file does
    not name are left as they are.  Raises NotFound (collection) and
    ImportRejected (``findings``: every bad line; nothing is changed).
    """
    reader = _Reader(Path(path))
    with repo.catalog.session() as s:
        collection = get_collection(s, collection_key)
        with _TitleListImport(s, collection.id, reader) as work:
            with suppress(_Stop):  # enough errors to refuse the file: _refuse below raises with them
                for row in read_rows(path, reader):
                    work.add(row)
                    if work.full():
                        work.flush()
            _refuse(reader)
            work.flush()
        return {"file": str(path), "collection": collection.key, "rows": reader.rows, **work.counts,
                "warnings": [f.to_dict() for f in reader.findings.warnings]}


# --- a library's own KBART file -----------------------------------------------------------


def _range_values(row: KbartRow) -> tuple[str, str, str, str, str, str]:
    return row.coverage[:6]


def import_library_file(repo: Repository, path: str | Path, library_code: str, *,
                        collection_key: str | None = None, created_by: str = "") -> dict[str, Any]:
    """A library's KBART file (KBART Automation) as its title entitlements, all or nothing.

    Each row entitles the library to the titles its identifiers find (in
    ``collection_key``, or in every collection: the same ISSN in two
    collections entitles to both) over the row's dates, volumes and issues.
    The file replaces the library's title entitlements in that scope.  A row
    no title matches is skipped with a K014 warning.  Raises NotFound and
    ImportRejected (nothing is changed).
    """
    reader = _Reader(Path(path))
    with repo.catalog.session() as s:
        library = get_library(s, library_code)
        collection_id = get_collection(s, collection_key).id if collection_key else None
        index = identifier_index(s, collection_id=collection_id)
        collection_of = dict(s.execute(select(Title.id, Title.collection_id).where(
            *([Title.collection_id == collection_id] if collection_id else []))).all())
        wanted: dict[tuple, int] = {}
        skipped = 0
        try:
            for row in read_rows(path, reader):
                matched: set[int] = set()
                for key in row.keys:
                    matched |= index.get(key, set())
                if not matched:
                    skipped += 1
                    reader.bad(KBART_NO_SUCH_TITLE, row.line, None, "no title has its identifiers", severity=WARNING)
                    continue
                by_collection: dict[int, list[int]] = {}
                for title_id in matched:
                    by_collection.setdefault(collection_of[title_id], []).append(title_id)
                if any(len(v) > 1 for v in by_collection.values()):
                    reader.bad(KBART_TWO_TITLES, row.line, None, "its identifiers belong to titles "
                               + ", ".join(str(t) for t in sorted(matched)))
                    continue
                for title_id in sorted(matched):
                    key = (title_id, *_range_values(row))
                    if key in wanted:
                        reader.bad(KBART_REPEATED, row.line, None, f"repeats line {wanted[key]}", severity=WARNING)
                        continue
                    wanted[key] = row.line
        except _Stop:
            pass
        _refuse(reader)
        scope = [TitleEntitlement.library_id == library.id]
        if collection_id is not None:
            scope.append(TitleEntitlement.title_id.in_(select(Title.id).where(Title.collection_id == collection_id)))
        columns = (TitleEntitlement.title_id, TitleEntitlement.first_date, TitleEntitlement.first_volume,
                   TitleEntitlement.first_issue, TitleEntitlement.last_date, TitleEntitlement.last_volume,
                   TitleEntitlement.last_issue)
        before = {tuple(r) for r in s.execute(select(*columns).where(*scope))}
        s.execute(delete(TitleEntitlement).where(*scope))
        now = utcnow()
        columns = ("library_id", "title_id", "first_date", "first_volume", "first_issue", "last_date", "last_volume",
                   "last_issue", "line_no", "created_by", "created_at")
        rows = [(library.id, *key, line, created_by, now) for key, line in wanted.items()]
        for start in range(0, len(rows), BATCH):
            insert_rows(s.connection(), TitleEntitlement.__table__, columns, rows[start:start + BATCH])
        after = set(wanted)
        return {"file": str(path), "library": library.code, "collection": collection_key, "rows": reader.rows,
                "entitlements": len(after), "added": len(after - before), "removed": len(before - after),
                "unchanged": len(after & before), "skipped_rows": skipped,
                "warnings": [f.to_dict() for f in reader.findings.warnings]}


# --- writing ------------------------------------------------------------------------------

_UNSAFE_IN_TSV = re.compile(r"[\t\r\n]+")
HEADER = COLUMNS + EXTRA_WRITTEN


def tsv_field(value: Any) -> str:
    """A value as one KBART field: TAB and line ends (which text from metadata may hold) become one space."""
    text = "" if value is None else str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        text = _UNSAFE_IN_TSV.sub(" ", text)
    return text.strip(" ")


def write_kbart(out: IO[str], rows: Iterable[dict[str, Any]]) -> int:
    """The header and one line per row (a mapping of :data:`HEADER` names), LF-terminated; returns the rows."""
    out.write("\t".join(HEADER) + "\n")
    count = 0
    for row in rows:
        out.write("\t".join(tsv_field(row.get(name, "")) for name in HEADER) + "\n")
        count += 1
    return count


def title_fields(title: Any) -> dict[str, str]:
    """The title-level KBART fields of a catalog title (coverage and verification are the caller's).

    ``title`` is a :class:`Title` or a record with its columns and ``identifiers`` (``scheme``, ``value``).
    """
    schemes: dict[str, list[str]] = {}
    for i in title.identifiers:
        schemes.setdefault(i.scheme, []).append(i.value)
    monograph = title.kind == "book" or (title.kbart or {}).get("publication_type") == "monograph"
    first = {s: v[0] for s, v in schemes.items()}
    kbart = dict(title.kbart or {})
    out = {name: kbart.get(name, "") for name in TITLE_KBART}
    out.update({
        "publication_title": title.title,
        "print_identifier": first.get(ids.ID_ISBN_PRINT if monograph else ids.ID_ISSN_PRINT, ""),
        "online_identifier": first.get(ids.ID_ISBN_ONLINE if monograph else ids.ID_ISSN_ONLINE, ""),
        "title_id": first.get(ids.ID_PUBLISHER, ""),
        "publisher_name": title.publisher,
        "publication_type": kbart.get("publication_type") or ("monograph" if monograph else "serial"),
        "preserve_kind": title.kind,
        "preserve_cn": ids.format_cn(first[ids.ID_CN]) if ids.ID_CN in first else "",
        "preserve_doi_prefix": first.get(ids.ID_DOI_PREFIX, ""),
        "preserve_title_transliterated": title.title_transliterated,
        "preserve_title_english": title.title_english,
    })
    return out


def coverage_fields(first_date: str = "", first_volume: str = "", first_issue: str = "", last_date: str = "",
                    last_volume: str = "", last_issue: str = "", embargo_info: str = "",
                    coverage_depth: str = "") -> dict[str, str]:
    return {"date_first_issue_online": first_date[:DATE_TEXT], "num_first_vol_online": first_volume,
            "num_first_issue_online": first_issue, "date_last_issue_online": last_date[:DATE_TEXT],
            "num_last_vol_online": last_volume, "num_last_issue_online": last_issue, "embargo_info": embargo_info,
            "coverage_depth": coverage_depth}
