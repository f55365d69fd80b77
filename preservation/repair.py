"""Repairing a damaged copy from copies verified during the repair (invariant 4).

1. The damaged replica is checked again in full, to learn exactly which files
   are wrong (missing, changed, resized, unreadable) and which do not belong.
   A copy that now checks clean is only re-audited: running a repair twice
   is harmless.
2. For exactly those files, the other copies are re-read on their nodes and
   both digests compared with the catalog — verified copies first, then
   copies that are themselves damaged elsewhere (their other files may be
   intact).  Each damaged file is copied only from a copy whose own bytes for
   it have just verified (:func:`preservation.sources.plan_from_first_verified`);
   a verified copy whose file does not match becomes ``suspect`` (a full
   audit is queued).
3. The damaged files are rewritten (the write checks sha256 while the bytes
   stream, then the new file is re-read with sha256 and sha512), and files
   that do not belong are deleted — only keys inside this replica's own
   package prefix, on its own node.
4. The replica is audited again in full, and a ``repair`` event records the
   outcome, the files repaired and where they came from.

When some damaged files have no verified copy anywhere, every other damaged
file is still rewritten (step 3).  The files without a source are recorded
unrepairable for this copy (``unrepairable_files``, listed by ``status`` and
``package show``), the copy stays ``corrupt``, the package becomes
``damaged``, a failure event names what is lost, and the repair ends without
error: trying again cannot help until a source exists (another copy
verified, or the file re-supplied from the original delivery:
:mod:`preservation.resupply`).  When a node that did not answer may hold the
bytes, nothing is declared lost: StorageUnavailable is raised and the job
tries again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from preservation import events
from preservation.audit import audit_replica
from preservation.catalog.files import listed_paths
from preservation.catalog.models import (
    NODE_OFFLINE,
    PACKAGE_DAMAGED,
    PACKAGE_DEACCESSIONED,
    REPLICA_COPYING,
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_PENDING,
    REPLICA_REPAIRING,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
    utcnow,
)
from preservation.codes import NODE_UNAVAILABLE
from preservation.errors import (
    NotFound,
    NoVerifiedSource,
    ObjectNotFound,
    PreservationError,
    StorageUnavailable,
    VerificationFailed,
)
from preservation.fixity import check_replica
from preservation.layout import PackageLayout
from preservation.package_state import (
    flag_bad_sources,
    next_audit_time,
    readable_node,
    record_unrepairable,
    unrepairable_files,
    update_package_state,
)
from preservation.replication import write_and_verify, write_package_record
from preservation.repository import Repository
from preservation.sources import SOURCE_STATES, Blamed, SourcePlan, plan_from_first_verified, replica_source
from storage_adapters import flush

log = logging.getLogger("preserve.repair")

MAX_PATHS_IN_EVENT = 50
BOTH_DIGESTS = ("sha256", "sha512")
EPOCH = datetime(1970, 1, 1)


def repair_replica(
    repo: Repository, replica_id: int, *, agent: str = events.SYSTEM_AGENT, job_id: int | None = None
) -> dict[str, Any]:
    """Repair one corrupt or missing replica; see the module docstring.

    Raises NotFound (no such replica), StorageUnavailable (a node did not
    answer: retry later), the copy's node's own StorageError when it could
    not be checked (AccessDenied, InvalidKey …: permanent), NoVerifiedSource
    (permanent: the package is damaged), VerificationFailed (the repaired
    copy did not re-audit).
    """
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        if replica is None:
            raise NotFound(f"no replica {replica_id}")
        package, node = replica.package, replica.node
        if package.state == PACKAGE_DEACCESSIONED:
            return {"replica_id": replica_id, "skipped": "package deaccessioned"}
        if replica.state in (REPLICA_PENDING, REPLICA_COPYING):
            return {"replica_id": replica_id, "skipped": f"replica is {replica.state}: replication writes it"}
        if node.status == NODE_OFFLINE:
            return {"replica_id": replica_id, "skipped": f"node {node.name} is offline"}
        package_id, node_name = package.id, node.name
    dest = repo.adapter(node)

    check = check_replica(repo.catalog, dest, package_id, ("sha256",), workers=repo.settings.workers)
    if NODE_UNAVAILABLE in check.findings.codes():
        raise check.node_error(node_name, "check the copy to repair")
    if check.ok:
        audit = audit_replica(repo, replica_id, agent=agent, job_id=job_id, algorithms=BOTH_DIGESTS)
        if not audit.ok:
            raise VerificationFailed("the copy changed while it was being checked", package=package_id, node=node_name)
        return {"replica_id": replica_id, "node": node_name, "state": audit.state, "files_repaired": 0,
                "files_removed": 0, "note": "the copy checked clean: nothing to repair"}

    damaged = set(check.bad_paths)
    unexpected = list(check.unexpected_paths)
    # what the copy is if this repair fails, whatever the catalog said before
    fallback_state = REPLICA_MISSING if check.absent else REPLICA_CORRUPT
    _mark_repairing(repo, replica_id, agent, job_id, len(damaged), len(unexpected))

    plan = plan_sources(repo, package_id, replica_id, damaged)
    if plan.blamed:
        with repo.catalog.session() as s:
            flag_bad_sources(repo.policy, s, s.get(Package, package_id), plan.blamed.ids(), agent)

    try:
        copied = _rewrite(repo, package_id, dest, plan)
        removed = _remove_unexpected(repo, package_id, dest, unexpected)
        write_package_record(repo, dest, package_id)
    except PreservationError as e:
        _failed(repo, replica_id, fallback_state, agent, job_id, f"rewriting files failed: {e}")
        with repo.catalog.session() as s:  # a source whose bytes went bad between its check and the copy
            flag_bad_sources(repo.policy, s, s.get(Package, package_id), plan.blamed.ids(), agent)
        if isinstance(e, NoVerifiedSource):
            raise VerificationFailed(f"a source changed while it was copied ({e}); the next attempt re-verifies",
                                     package=package_id, node=node_name) from e
        raise

    repaired = sorted(damaged - set(plan.unsourced))
    if plan.unsourced:
        # every file that had a source is whole again; the others wait for one (or for the operator)
        state = REPLICA_CORRUPT if repaired or not check.absent else fallback_state
        return _partly_repaired(repo, replica_id, state, plan, repaired, removed, copied, agent, job_id)

    audit = audit_replica(repo, replica_id, agent=agent, job_id=job_id, algorithms=BOTH_DIGESTS)
    detail = {
        "state": audit.state,
        "files_repaired": len(damaged),
        "files_removed": removed,
        "bytes_copied": copied,
        "sources": plan.by_node(),
        "paths": sorted(damaged)[:MAX_PATHS_IN_EVENT],
    }
    with repo.catalog.session() as s:
        events.record_event(
            s, events.REPAIR, events.SUCCESS if audit.ok else events.FAILURE, agent=agent, package_id=package_id,
            replica_id=replica_id, node_name=node_name, job_id=job_id, policy=repo.policy.label, detail=detail,
        )
    if not audit.ok:
        raise VerificationFailed(f"the repaired copy failed its audit: {audit.fixity.findings.errors[0]}",
                                 package=package_id, node=node_name)
    log.info("repaired replica %d of %s on %s: %d file(s) rewritten, %d removed", replica_id, package_id,
             node_name, len(damaged), removed)
    return {"replica_id": replica_id, "node": node_name, **detail}


def plan_sources(repo: Repository, package_id: str, replica_id: int, damaged: set[str]) -> SourcePlan:
    """Verify the other copies' versions of exactly the damaged files, best copies first."""
    with repo.catalog.session() as s:
        stmt = select(Replica).join(Node).where(
            Replica.package_id == package_id, Replica.id != replica_id, Replica.state.in_(SOURCE_STATES),
        )
        offline = [r.node.name for r in s.scalars(stmt.where(~readable_node()))]
        others = sorted(s.scalars(stmt.where(readable_node())),
                        key=lambda r: (r.state != REPLICA_VERIFIED, -(r.verified_at or EPOCH).timestamp(), r.id))
        sources = [replica_source(repo, r) for r in others]
    plan = plan_from_first_verified(repo, package_id, sources, damaged, BOTH_DIGESTS)
    # a copy on an offline node may hold the bytes: without it, "no source" is not yet known
    plan.unreachable[:0] = offline
    return plan


