"""Write a delivery as a BagIt 1.0 bag, or copy an existing bag byte for byte.

Every payload byte is read once: the copy pass computes all digests while it
writes (see :mod:`.pipeline`).  The bag is built in a hidden sibling of
``dest_dir`` (``.<name>.bagging-<random>``) and renamed into place only when
it is complete and, by default, flushed to disk; on any failure the
partial bag is removed, and a crash leaves only the hidden directory, never
a half bag under ``dest_dir``.
"""

from __future__ import annotations

import errno
from array import array
import hashlib
import os
import shutil
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from preservation import codes
from preservation.digests import check_algorithms
from preservation.errors import AlreadyExists, BagError, BagInvalid, DeliveryRejected, InvalidRequest
from preservation.findings import FindingList

from .delivery_base import Delivery, DeliveryEntry, EntryReplaced, ExpansionLimit
from .inspection import BagInspection
from .manifests import PAYLOAD, TAG, format_manifest_line, manifest_name
from .names import shown, unsafe_reason
from .pipeline import CREATE_FLAGS, READ, FileChanged, FilePipeline, Job, Observer, Outcome, Progress, ProgressMeter
from .records import RecordTable
from .tagfiles import (
    BAG_INFO_TXT,
    BAGIT_TXT,
    WRITE_VERSION,
    BagInfo,
    check_bag_info_item,
    format_bag_info,
    format_bagit_txt,
)
from .validator import build_report

DEFAULT_ALGORITHMS = ("sha256", "sha512")
COMPUTED_TAGS = ("Payload-Oxum", "Bag-Size")
SMALL_MEMBER = 1024 * 1024
"""Archive members up to this size are read whole, so a worker can hash and write them."""
_MANIFEST_LINES_PER_WRITE = 4096
KNOWN_LOOKAHEAD = 1024
"""Payload files whose kept digests are asked for at once (see ``create_bag``'s ``known``)."""

KnownDigests = Callable[[list[tuple[str, int]]], Mapping[str, bytes]]
"""For a batch of (payload path 'data/…', size): the digests a copy kept elsewhere has for those it has."""

@dataclass
class BagResult:
    """A bag just written (or copied) and the records the catalog registers."""

    path: str
    version: str
    payload: RecordTable
    """One record (path 'data/…', size, digests) per payload file."""
    tag_files: RecordTable
    """One record per tag file, tag manifests included."""
    payload_oxum: str
    bag_info: dict[str, str | list[str]]
    algorithms: tuple[str, ...]
    source_kind: str
    findings: FindingList = field(default_factory=FindingList)
    """Warnings about the delivery or the copied bag (errors would have stopped the bag)."""
    unwritten_rows: array = field(default_factory=lambda: array("q"))
    """The rows of ``payload`` listed in the manifests but not written into the bag: a kept copy has their
    bytes (``create_bag``'s ``known``)."""

    @property
    def unwritten(self) -> int:
        """How many payload files were not written into the bag (see ``unwritten_rows``)."""
        return len(self.unwritten_rows)

    @property
    def payload_files(self) -> int:
        return len(self.payload)

    @property
    def payload_bytes(self) -> int:
        return self.payload.total_bytes

    def to_dict(self, include_files: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "version": self.version,
            "source_kind": self.source_kind,
            "payload_oxum": self.payload_oxum,
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "algorithms": list(self.algorithms),
            "bag_info": self.bag_info,
            "tag_files": [r.path for r in self.tag_files],
            "warnings": self.findings.to_list(),
        }
        if include_files:
            out["payload"] = self.payload.to_list()
        return out


