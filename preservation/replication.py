"""Writing a package onto a node and proving it is there.

A copy is written file by file through the node's adapter, and a bad source
byte never becomes a visible object.  Between local filesystem stores the
kernel copies the bytes into a temporary file, which is re-read and verified
before it is renamed into place: with both digests, or byte for byte against
a copy verified with both digests on another node.  A new package bound for
several local nodes is written to all of them in one pass over its staging
bag, each window of a file read back as it is written
(``replicate_together``, :mod:`storage_adapters.fanout`).  Elsewhere each file's
sha256 is checked *while it streams*, and after a durability barrier every
file is re-read on the node and both digests are compared with the catalog.
Only then is the replica ``verified`` (invariant 1).  Re-running a copy that
was interrupted moves only what is not on the node yet.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import events
from preservation.catalog.models import (
    NODE_ACTIVE,
    NODE_OFFLINE,
    PACKAGE_DAMAGED,
    PACKAGE_DEACCESSIONED,
    PACKAGE_DEGRADED,
    PACKAGE_PRESERVED,
    PACKAGE_REPLICATING,
    REPLICA_COPYING,
    REPLICA_PENDING,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
    utcnow,
)
from preservation.concurrency import bounded_map
from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    NotFound,
    NoVerifiedSource,
    ObjectNotFound,
    PreservationError,
    SourceFailed,
    StorageUnavailable,
    VerificationFailed,
)
from preservation.fixity import FileRow, iter_package_files, verify_rows
from preservation.jobs import kinds
from preservation.placement import satisfies
from preservation.repository import Repository
from storage_adapters import StorageAdapter
from storage_adapters.fanout import FannedCopy, FanOut
from storage_adapters.filesystem import (
    FilesystemAdapter,
    PreparedCopy,
    digest_and_compare,
    digest_path,
    same_content,
)

Progress = Callable[[int, int], None]
RECORD_PREFIX = ".preserve/packages/"


@dataclass
class CopySource:
    """Where the bytes of a package can be read: the staging bag or a verified replica."""

    adapter: StorageAdapter
    prefix: str
    label: str
    replica_id: int | None = None

    def read(self, path: str):
        return self.adapter.read(self.prefix + path)

    def stream(self, path: str) -> Iterator[bytes]:
        """The bytes of ``path``; failing to read them raises SourceFailed, so a writer can tell
        this copy's failure from its own."""
        try:
            yield from self.read(path)
        except PreservationError as e:
            raise SourceFailed(e) from e


def next_audit_time(repo: Repository, node: Node, replica_id: int) -> Any:
    """The deadline of the next full audit: one interval after this verification.

    The audit planner spreads the reads of copies with the same deadline
    evenly over the interval; an earlier deadline here would only re-read
    copies more often than the policy asks.
    """
    return utcnow() + timedelta(days=repo.policy.audit.interval_days)


def copy_sources(repo: Repository, session: Session, package: Package, exclude_node_id: int | None) -> list[CopySource]:
    sources: list[CopySource] = []
    if package.staging_path and Path(package.staging_path).is_dir():
        sources.append(
            CopySource(FilesystemAdapter(Path(package.staging_path).as_uri(), create=False, fsync=False), "", "staging")
        )
    replicas = session.scalars(
        select(Replica)
        .join(Node)
        .where(
            Replica.package_id == package.id,
            Replica.state == REPLICA_VERIFIED,
            Node.status != NODE_OFFLINE,
            Replica.node_id != (exclude_node_id or -1),
        )
        .order_by(Replica.verified_at.desc())
    ).all()
    for r in replicas:
        sources.append(CopySource(repo.adapter(r.node), f"{package.id}/", f"node {r.node.name}", r.id))
    return sources


DIGESTED = "digests"
COMPARED = "comparison"
VERIFY_DIGESTS = ("sha256", "sha512")


def _new_stats(**initial: Any) -> dict[str, Any]:
    """What a copy reports (and its replication event records), all counts zero."""
    return {"files": 0, "bytes": 0, "files_copied": 0, "bytes_copied": 0, "bytes_read_on_node": 0,
            "bytes_over_network": 0, "sources": set(), "bad_sources": [], "verified_by": {DIGESTED: 0, COMPARED: 0},
            **initial}


