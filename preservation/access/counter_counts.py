"""COUNTER counting: the double-click filter, sessions and the catalogue rows a report names.

The finest grain counted is a :class:`Cell` — one item of one title of one
collection, for one library and month.  ``Total_*`` counts come from the
month's events streamed in index order (the filter looks one event ahead: of
two clicks by one visitor on one target within 30 seconds, only the later
counts, COUNTER 7.2); ``Unique_*`` counts are distinct sessions counted by the
database (COUNTER 7.3, 7.4).  Memory grows with the number of cells, never
with the number of events.

A title is a ``library_models.Title``, or the package when the content has
none; an item is a ``library_models.Item``, or the package likewise.
:func:`monthly_summary` is the staff's month at a glance, counted the same way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, Iterator

from sqlalchemy import String, cast, distinct, func, literal, select
from sqlalchemy.orm import Session

from preservation.catalog.access_models import Library, UsageEvent
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
    where = [UsageEvent.month.in_(months)]
    if library_id is not None:
        where.append(UsageEvent.library_id == library_id)
    return where


def _double_click_filtered(s: Session, where: list[Any]) -> Iterator[tuple[Any, ...]]:
    """The events that count for Total_*: of two clicks by one visitor on one target within 30 s, the later."""
    rows = s.execute(
        select(UsageEvent.library_id, UsageEvent.visitor, UsageEvent.package_id, UsageEvent.path,
               UsageEvent.item_id, UsageEvent.metric, UsageEvent.occurred_at, UsageEvent.month,
               UsageEvent.collection_id, UsageEvent.title_id)
        .where(*where)
        .order_by(UsageEvent.library_id, UsageEvent.visitor, UsageEvent.package_id, UsageEvent.path,
                  UsageEvent.item_id, UsageEvent.metric, UsageEvent.occurred_at, UsageEvent.id)
        .execution_options(yield_per=1000)
    )
    previous = None
    for row in rows:
        if previous is not None and not (row[:6] == previous[:6] and row[6] - previous[6] <= DOUBLE_CLICK):
            yield previous
        previous = row
    if previous is not None:
        yield previous


def count_items(s: Session, library_id: int | None, months: list[str]) -> dict[Cell, Counts]:
    """Total and Unique_Item counts per cell (library, month, collection, title, item)."""
    where = _where(library_id, months)
    cells: dict[Cell, Counts] = defaultdict(Counts)
    for library, _, package_id, _, item_id, metric, _, month, collection_id, title_id in \
            _double_click_filtered(s, where):
        counts = cells[Cell(library, month, collection_id, _title_key(title_id, package_id),
                            _item_key(item_id, package_id))]
        counts.inv += 1
        counts.req += metric == "request"
    for requests_only in (False, True):
        cell_columns = (UsageEvent.library_id, UsageEvent.month, UsageEvent.collection_id, UsageEvent.title_id,
                        UsageEvent.item_id, UsageEvent.package_id)
        distinct_sessions = (
            select(*cell_columns, UsageEvent.session_id)
            .where(*where, *((UsageEvent.metric == "request",) if requests_only else ()))
            .group_by(*cell_columns, UsageEvent.session_id)
            .subquery()
        )
        c = distinct_sessions.c
        rows = s.execute(
            select(c.library_id, c.month, c.collection_id, c.title_id, c.item_id, c.package_id, func.count())
            .group_by(c.library_id, c.month, c.collection_id, c.title_id, c.item_id, c.package_id)
        )
        for library, month, collection_id, title_id, item_id, package_id, n in rows:
            counts = cells[Cell(library, month, collection_id, _title_key(title_id, package_id),
                                _item_key(item_id, package_id))]
            if requests_only:
                counts.unique_req += n
            else:
                counts.unique_inv += n
    return cells


def count_titles(s: Session, library_id: int | None, months: list[str], *,
                 by_yop: bool) -> dict[tuple[int, str, str, str], list[int]]:
    """Unique_Title_Investigations and _Requests per (library, month, title, YOP or ""): distinct sessions."""
    title_key = func.coalesce(literal("t") + cast(UsageEvent.title_id, String), literal("p") + UsageEvent.package_id)
    groups = [UsageEvent.library_id, UsageEvent.month, title_key] + ([Item.year] if by_yop else [])
    out: dict[tuple[int, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for index, extra in ((0, ()), (1, (UsageEvent.metric == "request",))):
        rows = s.execute(
            select(*groups, func.count(distinct(UsageEvent.session_id)))
            .select_from(UsageEvent).outerjoin(Item, Item.id == UsageEvent.item_id)
            .where(*_where(library_id, months), *extra)
            .group_by(*groups)
        )
        for row in rows:
            yop = yop_text(row[3]) if by_yop else ""
            out[(row[0], row[1], row[2], yop)][index] = row[-1]
    return out


def yop_text(year: int | None) -> str:
    return f"{year:04d}" if year is not None and 1 <= year <= 9999 else UNKNOWN_YOP


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
        cells = count_items(s, library_id, [month])
        titles = count_titles(s, library_id, [month], by_yop=False)
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
