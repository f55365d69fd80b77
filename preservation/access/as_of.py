"""Which state of a package a reader gets: "as of" access to its versions (docs/versions.md).

The one place where the access service decides, for a package a reader
names, what it may read and which files it gets: the file list, the whole
package as zip, one file, an item's files.  A package that was never
versioned is its own state.  Of a versioned package (any of its versions'
ids names it):

- a member library reads the version its period allows
  (:func:`preservation.versions.version_for_library`): the newest delivered
  by the end of its entitled years in a ``pca`` collection, or by the end of
  the years of the grant that opens it; a file that only a later version
  holds is not found for it;
- staff see every version as named (a package id names that version; an
  item, which outlives its versions, names the newest kept).

Whether the reader may read at all stays the access rules' decision
(:mod:`preservation.access.rights`), taken on the package named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from preservation import versions
from preservation.access.accounts import Principal
from preservation.access.rights import ReadRight, read_right, require_read
from preservation.bagit.tagfiles import PAYLOAD_DIR
from preservation.catalog.access_models import AccessGrant
from preservation.catalog.files import FileRow
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package
from preservation.errors import AccessRefused, NotFound


PAYLOAD = f"{PAYLOAD_DIR}/"


@dataclass(frozen=True)
class Reading:
    """What a reader gets of a package: the version whose state is served, and on what right."""

    named_id: str
    version_id: str
    """The package (version) whose state is served."""
    number: int
    lineage_id: str
    versions: int
    """How many versions the lineage has (1 for a package never versioned)."""
    right: ReadRight
    period_end: datetime | None
    """The end of the reader's period ("as of"); None when unbounded or for staff."""
    tag_files: bool = False
    """Whether the bag's tag files are served too (staff); a library reads the payload only."""

    @property
    def versioned(self) -> bool:
        return self.versions > 1

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "package_id": self.version_id, "lineage_id": self.lineage_id,
                "versions": self.versions, "as_of": self.period_end}


def grant_period_end(session: Session, right: ReadRight) -> datetime | None:
    """The last instant of the years of the grant behind ``right``; None when it names no last year."""
    if right.grant_id is None:
        return None
    grant = session.get(AccessGrant, right.grant_id)
    if grant is None or grant.to_year is None:
        return None
    return datetime(min(int(grant.to_year), 9998), 12, 31, 23, 59, 59, 999999)


def reading(session: Session, principal: Principal, package: Package, *, path: str | None = None,
            exact: bool = True, need_right: bool = True, right: ReadRight | None = None) -> Reading:
    """The state of ``package`` that ``principal`` reads (module docstring).

    ``path``: the file asked for (a grant of an item holding it, in any
    version, opens it).  ``exact``: staff get the version named rather than
    the newest kept.  ``need_right``: raise AccessRefused without a read
    right (else the right says no and the state is the one the reader would
    get).  ``right``: the reader's right already decided by the caller (an
    item's page decides it with the item's own grants), whose period bounds
    the version.  Raises NotFound when no version of the package is kept.
    """
    lineage = versions.lineage_versions(session, package.id)
    if right is None:
        right = _right(session, principal, package, path, [v.package_id for v in lineage], need_right)
    if not lineage:
        return Reading(package.id, package.id, 1, package.id, 1, right, None, principal.is_staff)
    end = None
    if principal.is_staff:
        found = versions.version_of(session, package.id) if exact else versions.newest_kept(session, package.id)
    else:
        until = grant_period_end(session, right) if right.allowed else None
        found = versions.version_for_library(session, principal.library_id, package.id, until)
        end = versions.period_end(session, principal.library_id, package.id, until)
    if found is None:
        raise NotFound(f"no version of package {lineage[0].lineage_id} is kept")
    return Reading(package.id, found.package_id, found.number, lineage[0].lineage_id, lineage[-1].number, right,
                   end, principal.is_staff)


def _right(session: Session, principal: Principal, package: Package, path: str | None, lineage: list[str],
           need_right: bool) -> ReadRight:
    """The reader's right on the package named, else on another version of it (a grant of one version, or of
    the years one version covers, opens the package: which state it reads is :func:`reading`'s decision)."""
    named = [package] + [p for p in (session.get(Package, pid) for pid in lineage if pid != package.id)
                         if p is not None and p.state != PACKAGE_DEACCESSIONED]
    if not need_right:
        rights = [read_right(session, principal.library_id, candidate) for candidate in named]
        return next((r for r in rights if r.allowed), rights[0])
    refused: AccessRefused | None = None
    for candidate in named:
        try:
            return require_read(session, principal.library_id, candidate, path, holders=lineage)
        except AccessRefused as e:
            refused = refused or e
    raise refused


def served_file(session: Session, state: Reading, path: str) -> tuple[str, FileRow]:
    """(the package whose copies hold the bytes, their row) of the file ``path`` of the state read.

    The row's path is where the bytes lie in that package (a renamed file
    keeps the path it was stored under).  Raises NotFound when the state
    holds no such file (one only a later version holds, or ``fetch.txt``),
    and, to a library, for a BagIt tag file (anything outside ``data/``): a
    library reads the payload only, and is not told whether a tag file exists.
    """
    served = path != versions.FETCH_TXT and (state.tag_files or path.startswith(PAYLOAD))
    found = versions.locate(session, state.version_id, path) if served else None
    if found is None:
        if state.versioned:
            raise NotFound(f"version {state.number} of package {state.lineage_id}, the one you read, "
                           f"has no file {path!r}")
        raise NotFound(f"package {state.version_id} has no file {path!r}")
    return found.stored_in, FileRow(found.stored_path, found.size, found.sha256, found.sha512)
