"""Items in the catalog: writing what extraction found, in the ingest transaction, and reading one back.

:func:`register_items` turns the records of a delivery into ``items`` and
``item_files`` rows with bulk Core inserts, a few thousand at a time, and
links each item to a title of the package's collection: the title that
holds one of its ISSNs or ISBNs, else the title of the same kind and name,
else a new title.  A DOI names one item: a DOI already held by another
item (of another package, or earlier in the same delivery) is a finding,
and the item is stored without it.

A new version (docs/versions.md) holds the same articles as the versions
before it: a DOI held by an item of an earlier version of the SAME lineage
is that item, which is kept (it points at the version that stored its
files) and, when the new metadata differs, has its descriptive fields
updated in place.  An item of a deaccessioned package holds no DOI: it is
released to the new item.  The files a version references rather than
stores (``version_files``) are files of its delivery like the rest.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from typing import Any, Iterable, Iterator, NamedTuple

from sqlalchemy import func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import Session

from preservation import codes, collector
from preservation import identifiers as ids
from preservation.catalog.library_models import (
    ID_ISBN_ONLINE,
    ID_ISBN_PRINT,
    ID_ISSN_ONLINE,
    ID_ISSN_PRINT,
    Item,
    ItemFile,
    Title,
    TitleIdentifier,
)
from preservation.catalog.bulk import insert_rows
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package, PackageFile, Replica, utcnow
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.errors import NotFound
from preservation.findings import FindingList
from preservation.metadata.claims import Claims
from preservation.metadata.records import ItemRecord
from preservation.repository import Repository

BATCH = 2000
ITEM_COLUMNS = ("id", "package_id", "title_id", "kind", "doi", "item_title", "authors", "language", "year",
                "published", "volume", "issue", "first_page", "last_page", "isbn", "source_format", "metadata_path",
                "created_at")
"""The columns of an item row as :func:`register_items` writes it on SQLite (``created_at`` last)."""
FILE_COLUMNS = ("item_id", "package_id", "path", "role")
_IN = 500  # values in one IN (…) list

DESCRIPTIVE = ("kind", "item_title", "authors", "language", "year", "published", "volume", "issue", "first_page",
               "last_page", "isbn")
"""The fields a later version's metadata updates in the item of an earlier version."""


def _batches(records: Iterable[ItemRecord], size: int = BATCH) -> Iterator[list[ItemRecord]]:
    """``records`` a batch at a time, each read (decoded from the spool) with the collector paused."""
    records = iter(records)
    while True:
        with collector.paused():
            batch = list(islice(records, size))
        if not batch:
            return
        yield batch


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _IN):
        yield values[i:i + _IN]


