"""Re-supplying lost files from outside the network: the original delivery, the publisher, a tape.

A file that no copy holds right (recorded unrepairable by its repairs,
:mod:`preservation.repair`) can only come back from outside.  The operator
names the package file and a local file (`preserve repair PKG --from-file
PATH=LOCALFILE`):

1. Each local file is read once, computing its size, sha256 and sha512 in
   that pass; unless all three are the catalog's for PATH,
   ResuppliedFileMismatch is raised and nothing changes (every file offered
   is checked before any is written).
2. Each copy of the package that may be audited (on a readable node, not
   being written by replication or a repair) is checked for PATH on its
   node, with both digests.  A copy whose PATH does not verify gets the
   local file, written atomically with both digests checked while the
   bytes stream, then read back with both; a copy that already has it is
   left alone.
3. A ``repair`` event per copy written records the file, its digests and
   that it came from outside the network; the unrepairable records of the
   file go (a copy now holds it, so it has a source).
4. Each copy written is audited in full: one that now holds every file
   right is verified again (which closes its superseded dead jobs); one
   still damaged elsewhere gets a repair job from its audit.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import select

from preservation import events
from preservation.audit import audit_replica
from preservation.catalog.files import FileRow
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Node, Package, PackageFile, Replica
from preservation.codes import NODE_UNAVAILABLE
from preservation.errors import InvalidRequest, NotFound, ResuppliedFileMismatch, VerificationFailed
from preservation.fixity import verify_rows
from preservation.layout import PackageLayout
from preservation.package_state import AUDITABLE_STATES, clear_unrepairable, readable_node, update_package_state
from preservation.repository import Repository
from storage_adapters import flush

CHUNK = 1 << 20
BOTH_DIGESTS = ("sha256", "sha512")


@dataclass(frozen=True)
class Offer:
    """One file to re-supply: the package path it replaces, the local file that holds its bytes."""

    path: str
    local: Path


def parse_offer(text: str) -> Offer:
    """``PATH=LOCALFILE`` (the package path as in the bag's manifests, e.g. ``data/a.xml``); raises InvalidRequest."""
    path, sep, local = text.partition("=")
    if not sep or not path or not local:
        raise InvalidRequest(f"--from-file takes PATH=LOCALFILE (the file's path in the package, e.g. "
                             f"data/report.xml=/media/delivery/report.xml), not {text!r}")
    return Offer(path, Path(local))


def resupply(repo: Repository, package_id: str, offers: list[Offer], *, agent: str = events.SYSTEM_AGENT
             ) -> dict[str, Any]:
    """Write each offered file to every copy of ``package_id`` that lacks it; see the module docstring.

    Raises NotFound (no such package, or PATH is not one of its files),
    InvalidRequest (no offer, a path offered twice, a local file that is not
    a readable regular file, a deaccessioned package) and
    ResuppliedFileMismatch (a local file is not the catalog's): in every
    case before anything is written.
    """
    if not offers:
        raise InvalidRequest("name at least one file to re-supply: --from-file PATH=LOCALFILE")
    if len({o.path for o in offers}) != len(offers):
        raise InvalidRequest("a package file is offered twice: give each PATH once")
    rows = _catalog_rows(repo, package_id, offers)
    for offer in offers:
        _check_offer(offer, rows[offer.path])
    copies = _copies(repo, package_id)
    layout = PackageLayout(package_id)
    files = []
    written_to: set[int] = set()
    for offer in offers:
        row = rows[offer.path]
        report = {"path": offer.path, "size": row.size, "written": [], "already_right": [], "not_reached": []}
        for replica_id, node_name, adapter in copies:
            check = verify_rows(adapter, layout.prefix, [row], BOTH_DIGESTS, workers=1)
            if NODE_UNAVAILABLE in check.findings.codes():
                report["not_reached"].append(node_name)
                continue
            if check.ok:
                report["already_right"].append(node_name)
                continue
            _write(adapter, layout, offer.local, row, node_name)
            _record(repo, package_id, replica_id, node_name, offer, row, agent)
            report["written"].append(node_name)
            written_to.add(replica_id)
        if report["written"] or report["already_right"]:
            with repo.catalog.session() as s:
                report["unrepairable_records_cleared"] = clear_unrepairable(s, package_id, [offer.path])
        files.append(report)
    audits = {}
    for replica_id, node_name, _ in copies:
        if replica_id in written_to:
            audits[node_name] = audit_replica(repo, replica_id, agent=agent, algorithms=BOTH_DIGESTS).state
    with repo.catalog.session() as s:
        state = update_package_state(repo.policy, s, s.get(Package, package_id), agent=agent)
    return {"package_id": package_id, "files": files, "audits": audits, "package_state": state}


def _catalog_rows(repo: Repository, package_id: str, offers: list[Offer]) -> dict[str, FileRow]:
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}: see `preserve package list`")
        if package.state == PACKAGE_DEACCESSIONED:
            raise InvalidRequest(f"package {package_id} is deaccessioned: its copies are not kept")
        found = {f.path: FileRow(f.path, f.size, f.sha256, f.sha512) for f in s.scalars(
            select(PackageFile).where(PackageFile.package_id == package_id,
                                      PackageFile.path.in_([o.path for o in offers])))}
    for offer in offers:
        if offer.path not in found:
            raise NotFound(f"package {package_id} stores no file {offer.path!r}: give the path as the bag's "
                           f"manifest names it (data/…), and for a file an earlier version stored, that version")
    return found


