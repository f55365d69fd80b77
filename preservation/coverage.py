"""Completeness of holdings: what is preserved of each title against what was expected, and how well it is kept.

* **Gaps** (:func:`gaps`): the years, volumes and issues a title's expected
  coverage (its publisher's KBART list, or a KBART file given for the
  comparison) names and no preserved item holds.  Years and volumes are
  counted from the range; issues only where they can be known: an issue
  number is missing when a later issue of the same volume is held, or when
  the range's first or last issue says it exists.  An open range (no last
  date) runs to this year, less a ``P`` embargo; an ``R`` embargo (only the
  most recent years) moves its start.  An open range's last volume is the
  highest volume held.
* **Verification standing** of the packages that hold a title: ``verified``
  when every copy of every one of them is in state verified and was verified
  within the policy's audit interval (``audit.interval_days``), ``overdue``
  when some copy is not, ``none`` when nothing of the title is preserved.
* **Report** (:func:`report`): per title, coverage preserved, gaps and
  standing.
* **Export** (:func:`export`): preserved holdings as KBART, per collection or
  for what one library may read, one row per run of consecutive years, with
  ``preserve_verification`` and ``preserve_last_verified`` after the
  standard columns.

What counts as preserved is :data:`preservation.titles.PRESERVED_STATES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import IO, Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, selectinload

from preservation.access.accounts import get_library
from preservation.access.rights import (
    MODE_OPEN,
    MODE_PCA,
    MODE_TRIGGER,
    active_grants,
    active_trigger,
    grant_covers,
    grant_is_scoped,
    title_grant_covers,
)
from preservation.catalog.access_models import Entitlement
from preservation.catalog.library_models import ExpectedCoverage, Item, Title, TitleEntitlement, TitleIdentifier
from preservation.catalog.models import REPLICA_VERIFIED, Collection, Replica, utcnow
from preservation.collection import get_collection
from preservation.errors import ImportRejected, InvalidRequest
from preservation.kbart import check_file, coverage_fields, title_fields, write_kbart
from preservation.repository import Repository
from preservation.titles import (
    HeldIssue,
    coverage_of,
    date_bounds,
    held_issues,
    identifier_index,
    part_number,
    range_covers,
)

VERIFIED = "verified"
OVERDUE = "overdue"
NONE = "none"
CHUNK = 1000  # titles exported at a time
_EMBARGO_PART = re.compile(r"([RP])([0-9]+)([DMY])")


# --- verification standing ----------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    state: str  # VERIFIED, OVERDUE or NONE
    oldest: datetime | None  # the oldest last verification among the copies

    def to_dict(self) -> dict[str, Any]:
        return {"standing": self.state, "oldest_verification": self.oldest.isoformat(timespec="seconds")
                if self.oldest else None}


def package_standing(session: Session, package_ids: Iterable[str], interval_days: float,
                     now: datetime | None = None) -> dict[str, Standing]:
    """Each package's standing: every copy verified within ``interval_days`` or not (see the module docstring)."""
    window_start = (now or utcnow()) - timedelta(days=interval_days)
    ids = sorted(set(package_ids))
    in_window = case((and_(Replica.state == REPLICA_VERIFIED, Replica.verified_at >= window_start), 1), else_=0)
    out: dict[str, Standing] = {}
    for start in range(0, len(ids), 500):
        for package_id, copies, fresh, oldest in session.execute(
                select(Replica.package_id, func.count(), func.sum(in_window), func.min(Replica.verified_at))
                .where(Replica.package_id.in_(ids[start:start + 500])).group_by(Replica.package_id)):
            out[package_id] = Standing(VERIFIED if copies and fresh == copies else OVERDUE, oldest)
    return {p: out.get(p, Standing(OVERDUE, None)) for p in ids}


def combined(standings: Iterable[Standing]) -> Standing:
    items = list(standings)
    if not items:
        return Standing(NONE, None)
    oldest = [s.oldest for s in items if s.oldest is not None]
    state = VERIFIED if all(s.state == VERIFIED for s in items) else OVERDUE
    return Standing(state, min(oldest) if oldest else None)