def register_items(session: Session, package_id: str, records: Iterable[ItemRecord],
                   findings: FindingList) -> dict[str, Any]:
    """Write ``records`` as items of ``package_id`` (already flushed in ``session``); a short summary."""
    collection_id = session.get(Package, package_id).collection_id
    titles = _Titles(session, collection_id)
    lineage = _lineage(session, package_id)
    items = files = kept = updated = 0
    claimed: set[str] = set()  # DOIs of earlier versions' items this delivery has kept
    sources: Counter[str] = Counter()
    claims = Claims(session, package_id)  # which item each file belongs to: the one rule (metadata/claims.py)
    versioned = session.get(PackageVersion, package_id) is not None  # only a version references files
    for batch in _batches(records):  # each read from the spool with the collector paused
        present = _present_files(session, package_id, claims.wanted(batch), versioned)
        claims.prepare(batch, present)
        taken = _taken_dois(session, batch)
        title_ids = titles.ids_for(batch)
        rows, item_files, placed = [], [], []
        updates: list[tuple[int, dict[str, Any]]] = []  # earlier items' new values, written after the loop
        # the batch's rows made with the collector paused (see collector); no database call in here, so the pause
        # never lasts while a statement waits on another transaction's lock
        with collector.paused():
            for record, title_id in zip(batch, title_ids):
                doi = record.doi or None
                row = {
                    "package_id": package_id, "title_id": title_id, "kind": record.kind, "doi": doi,
                    "item_title": record.item_title, "authors": "; ".join(record.authors), "language": record.language,
                    "year": record.year, "published": record.published, "volume": record.volume, "issue": record.issue,
                    "first_page": record.first_page, "last_page": record.last_page, "isbn": record.isbn,
                    "source_format": record.source_format, "metadata_path": record.metadata_path,
                }
                holder = taken.get(doi) if doi is not None else None
                if holder is not None and holder.state == PACKAGE_DEACCESSIONED and holder.item_id is not None:
                    # a deaccessioned package holds no DOI: its item lets go of it (before this batch is inserted)
                    updates.append((holder.item_id, {"doi": None}))
                    holder = None
                if holder is not None and holder.package_id in lineage and doi not in claimed:
                    # the same article in an earlier version of this lineage: keep its item, bring it up to date
                    claimed.add(doi)
                    changes = {f: row[f] for f in DESCRIPTIVE if holder.fields.get(f) != row[f]}
                    if changes:
                        updates.append((holder.item_id, changes))
                        updated += 1
                    kept += 1
                    claims.files_of(record, present, findings, claim=False)  # its files are checked all the same
                    continue
                if holder is not None:
                    where = f" ({record.where})" if record.where else ""
                    codes.note(findings, codes.MD_DOI_TAKEN, f"the DOI {doi} is already held by the item of package "
                               f"{holder.package_id}{where}: this item is stored without it", record.metadata_path,
                               doi=doi, package_id=holder.package_id)
                    row["doi"] = None
                elif doi is not None:
                    taken[doi] = _Holder(None, package_id, "")
                rows.append(row)
                placed.append(record)
                item_files.append(claims.files_of(record, present, findings))
                sources[record.source_format] += 1
        for item_id, values in updates:
            session.execute(update(Item.__table__).where(Item.id == item_id).values(**values))
        if not rows:
            continue
        ids_ = _new_item_ids(session, len(rows))
        for row, item_id in zip(rows, ids_):
            row["id"] = item_id
        _insert_items(session, rows, placed, findings)
        file_rows = [(item_id, package_id, path, role) for item_id, own in zip(ids_, item_files) for path, role in own]
        insert_rows(session.connection(), ItemFile.__table__, FILE_COLUMNS, file_rows)
        items += len(rows)
        files += len(file_rows)
    summary = {"items": items, "item_files": files, "titles_created": titles.created, "sources": dict(sources)}
    if lineage:
        summary["earlier_items_kept"] = kept
        summary["earlier_items_updated"] = updated
    return summary


def _insert_items(session: Session, rows: list[dict[str, Any]], records: list[ItemRecord],
                  findings: FindingList) -> None:
    """Insert ``rows`` (ids given); a DOI another ingest committed meanwhile is MD011 and the item goes without it.

    On PostgreSQL, ``ON CONFLICT DO NOTHING`` on the partial unique index of
    ``doi``: a concurrent ingest's uncommitted item with the same DOI makes
    this insert wait for it, then skip the row, instead of failing the whole
    ingest on ``uq_items_doi``.  The skipped rows are inserted again without
    their DOI.  SQLite has no concurrent writer to wait for.
    """
    table = Item.__table__
    if session.get_bind().dialect.name != "postgresql":
        # SQLite lets one transaction write at a time, and this one has written its package already: no other
        # ingest can commit a DOI between _taken_dois and here (see _new_item_ids), so the rows go in as they are,
        # through the driver (SQLAlchemy's per-row bookkeeping cost more than the insert)
        now = utcnow()
        insert_rows(session.connection(), table, ITEM_COLUMNS,
                    [(*(row[c] for c in ITEM_COLUMNS[:-1]), now) for row in rows])
        return
    statement = postgresql_insert(table).on_conflict_do_nothing(index_elements=[table.c.doi],
                                                                index_where=table.c.doi.is_not(None))
    session.execute(statement, rows)  # one executemany: RETURNING would cost a statement a row
    with_doi = [row["id"] for row in rows if row["doi"] is not None]
    written: set[int] = set()
    for chunk in _chunks(with_doi):
        written.update(session.scalars(select(Item.id).where(Item.id.in_(chunk))))
    lost = [(row, record) for row, record in zip(rows, records) if row["doi"] is not None and row["id"] not in written]
    if not lost:
        return
    holders = dict(session.execute(select(Item.doi, Item.package_id).where(
        Item.doi.in_([row["doi"] for row, _ in lost]))).all())
    for row, record in lost:
        doi, holder = row["doi"], holders.get(row["doi"], "")
        where = f" ({record.where})" if record.where else ""
        codes.note(findings, codes.MD_DOI_TAKEN, f"the DOI {doi} is already held by the item of package "
                   f"{holder}{where}: this item is stored without it", record.metadata_path,
                   doi=doi, package_id=holder)
        row["doi"] = None
    session.execute(insert(table), [row for row, _ in lost])


