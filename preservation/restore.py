"""Restore: write a package's bag from copies verified while it is read.

Every file is streamed from the freshest verified replica through the local
filesystem adapter, which checks both catalog digests before the file becomes
visible.  A copy that yields wrong bytes is dropped for the rest of the
restore, flagged ``suspect`` and given an audit; the file is fetched from the
next copy.  The bag appears under DEST only when complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from preservation import events
from preservation.catalog.models import NODE_OFFLINE, REPLICA_VERIFIED, Node, Package, PackageFile, Replica
from preservation.concurrency import bounded_map
from preservation.errors import ChecksumMismatch, InvalidRequest, NotFound, NoVerifiedSource, SourceFailed
from preservation.fixity import FileRow, iter_package_files
from preservation.replication import CopySource, flag_bad_sources
from preservation.repository import Repository
from storage_adapters.filesystem import FilesystemAdapter


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
        replicas = s.scalars(
            select(Replica).join(Node)
            .where(Replica.package_id == package_id, Replica.state == REPLICA_VERIFIED, Node.status != NODE_OFFLINE)
            .order_by(Replica.verified_at.desc())
        ).all()
        sources = [CopySource(repo.adapter(r.node), f"{package_id}/", r.node.name, r.id) for r in replicas]
    if not sources:
        raise NoVerifiedSource("restore from", package=package_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.restoring-{uuid.uuid4().hex[:8]}"
    target = FilesystemAdapter(tmp.as_uri(), fsync=True)
    bad: set[int] = set()
    used: dict[str, int] = {}

    def fetch(row: FileRow) -> FileRow:
        errors = []
        for src in sources:
            if src.replica_id in bad:
                continue
            try:
                target.write(row.path, src.stream(row.path), size=row.size,
                             expected={"sha256": row.sha256, "sha512": row.sha512})
                used[src.label] = used.get(src.label, 0) + 1
                return row
            except SourceFailed as failed:
                error = failed.error
            except ChecksumMismatch as e:  # the copy's bytes are not the catalog's
                error = e
            # any other error is the destination's (full, read-only): raised as it is, no copy is blamed
            if isinstance(error, ChecksumMismatch) or not error.retryable:
                bad.add(src.replica_id)
            errors.append(f"{src.label}: {error}")
        raise NoVerifiedSource(f"restore {row.path} ({'; '.join(errors)})", package=package_id)

    files = size = 0
    try:
        for batch in iter_package_files(repo.catalog, package_id):
            for row in bounded_map(fetch, batch, workers=max(2, repo.settings.workers * 2)):
                files += 1
                size += row.size
                if progress:
                    progress(row.size, 1)
        target.flush()
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _record_restore(repo, package_id, dest, files, size, used, bad, agent)
    return {"package_id": package_id, "dest": str(dest), "files": files, "bytes": size,
            "sources": used, "bad_copies": sorted(bad)}


def _record_restore(repo, package_id, dest, files, size, used, bad, agent) -> None:
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        complete = dest.exists() and files == _file_count(s, package_id)
        events.record_event(
            s, events.DISSEMINATION, events.SUCCESS if complete else events.FAILURE, agent=agent,
            package_id=package_id, policy=repo.policy.label,
            detail={"restored_to": str(dest), "files": files, "bytes": size, "sources": used,
                    "verified": ["sha256", "sha512"], "bad_copies": sorted(bad)},
        )
        flag_bad_sources(repo, s, package, sorted(bad), agent)


def _file_count(session, package_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(PackageFile).where(PackageFile.package_id == package_id)
    ).scalar_one()