def _check_offer(offer: Offer, row: FileRow) -> None:
    """Read the local file once; raise ResuppliedFileMismatch unless its size and both digests are the catalog's."""
    size, digests = 0, {a: hashlib.new(a) for a in BOTH_DIGESTS}
    for chunk in _chunks(offer.local):
        size += len(chunk)
        for h in digests.values():
            h.update(chunk)
    got = {a: h.hexdigest() for a, h in digests.items()}
    wrong = [what for what, ok in (("size", size == row.size), ("sha256", got["sha256"] == row.sha256),
                                   ("sha512", got["sha512"] == row.sha512)) if not ok]
    if wrong:
        raise ResuppliedFileMismatch(
            f"{offer.local} is not {row.path}: its {', '.join(wrong)} differ(s) from the catalog "
            f"(size {size}, catalog {row.size}; sha256 {got['sha256'][:16]}…, catalog {row.sha256[:16]}…)",
            path=row.path, local_file=str(offer.local), differs=wrong)


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        raise InvalidRequest(f"cannot read {path}: {e.strerror}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidRequest(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _copies(repo: Repository, package_id: str) -> list[tuple[int, str, Any]]:
    """The copies a file may be written to: those an audit may read (never one being written)."""
    with repo.catalog.session() as s:
        rows = s.execute(select(Replica, Node).join(Node, Node.id == Replica.node_id)
                         .where(Replica.package_id == package_id, Replica.state.in_(AUDITABLE_STATES),
                                readable_node()).order_by(Node.name)).all()
        return [(r.id, n.name, repo.adapter(n)) for r, n in rows]


def _write(adapter, layout: PackageLayout, local: Path, row: FileRow, node_name: str) -> None:
    """Write atomically, both digests checked while the bytes stream, then read back with both.

    Raises ChecksumMismatch (the local file changed since it was checked: nothing became visible) and
    VerificationFailed (the node did not give the bytes back)."""
    adapter.write(layout.key(row.path), _chunks(local), size=row.size,
                  expected={"sha256": row.sha256, "sha512": row.sha512}, algorithms=BOTH_DIGESTS)
    flush(adapter)
    check = verify_rows(adapter, layout.prefix, [row], BOTH_DIGESTS, workers=1)
    if not check.ok:
        raise VerificationFailed(f"{row.path} did not read back right: {check.findings.errors[0]}",
                                 package=layout.package_id, node=node_name)


def _record(repo: Repository, package_id: str, replica_id: int, node_name: str, offer: Offer, row: FileRow,
            agent: str) -> None:
    with repo.catalog.session() as s:
        events.record_event(
            s, events.REPAIR, events.SUCCESS, agent=agent, package_id=package_id, replica_id=replica_id,
            node_name=node_name, policy=repo.policy.label,
            detail={"resupplied": row.path, "source": "outside the network", "local_file": str(offer.local),
                    "size": row.size, "sha256": row.sha256, "sha512": row.sha512, "paths": [row.path]},
        )
