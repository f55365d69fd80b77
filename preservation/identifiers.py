"""Identifiers of titles and items: ISSN, ISBN, the Chinese CN serial number, DOI and publisher title ids.

Each ``parse_*`` function takes outside text and either returns the one
normalised form the catalog stores, or raises
:class:`~preservation.errors.InvalidIdentifier` (E115, HTTP 400) saying why.
Nothing here guesses: a wrong check digit is refused, never "corrected".

Decisions, each tested in ``tests/titles/test_identifiers.py``:

* **Surrounding whitespace** is stripped; whitespace inside is refused except
  where the form allows it (an ISBN's group separators, the space after
  ``CN``).
* **Full-width forms** (U+FF01–U+FF5E and the ideographic space U+3000, what a
  Chinese input method types: ``１０００－３２９０``) are read as their ASCII
  counterparts.  Every other non-ASCII character (Arabic-Indic or Devanagari
  digits, circled digits, en dashes …) is refused: Python's ``isdigit`` would
  take them, the standards do not.
* **Lower-case** ``x`` as the check character of an ISSN or ISBN-10 is
  accepted and stored upper-case; a CN number's class letters are stored
  upper-case; a DOI is stored lower-case (DOIs are case-insensitive, and the
  catalog's unique index compares them exactly).

Stored forms: ISSN ``1000-3290``; ISBN the 13 digits, an ISBN-10 converted to
its ``978`` ISBN-13; CN ``11-1958/O4`` (:func:`format_cn` adds the ``CN``
prefix for people); DOI ``10.7498/aps.68.20190001``; DOI prefix ``10.7498``.

This module imports only the foundation (errors, text): every layer may use it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from preservation.errors import InvalidIdentifier, InvalidText
from preservation.text import check_xml_text

ISSN = "issn"
ISBN = "isbn"
CN = "cn"
DOI = "doi"
DOI_PREFIX = "doi_prefix"
PUBLISHER_ID = "publisher"

# The schemes a title's identifiers are stored under (title_identifiers.scheme), normalised as parsed here
ID_ISSN_PRINT = "issn_print"  # 1234-567X
ID_ISSN_ONLINE = "issn_online"
ID_ISBN_PRINT = "isbn_print"  # 13 digits, no hyphens (an ISBN-10 is stored as its ISBN-13)
ID_ISBN_ONLINE = "isbn_online"
ID_CN = "cn"  # the Chinese domestic serial number, CN 11-1958/O4 stored as 11-1958/O4
ID_DOI_PREFIX = "doi_prefix"  # 10.7498
ID_PUBLISHER = "publisher"  # the publisher's own title id (KBART title_id)
ID_SCHEMES = (ID_ISSN_PRINT, ID_ISSN_ONLINE, ID_ISBN_PRINT, ID_ISBN_ONLINE, ID_CN, ID_DOI_PREFIX, ID_PUBLISHER)

MAX_INPUT = 300  # no identifier form is longer; longer input is refused before any pattern runs
MAX_DOI = 300  # the catalog's items.doi column
MAX_PUBLISHER_ID = 200  # the catalog's title_identifiers.value column

# The full-width ASCII variants and the ideographic space, read as ASCII.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_ISSN = re.compile(r"([0-9]{4})-?([0-9]{3})([0-9X])")
_ISSN_STORED = re.compile(r"[0-9]{4}-[0-9]{3}[0-9X]")
_ISBN_PREFIX = re.compile(r"ISBN(?:-1[03])?:?\s?", re.IGNORECASE)
_ISBN_BODY = re.compile(r"[0-9](?:[- ]?[0-9]){8}[- ]?[0-9X]|[0-9](?:[- ]?[0-9]){12}")
# Chinese Library Classification main classes (no L, M, W, Y); T has two-letter subclasses.
_CLC = r"(?:[A-KNOPQRSUVXZ]|T[BDEFGHJKLMNPQSUV]?)(?:[0-9]{1,3}(?:\.[0-9]{1,3})?)?"
_CN = re.compile(rf"(?:CN ?)?([0-9]{{2}})-([0-9]{{4}})/({_CLC})")
# GB/T 2260 province-level codes: the region part of a CN serial number.
CN_REGIONS = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
                        50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82})
_DOI_URL = re.compile(r"(?:https?://(?:dx\.)?doi\.org/|doi:\s?)", re.IGNORECASE)
_DOI_PREFIX = re.compile(r"10\.[0-9]{4,9}(?:\.[0-9]{1,9})*")
_DOI = re.compile(rf"({_DOI_PREFIX.pattern})/(\S+)")


def _refuse(scheme: str, value: str, reason: str) -> InvalidIdentifier:
    # ascii() escapes every control and non-ASCII character: the message is safe on any terminal or log
    shown = ascii(value[:60]) + ("…" if len(value) > 60 else "")
    return InvalidIdentifier(f"{_NAMES[scheme]} {shown}: {reason}", scheme=scheme, reason=reason)


_NAMES = {ISSN: "ISSN", ISBN: "ISBN", CN: "CN serial number", DOI: "DOI", DOI_PREFIX: "DOI prefix",
          PUBLISHER_ID: "publisher title id"}


def _prepare(scheme: str, value: object) -> str:
    """Outside text, bounded, with full-width forms read as ASCII and surrounding whitespace gone."""
    if not isinstance(value, str):
        raise _refuse(scheme, repr(value), "not text")
    if len(value) > MAX_INPUT:
        raise _refuse(scheme, value, f"longer than {MAX_INPUT} characters")
    try:
        check_xml_text(value, _NAMES[scheme])
    except InvalidText as e:
        raise _refuse(scheme, value, "contains characters XML cannot carry") from e
    text = value.translate(_FULL_WIDTH).strip(" \t\r\n")
    if not text:
        raise _refuse(scheme, value, "empty")
    return text


def _ascii_only(scheme: str, value: str, text: str) -> None:
    if not text.isascii():
        raise _refuse(scheme, value, "contains characters other than ASCII letters, digits and separators")


def issn_check_digit(first_seven: str) -> str:
    """The ISSN check character (ISO 3297: weights 8..2, mod 11, 10 is X) of seven ASCII digits."""
    d = first_seven.encode("ascii")  # the digits' codes: 48 + the digit, hence the 48 × (8 + 7 + … + 2) taken off
    remainder = (8 * d[0] + 7 * d[1] + 6 * d[2] + 5 * d[3] + 4 * d[4] + 3 * d[5] + 2 * d[6] - 1680) % 11
    check = (11 - remainder) % 11
    return "X" if check == 10 else str(check)


def parse_issn(value: str) -> str:
    """The ISSN as ``NNNN-NNNC`` (check character upper-case).

    Accepts it with or without the hyphen, an ``ISSN`` prefix, full-width
    forms and a lower-case ``x``.  Raises :class:`InvalidIdentifier` on any
    other form or a wrong check digit.
    """
    if isinstance(value, str) and _ISSN_STORED.fullmatch(value):  # the stored form already: only the check digit
        if value[8] == issn_check_digit(value[:4] + value[5:8]):
            return value
        raise _refuse(ISSN, value, f"wrong check digit (expected {issn_check_digit(value[:4] + value[5:8])})")
    text = _prepare(ISSN, value)
    _ascii_only(ISSN, value, text)
    text = re.sub(r"^ISSN:?\s?", "", text, flags=re.IGNORECASE).upper()
    match = _ISSN.fullmatch(text)
    if not match:
        raise _refuse(ISSN, value, "not of the form NNNN-NNNC (8 characters, the last a digit or X)")
    first_seven = match.group(1) + match.group(2)
    expected = issn_check_digit(first_seven)
    if match.group(3) != expected:
        raise _refuse(ISSN, value, f"wrong check digit (expected {expected})")
    return f"{match.group(1)}-{match.group(2)}{match.group(3)}"


def isbn10_check_digit(first_nine: str) -> str:
    remainder = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True)) % 11
    check = (11 - remainder) % 11
    return "X" if check == 10 else str(check)


def isbn13_check_digit(first_twelve: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def parse_isbn(value: str) -> str:
    """The ISBN as its 13 digits; an ISBN-10 becomes its ``978`` ISBN-13.

    Accepts hyphens or single spaces between digits, an ``ISBN``/``ISBN-13:``
    prefix, full-width forms and a lower-case ``x``.  Raises
    :class:`InvalidIdentifier` on a wrong length, a wrong check digit, or an
    ISBN-13 that starts with neither 978 nor 979.
    """
    text = _prepare(ISBN, value)
    _ascii_only(ISBN, value, text)
    text = _ISBN_PREFIX.sub("", text, count=1) if _ISBN_PREFIX.match(text) else text
    text = text.upper()
    if not _ISBN_BODY.fullmatch(text):
        raise _refuse(ISBN, value, "not 10 or 13 digits (the 10th may be X), separated only by single hyphens or spaces")
    digits = text.replace("-", "").replace(" ", "")
    if len(digits) == 10:
        expected = isbn10_check_digit(digits[:9])
        if digits[9] != expected:
            raise _refuse(ISBN, value, f"wrong ISBN-10 check digit (expected {expected})")
        body = "978" + digits[:9]
        return body + isbn13_check_digit(body)
    if digits[:3] not in ("978", "979"):
        raise _refuse(ISBN, value, "an ISBN-13 starts with 978 or 979")
    expected = isbn13_check_digit(digits[:12])
    if digits[12] != expected:
        raise _refuse(ISBN, value, f"wrong ISBN-13 check digit (expected {expected})")
    return digits


def parse_cn(value: str) -> str:
    """The Chinese domestic serial number (国内统一连续出版物号) as ``RR-NNNN/CLASS``, e.g. ``11-1958/O4``.

    ``RR`` is a GB/T 2260 province-level region code, ``NNNN`` the serial
    (not 0000), ``CLASS`` a Chinese Library Classification class (``O4``,
    ``TP3``, ``R``).  Accepts it with or without the ``CN`` prefix, in either
    case, and full-width forms.  Raises :class:`InvalidIdentifier` otherwise
    (``CN 11-1958/04``, a zero for the letter O, is refused).
    """
    text = _prepare(CN, value)
    _ascii_only(CN, value, text)
    match = _CN.fullmatch(text.upper())
    if not match:
        raise _refuse(CN, value, "not of the form CN RR-NNNN/CLASS (e.g. CN 11-1958/O4)")
    region, serial, klass = match.groups()
    if int(region) not in CN_REGIONS:
        raise _refuse(CN, value, f"{region} is not a province-level region code (GB/T 2260)")
    if serial == "0000":
        raise _refuse(CN, value, "serial 0000 is never assigned")
    return f"{region}-{serial}/{klass}"


def format_cn(stored: str) -> str:
    """A stored CN serial number as people write it: ``CN 11-1958/O4``."""
    return f"CN {stored}"


def _doi_text(scheme: str, value: str) -> str:
    text = _prepare(scheme, value)
    url = _DOI_URL.match(text)
    if url:
        text = text[url.end():]
        if url.group().lower().startswith("http"):
            try:
                text = unquote(text, errors="strict")
            except UnicodeDecodeError as e:
                raise _refuse(scheme, value, "its percent-encoding is not UTF-8") from e
            try:
                check_xml_text(text, _NAMES[scheme])
            except InvalidText as e:
                raise _refuse(scheme, value, "contains characters XML cannot carry") from e
    return text


def parse_doi(value: str) -> str:
    """The DOI in lower case, without ``https://doi.org/`` or ``doi:``: ``10.7498/aps.68.20190001``.

    Raises :class:`InvalidIdentifier` unless it is ``10.`` + a registrant
    code of digits (dot-separated parts allowed) + ``/`` + a suffix of
    printable characters without spaces, at most 300 characters; characters
    XML cannot carry and controls (also percent-encoded in a URL) are refused.
    """
    text = _doi_text(DOI, value)
    match = _DOI.fullmatch(text)
    if not match:
        raise _refuse(DOI, value, "not of the form 10.NNNN/suffix")
    if not text.isprintable():
        raise _refuse(DOI, value, "contains control or invisible characters")
    if len(text) > MAX_DOI:
        raise _refuse(DOI, value, f"longer than {MAX_DOI} characters")
    return text.lower()


def parse_doi_prefix(value: str) -> str:
    """The DOI prefix, ``10.7498``; a whole DOI or a trailing ``/`` is not a prefix.

    Accepts ``doi:`` and ``https://doi.org/`` forms.  Raises
    :class:`InvalidIdentifier` unless it is ``10.`` + 4-9 digits (dot-separated
    sub-parts allowed), an optional final ``/`` aside.
    """
    text = _doi_text(DOI_PREFIX, value)
    if text.endswith("/"):
        text = text[:-1]
    if not _DOI_PREFIX.fullmatch(text):
        raise _refuse(DOI_PREFIX, value, "not of the form 10.NNNN (a registrant code of 4-9 digits)")
    return text


def doi_prefix_of(doi: str) -> str:
    """The prefix of a parsed DOI (``10.7498`` of ``10.7498/aps.68.20190001``)."""
    return doi.split("/", 1)[0]


def parse_publisher_id(value: str) -> str:
    """A publisher's own title id (KBART ``title_id``): 1-200 printable characters, kept as given.

    Only surrounding spaces are stripped.  Raises :class:`InvalidIdentifier`
    on controls, tabs, line breaks, format or invisible characters (what
    ``str.isprintable`` refuses) and on text XML cannot carry.
    """
    if isinstance(value, str) and 0 < len(value) <= MAX_PUBLISHER_ID and value.isprintable() \
            and value[0] != " " and value[-1] != " ":
        return value  # the common case, decided at once: nothing XML cannot carry is printable
    if not isinstance(value, str):
        raise _refuse(PUBLISHER_ID, repr(value), "not text")
    if len(value) > MAX_INPUT:
        raise _refuse(PUBLISHER_ID, value, f"longer than {MAX_INPUT} characters")
    try:
        check_xml_text(value, _NAMES[PUBLISHER_ID])
    except InvalidText as e:
        raise _refuse(PUBLISHER_ID, value, "contains characters XML cannot carry") from e
    text = value.strip(" ")
    if not text:
        raise _refuse(PUBLISHER_ID, value, "empty")
    if not text.isprintable():
        raise _refuse(PUBLISHER_ID, value, "contains control, line-break or invisible characters")
    if len(text) > MAX_PUBLISHER_ID:
        raise _refuse(PUBLISHER_ID, value, f"longer than {MAX_PUBLISHER_ID} characters")
    return text


PARSERS = {ISSN: parse_issn, ISBN: parse_isbn, CN: parse_cn, DOI: parse_doi, DOI_PREFIX: parse_doi_prefix,
           PUBLISHER_ID: parse_publisher_id}


def parse(scheme: str, value: str) -> str:
    """``PARSERS[scheme](value)``; raises :class:`InvalidIdentifier` for an unknown scheme too."""
    parser = PARSERS.get(scheme)
    if parser is None:
        raise InvalidIdentifier(f"unknown identifier scheme {ascii(scheme[:40])}", scheme=str(scheme)[:40],
                                reason="unknown scheme")
    return parser(value)


def recognise(text: str) -> tuple[str, str] | None:
    """``(scheme, normalised)`` when ``text`` is a valid DOI, ISSN, ISBN or CN number, else ``None``.

    For a search box: ``1000-3290`` is an ISSN, ``CN 11-1958/O4`` a CN number.
    Only valid identifiers are recognised (a wrong check digit gives ``None``).
    An 8-character value that is a valid ISSN is an ISSN even if it could
    also be read otherwise.
    """
    for scheme in (DOI, ISSN, ISBN, CN):
        try:
            return scheme, PARSERS[scheme](text)
        except InvalidIdentifier:
            continue
    return None