def _comparison_reference(dest: StorageAdapter, sources: list[CopySource]) -> CopySource | None:
    """A verified copy on a local filesystem that new local copies can be compared with byte for byte.

    A copy whose bytes equal those of a copy verified with both digests has
    those digests too, and reading two files side by side costs a fraction of
    hashing one: the second and third copies of a package on local nodes are
    verified that way.  A copy is never compared with the copy it was made
    from (a rotten source would then vouch for itself).
    """
    if not isinstance(dest, FilesystemAdapter):
        return None
    for src in sources:
        if src.replica_id is not None and isinstance(src.adapter, FilesystemAdapter):
            return src
    return None


def _local_check(row: FileRow, reference: CopySource | None, bad: set[int]) -> Callable[[str], str]:
    """What re-reads a local copy's temporary file before it becomes visible; returns how it was verified.

    Equal to the reference copy: verified.  Otherwise both digests decide; a
    copy that matches the catalog while the reference differs proves the
    reference wrong, and it is flagged.  A copy that does not match raises
    ChecksumMismatch (the source's bytes were wrong) and is never renamed into place.
    """

    def check(path: str) -> str:
        compared = reference is not None and reference.replica_id not in bad
        if compared:
            with contextlib.suppress(OSError, PreservationError):
                if same_content(path, reference.adapter.local_file(reference.prefix + row.path)):
                    return COMPARED
        _check_digests(row, path)
        if compared:
            bad.add(reference.replica_id)
        return DIGESTED

    return check


def _check_digests(row: FileRow, path: str) -> None:
    """Re-read a local copy with both digests: ChecksumMismatch when it differs from the catalog,
    VerificationFailed when it cannot be read."""
    try:
        size, got = digest_path(path, VERIFY_DIGESTS)
    except OSError as e:
        raise _unreadable(row, e) from e
    mismatch = _mismatch(row, size, got)
    if mismatch is not None:
        raise mismatch


def _mismatch(row: FileRow, size: int, got: dict[str, str]) -> ChecksumMismatch | None:
    """What is wrong with a copy that read back with ``size`` and ``got`` digests, if anything."""
    wrong = [a for a in VERIFY_DIGESTS if got[a] != row.digest(a)]
    if size == row.size and not wrong:
        return None
    return ChecksumMismatch(f"the copy read back with other {' and '.join(wrong) or 'size'} than the catalog's",
                            key=row.path)


def _unreadable(row: FileRow, e: OSError, **where: str) -> VerificationFailed:
    return VerificationFailed(f"the copy of {row.path} could not be re-read: {e.strerror or e}", **where)


def _copy_file(
    dest: StorageAdapter, key: str, row: FileRow, sources: list[CopySource], bad: set[int],
    reference: CopySource | None = None,
) -> tuple[str, str | None]:
    """Copy one file from the first source whose bytes match the catalog.

    Returns the source's label and, when the copy was already re-read and
    verified before it became visible (local copies), how (DIGESTED or
    COMPARED); None leaves it to the verification pass.  A failure of the
    destination itself (full, unreachable, refusing) is raised as it is:
    another source would not help, and its retryable flag decides whether
    the job is tried again.
    """
    errors = []
    for src in sources:
        if src.replica_id is not None and src.replica_id in bad:
            continue
        try:
            if isinstance(dest, FilesystemAdapter) and isinstance(src.adapter, FilesystemAdapter):
                check = _local_check(row, None if reference is src else reference, bad)
                return src.label, dest.copy_local(src.adapter, src.prefix + row.path, key, size=row.size, check=check)
            if dest.copy_from(src.adapter, src.prefix + row.path, key):
                return src.label, None
            dest.write(key, src.stream(row.path), size=row.size, expected={"sha256": row.sha256})
            return src.label, None
        except SourceFailed as failed:
            error = failed.error
            if src.replica_id is not None and not isinstance(error, (StorageUnavailable, AccessDenied)):
                bad.add(src.replica_id)  # the node answered but could not read its own copy (EIO): audit it
        except (ChecksumMismatch, ObjectNotFound) as e:  # the source's bytes are wrong, or it has none
            error = e
        if isinstance(error, (ChecksumMismatch, ObjectNotFound)):
            if src.replica_id is not None:
                bad.add(src.replica_id)
        elif not error.retryable and src.replica_id not in bad:
            raise error
        errors.append(f"{src.label}: {error}")
    raise NoVerifiedSource(f"copy {row.path} ({'; '.join(errors) or 'no source'})", package=key.split("/", 1)[0])