# --- expected ranges and gaps -------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    first_date: str = ""
    first_volume: str = ""
    first_issue: str = ""
    last_date: str = ""
    last_volume: str = ""
    last_issue: str = ""
    embargo_info: str = ""


def _embargo_cut(embargo: str, today: date) -> tuple[int | None, int | None]:
    """(earliest year, latest year) an embargo allows: R keeps only the most recent span, P hides it."""
    earliest = latest = None
    for kind, number, unit in _EMBARGO_PART.findall(embargo or ""):
        days = int(number) * {"D": 1, "M": 30, "Y": 365}[unit]
        year = (today - timedelta(days=days)).year
        if kind == "R":
            earliest = year
        else:
            latest = year
    return earliest, latest


def expected_years(rng: Expected, today: date) -> list[int]:
    if not rng.first_date:
        return []
    start = date_bounds(rng.first_date)[0].year
    end = date_bounds(rng.last_date)[1].year if rng.last_date else today.year
    earliest, latest = _embargo_cut(rng.embargo_info, today)
    if earliest is not None:
        start = max(start, earliest)
    if latest is not None and not rng.last_date:
        end = min(end, latest)
    return list(range(start, end + 1))


def _ranges(pieces: Iterable[Any]) -> str:
    """``[2015, 2016, 2017, 2019]`` → ``2015-2017, 2019``."""
    numbers = sorted(set(pieces))
    out: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}-{numbers[j]}")
        i = j + 1
    return ", ".join(out)


def title_gaps(expected: list[Expected], held: list[HeldIssue], today: date) -> dict[str, Any]:
    """Missing years, volumes and issues of one title (see the module docstring for what can be known)."""
    held_years = {h.year for h in held if h.year is not None}
    held_issues_by_volume: dict[int, set[int]] = {}
    for h in held:
        volume = part_number(h.volume)
        if volume is not None:
            issue = part_number(h.issue)
            held_issues_by_volume.setdefault(volume, set())
            if issue is not None:
                held_issues_by_volume[volume].add(issue)
    highest_volume = max(held_issues_by_volume, default=None)
    years: set[int] = set()
    volumes: set[int] = set()
    issues: dict[int, set[int]] = {}
    for rng in expected:
        years.update(y for y in expected_years(rng, today) if y not in held_years)
        first_volume, last_volume = part_number(rng.first_volume), part_number(rng.last_volume)
        if first_volume is None:
            continue
        if last_volume is None and not rng.last_date:
            last_volume = highest_volume if highest_volume is not None and highest_volume >= first_volume else None
        if last_volume is None:
            last_volume = first_volume
        for volume in range(first_volume, last_volume + 1):
            if volume not in held_issues_by_volume:
                volumes.add(volume)
                continue
            have = held_issues_by_volume[volume]
            low = part_number(rng.first_issue) if volume == first_volume and part_number(rng.first_issue) else 1
            high_known = part_number(rng.last_issue) if volume == last_volume and rng.last_volume else None
            high = max(high_known or 0, max(have, default=0))
            missing = {n for n in range(low, high + 1) if n not in have}
            if missing:
                issues.setdefault(volume, set()).update(missing)
    return {"years": sorted(years), "volumes": sorted(volumes),
            "issues": [{"volume": str(v), "issues": [str(n) for n in sorted(ns)]} for v, ns in sorted(issues.items())]}


def gap_text(gap: dict[str, Any]) -> str:
    parts = []
    if gap["years"]:
        parts.append(f"years {_ranges(gap['years'])}")
    if gap["volumes"]:
        parts.append(f"volumes {_ranges(gap['volumes'])}")
    for v in gap["issues"]:
        parts.append(f"vol. {v['volume']} issues {_ranges(int(n) for n in v['issues'])}")
    return "; ".join(parts)


def _expected_of(title: Title) -> list[Expected]:
    return [Expected(c.first_date, c.first_volume, c.first_issue, c.last_date, c.last_volume, c.last_issue,
                     c.embargo_info) for c in title.coverage]


def _titles(session: Session, collection_id: int | None) -> list[Title]:
    stmt = (select(Title).join(Collection)
            .options(selectinload(Title.identifiers), selectinload(Title.coverage), selectinload(Title.collection))
            .order_by(Collection.key, Title.title, Title.id))
    if collection_id is not None:
        stmt = stmt.where(Title.collection_id == collection_id)
    return list(session.scalars(stmt))


