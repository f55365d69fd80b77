"""Who may read what: package years, entitlements, triggers, grants and the access policy.

Reading bytes needs an active grant for the reader's library that covers the
package, except in ``open`` collections.  Grants come from requests, which
the policy decides by the collection's access mode:

=========  ==========================================================
``open``   approved automatically
``trigger`` approved automatically once a trigger event is recorded for
           the collection (dated today or earlier); otherwise staff decide
``pca``    approved automatically for what the library's entitlements
           cover by year; anything else goes to staff
``dark``   never approved automatically; staff decide
=========  ==========================================================

A package's year is the first four-digit year in its bag-info
``Coverage-Year`` field, else ``Year`` (``preserve ingest --info Year=2019``),
else in its name (``journals-2019-q3``); a package with no year is never
covered by an entitlement, so post-cancellation requests for it go to staff.

Grants in library terms (a title, one issue, one item: see
``AccessGrant``) open the files of the items they cover and never a whole
package: :meth:`ReadRights.for_item`, and :func:`require_read` with the
path of the file asked for.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.access.reasons import Reason, word
from preservation.catalog.access_models import AccessGrant, Entitlement, TriggerEvent
from preservation.catalog.library_models import Item, ItemFile, TitleEntitlement
from preservation.catalog.models import Collection, Package, utcnow
from preservation.errors import AccessRefused, InvalidRequest

MODE_DARK = "dark"
MODE_TRIGGER = "trigger"
MODE_PCA = "pca"
MODE_OPEN = "open"

YEAR_FIELDS = ("coverage-year", "year")
_YEAR_RE = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d|2100)(?!\d)")
MIN_YEAR, MAX_YEAR = 1500, 2100


def _first_year(text: str) -> int | None:
    match = _YEAR_RE.search(text or "")
    return int(match.group(1)) if match else None


def package_year(package: Package) -> int | None:
    """The year a package's content covers (bag-info Coverage-Year / Year, else its name), or None."""
    info = {str(k).lower(): v for k, v in (package.bag_info or {}).items()}
    for name in YEAR_FIELDS:
        value = info.get(name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            year = _first_year(str(v)) if v is not None else None
            if year is not None:
                return year
    return _first_year(package.name)


@dataclass(frozen=True)
class YearRange:
    start: int
    end: int

    def covers(self, year: int | None) -> bool:
        return year is not None and self.start <= year <= self.end

    def __str__(self) -> str:
        return f"{self.start}-{self.end}" if self.start != self.end else str(self.start)


def entitled_ranges(session: Session, library_id: int, collection_id: int) -> list[YearRange]:
    rows = session.execute(
        select(Entitlement.from_year, Entitlement.to_year)
        .where(Entitlement.library_id == library_id, Entitlement.collection_id == collection_id)
        .order_by(Entitlement.from_year, Entitlement.to_year)
    ).all()
    return [YearRange(a, b) for a, b in rows]


def active_trigger(session: Session, collection_id: int, today: date | None = None) -> TriggerEvent | None:
    """The earliest trigger event of the collection that has happened by ``today``."""
    today = today or utcnow().date()
    return session.scalars(
        select(TriggerEvent)
        .where(TriggerEvent.collection_id == collection_id, TriggerEvent.occurred_on <= today)
        .order_by(TriggerEvent.occurred_on, TriggerEvent.id)
        .limit(1)
    ).first()


def active_grants(
    session: Session, library_id: int, collection_id: int, now: datetime | None = None
) -> list[AccessGrant]:
    now = now or utcnow()
    return list(session.scalars(
        select(AccessGrant).where(
            AccessGrant.library_id == library_id,
            AccessGrant.collection_id == collection_id,
            AccessGrant.revoked_at.is_(None),
            AccessGrant.expires_at > now,
        ).order_by(AccessGrant.expires_at.desc())
    ))


def grant_is_scoped(grant: AccessGrant) -> bool:
    """Whether the grant is in library terms (a title, an issue, an item), so opens items, not packages."""
    return grant.title_id is not None or grant.item_id is not None


def grant_scope(grant: AccessGrant) -> str:
    """``item``, ``issue``, ``volume`` (a title's volumes), ``title``, ``package`` or ``collection``."""
    if grant.item_id is not None:
        return "item"
    if grant.title_id is not None:
        if grant.volume is not None:
            return "issue"
        return "volume" if grant_volumes(grant) else "title"
    return "package" if grant.package_id is not None else "collection"


def grant_volumes(grant: Any) -> bool:
    """Whether a title grant is bounded by volume (and maybe issue)."""
    return bool((getattr(grant, "first_volume", None) or "").strip() or (getattr(grant, "last_volume", None) or "")
                .strip())


def grant_covers(grant: AccessGrant, package_id: str, year: int | None) -> bool:
    """Whether the grant opens the whole package (of that year); a grant in library terms never does."""
    if grant_is_scoped(grant):
        return False
    if grant.package_id is not None:
        return grant.package_id == package_id
    if grant.from_year is None and grant.to_year is None:
        return True
    return year is not None and (grant.from_year or MIN_YEAR) <= year <= (grant.to_year or MAX_YEAR)


def item_date(item: Item) -> str:
    """The item's date as ISO text (``published``, else its year), "" when it has none."""
    return item.published or (str(item.year) if item.year is not None else "")


def title_grant_covers(grant: Any, title_id: int | None, year: int | None, volume: str, issue: str,
                       dates: Iterable[str]) -> bool:
    """The one rule of what a grant of a title, of its volumes or of one of its issues opens: content of
    ``title_id`` of ``year``, ``volume`` and ``issue`` published at each of ``dates`` (an item: its date; a
    held issue: its first and last).

    One issue: that year, volume and issue exactly.  A title grant: within its years, then within its dates
    and volume bounds by :func:`preservation.titles.range_covers` — so a grant of volume 68 opens what is
    numbered volume 68 (any issue, or the issues its issue bounds name) and nothing unnumbered.
    """
    if grant.title_id is None or grant.title_id != title_id:
        return False
    if grant.volume is not None:  # one issue
        return year is not None and year == grant.from_year and volume == grant.volume and issue == (grant.issue or "")
    if grant.from_year is not None or grant.to_year is not None:
        if year is None or not (grant.from_year or MIN_YEAR) <= year <= (grant.to_year or MAX_YEAR):
            return False
    if grant.first_date or grant.last_date or grant_volumes(grant):
        bound = grant_bounds(grant)
        return all(_range_covers(bound, when, volume, issue) for when in dates)
    return True


def grant_covers_item(grant: AccessGrant, item: Item) -> bool:
    """Whether a grant in library terms covers the item (a package or collection grant: see grant_covers)."""
    if grant.item_id is not None:
        return grant.item_id == item.id
    return title_grant_covers(grant, item.title_id, item.year, item.volume or "", item.issue or "",
                              (_item_when(item),))


def grant_bounds(grant: AccessGrant) -> Any:
    """A title grant's dates and volume bounds as a range :func:`preservation.titles.range_covers` reads."""
    return SimpleNamespace(first_date=grant.first_date or "", last_date=grant.last_date or "",
                           first_volume=getattr(grant, "first_volume", None) or "",
                           first_issue=getattr(grant, "first_issue", None) or "",
                           last_volume=getattr(grant, "last_volume", None) or "",
                           last_issue=getattr(grant, "last_issue", None) or "")


def _range_covers(bound: Any, when: str, volume: str = "", issue: str = "") -> bool:
    """The one rule of what a title range covers: :func:`preservation.titles.range_covers`.

    ``when`` comes from the catalog (an item's ``published``): a date that is not a real partial ISO date
    is read as its year when that is one, else as no date at all, never as an error.
    """
    from preservation.titles import parse_partial_date, range_covers  # titles imports this module

    for text in (when, when[:4]):
        try:
            when = parse_partial_date(text) if text else ""
            break
        except InvalidRequest:
            when = ""
    return range_covers(bound, when, volume, issue)


def _item_when(item: Item) -> str:
    from preservation.titles import item_when

    return item_when(item)


@dataclass
class ReadRight:
    """Whether one library may read one package now, and on what ground."""

    allowed: bool
    reason: str  # a Reason (preservation.access.reasons): English text with its code
    grant_id: int | None = None
    expires_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reason": self.reason, "grant_id": self.grant_id,
                "expires_at": self.expires_at}


