"""Titles of a collection: found by any identifier, saved without duplicates, shown with what is preserved.

A title is **found** within its collection by any of its identifying
identifiers: an ISSN (print or online, either matches either), an ISBN, the
CN serial number, or the publisher's title id.  A DOI prefix is shared by all
of a publisher's titles, so it never identifies one.  Saving a title whose
identifiers match two titles of the collection is refused (E112): the
catalog would have to guess which one is meant.

**What is preserved** of a title is derived, never stored: the items of the
title (articles, chapters, books found in package metadata at ingest) whose
package is ``preserved`` or ``degraded``.  A degraded package still has at
least one verified copy and is being repaired, so its content is held; a
package that is still ``replicating`` is not preserved yet (invariant 1),
and a ``damaged`` or ``deaccessioned`` one holds nothing.  Titles link to
packages through these items.

:func:`entitled` is the access rule for one library and one item (or a
title at a date, volume and issue), from the library's own KBART file
(title entitlements) and from its collection × year entitlements.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from preservation import identifiers as ids
from preservation.access.accounts import get_library
from preservation.access.rights import MAX_YEAR, MIN_YEAR
from preservation.catalog.access_models import Entitlement
from preservation.catalog.library_models import (
    TITLE_KINDS,
    ExpectedCoverage,
    Item,
    Title,
    TitleEntitlement,
    TitleIdentifier,
)
from preservation.catalog.models import PACKAGE_DEGRADED, PACKAGE_PRESERVED, Collection, Package
from preservation.collection import get_collection
from preservation.errors import InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.text import check_xml_text

# The package states whose items count as preserved holdings (see the module docstring).
PRESERVED_STATES = (PACKAGE_PRESERVED, PACKAGE_DEGRADED)

# How each scheme is parsed, and the family it is matched in (None: never identifies a title).
PARSER_OF = {ids.ID_ISSN_PRINT: ids.parse_issn, ids.ID_ISSN_ONLINE: ids.parse_issn, ids.ID_ISBN_PRINT: ids.parse_isbn,
             ids.ID_ISBN_ONLINE: ids.parse_isbn, ids.ID_CN: ids.parse_cn, ids.ID_DOI_PREFIX: ids.parse_doi_prefix,
             ids.ID_PUBLISHER: ids.parse_publisher_id}
MATCH_FAMILY = {ids.ID_ISSN_PRINT: "issn", ids.ID_ISSN_ONLINE: "issn", ids.ID_ISBN_PRINT: "isbn",
                ids.ID_ISBN_ONLINE: "isbn", ids.ID_CN: "cn", ids.ID_PUBLISHER: "publisher", ids.ID_DOI_PREFIX: None}
SCHEMES_OF_FAMILY = {family: tuple(s for s, f in MATCH_FAMILY.items() if f == family)
                     for family in ("issn", "isbn", "cn", "publisher")}

MAX_TITLE = 1000
MAX_PUBLISHER = 300
MAX_PART = 32  # a volume or an issue
MAX_LIST = 1000

_PARTIAL_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
_LEADING_NUMBER = re.compile(r"[0-9]{1,9}")


# --- dates, volumes and issues --------------------------------------------------------


def parse_partial_date(text: str, what: str = "date") -> str:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, a real calendar date with the year in 1500-2100.

    Returns the text unchanged; raises InvalidRequest (E112) otherwise.
    """
    match = _PARTIAL_DATE.fullmatch(text)
    if not match:
        raise InvalidRequest(f"{what} {ascii(text[:40])} is not YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = match.groups()
    if not MIN_YEAR <= int(year) <= MAX_YEAR:
        raise InvalidRequest(f"{what} {text}: the year is not between {MIN_YEAR} and {MAX_YEAR}")
    if month is not None and not 1 <= int(month) <= 12:
        raise InvalidRequest(f"{what} {text}: there is no month {month}")
    if day is not None and not 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]:
        raise InvalidRequest(f"{what} {text}: there is no day {day} in that month")
    return text


