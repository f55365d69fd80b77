"""Writing a package onto a node and proving it is there.

A copy is written file by file through the node's adapter, and a bad source
byte never becomes a visible object.  Between local filesystem stores the
kernel copies the bytes into a temporary file, which is re-read and verified
before it is renamed into place: with both digests, or byte for byte against
a copy verified with both digests on another node.  (A new package bound for
several local nodes is written to all of them in one pass:
:mod:`preservation.local_copy`.)  Elsewhere each file's sha256 is checked
*while it streams*, and after a durability barrier every file is re-read on
the node and both digests are compared with the catalog.  Only then is the
replica ``verified`` (invariant 1).  Re-running a copy that was interrupted
moves only what is not on the node yet.  Each file is read from the first
source that has it right (:mod:`preservation.sources`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.orm import Session

from preservation import events
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import (
    PACKAGE_DEACCESSIONED,
    REPLICA_COPYING,
    REPLICA_PENDING,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
    utcnow,
)
from preservation.concurrency import bounded_map
from preservation.errors import (
    ChecksumMismatch,
    NotFound,
    NoVerifiedSource,
    PreservationError,
    VerificationFailed,
)
from preservation.fixity import verify_rows
from preservation.layout import PackageLayout
from preservation.node_records import write_package_record
from preservation.package_state import flag_bad_sources, next_audit_time, release_staging_if_done, update_package_state
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, from_first_verified, verified_sources
from storage_adapters import LocalStore, StorageAdapter, flush, open_local
from storage_adapters.localfiles import digest_path, same_content

Progress = Callable[[int, int], None]
STAGING = "staging"


def copy_sources(repo: Repository, session: Session, package: Package, exclude_node_id: int | None) -> list[CopySource]:
    """The staging bag while it is there, then the candidate copies (:func:`~preservation.sources.verified_sources`)."""
    sources: list[CopySource] = []
    if package.staging_path and Path(package.staging_path).is_dir():
        sources.append(CopySource(open_local(package.staging_path, create=False, fsync=False), "", STAGING))
    return sources + verified_sources(repo, session, package.id, exclude_node_id=exclude_node_id)


def source_name(src: CopySource) -> str:
    """How a replication event names a source."""
    return src.label if src.replica_id is None else f"node {src.label}"


DIGESTED = "digests"
COMPARED = "comparison"
VERIFY_DIGESTS = ("sha256", "sha512")


def new_stats(**initial: Any) -> dict[str, Any]:
    """What a copy reports (and its replication event records), all counts zero."""
    return {"files": 0, "bytes": 0, "files_copied": 0, "bytes_copied": 0, "bytes_read_on_node": 0,
            "bytes_over_network": 0, "sources": set(), "bad_sources": [], "verified_by": {DIGESTED: 0, COMPARED: 0},
            **initial}


def _comparison_reference(dest_local: LocalStore | None, sources: list[CopySource]) -> CopySource | None:
    """A verified copy on a local filesystem that new local copies can be compared with byte for byte.

    A copy whose bytes equal those of a copy verified with both digests has
    those digests too, and reading two files side by side costs a fraction of
    hashing one: the second and third copies of a package on local nodes are
    verified that way.  A copy is never compared with the copy it was made
    from (a rotten source would then vouch for itself).
    """
    if dest_local is None:
        return None
    for src in sources:
        if src.replica_id is not None and src.local is not None:
            return src
    return None


def _local_check(row: FileRow, reference: CopySource | None, blamed: Blamed) -> Callable[[str], str]:
    """What re-reads a local copy's temporary file before it becomes visible; returns how it was verified.

    Equal to the reference copy: verified.  Otherwise both digests decide; a
    copy that matches the catalog while the reference differs proves the
    reference wrong, and it is blamed.  A copy that does not match raises
    ChecksumMismatch (the source's bytes were wrong) and is never renamed into place.
    """

    def check(path: str) -> str:
        compared = reference is not None and reference.replica_id not in blamed
        if compared:
            with contextlib.suppress(OSError, PreservationError):
                if same_content(path, reference.local.local_file(reference.key(row.path))):
                    return COMPARED
        _check_digests(row, path)
        if compared:
            blamed.add(reference.replica_id, f"{row.path} differs from a copy that matches the catalog")
        return DIGESTED

    return check


def _check_digests(row: FileRow, path: str) -> None:
    """Re-read a local copy with both digests: ChecksumMismatch when it differs from the catalog,
    VerificationFailed when it cannot be read."""
    try:
        size, got = digest_path(path, VERIFY_DIGESTS)
    except OSError as e:
        raise unreadable(row, e) from e
    wrong = mismatch(row, size, got)
    if wrong is not None:
        raise wrong


def mismatch(row: FileRow, size: int, got: dict[str, str]) -> ChecksumMismatch | None:
    """What is wrong with a copy that read back with ``size`` and ``got`` digests, if anything."""
    wrong = [a for a in VERIFY_DIGESTS if got[a] != row.digest(a)]
    if size == row.size and not wrong:
        return None
    return ChecksumMismatch(f"the copy read back with other {' and '.join(wrong) or 'size'} than the catalog's",
                            key=row.path)


def unreadable(row: FileRow, e: OSError, **where: str) -> VerificationFailed:
    return VerificationFailed(f"the copy of {row.path} could not be re-read: {e.strerror or e}", **where)


def _copy_file(
    dest: StorageAdapter, dest_local: LocalStore | None, layout: PackageLayout, row: FileRow,
    sources: list[CopySource], blamed: Blamed, reference: CopySource | None = None,
) -> tuple[CopySource, str | None]:
    """Copy one file from the first source whose bytes match the catalog.

    Returns the source and, when the copy was already re-read and verified
    before it became visible (local copies), how (DIGESTED or COMPARED);
    None leaves it to the verification pass.  A failure of the destination
    itself (full, unreachable, refusing) is raised as it is: another source
    would not help, and its retryable flag decides whether the job is tried
    again.
    """
    key = layout.key(row.path)

    def attempt(src: CopySource) -> str | None:
        if dest_local is not None and src.local is not None:
            check = _local_check(row, None if reference is src else reference, blamed)
            return dest_local.copy_local(src.local, src.key(row.path), key, size=row.size, check=check)
        if not dest.copy_from(src.adapter, src.key(row.path), key):
            dest.write(key, src.stream(row.path), size=row.size, expected={"sha256": row.sha256})
        return None

    return from_first_verified(sources, attempt, blamed, doing=f"copy {row.path}", package_id=layout.package_id)


def write_and_verify(
    repo: Repository,
    package_id: str,
    dest: StorageAdapter,
    sources: list[CopySource],
    *,
    only_paths: set[str] | None = None,
    progress: Progress | None = None,
    blamed: Blamed | None = None,
) -> dict[str, Any]:
    """Copy the package (or ``only_paths``) to ``dest``; every file is re-read and verified.

    Local copies are verified before they become visible (both digests, or
    equality with a verified local copy); the rest, and files already on
    ``dest`` with the right size (not copied again), are re-read with both
    digests after the durability barrier, and any that are wrong are
    rewritten once.  Raises VerificationFailed when a file still does not
    verify, NoVerifiedSource when no source has a file right.  The sources
    found bad are added to ``blamed`` and listed in the result's ``bad_sources``.
    """
    layout = PackageLayout(package_id)
    prefix = layout.prefix
    workers = max(2, repo.settings.workers * 2)
    blamed = Blamed() if blamed is None else blamed
    dest_local = dest.features.local
    reference = _comparison_reference(dest_local, sources)
    stats = new_stats()
    verified_by = stats["verified_by"]
    present = {} if only_paths else {layout.path_of(o.key): o.size for o in dest.list(prefix)}

    def copy(row: FileRow) -> tuple[FileRow, str | None]:
        src, how = _copy_file(dest, dest_local, layout, row, sources, blamed, reference)
        stats["sources"].add(source_name(src))
        return row, how

    def copy_all(rows: list[FileRow]) -> list[FileRow]:
        """Copy ``rows``; returns those still to be re-read."""
        unchecked = []
        for row, how in bounded_map(copy, rows, workers=workers):
            stats["bytes_copied"] += row.size
            if how is None:
                unchecked.append(row)
            else:
                verified_by[how] += 1
                stats["bytes_read_on_node"] += row.size
            if progress:
                progress(row.size, 1)
        flush(dest)
        return unchecked

    for batch in iter_package_files(repo.catalog, package_id):
        if only_paths is not None:
            batch = [r for r in batch if r.path in only_paths]
        todo = [r for r in batch if present.get(r.path) != r.size]
        copied = {r.path for r in todo}
        stats["files_copied"] += len(todo)
        unchecked = copy_all(todo) + [r for r in batch if r.path not in copied]
        check = verify_rows(dest, prefix, unchecked, VERIFY_DIGESTS, workers=repo.settings.workers)
        verified_by[DIGESTED] += len(unchecked) - len(set(check.bad_paths))
        if not check.ok:
            again = [r for r in unchecked if r.path in set(check.bad_paths)]
            check2 = verify_rows(dest, prefix, copy_all(again), VERIFY_DIGESTS, workers=repo.settings.workers)
            if not check2.ok:
                first = check2.findings.errors[0]
                raise VerificationFailed(
                    f"{len(check2.findings.errors)} file(s) did not re-read correctly, first: {first}",
                    package=package_id, node=dest.location,
                )
            verified_by[DIGESTED] += len(again)
            stats["bytes_read_on_node"] += check2.bytes_read_on_node
        stats["files"] += len(batch)
        stats["bytes"] += sum(r.size for r in batch)
        stats["bytes_read_on_node"] += check.bytes_read_on_node
        stats["bytes_over_network"] += check.bytes_over_network
    stats["sources"] = sorted(stats["sources"])
    stats["bad_sources"] = blamed.ids()
    if verified_by[COMPARED]:
        stats["compared_with"] = source_name(reference)
    return stats



@dataclass
class StartedCopy:
    replica_id: int
    package_id: str
    node: Node
    sources: list[CopySource]
    done: dict[str, Any] | None = None  # set when there was nothing to do


def begin_copy(repo: Repository, replica_id: int, *, agent: str, job_id: int | None) -> StartedCopy:
    """Mark the replica ``copying`` (with its event) and find what it can be copied from."""
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        if replica is None:
            raise NotFound(f"no replica {replica_id}")
        package = replica.package
        node = replica.node
        if replica.state == REPLICA_VERIFIED:
            return StartedCopy(replica_id, package.id, node, [],
                            {"replica_id": replica_id, "node": node.name, "state": replica.state, "skipped": True})
        if package.state == PACKAGE_DEACCESSIONED:
            raise NotFound(f"package {package.id} was deaccessioned")
        if replica.state != REPLICA_COPYING:
            replica.state = REPLICA_COPYING
            events.record_event(
                s, events.REPLICATION, "started", agent=agent, package_id=package.id, replica_id=replica.id,
                node_name=node.name, job_id=job_id, policy=repo.policy.label, detail={"state": REPLICA_COPYING},
            )
        sources = copy_sources(repo, s, package, node.id)
        s.expunge(node)
        return StartedCopy(replica_id, package.id, node, sources)


def copy_failed(repo: Repository, started: StartedCopy, error: PreservationError, *, agent: str,
                 job_id: int | None, blamed: Blamed | None = None) -> None:
    """Back to ``pending`` with the error recorded; its job retries it.  The sources found bad on
    the way are flagged all the same: a copy that failed for want of a good source says why."""
    with repo.catalog.session() as s:
        replica = s.get(Replica, started.replica_id)
        replica.state = REPLICA_PENDING
        replica.last_error = str(error)
        events.record_event(
            s, events.REPLICATION, events.FAILURE, agent=agent, package_id=started.package_id,
            replica_id=started.replica_id, node_name=started.node.name, job_id=job_id, policy=repo.policy.label,
            detail={"error": error.to_dict(), "state": REPLICA_PENDING},
        )
        if blamed:
            flag_bad_sources(repo.policy, s, replica.package, blamed.ids(), agent)


def copy_verified(repo: Repository, started: StartedCopy, stats: dict[str, Any], *, agent: str,
                   job_id: int | None) -> dict[str, Any]:
    """Every file written and verified, the node flushed: the replica is ``verified``."""
    with repo.catalog.session() as s:
        replica = s.get(Replica, started.replica_id)
        package = replica.package
        now = utcnow()
        replica.state = REPLICA_VERIFIED
        replica.verified_at = now
        replica.last_audit_at = now
        replica.next_audit_at = next_audit_time(repo.policy)
        replica.bytes = stats["bytes"]
        replica.last_error = None
        events.record_event(
            s, events.REPLICATION, events.SUCCESS, agent=agent, package_id=package.id, replica_id=replica.id,
            node_name=started.node.name, job_id=job_id, policy=repo.policy.label,
            detail={"state": REPLICA_VERIFIED, "verified_digests": ["sha256", "sha512"], **stats},
        )
        flag_bad_sources(repo.policy, s, package, stats.get("bad_sources", []), agent)
        update_package_state(repo.policy, s, package, agent=agent, job_id=job_id)
    return {"replica_id": started.replica_id, "node": started.node.name, "state": REPLICA_VERIFIED, **stats}


def replicate_replica(
    repo: Repository, replica_id: int, *, agent: str = events.SYSTEM_AGENT, job_id: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Bring one replica to ``verified``; idempotent, resumable."""
    started = begin_copy(repo, replica_id, agent=agent, job_id=job_id)
    if started.done is not None:
        return started.done
    if not started.sources:
        raise NoVerifiedSource("copy from: no staging bag and no verified replica", package=started.package_id)
    dest = repo.adapter(started.node)
    blamed = Blamed()
    try:
        stats = write_and_verify(repo, started.package_id, dest, started.sources, progress=progress, blamed=blamed)
        write_package_record(repo, dest, started.package_id)
    except PreservationError as e:
        copy_failed(repo, started, e, agent=agent, job_id=job_id, blamed=blamed)
        raise
    outcome = copy_verified(repo, started, stats, agent=agent, job_id=job_id)
    release_staging_if_done(repo.catalog, started.package_id)
    return outcome

