"""Writing a new package to several local filesystem nodes in one pass over its staging bag.

The fast path of replication for a fresh ingest (invariant 1 still holds):
each file is read from the staging bag once, a window at a time, the kernel
copies each window into its file in a draft of the package on every node,
and each window is read back at once (:class:`storage_adapters.fanout.FanOut`).
A file whose copy is not judged right is removed from its draft and fails its
node.  Once every file is copied, each node is synced and its draft renamed
onto the package's prefix in one step (:class:`~storage_adapters.filesystem.DraftTree`):
one rename per package and node, not one per file.  The one-by-one copy, and
the replica state changes both share, are in :mod:`preservation.replication`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from preservation import events
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import REPLICA_COPYING, REPLICA_PENDING, Replica
from preservation.concurrency import bounded_map
from preservation.errors import ChecksumMismatch, NoVerifiedSource, PreservationError, SourceFailed, VerificationFailed
from preservation.layout import PackageLayout
from preservation.node_records import package_record
from preservation.package_state import release_staging_if_done
from preservation.replication import (
    COMPARED,
    DIGESTED,
    STAGING,
    VERIFY_DIGESTS,
    Progress,
    StartedCopy,
    begin_copy,
    copy_failed,
    copy_verified,
    mismatch,
    new_stats,
    unreadable,
)
from storage_adapters import StorageAdapter, flush, open_local
from storage_adapters.localfiles import digest_and_compare

if TYPE_CHECKING:
    from storage_adapters.fanout import FannedCopy
    from storage_adapters.filesystem import DraftTree, PreparedCopy


def replicate_together(
    repo: Repository, replica_ids: list[int], *, agent: str = events.SYSTEM_AGENT,
    progress: Progress | None = None,
) -> list[dict[str, Any] | PreservationError] | None:
    """Write new copies of a staged package on several local filesystem nodes in one pass.

    Each file is read from the staging bag once, a window at a time (the
    kernel copies each window into a temporary file on every node), and
    each window is read back at once: the first node's copy with sha256 and
    sha512, every other node's copy compared byte for byte with it
    (:class:`~storage_adapters.fanout.FanOut`), into a draft of the package
    on each node, published (synced, then renamed into place) once every
    file is checked.  One node's failure
    (full, refusing) ends only that node's copy.  Returns, per replica, its
    outcome or its error; None (nothing done) when the copies are not all new
    copies of a staged package on local filesystem nodes: the caller then
    copies them one by one.
    """
    starts: list[StartedCopy] = []
    with repo.catalog.session() as s:
        replicas = [s.get(Replica, rid) for rid in replica_ids]
        if len(replicas) < 2 or any(r is None or r.state not in (REPLICA_PENDING, REPLICA_COPYING) for r in replicas):
            return None
        nodes = [r.node for r in replicas]
        package = replicas[0].package
        staging = package.staging_path
    dests = [repo.adapter(n) for n in nodes]
    locals_ = [d.features.local for d in dests]
    if not staging or not Path(staging).is_dir() or any(local is None for local in locals_):
        return None
    source = open_local(staging, create=False, fsync=False).features.local
    for rid in replica_ids:
        starts.append(begin_copy(repo, rid, agent=agent, job_id=None))
    package_id = starts[0].package_id
    layout = PackageLayout(package_id)
    failed: dict[int, PreservationError] = {}
    stats = [new_stats(sources=[STAGING]) for _ in starts]
    drafts: dict[int, DraftTree] = {}
    for i, local in enumerate(locals_):
        try:
            drafts[i] = local.draft(layout.prefix)
        except PreservationError as e:
            failed[i] = e
    fan = source.fan_out(VERIFY_DIGESTS, drop_source=True)
    lock = threading.Lock()

    def live() -> list[int]:
        with lock:
            return [i for i in range(len(starts)) if i not in failed]

    def fail(i: int, error: PreservationError) -> None:
        with lock:
            failed.setdefault(i, error)

    def copy(row: FileRow) -> FileRow:
        key = layout.key(row.path)
        order = live()
        try:
            fanned = fan.copy(row.path, [(drafts[i], key) for i in order], size=row.size)
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
                fail(order[pos], unreadable(row, e, package=package_id, node=dests[order[pos]].location))
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
            for row in bounded_map(copy, batch, workers=_workers(repo, batch)):
                for i in live():
                    stats[i]["files"] += 1
                    stats[i]["bytes"] += row.size
        # every node's files on stable storage, then each draft visible by one rename, then the renames
        # and records on stable storage: nodes that share a filesystem share each sync
        for i in live():
            try:
                drafts[i].sync()
            except PreservationError as e:
                fail(i, e)
        record = None  # made once (one catalog read, one signature) for every copy of the pass
        for i in live():
            try:
                drafts[i].publish()
                record = record or package_record(repo, package_id)
                record.write_to(dests[i])
            except PreservationError as e:
                fail(i, e)
        for i in live():
            try:
                flush(dests[i])
            except PreservationError as e:
                fail(i, e)
    except PreservationError as e:  # the staging bag itself, or a copy that does not read back: none verified
        for i in live():
            fail(i, e)
    finally:
        fan.close()
        for draft in drafts.values():
            draft.discard()  # those not published: a node that failed
    outcomes: list[dict[str, Any] | PreservationError] = []
    for i, started in enumerate(starts):
        if i in failed:
            copy_failed(repo, started, failed[i], agent=agent, job_id=None)
            outcomes.append(failed[i])
            continue
        if stats[i]["verified_by"][COMPARED]:
            stats[i]["compared_with"] = "the copy hashed in the same pass, on another node"
        outcomes.append(copy_verified(repo, started, stats[i], agent=agent, job_id=None))
    release_staging_if_done(repo.catalog, package_id, background=True)
    return outcomes


SMALL_FILES = 256 * 1024
"""A batch of files this small on average is copied on :data:`SMALL_FILE_WORKERS` threads."""
SMALL_FILE_WORKERS = 8
"""Small files cost the copy more in file system calls (creating each file waits on the
journal) than in bytes, and the waits of several threads overlap: 10,000 files of 4 KiB to
three nodes took 39 s on two threads, 16-20 s on eight (per-file renames then, a loaded machine)."""


def _workers(repo: Repository, batch: list[FileRow]) -> int:
    workers = max(2, repo.settings.workers)
    if batch and sum(row.size for row in batch) < SMALL_FILES * len(batch):
        return max(workers, SMALL_FILE_WORKERS)
    return workers


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
    wrong = mismatch(row, fanned.read_back, fanned.digests)
    if wrong is None:
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
        fail(i, wrong)
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
            fail(i, unreadable(row, e, package=package_id, node=dests[i].location))
            continue
        wrong = mismatch(row, size, got)
        if wrong is not None:
            mismatches.append((i, wrong))
            continue
        how[i] = DIGESTED
        for k, result in zip(later, same):
            if isinstance(result, OSError):
                fail(k, unreadable(row, result, package=package_id, node=dests[k].location))
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