def date_bounds(text: str) -> tuple[date, date]:
    """The first and last day a partial date (already parsed) can mean: ``2019-05`` → May 1st and 31st."""
    parts = [int(p) for p in text.split("-")]
    year = parts[0]
    if len(parts) == 1:
        return date(year, 1, 1), date(year, 12, 31)
    if len(parts) == 2:
        return date(year, parts[1], 1), date(year, parts[1], calendar.monthrange(year, parts[1])[1])
    return date(*parts), date(*parts)


def part_number(text: str) -> int | None:
    """The number a volume or issue starts with (``68`` → 68, ``3-4`` → 3, ``S1`` → None)."""
    match = _LEADING_NUMBER.match(text or "")
    return int(match.group()) if match else None


def part_key(text: str) -> tuple:
    """Sort key for volumes and issues: numbers in numeric order, then the rest as text."""
    number = part_number(text)
    return (0, number, text) if number is not None else (1, 0, text or "")


# --- saving and finding titles ----------------------------------------------------------


@dataclass
class TitleData:
    """What a title is, checked: identifiers are ``(scheme, normalised value)`` pairs."""

    kind: str
    title: str
    title_transliterated: str = ""
    title_english: str = ""
    publisher: str = ""
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    kbart: dict[str, Any] = field(default_factory=dict)

    def check(self) -> "TitleData":
        """Raises InvalidRequest / InvalidText / InvalidIdentifier on anything a title cannot hold."""
        if self.kind not in TITLE_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(TITLE_KINDS)}")
        if not self.title.strip():
            raise InvalidRequest("a title needs its title")
        for name, limit in (("title", MAX_TITLE), ("title_transliterated", MAX_TITLE),
                            ("title_english", MAX_TITLE), ("publisher", MAX_PUBLISHER)):
            check_xml_text(getattr(self, name), name, max_length=limit)
        self.identifiers = normalise_identifiers(self.identifiers)
        return self


