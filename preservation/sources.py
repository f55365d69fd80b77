"""Reading a package's bytes from the first copy that has them right (invariant 4).

Replication, repair, restore, access delivery and challenges all read a
file the same way: from each candidate copy in turn, freshest first, until
one yields the catalog's bytes.  The copies that yield other bytes, or none,
are blamed: they are skipped for the rest of the work, and the caller flags
them ``suspect`` with a full audit (:func:`~preservation.package_state.flag_bad_sources`),
which decides whether they are corrupt.

Two rules decide it:

* **Candidates** are verified copies on readable nodes
  (:func:`~preservation.package_state.readable_node`: every node not
  offline; a draining node is read, since that is how its copies move).
* **Blame** falls on a copy whose node answered but could not give the
  catalog's bytes: other bytes (ChecksumMismatch), no object
  (ObjectNotFound), or a read error of the copy itself.  A node that does
  not answer (StorageUnavailable) or refuses our credentials (AccessDenied)
  says nothing about its copy: it is skipped without blame.

Errors of the destination (the disk a restore writes to, a node that is
full) are raised as they are: another source would not help.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import (
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_REPAIRING,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Node,
    Replica,
)
from preservation.codes import NODE_UNAVAILABLE
from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    NoVerifiedSource,
    ObjectNotFound,
    PreservationError,
    SourceFailed,
    StorageUnavailable,
)
from preservation.fixity import verify_rows
from preservation.layout import PackageLayout
from preservation.package_state import readable_node
from preservation.repository import Repository
from storage_adapters import LocalStore, StorageAdapter

T = TypeVar("T")


@dataclass
class CopySource:
    """Where the bytes of a package can be read: the staging bag or a verified replica."""

    adapter: StorageAdapter
    prefix: str  # a replica's PackageLayout prefix; "" for the staging bag, which is the bag itself
    label: str  # the node's name, or "staging"
    replica_id: int | None = None

    def key(self, path: str) -> str:
        return self.prefix + path

    @cached_property
    def local(self) -> LocalStore | None:
        """The store on this host behind the source (kernel copies, byte comparison), or None."""
        return self.adapter.features.local

    def read(self, path: str) -> Iterator[bytes]:
        return self.adapter.read(self.key(path))

    def stream(self, path: str) -> Iterator[bytes]:
        """The bytes of ``path``; failing to read them raises SourceFailed, so a writer can tell
        this copy's failure from its own."""
        try:
            yield from self.read(path)
        except PreservationError as e:
            raise SourceFailed(e) from e


def verified_sources(
    repo: Repository, session: Session, package_id: str, *, exclude_replica_id: int | None = None,
    exclude_node_id: int | None = None,
) -> list[CopySource]:
    """The candidate copies of a package: verified, on a readable node, most recently verified first."""
    stmt = (
        select(Replica).join(Node)
        .where(Replica.package_id == package_id, Replica.state == REPLICA_VERIFIED, readable_node())
        .order_by(Replica.verified_at.desc(), Replica.id)
    )
    if exclude_replica_id is not None:
        stmt = stmt.where(Replica.id != exclude_replica_id)
    if exclude_node_id is not None:
        stmt = stmt.where(Replica.node_id != exclude_node_id)
    return [replica_source(repo, r) for r in session.scalars(stmt)]


# copies that may hold good bytes of some files: whatever is read from them is verified against the catalog
# first.  A copy under repair counts too (its files are replaced atomically, each old or new, both checked).
SOURCE_STATES = (REPLICA_VERIFIED, REPLICA_SUSPECT, REPLICA_CORRUPT, REPLICA_MISSING, REPLICA_REPAIRING)


def any_copy_sources(repo: Repository, session: Session, package_id: str) -> list[CopySource]:
    """Every copy of a package on a readable node that may hold some files right, verified ones first.

    For work that takes each file from wherever it is right (a partial
    restore of a damaged package): a copy that is corrupt in one file may
    hold the others intact.
    """
    stmt = (
        select(Replica).join(Node)
        .where(Replica.package_id == package_id, Replica.state.in_(SOURCE_STATES), readable_node())
        .order_by((Replica.state != REPLICA_VERIFIED), Replica.verified_at.desc(), Replica.id)
    )
    return [replica_source(repo, r) for r in session.scalars(stmt)]


def replica_source(repo: Repository, replica: Replica) -> CopySource:
    """One replica as a source (it must be loaded in a live session)."""
    return CopySource(repo.adapter(replica.node), PackageLayout(replica.package_id).prefix, replica.node.name,
                      replica.id)