class ReadRights:
    """Read rights of one library in one collection, loaded once for many packages."""

    def __init__(self, session: Session, library_id: int, collection: Collection, now: datetime | None = None) -> None:
        self.collection = collection
        open_ = collection.access_mode == MODE_OPEN
        self.grants = [] if open_ else active_grants(session, library_id, collection.id, now)

    def for_package(self, package: Package) -> ReadRight:
        if self.collection.access_mode == MODE_OPEN:
            return ReadRight(True, Reason("collection-open"))
        year = package_year(package)
        for grant in self.grants:
            if grant_covers(grant, package.id, year):
                return ReadRight(True, Reason("grant", grant=grant.id), grant.id, grant.expires_at)
        return ReadRight(False, Reason("no-grant-package", mode=word("mode", self.collection.access_mode)))

    def for_item(self, package: Package, item: Item | None) -> ReadRight:
        """The right on the item's files: the package's, else a grant of its title, its issue or itself."""
        right = self.for_package(package)
        if right.allowed or item is None:
            return right
        for grant in self.grants:
            if grant_is_scoped(grant) and grant_covers_item(grant, item):
                return ReadRight(True, Reason("grant-scoped", grant=grant.id, scope=word("scope", grant_scope(grant))),
                                 grant.id, grant.expires_at)
        return ReadRight(False, Reason("no-grant-item", mode=word("mode", self.collection.access_mode)))