def _lineage(session: Session, package_id: str) -> set[str]:
    """The other packages of ``package_id``'s lineage (none when it is no version of another)."""
    own = session.get(PackageVersion, package_id)
    if own is None:
        return set()
    return set(session.scalars(select(PackageVersion.package_id).where(
        PackageVersion.lineage_id == own.lineage_id, PackageVersion.package_id != package_id)))


def _new_item_ids(session: Session, count: int) -> list[int]:
    """``count`` ids for new items, taken before they are inserted.

    PostgreSQL hands them out from the column's sequence; SQLite lets one
    transaction write at a time, and this one has written its package
    already, so the ids after the largest are its own until it commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text("SELECT nextval(pg_get_serial_sequence('items', 'id')) "
                                         "FROM generate_series(1, :n)"), {"n": count}))
    first = (session.scalar(select(func.max(Item.id))) or 0) + 1
    return list(range(first, first + count))


def _present_files(session: Session, package_id: str, paths: set[str], versioned: bool) -> set[str]:
    """Which of ``paths`` are files of the package: stored, or (when it is a version) referenced."""
    tables = (PackageFile, VersionFile) if versioned else (PackageFile,)
    present: set[str] = set()
    for chunk in _chunks(sorted(paths)):
        for table in tables:
            present.update(session.scalars(select(table.path).where(
                table.package_id == package_id, table.path.in_(chunk))))
    return present


class _Holder(NamedTuple):
    """The item that holds a DOI (``item_id`` None: an item of this delivery, not written yet)."""

    item_id: int | None
    package_id: str
    state: str
    fields: dict[str, Any] = {}


def _taken_dois(session: Session, batch: list[ItemRecord]) -> dict[str, _Holder]:
    """The batch's DOIs that an item already holds: that item, its package and state, its descriptive fields."""
    dois = sorted({record.doi for record in batch if record.doi})
    taken: dict[str, _Holder] = {}
    columns = [getattr(Item, f) for f in DESCRIPTIVE]
    for chunk in _chunks(dois):
        for row in session.execute(select(Item.doi, Item.id, Item.package_id, Package.state, *columns)
                                   .join(Package, Package.id == Item.package_id).where(Item.doi.in_(chunk))):
            taken[row[0]] = _Holder(row[1], row[2], row[3], dict(zip(DESCRIPTIVE, row[4:])))
    return taken


_FAMILIES = {ID_ISSN_PRINT: "issn", ID_ISSN_ONLINE: "issn", ID_ISBN_PRINT: "isbn", ID_ISBN_ONLINE: "isbn"}
_SCHEMES = {"issn": (ID_ISSN_PRINT, ID_ISSN_ONLINE), "isbn": (ID_ISBN_PRINT, ID_ISBN_ONLINE)}


def _key(pair: tuple[str, str]) -> tuple[str, str]:
    """What identifies a title: an ISSN is one whether the title list calls it print or online (ISBN alike)."""
    return _FAMILIES.get(pair[0], pair[0]), pair[1]


