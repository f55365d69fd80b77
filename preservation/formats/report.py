"""The format profile of what is preserved: files and bytes per format, and what is at risk.

Every figure is one aggregate query over ``file_formats`` (its ``size``
column spares a join with ``files``); what counts as *at risk* is the
format policy's ``at_risk`` list (PUIDs and flags), turned into one SQL
condition, so the report follows the policy in force, not the one of the
day each package was ingested.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import ColumnElement, case, false, func, or_, select
from sqlalchemy.orm import Session

from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import Package
from preservation.collection import get_collection
from preservation.errors import NotFound
from preservation.policy import FormatsPolicy
from preservation.repository import Repository

CSV_COLUMNS = ["puid", "mime", "format_name", "format_version", "files", "bytes", "unidentified", "invalid",
               "encrypted", "drm", "at_risk"]
LISTED = 1000
"""Files a package's format listing names at most (the per-format summary counts them all)."""


def _flag(flag: str, policy: FormatsPolicy) -> ColumnElement[bool]:
    """The SQL condition of one policy flag (``preservation.policy.FORMAT_FLAGS``)."""
    if flag == "unidentified":
        return FileFormat.basis.in_(("none", "extension"))
    if flag == "extension_only":
        return FileFormat.basis == "extension"
    if flag == "encrypted":
        return FileFormat.encrypted.is_(True)
    if flag == "drm":
        return FileFormat.drm.is_(True)
    if flag == "invalid":
        return FileFormat.validation == "invalid"
    if flag == "withdrawn":
        return FileFormat.puid.in_(policy.withdrawn) if policy.withdrawn else false()
    return FileFormat.puid == flag


def at_risk(policy: FormatsPolicy) -> ColumnElement[bool]:
    """Whether a ``file_formats`` row is at risk under ``policy`` (its ``at_risk`` PUIDs and flags)."""
    conditions = [_flag(entry, policy) for entry in policy.at_risk]
    return or_(*conditions) if conditions else false()


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _bytes(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, FileFormat.size), else_=0)), 0)


def _profile(s: Session, policy: FormatsPolicy, *where: ColumnElement[bool]) -> dict[str, Any]:
    risky = at_risk(policy)
    unidentified = _flag("unidentified", policy)
    invalid = _flag("invalid", policy)
    measures = (
        func.count().label("files"), func.coalesce(func.sum(FileFormat.size), 0).label("bytes"),
        _count(unidentified).label("unidentified"), _count(invalid).label("invalid"),
        _count(FileFormat.encrypted.is_(True)).label("encrypted"), _count(FileFormat.drm.is_(True)).label("drm"),
        _count(risky).label("at_risk"), _bytes(risky).label("at_risk_bytes"),
    )
    query = (select(FileFormat.puid, FileFormat.mime, FileFormat.format_name, FileFormat.format_version, *measures)
             .join(Package, Package.id == FileFormat.package_id).where(*where)
             .group_by(FileFormat.puid, FileFormat.mime, FileFormat.format_name, FileFormat.format_version))
    formats = []
    totals = {"files": 0, "bytes": 0, "unidentified": 0, "invalid": 0, "encrypted": 0, "drm": 0, "at_risk": 0,
              "at_risk_bytes": 0}
    for row in s.execute(query):
        entry = {"puid": row.puid, "mime": row.mime, "format_name": row.format_name,
                 "format_version": row.format_version}
        for key in totals:
            value = int(getattr(row, key))
            entry[key] = value
            totals[key] += value
        formats.append(entry)
    formats.sort(key=lambda f: (-f["files"], f["puid"] or "", f["mime"], f["format_name"], f["format_version"]))
    versions = [v for (v,) in s.execute(select(FileFormat.signature_version).join(
        Package, Package.id == FileFormat.package_id).where(*where).distinct().order_by(FileFormat.signature_version))]
    return {"totals": totals, "formats": formats, "signature_versions": versions}


def format_report(repo: Repository, collection: str | None = None) -> dict[str, Any]:
    """Files and bytes per format (PUID, MIME, name, version) with the unidentified, invalid, locked, at risk.

    Raises NotFound (E110) for an unknown collection.
    """
    policy = repo.policy.formats
    with repo.catalog.session() as s:
        where = []
        if collection is not None:
            where.append(Package.collection_id == get_collection(s, collection).id)
        profile = _profile(s, policy, *where)
    return {"collection": collection, "policy": repo.policy.label, "at_risk_means": list(policy.at_risk),
            **profile}


def package_formats(repo: Repository, package_id: str) -> dict[str, Any]:
    """One package's files with their formats (the first :data:`LISTED`), and its per-format summary.

    Raises NotFound (E110) when no package has that id.
    """
    policy = repo.policy.formats
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package with id {package_id!r}: see `preserve status` or the ingest result")
        query = (select(FileFormat, at_risk(policy)).where(FileFormat.package_id == package_id)
                 .order_by(FileFormat.path).limit(LISTED))
        files = [
            {"path": r.path, "size": r.size, "puid": r.puid, "mime": r.mime, "format_name": r.format_name,
             "format_version": r.format_version, "basis": r.basis, "validation": r.validation,
             "encrypted": r.encrypted, "drm": r.drm, "at_risk": bool(risky),
             "tool": f"{r.tool} {r.tool_version}", "signature_version": r.signature_version,
             "identified_at": r.identified_at.isoformat(timespec="seconds"),
             "findings": [f.get("code") for f in r.findings or []]}
            for r, risky in s.execute(query)
        ]
        profile = _profile(s, policy, FileFormat.package_id == package_id)
    return {"package_id": package_id, "name": package.name, "files": files, "listed": len(files),
            "at_risk_means": list(policy.at_risk), **profile}


def format_summary(s: Session, package_id: str) -> list[dict[str, Any]]:
    """One package's files and bytes per format (for ``preserve package show``), most files first."""
    rows = s.execute(select(FileFormat.puid, FileFormat.format_name, FileFormat.format_version, func.count(),
                            func.coalesce(func.sum(FileFormat.size), 0))
                     .where(FileFormat.package_id == package_id)
                     .group_by(FileFormat.puid, FileFormat.format_name, FileFormat.format_version))
    out = [{"puid": puid, "format_name": name, "format_version": version, "files": files, "bytes": int(size)}
           for puid, name, version, files, size in rows]
    return sorted(out, key=lambda f: (-f["files"], f["puid"] or "", f["format_name"], f["format_version"]))


def report_csv(report: dict[str, Any]) -> str:
    """The format profile as CSV: one row per format."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in report["formats"]:
        writer.writerow([f["puid"] or "", f["mime"], f["format_name"], f["format_version"], f["files"], f["bytes"],
                         f["unidentified"], f["invalid"], f["encrypted"], f["drm"], f["at_risk"]])
    return out.getvalue()