def _rewrite(repo: Repository, package_id: str, dest, plan: SourcePlan) -> int:
    """Copy each assigned file from its source; a source blamed in the plan for *other* files still gives these
    (each was just verified there), and one whose bytes fail now is added to ``plan.blamed``."""
    copied = 0
    for source_id, paths in plan.assigned.items():
        blamed = Blamed()
        try:
            stats = write_and_verify(repo, package_id, dest, [plan.sources[source_id]], only_paths=paths,
                                     blamed=blamed)
        finally:
            for rid, problem in blamed.problems().items():
                plan.blamed.add(rid, problem)
        copied += stats["bytes_copied"]
    return copied


def _remove_unexpected(repo: Repository, package_id: str, dest, paths: list[str]) -> int:
    """Delete the files the check found that do not belong, never one the catalog lists as the package's own
    (whatever a node's listing said: such a path is kept and logged)."""
    layout = PackageLayout(package_id)
    kept = listed_paths(repo.catalog, package_id, paths)
    if kept:
        log.error("repair of %s kept %d file(s) the node listed as not belonging but the catalog lists (first: %s)",
                  package_id, len(kept), min(kept))
    removed = 0
    for path in paths:
        if path in kept:
            continue
        try:
            dest.delete(layout.key(path), stray=True)
            removed += 1
        except ObjectNotFound:
            continue
    if removed:
        flush(dest)
    return removed


