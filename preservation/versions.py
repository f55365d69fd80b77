"""Versions of a package: what changed, what is stored again, and what a version references.

A version is a package row of its own, bound to its lineage by
``package_versions``; its ``files`` rows are what is stored under its own
prefix, and ``version_files`` references each unchanged payload file where
an earlier version stored it (docs/versions.md).  This module is the one
place that compares states, writes a version's ``fetch.txt`` and reads a
version's complete state back.

Comparisons stream: both states are read in byte order of path and merged;
memory holds only the changed, added and removed files, and the references
of a new version go to a file beside its staging bag, not to a dict.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple
from urllib.parse import quote, unquote

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from preservation.bagit.names import encode_manifest_path
from preservation.catalog.db import Catalog
from preservation.catalog.models import (
    PACKAGE_DEACCESSIONED,
    PACKAGE_PRESERVED,
    REPLICA_VERIFIED,
    Node,
    Package,
    PackageFile,
    Replica,
)
from preservation.catalog.access_models import Entitlement
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.errors import NotFound, VersionRefused

FETCH_TXT = "fetch.txt"
REFERENCES = ".preserve-version-references"
"""Beside the staged bag's tag files, until it is registered: the version's references (never copied to a node)."""
BATCH = 2000
INSERT_BATCH = 5000
CHANGE_KINDS = ("added", "changed", "removed", "renamed", "unchanged")


class StateRow(NamedTuple):
    """One payload file of a version's complete state, and where its bytes are stored."""

    path: str
    size: int
    sha256: str
    sha512: str
    file_id: int
    stored_in: str
    """The package (version) under whose prefix the bytes lie."""
    stored_path: str
    """The bag path they lie at there (a renamed file keeps the path it was stored under)."""

    @property
    def key(self) -> tuple[str, str, int]:
        return self.sha256, self.sha512, self.size

    def digest(self, algorithm: str) -> str:
        return getattr(self, algorithm)


# --- reading a version's state -------------------------------------------------------------


def _own_payload(catalog: Catalog, package_id: str, batch: int) -> Iterator[StateRow]:
    query = (select(PackageFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512, PackageFile.id)
             .where(PackageFile.package_id == package_id, PackageFile.is_tag.is_(False))
             .order_by(PackageFile.path).limit(batch))
    last = None
    while True:
        with catalog.engine.connect() as conn:
            rows = conn.execute(query if last is None else query.where(PackageFile.path > last)).all()
        for path, size, sha256, sha512, file_id in rows:
            yield StateRow(path, size, sha256, sha512, file_id, package_id, path)
        if len(rows) < batch:
            return
        last = rows[-1][0]


def _referenced(catalog: Catalog, package_id: str, batch: int) -> Iterator[StateRow]:
    query = (select(VersionFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512, PackageFile.id,
                    PackageFile.package_id, PackageFile.path)
             .join(PackageFile, PackageFile.id == VersionFile.file_id)
             .where(VersionFile.package_id == package_id)
             .order_by(VersionFile.path).limit(batch))
    last = None
    while True:
        with catalog.engine.connect() as conn:
            rows = conn.execute(query if last is None else query.where(VersionFile.path > last)).all()
        for row in rows:
            yield StateRow(*row)
        if len(rows) < batch:
            return
        last = rows[-1][0]


def iter_state(catalog: Catalog, package_id: str, batch: int = BATCH) -> Iterator[StateRow]:
    """Every payload file of the version ``package_id`` in byte order of path: its own and those it references.

    Each batch is read in a short transaction of its own; nothing is held
    but the current batches.
    """
    return heapq.merge(_own_payload(catalog, package_id, batch), _referenced(catalog, package_id, batch),
                       key=lambda r: r.path)