def gaps(repo: Repository, collection_key: str, *, against: str | None = None,
         today: date | None = None) -> dict[str, Any]:
    """Expected years, volumes and issues of the collection's titles that nothing preserved holds.

    ``against``: a KBART file whose rows are the expectation instead of the
    imported coverage (its titles found by identifier; a title the
    collection lacks is missing whole).  Raises NotFound, ImportRejected
    (the file has errors).
    """
    today = today or utcnow().date()
    with repo.catalog.session() as s:
        collection = get_collection(s, collection_key)
        titles = {t.id: t for t in _titles(s, collection.id)}
        held = held_issues(s, collection_id=collection.id)
        expectations: list[tuple[Title | None, str, list[Expected]]] = []
        if against is None:
            expectations = [(t, t.title, _expected_of(t)) for t in titles.values() if t.coverage]
        else:
            rows, findings = check_file(against)
            if not findings.ok:
                raise ImportRejected(f"{len(findings.errors)} problem(s), first: {findings.errors[0].message}",
                                     findings=list(findings), source=str(against))
            index = identifier_index(s, collection_id=collection.id)
            grouped: dict[Any, tuple[Title | None, str, list[Expected]]] = {}
            for row in rows:
                found = set().union(*(index.get(k, set()) for k in row.keys)) if row.keys else set()
                key: Any = min(found) if len(found) == 1 else ("line", row.line)
                title = titles.get(key) if isinstance(key, int) else None
                entry = grouped.setdefault(key, (title, title.title if title else row.title, []))
                fd, fv, fi, ld, lv, li, embargo, _depth = row.coverage
                entry[2].append(Expected(fd, fv, fi, ld, lv, li, embargo))
            expectations = list(grouped.values())
        out = []
        for title, name, expected in expectations:
            gap = title_gaps(expected, held.get(title.id, []) if title else [], today)
            if not any((gap["years"], gap["volumes"], gap["issues"])):
                continue
            out.append({"title_id": title.id if title else None, "title": name, "in_catalog": title is not None,
                        **gap, "summary": gap_text(gap)})
        return {"collection": collection.key, "against": against, "titles": out}


# --- the report ---------------------------------------------------------------------------


def _main_identifier(fields: dict[str, str]) -> str:
    return fields["print_identifier"] or fields["online_identifier"] or fields["preserve_cn"] or fields["title_id"]


def _span(first_date: str, first_volume: str, first_issue: str, last_date: str, last_volume: str,
          last_issue: str) -> str:
    def end(d: str, v: str, i: str) -> str:
        bits = [d] + ([f"v.{v}"] if v else []) + ([f"no.{i}"] if i else [])
        return " ".join(b for b in bits if b)
    first, last = end(first_date, first_volume, first_issue), end(last_date, last_volume, last_issue)
    if not first and not last:
        return ""
    return f"{first or '…'} – {last or 'present'}"


def report(repo: Repository, *, collection_key: str | None = None, today: date | None = None) -> dict[str, Any]:
    """Per title: coverage preserved, expected, gaps and verification standing."""
    today = today or utcnow().date()
    interval = repo.policy.audit.interval_days
    with repo.catalog.session() as s:
        collection_id = get_collection(s, collection_key).id if collection_key else None
        titles = _titles(s, collection_id)
        held = held_issues(s, collection_id=collection_id) if collection_id else held_issues(s)
        standing = package_standing(s, {h.package_id for issues in held.values() for h in issues}, interval)
        rows = []
        for t in titles:
            issues = held.get(t.id, [])
            cov = coverage_of(issues)
            gap = title_gaps(_expected_of(t), issues, today)
            stand = combined(standing[p] for p in {h.package_id for h in issues})
            fields = title_fields(t)
            rows.append({
                "title_id": t.id, "collection": t.collection.key, "title": t.title, "kind": t.kind,
                "identifier": _main_identifier(fields),
                "expected": [_span(c.first_date, c.first_volume, c.first_issue, c.last_date, c.last_volume,
                                   c.last_issue) for c in t.coverage],
                "preserved": cov, "preserved_span": _span(cov["first_date"], cov["first_volume"], cov["first_issue"],
                                                          cov["last_date"], cov["last_volume"], cov["last_issue"]),
                "gaps": gap, "gaps_summary": gap_text(gap), **stand.to_dict(),
            })
        return {"collection": collection_key, "audit_interval_days": interval,
                "generated_at": utcnow().isoformat(timespec="seconds"), "titles": rows}


