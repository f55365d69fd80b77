"""A version's files and its changes, a page at a time: what the access service lists.

A version's files, as a reader sees them, are its delivered state: its
payload (stored or referenced) and its own tag files but ``fetch.txt``,
which only says where the unchanged bytes lie on a node (a restore or a zip
of the version holds every file instead).  The changes of a version are the
comparison with the version before (:func:`.state.compare`); of version 1,
every payload file is added.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from sqlalchemy import false, func, select, union_all
from sqlalchemy.orm import Session

from preservation.catalog.db import Catalog
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package, PackageFile
from preservation.catalog.version_models import VersionFile
from preservation.errors import InvalidRequest, NotFound

from .lookup import lineage_versions, version_of
from .state import CHANGE_KINDS, FETCH_TXT, compare, iter_state

LISTED_KINDS = ("added", "changed", "removed", "renamed")


def state_rows(package_id: str) -> Any:
    """The files of the version ``package_id`` as delivered, as a selectable of (path, size, sha256, is_tag)."""
    own = (select(PackageFile.path.label("path"), PackageFile.size.label("size"), PackageFile.sha256.label("sha256"),
                  PackageFile.is_tag.label("is_tag"))
           .where(PackageFile.package_id == package_id, PackageFile.path != FETCH_TXT))
    referenced = (select(VersionFile.path.label("path"), PackageFile.size.label("size"),
                         PackageFile.sha256.label("sha256"), false().label("is_tag"))
                  .join(PackageFile, PackageFile.id == VersionFile.file_id)
                  .where(VersionFile.package_id == package_id))
    return union_all(own, referenced)


def state_files(session: Session, package_id: str, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(total, one page) of the files of the version ``package_id`` as delivered, in byte order of path."""
    both = state_rows(package_id).subquery()
    total = session.scalar(select(func.count()).select_from(both)) or 0
    rows = session.execute(select(both.c.path, both.c.size, both.c.sha256, both.c.is_tag)
                           .order_by(both.c.path).offset(offset).limit(limit)).all()
    return total, [{"path": p, "size": size, "sha256": sha, "tag_file": bool(is_tag)} for p, size, sha, is_tag in rows]


def versions_listed(session: Session, package_id: str) -> list[dict[str, Any]]:
    """Every version of the lineage of ``package_id``, oldest first: number, package id, delivery date, state
    and the counts of what changed (a package never versioned is its own version 1)."""
    found = lineage_versions(session, package_id)
    if not found:
        package = session.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}")
        rows = [(1, package, {})]
    else:
        packages = {p.id: p for p in session.scalars(select(Package).where(
            Package.id.in_([v.package_id for v in found])))}
        rows = [(v.number, packages[v.package_id], v.changes) for v in found]
    out = []
    for number, package, counts in rows:
        listed = {k: int(counts.get(k, 0)) for k in CHANGE_KINDS} if number > 1 else None
        out.append({"number": number, "package_id": package.id, "name": package.name,
                    "delivered_at": package.created_at, "state": package.state,
                    "deaccessioned": package.state == PACKAGE_DEACCESSIONED,
                    "payload_files": package.payload_files, "payload_bytes": package.payload_bytes,
                    "changes": listed})
    return out


def changes_page(catalog: Catalog, package_id: str, *, kind: str | None, offset: int,
                 limit: int) -> dict[str, Any]:
    """What changed in the version ``package_id``: its counts and one page of its changes, in byte order of path.

    Each change is ``{"kind", "path"}`` (``"from"`` too for a rename: the
    path of the earlier version it was renamed from).  ``kind`` keeps only
    one kind.  Raises InvalidRequest for an unknown kind.
    """
    if kind is not None and kind not in LISTED_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(LISTED_KINDS)}")
    with catalog.session() as s:
        info = version_of(s, package_id)
    if info is None or info.previous_id is None:  # version 1: every payload file was added
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        with catalog.session() as s:
            counts["added"] = s.scalar(select(func.count()).select_from(PackageFile).where(
                PackageFile.package_id == package_id, PackageFile.is_tag.is_(False))) or 0
        total = counts["added"] if kind in (None, "added") else 0
        page = ([{"kind": "added", "path": row.path} for row in islice(iter_state(catalog, package_id),
                                                                         offset, offset + limit)]
                if total else [])
        return {"package_id": package_id, "number": 1, "previous_id": None, "counts": counts,
                "changes": page, "count": len(page), "total": total, "offset": offset, "limit": limit}
    comparison = compare(iter_state(catalog, package_id), iter_state(catalog, info.previous_id))
    chosen = [c for c in comparison.changes if kind is None or c.kind == kind]
    page = []
    for c in chosen[offset:offset + limit]:
        entry = {"kind": c.kind, "path": c.path}
        if c.kind == "renamed":
            entry["from"] = c.old.path
        page.append(entry)
    return {"package_id": package_id, "number": info.number, "previous_id": info.previous_id,
            "counts": comparison.counts, "changes": page, "count": len(page), "total": len(chosen),
            "offset": offset, "limit": limit}