def normalise_identifiers(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each ``(scheme, value)`` parsed to its stored form, repeats dropped, order kept.

    Raises InvalidRequest for an unknown scheme, InvalidIdentifier for a bad value.
    """
    out: dict[tuple[str, str], None] = {}
    for scheme, value in pairs:
        parser = PARSER_OF.get(scheme)
        if parser is None:
            raise InvalidRequest(f"unknown identifier scheme {ascii(str(scheme)[:40])} "
                                 f"(one of {', '.join(ids.ID_SCHEMES)})")
        out.setdefault((scheme, parser(value)), None)
    return list(out)


def match_keys(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The ``(family, value)`` keys by which these identifiers find a title."""
    return {(MATCH_FAMILY[s], v) for s, v in pairs if MATCH_FAMILY.get(s)}


def find_titles(session: Session, collection_id: int, pairs: Iterable[tuple[str, str]]) -> list[Title]:
    """The titles of the collection that hold any identifying identifier of ``pairs`` (normalised)."""
    keys = match_keys(pairs)
    if not keys:
        return []
    wanted = [(scheme, value) for family, value in keys for scheme in SCHEMES_OF_FAMILY[family]]
    # by id through a subquery: DISTINCT over titles' JSON column is refused by PostgreSQL
    holders = select(TitleIdentifier.title_id).where(tuple_(TitleIdentifier.scheme, TitleIdentifier.value).in_(wanted))
    return list(session.scalars(
        select(Title).where(Title.collection_id == collection_id, Title.id.in_(holders)).order_by(Title.id)))


def save_title(session: Session, collection_id: int, data: TitleData) -> tuple[Title, bool]:
    """Create the title, or update the one its identifiers find; returns ``(title, created)``.

    New identifiers are added to a found title, none is removed.  Raises
    InvalidRequest when the identifiers find two titles, or name none that
    identifies a title.
    """
    data.check()
    if not match_keys(data.identifiers):
        raise InvalidRequest("a title needs an ISSN, ISBN, CN serial number or publisher title id to be found by")
    found = find_titles(session, collection_id, data.identifiers)
    if len(found) > 1:
        raise InvalidRequest("these identifiers belong to " + " and ".join(f"title {t.id}" for t in found)
                             + ": merge or correct them first")
    created = not found
    title = Title(collection_id=collection_id, kbart={}) if created else found[0]
    title.kind, title.title = data.kind, data.title
    title.title_transliterated, title.title_english = data.title_transliterated, data.title_english
    title.publisher = data.publisher
    if data.kbart:
        title.kbart = dict(data.kbart)
    if created:
        session.add(title)
        session.flush()
    have = {(i.scheme, i.value) for i in title.identifiers}
    for scheme, value in data.identifiers:
        if (scheme, value) not in have:
            title.identifiers.append(TitleIdentifier(scheme=scheme, value=value))
    session.flush()
    return title, created


def find_or_create_title(session: Session, collection_id: int, kind: str, title: str,
                         identifiers: Iterable[tuple[str, str]], publisher: str = "") -> Title:
    """The title of the collection that any of ``identifiers`` finds, else a new one (for metadata at ingest).

    A found title is not changed: what a publisher's KBART list or an
    operator said of it outranks one article's metadata.  When the
    identifiers find several titles, the oldest is used.  Raises
    InvalidIdentifier, InvalidText or InvalidRequest (see :meth:`TitleData.check`).
    """
    pairs = normalise_identifiers(identifiers)
    found = find_titles(session, collection_id, pairs)
    if found:
        return found[0]
    return save_title(session, collection_id, TitleData(kind=kind, title=title, publisher=publisher,
                                                        identifiers=pairs))[0]


def add_title(repo: Repository, collection_key: str, data: TitleData) -> dict[str, Any]:
    """:func:`save_title` in its own transaction; the title as :func:`title_dict` shows it."""
    with repo.catalog.session() as s:
        collection = get_collection(s, collection_key)
        title, created = save_title(s, collection.id, data)
        return {"created": created, **title_dict(title)}


def get_title(session: Session, ref: str | int, collection_key: str | None = None) -> Title:
    """A title by its catalog id or by any identifier (ISSN, ISBN, CN number, publisher title id).

    Raises NotFound, or InvalidRequest when the identifier names titles of
    several collections and no collection is given.
    """
    text = str(ref).strip()
    collection_id = get_collection(session, collection_key).id if collection_key else None
    if text.isascii() and text.isdigit() and len(text) <= 9 and not (len(text) == 8 and _is_issn(text)):
        title = session.get(Title, int(text))
        if title is None or (collection_id is not None and title.collection_id != collection_id):
            raise NotFound(f"no title with id {text}")
        return title
    recognised = ids.recognise(text)
    if recognised is not None and recognised[0] in ("issn", "isbn", "cn"):
        family, value = recognised
    else:
        family, value = "publisher", ids.parse_publisher_id(text)
    holders = select(TitleIdentifier.title_id).where(TitleIdentifier.scheme.in_(SCHEMES_OF_FAMILY[family]),
                                                      TitleIdentifier.value == value)
    stmt = select(Title).where(Title.id.in_(holders)).order_by(Title.id)
    if collection_id is not None:
        stmt = stmt.where(Title.collection_id == collection_id)
    found = list(session.scalars(stmt))
    if not found:
        raise NotFound(f"no title has the {family} identifier {value}" + (f" in {collection_key}" if collection_key else ""))
    if len(found) > 1:
        keys = sorted({t.collection.key for t in found})
        raise InvalidRequest(f"{value} names {len(found)} titles (collections {', '.join(keys)}): give --collection")
    return found[0]


def _is_issn(text: str) -> bool:
    try:
        ids.parse_issn(text)
    except InvalidRequest:
        return False
    return True


# --- what is preserved --------------------------------------------------------------------


@dataclass(frozen=True)
class HeldIssue:
    """One issue (year, volume, issue) of a title with preserved items in one package."""

    title_id: int
    year: int | None
    volume: str
    issue: str
    first_date: str
    last_date: str
    items: int
    package_id: str

    @property
    def key(self) -> tuple:
        return (self.year if self.year is not None else -1, part_key(self.volume), part_key(self.issue))


def held_issues(session: Session, title_ids: Iterable[int] | None = None, *,
                collection_id: int | None = None) -> dict[int, list[HeldIssue]]:
    """Preserved items grouped by title, year, volume, issue and package, sorted by issue.

    Give ``title_ids`` or ``collection_id`` (all its titles).  One grouped
    query: its rows are issues, never items.
    """
    stmt = (select(Item.title_id, Item.year, Item.volume, Item.issue, Item.package_id,
                   func.min(Item.published), func.max(Item.published), func.count())
            .join(Package, Package.id == Item.package_id)
            .where(Package.state.in_(PRESERVED_STATES), Item.title_id.is_not(None))
            .group_by(Item.title_id, Item.year, Item.volume, Item.issue, Item.package_id))
    if title_ids is not None:
        stmt = stmt.where(Item.title_id.in_(list(title_ids)))
    if collection_id is not None:
        stmt = stmt.join(Title, Title.id == Item.title_id).where(Title.collection_id == collection_id)
    out: dict[int, list[HeldIssue]] = {}
    for title_id, year, volume, issue, package_id, first, last, count in session.execute(stmt):
        first = first or (str(year) if year else "")
        last = last or (str(year) if year else "")
        out.setdefault(title_id, []).append(HeldIssue(title_id, year, volume or "", issue or "", first, last,
                                                      count, package_id))
    for issues in out.values():
        issues.sort(key=lambda h: (h.key, h.package_id))
    return out


def _earliest(dates: Iterable[str]) -> str:
    present = [d for d in dates if d]
    return min(present, key=lambda d: date_bounds(d)[0]) if present else ""


def _latest(dates: Iterable[str]) -> str:
    present = [d for d in dates if d]
    return max(present, key=lambda d: date_bounds(d)[1]) if present else ""


def coverage_of(issues: list[HeldIssue]) -> dict[str, Any]:
    """First and last date, volume and issue, the years and the items of a title's held issues."""
    if not issues:
        return {"first_date": "", "first_volume": "", "first_issue": "", "last_date": "", "last_volume": "",
                "last_issue": "", "years": [], "volumes": 0, "issues": 0, "items": 0, "packages": 0}
    first, last = issues[0], issues[-1]
    return {
        "first_date": _earliest(h.first_date for h in issues if h.key[:1] == first.key[:1]),
        "first_volume": first.volume, "first_issue": first.issue,
        "last_date": _latest(h.last_date for h in issues if h.key[:1] == last.key[:1]),
        "last_volume": last.volume, "last_issue": last.issue,
        "years": sorted({h.year for h in issues if h.year is not None}),
        "volumes": len({h.volume for h in issues if h.volume}),
        "issues": len({(h.year, h.volume, h.issue) for h in issues}),
        "items": sum(h.items for h in issues),
        "packages": len({h.package_id for h in issues}),
    }


# --- showing titles -----------------------------------------------------------------------


def identifier_dict(title: Title) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in title.identifiers:
        out.setdefault(i.scheme, []).append(ids.format_cn(i.value) if i.scheme == ids.ID_CN else i.value)
    return out


def expected_dict(c: ExpectedCoverage) -> dict[str, Any]:
    return {"first_date": c.first_date, "first_volume": c.first_volume, "first_issue": c.first_issue,
            "last_date": c.last_date, "last_volume": c.last_volume, "last_issue": c.last_issue,
            "embargo_info": c.embargo_info, "coverage_depth": c.coverage_depth, "line": c.line_no}


def title_dict(title: Title, issues: list[HeldIssue] | None = None) -> dict[str, Any]:
    out = {"id": title.id, "collection": title.collection.key, "kind": title.kind, "title": title.title,
           "title_transliterated": title.title_transliterated, "title_english": title.title_english,
           "publisher": title.publisher, "identifiers": identifier_dict(title),
           "expected": [expected_dict(c) for c in title.coverage]}
    if issues is not None:
        out["preserved"] = coverage_of(issues)
    return out


def list_titles(repo: Repository, *, collection_key: str | None = None, offset: int = 0,
                limit: int = 100) -> dict[str, Any]:
    """One page of titles (by collection, title), each with its preserved coverage."""
    if offset < 0 or not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"offset must be 0 or more and limit 1-{MAX_LIST}")
    with repo.catalog.session() as s:
        stmt = select(Title).join(Collection)
        if collection_key:
            stmt = stmt.where(Title.collection_id == get_collection(s, collection_key).id)
        total = s.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
        titles = list(s.scalars(stmt.order_by(Collection.key, Title.title, Title.id).offset(offset).limit(limit)))
        held = held_issues(s, [t.id for t in titles]) if titles else {}
        return {"total": total, "offset": offset, "limit": limit,
                "titles": [title_dict(t, held.get(t.id, [])) for t in titles]}


