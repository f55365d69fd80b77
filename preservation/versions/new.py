"""A new version: the version it follows, what it stores and references, its fetch.txt, its registration.

:func:`plan_version` compares the staged bag with the previous version's
state, writes the bag's ``fetch.txt`` and the references (to a file in the
staging bag, not to memory); :func:`record_version` registers them in the
ingest's one transaction.  :func:`rebind_version` does the same from what
the nodes hold, for the catalog rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple
from urllib.parse import quote, unquote

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from preservation.bagit.names import encode_manifest_path
from preservation.catalog.db import Catalog
from preservation.catalog.models import (
    PACKAGE_DEACCESSIONED,
    PACKAGE_PRESERVED,
    REPLICA_VERIFIED,
    Package,
    PackageFile,
)
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.errors import BagError, NotFound, VersionRefused

from .state import FETCH_TXT, StateRow, compare, iter_state, state_digests

REFERENCES = ".preserve-version-references"
"""Beside the staged bag's tag files, until it is registered: the version's references (never copied to a node)."""
INSERT_BATCH = 5000


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


def unchanged_digests(catalog: Catalog, previous: Previous) -> Callable[[list[tuple[str, int]]], dict[str, bytes]]:
    """What the bag writer asks before it copies a batch of payload files (``create_bag``'s ``known``):
    for each (path, size) that the version before holds at that path with that size, its sha256 and sha512
    digests (binary, in that order).  A delivered file with those bytes is unchanged: the new version
    references it where it is stored, so its staging bag needs no copy of it."""
    def known(batch: list[tuple[str, int]]) -> dict[str, bytes]:
        sizes = dict(batch)
        return {path: bytes.fromhex(sha256) + bytes.fromhex(sha512)
                for path, (size, sha256, sha512) in state_digests(catalog, previous.package_id, sizes).items()
                if sizes[path] == size}
    return known


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
    if bag.unwritten:  # the writer left out files the version before holds: none of them may be one to store
        absent = sorted(p for p in stored if not (bag_dir / p).is_file())
        if absent:
            raise BagError(f"the staged bag lacks {len(absent)} file(s) the version stores, first {absent[0]!r}: "
                           "ingest the delivery again")
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
    try:
        session.flush()
    except IntegrityError as e:  # another ingest's transaction took the number (PostgreSQL waits for it, then refuses)
        raise VersionRefused(f"version {plan.number} was registered by another ingest meanwhile; ingest again",
                             package=lineage) from e
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
    if session.get(Package, lineage) is None:
        return [f"its record names version {number} of {lineage!r}, a package no node holds"]
    if not isinstance(previous, str) or session.get(Package, previous) is None:
        previous = None
    problems = []
    if session.get(PackageVersion, lineage) is None:
        session.add(PackageVersion(package_id=lineage, lineage_id=lineage, number=1, previous_id=None, changes={}))
    session.add(PackageVersion(package_id=package_id, lineage_id=lineage, number=number,
                               previous_id=previous,
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
