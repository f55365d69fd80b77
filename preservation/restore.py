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

A damaged package (some files have no copy that holds them right) is not
restored unless asked: ``partial=True`` (`preserve restore --partial`) takes
each file from whichever copy holds it right — verified copies first, then
copies damaged in other files — verifies it the same way, writes every file
it can, and lists the others in a report beside DEST
(``DEST.restore-report.json`` and ``.txt``: path, size, both digests and
what each copy said).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import func, select

from preservation import events
from preservation.catalog.files import FileRow, iter_package_files
from preservation.catalog.models import Package, PackageFile, Replica
from preservation.concurrency import bounded_map
from preservation.errors import InvalidRequest, NotFound, NoVerifiedSource
from preservation.package_state import flag_bad_sources
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, any_copy_sources, from_first_verified, verified_sources
from preservation.text import visible_controls
from preservation.versions import StateRow, iter_version_files, resolve_version, version_of
from storage_adapters import StorageAdapter, flush, open_local

MAX_PATHS_IN_EVENT = 50


def restore(
    repo: Repository, package_id: str, dest: str | os.PathLike, *, agent: str = events.SYSTEM_AGENT,
    progress: Callable[[int, int], None] | None = None, version: int | None = None, partial: bool = False,
) -> dict[str, Any]:
    """Write the bag of ``package_id`` (of its version ``version``) to the new directory ``dest``.

    With ``partial``, every file some copy holds right is written and the
    others are listed in the result (``missing``) and in the report files
    beside ``dest``; the result's ``complete`` says whether any is missing.
    Raises NotFound, InvalidRequest (dest or a report file exists),
    NoVerifiedSource (without ``partial``: a file has no verified copy), and
    the StorageError of the destination when it cannot be written (full, read-only).
    """
    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidRequest(f"{dest} exists and is not an empty directory: restore into a new one")
    reports = report_paths(dest) if partial else ()
    for existing in (p for p in reports if p.exists() or p.is_symlink()):
        raise InvalidRequest(f"{existing} exists: move it away, or restore into another directory")
    with repo.catalog.session() as s:
        if version is not None:
            package_id = resolve_version(s, package_id, version)
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}")
        versioned = version_of(s, package_id)
        sources = any_copy_sources(repo, s, package_id) if partial else verified_sources(repo, s, package_id)
    if versioned is not None:
        return _restore_version(repo, package_id, versioned.number, dest, agent=agent, progress=progress,
                                partial=partial)
    if not sources and not partial:
        raise NoVerifiedSource("restore from", package=package_id)
    fetching = _Fetching(partial)

    def fetch(target: StorageAdapter, row: FileRow) -> FileRow | None:
        def write(src: CopySource) -> None:
            target.write(row.path, src.stream(row.path), size=row.size,
                         expected={"sha256": row.sha256, "sha512": row.sha512})

        return fetching.fetch(sources, write, row, package_id)

    written = _Written()
    try:
        _write_bag(repo, dest, iter_package_files(repo.catalog, package_id), fetch, progress, written)
    finally:
        _record_restore(repo, package_id, dest, written, fetching, agent)
    out = {"package_id": package_id, "dest": str(dest), "files": written.files, "bytes": written.size,
           "sources": fetching.used.counts, "bad_copies": fetching.blamed.ids()}
    if partial:
        out.update(_write_report(dest, out, fetching.missing))
    return out


def report_paths(dest: Path) -> tuple[Path, Path]:
    """Where a partial restore's report goes: beside DEST, so the bag holds only its own files."""
    return dest.with_name(dest.name + ".restore-report.json"), dest.with_name(dest.name + ".restore-report.txt")


class _Fetching:
    """Each file from the first copy that gives it right; with ``partial`` a file no copy gives is listed, not fatal.

    A partial restore reads copies known to be damaged, so a copy that gives
    one file wrong is still asked for the next: blame counts per file there
    (every copy found wrong is still reported, and flagged when verified).
    """

    def __init__(self, partial: bool) -> None:
        self.partial = partial
        self.blamed = Blamed()
        self.used = _Used()
        self.missing: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def fetch(self, sources: list[CopySource], write: Callable[[CopySource], None], row: Any,
              package_id: str) -> Any:
        if not self.partial:
            src, _ = from_first_verified(sources, write, self.blamed, doing=f"restore {row.path}",
                                         package_id=package_id)
            self.used.add(src.label)
            return row
        blamed = Blamed()
        try:
            src, _ = from_first_verified(sources, write, blamed, doing=f"restore {row.path}", package_id=package_id)
        except NoVerifiedSource as e:
            with self._lock:
                self.missing.append({"path": row.path, "size": row.size, "sha256": row.sha256,
                                     "sha512": row.sha512, "reason": str(e)})
            return None
        finally:
            for rid, problem in blamed.problems().items():
                self.blamed.add(rid, problem)
        self.used.add(src.label)
        return row