def iter_version_files(catalog: Catalog, package_id: str, batch: int = BATCH) -> Iterator[list[StateRow]]:
    """The files a restore of the version writes, in batches: its payload state and its own tag files but fetch.txt."""
    rows: list[StateRow] = []
    for row in iter_state(catalog, package_id, batch):
        rows.append(row)
        if len(rows) >= batch:
            yield rows
            rows = []
    query = (select(PackageFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512, PackageFile.id)
             .where(PackageFile.package_id == package_id, PackageFile.is_tag.is_(True), PackageFile.path != FETCH_TXT)
             .order_by(PackageFile.path))
    with catalog.engine.connect() as conn:
        tags = conn.execute(query).all()
    rows += [StateRow(p, size, a, b, i, package_id, p) for p, size, a, b, i in tags]
    if rows:
        yield rows


# --- comparing two states ------------------------------------------------------------------


class Change(NamedTuple):
    kind: str
    """added, changed, removed, renamed or unchanged."""
    path: str
    """The path in the new state (in the old one for ``removed``)."""
    new: Any
    old: StateRow | None
    """The old state's row: for a rename, the file it was renamed from."""


@dataclass
class Comparison:
    """The outcome of :func:`compare`: counts, and the changes themselves but the unchanged files."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_KINDS, 0))
    changes: list[Change] = field(default_factory=list)


def compare(new: Iterable[Any], old: Iterable[StateRow], on_unchanged=None) -> Comparison:
    """Compare two states, each in byte order of path (``new`` rows have path, size, sha256, sha512).

    Same path, same size and both digests: unchanged (passed to
    ``on_unchanged(new_row, old_row)`` and counted, never held).  A removed
    path and an added path with the same bytes are one rename.
    """
    out = Comparison()
    added: list[tuple[Any, tuple[str, str, int]]] = []
    removed: dict[tuple[str, str, int], list[StateRow]] = {}
    new_it, old_it = iter(new), iter(old)
    a, b = next(new_it, None), next(old_it, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.path < b.path):
            added.append((a, (a.sha256, a.sha512, a.size)))
            a = next(new_it, None)
        elif a is None or b.path < a.path:
            removed.setdefault(b.key, []).append(b)
            b = next(old_it, None)
        else:
            if (a.sha256, a.sha512, a.size) == b.key:
                out.counts["unchanged"] += 1
                if on_unchanged is not None:
                    on_unchanged(a, b)
            else:
                out.counts["changed"] += 1
                out.changes.append(Change("changed", a.path, a, b))
            a, b = next(new_it, None), next(old_it, None)
    for row, key in added:
        was = removed.get(key)
        if was:
            out.counts["renamed"] += 1
            out.changes.append(Change("renamed", row.path, row, was.pop(0)))
        else:
            out.counts["added"] += 1
            out.changes.append(Change("added", row.path, row, None))
    for rows in removed.values():
        for row in rows:
            out.counts["removed"] += 1
            out.changes.append(Change("removed", row.path, None, row))
    out.changes.sort(key=lambda c: c.path)
    return out


# --- a new version ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Previous:
    """The version a new delivery follows: the newest of its lineage that is not deaccessioned."""

    lineage_id: str
    package_id: str
    number: int
    node_ids: tuple[int, ...]
    newest: int
    """The highest number the lineage has used (a deaccessioned version keeps its number)."""

    @property
    def next_number(self) -> int:
        return self.newest + 1


def previous_version(session: Session, package_id: str, collection_key: str) -> Previous:
    """The newest version of the lineage ``package_id`` belongs to, checked fit to be followed.

    Raises NotFound (no such package), VersionRefused (another collection,
    deaccessioned, or not preserved yet: a version's copies go to the nodes
    of the previous version's verified copies).
    """
    package = session.get(Package, package_id)
    if package is None:
        raise NotFound(f"no package {package_id!r}")
    own = session.get(PackageVersion, package_id)
    lineage_id = own.lineage_id if own is not None else package_id
    rows = session.scalars(select(PackageVersion).where(PackageVersion.lineage_id == lineage_id)
                           .order_by(PackageVersion.number.desc())).all()
    newest = rows[0].number if rows else 1
    kept = [r for r in rows if session.get(Package, r.package_id).state != PACKAGE_DEACCESSIONED]
    if rows and not kept:
        raise VersionRefused("every version of it was deaccessioned; ingest the delivery as a new package",
                             package=lineage_id)
    latest = session.get(Package, kept[0].package_id) if rows else session.get(Package, lineage_id)
    number = kept[0].number if rows else 1
    if latest.collection.key != collection_key:
        raise VersionRefused(f"it belongs to collection {latest.collection.key!r}, not {collection_key!r}",
                             package=lineage_id)
    if latest.state != PACKAGE_PRESERVED:
        raise VersionRefused(
            f"its version {number} ({latest.id}) is {latest.state}; a new version is accepted once the one before "
            "it is preserved (see `preserve status`)", package=lineage_id)
    nodes = tuple(sorted(r.node_id for r in latest.replicas if r.state == REPLICA_VERIFIED))
    return Previous(lineage_id, latest.id, number, nodes, newest)


@dataclass
class VersionPlan:
    """What a staged delivery is as version ``number``: the files it stores and those it references."""

    previous: Previous
    number: int
    stored: set[str]
    """Payload paths stored under the new version's prefix (added and changed)."""
    references: Path
    """JSON lines ``[path, file_id]``, one per payload file the version references."""
    counts: dict[str, int]
    stored_bytes: int
    referenced_bytes: int

    def stores(self, path: str) -> bool:
        return not path.startswith("data/") or path in self.stored

    def summary(self) -> dict[str, Any]:
        return {"lineage_id": self.previous.lineage_id, "number": self.number,
                "previous_id": self.previous.package_id, **self.counts, "stored_bytes": self.stored_bytes,
                "referenced_bytes": self.referenced_bytes}

    def discard(self) -> None:
        self.references.unlink(missing_ok=True)


class _Staged(NamedTuple):
    path: str
    size: int
    sha256: str
    sha512: str


def _staged_payload(bag) -> Iterator[_Staged]:
    table = bag.payload
    for i in sorted(range(len(table)), key=table.path_at):
        yield _Staged(table.path_at(i), table.size_at(i), table.hexdigest_at(i, "sha256"),
                      table.hexdigest_at(i, "sha512"))


def fetch_line(row: StateRow, path: str) -> str:
    """The fetch.txt line (RFC 8493 §2.2.3) of ``path``, whose bytes lie at ``row``'s place in its package."""
    url = f"file:../{quote(row.stored_in, safe='')}/{quote(row.stored_path, safe='/')}"
    return f"{url} {row.size} {encode_manifest_path(path)}\n"


def plan_version(catalog: Catalog, previous: Previous, bag) -> VersionPlan:
    """Compare the staged ``bag`` with ``previous``, write its fetch.txt, and add that to its tag files.

    The references go to a file in the staging bag (:data:`REFERENCES`, not
    a file of the bag: no catalog row, never copied), one line per referenced
    file; the caller removes it (``discard``), the staging sweep with the bag.
    """
    bag_dir = Path(bag.path)
    references = bag_dir / REFERENCES
    if references.exists() or (bag_dir / FETCH_TXT).exists():
        raise VersionRefused(f"the staged bag already has {REFERENCES} or {FETCH_TXT}", package=previous.lineage_id)
    fetch_path = bag_dir / FETCH_TXT
    digests = {a: hashlib.new(a) for a in bag.tag_files.algorithms}
    referenced = {"bytes": 0}
    with open(references, "w", encoding="utf-8") as refs, open(fetch_path, "wb") as fetch:
        def reference(new: _Staged, old: StateRow) -> None:
            line = fetch_line(old, new.path).encode("utf-8")
            fetch.write(line)
            for d in digests.values():
                d.update(line)
            refs.write(json.dumps([new.path, old.file_id], ensure_ascii=False) + "\n")
            referenced["bytes"] += new.size

        comparison = compare(_staged_payload(bag), iter_state(catalog, previous.package_id),
                             on_unchanged=reference)
        for change in comparison.changes:  # a renamed file is not stored again: its bytes are where they were
            if change.kind == "renamed":
                reference(change.new, change.old)
        fetch.flush()
        os.fsync(fetch.fileno())
        size = fetch.tell()
    bag.tag_files.append(FETCH_TXT, size, b"".join(d.digest() for d in digests.values()))
    stored = {c.path for c in comparison.changes if c.kind in ("added", "changed")}
    stored_bytes = sum(c.new.size for c in comparison.changes if c.kind in ("added", "changed"))
    return VersionPlan(previous, previous.next_number, stored, references, comparison.counts, stored_bytes,
                       referenced["bytes"])


def record_version(session: Session, package_id: str, plan: VersionPlan) -> None:
    """Bind ``package_id`` into its lineage as ``plan.number`` and insert its references, in the caller's transaction.

    Raises VersionRefused when another version took the number meanwhile.
    """
    lineage = plan.previous.lineage_id
    newest = session.scalars(select(PackageVersion.number).where(PackageVersion.lineage_id == lineage)
                             .order_by(PackageVersion.number.desc()).limit(1)).first()
    if (newest or 1) != plan.previous.newest:
        raise VersionRefused(f"version {plan.number} was registered by another ingest meanwhile; ingest again",
                             package=lineage)
    if newest is None:
        session.add(PackageVersion(package_id=lineage, lineage_id=lineage, number=1, previous_id=None, changes={}))
    session.add(PackageVersion(package_id=package_id, lineage_id=lineage, number=plan.number,
                               previous_id=plan.previous.package_id,
                               changes={**plan.counts, "stored_bytes": plan.stored_bytes,
                                        "referenced_bytes": plan.referenced_bytes}))
    session.flush()
    batch: list[dict[str, Any]] = []
    with open(plan.references, encoding="utf-8") as refs:
        for line in refs:
            path, file_id = json.loads(line)
            batch.append({"package_id": package_id, "path": path, "file_id": file_id})
            if len(batch) >= INSERT_BATCH:
                session.execute(insert(VersionFile.__table__), batch)
                batch = []
    if batch:
        session.execute(insert(VersionFile.__table__), batch)


# --- looking versions up ----------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    package_id: str
    lineage_id: str
    number: int
    previous_id: str | None
    changes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"package_id": self.package_id, "lineage_id": self.lineage_id, "number": self.number,
                "previous_id": self.previous_id, "changes": dict(self.changes)}


