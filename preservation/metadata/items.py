"""Items in the catalog: writing what extraction found, in the ingest transaction, and reading one back.

:func:`register_items` turns the records of a delivery into ``items`` and
``item_files`` rows with bulk Core inserts, a few thousand at a time, and
links each item to a title of the package's collection: the title that
holds one of its ISSNs or ISBNs, else the title of the same kind and name,
else a new title.  A DOI names one item: a DOI already held by another
item (of another package, or earlier in the same delivery) is a finding,
and the item is stored without it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator

from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from preservation import codes
from preservation import identifiers as ids
from preservation.catalog.library_models import Item, ItemFile, Title, TitleIdentifier
from preservation.catalog.models import Package, PackageFile, Replica
from preservation.errors import NotFound
from preservation.findings import FindingList
from preservation.metadata.records import ItemRecord
from preservation.repository import Repository

BATCH = 2000
_IN = 500  # values in one IN (…) list

TitleKey = tuple[str, ...]


def _batches(records: Iterable[ItemRecord], size: int = BATCH) -> Iterator[list[ItemRecord]]:
    batch: list[ItemRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _IN):
        yield values[i:i + _IN]


def register_items(session: Session, package_id: str, records: Iterable[ItemRecord],
                   findings: FindingList) -> dict[str, Any]:
    """Write ``records`` as items of ``package_id`` (already flushed in ``session``); a short summary."""
    collection_id = session.get(Package, package_id).collection_id
    titles = _Titles(session, collection_id)
    items = files = 0
    sources: Counter[str] = Counter()
    for batch in _batches(records):
        present = _present_files(session, package_id, batch)
        taken = _taken_dois(session, batch)
        rows, item_files = [], []
        for record in batch:
            doi = record.doi or None
            if doi is not None and doi in taken:
                where = f" ({record.where})" if record.where else ""
                codes.note(findings, codes.MD_DOI_TAKEN, f"the DOI {doi} is already held by the item of package "
                           f"{taken[doi]}{where}: this item is stored without it", record.metadata_path,
                           doi=doi, package_id=taken[doi])
                doi = None
            elif doi is not None:
                taken[doi] = package_id
            rows.append({
                "package_id": package_id, "title_id": titles.id_for(record), "kind": record.kind, "doi": doi,
                "item_title": record.item_title, "authors": "; ".join(record.authors), "language": record.language,
                "year": record.year, "published": record.published, "volume": record.volume, "issue": record.issue,
                "first_page": record.first_page, "last_page": record.last_page, "isbn": record.isbn,
                "source_format": record.source_format, "metadata_path": record.metadata_path,
            })
            item_files.append(_files_of(record, present, findings))
            sources[record.source_format] += 1
        table = Item.__table__
        ids_ = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars().all()
        file_rows = [{"item_id": item_id, "package_id": package_id, "path": path, "role": role}
                     for item_id, own in zip(ids_, item_files) for path, role in own]
        if file_rows:
            session.execute(insert(ItemFile.__table__), file_rows)
        items += len(rows)
        files += len(file_rows)
    return {"items": items, "item_files": files, "titles_created": titles.created, "sources": dict(sources)}


def _present_files(session: Session, package_id: str, batch: list[ItemRecord]) -> set[str]:
    """Which of the paths the batch's records name are files of the package."""
    wanted = sorted({path for record in batch for path, _, _ in record.files})
    present: set[str] = set()
    for chunk in _chunks(wanted):
        present.update(session.scalars(select(PackageFile.path).where(
            PackageFile.package_id == package_id, PackageFile.path.in_(chunk))))
    return present


def _taken_dois(session: Session, batch: list[ItemRecord]) -> dict[str, str]:
    """The batch's DOIs that an item already holds, with that item's package."""
    dois = sorted({record.doi for record in batch if record.doi})
    taken: dict[str, str] = {}
    for chunk in _chunks(dois):
        taken.update(session.execute(select(Item.doi, Item.package_id).where(Item.doi.in_(chunk))).tuples().all())
    return taken


def _files_of(record: ItemRecord, present: set[str], findings: FindingList) -> list[tuple[str, str]]:
    """The record's files that the package holds, each once (its first role wins); a named absent file is a finding."""
    own: dict[str, str] = {}
    for path, role, named in record.files:
        if path in present:
            own.setdefault(path, role)
        elif named:
            codes.note(findings, codes.MD_FILE_MISSING, f"the metadata names {path}, which the delivery does not "
                       "hold", record.metadata_path, file=path)
    return list(own.items())


class _Titles:
    """The titles of one collection that items link to, found or created once each per ingest."""

    def __init__(self, session: Session, collection_id: int) -> None:
        self.session = session
        self.collection_id = collection_id
        self.created = 0
        self._cache: dict[TitleKey, int] = {}

    def id_for(self, record: ItemRecord) -> int | None:
        if not record.title_kind or not (record.title or record.identifiers):
            return None
        key: TitleKey = tuple(sorted(f"{s}:{v}" for s, v in record.identifiers)) or (record.title_kind, record.title)
        if key not in self._cache:
            self._cache[key] = self._find(record) or self._create(record)
        return self._cache[key]

    def _find(self, record: ItemRecord) -> int | None:
        if record.identifiers:
            found = self.session.scalars(
                select(TitleIdentifier.title_id).join(Title).where(
                    Title.collection_id == self.collection_id,
                    tuple_(TitleIdentifier.scheme, TitleIdentifier.value).in_(record.identifiers),
                ).order_by(TitleIdentifier.title_id)
            ).first()
            if found is not None:
                return found
        if not record.title:
            return None
        return self.session.scalars(select(Title.id).where(
            Title.collection_id == self.collection_id, Title.kind == record.title_kind, Title.title == record.title,
        ).order_by(Title.id)).first()

    def _create(self, record: ItemRecord) -> int:
        name = record.title or next((v for _, v in record.identifiers), "")
        title = Title(collection_id=self.collection_id, kind=record.title_kind, title=name,
                      title_english=record.title_english, publisher=record.publisher if record.title_kind else "",
                      kbart={})
        title.identifiers = [TitleIdentifier(scheme=s, value=v) for s, v in dict.fromkeys(record.identifiers)]
        self.session.add(title)
        self.session.flush()
        self.created += 1
        return title.id


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