def show_title(repo: Repository, ref: str, *, collection_key: str | None = None) -> dict[str, Any]:
    """A title with its expected and preserved coverage, its issues and the packages that hold them."""
    with repo.catalog.session() as s:
        title = get_title(s, ref, collection_key)
        issues = held_issues(s, [title.id]).get(title.id, [])
        out = title_dict(title, issues)
        out["kbart"] = dict(title.kbart or {})
        out["issues"] = [{"year": h.year, "volume": h.volume, "issue": h.issue, "first_date": h.first_date,
                          "last_date": h.last_date, "items": h.items, "package": h.package_id} for h in issues]
        packages = {}
        for pkg_id, name, state, count in s.execute(
                select(Package.id, Package.name, Package.state, func.count(Item.id))
                .join(Item, Item.package_id == Package.id).where(Item.title_id == title.id)
                .group_by(Package.id, Package.name, Package.state).order_by(Package.name, Package.id)):
            packages[pkg_id] = {"id": pkg_id, "name": name, "state": state, "items": count,
                                "counts_as_preserved": state in PRESERVED_STATES}
        out["packages"] = list(packages.values())
        return out


# --- entitlements by title ----------------------------------------------------------------


def _within(bounds: tuple[date, date], first: str, last: str) -> bool:
    if first and bounds[0] < date_bounds(first)[0]:
        return False
    return not (last and bounds[1] > date_bounds(last)[1])


