"""A version's complete state, read in order of path, and the comparison of two states.

The state of a version is its own payload ``files`` rows plus the
``version_files`` rows that reference files stored by earlier versions
(docs/versions.md).  Both are read in byte order of path, batch by batch,
each batch in a short transaction; the comparison merges two such streams
and holds only the changed, added and removed files.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.catalog.db import Catalog
from preservation.catalog.models import PackageFile
from preservation.catalog.version_models import VersionFile

FETCH_TXT = "fetch.txt"
BATCH = 2000
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


def state_digests(catalog: Catalog, package_id: str, paths: Iterable[str]) -> dict[str, tuple[int, str, str]]:
    """For those of ``paths`` that the version ``package_id`` holds (its own files or references): path ->
    (size, sha256, sha512).  Two queries, whatever the number of paths (give them a batch at a time)."""
    wanted = list(paths)
    if not wanted:
        return {}
    own = (select(PackageFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512)
           .where(PackageFile.package_id == package_id, PackageFile.is_tag.is_(False), PackageFile.path.in_(wanted)))
    referenced = (select(VersionFile.path, PackageFile.size, PackageFile.sha256, PackageFile.sha512)
                  .join(PackageFile, PackageFile.id == VersionFile.file_id)
                  .where(VersionFile.package_id == package_id, VersionFile.path.in_(wanted)))
    with catalog.engine.connect() as conn:
        return {path: (size, sha256, sha512) for query in (own, referenced)
                for path, size, sha256, sha512 in conn.execute(query)}


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