def _info(row: PackageVersion) -> VersionInfo:
    return VersionInfo(row.package_id, row.lineage_id, row.number, row.previous_id, dict(row.changes or {}))


def version_of(session: Session, package_id: str) -> VersionInfo | None:
    """The version row of ``package_id``; None for a package that was never versioned."""
    row = session.get(PackageVersion, package_id)
    return _info(row) if row is not None else None


def lineage_versions(session: Session, package_id: str) -> list[VersionInfo]:
    """Every version of the lineage ``package_id`` belongs to, oldest first ([] when never versioned)."""
    own = session.get(PackageVersion, package_id)
    lineage = own.lineage_id if own is not None else package_id
    rows = session.scalars(select(PackageVersion).where(PackageVersion.lineage_id == lineage)
                           .order_by(PackageVersion.number)).all()
    return [_info(r) for r in rows]


def resolve_version(session: Session, package_id: str, number: int) -> str:
    """The package id of version ``number`` of the lineage of ``package_id``; raises NotFound."""
    if session.get(Package, package_id) is None:
        raise NotFound(f"no package {package_id!r}")
    versions = lineage_versions(session, package_id)
    if not versions:
        if number == 1:
            return package_id
        raise NotFound(f"package {package_id} has only version 1")
    for v in versions:
        if v.number == number:
            return v.package_id
    raise NotFound(f"package {versions[0].lineage_id} has versions 1 to {versions[-1].number}, not {number}")