REPORT_CSV_COLUMNS = ("title_id", "collection", "title", "kind", "identifier", "expected", "preserved",
                      "years", "issues", "items", "packages", "gaps", "standing", "oldest_verification")


def report_csv_rows(data: dict[str, Any]) -> Iterator[list[Any]]:
    for r in data["titles"]:
        p = r["preserved"]
        yield [r["title_id"], r["collection"], r["title"], r["kind"], r["identifier"], "; ".join(r["expected"]),
               r["preserved_span"], _ranges(p["years"]), p["issues"], p["items"], p["packages"], r["gaps_summary"],
               r["standing"], r["oldest_verification"] or ""]


# --- export -------------------------------------------------------------------------------


def _runs(issues: list[HeldIssue]) -> list[list[HeldIssue]]:
    """Held issues split where a year has nothing (undated issues form a run of their own)."""
    dated = [h for h in issues if h.year is not None]
    undated = [h for h in issues if h.year is None]
    runs: list[list[HeldIssue]] = []
    for h in dated:
        if runs and h.year - runs[-1][-1].year <= 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    if undated:
        runs.append(undated)
    return runs


def _selector(session: Session, library_id: int, collection: Collection) -> Callable[[HeldIssue], bool] | None:
    """What the library may read of the collection, as a test on held issues; None: nothing."""
    if collection.access_mode == MODE_OPEN or (collection.access_mode == MODE_TRIGGER
                                               and active_trigger(session, collection.id) is not None):
        return lambda h: True
    grants = active_grants(session, library_id, collection.id)
    year_ranges: list[tuple[int, int]] = []
    by_title: dict[int, list[TitleEntitlement]] = {}
    if collection.access_mode == MODE_PCA:
        year_ranges = [tuple(r) for r in session.execute(select(Entitlement.from_year, Entitlement.to_year).where(
            Entitlement.library_id == library_id, Entitlement.collection_id == collection.id))]
        for e in session.scalars(select(TitleEntitlement).join(Title).where(
                TitleEntitlement.library_id == library_id, Title.collection_id == collection.id)):
            by_title.setdefault(e.title_id, []).append(e)
    if not grants and not year_ranges and not by_title:
        return None
    # an item grant opens the issue that holds the item: (title, year, volume, issue, package) of each
    granted_items = {g.item_id for g in grants if g.item_id is not None}
    item_issues = {(t, y, v or "", i or "", p) for t, y, v, i, p in session.execute(
        select(Item.title_id, Item.year, Item.volume, Item.issue, Item.package_id)
        .where(Item.id.in_(granted_items)))} if granted_items else set()

    def grant_opens(g: Any, h: HeldIssue) -> bool:
        if not grant_is_scoped(g):
            return grant_covers(g, h.package_id, h.year)
        if g.item_id is not None:
            return (h.title_id, h.year, h.volume or "", h.issue or "", h.package_id) in item_issues
        # a title, its volumes or one issue: the one rule, on the issue's first and last date
        return title_grant_covers(g, h.title_id, h.year, h.volume or "", h.issue or "", (h.first_date, h.last_date))

    def readable(h: HeldIssue) -> bool:
        if any(grant_opens(g, h) for g in grants):
            return True
        if h.year is not None and any(a <= h.year <= b for a, b in year_ranges):
            return True
        return any(range_covers(e, h.first_date, h.volume, h.issue) and range_covers(e, h.last_date, h.volume, h.issue)
                   for e in by_title.get(h.title_id, []))
    return readable