def read_right(session: Session, library_id: int, package: Package, item: Item | None = None) -> ReadRight:
    """The library's right on the package, or with ``item`` on that item's files."""
    rights = ReadRights(session, library_id, package.collection)
    return rights.for_package(package) if item is None else rights.for_item(package, item)


def items_with_file(session: Session, package_ids: Iterable[str], path: str) -> list[Item]:
    """The items a file of the packages belongs to (exact path)."""
    return list(session.scalars(
        select(Item).join(ItemFile, ItemFile.item_id == Item.id)
        .where(ItemFile.package_id.in_(list(package_ids)), ItemFile.path == path).order_by(Item.id)))


def require_read(session: Session, library_id: int, package: Package, path: str | None = None,
                 holders: Iterable[str] = ()) -> ReadRight:
    """The read right of the library on the package, or on its file ``path`` (which a grant of an item
    holding it also opens: an item of the package, or of the other versions of it named by ``holders``,
    see preservation.access.as_of); raises AccessRefused when there is none."""
    rights = ReadRights(session, library_id, package.collection)
    right = rights.for_package(package)
    if not right.allowed and path is not None:
        for item in items_with_file(session, {package.id, *holders}, path):
            item_right = rights.for_item(package, item)
            if item_right.allowed:
                return item_right
    if not right.allowed:
        raise AccessRefused(f"{right.reason}: request access to package {package.id} first")
    return right


@dataclass
class PolicyDecision:
    """What the access policy says about a request: approve (with which year ranges) or ask staff."""

    approve: bool
    why: str  # a Reason (preservation.access.reasons): English text with its code
    year_ranges: list[YearRange | None] = field(default_factory=list)  # None: no year limit
    # of a title: the bounds of the library's title entitlements, one grant each: (first_date, last_date,
    # first_volume, first_issue, last_volume, last_issue), "" open
    date_ranges: list[tuple[str, ...]] = field(default_factory=list)


def decide_by_policy(
    session: Session, library_id: int, collection: Collection, package: Package | None, today: date | None = None
) -> PolicyDecision:
    mode = collection.access_mode
    if mode == MODE_OPEN:
        return PolicyDecision(True, Reason("open-to-all"), [None])
    if mode == MODE_TRIGGER:
        trigger = active_trigger(session, collection.id, today)
        if trigger is None:
            return PolicyDecision(False, Reason("no-trigger"))
        return PolicyDecision(True, Reason("trigger-opened", event=trigger.id, kind=word("kind", trigger.kind),
                                           date=trigger.occurred_on.isoformat()), [None])
    if mode == MODE_PCA:
        ranges = entitled_ranges(session, library_id, collection.id)
        if not ranges:
            return PolicyDecision(False, Reason("no-entitlement"))
        if package is None:
            return PolicyDecision(True, Reason("pca-years", years=_years(ranges)), list(ranges))
        year = package_year(package)
        if year is None:
            return PolicyDecision(False, Reason("year-unknown"))
        if any(r.covers(year) for r in ranges):
            return PolicyDecision(True, Reason("year-within-entitlement", year=year, years=_years(ranges)), [None])
        return PolicyDecision(False, Reason("year-outside-entitlement", year=year, years=_years(ranges)))
    return PolicyDecision(False, Reason("dark"))


