"""The Archivematica Storage Service fixity subset, as library functions.

Artefactual's ``fixity`` tool lists packages (``GET /api/v2/file/``, keeping
those with ``package_type`` ``AIP`` and ``status`` ``UPLOADED``), fetches
each (``GET /api/v2/file/<uuid>/``) and asks for a fixity check
(``GET /api/v2/file/<uuid>/check_fixity/``), reading ``success``,
``message`` and ``timestamp`` and keeping the rest of the report.

A check here is a real audit: every written copy of the package on a node
that is not offline is re-read in full (``audit_replica``: events, new
states, repair jobs as for any audit).  The package passes only when every
copy does; findings are merged into the Storage Service's
``failures.files`` lists (paths relative to the bag, e.g. ``data/…``) and the
message names each failed copy and the first paths, so the tool's one-line
report says what is wrong.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from preservation.audit import audit_replica, select_replicas
from preservation.catalog.models import (
    NODE_ACTIVE,
    PACKAGE_DAMAGED,
    PACKAGE_DEACCESSIONED,
    PACKAGE_DEGRADED,
    PACKAGE_PRESERVED,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
    utcnow,
)
from preservation.codes import (
    FILE_CHANGED,
    FILE_MISSING,
    FILE_UNEXPECTED,
    FILE_UNREADABLE,
    NODE_UNAVAILABLE,
    SIZE_CHANGED,
)
from preservation.errors import NotFound
from preservation.repository import Repository

API_ROOT = "/api/v2"
LOCATION_NAMESPACE = uuid.UUID("5f0c6c36-3b0e-4a57-9a55-6d1e0f2c7a11")
MESSAGE_PATHS = 5  # paths named in the one-line message; the lists hold them all

# What the Storage Service would call each package: only UPLOADED ones are audited by `fixity`.
STATUS = {
    PACKAGE_PRESERVED: "UPLOADED",
    PACKAGE_DEGRADED: "UPLOADED",
    PACKAGE_DAMAGED: "UPLOADED",  # so that an outside audit reports it instead of skipping it
    PACKAGE_DEACCESSIONED: "DELETED",
}

CHANGED_CODES = {FILE_CHANGED, SIZE_CHANGED}
MISSING_CODES = {FILE_MISSING, FILE_UNREADABLE}


def location_uri(node_name: str | None) -> str:
    ident = uuid.uuid5(LOCATION_NAMESPACE, node_name or "(no verified copy)")
    return f"{API_ROOT}/location/{ident}/"


def _aip(package: Package, node_name: str | None) -> dict[str, Any]:
    return {
        "uuid": package.id,
        "package_type": "AIP",
        "status": STATUS.get(package.state, "UPLOAD_PENDING"),
        "current_location": location_uri(node_name),
        "current_path": package.id,
        "current_full_path": f"{node_name or '-'}:{package.id}",
        "size": package.total_bytes,
        "stored_date": package.created_at.strftime("%Y-%m-%dT%H:%M:%S"),
        "resource_uri": f"{API_ROOT}/file/{package.id}/",
        "origin_pipeline": None,
        "encryption_key_fingerprint": None,
        "misc_attributes": {"name": package.name, "collection": package.collection.key, "state": package.state},
        "related_packages": [],
        "replicated_package": None,
        "replicas": [],
    }


def _freshest_node(session, package_id: str) -> str | None:
    return session.execute(
        select(Node.name).join(Replica, Replica.node_id == Node.id)
        .where(Replica.package_id == package_id, Replica.state == REPLICA_VERIFIED, Node.status == NODE_ACTIVE)
        .order_by(Replica.verified_at.desc()).limit(1)
    ).scalar_one_or_none()


def list_aips(repo: Repository, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(total, one page of packages) in a stable order (oldest first)."""
    with repo.catalog.session() as s:
        total = s.execute(select(func.count()).select_from(Package)).scalar_one()
        packages = s.scalars(select(Package).order_by(Package.created_at, Package.id).offset(offset).limit(limit)).all()
        return total, [_aip(p, _freshest_node(s, p.id)) for p in packages]


def get_aip(repo: Repository, package_id: str) -> dict[str, Any]:
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}")
        return _aip(package, _freshest_node(s, package.id))


def _timestamp() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%S")


def check_fixity(repo: Repository, package_id: str, *, agent: str) -> dict[str, Any]:
    """Audit every written copy of the package now; the Storage Service's check_fixity report.

    Raises NotFound for an unknown package.
    """
    replica_ids = select_replicas(repo, package_id)
    missing: set[str] = set()
    changed: set[str] = set()
    untracked: set[str] = set()
    failed: list[str] = []
    unreachable: list[str] = []
    passed = 0
    for rid in replica_ids:
        result = audit_replica(repo, rid, agent=agent)
        if result.ok:
            passed += 1
            continue
        codes = set(result.fixity.findings.codes())
        if codes == {NODE_UNAVAILABLE}:
            unreachable.append(result.node)
            continue
        failed.append(result.node)
        for finding in result.fixity.findings:
            if finding.path is None:
                continue
            if finding.code in CHANGED_CODES:
                changed.add(finding.path)
            elif finding.code in MISSING_CODES:
                missing.add(finding.path)
            elif finding.code == FILE_UNEXPECTED:
                untracked.add(finding.path)
    files = {"missing": sorted(missing), "changed": sorted(changed), "untracked": sorted(untracked)}
    report: dict[str, Any] = {"failures": {"files": files}, "timestamp": _timestamp(),
                              "copies_checked": len(replica_ids), "copies_passed": passed,
                              "copies_failed": failed, "copies_unreachable": unreachable}
    if not replica_ids:
        report.update(success=False, message="no copy of the package has been written to a reachable node")
    elif failed:
        parts = []
        for label, paths in (("changed", files["changed"]), ("missing", files["missing"]),
                             ("untracked", files["untracked"])):
            if paths:
                more = f" and {len(paths) - MESSAGE_PATHS} more" if len(paths) > MESSAGE_PATHS else ""
                parts.append(f"{label}: {', '.join(paths[:MESSAGE_PATHS])}{more}")
        report.update(success=False, message=f"Invalid bag on {len(failed)} of {len(replica_ids)} copies "
                                             f"({', '.join(failed)}); {'; '.join(parts)}")
    elif unreachable:
        report.update(success=None, message=f"could not read the copies on {', '.join(unreachable)}; "
                                            f"{passed} other(s) passed")
    else:
        report.update(success=True, message=f"all {passed} copies passed a full fixity check")
    return report