def changes(catalog: Catalog, package_id: str) -> dict[str, Any]:
    """What changed in the version ``package_id`` against the one before: counts and lists of paths."""
    with catalog.session() as s:
        info = version_of(s, package_id)
    if info is None or info.previous_id is None:  # the first version: everything was added (counted, not listed)
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        counts["added"] = sum(1 for _ in iter_state(catalog, package_id))
        return {"package_id": package_id, "number": 1, "previous_id": None, "counts": counts,
                "added": None, "changed": [], "removed": [], "renamed": []}
    comparison = compare(iter_state(catalog, package_id), iter_state(catalog, info.previous_id))
    lists = {k: [] for k in ("added", "changed", "removed", "renamed")}
    for c in comparison.changes:
        lists[c.kind].append({"from": c.old.path, "to": c.path} if c.kind == "renamed" else c.path)
    return {"package_id": package_id, "number": info.number, "previous_id": info.previous_id,
            "counts": comparison.counts, **lists}


def referencing_versions(session: Session, package_ids: Iterable[str]) -> dict[str, int]:
    """Versions outside ``package_ids`` that reference files stored by them: package id -> number of files."""
    ids = list(package_ids)
    rows = session.execute(
        select(VersionFile.package_id, PackageFile.id)
        .join(PackageFile, PackageFile.id == VersionFile.file_id)
        .where(PackageFile.package_id.in_(ids), VersionFile.package_id.not_in(ids))
    ).all()
    out: dict[str, int] = {}
    for pid, _ in rows:
        out[pid] = out.get(pid, 0) + 1
    return out