def _mark_repairing(repo: Repository, replica_id: int, agent: str, job_id: int | None, damaged: int,
                    unexpected: int) -> None:
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        previous = replica.state
        if previous == REPLICA_REPAIRING:
            return
        replica.state = REPLICA_REPAIRING
        events.record_event(
            s, events.REPAIR, "started", agent=agent, package_id=replica.package_id, replica_id=replica_id,
            node_name=replica.node.name, job_id=job_id, policy=repo.policy.label,
            detail={"state": REPLICA_REPAIRING, "previous_state": previous, "damaged_files": damaged,
                    "unexpected_files": unexpected},
        )


def _failed(repo: Repository, replica_id: int, state: str, agent: str, job_id: int | None, reason: str) -> None:
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        replica.state = state
        replica.last_error = reason
        events.record_event(
            s, events.REPAIR, events.FAILURE, agent=agent, package_id=replica.package_id, replica_id=replica_id,
            node_name=replica.node.name, job_id=job_id, policy=repo.policy.label,
            detail={"state": state, "reason": reason[:500]},
        )


def _partly_repaired(repo: Repository, replica_id: int, state: str, plan: SourcePlan, repaired: list[str],
                     removed: int, copied: int, agent: str, job_id: int | None) -> dict[str, Any]:
    """Some damaged files have no verified copy: the others were rewritten; record what is left.

    When a node that may hold the missing bytes did not answer, nothing is
    declared lost: StorageUnavailable (retryable) is raised so the job tries
    again.  Otherwise the files are recorded unrepairable for this copy
    (:func:`~preservation.package_state.record_unrepairable`), the package is
    damaged, and the repair ends: trying again cannot help until a source
    exists (another copy verified, or the file re-supplied).
    """
    lost = sorted(plan.unsourced)
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        package, node_name = replica.package, replica.node.name
        replica.state = state
        common = dict(agent=agent, package_id=package.id, replica_id=replica_id, node_name=node_name, job_id=job_id,
                      policy=repo.policy.label)
        if repaired:
            events.record_event(s, events.REPAIR, events.SUCCESS, **common, detail={
                "state": state, "partial": True, "files_repaired": len(repaired), "files_removed": removed,
                "bytes_copied": copied, "sources": plan.by_node(), "paths": repaired[:MAX_PATHS_IN_EVENT]})
        if plan.unreachable:
            reason = (f"{len(lost)} damaged file(s) could not be verified on any reachable copy; "
                      f"nodes not answering: {', '.join(sorted(set(plan.unreachable)))}")
            replica.last_error = reason
            events.record_event(s, events.REPAIR, events.FAILURE, **common,
                                detail={"state": state, "reason": reason, "files_unverified": len(lost),
                                        "unverified_paths": lost[:MAX_PATHS_IN_EVENT]})
        else:
            reason = (f"{len(lost)} damaged file(s) have no verified copy on any node (first: {lost[0]}): "
                      f"re-supply them from the original delivery (preserve repair {package.id} --from-file PATH=FILE)")
            replica.last_error = reason
            replica.last_audit_at = utcnow()  # the repair's check re-read every file of this copy
            replica.next_audit_at = next_audit_time(repo.policy)
            record_unrepairable(s, replica, lost, job_id=job_id)
            events.record_event(s, events.REPAIR, events.FAILURE, **common, detail={
                "state": state, "reason": reason, "files_repaired": len(repaired),
                "files_without_verified_copy": len(lost), "paths": lost[:MAX_PATHS_IN_EVENT],
                "copies_failed": len(plan.blamed.ids())})
            previous = package.state
            if update_package_state(repo.policy, s, package, agent=agent, job_id=job_id) == PACKAGE_DAMAGED \
                    and previous != PACKAGE_DAMAGED:
                log.error("package %s is DAMAGED: %s", package.id, reason)
    if plan.unreachable:
        raise StorageUnavailable(reason, location=", ".join(sorted(set(plan.unreachable))))
    log.warning("repair of replica %d of %s on %s: %d file(s) rewritten, %d without any verified copy (first: %s)",
                replica_id, package.id, node_name, len(repaired), len(lost), lost[0])
    return {"replica_id": replica_id, "node": node_name, "state": state, "files_repaired": len(repaired),
            "files_removed": removed, "bytes_copied": copied, "sources": plan.by_node(),
            "paths": repaired[:MAX_PATHS_IN_EVENT], "unrepairable": len(lost),
            "unrepairable_paths": lost[:MAX_PATHS_IN_EVENT]}