def write_and_verify(
    repo: Repository,
    package_id: str,
    dest: StorageAdapter,
    sources: list[CopySource],
    *,
    only_paths: set[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Copy the package (or ``only_paths``) to ``dest``; every file is re-read and verified.

    Local copies are verified before they become visible (both digests, or
    equality with a verified local copy); the rest, and files already on
    ``dest`` with the right size (not copied again), are re-read with both
    digests after the durability barrier, and any that are wrong are
    rewritten once.  Raises VerificationFailed when a file still does not verify.
    """
    prefix = f"{package_id}/"
    workers = max(2, repo.settings.workers * 2)
    bad_sources: set[int] = set()
    reference = _comparison_reference(dest, sources)
    stats = _new_stats()
    verified_by = stats["verified_by"]
    present = {} if only_paths else {o.key[len(prefix):]: o.size for o in dest.list(prefix)}

    def copy(row: FileRow) -> tuple[FileRow, str | None]:
        label, how = _copy_file(dest, prefix + row.path, row, sources, bad_sources, reference)
        stats["sources"].add(label)
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
        dest.flush()
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
    stats["bad_sources"] = sorted(bad_sources)
    if verified_by[COMPARED]:
        stats["compared_with"] = reference.label
    return stats


def package_record_key(package_id: str) -> str:
    return f"{RECORD_PREFIX}{package_id}.json"


def write_package_record(repo: Repository, dest: StorageAdapter, package_id: str) -> None:
    """Store what the catalog knows of the package beside its bag, for `catalog rebuild`.

    Our own bags carry this in bag-info too; a bag ingested as-is (kept
    byte-identical) does not, so the record is what ties it to its collection.
    """
    with repo.catalog.session() as s:
        p = s.get(Package, package_id)
        c = p.collection
        record = {
            "package_id": p.id, "name": p.name, "source_kind": p.source_kind, "policy": p.policy,
            "created_at": p.created_at.isoformat(), "collection": {
                "key": c.key, "title": c.title, "publisher": c.publisher, "licence": c.licence,
                "access_mode": c.access_mode,
            },
        }
    dest.write(package_record_key(package_id), json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8"))


def flag_bad_sources(
    repo: Repository, session: Session, package: Package, problems: Iterable[int] | Mapping[int, str], agent: str,
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
            node_name=r.node.name, policy=repo.policy.label, detail=detail,
        )
        kinds.enqueue_for_replica(session, kinds.AUDIT_AFTER_BAD_READ, r.id, package_id=package.id)
        flagged = True
    if flagged:
        update_package_state(repo, session, package, agent=agent)


@dataclass
class _Started:
    replica_id: int
    package_id: str
    node: Node
    sources: list[CopySource]
    done: dict[str, Any] | None = None  # set when there was nothing to do


def _begin_copy(repo: Repository, replica_id: int, *, agent: str, job_id: int | None) -> _Started:
    """Mark the replica ``copying`` (with its event) and find what it can be copied from."""
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        if replica is None:
            raise NotFound(f"no replica {replica_id}")
        package = replica.package
        node = replica.node
        if replica.state == REPLICA_VERIFIED:
            return _Started(replica_id, package.id, node, [],
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
        return _Started(replica_id, package.id, node, sources)


def _copy_failed(repo: Repository, started: _Started, error: PreservationError, *, agent: str,
                 job_id: int | None) -> None:
    """Back to ``pending`` with the error recorded; its job retries it."""
    with repo.catalog.session() as s:
        replica = s.get(Replica, started.replica_id)
        replica.state = REPLICA_PENDING
        replica.last_error = str(error)
        events.record_event(
            s, events.REPLICATION, events.FAILURE, agent=agent, package_id=started.package_id,
            replica_id=started.replica_id, node_name=started.node.name, job_id=job_id, policy=repo.policy.label,
            detail={"error": error.to_dict(), "state": REPLICA_PENDING},
        )


def _copy_verified(repo: Repository, started: _Started, stats: dict[str, Any], *, agent: str,
                   job_id: int | None) -> dict[str, Any]:
    """Every file written and verified, the node flushed: the replica is ``verified``."""
    with repo.catalog.session() as s:
        replica = s.get(Replica, started.replica_id)
        package = replica.package
        now = utcnow()
        replica.state = REPLICA_VERIFIED
        replica.verified_at = now
        replica.last_audit_at = now
        replica.next_audit_at = next_audit_time(repo, replica.node, replica.id)
        replica.bytes = stats["bytes"]
        replica.last_error = None
        events.record_event(
            s, events.REPLICATION, events.SUCCESS, agent=agent, package_id=package.id, replica_id=replica.id,
            node_name=started.node.name, job_id=job_id, policy=repo.policy.label,
            detail={"state": REPLICA_VERIFIED, "verified_digests": ["sha256", "sha512"], **stats},
        )
        flag_bad_sources(repo, s, package, stats.get("bad_sources", []), agent)
        update_package_state(repo, s, package, agent=agent, job_id=job_id)
    return {"replica_id": started.replica_id, "node": started.node.name, "state": REPLICA_VERIFIED, **stats}


def replicate_replica(
    repo: Repository, replica_id: int, *, agent: str = events.SYSTEM_AGENT, job_id: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Bring one replica to ``verified``; idempotent, resumable."""
    started = _begin_copy(repo, replica_id, agent=agent, job_id=job_id)
    if started.done is not None:
        return started.done
    if not started.sources:
        raise NoVerifiedSource("copy from: no staging bag and no verified replica", package=started.package_id)
    dest = repo.adapter(started.node)
    try:
        stats = write_and_verify(repo, started.package_id, dest, started.sources, progress=progress)
        write_package_record(repo, dest, started.package_id)
    except PreservationError as e:
        _copy_failed(repo, started, e, agent=agent, job_id=job_id)
        raise
    outcome = _copy_verified(repo, started, stats, agent=agent, job_id=job_id)
    release_staging_if_done(repo, started.package_id)
    return outcome


def replicate_together(
    repo: Repository, replica_ids: list[int], *, agent: str = events.SYSTEM_AGENT,
    progress: Progress | None = None,
) -> list[dict[str, Any] | PreservationError] | None:
    """Write new copies of a staged package on several local filesystem nodes in one pass.

    Each file is read from the staging bag once, a window at a time (the
    kernel copies each window into a temporary file on every node), and
    each window is read back at once: the first node's copy with sha256 and
    sha512, every other node's copy compared byte for byte with it
    (:class:`~storage_adapters.fanout.FanOut`); only when the whole file
    is checked are its copies renamed into place.  One node's failure
    (full, refusing) ends only that node's copy.  Returns, per replica, its
    outcome or its error; None (nothing done) when the copies are not all new
    copies of a staged package on local filesystem nodes: the caller then
    copies them one by one.
    """
    starts: list[_Started] = []
    with repo.catalog.session() as s:
        replicas = [s.get(Replica, rid) for rid in replica_ids]
        if len(replicas) < 2 or any(r is None or r.state not in (REPLICA_PENDING, REPLICA_COPYING) for r in replicas):
            return None
        nodes = [r.node for r in replicas]
        package = replicas[0].package
        staging = package.staging_path
    dests = [repo.adapter(n) for n in nodes]
    if not staging or not Path(staging).is_dir() or not all(isinstance(d, FilesystemAdapter) for d in dests):
        return None
    source = FilesystemAdapter(Path(staging).as_uri(), create=False, fsync=False)
    for rid in replica_ids:
        starts.append(_begin_copy(repo, rid, agent=agent, job_id=None))
    package_id = starts[0].package_id
    failed: dict[int, PreservationError] = {}
    stats = [_new_stats(sources=["staging"]) for _ in starts]
    fan = FanOut(source, VERIFY_DIGESTS, drop_source=True)
    lock = threading.Lock()

    def live() -> list[int]:
        with lock:
            return [i for i in range(len(starts)) if i not in failed]

    def fail(i: int, error: PreservationError) -> None:
        with lock:
            failed.setdefault(i, error)

    def copy(row: FileRow) -> FileRow:
        key = f"{package_id}/{row.path}"
        order = live()
        try:
            fanned = fan.copy(row.path, [(dests[i], key) for i in order], size=row.size)
        except SourceFailed as e:
            raise NoVerifiedSource(f"copy {row.path} (staging: {e.error})", package=package_id) from e
        except ChecksumMismatch as e:
            raise NoVerifiedSource(f"copy {row.path} (staging: {e})", package=package_id) from e
        prepared = {order[pos]: c for pos, c in enumerate(fanned.copies) if c is not None}
        how: dict[int, str] = {}
        try:
            for pos, e in fanned.failed.items():
                fail(order[pos], e)
            for pos, e in fanned.unreadable.items():
                fail(order[pos], _unreadable(row, e, package=package_id, node=dests[order[pos]].location))
            how = _judge_fanned(package_id, row, fanned, order, prepared, dests, fail)
            for i in how:
                try:
                    prepared.pop(i).commit()
                except PreservationError as e:
                    fail(i, e)
                    continue
                with lock:
                    st = stats[i]
                    st["files_copied"] += 1
                    st["bytes_copied"] += row.size
                    st["bytes_read_on_node"] += row.size
                    st["verified_by"][how[i]] += 1
        finally:
            for p in prepared.values():
                p.discard()
        if progress and how:
            progress(row.size * len(how), len(how))
        return row

    try:
        for batch in iter_package_files(repo.catalog, package_id):
            for row in bounded_map(copy, batch, workers=max(2, repo.settings.workers)):
                for i in live():
                    stats[i]["files"] += 1
                    stats[i]["bytes"] += row.size
            for i in live():
                try:
                    dests[i].flush()
                except PreservationError as e:
                    fail(i, e)
        for i in live():
            try:
                write_package_record(repo, dests[i], package_id)
            except PreservationError as e:
                fail(i, e)
    except PreservationError as e:  # the staging bag itself, or a copy that does not read back: none verified
        for i in live():
            fail(i, e)
    finally:
        fan.close()
    outcomes: list[dict[str, Any] | PreservationError] = []
    for i, started in enumerate(starts):
        if i in failed:
            _copy_failed(repo, started, failed[i], agent=agent, job_id=None)
            outcomes.append(failed[i])
            continue
        if stats[i]["verified_by"][COMPARED]:
            stats[i]["compared_with"] = "the copy hashed in the same pass, on another node"
        outcomes.append(_copy_verified(repo, started, stats[i], agent=agent, job_id=None))
    release_staging_if_done(repo, package_id)
    return outcomes


def _judge_fanned(
    package_id: str, row: FileRow, fanned: FannedCopy, order: list[int], prepared: dict[int, PreparedCopy],
    dests: list[StorageAdapter], fail: Callable[[int, PreservationError], None],
) -> dict[int, str]:
    """How each copy of one file written by a fan-out is verified; the others fail their node.

    The reference copy was read back with both digests while it was
    written, and every other copy compared with it: when the digests are
    the catalog's, the reference is verified by them and each equal copy
    by comparison.  When they are not, the copies equal to the reference
    carry the same wrong bytes, and the copies that differ are re-read in
    full (:func:`_verify_prepared`): one that matches the catalog proves the
    reference's node wrote wrong bytes; none means the staging bag is wrong
    (NoVerifiedSource).  Without a reference (its node failed mid-file),
    every copy is re-read in full.
    """
    if fanned.reference is None:
        return _verify_prepared(package_id, row, prepared, dests, fail)
    reference = order[fanned.reference]
    mismatch = _mismatch(row, fanned.read_back, fanned.digests)
    if mismatch is None:
        how = {reference: DIGESTED}
        for pos, same in fanned.same.items():
            if same:
                how[order[pos]] = COMPARED
            else:
                fail(order[pos], VerificationFailed(f"the copy of {row.path} read back other bytes than were written",
                                                    package=package_id, node=dests[order[pos]].location))
        return how
    twins = [reference] + [order[pos] for pos, same in fanned.same.items() if same]
    others = {order[pos]: prepared[order[pos]] for pos, same in fanned.same.items() if not same}
    how = _verify_prepared(package_id, row, others, dests, fail) if others else {}
    if not how:
        raise NoVerifiedSource(f"copy {row.path} (staging: no copy of it read back with the catalog's digests)",
                               package=package_id)
    for i in twins:  # another copy matched the catalog: these nodes wrote other bytes
        fail(i, mismatch)
    return how


def _verify_prepared(
    package_id: str, row: FileRow, prepared: dict[int, PreparedCopy], dests: list[StorageAdapter],
    fail: Callable[[int, PreservationError], None],
) -> dict[int, str]:
    """Re-read the temporary copies of one file; returns how each good one was verified.

    The first copy whose sha256 and sha512 match the catalog is the reference;
    in the same read of it every later copy is compared with it byte for
    byte.  A copy that cannot be re-read, or reads back other bytes, fails its
    node only.  When no copy matches the catalog the staging bag itself is
    wrong: NoVerifiedSource.
    """
    how: dict[int, str] = {}
    mismatches = []
    order = sorted(prepared)
    for pos, i in enumerate(order):
        later = order[pos + 1:]
        try:
            size, got, same = digest_and_compare(prepared[i].path, [prepared[k].path for k in later], VERIFY_DIGESTS)
        except OSError as e:
            fail(i, _unreadable(row, e, package=package_id, node=dests[i].location))
            continue
        mismatch = _mismatch(row, size, got)
        if mismatch is not None:
            mismatches.append((i, mismatch))
            continue
        how[i] = DIGESTED
        for k, result in zip(later, same):
            if isinstance(result, OSError):
                fail(k, _unreadable(row, result, package=package_id, node=dests[k].location))
            elif not result:
                fail(k, VerificationFailed(f"the copy of {row.path} read back other bytes than were written",
                                           package=package_id, node=dests[k].location))
            else:
                how[k] = COMPARED
        break
    if not how and mismatches:
        raise NoVerifiedSource(f"copy {row.path} (staging: no copy of it read back with the catalog's digests)",
                               package=package_id)
    for i, e in mismatches:  # another copy of the same bytes matched: this node wrote them wrong
        fail(i, e)
    return how


def update_package_state(
    repo: Repository, session: Session, package: Package, *, agent: str, job_id: int | None = None
) -> str:
    """Derive the package state from its replicas; record an event when it changes."""
    if package.state == PACKAGE_DEACCESSIONED:
        return package.state
    session.flush()
    replicas = session.scalars(select(Replica).where(Replica.package_id == package.id)).all()
    verified_active = [r.node for r in replicas if r.state == REPLICA_VERIFIED and r.node.status == NODE_ACTIVE]
    any_verified = any(r.state == REPLICA_VERIFIED for r in replicas)
    staged = bool(package.staging_path and Path(package.staging_path).is_dir())
    if satisfies(repo.policy.replication, verified_active):  # lists what is lacking
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
            policy=repo.policy.label,
            detail={
                "package_state": new, "previous_state": old,
                "verified_copies": sorted(n.name for n in verified_active),
                "required": repo.policy.replication.model_dump(),
            },
        )
    return new


def release_staging_if_done(repo: Repository, package_id: str) -> None:
    """Remove the staging bag once the package is preserved (its copies carry it now)."""
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None or package.state != PACKAGE_PRESERVED or not package.staging_path:
            return
        path = package.staging_path
        package.staging_path = None
    shutil.rmtree(path, ignore_errors=True)