class _Titles:
    """The titles of one collection that items link to, found or made a batch of records at a time."""

    def __init__(self, session: Session, collection_id: int) -> None:
        self.session = session
        self.collection_id = collection_id
        self.created = 0
        self._by_identifier: dict[tuple[str, str], int] = {}
        self._by_name: dict[tuple[str, str], int] = {}

    def ids_for(self, batch: list[ItemRecord]) -> list[int | None]:
        """The title id of each record (None for a record that names no title), making the titles missing."""
        wanted = [r for r in batch if r.title_kind and (r.title or r.identifiers)]
        self._look_up(wanted)
        new: list[dict[str, Any]] = []  # titles to make, and the identifiers each takes
        new_identifiers: list[list[tuple[str, str]]] = []
        added: list[tuple[int, tuple[str, str]]] = []  # identifiers found titles gain
        pending: dict[tuple[str, tuple[str, str]], int] = {}  # identifier or name -> index in ``new``
        ids: list[int | None] = []
        for record in batch:
            if not (record.title_kind and (record.title or record.identifiers)):
                ids.append(None)
                continue
            name = (record.title_kind, record.title)
            found = next((self._by_identifier[_key(p)] for p in record.identifiers if _key(p) in self._by_identifier),
                         None)
            if found is None and record.title:
                found = self._by_name.get(name)
            if found is not None:
                for pair in record.identifiers:
                    if _key(pair) not in self._by_identifier:
                        self._by_identifier[_key(pair)] = found
                        added.append((found, pair))
                ids.append(found)
                continue
            index = next((pending[("id", _key(p))] for p in record.identifiers if ("id", _key(p)) in pending),
                         pending.get(("name", name)) if record.title else None)
            if index is None:
                index = len(new)
                new.append({"collection_id": self.collection_id, "kind": record.title_kind,
                            "title": record.title or record.identifiers[0][1], "title_english": record.title_english,
                            "title_transliterated": "", "publisher": record.publisher, "kbart": {}})
                new_identifiers.append([])
                if record.title:
                    pending[("name", name)] = index
            for pair in record.identifiers:
                if ("id", _key(pair)) not in pending:
                    pending[("id", _key(pair))] = index
                    new_identifiers[index].append(pair)
            ids.append(-1 - index)  # made below
        made = self._make(new)
        for index, title_id in enumerate(made):
            for pair in new_identifiers[index]:
                self._by_identifier[_key(pair)] = title_id
                added.append((title_id, pair))
            if new[index]["title"]:
                self._by_name.setdefault((new[index]["kind"], new[index]["title"]), title_id)
        if added:
            self.session.execute(insert(TitleIdentifier.__table__),
                                 [{"title_id": t, "scheme": p[0], "value": p[1]} for t, p in added])
        return [made[-1 - i] if i is not None and i < 0 else i for i in ids]

    def _look_up(self, records: list[ItemRecord]) -> None:
        keys = {_key(p) for r in records for p in r.identifiers} - self._by_identifier.keys()
        pairs = sorted({(scheme, value) for family, value in keys for scheme in _SCHEMES.get(family, (family,))})
        for chunk in _chunks(pairs):
            rows = self.session.execute(
                select(TitleIdentifier.scheme, TitleIdentifier.value, TitleIdentifier.title_id).join(Title).where(
                    Title.collection_id == self.collection_id,
                    tuple_(TitleIdentifier.scheme, TitleIdentifier.value).in_(chunk),
                ).order_by(TitleIdentifier.title_id.desc()))
            self._by_identifier.update({_key((scheme, value)): title_id for scheme, value, title_id in rows})  # lowest
        names = sorted({(r.title_kind, r.title) for r in records if r.title} - self._by_name.keys())
        for chunk in _chunks(names):
            rows = self.session.execute(select(Title.kind, Title.title, Title.id).where(
                Title.collection_id == self.collection_id, tuple_(Title.kind, Title.title).in_(chunk),
            ).order_by(Title.id.desc()))
            self._by_name.update({(kind, title): title_id for kind, title, title_id in rows})

    def _make(self, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        table = Title.__table__
        made = self.session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        ids = list(made.scalars())
        self.created += len(ids)
        return ids


def item_by_doi(repo: Repository, doi: str) -> dict[str, Any]:
    """The item with ``doi``: its metadata, title, package (and its state) and files with their sizes and digests.

    Raises InvalidIdentifier (E115) for a malformed DOI, NotFound (E110) when no item holds it.
    """
    doi = ids.parse_doi(doi)
    with repo.catalog.session() as s:
        item = s.scalars(select(Item).where(Item.doi == doi)).first()
        if item is None:
            raise NotFound(f"no item has the DOI {doi}", doi=doi)
        package = item.package
        stored = {f.path: f for f in s.scalars(select(PackageFile).where(
            PackageFile.package_id == package.id, PackageFile.path.in_([f.path for f in item.files])))}
        replicas = s.scalars(select(Replica).where(Replica.package_id == package.id).order_by(Replica.id)).all()
        title = item.title
        return {
            "doi": item.doi, "kind": item.kind, "title": item.item_title,
            "authors": [a for a in item.authors.split("; ") if a], "language": item.language, "year": item.year,
            "published": item.published, "volume": item.volume, "issue": item.issue, "first_page": item.first_page,
            "last_page": item.last_page, "isbn": item.isbn, "source_format": item.source_format,
            "metadata_path": item.metadata_path,
            "journal": None if title is None else {
                "id": title.id, "kind": title.kind, "title": title.title, "title_english": title.title_english,
                "publisher": title.publisher,
                "identifiers": [{"scheme": i.scheme, "value": i.value} for i in title.identifiers],
            },
            "package": {"id": package.id, "name": package.name, "collection": package.collection.key,
                        "state": package.state,
                        "copies": [{"node": r.node.name, "state": r.state} for r in replicas]},
            "files": [{"path": f.path, "role": f.role, "size": stored[f.path].size if f.path in stored else None,
                       "sha256": stored[f.path].sha256 if f.path in stored else None} for f in item.files],
        }
