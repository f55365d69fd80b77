"""COUNTER counting: the double-click filter, sessions and the catalogue rows a report names.

The finest grain counted is a :class:`Cell` — one item of one title of one
collection, for one library and month.  :func:`tally` reads the months'
events once, oldest first, in the order of the ``(library_id, occurred_at)``
index: of two clicks by one visitor on one target within 30 seconds only the
later counts (COUNTER 7.2) — filtered on the raw events first — and a
surviving click's item or title counts once per session for the ``Unique_*``
metrics (COUNTER 7.3, 7.4).  A session is an hour, so only the last 30
seconds' clicks and the current hour's pairs are held: memory grows with the
number of cells and with one hour's activity, never with the number of events
(``bench/bench_counter.py`` measures it).

A title is a ``library_models.Title``, or the package when the content has
none; an item is a ``library_models.Item``, or the package likewise.
:func:`tally_searches` counts the searches of the Database Report.
:func:`monthly_summary` is the staff's month at a glance, counted the same way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from preservation.catalog.access_models import SEARCH_API, Library, SearchEvent, UsageEvent
from preservation.catalog.library_models import ID_ISSN_ONLINE, ID_ISSN_PRINT, Item, Title, TitleIdentifier
from preservation.catalog.models import Collection, Package
from preservation.errors import NotFound
from preservation.repository import Repository

DOUBLE_CLICK = timedelta(seconds=30)
PROPRIETARY_NAMESPACE = "preserve"  # Proprietary ids: "preserve:<id>" (COUNTER: a namespace, a colon, the id)
UNKNOWN_YOP = "0001"  # COUNTER's year of publication when it is not known
TITLE_DATA_TYPES = {"journal": "Journal", "book": "Book", "database": "Other", "other": "Other"}
ITEM_DATA_TYPES = {"article": "Article", "chapter": "Book_Segment", "book": "Other", "other": "Other"}
NO_TITLE_DATA_TYPE = "Unspecified"  # a package without a title or item: we do not know what it holds

@dataclass(frozen=True)
class Cell:
    """The finest grain counted: one item of one title of one collection in one month."""

    library_id: int
    month: str
    collection_id: int
    title_key: str  # "t<id>" for a title, "p<package id>" when there is none
    item_key: str  # "i<id>" for an item, "p<package id>" when there is none


@dataclass
class Counts:
    inv: int = 0
    req: int = 0
    unique_inv: int = 0
    unique_req: int = 0


def _title_key(title_id: int | None, package_id: str | None) -> str:
    return f"t{title_id}" if title_id is not None else f"p{package_id}"


def _item_key(item_id: int | None, package_id: str | None) -> str:
    return f"i{item_id}" if item_id is not None else f"p{package_id}"


def _where(library_id: int | None, months: list[str]) -> list[Any]:
    """The events of ``months`` (consecutive, oldest first), of one library or all: a range of occurred_at."""
    first, end = _bounds(months)
    where = [UsageEvent.occurred_at >= first, UsageEvent.occurred_at < end]
    if library_id is not None:
        where.append(UsageEvent.library_id == library_id)
    return where


TitleCounts = dict[tuple[int, str, str, str], list[int]]  # (library, month, title, YOP or "") → [inv, req]


def tally(s: Session, library_id: int | None, months: list[str], *,
          by_yop: bool = False) -> tuple[dict[Cell, Counts], TitleCounts]:
    """Every count of the months in one pass over their events, oldest first (the occurred_at index's order).

    Returns the cells' Total and Unique_Item counts, and Unique_Title
    investigations and requests per (library, month, title, YOP when
    ``by_yop``).  The double-click filter runs first, on the raw events: a
    click is held for 30 seconds, dropped if the same visitor clicks the same
    target again within them, and only a surviving click is counted — in
    Total_* and, once per session, in Unique_* (COUNTER 5.1, 7.2 before 7.3).
    The events of the 30 seconds after the period are read too, only to
    drop the period's last clicks they supersede, so a month's numbers do not
    depend on whether the next month is in the period.  Memory holds the
    cells, the clicks of the last 30 seconds and the current hour's
    (session, item) and (session, title) pairs: a session is an hour, so a
    pair of an earlier hour can never recur.
    """
    wanted = set(months)
    cells: dict[Cell, Counts] = defaultdict(Counts)
    titles: TitleCounts = defaultdict(lambda: [0, 0])
    seen: set[tuple[Any, ...]] = set()
    hour: datetime | None = None
    # clicks not yet known to survive, oldest first: [at, click key, row, dropped]
    pending: deque[list[Any]] = deque()
    last_click: dict[tuple[Any, ...], list[Any]] = {}

    def count(row: tuple[Any, ...]) -> None:
        nonlocal hour
        library, at, _visitor, session, package_id, _path, item_id, title_id, collection_id, metric, month, \
            year = row
        this_hour = at.replace(minute=0, second=0, microsecond=0)
        if this_hour != hour:
            hour = this_hour
            seen.clear()
        if month not in wanted:  # after the period (read only to filter double clicks), or misrecorded
            return
        request = metric == "request"
        title_key = _title_key(title_id, package_id)
        cell = Cell(library, month, collection_id, title_key, _item_key(item_id, package_id))
        counts = cells[cell]
        counts.inv += 1
        counts.req += request
        # Unique_Item_* and Unique_Title_*: once per session (a request is an investigation too)
        title = (library, month, title_key, yop_text(year) if by_yop else "")
        for as_request in ((False, True) if request else (False,)):
            if ("item", as_request, session, cell) not in seen:
                seen.add(("item", as_request, session, cell))
                if as_request:
                    counts.unique_req += 1
                else:
                    counts.unique_inv += 1
            if ("title", as_request, session, title) not in seen:
                seen.add(("title", as_request, session, title))
                titles[title][as_request] += 1

    def settle(now: datetime | None) -> None:
        """Count the held clicks that no click can supersede any more (all of them when ``now`` is None)."""
        while pending and (now is None or now - pending[0][0] > DOUBLE_CLICK):
            entry = pending.popleft()
            if last_click.get(entry[1]) is entry:
                del last_click[entry[1]]
            if not entry[3]:
                count(entry[2])

    first, end = _bounds(months)
    where = [UsageEvent.occurred_at >= first, UsageEvent.occurred_at <= end + DOUBLE_CLICK]
    if library_id is not None:
        where.append(UsageEvent.library_id == library_id)
    rows = s.execute(
        select(UsageEvent.library_id, UsageEvent.occurred_at, UsageEvent.visitor, UsageEvent.session_id,
               UsageEvent.package_id, UsageEvent.path, UsageEvent.item_id, UsageEvent.title_id,
               UsageEvent.collection_id, UsageEvent.metric, UsageEvent.month, Item.year)
        .select_from(UsageEvent).outerjoin(Item, Item.id == UsageEvent.item_id)
        .where(*where)
        .order_by(UsageEvent.occurred_at, UsageEvent.id)
        .execution_options(yield_per=2000)
    )
    for row in rows:
        row = tuple(row)
        library, at, visitor, _session, package_id, path, item_id = row[:7]
        metric = row[9]
        settle(at)
        # the double-click filter: of two clicks within 30 s on one target, the earlier one is dropped
        click = (library, visitor, package_id, path, item_id, metric)
        before = last_click.get(click)
        if before is not None and at - before[0] <= DOUBLE_CLICK:
            before[3] = True
        entry = [at, click, row, at >= end]  # a click after the period only supersedes
        pending.append(entry)
        last_click[click] = entry
    settle(None)
    return cells, titles


def _bounds(months: list[str]) -> tuple[datetime, datetime]:
    """The first instant of ``months`` (consecutive, oldest first) and the first one after them."""
    first = datetime.strptime(months[0], "%Y-%m")
    last = datetime.strptime(months[-1], "%Y-%m")
    return first, datetime(last.year + (last.month == 12), last.month % 12 + 1, 1)


def yop_text(year: int | None) -> str:
    return f"{year:04d}" if year is not None and 1 <= year <= 9999 else UNKNOWN_YOP


# --- searches -----------------------------------------------------------------------------------

SEARCHES_REGULAR = "Searches_Regular"
SEARCHES_AUTOMATED = "Searches_Automated"
SEARCHES_FEDERATED = "Searches_Federated"
SEARCH_METRICS = (SEARCHES_REGULAR, SEARCHES_AUTOMATED, SEARCHES_FEDERATED)
SearchCounts = dict[tuple[int, str, str], int]  # (collection id, month, metric) → searches


def search_metric(channel: str, databases: int) -> str:
    """The Database Report metric of a search over ``databases`` collections (COUNTER 5.1, 7.6 and 7.7).

    Through the API its results go to another system: ``Searches_Federated``.
    In the portal it runs over every database at once, which the user does not
    choose: ``Searches_Automated`` for each; when the catalog holds one
    database only, that one is the database searched: ``Searches_Regular``.
    """
    if channel == SEARCH_API:
        return SEARCHES_FEDERATED
    return SEARCHES_REGULAR if databases == 1 else SEARCHES_AUTOMATED


def tally_searches(s: Session, library_id: int, months: list[str]) -> SearchCounts:
    """The library's searches of ``months`` per database and metric, after the double-click filter.

    A search covers every collection the catalog held when it ran, so each of
    them is credited with it.  Of two identical searches (same visitor,
    channel and query) within 30 seconds only the later counts, as for clicks
    (COUNTER 7.2: the repeat returns no new set of results); the 30 seconds
    after the period are read only to drop the period's last searches they
    supersede.  One pass, oldest first, along ``(library_id, occurred_at)``;
    memory holds the last 30 seconds' searches and one count per (month,
    metric, number of collections then), never the events.
    """
    wanted = set(months)
    collections = s.execute(select(Collection.id, Collection.created_at)
                            .order_by(Collection.created_at, Collection.id)).all()
    created = [at for _, at in collections]
    buckets: dict[tuple[str, str, int], int] = defaultdict(int)
    pending: deque[list[Any]] = deque()  # [at, key, month, channel, dropped]
    last: dict[tuple[str, ...], list[Any]] = {}

    def settle(now: datetime | None) -> None:
        while pending and (now is None or now - pending[0][0] > DOUBLE_CLICK):
            at, key, month, channel, dropped = entry = pending.popleft()
            if last.get(key) is entry:
                del last[key]
            if dropped or month not in wanted:
                continue
            databases = bisect_right(created, at)
            if databases:
                buckets[(month, search_metric(channel, databases), databases)] += 1

    first, end = _bounds(months)
    rows = s.execute(
        select(SearchEvent.occurred_at, SearchEvent.visitor, SearchEvent.channel, SearchEvent.query,
               SearchEvent.month)
        .where(SearchEvent.library_id == library_id, SearchEvent.occurred_at >= first,
               SearchEvent.occurred_at <= end + DOUBLE_CLICK)
        .order_by(SearchEvent.occurred_at, SearchEvent.id).execution_options(yield_per=2000))
    for at, visitor, channel, query, month in rows:
        settle(at)
        key = (visitor, channel, query)
        before = last.get(key)
        if before is not None and at - before[0] <= DOUBLE_CLICK:
            before[4] = True
        entry = [at, key, month, channel, at >= end]
        pending.append(entry)
        last[key] = entry
    settle(None)
    out: SearchCounts = defaultdict(int)
    for index, (collection_id, _) in enumerate(collections):
        for (month, metric, databases), n in buckets.items():
            if databases > index:  # the collection existed when those searches ran
                out[(collection_id, month, metric)] += n
    return dict(out)


# --- what the rows are ------------------------------------------------------------------------


@dataclass
class Catalogue:
    """Names and identifiers of the titles, items, packages and collections a report mentions."""

    titles: dict[int, Title]
    title_ids: dict[int, dict[str, str]]
    items: dict[int, Item]
    packages: dict[str, Package]
    collections: dict[int, Collection]

    @classmethod
    def load(cls, s: Session, cells: Iterable[Cell]) -> Catalogue:
        title_ids, item_ids, package_ids, collection_ids = set(), set(), set(), set()
        for cell in cells:
            collection_ids.add(cell.collection_id)
            for key in (cell.title_key, cell.item_key):
                {"t": title_ids, "i": item_ids, "p": package_ids}[key[0]].add(key[1:])
        items = {i.id: i for i in _in(s, Item, Item.id, [int(x) for x in item_ids])}
        for item in items.values():
            package_ids.add(item.package_id)
        titles = {t.id: t for t in _in(s, Title, Title.id, [int(x) for x in title_ids])}
        identifiers: dict[int, dict[str, str]] = defaultdict(dict)
        for ident in _in(s, TitleIdentifier, TitleIdentifier.title_id, list(titles)):
            identifiers[ident.title_id].setdefault(ident.scheme, ident.value)
        packages = {p.id: p for p in _in(s, Package, Package.id, list(package_ids))}
        collections = {c.id: c for c in _in(s, Collection, Collection.id, list(collection_ids))}
        return cls(titles, identifiers, items, packages, collections)

    def add_collections(self, s: Session, ids: Iterable[int]) -> None:
        """Load the collections not yet known (those a report names only for their searches)."""
        missing = [i for i in ids if i not in self.collections]
        self.collections.update({c.id: c for c in _in(s, Collection, Collection.id, missing)})

    def title_name(self, key: str) -> str:
        if key[0] == "t" and int(key[1:]) in self.titles:
            return self.titles[int(key[1:])].title
        package = self.packages.get(key[1:])
        return package.name if package else key[1:]

    def title_data_type(self, key: str) -> str:
        if key[0] == "t" and int(key[1:]) in self.titles:
            return TITLE_DATA_TYPES.get(self.titles[int(key[1:])].kind, "Other")
        return NO_TITLE_DATA_TYPE

    def title_item_id(self, key: str) -> dict[str, str]:
        ids = {"Proprietary": f"{PROPRIETARY_NAMESPACE}:{key}"}
        if key[0] == "t":
            known = self.title_ids.get(int(key[1:]), {})
            for scheme, name in ((ID_ISSN_PRINT, "Print_ISSN"), (ID_ISSN_ONLINE, "Online_ISSN")):
                if scheme in known:
                    ids[name] = known[scheme]
        return ids

    def publisher(self, title_key: str, collection_id: int) -> str:
        if title_key[0] == "t" and int(title_key[1:]) in self.titles and self.titles[int(title_key[1:])].publisher:
            return self.titles[int(title_key[1:])].publisher
        collection = self.collections.get(collection_id)
        return collection.publisher if collection else ""

    def item(self, key: str) -> Item | None:
        return self.items.get(int(key[1:])) if key[0] == "i" else None


def _in(s: Session, model: Any, column: Any, values: list[Any], chunk: int = 500) -> Iterator[Any]:
    for start in range(0, len(values), chunk):
        yield from s.scalars(select(model).where(column.in_(values[start:start + chunk])))


# --- libraries ---------------------------------------------------------------------------------


def library_by_code(repo: Repository, code: str) -> Library:
    """The library whose code is ``code`` (detached); raises NotFound."""
    with repo.catalog.session() as s:
        library = find_library(s, code)
        s.expunge(library)
        return library


def all_libraries(repo: Repository) -> list[Library]:
    with repo.catalog.session() as s:
        libraries = list(s.scalars(select(Library).order_by(Library.code)))
        s.expunge_all()
        return libraries


def find_library(s: Session, code: str) -> Library:
    library = s.execute(select(Library).where(Library.code == code)).scalar_one_or_none()
    if library is None:
        raise NotFound(f"no library {code!r}")
    return library


# --- the staff summary ------------------------------------------------------------------------


def monthly_summary(repo: Repository, month: str, *, library_code: str | None = None) -> dict[str, Any]:
    """One month's rows per institution × title and × database (totals, unique title requests, bytes)."""
    with repo.catalog.session() as s:
        library_id = find_library(s, library_code).id if library_code else None
        cells, titles = tally(s, library_id, [month])
        catalogue = Catalogue.load(s, cells)
        libraries = {lib.id: lib for lib in s.scalars(select(Library))}
        sizes: dict[tuple[int, str], int] = defaultdict(int)
        for lib, title_id, package_id, size in s.execute(
                select(UsageEvent.library_id, UsageEvent.title_id, UsageEvent.package_id,
                       func.coalesce(func.sum(UsageEvent.bytes), 0))
                .where(*_where(library_id, [month]))
                .group_by(UsageEvent.library_id, UsageEvent.title_id, UsageEvent.package_id)):
            sizes[(lib, _title_key(title_id, package_id))] += int(size)
    title_rows: dict[tuple[int, str], dict[str, Any]] = {}
    databases: dict[tuple[int, int], dict[str, Any]] = {}
    for cell, counts in cells.items():
        lib = libraries[cell.library_id]
        collection = catalogue.collections[cell.collection_id]
        row = title_rows.setdefault((cell.library_id, cell.title_key), {
            "institution_id": lib.code, "institution_name": lib.name, "database": collection.key,
            "title_id": cell.title_key[1:], "title": catalogue.title_name(cell.title_key),
            "Total_Item_Investigations": 0, "Total_Item_Requests": 0,
            "Unique_Title_Requests": titles.get((cell.library_id, month, cell.title_key, ""), [0, 0])[1],
            "bytes": sizes.get((cell.library_id, cell.title_key), 0), "collection_id": cell.collection_id,
        })
        row["Total_Item_Investigations"] += counts.inv
        row["Total_Item_Requests"] += counts.req
        db = databases.setdefault((cell.library_id, cell.collection_id), {
            "institution_id": lib.code, "institution_name": lib.name, "database": collection.key,
            "Total_Item_Investigations": 0, "Total_Item_Requests": 0, "bytes": 0,
        })
        db["Total_Item_Investigations"] += counts.inv
        db["Total_Item_Requests"] += counts.req
    for (lib_id, _), row in title_rows.items():
        databases[(lib_id, row.pop("collection_id"))]["bytes"] += row["bytes"]
    order = lambda r: (r["institution_id"], r["database"], r.get("title", ""))  # noqa: E731
    return {"institutions": len({k[0] for k in title_rows}),
            "title_report": sorted(title_rows.values(), key=order),
            "database_report": sorted(databases.values(), key=order)}
