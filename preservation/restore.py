"""Restore: write a package's bag from copies verified while it is read.

Every file is streamed from the freshest verified replica through the local
filesystem adapter, which checks both catalog digests before the file becomes
visible.  A copy that yields wrong bytes is dropped for the rest of the
restore, flagged ``suspect`` and given an audit; the file is fetched from the
next copy (:mod:`preservation.sources`).  The bag appears under DEST only when
complete.

A version (docs/versions.md) is restored whole: each payload file from the
copies of the version that stored it, its own tag files but ``fetch.txt``
(every file it lists is written), so DEST holds the bag as it was made.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import func, select

from preservation import events
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import Package, PackageFile, Replica
from preservation.concurrency import bounded_map
from preservation.errors import InvalidRequest, NotFound, NoVerifiedSource
from preservation.package_state import flag_bad_sources
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, from_first_verified, verified_sources
from preservation.versions import StateRow, iter_version_files, resolve_version, version_of
from storage_adapters import StorageAdapter, flush, open_local


def restore(
    repo: Repository, package_id: str, dest: str | os.PathLike, *, agent: str = events.SYSTEM_AGENT,
    progress: Callable[[int, int], None] | None = None, version: int | None = None,
) -> dict[str, Any]:
    """Write the bag of ``package_id`` (of its version ``version``) to the new directory ``dest``.

    Raises NotFound, InvalidRequest (dest exists), NoVerifiedSource, and the
    StorageError of the destination when it cannot be written (full, read-only).
    """
    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidRequest(f"{dest} exists and is not an empty directory: restore into a new one")
    with repo.catalog.session() as s:
        if version is not None:
            package_id = resolve_version(s, package_id, version)
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}")
        versioned = version_of(s, package_id)
        sources = verified_sources(repo, s, package_id)
    if versioned is not None:
        return _restore_version(repo, package_id, versioned.number, dest, agent=agent, progress=progress)
    if not sources:
        raise NoVerifiedSource("restore from", package=package_id)
    blamed = Blamed()
    used = _Used()

    def fetch(target: StorageAdapter, row: FileRow) -> FileRow:
        def write(src: CopySource) -> None:
            target.write(row.path, src.stream(row.path), size=row.size,
                         expected={"sha256": row.sha256, "sha512": row.sha512})

        src, _ = from_first_verified(sources, write, blamed, doing=f"restore {row.path}", package_id=package_id)
        used.add(src.label)
        return row

    written = _Written()
    try:
        _write_bag(repo, dest, iter_package_files(repo.catalog, package_id), fetch, progress, written)
    finally:
        _record_restore(repo, package_id, dest, written.files, written.size, used.counts, blamed.ids(), agent)
    return {"package_id": package_id, "dest": str(dest), "files": written.files, "bytes": written.size,
            "sources": used.counts, "bad_copies": blamed.ids()}


class _Used:
    """How many files each copy gave, counted from the fetching threads."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, label: str) -> None:
        with self._lock:
            self.counts[label] = self.counts.get(label, 0) + 1


class _Written:
    files = 0
    size = 0
    complete = False


def _write_bag(repo: Repository, dest: Path, batches: Iterable[list], fetch: Callable[[StorageAdapter, Any], Any],
               progress: Callable[[int, int], None] | None, written: _Written) -> None:
    """Fetch every row into a new directory beside ``dest``, made ``dest`` by one rename once complete.

    ``written`` counts what was written, also when this raises (after removing the partial bag).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.restoring-{uuid.uuid4().hex[:8]}"
    target = open_local(tmp, fsync=True)
    try:
        for batch in batches:
            for row in bounded_map(lambda row: fetch(target, row), batch, workers=max(2, repo.settings.workers * 2)):
                written.files += 1
                written.size += row.size
                if progress:
                    progress(row.size, 1)
        flush(target)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
        written.complete = True
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _record_restore(repo, package_id, dest, files, size, used, bad, agent) -> None:
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        complete = dest.exists() and files == _file_count(s, package_id)
        events.record_event(
            s, events.DISSEMINATION, events.SUCCESS if complete else events.FAILURE, agent=agent,
            package_id=package_id, policy=repo.policy.label,
            detail={"restored_to": str(dest), "files": files, "bytes": size, "sources": used,
                    "verified": ["sha256", "sha512"], "bad_copies": bad},
        )
        flag_bad_sources(repo.policy, s, package, bad, agent)


def _file_count(session, package_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(PackageFile).where(PackageFile.package_id == package_id)
    ).scalar_one()


def _restore_version(repo: Repository, package_id: str, number: int, dest: Path, *, agent: str,
                     progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """Restore a version: each file read from the verified copies of the version that stored it."""
    by_package: dict[str, list[CopySource]] = {}
    lock = threading.Lock()

    def sources_of(stored_in: str) -> list[CopySource]:
        with lock:
            if stored_in not in by_package:
                with repo.catalog.session() as s:
                    by_package[stored_in] = verified_sources(repo, s, stored_in)
                if not by_package[stored_in]:
                    raise NoVerifiedSource("restore from", package=stored_in)
            return by_package[stored_in]

    blamed = Blamed()
    used = _Used()

    def fetch(target: StorageAdapter, row: StateRow) -> StateRow:
        def write(src: CopySource) -> None:
            target.write(row.path, src.stream(row.stored_path), size=row.size,
                         expected={"sha256": row.sha256, "sha512": row.sha512})

        src, _ = from_first_verified(sources_of(row.stored_in), write, blamed, doing=f"restore {row.path}",
                                     package_id=row.stored_in)
        used.add(src.label)
        return row

    written = _Written()
    try:
        _write_bag(repo, dest, iter_version_files(repo.catalog, package_id), fetch, progress, written)
    finally:
        with repo.catalog.session() as s:
            events.record_event(
                s, events.DISSEMINATION, events.SUCCESS if written.complete else events.FAILURE, agent=agent,
                package_id=package_id, policy=repo.policy.label,
                detail={"restored_to": str(dest), "version": number, "files": written.files, "bytes": written.size,
                        "sources": used.counts,
                        "verified": ["sha256", "sha512"], "bad_copies": blamed.ids()},
            )
            for rid in blamed.ids():  # a blamed copy may be another version's: flag it with its own package
                replica = s.get(Replica, rid)
                if replica is not None:
                    flag_bad_sources(repo.policy, s, replica.package, [rid], agent)
    return {"package_id": package_id, "version": number, "dest": str(dest), "files": written.files,
            "bytes": written.size, "sources": used.counts, "bad_copies": blamed.ids()}