def _volume_within(volume: int, issue: int | None, first_vol: str, first_issue: str, last_vol: str,
                   last_issue: str) -> bool | None:
    low, high = part_number(first_vol), part_number(last_vol)
    if low is None and high is None:
        return None
    if low is not None and (volume < low or (volume == low and issue is not None
                                             and part_number(first_issue) is not None
                                             and issue < part_number(first_issue))):
        return False
    return not (high is not None and (volume > high or (volume == high and issue is not None
                                                         and part_number(last_issue) is not None
                                                         and issue > part_number(last_issue))))


def range_covers(bound: Any, when: str = "", volume: str = "", issue: str = "") -> bool:
    """Whether a range (first/last date, volume and issue attributes) covers an item at ``when``/``volume``.

    Conservative: every bound both sides name must hold, and at least one
    must be checkable, unless the range names no bound at all (the whole
    title).  An item dated ``2019`` is not within a range ending ``2019-06``.
    """
    dated = bool(bound.first_date or bound.last_date)
    numbered = bool(part_number(bound.first_volume) is not None or part_number(bound.last_volume) is not None)
    if not dated and not numbered:
        return True
    checked = False
    if dated and when:
        if not _within(date_bounds(when), bound.first_date, bound.last_date):
            return False
        checked = True
    number = part_number(volume)
    if numbered and number is not None:
        verdict = _volume_within(number, part_number(issue), bound.first_volume, bound.first_issue,
                                 bound.last_volume, bound.last_issue)
        if verdict is False:
            return False
        checked = checked or verdict is True
    return checked