def _years(ranges: Iterable[YearRange]) -> str:
    return ", ".join(str(r) for r in ranges)



def title_entitlements(
    session: Session, library_id: int, title_ids: Iterable[int]
) -> dict[int, list[TitleEntitlement]]:
    """The library's title entitlements (its own KBART rows) of the given titles, by title id."""
    wanted = sorted({t for t in title_ids if t is not None})
    out: dict[int, list[TitleEntitlement]] = {t: [] for t in wanted}
    if wanted:
        for row in session.scalars(select(TitleEntitlement).where(
                TitleEntitlement.library_id == library_id, TitleEntitlement.title_id.in_(wanted))
                .order_by(TitleEntitlement.id)):
            out[row.title_id].append(row)
    return out


def covering_entitlement(rows: Iterable[TitleEntitlement], when: str, volume: str = "",
                         issue: str = "") -> TitleEntitlement | None:
    """The first row covering an item or issue at ISO date text ``when``, ``volume`` and ``issue`` by the
    one rule, :func:`preservation.titles.range_covers`: every bound both name must hold and one must be
    checkable (a row with volume bounds only never covers what has no volume)."""
    for row in rows:
        if _range_covers(row, when, volume, issue):
            return row
    return None


def decide_for_item(session: Session, library_id: int, collection: Collection, package: Package,
                    item: Any, today: date | None = None, *, package_decision: PolicyDecision | None = None,
                    title_rows: list[TitleEntitlement] | None = None) -> PolicyDecision:
    """:func:`decide_by_policy` for one item of ``package``: in a ``pca`` collection, the library's title
    entitlement covering the item's title at its publication date approves as well.

    ``package_decision`` and ``title_rows`` (the library's entitlements of the item's title) may be given
    by a caller that judges many items, so each is loaded once.
    """
    decision = package_decision or decide_by_policy(session, library_id, collection, package, today)
    if decision.approve or collection.access_mode != MODE_PCA or item.title_id is None:
        return decision
    if title_rows is None:
        title_rows = title_entitlements(session, library_id, [item.title_id])[item.title_id]
    when = _item_when(item)
    row = covering_entitlement(title_rows, when, item.volume or "", item.issue or "")
    if row is None:
        return decision
    return PolicyDecision(True, Reason("title-entitlement-item", entitlement=row.id, date=when or Reason("undated")),
                          [None])


def decide_for_title(session: Session, library_id: int, collection: Collection, title: Any,
                     today: date | None = None, *, collection_decision: PolicyDecision | None = None,
                     title_rows: list[TitleEntitlement] | None = None) -> PolicyDecision:
    """:func:`decide_by_policy` for a whole title: in a ``pca`` collection a title entitlement of the library
    approves too (for the dates it covers)."""
    decision = collection_decision or decide_by_policy(session, library_id, collection, None, today)
    if decision.approve or collection.access_mode != MODE_PCA:
        return decision
    if title_rows is None:
        title_rows = title_entitlements(session, library_id, [title.id])[title.id]
    if not title_rows:
        return decision
    row = title_rows[0]
    return PolicyDecision(True, Reason("title-entitlement-covers", entitlement=row.id, span=row_span(row)), [None])


