"""Looking versions up: a version's number and lineage, what changed, what it references, "as of" a date,
and the figures ``status`` shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from preservation.catalog.access_models import Entitlement
from preservation.catalog.db import Catalog
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package, PackageFile
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.errors import NotFound

from .state import CHANGE_KINDS, compare, iter_state


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

    The library's period ends at ``until`` (the last day of the grant that
    opens it, if the grant names years) and, in a ``pca`` collection, at the
    end of the last year its entitlements cover (a library that cancelled in
    2022 reads what was delivered by the end of 2022).  It reads the newest
    version delivered by the end of its period, or the newest kept when the
    period has no end; when nothing was delivered by then (the content it
    paid for came later), the first version kept, the earliest state there
    is.  Deaccessioned versions are passed over; None when every version
    was.  Whether the library may read at all is the access rules' decision
    (preservation.access.rights).  Raises NotFound.
    """
    end = period_end(session, library_id, package_id, until)
    found = version_as_of(session, package_id, end or datetime.max)
    if found is None and end is not None:
        found = first_kept(session, package_id)
    return found


def period_end(session: Session, library_id: int, package_id: str, until: datetime | None = None) -> datetime | None:
    """The end of the period a library reads ``package_id`` as of: ``until``, and in a ``pca`` collection the
    end of the last year its entitlements cover, whichever comes first; None when unbounded.  Raises NotFound."""
    package = session.get(Package, package_id)
    if package is None:
        raise NotFound(f"no package {package_id!r}")
    ends = [until] if until is not None else []
    if package.collection.access_mode == MODE_PCA:
        paid = entitled_until(session, library_id, package.collection_id)
        if paid is not None:
            ends.append(paid)
    return min(ends) if ends else None


def first_kept(session: Session, package_id: str) -> VersionInfo | None:
    """The oldest version of the lineage of ``package_id`` that is not deaccessioned; None when none is."""
    versions = lineage_versions(session, package_id)
    if not versions:
        package = session.get(Package, package_id)
        if package is None or package.state == PACKAGE_DEACCESSIONED:
            return None
        return VersionInfo(package_id, package_id, 1, None, {})
    states = dict(session.execute(select(Package.id, Package.state).where(
        Package.id.in_([v.package_id for v in versions]))).all())
    return next((v for v in versions if states.get(v.package_id) != PACKAGE_DEACCESSIONED), None)


def newest_kept(session: Session, package_id: str) -> VersionInfo | None:
    """The newest version of the lineage of ``package_id`` that is not deaccessioned; None when none is."""
    return version_as_of(session, package_id, datetime.max)