def locate(session: Session, package_id: str, path: str) -> StateRow | None:
    """Where the file ``path`` of the version ``package_id`` is stored (its own file, or a reference); None if absent."""
    own = session.execute(select(PackageFile.size, PackageFile.sha256, PackageFile.sha512, PackageFile.id)
                          .where(PackageFile.package_id == package_id, PackageFile.path == path)).first()
    if own is not None:
        return StateRow(path, *own, package_id, path)
    ref = session.execute(select(VersionFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512,
                                 PackageFile.id, PackageFile.package_id, PackageFile.path)
                          .join(PackageFile, PackageFile.id == VersionFile.file_id)
                          .where(VersionFile.package_id == package_id, VersionFile.path == path)).first()
    return StateRow(*ref) if ref is not None else None


def version_as_of(session: Session, package_id: str, until: datetime) -> VersionInfo | None:
    """The newest version of the lineage of ``package_id`` delivered (registered) at or before ``until``.

    A package never versioned is its own version 1; deaccessioned versions
    are passed over.  None when nothing of the lineage had been delivered by then.
    """
    own = session.get(PackageVersion, package_id)
    lineage = own.lineage_id if own is not None else package_id
    row = session.scalars(
        select(PackageVersion).join(Package, Package.id == PackageVersion.package_id)
        .where(PackageVersion.lineage_id == lineage, Package.created_at <= until,
               Package.state != PACKAGE_DEACCESSIONED)
        .order_by(PackageVersion.number.desc()).limit(1)).first()
    if row is not None:
        return _info(row)
    package = session.get(Package, lineage)
    if package is None or package.created_at > until or package.state == PACKAGE_DEACCESSIONED:
        return None
    if own is None and session.scalar(select(PackageVersion.package_id).where(PackageVersion.lineage_id == lineage)
                                      .limit(1)) is None:
        return VersionInfo(lineage, lineage, 1, None, {})
    return None


def rebind_version(session: Session, package_id: str, record: dict[str, Any], fetch: Iterable[Any]) -> list[str]:
    """Bind a package rebuilt from the nodes into its lineage again (its record's ``version``, its fetch.txt).

    Every package of the lineage must be registered already.  Returns the
    problems found (a reference to a file no package stores, a malformed
    record); what could be bound is bound.
    """
    version = record.get("version") or {}
    lineage, number, previous = version.get("lineage_id"), version.get("number"), version.get("previous_id")
    if not isinstance(lineage, str) or not isinstance(number, int) or isinstance(number, bool) or number < 2:
        return [f"the package record's version is not understood: {version!r}"]
    problems = []
    if session.get(PackageVersion, lineage) is None and session.get(Package, lineage) is not None:
        session.add(PackageVersion(package_id=lineage, lineage_id=lineage, number=1, previous_id=None, changes={}))
    session.add(PackageVersion(package_id=package_id, lineage_id=lineage, number=number,
                               previous_id=previous if isinstance(previous, str) else None,
                               changes=version.get("changes") if isinstance(version.get("changes"), dict) else {}))
    session.flush()
    batch: list[dict[str, Any]] = []
    for entry in fetch:
        target = _fetch_target(entry.url)
        file_id = None
        if target is not None:
            file_id = session.scalar(select(PackageFile.id).where(PackageFile.package_id == target[0],
                                                                  PackageFile.path == target[1]))
        if file_id is None:
            problems.append(f"fetch.txt: {entry.path} refers to {entry.url}, which no rebuilt package stores")
            continue
        batch.append({"package_id": package_id, "path": entry.path, "file_id": file_id})
        if len(batch) >= INSERT_BATCH:
            session.execute(insert(VersionFile.__table__), batch)
            batch = []
    if batch:
        session.execute(insert(VersionFile.__table__), batch)
    return problems


