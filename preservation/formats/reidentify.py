"""Re-identification: files identified with an older signature file are identified again with the installed one.

PRONOM grows: a file nothing matched in 2026 may be a known format in 2030,
and a new signature file may tell two versions apart that an old one did
not.  When a newer FIDO signature file is installed, the records whose
``signature_version`` differs from it are identified again from the same
bytes ingest saw — each file's first and last 128 KiB, read as two ranges
through the storage adapter from a verified copy, never the whole file.
Each file whose format changes gets a ``format identification`` event
naming what it was and what it is; its record keeps its validation.

Planning (:mod:`preservation.upkeep.reidentification`, run by the
scheduler) queues one job per package, at most a share of each node's
daily read budget a day; the job (:func:`reidentify_package`) does the
reading.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from preservation import codes, events
from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import Package, utcnow
from preservation.errors import NotFound, PreservationError
from preservation.findings import FindingList
from preservation.formats.analyser import FORMAT_IDENTIFICATION
from preservation.formats.identify import BUFSIZE, Identification, Signatures, signatures
from preservation.repository import Repository
from preservation.sources import CopySource, verified_sources
from storage_adapters.base import read_all


def read_estimate(sizes: list[int]) -> int:
    """The bytes re-identifying files of these sizes reads: each file's head and tail, never more than the file."""
    return sum(min(size, 2 * BUFSIZE) for size in sizes)


def reidentify_package(repo: Repository, package_id: str, *, agent: str = events.SYSTEM_AGENT,
                       job_id: int | None = None, known: Signatures | None = None) -> dict[str, Any]:
    """Identify again each file of the package recorded with another signature version; returns a report.

    Reads each file's head and tail (two ranges, at most 256 KiB) from the
    freshest verified copy that answers; a file no copy gives is left as it
    was, with an ``FMT007`` finding.  Raises NotFound for an unknown package.
    """
    known = known or signatures()
    current = known.signature_version
    findings = FindingList()
    changed: list[dict[str, Any]] = []
    read = 0
    with repo.catalog.session() as s:
        if s.get(Package, package_id) is None:
            raise NotFound(f"no package {package_id!r}")
        stale = s.execute(select(FileFormat.path, FileFormat.size, FileFormat.puid, FileFormat.basis,
                                 FileFormat.signature_version, FileFormat.details)
                          .where(FileFormat.package_id == package_id, FileFormat.signature_version != current)
                          .order_by(FileFormat.path)).all()
        sources = verified_sources(repo, s, package_id)
    done = 0
    for path, size, puid, basis, old_version, details in stale:
        found, cost = _identify_from_copies(known, sources, path, size)
        read += cost
        if found is None:
            codes.note(findings, codes.FORMAT_UNREAD, f"no verified copy gave the head and tail of {path}", path,
                       package_id=package_id)
            continue
        kept = {k: v for k, v in (details or {}).items() if k == "validation"}
        with repo.catalog.session() as s:
            s.execute(update(FileFormat).where(FileFormat.package_id == package_id, FileFormat.path == path).values(
                puid=found.puid, mime=found.mime, format_name=found.format_name,
                format_version=found.format_version, basis=found.basis, tool=known.tool,
                tool_version=known.tool_version, signature_version=current, identified_at=utcnow(),
                details={**found.details(), **kept}))
            if (found.puid, found.basis) != (puid, basis):
                change = {"path": path, "from": {"puid": puid, "basis": basis, "signature_version": old_version},
                          "to": {"puid": found.puid, "basis": found.basis, "signature_version": current,
                                 "format_name": found.format_name, "format_version": found.format_version}}
                events.record_event(s, FORMAT_IDENTIFICATION, events.SUCCESS,
                                    agent=f"{agent} ({known.tool} {known.tool_version})", package_id=package_id,
                                    job_id=job_id, policy=repo.policy.label,
                                    detail={"reidentified": True, **change})
                changed.append(change)
        done += 1
    return {"package_id": package_id, "signature_version": current, "files": len(stale), "reidentified": done,
            "changed": len(changed), "changes": changed[:50], "bytes_read": read,
            "findings": [f.to_dict() for f in findings]}


def _identify_from_copies(known: Signatures, sources: list[CopySource], path: str, size: int
                          ) -> tuple[Identification | None, int]:
    """The file identified from the first copy that gives its head and tail; and the bytes read."""
    read = 0
    for source in sources:
        key = source.key(path)
        try:
            head = read_all(source.adapter, key, 0, min(size, BUFSIZE)) if size else b""
            read += len(head)
            if size <= BUFSIZE:
                tail = head
            else:
                tail = read_all(source.adapter, key, size - BUFSIZE, BUFSIZE)
                read += len(tail)
        except PreservationError:
            continue  # another copy may answer; whether this one is damaged is the audit's to find
        if len(head) != min(size, BUFSIZE) or len(tail) != min(size, BUFSIZE):
            continue  # a copy shorter than the catalog says: the audit will find it
        return known.identify(head, tail, size, path.rsplit("/", 1)[-1]), read
    return None, read


def reidentify_due(repo: Repository, package_id: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Re-identify now (no queue) one package, or every package with records of another signature version."""
    known = kwargs.pop("known", None) or signatures()
    with repo.catalog.session() as s:
        if package_id is not None:
            ids = [package_id]
        else:
            ids = list(s.scalars(select(FileFormat.package_id).where(
                FileFormat.signature_version != known.signature_version).distinct().order_by(FileFormat.package_id)))
    return [reidentify_package(repo, pid, known=known, **kwargs) for pid in ids]