def _rows(session: Session, titles: list[Any], held: dict[int, list[HeldIssue]], standing: dict[str, Any],
          expected: bool, select_issue: Callable[[HeldIssue], bool] | None = None) -> Iterator[dict[str, Any]]:
    for t in titles:
        fields = title_fields(t)
        issues = [h for h in held.get(t.id, []) if select_issue is None or select_issue(h)]
        if expected:
            stand = combined(standing[h.package_id] for h in issues)
            for c in t.coverage:
                yield {**fields, **coverage_fields(c.first_date, c.first_volume, c.first_issue, c.last_date,
                                                   c.last_volume, c.last_issue, c.embargo_info, c.coverage_depth),
                       **_verification(stand)}
            continue
        depth = t.coverage[0].coverage_depth if t.coverage else ""
        for run in _runs(issues):
            cov = coverage_of(run)
            yield {**fields, **coverage_fields(cov["first_date"], cov["first_volume"], cov["first_issue"],
                                               cov["last_date"], cov["last_volume"], cov["last_issue"], "", depth),
                   **_verification(combined(standing[h.package_id] for h in run))}


def _verification(stand: Standing) -> dict[str, str]:
    return {"preserve_verification": stand.state,
            "preserve_last_verified": stand.oldest.date().isoformat() if stand.oldest else ""}


def export(repo: Repository, out: IO[str], *, collection_key: str | None = None, library_code: str | None = None,
           expected: bool = False) -> dict[str, Any]:
    """Write KBART: the preserved holdings of a collection, or what a library may read.

    Exactly one of ``collection_key`` and ``library_code``.  ``expected``
    writes the expected coverage (the publisher's list as imported) instead
    of what is preserved (collection only).  A library may read: every
    title of an ``open`` collection or of a ``trigger`` collection whose
    trigger has happened; what its active grants cover; and, in ``pca``
    collections, what its collection × year and title entitlements cover.
    Raises InvalidRequest, NotFound.
    """
    if (collection_key is None) == (library_code is None):
        raise InvalidRequest("export either one collection or what one library may read")
    if expected and library_code is not None:
        raise InvalidRequest("a library's export is of preserved holdings only")
    interval = repo.policy.audit.interval_days
    with repo.catalog.session() as s:

        def rows_of(collection: Collection, readable: Callable[[HeldIssue], bool] | None) -> Iterator[dict[str, Any]]:
            for titles in _title_chunks(s, collection.id):
                held = held_issues(s, [t.id for t in titles])
                standing = package_standing(s, {h.package_id for v in held.values() for h in v}, interval)
                yield from _rows(s, titles, held, standing, expected, readable)

        if collection_key is not None:
            collection = get_collection(s, collection_key)
            count = write_kbart(out, rows_of(collection, None))
            return {"collection": collection.key, "rows": count}
        library = get_library(s, library_code)
        library_id = library.id

        def all_rows() -> Iterator[dict[str, Any]]:
            for collection in list(s.scalars(select(Collection).order_by(Collection.key))):
                readable = _selector(s, library_id, collection)
                if readable is not None:
                    yield from rows_of(collection, readable)

        count = write_kbart(out, all_rows())
        return {"library": library_code, "rows": count}


def _title_chunks(session: Session, collection_id: int) -> Iterator[list[SimpleNamespace]]:
    """The collection's titles in export order, :data:`CHUNK` at a time: memory stays that of one chunk.

    Each is a plain record with a title's columns, its ``identifiers`` and its
    ``coverage`` rows (what :func:`~preservation.kbart.title_fields` reads):
    Core rows, because building ORM objects would cost more than the export.
    """
    titles, idents, cover = Title.__table__, TitleIdentifier.__table__, ExpectedCoverage.__table__
    ids = list(session.scalars(select(titles.c.id).where(titles.c.collection_id == collection_id)
                               .order_by(titles.c.title, titles.c.id)))
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        rows = {r.id: r for r in session.execute(select(titles).where(titles.c.id.in_(part)))}
        identifiers: dict[int, list] = {}
        for r in session.execute(select(idents).where(idents.c.title_id.in_(part)).order_by(idents.c.id)):
            identifiers.setdefault(r.title_id, []).append(r)
        coverage: dict[int, list] = {}
        for r in session.execute(select(cover).where(cover.c.title_id.in_(part)).order_by(cover.c.id)):
            coverage.setdefault(r.title_id, []).append(r)
        yield [SimpleNamespace(**rows[i]._mapping, identifiers=identifiers.get(i, []), coverage=coverage.get(i, []))
               for i in part]
