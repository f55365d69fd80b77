"""The rules that derive a package's state from its copies, and when a copy is read again.

They take the policy, never the repository: every service that changes a
copy (replication, audit, repair, access, upkeep) applies the same rules in
its own transaction.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from preservation import events
from preservation.catalog import reads
from preservation.catalog.db import Catalog
from preservation.catalog.models import (
    NODE_ACTIVE,
    NODE_OFFLINE,
    PACKAGE_DAMAGED,
    PACKAGE_DEACCESSIONED,
    PACKAGE_DEGRADED,
    PACKAGE_PRESERVED,
    PACKAGE_REPLICATING,
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
    UnrepairableFile,
    utcnow,
)
from preservation.catalog.reader import Reader
from preservation.jobs import kinds
from preservation.jobs.admin import close_superseded
from preservation.placement import unmet_requirements
from storage_adapters.localfiles import unlink_quietly
from preservation.policy import Policy

# A copy may be audited once it has been written and while nothing is rewriting it: a copy that is
# pending or copying belongs to replication, one that is repairing to its repair (which audits it
# itself when done).  Auditing either would judge half-written bytes and race the writer's state change.
AUDITABLE_STATES = (REPLICA_VERIFIED, REPLICA_SUSPECT, REPLICA_CORRUPT, REPLICA_MISSING)
# The audit schedule leaves out the copies waiting for their repair: the repair re-reads them and
# audits them when it is done, so a scheduled audit would only spend their node's read budget twice.
AWAITING_REPAIR = (REPLICA_CORRUPT, REPLICA_MISSING)
SCHEDULED_AUDIT_STATES = tuple(s for s in AUDITABLE_STATES if s not in AWAITING_REPAIR)


def readable_node(node: Any = Node) -> ColumnElement[bool]:
    """The one rule for which nodes' copies may be read, to copy, serve or audit them: every node not offline.

    A draining node is read: draining means its copies are being moved
    elsewhere, which reads them, and every byte read is verified against
    the catalog before it is used.
    """
    return node.status != NODE_OFFLINE


def may_be_audited() -> ColumnElement[bool]:
    """The one rule for which copies an audit may read (a query joined to Node and Package)."""
    return and_(Replica.state.in_(AUDITABLE_STATES), readable_node(), Package.state != PACKAGE_DEACCESSIONED)


def verified_within(start: datetime) -> ColumnElement[bool]:
    """The one rule of audit coverage: a copy counts as audited when it is verified and was last verified at or
    after ``start`` (now less the policy's audit interval).  Status, metrics, alerts and the dashboard use it."""
    return and_(Replica.state == REPLICA_VERIFIED, Replica.verified_at >= start)


def next_audit_time(policy: Policy) -> datetime:
    """The deadline of the next full audit: one interval after this verification.

    The audit planner spreads the reads of copies with the same deadline
    evenly over the interval; an earlier deadline here would only re-read
    copies more often than the policy asks.
    """
    return utcnow() + timedelta(days=policy.audit.interval_days)


def update_package_state(
    policy: Policy, session: Session, package: Package, *, agent: str, job_id: int | None = None
) -> str:
    """Derive the package state from its replicas; record an event when it changes.

    A verified copy holds every file right, so once one exists the package's
    unrepairable files are not (their records go) and the dead jobs of every
    copy verified since they died are closed as superseded.  A package with
    unrepairable files is damaged.
    """
    if package.state == PACKAGE_DEACCESSIONED:
        return package.state
    session.flush()
    replicas = session.scalars(select(Replica).where(Replica.package_id == package.id)).all()
    verified_active = [r.node for r in replicas if r.state == REPLICA_VERIFIED and r.node.status == NODE_ACTIVE]
    verified_at = {r.id: r.verified_at for r in replicas if r.state == REPLICA_VERIFIED and r.verified_at}
    any_verified = any(r.state == REPLICA_VERIFIED for r in replicas)
    staged = bool(package.staging_path and Path(package.staging_path).is_dir())
    lost_files = False
    if any_verified:
        session.execute(delete(UnrepairableFile).where(UnrepairableFile.package_id == package.id))
        close_superseded(session, package.id, verified_at, agent=agent)
    else:
        lost_files = session.scalar(select(UnrepairableFile.id).where(UnrepairableFile.package_id == package.id)
                                    .limit(1)) is not None
    if lost_files:
        new = PACKAGE_DAMAGED
    elif unmet_requirements(policy.replication, verified_active):
        if any_verified or staged:
            new = PACKAGE_REPLICATING if package.state == PACKAGE_REPLICATING else PACKAGE_DEGRADED
        else:
            new = PACKAGE_DAMAGED
    else:
        new = PACKAGE_PRESERVED
    if new != package.state:
        old = package.state
        package.state = new
        if new == PACKAGE_PRESERVED and package.preserved_at is None:
            package.preserved_at = utcnow()
        outcome = events.SUCCESS if new == PACKAGE_PRESERVED else (events.FAILURE if new == PACKAGE_DAMAGED else events.WARNING)
        events.record_event(
            session, events.POLICY_ASSIGNMENT, outcome, agent=agent, package_id=package.id, job_id=job_id,
            policy=policy.label,
            detail={
                "package_state": new, "previous_state": old,
                "verified_copies": sorted(n.name for n in verified_active),
                "required": policy.replication.model_dump(),
            },
        )
    return new


def record_unrepairable(session: Session, replica: Replica, paths: Iterable[str], *, job_id: int | None = None) -> None:
    """Record the files of ``replica`` that no copy holds right (replacing what its last repair recorded)."""
    session.execute(delete(UnrepairableFile).where(UnrepairableFile.replica_id == replica.id))
    now = utcnow()
    session.add_all(UnrepairableFile(package_id=replica.package_id, replica_id=replica.id, path=path, found_at=now,
                                     job_id=job_id) for path in sorted(set(paths)))
    session.flush()


def clear_unrepairable(session: Session, package_id: str, paths: Iterable[str]) -> int:
    """Forget ``paths`` as unrepairable on every copy of the package (they were re-supplied); returns rows removed."""
    paths = sorted(set(paths))
    if not paths:
        return 0
    result = session.execute(delete(UnrepairableFile).where(UnrepairableFile.package_id == package_id,
                                                            UnrepairableFile.path.in_(paths)))
    return result.rowcount or 0


def unrepairable_files(session: Session, package_id: str, *, limit: int | None = None) -> dict[str, list[str]]:
    """The package's files that no copy holds right: path -> the nodes whose copy lacks it, paths in order
    (:func:`preservation.catalog.reads.unrepairable_files`, read in ``session``)."""
    return reads.unrepairable_files(Reader.of_session(session), package_id, limit=limit)


def flag_bad_sources(
    policy: Policy, session: Session, package: Package, problems: Iterable[int] | Mapping[int, str], agent: str,
    *, activity: str = "copying", path: str | None = None,
) -> None:
    """Copies whose bytes did not match the catalog become suspect, with a failed fixity event and a full audit.

    ``problems`` holds replica ids, or maps them to what was wrong; the audit
    then decides (corrupt and a repair, or verified again after a fluke).
    """
    if not isinstance(problems, Mapping):
        problems = {rid: "" for rid in problems}
    flagged = False
    for rid, problem in problems.items():
        r = session.get(Replica, rid)
        if r is None or r.state != REPLICA_VERIFIED:
            continue
        r.state = REPLICA_SUSPECT
        if path:
            r.last_error = f"{path}: {problem} (found while {activity})"
        detail = {"reason": f"bytes read from this copy while {activity} did not match the catalog", "state": r.state}
        if path:
            detail.update(path=path, problem=problem)
        events.record_event(
            session, events.FIXITY_CHECK, events.FAILURE, agent=agent, package_id=package.id, replica_id=r.id,
            node_name=r.node.name, policy=policy.label, detail=detail,
        )
        kinds.enqueue_for_replica(session, kinds.AUDIT_AFTER_BAD_READ, r.id, package_id=package.id)
        flagged = True
    if flagged:
        update_package_state(policy, session, package, agent=agent)


BACKGROUND_REMOVAL_FILES = 1000
"""A staging bag of this many files or more may be removed on a thread of its own (see
:func:`release_staging_if_done`); a smaller one is removed at once, in less time than a thread takes."""
_removals: list[threading.Thread] = []
_removals_lock = threading.Lock()


def release_staging_if_done(catalog: Catalog, package_id: str, *, background: bool = False) -> None:
    """Remove the staging bag once the package is preserved (its copies carry it now).

    The catalog forgets the bag first, so a process that dies while removing it leaves a staging
    directory no package names, which the sweep removes (:mod:`preservation.upkeep.sweeping`).
    With ``background`` a bag of :data:`BACKGROUND_REMOVAL_FILES` files or more is removed by a
    thread of its own and this returns at once: the package is preserved already, and removing
    100,000 small files (1-2.5 ms an unlink on a disk mounted with online discard) would hold up
    whoever waits for the ingest.  The thread is no daemon, so the process ends only once it is
    done; :func:`wait_for_staging_removals` waits for it sooner.
    """
    with catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None or package.state != PACKAGE_PRESERVED or not package.staging_path:
            return
        path = package.staging_path
        files = package.payload_files or 0
        package.staging_path = None
    if not background or files < BACKGROUND_REMOVAL_FILES:
        remove_tree(path)
        return
    thread = threading.Thread(target=remove_tree, args=(path,), name=f"preserve-staging-{package_id}")
    with _removals_lock:
        _removals[:] = [t for t in _removals if t.is_alive()]
        _removals.append(thread)
    thread.start()


def wait_for_staging_removals() -> None:
    """Wait until every staging bag this process is removing in the background is gone."""
    with _removals_lock:
        pending = list(_removals)
    for thread in pending:
        thread.join()


REMOVE_WORKERS = 16
"""Threads unlinking a staging bag's files.  An unlink that frees a file's blocks waits on the
file system's journal (with online discard, on each block freed); waits of several threads
overlap: 3,000 synced files of 4 KiB took 2.9 s to remove on one thread, 0.58 s on eight."""


def remove_tree(path: str) -> None:
    """Remove the directory tree at ``path`` (not following symbolic links), its files on
    :data:`REMOVE_WORKERS` threads; what cannot be removed stays (like ``rmtree(ignore_errors=True)``)."""
    files = [os.path.join(top, name) for top, _, names in os.walk(path) for name in names]
    if len(files) > 64 and not sys.is_finalizing():
        try:
            with ThreadPoolExecutor(REMOVE_WORKERS, thread_name_prefix="preserve-rm") as pool:
                for _ in pool.map(unlink_quietly, files, chunksize=64):
                    pass  # drains the map so that the unlinks are done before the tree itself goes
        except RuntimeError:
            # a background removal still running when the main thread ended: the interpreter's exit refuses
            # new pool threads ("cannot schedule new futures after interpreter shutdown"); the process waits
            # for this (non-daemon) thread, which removes the rest on its own below
            for name in files:
                unlink_quietly(name)
    shutil.rmtree(path, ignore_errors=True)
