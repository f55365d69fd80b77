"""Restore: write a package's bag from copies verified while it is read.

Every file is streamed from the freshest verified replica through the local
filesystem adapter, which checks both catalog digests before the file becomes
visible.  A copy that yields wrong bytes is dropped for the rest of the
restore, flagged ``suspect`` and given an audit; the file is fetched from the
next copy (:mod:`preservation.sources`).  The bag appears under DEST only when
complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from preservation import events
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import Package, PackageFile
from preservation.concurrency import bounded_map
from preservation.errors import InvalidRequest, NotFound, NoVerifiedSource
from preservation.package_state import flag_bad_sources
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, from_first_verified, verified_sources
from storage_adapters import flush, open_local


def restore(
    repo: Repository, package_id: str, dest: str | os.PathLike, *, agent: str = events.SYSTEM_AGENT,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the bag of ``package_id`` to the new directory ``dest``.

    Raises NotFound, InvalidRequest (dest exists), NoVerifiedSource, and the
    StorageError of the destination when it cannot be written (full, read-only).
    """
    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidRequest(f"{dest} exists and is not an empty directory: restore into a new one")
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}")
        sources = verified_sources(repo, s, package_id)
    if not sources:
        raise NoVerifiedSource("restore from", package=package_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.restoring-{uuid.uuid4().hex[:8]}"
    target = open_local(tmp, fsync=True)
    blamed = Blamed()
    used: dict[str, int] = {}

    def write(row: FileRow, src: CopySource) -> None:
        target.write(row.path, src.stream(row.path), size=row.size,
                     expected={"sha256": row.sha256, "sha512": row.sha512})

    def fetch(row: FileRow) -> FileRow:
        src, _ = from_first_verified(sources, lambda src: write(row, src), blamed, doing=f"restore {row.path}",
                                     package_id=package_id)
        used[src.label] = used.get(src.label, 0) + 1
        return row

    files = size = 0
    try:
        for batch in iter_package_files(repo.catalog, package_id):
            for row in bounded_map(fetch, batch, workers=max(2, repo.settings.workers * 2)):
                files += 1
                size += row.size
                if progress:
                    progress(row.size, 1)
        flush(target)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _record_restore(repo, package_id, dest, files, size, used, blamed.ids(), agent)
    return {"package_id": package_id, "dest": str(dest), "files": files, "bytes": size,
            "sources": used, "bad_copies": blamed.ids()}


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