def blames_copy(error: BaseException) -> bool:
    """Whether a failure to read a copy is the copy's fault (see the module docstring)."""
    return not isinstance(error, (StorageUnavailable, AccessDenied))


def _problem(error: BaseException) -> str:
    """What a flagged copy's event says was wrong: the bytes' difference itself, or the coded read error."""
    if isinstance(error, ChecksumMismatch) or not isinstance(error, PreservationError):
        return str(error)
    return f"{error.code} {error}"


class Blamed:
    """The copies found bad during one piece of work: replica id -> what was wrong.  Thread-safe."""

    def __init__(self) -> None:
        self._problems: dict[int, str] = {}
        self._lock = threading.Lock()

    def __contains__(self, replica_id: object) -> bool:
        return replica_id in self._problems

    def __bool__(self) -> bool:
        return bool(self._problems)

    def add(self, replica_id: int, problem: str) -> None:
        with self._lock:
            self._problems.setdefault(replica_id, problem)

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._problems)

    def problems(self) -> dict[int, str]:
        with self._lock:
            return dict(self._problems)


def from_first_verified(
    sources: list[CopySource], attempt: Callable[[CopySource], T], blamed: Blamed, *, doing: str,
    package_id: str,
) -> tuple[CopySource, T]:
    """``attempt`` each source not yet blamed in turn; returns the first that succeeds and its result.

    ``attempt`` raises SourceFailed when reading the source failed,
    ChecksumMismatch when the source's bytes are not the catalog's and
    ObjectNotFound when it has none; any other error is the destination's
    and is raised as it is.  Raises NoVerifiedSource (naming what each
    source said) when no source succeeds.
    """
    errors: list[str] = []
    for src in sources:
        if src.replica_id in blamed:
            continue
        try:
            return src, attempt(src)
        except SourceFailed as failed:
            error = failed.error
        except (ChecksumMismatch, ObjectNotFound) as e:
            error = e
        if src.replica_id is not None and blames_copy(error):
            blamed.add(src.replica_id, _problem(error))
        errors.append(f"{src.label}: {error}")
    raise NoVerifiedSource(f"{doing} ({'; '.join(errors) or 'no verified copy on a readable node'})",
                           package=package_id)


@dataclass
class SourcePlan:
    """Which copy each file will be copied from, every one of them verified there just now."""

    sources: dict[int, CopySource] = field(default_factory=dict)  # replica id -> the copy
    assigned: dict[int, set[str]] = field(default_factory=dict)  # replica id -> the paths it gives
    blamed: Blamed = field(default_factory=Blamed)  # copies whose bytes for some path did not verify
    unreachable: list[str] = field(default_factory=list)  # nodes that did not answer
    unsourced: list[str] = field(default_factory=list)  # paths no copy has right

    def by_node(self) -> dict[str, int]:
        return {self.sources[rid].label: len(paths) for rid, paths in self.assigned.items()}


def plan_from_first_verified(
    repo: Repository, package_id: str, sources: list[CopySource], paths: set[str], algorithms: tuple[str, ...],
) -> SourcePlan:
    """The batch form of :func:`from_first_verified`, for copying many files from remote copies.

    The files not yet placed are verified on each source in turn, on its
    node (only digests cross the network), and each goes to the first source
    whose bytes for it verify; a source with a file wrong is blamed, and one
    whose node does not answer is skipped without blame.  Nothing is copied:
    the caller copies each file from its source, which verifies it again.
    """
    plan = SourcePlan(sources={src.replica_id: src for src in sources})
    for batch in iter_package_files(repo.catalog, package_id):
        remaining: list[FileRow] = [r for r in batch if r.path in paths]
        for src in sources:
            if not remaining:
                break
            if src.label in plan.unreachable:
                continue
            result = verify_rows(src.adapter, src.prefix, remaining, algorithms, workers=repo.settings.workers)
            if NODE_UNAVAILABLE in result.findings.codes():
                plan.unreachable.append(src.label)
                continue
            bad = set(result.bad_paths)
            if bad:
                plan.blamed.add(src.replica_id, f"{len(bad)} file(s) did not verify, first: {min(bad)}")
            good = [r.path for r in remaining if r.path not in bad]
            if good:
                plan.assigned.setdefault(src.replica_id, set()).update(good)
            remaining = [r for r in remaining if r.path in bad]
        plan.unsourced.extend(r.path for r in remaining)
    return plan