def create_bag(
    delivery: Delivery,
    dest_dir: str | os.PathLike[str],
    bag_info: Mapping[str, str | Sequence[str]],
    *,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    workers: int = 2,
    progress: Progress | None = None,
    fsync: bool = True,
    observe: Callable[[str, int], Observer | None] | None = None,
    known: KnownDigests | None = None,
) -> BagResult:
    """Bag ``delivery`` into the new local directory ``dest_dir``.

    A plain delivery becomes a BagIt 1.0 bag with a payload manifest and a
    tag manifest per algorithm and a bag-info.txt holding ``bag_info``, then
    Bagging-Date (unless given), Payload-Oxum and Bag-Size.  An existing bag
    (``delivery.kind == "bag"``) is validated for completeness and copied
    unchanged, its digests checked in the copy pass; ``bag_info`` is then
    not used.  ``progress(bytes, files)`` gets running totals.  With
    ``fsync`` the bag is flushed to disk before it appears under
    ``dest_dir``.  ``observe(path, size)``, called for each payload file
    (``data/…``) before it is copied, may return an :class:`Observer` that
    sees the file's bytes in the copying pass (format identification and
    metadata extraction read nothing twice).

    ``known`` (a new bag of a delivery of local files only) is asked, a
    batch of payload files at a time before they are copied, for the
    digests (concatenated, in ``algorithms`` order) that a copy kept
    elsewhere already has of each (the version before, for a new version of
    a package).  A file whose bytes have them is digested, listed in the
    manifests and seen by ``observe`` like any other, but not written into
    the bag (``BagResult.unwritten_rows`` lists them): the bag then holds only
    the files that are new or changed, and is complete once those kept
    elsewhere are added.

    Raises InvalidRequest (bad algorithms or bag_info, destination inside
    the delivery), AlreadyExists (``dest_dir`` exists and is not empty),
    DeliveryRejected (the delivery check found errors, or a file changed or
    could not be read while copying), BagInvalid (an existing bag is
    incomplete or its files do not match its manifests) and BagError (the
    bag could not be written).
    """
    try:
        algos = check_algorithms(algorithms)
    except ValueError as e:
        raise InvalidRequest(str(e)) from e
    items = _bag_info_items(bag_info)
    dest = os.path.abspath(os.fspath(dest_dir))
    _check_destination(dest, delivery)
    findings = delivery.require_acceptable()
    staging = _make_staging(dest)
    try:
        meter = ProgressMeter(progress)
        if delivery.kind == "bag":
            result = _copy_existing_bag(delivery, staging, algos, workers, meter, observe)
        else:
            result = _write_new_bag(delivery, staging, items, algos, workers, meter, observe, known)
        meter.finish()
        if fsync:
            os.sync()
        _publish(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.path = dest
    result.findings.extend(findings)
    return result


# --- arguments and destination ---------------------------------------------------


def _bag_info_items(bag_info: Mapping[str, str | Sequence[str]]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for label, value in bag_info.items():
        if any(label.lower() == t.lower() for t in COMPUTED_TAGS):
            raise InvalidRequest(f"{label} is computed by the bag writer; do not pass it")
        values = [value] if isinstance(value, str) else list(value)
        for one in values:
            if not isinstance(one, str):
                raise InvalidRequest(f"bag-info {label}: values must be strings, not {type(one).__name__}")
            problem = check_bag_info_item(label, one)
            if problem is not None:
                raise InvalidRequest(f"bag-info {label!r}: {problem}")
            items.append((label, one))
    return items


def _check_destination(dest: str, delivery: Delivery) -> None:
    if os.path.lexists(dest):
        if not os.path.isdir(dest) or os.path.islink(dest):
            raise AlreadyExists(f"{dest} exists and is not a directory: bag into a new directory")
        with os.scandir(dest) as it:
            if next(it, None) is not None:
                raise AlreadyExists(f"{dest} exists and is not empty: bag into a new directory")
    source = os.path.realpath(delivery.source)
    real_dest = os.path.realpath(dest)
    if os.path.isdir(source) and (real_dest + os.sep).startswith(source.rstrip(os.sep) + os.sep):
        raise InvalidRequest(f"{dest} is inside the delivery {delivery.source}: bag somewhere else")


def _make_staging(dest: str) -> str:
    parent, name = os.path.split(dest)
    staging = os.path.join(parent, f".{name}.bagging-{os.urandom(6).hex()}")
    try:
        os.makedirs(parent, exist_ok=True)
        os.mkdir(staging)
    except OSError as e:
        raise BagError(f"cannot create the bag next to {dest}: {e.strerror or e}") from e
    return staging


def _publish(staging: str, dest: str) -> None:
    try:
        os.rename(staging, dest)
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise AlreadyExists(f"{dest} was filled by someone else while the bag was written") from e
        raise BagError(f"cannot move the finished bag to {dest}: {e.strerror or e}") from e


# --- a new bag ----------------------------------------------------------------------


def _write_new_bag(
    delivery: Delivery,
    staging: str,
    items: list[tuple[str, str]],
    algorithms: tuple[str, ...],
    workers: int,
    meter: ProgressMeter,
    observe: Callable[[str, int], Observer | None] | None = None,
    known: KnownDigests | None = None,
) -> BagResult:
    data_root = os.path.join(staging, "data")
    os.mkdir(data_root)
    payload = RecordTable(algorithms)
    pipeline = FilePipeline(algorithms, workers)
    unwritten = array("q")
    entries = (_with_known(delivery.entries(), known) if known is not None and not delivery.sequential
               else ((entry, None) for entry in delivery.entries()))
    try:
        # closing() stops the workers before an error leaves here, so none writes while the bag is removed
        with closing(pipeline.run(_payload_jobs(delivery, os.fsencode(data_root), observe, entries))) as outcomes:
            for outcome in outcomes:
                entry: DeliveryEntry = outcome.tag
                if outcome.error is not None:
                    raise _copy_failed(delivery, entry, outcome)
                if outcome.size != entry.size:
                    raise _size_changed(delivery, entry, outcome.size)
                if not outcome.written:
                    unwritten.append(len(payload))
                payload.append(f"data/{entry.path}", outcome.size, outcome.raw)
                meter.add(outcome.size)
    except ExpansionLimit as e:
        raise delivery.rejected(e.code, str(e), None) from e
    except delivery.stream_errors as e:
        raise delivery.rejected(codes.ARCHIVE_UNREADABLE, f"the archive broke while it was read: {e}", None) from e
    except _SourceUnreadable as e:
        raise delivery.rejected(codes.UNREADABLE, f"cannot be read: {e.error}", e.entry.path) from e.error
    totals = delivery.totals
    if totals is not None and (totals.files, totals.bytes) != (len(payload), payload.total_bytes):
        raise delivery.rejected(
            codes.CHANGED_WHILE_BAGGING,
            f"the delivery changed after it was checked: {totals.files} files of {totals.bytes} bytes then, "
            f"{len(payload)} files of {payload.total_bytes} bytes copied",
            None,
        )
    tags = RecordTable(algorithms)
    writer = _TagWriter(staging, algorithms, tags)
    order = payload.order_by_path()
    for algorithm in algorithms:
        writer.write(manifest_name(PAYLOAD, algorithm), _manifest_chunks(payload, order, algorithm))
    writer.write(BAGIT_TXT, [format_bagit_txt()])
    oxum = f"{payload.total_bytes}.{len(payload)}"
    if not any(label.lower() == "bagging-date" for label, _ in items):
        items = [*items, ("Bagging-Date", datetime.now(timezone.utc).date().isoformat())]
    approximate = payload.total_bytes + sum(tags.size_at(i) for i in range(len(tags)))
    items = [*items, ("Payload-Oxum", oxum), ("Bag-Size", human_size(approximate))]
    writer.write(BAG_INFO_TXT, [format_bag_info(items)])
    listed = sorted(range(len(tags)), key=tags.path_at)
    for algorithm in algorithms:
        lines = "".join(format_manifest_line(tags.hexdigest_at(i, algorithm), tags.path_at(i)) for i in listed)
        writer.write(manifest_name(TAG, algorithm), [lines.encode("utf-8")])
    return BagResult(
        path=staging,
        version=WRITE_VERSION,
        payload=payload,
        tag_files=tags,
        payload_oxum=oxum,
        bag_info=BagInfo(items).as_dict(),
        algorithms=algorithms,
        source_kind=delivery.kind,
        unwritten_rows=unwritten,
    )


class _SourceUnreadable(Exception):
    def __init__(self, entry: DeliveryEntry, error: OSError) -> None:
        super().__init__(str(error))
        self.entry = entry
        self.error = error


def _with_known(entries: Iterator[DeliveryEntry], known: KnownDigests
                ) -> Iterator[tuple[DeliveryEntry, bytes | None]]:
    """The entries with the kept digests of those ``known`` has, asked a batch at a time (local files only:
    an entry is read later, on a worker, through its own descriptor)."""
    while True:
        batch = list(islice(entries, KNOWN_LOOKAHEAD))
        if not batch:
            return
        local = [(f"data/{e.path}", e.size) for e in batch if e.open_fd is not None]
        found = known(local) if local else {}
        for entry in batch:
            yield entry, found.get(f"data/{entry.path}") if entry.open_fd is not None else None


def _payload_jobs(delivery: Delivery, data_root: bytes, observe: Callable[[str, int], Observer | None] | None,
                  entries: Iterable[tuple[DeliveryEntry, bytes | None]]) -> Iterator[Job]:
    """One job per delivery entry and its kept digests (None: copy it); creates directories on the way (on
    the calling thread)."""
    made: set[bytes] = {b""}
    for entry, kept in entries:
        observer = observe(f"data/{entry.path}", entry.size) if observe is not None else None
        reason = unsafe_reason(entry.path)
        if reason is not None:
            raise delivery.rejected(codes.PATH_TRAVERSAL, f"{reason}: refused", shown(entry.path))
        relative = os.fsencode(entry.path)
        _ensure_parent(data_root, relative, made)
        target = data_root + b"/" + relative
        if entry.open_fd is not None:
            yield Job(tag=entry, open_source=entry.open_fd, target=target, size=entry.size, observer=observer,
                      known=kept)
        elif delivery.sequential and entry.size <= SMALL_MEMBER:
            try:
                with entry.open() as member:
                    data = member.read()
            except OSError as e:
                raise _SourceUnreadable(entry, e) from e
            yield Job(tag=entry, data=data, target=target, size=len(data), observer=observer)
        else:
            yield Job(tag=entry, opener=entry.open, target=target, size=entry.size, observer=observer)


def _ensure_parent(root: bytes, relative: bytes, made: set[bytes]) -> None:
    """Create the directory that will hold ``root/relative`` unless it was made before."""
    parent = relative.rpartition(b"/")[0]
    if parent in made:
        return
    try:
        os.makedirs(root + b"/" + parent, exist_ok=True)
    except OSError as e:
        raise BagError(f"cannot create directory {shown(os.fsdecode(parent))}: {e.strerror or e}") from e
    while parent not in made:
        made.add(parent)
        parent = parent.rpartition(b"/")[0]


def _manifest_chunks(payload: RecordTable, order: list[int], algorithm: str) -> Iterator[bytes]:
    for start in range(0, len(order), _MANIFEST_LINES_PER_WRITE):
        rows = order[start : start + _MANIFEST_LINES_PER_WRITE]
        text = "".join(format_manifest_line(payload.hexdigest_at(i, algorithm), payload.path_at(i)) for i in rows)
        yield text.encode("utf-8")


class _TagWriter:
    """Write tag files into the bag, digesting them as they are written."""

    def __init__(self, root: str, algorithms: tuple[str, ...], records: RecordTable) -> None:
        self.root = root
        self.algorithms = algorithms
        self.records = records

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        hashes = [hashlib.new(a) for a in self.algorithms]
        size = 0
        try:
            fd = os.open(os.path.join(self.root, name), CREATE_FLAGS, 0o666)
            with open(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    for h in hashes:
                        h.update(chunk)
                    size += len(chunk)
        except OSError as e:
            raise BagError(f"cannot write {name}: {e.strerror or e}") from e
        self.records.append(name, size, b"".join(h.digest() for h in hashes))


def human_size(octets: int) -> str:
    """'4.2 GB' style size (decimal units), as Bag-Size wants."""
    if octets < 1000:
        return f"{octets} B"
    value = float(octets)
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


# --- failures -----------------------------------------------------------------------


def _copy_failed(delivery: Delivery, entry: DeliveryEntry, outcome: Outcome) -> Exception:
    error = outcome.error
    if isinstance(error, FileChanged):
        return delivery.rejected(codes.CHANGED_WHILE_BAGGING, f"{error}: is the delivery still being written?",
                                 shown(entry.path))
    if isinstance(error, EntryReplaced):
        return delivery.rejected(
            codes.ENTRY_REPLACED, f"{error.strerror or error}: was the delivery changed while it was bagged?",
            shown(entry.path),
        )
    if outcome.side == READ:
        return delivery.rejected(codes.UNREADABLE, f"cannot be read: {error.strerror or error}", shown(entry.path))
    if error.errno == errno.EEXIST:
        return BagError(
            f"data/{shown(entry.path)} would overwrite another payload file "
            "(is the destination filesystem case-insensitive or normalising?)"
        )
    return BagError(f"cannot write data/{shown(entry.path)}: {error.strerror or error}")


def _size_changed(delivery: Delivery, entry: DeliveryEntry, actual: int) -> DeliveryRejected:
    if delivery.sequential:
        return delivery.rejected(
            codes.ARCHIVE_LAYOUT,
            f"the member declares {entry.size} bytes but holds {actual}",
            shown(entry.path),
        )
    return delivery.rejected(
        codes.CHANGED_WHILE_BAGGING,
        f"the file was {entry.size} bytes when listed and {actual} when copied: is the delivery still being written?",
        shown(entry.path),
    )


# --- an existing bag -----------------------------------------------------------------


def _copy_existing_bag(
    delivery: Delivery, staging: str, algorithms: tuple[str, ...], workers: int, meter: ProgressMeter,
    observe: Callable[[str, int], Observer | None] | None = None,
) -> BagResult:
    inspection = BagInspection(delivery.source)
    inspection.check_oxum()
    if not inspection.findings.ok:
        report = build_report(inspection, RecordTable(inspection.algorithms), completeness_only=True)
        raise BagInvalid(_summary(inspection.findings), report=report, path=delivery.source)
    # sha256 always, to tell whether the tag files copied are the ones parsed (see _same_tag_files)
    wanted = tuple(dict.fromkeys((*algorithms, *inspection.algorithms, "sha256")))
    payload, tags = RecordTable(wanted), RecordTable(wanted)
    pipeline = FilePipeline(wanted, workers)
    made: set[bytes] = {b""}
    root = os.fsencode(staging)

    def jobs() -> Iterator[Job]:
        for entry in delivery.entries():
            relative = os.fsencode(entry.path)
            _ensure_parent(root, relative, made)
            observer = observe(entry.path, entry.size) if observe is not None and entry.path.startswith("data/") else None
            yield Job(tag=entry, open_source=entry.open_fd, target=root + b"/" + relative, size=entry.size,
                      observer=observer)

    copied_payload = copied_tags = 0
    with closing(pipeline.run(jobs())) as outcomes:
        for outcome in outcomes:
            entry = outcome.tag
            if outcome.error is not None:
                raise _copy_failed(delivery, entry, outcome)
            table = payload if entry.path.startswith("data/") else tags
            table.append(entry.path, outcome.size, outcome.raw)
            if entry.path in inspection.payload:
                copied_payload += 1
            elif entry.path in inspection.tag_files:
                copied_tags += 1
            else:
                codes.note(inspection.findings, codes.PAYLOAD_UNEXPECTED, "appeared while the bag was copied", entry.path)
            inspection.verify(entry.path, table.digests_at(len(table) - 1))
            meter.add(outcome.size)
    _same_tag_files(delivery, inspection, tags)
    if copied_payload != len(inspection.payload) or copied_tags != len(inspection.tag_files):
        copied = {r.path for r in payload} | {r.path for r in tags}
        for path in [*inspection.payload, *inspection.tag_files]:
            if path not in copied:
                codes.note(inspection.findings, codes.PAYLOAD_MISSING, "vanished while the bag was copied", path)
    if (payload.total_bytes, len(payload)) != (inspection.payload_octets, len(inspection.payload)):
        inspection.check_oxum(payload.total_bytes, len(payload))
    if not inspection.findings.ok:
        report = build_report(inspection, payload, completeness_only=False)
        raise BagInvalid(_summary(inspection.findings), report=report, path=delivery.source)
    metadata = inspection.metadata
    return BagResult(
        path=staging,
        version=metadata.version or "",
        payload=payload,
        tag_files=tags,
        payload_oxum=f"{payload.total_bytes}.{len(payload)}",
        bag_info=metadata.bag_info.as_dict(),
        algorithms=wanted,
        source_kind=delivery.kind,
        findings=FindingList(inspection.findings.warnings),
    )


def _same_tag_files(delivery: Delivery, inspection: BagInspection, tags: RecordTable) -> None:
    """Refuse (DLV028) a copy whose tag files are not the bytes the inspection parsed.

    The payload is copied through the descriptors the delivery check
    verified, but the tag files are parsed by name before the copy: a bag
    swapped in between would otherwise lend its manifests and bag-info to
    the files copied.
    """
    copied = {tags.path_at(i): tags.hexdigest_at(i, "sha256") for i in range(len(tags))}
    for name, digest in inspection.tag_digests.items():
        if copied.get(name) != digest:
            raise delivery.rejected(
                codes.ENTRY_REPLACED,
                "the tag file copied is not the one read to validate the bag: was the bag changed while it was copied?",
                shown(name),
            )


def _summary(findings: FindingList) -> str:
    errors = findings.errors
    return f"{len(errors)} error(s), first: {errors[0]}"