def _write_report(dest: Path, result: dict[str, Any], missing: list[dict[str, Any]]) -> dict[str, Any]:
    """The partial restore's report, JSON and text, each written whole under a temporary name and renamed."""
    missing = sorted(missing, key=lambda m: m["path"])
    json_path, text_path = report_paths(dest)
    body = {"package_id": result["package_id"], "dest": str(dest), "complete": not missing,
            "files_written": result["files"], "bytes_written": result["bytes"], "files_missing": len(missing),
            "missing": missing}
    lines = [f"partial restore of package {result['package_id']} into {dest}",
             f"files written: {result['files']} (every one verified with sha256 and sha512)",
             f"files missing: {len(missing)} (no copy holds them right)"]
    lines += [f"MISSING {m['path']}  size {m['size']}  sha256 {m['sha256']}  sha512 {m['sha512']}\n"
              f"        {m['reason']}" for m in missing]
    lines.append("re-supply a missing file from the original delivery: "
                 f"preserve repair {result['package_id']} --from-file PATH=LOCALFILE (docs/operations.md)")
    for path, data in ((json_path, json.dumps(body, ensure_ascii=False, indent=2) + "\n"),
                       (text_path, "\n".join(visible_controls(line, keep_newlines=True) for line in lines) + "\n")):
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    return {"partial": True, "complete": not missing, "files_missing": len(missing), "missing": missing,
            "report": {"json": str(json_path), "text": str(text_path)}}


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

    ``fetch`` returns the row written, or None for a row left out (a partial
    restore's missing file).  ``written`` counts what was written, also when
    this raises (after removing the partial bag).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.restoring-{uuid.uuid4().hex[:8]}"
    target = open_local(tmp, fsync=True)
    try:
        for batch in batches:
            for row in bounded_map(lambda row: fetch(target, row), batch, workers=max(2, repo.settings.workers * 2)):
                if row is None:
                    continue
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


def _record_restore(repo, package_id, dest, written: _Written, fetching: _Fetching, agent) -> None:
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        complete = dest.exists() and written.files == _file_count(s, package_id)
        outcome = events.SUCCESS if complete else events.FAILURE
        detail = {"restored_to": str(dest), "files": written.files, "bytes": written.size,
                  "sources": fetching.used.counts, "verified": ["sha256", "sha512"],
                  "bad_copies": fetching.blamed.ids()}
        if fetching.partial:
            outcome = events.WARNING if written.complete and fetching.missing else outcome
            detail.update(partial=True, files_missing=len(fetching.missing),
                          missing=sorted(m["path"] for m in fetching.missing)[:MAX_PATHS_IN_EVENT])
        events.record_event(s, events.DISSEMINATION, outcome, agent=agent, package_id=package_id,
                            policy=repo.policy.label, detail=detail)
        flag_bad_sources(repo.policy, s, package, fetching.blamed.ids(), agent)


def _file_count(session, package_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(PackageFile).where(PackageFile.package_id == package_id)
    ).scalar_one()


def _by_place(batches: Iterable[list[StateRow]]) -> Iterator[list[StateRow]]:
    """Each batch (in order of path) read in the order its bytes lie on a node: the files of each version
    that stored them, in their order there.  A later version's state interleaves files of several versions'
    directories; read by path, the reads would hop between them, read by place, they run as a whole
    package's do."""
    for batch in batches:
        yield sorted(batch, key=lambda row: (row.stored_in, row.stored_path))


def _restore_version(repo: Repository, package_id: str, number: int, dest: Path, *, agent: str,
                     progress: Callable[[int, int], None] | None, partial: bool = False) -> dict[str, Any]:
    """Restore a version: each file read from the verified copies of the version that stored it
    (with ``partial``, from any of its copies that gives it right)."""
    by_package: dict[str, list[CopySource]] = {}
    lock = threading.Lock()

    def sources_of(stored_in: str) -> list[CopySource]:
        with lock:
            if stored_in not in by_package:
                with repo.catalog.session() as s:
                    by_package[stored_in] = (any_copy_sources if partial else verified_sources)(repo, s, stored_in)
                if not by_package[stored_in] and not partial:
                    raise NoVerifiedSource("restore from", package=stored_in)
            return by_package[stored_in]

    fetching = _Fetching(partial)

    def fetch(target: StorageAdapter, row: StateRow) -> StateRow | None:
        def write(src: CopySource) -> None:
            target.write(row.path, src.stream(row.stored_path), size=row.size,
                         expected={"sha256": row.sha256, "sha512": row.sha512})

        return fetching.fetch(sources_of(row.stored_in), write, row, row.stored_in)

    written = _Written()
    try:
        _write_bag(repo, dest, _by_place(iter_version_files(repo.catalog, package_id)), fetch, progress, written)
    finally:
        with repo.catalog.session() as s:
            complete = written.complete and not fetching.missing
            detail = {"restored_to": str(dest), "version": number, "files": written.files, "bytes": written.size,
                      "sources": fetching.used.counts,
                      "verified": ["sha256", "sha512"], "bad_copies": fetching.blamed.ids()}
            if partial:
                detail.update(partial=True, files_missing=len(fetching.missing),
                              missing=sorted(m["path"] for m in fetching.missing)[:MAX_PATHS_IN_EVENT])
            outcome = events.SUCCESS if complete else (events.WARNING if written.complete else events.FAILURE)
            events.record_event(s, events.DISSEMINATION, outcome, agent=agent, package_id=package_id,
                                policy=repo.policy.label, detail=detail)
            for rid in fetching.blamed.ids():  # a blamed copy may be another version's: flag it with its own package
                replica = s.get(Replica, rid)
                if replica is not None:
                    flag_bad_sources(repo.policy, s, replica.package, [rid], agent)
    out = {"package_id": package_id, "version": number, "dest": str(dest), "files": written.files,
           "bytes": written.size, "sources": fetching.used.counts, "bad_copies": fetching.blamed.ids()}
    if partial:
        out.update(_write_report(dest, out, fetching.missing))
    return out
