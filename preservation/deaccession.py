"""Deaccession: content withdrawn on purpose, the one way bytes leave the nodes.

A deaccession names a package, or versions of it (docs/versions.md).  It is
refused, and nothing changes, when a version that is kept references a file
stored by a version to be removed (invariant 7: nothing a kept version
references is deleted).  Otherwise, in one transaction, each removed version
becomes ``deaccessioned`` with a ``deaccession`` event that states the
versions it removes and the reason; then its stored files are deleted from
every node, each copy marked ``missing`` with a ``deletion`` event.  Run again,
it finishes the deletions a crash interrupted.  The catalog keeps the
package rows, their file rows and their events: the record of what was.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import select

from preservation import events
from preservation.catalog.files import iter_package_files
from preservation.catalog.models import PACKAGE_DEACCESSIONED, REPLICA_MISSING, Package, Replica
from preservation.errors import InvalidRequest, NotFound, ObjectNotFound, PreservationError, VersionInUse
from preservation.layout import PackageLayout
from preservation.package_state import readable_node
from preservation.repository import Repository
from preservation.text import check_xml_text
from preservation.versions import lineage_versions, referencing_versions, resolve_version, version_of

MAX_REASON = 2000


def deaccession(
    repo: Repository, package_id: str, *, reason: str, versions: Sequence[int] | None = None,
    agent: str = events.SYSTEM_AGENT,
) -> dict[str, Any]:
    """Withdraw ``package_id`` (or its ``versions``) and delete its stored bytes from the nodes.

    Raises NotFound, InvalidRequest (no reason, or one XML cannot carry:
    InvalidText), VersionInUse (a kept version references their files).
    """
    reason = check_xml_text(reason.strip(), "--reason")
    if not reason or len(reason) > MAX_REASON:
        raise InvalidRequest(f"give the reason for the deaccession (1 to {MAX_REASON} characters)")
    with repo.catalog.session() as s:
        if s.get(Package, package_id) is None:
            raise NotFound(f"no package {package_id!r}")
        numbers = sorted(set(versions)) if versions else None
        targets = [resolve_version(s, package_id, n) for n in numbers] if numbers else [package_id]
        all_versions = {v.package_id: v.number for v in lineage_versions(s, package_id)}
        gone = {pid for pid in all_versions if s.get(Package, pid).state == PACKAGE_DEACCESSIONED}
        needed = {pid: n for pid, n in referencing_versions(s, targets).items() if pid not in gone}
        if needed:
            kept = sorted(all_versions.get(pid, 0) for pid in needed)
            raise VersionInUse(
                f"version(s) {', '.join(map(str, kept))} of {package_id} are kept and reference "
                f"{sum(needed.values())} file(s) stored by the version(s) to remove: deaccession those too, "
                "or keep these", kept_versions=kept, files=sum(needed.values()))
        removed = [all_versions.get(pid, 1) for pid in targets]
        kept_numbers = sorted(n for pid, n in all_versions.items() if pid not in targets and pid not in gone)
        lineage = version_of(s, package_id)
        for pid, number in zip(targets, removed):
            package = s.get(Package, pid)
            if package.state == PACKAGE_DEACCESSIONED:
                continue  # a run again after a crash: only the deletions are left to finish
            package.state = PACKAGE_DEACCESSIONED
            events.record_event(
                s, events.DEACCESSION, events.SUCCESS, agent=agent, package_id=pid, policy=repo.policy.label,
                detail={"reason": reason, "version": number, "versions_removed": removed,
                        "versions_kept": kept_numbers,
                        "lineage_id": lineage.lineage_id if lineage is not None else package_id},
            )
    deleted = {pid: _delete_stored(repo, pid, agent) for pid in targets}
    return {"package_id": package_id, "versions_removed": removed, "versions_kept": kept_numbers,
            "removed": targets, "files_deleted": deleted}


def _delete_stored(repo: Repository, package_id: str, agent: str) -> int:
    """Delete the package's stored files and record on every readable node; returns the files deleted."""
    with repo.catalog.session() as s:
        replicas = s.scalars(select(Replica).join(Replica.node).where(Replica.package_id == package_id,
                                                                          readable_node())).all()
        places = [(r.id, r.node, r.state) for r in replicas]
        for _, node, _ in places:
            s.expunge(node)
    layout = PackageLayout(package_id)
    total = 0
    for replica_id, node, state in places:
        adapter = repo.adapter(node)
        count = 0
        try:
            for batch in iter_package_files(repo.catalog, package_id):
                for row in batch:
                    try:
                        adapter.delete(layout.key(row.path))
                        count += 1
                    except ObjectNotFound:
                        pass
            for key in (layout.record_key, layout.events_key):
                try:
                    adapter.delete(key)
                except ObjectNotFound:
                    pass
        except PreservationError as e:
            with repo.catalog.session() as s:
                events.record_event(s, events.DELETION, events.FAILURE, agent=agent, package_id=package_id,
                                    replica_id=replica_id, node_name=node.name, policy=repo.policy.label,
                                    detail={"error": e.to_dict(), "files_deleted": count})
            continue
        with repo.catalog.session() as s:
            replica = s.get(Replica, replica_id)
            replica.state = REPLICA_MISSING
            replica.last_error = "deaccessioned: its stored files were deleted"
            events.record_event(s, events.DELETION, events.SUCCESS, agent=agent, package_id=package_id,
                                replica_id=replica_id, node_name=node.name, policy=repo.policy.label,
                                detail={"files_deleted": count, "reason": "deaccession"})
        total += count
    return total