def item_when(item: Item) -> str:
    """The item's date as partial ISO text (``published``, else its year), "" when it has none."""
    if item.published:
        try:
            return parse_partial_date(item.published)
        except InvalidRequest:
            pass
    return str(item.year) if item.year and MIN_YEAR <= item.year <= MAX_YEAR else ""


def entitled(session: Session, library_id: int, target: Item | Title, *, when: str = "", volume: str = "",
             issue: str = "") -> bool:
    """Whether the library is entitled to ``target``: an item, or a title at ``when``/``volume``/``issue``.

    Entitled means one of the library's title entitlements (its own KBART
    file) covers it (:func:`range_covers`), or one of its collection × year
    entitlements covers its year.  For an item, its title, date (``published``,
    else ``year``), volume and issue are used; an item of no title is covered
    by collection × year entitlements only.  For a title with no ``when`` and
    no ``volume``: whether the library holds any entitlement to the title.
    ``when`` is a partial ISO date (``2019``, ``2019-05``); raises
    InvalidRequest when it is not one.

    Entitlement is not a read right: the access policy (``access.rights``)
    decides what an entitlement allows.
    """
    if isinstance(target, Item):
        title_id, collection_id = target.title_id, None
        when, volume, issue = item_when(target), target.volume or "", target.issue or ""
        if title_id is None:
            package = session.get(Package, target.package_id)
            collection_id = package.collection_id if package is not None else None
    else:
        title_id, collection_id = target.id, target.collection_id
        when = parse_partial_date(when, "when") if when else ""
    if title_id is not None:
        rows = session.scalars(select(TitleEntitlement).where(
            TitleEntitlement.library_id == library_id, TitleEntitlement.title_id == title_id)).all()
        if isinstance(target, Title) and not when and not volume and rows:
            return True
        if any(range_covers(r, when, volume, issue) for r in rows):
            return True
        if collection_id is None:
            collection_id = session.execute(select(Title.collection_id).where(Title.id == title_id)).scalar_one()
    if collection_id is None:
        return False
    years = session.execute(select(Entitlement.from_year, Entitlement.to_year).where(
        Entitlement.library_id == library_id, Entitlement.collection_id == collection_id)).all()
    if isinstance(target, Title) and not when and not volume:
        return bool(years)
    year = int(when[:4]) if when else None
    if year is None:
        return False
    return any(a <= year and date_bounds(when)[1].year <= b for a, b in years)


def title_entitlements(repo: Repository, library_code: str, *, collection_key: str | None = None
                       ) -> list[dict[str, Any]]:
    """A library's title entitlements (rows of its KBART file), by collection and title."""
    with repo.catalog.session() as s:
        library = get_library(s, library_code)
        stmt = (select(TitleEntitlement).join(Title).join(Collection)
                .where(TitleEntitlement.library_id == library.id)
                .order_by(Collection.key, Title.title, TitleEntitlement.first_date, TitleEntitlement.id))
        if collection_key:
            stmt = stmt.where(Title.collection_id == get_collection(s, collection_key).id)
        return [{"library": library.code, "collection": e.title.collection.key, "title_id": e.title_id,
                 "title": e.title.title, "first_date": e.first_date, "first_volume": e.first_volume,
                 "first_issue": e.first_issue, "last_date": e.last_date, "last_volume": e.last_volume,
                 "last_issue": e.last_issue, "line": e.line_no} for e in s.scalars(stmt)]


def identifier_index(session: Session, *, collection_id: int | None = None) -> dict[tuple[str, str], set[int]]:
    """``(family, value)`` → title ids, for every identifying identifier (of one collection, or all)."""
    stmt = select(TitleIdentifier.scheme, TitleIdentifier.value, TitleIdentifier.title_id)
    if collection_id is not None:
        stmt = stmt.join(Title).where(Title.collection_id == collection_id)
    index: dict[tuple[str, str], set[int]] = {}
    for scheme, value, title_id in session.execute(stmt):
        family = MATCH_FAMILY.get(scheme)
        if family:
            index.setdefault((family, value), set()).add(title_id)
    return index