def decide_for_issue(session: Session, library_id: int, collection: Collection, title_id: int, year: int,
                     when: str, today: date | None = None, *, volume: str = "", issue: str = "",
                     collection_decision: PolicyDecision | None = None, ranges: list[YearRange] | None = None,
                     title_rows: list[TitleEntitlement] | None = None) -> PolicyDecision:
    """:func:`decide_by_policy` for one issue of a title (of ``year``, first published ``when``, ``volume``,
    ``issue``): in a ``pca`` collection an entitled year of the collection, or a title entitlement
    covering the issue (:func:`covering_entitlement`), approves.

    ``collection_decision``, ``ranges`` (the library's entitled years of the collection) and
    ``title_rows`` may be given by a caller that judges many issues, so each is loaded once.
    """
    if collection.access_mode != MODE_PCA:
        return collection_decision or decide_by_policy(session, library_id, collection, None, today)
    if ranges is None:
        ranges = entitled_ranges(session, library_id, collection.id)
    if any(r.covers(year) for r in ranges):
        return PolicyDecision(True, Reason("issue-year-within-entitlement", year=year, years=_years(ranges)), [None])
    if title_rows is None:
        title_rows = title_entitlements(session, library_id, [title_id])[title_id]
    row = covering_entitlement(title_rows, when, volume, issue)
    if row is not None:
        return PolicyDecision(True, Reason("title-entitlement-issue", entitlement=row.id, date=when), [None])
    return PolicyDecision(False, Reason("no-entitlement-issue", date=when))


def row_span(row: Any) -> Reason:
    """What a title entitlement or grant covers, in words: its dates and its volumes."""
    dates = volumes = None
    if row.first_date or row.last_date:
        dates = Reason("span-dates", first=row.first_date or "…", last=row.last_date or Reason("span-now"))
    if grant_volumes(row):
        def end(volume: str | None, issue: str | None) -> str:
            return f"{volume or '…'}" + (f"({issue})" if issue else "")
        first, last = end(row.first_volume, row.first_issue), end(row.last_volume, row.last_issue)
        volumes = Reason("span-volume", volume=first) if first == last else Reason("span-volumes", first=first,
                                                                                    last=last)
    if dates is not None and volumes is not None:
        return Reason("span-dates-volumes", dates=dates, volumes=volumes)
    return dates or volumes or Reason("span-whole-title")


def _bounds_of(row: Any) -> tuple[str, ...]:
    return (row.first_date or "", row.last_date or "", row.first_volume or "", row.first_issue or "",
            row.last_volume or "", row.last_issue or "")


def decide_for_title_request(session: Session, library_id: int, collection: Collection, title_id: int,
                             today: date | None = None) -> PolicyDecision:
    """What the policy says about a request for a whole title: open and triggered collections approve it
    whole; in a ``pca`` collection it is approved for what the library's entitlements cover — the
    collection's entitled years and each of its title entitlements, dates and volume bounds alike, one grant
    each."""
    decision = decide_by_policy(session, library_id, collection, None, today)
    if collection.access_mode != MODE_PCA:
        return decision
    ranges = entitled_ranges(session, library_id, collection.id)
    rows = title_entitlements(session, library_id, [title_id])[title_id]
    if not ranges and not rows:
        return PolicyDecision(False, Reason("no-entitlement-title"))
    spans = [row_span(row) for row in rows]
    why = (Reason("pca-years-title-entitlements", years=_years(ranges), spans=spans) if ranges and rows
           else Reason("pca-years", years=_years(ranges)) if ranges else Reason("pca-title-entitlements", spans=spans))
    return PolicyDecision(True, why, list(ranges), [_bounds_of(row) for row in rows])


def decide_for_volume_request(session: Session, library_id: int, collection: Collection, title_id: int,
                              first_volume: str, last_volume: str, today: date | None = None) -> PolicyDecision:
    """What the policy says about a request for volumes ``first_volume``-``last_volume`` of a title: open and
    triggered collections approve it; in a ``pca`` collection a title entitlement of the library covering
    both its first and its last volume (:func:`covering_entitlement`, by volume alone) approves it; anything
    else goes to staff."""
    decision = decide_by_policy(session, library_id, collection, None, today)
    if collection.access_mode != MODE_PCA:
        return decision
    rows = title_entitlements(session, library_id, [title_id])[title_id]
    for row in rows:
        if _range_covers(row, "", first_volume) and _range_covers(row, "", last_volume):
            return PolicyDecision(True, Reason("title-entitlement-covers", entitlement=row.id, span=row_span(row)),
                                  [None])
    span = first_volume if first_volume == last_volume else f"{first_volume}-{last_volume}"
    return PolicyDecision(False, Reason("no-entitlement-volumes", volumes=span))