def repair_package(repo: Repository, package_id: str, *, agent: str = events.SYSTEM_AGENT) -> dict[str, Any]:
    """Repair now every copy of ``package_id`` that is suspect, corrupt or missing (`preserve repair PKG`).

    Each copy is repaired as its job would (:func:`repair_replica`); an error
    of one copy is reported beside the others' results rather than raised.
    Raises NotFound for an unknown package.
    """
    with repo.catalog.session() as s:
        if s.get(Package, package_id) is None:
            raise NotFound(f"no package {package_id!r}: see `preserve package list`")
        targets = list(s.execute(
            select(Replica.id, Node.name).join(Node, Node.id == Replica.node_id)
            .where(Replica.package_id == package_id,
                   Replica.state.in_((REPLICA_SUSPECT, REPLICA_CORRUPT, REPLICA_MISSING)))
            .order_by(Node.name)))
    copies = []
    for replica_id, node_name in targets:
        try:
            copies.append(repair_replica(repo, replica_id, agent=agent))
        except PreservationError as e:
            copies.append({"replica_id": replica_id, "node": node_name, "error": e.to_dict()})
    with repo.catalog.session() as s:
        state = s.get(Package, package_id).state
        from_state = unrepairable_files(s, package_id)
    return {"package_id": package_id, "package_state": state, "copies": copies,
            "unrepairable": [{"path": path, "nodes": nodes} for path, nodes in from_state.items()]}