def _fetch_target(url: str) -> tuple[str, str] | None:
    """(package id, bag path) of a URL :func:`fetch_line` wrote; None for any other URL."""
    prefix = "file:../"
    if not url.startswith(prefix):
        return None
    package_id, sep, path = url[len(prefix):].partition("/")
    if not sep:
        return None
    return unquote(package_id), unquote(path)


def storage_summary(session: Session, listed: int = 50) -> dict[str, Any]:
    """For ``status``: the versions per package and the bytes each node did not store again.

    Reads one row per version (never the file tables): a version's
    ``referenced_bytes`` are bytes its copies reference instead of storing,
    on every node that holds a copy of it.
    """
    per_lineage: dict[str, int] = {}
    saved: dict[str, int] = {}
    rows = session.execute(select(PackageVersion.lineage_id, PackageVersion.package_id, PackageVersion.changes)).all()
    holders: dict[str, list[str]] = {}
    if rows:
        for package_id, node in session.execute(select(Replica.package_id, Node.name).join(Node)
                                                .join(PackageVersion, PackageVersion.package_id == Replica.package_id)):
            holders.setdefault(package_id, []).append(node)
    for lineage, package_id, changes in rows:
        per_lineage[lineage] = per_lineage.get(lineage, 0) + 1
        referenced = int((changes or {}).get("referenced_bytes") or 0)
        for node in holders.get(package_id, ()):
            saved[node] = saved.get(node, 0) + referenced
    most = sorted(per_lineage.items(), key=lambda kv: (-kv[1], kv[0]))[:listed]
    return {"versioned_packages": len(per_lineage), "versions": sum(per_lineage.values()),
            "per_package": [{"package_id": k, "versions": v} for k, v in most],
            "bytes_saved_per_node": dict(sorted(saved.items()))}


def referenced_packages(session: Session, package_id: str) -> list[str]:
    """The earlier versions whose stored files the version ``package_id`` references, in id order."""
    return sorted(session.scalars(
        select(PackageFile.package_id).join(VersionFile, VersionFile.file_id == PackageFile.id)
        .where(VersionFile.package_id == package_id).distinct()))


MODE_PCA = "pca"


def entitled_until(session: Session, library_id: int, collection_id: int) -> datetime | None:
    """The end of the last year a library paid for in a collection (its entitlements); None without any."""
    last = session.scalar(select(func.max(Entitlement.to_year)).where(Entitlement.library_id == library_id,
                                                                       Entitlement.collection_id == collection_id))
    if last is None:
        return None
    return datetime(min(int(last), 9998), 12, 31, 23, 59, 59, 999999)


def version_for_library(session: Session, library_id: int, package_id: str,
                        until: datetime | None = None) -> VersionInfo | None:
    """The version of the lineage of ``package_id`` a library reads ("as of" access, docs/versions.md).

    In a ``pca`` collection it is the state delivered up to the end of the
    library's entitled years (a library that cancelled in 2022 reads what
    was delivered by the end of 2022); ``until`` (a grant's last date) ends
    the period earlier.  Elsewhere it is the newest version kept.  None when
    nothing was delivered within the period.  Whether the library may read
    at all is the access rules' decision (preservation.access.rights).
    """
    package = session.get(Package, package_id)
    if package is None:
        raise NotFound(f"no package {package_id!r}")
    ends = [until] if until is not None else []
    if package.collection.access_mode == MODE_PCA:
        paid = entitled_until(session, library_id, package.collection_id)
        if paid is None:
            return None
        ends.append(paid)
    return version_as_of(session, package_id, min(ends) if ends else datetime.max)
