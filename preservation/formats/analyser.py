"""The format analyser of ingest: identify every payload file as it is bagged, validate what needs it.

:class:`FormatAnalyser` follows :class:`preservation.analysis.Analyser`:

- its observer keeps a file's first and last 128 KiB (:class:`HeadTail`,
  or a small file's one chunk as it is) from the chunks the bagging pass
  copies, so no byte is read twice; closed files are identified a batch
  at a time (:class:`_Waiting`) on the copying thread that fills the
  batch, the last batch in :meth:`FormatAnalyser.finish`;
- :meth:`FormatAnalyser.finish` validates, in child processes under the
  policy's limits, the staged files whose identified kind needs it (PDF,
  XML/JATS/ONIX, EPUB, images), and applies the format policy: a finding
  code it names in ``refuse`` and an ``unacceptable`` format refuse the
  delivery, the rest are warnings;
- :meth:`FormatAnalyser.register` writes one ``file_formats`` row per
  payload file (bulk Core inserts) in the ingest transaction, flags
  encrypted and DRM-locked files with the package named, and records a
  ``format identification`` event.

A new version of a package carries over the validation of its unchanged
files (:meth:`FormatAnalyser.reusable`, :meth:`FormatAnalyser.carry_over`):
a file whose bytes are those the version before holds at its path, validated
there by this validator (:func:`validator_identity`) after an identification
by these signatures, is not validated again and need not be staged.  Its row
says so (``details.validated.carried_from``: the package and version whose
validation it is), and so does the event.

Warnings of one kind are listed for the first :data:`LISTED` files only
(``FMT006`` counts the rest): a delivery of 100,000 unidentified files
makes a readable ingest result, and the catalog keeps every file's record.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import codes, events
from preservation.catalog.bulk import insert_rows
from preservation.catalog.db import Catalog
from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import utcnow
from preservation.findings import ERROR, Finding, FindingList
from preservation.formats.identify import BUFSIZE, EXTENSION, NONE, HeadTail, Identification, Signatures, signatures
from preservation.formats.validation import INVALID, VALID, Validation, Validator, kind_for
from preservation.formats.validation.identity import validator_identity
from preservation.policy import FormatsPolicy
from preservation.text import for_log

NAME = "formats"
LISTED = 20
"""How many files a warning code names in an ingest result before FMT006 counts the rest."""
INSERT_BATCH = 256
WAITING_FILES = 256
WAITING_BYTES = 4 << 20
"""A batch of files waiting to be identified: at most this many files, this many bytes of their heads and tails."""
"""Rows of ``file_formats`` per insert: few enough that the rows in flight are not kept through garbage-collector
passes (which promote them, and bring on full passes over the whole process), enough that a call costs little."""
FORMAT_IDENTIFICATION = "format identification"
"""The event type of what identification and validation found (PREMIS: format identification, validation)."""


def flags_of(identification: Identification, validation: Validation | None, policy: FormatsPolicy) -> set[str]:
    """The policy flags (``FORMAT_FLAGS``) a file has: unidentified, extension_only, encrypted, drm …"""
    flags: set[str] = set()
    if identification.basis == NONE:
        flags.add("unidentified")
    elif identification.basis == EXTENSION:
        flags.update(("unidentified", "extension_only"))
    if identification.puid and identification.puid in policy.withdrawn:
        flags.add("withdrawn")
    if validation is not None:
        if validation.encrypted:
            flags.add("encrypted")
        if validation.drm:
            flags.add("drm")
        if validation.outcome == "invalid":
            flags.add("invalid")
    return flags


def matches(entries: list[str], puid: str | None, flags: set[str]) -> list[str]:
    """The entries of a policy list (PUIDs and flags) that a file with ``puid`` and ``flags`` meets."""
    return [e for e in entries if e == puid or e in flags]


def validation_kind(puid: str | None, mime: str | None, path: str) -> str | None:
    """The check the file at ``path`` gets, identified as ``puid`` and ``mime`` (None: not validated)."""
    suffix = os.path.splitext(path.rsplit("/", 1)[-1])[1].lower()
    return kind_for(puid, (mime or None) if puid else None, "file" + suffix)


class FormatAnalyser:
    """Identification and validation of one delivery's payload files (a new instance per ingest)."""

    name = NAME

    def __init__(self, policy: FormatsPolicy, known: Signatures | None = None) -> None:
        self.policy = policy
        self.unavailable = ""
        """Why identification cannot run (FIDO's signature files would not load): the delivery is then
        preserved unanalysed, with one CA001 warning, as an analyser that fails always is."""
        if known is None and policy.identify:
            try:
                known = signatures()
            except Exception as e:  # noqa: BLE001 - a broken signature install costs the analysis, never ingest
                self.unavailable = for_log(f"{type(e).__name__}: {e}")
        self.signatures = known
        # two flat maps rather than a (what, size) pair per file: a delivery's worth of small objects kept to the end
        # of the ingest would be scanned by every garbage-collector pass
        self._identified: dict[str, Identification] = {}
        self._sizes: dict[str, int] = {}
        self._waiting = _Waiting()
        self._validated: dict[str, Validation] = {}
        self._interned: dict[Identification, Identification] = {}
        self._templates: dict[Identification, list[Finding]] = {}
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {}
        self.identified_at = utcnow()
        self.validator = validator_identity()
        self._reusable: dict[str, tuple[Validation, dict[str, Any]]] = {}
        """Validations the version before holds, by path, offered for files not staged (:meth:`reusable`)."""
        self._known: dict[str, tuple[Identification, int, Any, dict[str, Any]]] = {}
        """The identification the version before holds, by path, for the files offered, with the file's size,
        when and where it was made: taken instead of identifying a file whose digests prove to be the version
        before's (``close_known``)."""
        self._identification_carried: dict[str, tuple[Any, dict[str, Any]]] = {}
        """The files whose identification was carried over: path -> (when it was made, the package and version)."""
        self._carried: dict[str, dict[str, Any]] = {}
        """The files whose validation was carried over: path -> the package and version that made it."""

    @property
    def reads_staged_payload(self) -> bool:
        """Validation opens the files it checks in the staged bag."""
        return bool(self.policy.validate_files and self.signatures is not None)

    # --- a new version: what the version before already knows --------------------------------------

    def reusable(self, catalog: Catalog, previous_id: str, previous_number: int, paths: list[str]) -> set[str]:
        """Which of ``paths`` this analyser can do without opening in staging, should their bytes be those
        the version ``previous_id`` (number ``previous_number``) holds there.

        A file needs no staging when its identification there was made by these signatures and either its
        format is not validated or its validation (``valid`` or ``invalid``: never a limit or an error, which
        say nothing of the bytes) was made by this validator: that validation is then kept, and carried over
        if :meth:`carry_over` confirms the bytes.  Any other file is staged and validated afresh.  Only the
        rows of ``previous_id`` are read: a validation never crosses from another package.
        """
        if not self.reads_staged_payload:
            return set(paths)
        if not paths:
            return set()
        known = self.signatures
        query = (select(FileFormat.path, FileFormat.puid, FileFormat.mime, FileFormat.format_name,
                        FileFormat.format_version, FileFormat.basis, FileFormat.tool, FileFormat.tool_version,
                        FileFormat.signature_version, FileFormat.validation, FileFormat.validation_kind,
                        FileFormat.encrypted, FileFormat.drm, FileFormat.details, FileFormat.size,
                        FileFormat.identified_at)
                 .where(FileFormat.package_id == previous_id, FileFormat.path.in_(paths)))
        free: set[str] = set()
        offered: dict[str, tuple[Validation, dict[str, Any]]] = {}
        identified: list[tuple[str, Identification, int, Any, dict[str, Any]]] = []
        here = {"package_id": previous_id, "version": previous_number}
        with catalog.engine.connect() as conn:
            for row in conn.execute(query):
                if (row.tool, row.tool_version, row.signature_version) != (
                        known.tool, known.tool_version, known.signature_version):
                    continue
                identification = _kept_identification(row)
                if identification is None:
                    continue
                kind = validation_kind(row.puid, row.mime, row.path)
                if kind is not None:
                    kept = _kept_validation(row, kind, self.validator)
                    if kept is None:
                        continue
                    offered[row.path] = (kept, row.details["validated"].get("carried_from") or here)
                free.add(row.path)
                made = row.details.get("identified", {}).get("carried_from") if isinstance(row.details, dict) else None
                identified.append((row.path, identification, row.size, row.identified_at,
                                   made if _is_origin(made) else here))
        with self._lock:
            self._reusable.update(offered)
            for path, identification, size, at, origin in identified:
                self._known[path] = (self._interned.setdefault(identification, identification), size, at, origin)
        return free

    def carry_over(self, unchanged: set[str]) -> None:
        """The files offered by :meth:`reusable` whose bytes proved the same: their validation is carried
        over (the others were staged, and are validated afresh)."""
        with self._lock:
            for path in unchanged & self._reusable.keys():
                validation, origin = self._reusable[path]
                self._validated[path] = validation
                self._carried[path] = origin
            self._reusable.clear()

    # --- the bagging pass -----------------------------------------------------------------------------

    def observer(self, path: str, size: int) -> _Observer | None:
        if not self.policy.identify or self.signatures is None:
            return None
        return _Observer(self, path)

    def _identify(self, path: str, head: bytes, tail: bytes, size: int) -> None:
        """Identify a file once a batch of them is waiting (see :class:`_Waiting`)."""
        with self._lock:
            batch = self._waiting.add(path, head, tail, size)
        if batch is not None:
            self._identify_batch(batch)

    def _identified_before(self, path: str, size: int) -> bool:
        """Take the identification the version before made of the same bytes at ``path`` (offered by
        :meth:`reusable`: the same signatures identify the same bytes under the same name alike); False
        when there is none to take."""
        with self._lock:
            kept = self._known.pop(path, None)
            if kept is None or kept[1] != size:
                return False
            identification, _, at, origin = kept
            self._identified[path] = identification
            self._sizes[path] = size
            self._identification_carried[path] = (at, origin)
        return True

    def _identify_waiting(self) -> None:
        """Identify the files still waiting (the last batch of the bagging pass)."""
        with self._lock:
            batch = self._waiting.take()
        self._identify_batch(batch)

    def _identify_batch(self, batch: _Waiting) -> None:
        if not batch.paths:
            return
        identify = self.signatures.identify
        found = [identify(head, tail, size, path.rsplit("/", 1)[-1])
                 for path, head, tail, size in zip(batch.paths, batch.heads, batch.tails, batch.sizes)]
        with self._lock:
            interned = self._interned
            for path, size, identification in zip(batch.paths, batch.sizes, found):
                self._identified[path] = interned.setdefault(identification, identification)  # few distinct answers
                self._sizes[path] = size

    # --- after bagging, in staging ------------------------------------------------------------------

    def finish(self, bag_root: str, findings: FindingList) -> None:
        self._identify_waiting()
        if self.unavailable:
            codes.note(findings, codes.ANALYSER_FAILED, f"format identification is unavailable: {self.unavailable}",
                       None, analyser=NAME)
            return
        if self.policy.validate_files:
            self._validate(bag_root)
        listed: Counter[str] = Counter()
        for path in sorted(self._identified):
            identification = self._identified[path]
            validation = self._validated.get(path)
            # an unvalidated file's findings are its identification's, named only when listed
            found = self._judge(path, identification, validation) if validation is not None else self._template(
                identification)
            for finding in found:
                if not finding.is_error:
                    listed[finding.code] += 1
                    if listed[finding.code] > LISTED:
                        continue
                findings.extend([finding if validation is not None else _at(finding, path)])
        for code, count in sorted(listed.items()):
            if count > LISTED:
                codes.note(findings, codes.FORMAT_MORE, f"{count - LISTED} more file(s) with {code}", None,
                           finding=code, more=count - LISTED, files=count)

    def _validate(self, bag_root: str) -> None:
        policy = self.policy

        kinds: dict[tuple[Identification, str], str | None] = {}
        carried = self._carried

        def wanted() -> Iterator[tuple[str, str, str]]:
            for path in sorted(self._identified):
                identification = self._identified[path]
                suffix = os.path.splitext(path.rsplit("/", 1)[-1])[1].lower()
                key = (identification, suffix)
                if key not in kinds:  # the check depends on what the file is and its extension only
                    kinds[key] = validation_kind(identification.puid, identification.mime, path)
                kind = kinds[key]
                if path in carried and self._validated[path].kind != kind:  # not so identified now: not carried
                    del carried[path], self._validated[path]
                if kind is not None and path not in carried:
                    yield path, os.path.join(bag_root, path), kind

        with Validator(time_limit_s=policy.time_limit_seconds, memory_limit_bytes=policy.memory_limit_mib << 20,
                       workers=policy.workers) as validator:
            for path, validation in validator.validate_many(wanted()):
                self._validated[path] = validation
            self._stats = validator.stats()

    def _findings_of(self, path: str, identification: Identification, validation: Validation | None
                     ) -> list[Finding]:
        """The file's findings under the policy; those of an unvalidated file depend only on its identification."""
        if validation is not None:
            return self._judge(path, identification, validation)
        return [_at(f, path) for f in self._template(identification)]

    def _template(self, identification: Identification) -> list[Finding]:
        """The findings of an unvalidated file so identified, with no path."""
        template = self._templates.get(identification)
        if template is None:
            template = self._templates[identification] = self._judge(None, identification, None)
        return template

    def _judge(self, path: str | None, identification: Identification, validation: Validation | None
               ) -> list[Finding]:
        policy = self.policy
        out = FindingList()
        if not identification.identified:
            said = f"by its name as {identification.puid}" if identification.puid else "not at all"
            codes.note(out, codes.FORMAT_UNIDENTIFIED, f"no signature matches; identified {said}", path,
                       puid=identification.puid, basis=identification.basis)
        if identification.extension_mismatch:
            codes.note(out, codes.FORMAT_NAME_MISMATCH,
                       f"the bytes are {identification.puid} ({identification.format_name}), not what the name says",
                       path, puid=identification.puid, mime=identification.mime)
        if validation is not None:
            for finding in validation.finding_list(path):
                out.extend([finding])
        flags = flags_of(identification, validation, policy)
        unacceptable = matches(policy.unacceptable, identification.puid, flags)
        if unacceptable:
            codes.note(out, codes.FORMAT_UNACCEPTABLE,
                       f"the format policy does not accept {', '.join(unacceptable)}", path,
                       puid=identification.puid, reasons=unacceptable)
        at_risk = matches(policy.at_risk, identification.puid, flags)
        if at_risk and not unacceptable:
            codes.note(out, codes.FORMAT_AT_RISK, f"at risk: {', '.join(at_risk)}", path,
                       puid=identification.puid, reasons=at_risk)
        refused = set(policy.refuse)
        return [Finding(f.code, f"{f.message} (the format policy refuses it)", f.path, ERROR, f.params)
                if f.code in refused and not f.is_error else f for f in out]

    # --- in the ingest transaction --------------------------------------------------------------------

    def register(self, session: Session, package_id: str, findings: FindingList) -> dict[str, Any]:
        signatures_ = self.signatures
        if signatures_ is None:
            return {"files": 0, "unavailable": self.unavailable} if self.unavailable else {"files": 0, "identify": False}
        bases: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        puids: Counter[str] = Counter()
        locked: list[str] = []
        batch: list[tuple[Any, ...]] = []
        table = FileFormat.__table__
        same: dict[Identification, tuple[Any, ...]] = {}  # the columns of an unvalidated file, but its path and size
        connection = session.connection()
        sizes = self._sizes
        for path in sorted(self._identified):
            identification = self._identified[path]
            validation = self._validated.get(path)
            bases[identification.basis] += 1
            puids[identification.puid or "unidentified"] += 1
            carried = self._identification_carried.get(path)
            if validation is not None:
                outcomes[validation.outcome] += 1
                if validation.encrypted or validation.drm:
                    locked.append(path)
                middle = _middle(identification, validation, signatures_, carried[0] if carried else self.identified_at,
                                 self._findings_of(path, identification, validation),
                                 {"validator": self.validator, "findings": [list(f) for f in validation.findings],
                                  **({"carried_from": self._carried[path]} if path in self._carried else {})},
                                 carried[1] if carried else None)
            elif carried is not None:
                middle = _middle(identification, None, signatures_, carried[0],
                                 self._findings_of(path, identification, None), None, carried[1])
            else:
                middle = same.get(identification)
                if middle is None:
                    middle = same[identification] = _middle(identification, None, signatures_, self.identified_at,
                                                            self._findings_of(path, identification, None))
            batch.append((package_id, path, *middle, sizes[path]))
            if len(batch) >= INSERT_BATCH:
                insert_rows(connection, table, COLUMNS, batch)
                batch = []
        insert_rows(connection, table, COLUMNS, batch)
        for path in locked[:LISTED]:
            validation = self._validated[path]
            what = " and ".join(w for w, on in (("encrypted", validation.encrypted), ("DRM-locked", validation.drm)) if on)
            codes.note(findings, codes.FORMAT_LOCKED, f"package {package_id}: {path} is {what}", path,
                       package_id=package_id, encrypted=validation.encrypted, drm=validation.drm)
        if len(locked) > LISTED:
            codes.note(findings, codes.FORMAT_MORE, f"{len(locked) - LISTED} more encrypted or DRM-locked file(s)",
                       None, finding=codes.FORMAT_LOCKED, more=len(locked) - LISTED, package_id=package_id)
        summary: dict[str, Any] = {
            "files": len(self._identified), "tool": f"{signatures_.tool} {signatures_.tool_version}",
            "signature_version": signatures_.signature_version, "by_basis": dict(sorted(bases.items())),
            "formats": dict(puids.most_common(20)), "validated": dict(sorted(outcomes.items())),
            "locked": len(locked),
        }
        if self._stats:
            summary["validation_peak_rss_bytes"] = self._stats.get("peak_rss_bytes", 0)
        if outcomes:
            summary["validator"] = self.validator
        if self._identification_carried:
            summary["identification_carried"] = {"files": len(self._identification_carried)}
        if self._carried:
            origins = sorted({(o["version"], o["package_id"]) for o in self._carried.values()})
            summary["validation_carried"] = {
                "files": len(self._carried),
                "from": [{"package_id": pid, "version": number} for number, pid in origins[:LISTED]],
                "why": "the same bytes (size, sha256, sha512) at the same path, identified by the same signatures "
                       "and validated by the same validator in an earlier version of this package"}
        if self._identified:
            events.record_event(session, FORMAT_IDENTIFICATION, events.WARNING if locked else events.SUCCESS,
                                agent=f"{events.SYSTEM_AGENT} ({signatures_.tool} {signatures_.tool_version})",
                                package_id=package_id,
                                detail={**summary, "locked_files": locked[:LISTED]})
        return summary


def _at(finding: Finding, path: str) -> Finding:
    return Finding(finding.code, finding.message, path, finding.severity, finding.params)


def _is_origin(origin: Any) -> bool:
    """Whether ``origin`` is a well-formed ``carried_from``: ``{package_id: str, version: int}``."""
    return (isinstance(origin, dict) and isinstance(origin.get("package_id"), str)
            and isinstance(origin.get("version"), int))


def _kept_identification(row: Any) -> Identification | None:
    """The identification a ``file_formats`` row holds (None when its details are not well formed)."""
    details = row.details if isinstance(row.details, dict) else {}
    alternatives, notes = details.get("alternatives", []), details.get("notes", [])
    mismatch = details.get("extension_mismatch", False)
    if not (isinstance(alternatives, list) and all(isinstance(a, str) for a in alternatives)
            and isinstance(notes, list) and all(isinstance(n, str) for n in notes) and isinstance(mismatch, bool)):
        return None
    return Identification(row.puid, row.mime or "", row.format_name or "", row.format_version or "", row.basis,
                          alternatives=tuple(alternatives), extension_mismatch=mismatch, notes=tuple(notes))


def _kept_validation(row: Any, kind: str, validator: str) -> Validation | None:
    """The validation a ``file_formats`` row holds, if it may be carried over to the same bytes now: made by
    ``validator`` for ``kind``, ``valid`` or ``invalid``, with well-formed findings (anything else: None)."""
    validated = (row.details or {}).get("validated") if isinstance(row.details, dict) else None
    if (not isinstance(validated, dict) or validated.get("validator") != validator or row.validation_kind != kind
            or row.validation not in (VALID, INVALID)):
        return None
    findings = validated.get("findings")
    if not isinstance(findings, list) or not all(
            isinstance(f, list) and len(f) == 2 and f[0] in codes.CODES and isinstance(f[1], str) for f in findings):
        return None
    origin = validated.get("carried_from")
    if origin is not None and not _is_origin(origin):
        return None
    details = row.details.get("validation", {})
    return Validation(kind=kind, outcome=row.validation, encrypted=bool(row.encrypted), drm=bool(row.drm),
                      details=details if isinstance(details, dict) else {},
                      findings=tuple((code, message) for code, message in findings))


COLUMNS = ("package_id", "path", "puid", "mime", "format_name", "format_version", "basis", "tool", "tool_version",
           "signature_version", "identified_at", "validation", "validation_kind", "encrypted", "drm", "details",
           "findings", "size")
"""The ``file_formats`` columns :meth:`FormatAnalyser.register` writes, in the order of its rows."""


def _middle(identification: Identification, validation: Validation | None, known: Signatures, at: Any,
            found: list[Finding], validated: dict[str, Any] | None = None,
            identified_in: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """The columns of a file's row between its path and its size (:data:`COLUMNS`).

    ``validated`` (a validated file's) is kept in ``details``: the validator that made the validation, its
    own findings (so a later version can carry it over, judged again under its policy) and, when it was
    carried over, ``carried_from``.  ``identified_in``: the package and version whose identification of the
    same bytes was carried over (``details.identified.carried_from``; ``at`` is then when it was made)."""
    details = identification.details()
    if validation is not None and validation.details:
        details["validation"] = validation.details
    if validated is not None:
        details["validated"] = validated
    if identified_in is not None:
        details["identified"] = {"carried_from": identified_in}
    return (identification.puid, identification.mime, identification.format_name, identification.format_version,
            identification.basis, known.tool, known.tool_version, known.signature_version, at,
            validation.outcome if validation is not None else None,
            validation.kind if validation is not None else None,
            bool(validation and validation.encrypted), bool(validation and validation.drm), details,
            [{"code": f.code, "severity": f.severity, "message": f.message} for f in found])


class _Waiting:
    """Files bagged but not yet identified: their paths, heads, tails and sizes, side by side.

    Identifying files one after another, rather than each between the
    system calls that copy it, finds the signature tables still in the
    processor's caches: on files of 4 KiB that halves its cost.  A batch
    holds at most :data:`WAITING_FILES` files and :data:`WAITING_BYTES` of
    their bytes (a small file's whole content is its head and its tail,
    kept without a copy).  Four flat lists, not a tuple per file, keep the
    garbage collector out of it.
    """

    __slots__ = ("paths", "heads", "tails", "sizes", "held")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.heads: list[bytes] = []
        self.tails: list[bytes] = []
        self.sizes: list[int] = []
        self.held = 0

    def add(self, path: str, head: bytes, tail: bytes, size: int) -> _Waiting | None:
        """Add a file; returns the full batch (and starts a new one) once it is full."""
        self.paths.append(path)
        self.heads.append(head)
        self.tails.append(tail)
        self.sizes.append(size)
        self.held += len(head) + (len(tail) if tail is not head else 0)
        if len(self.paths) < WAITING_FILES and self.held < WAITING_BYTES:
            return None
        return self.take()

    def take(self) -> _Waiting:
        """The files waiting, as a batch of their own; this one is empty again."""
        batch = _Waiting()
        batch.paths, batch.heads, batch.tails, batch.sizes = self.paths, self.heads, self.tails, self.sizes
        self.paths, self.heads, self.tails, self.sizes, self.held = [], [], [], [], 0
        return batch


class _Observer:
    """Keeps one file's head and tail as it is copied; identifies it when it is closed.

    A small file comes whole in one ``bytes`` chunk, which cannot change
    under it: that chunk is kept as it is, without a copy or a
    :class:`HeadTail`, which only a second chunk or a reused buffer needs.
    """

    __slots__ = ("_analyser", "_path", "_first", "_kept")

    def __init__(self, analyser: FormatAnalyser, path: str) -> None:
        self._analyser = analyser
        self._path = path
        self._first: bytes | None = None
        self._kept: HeadTail | None = None

    def feed(self, chunk: bytes | memoryview) -> None:
        kept = self._kept
        if kept is None:
            if self._first is None and type(chunk) is bytes:
                self._first = chunk
                return
            kept = self._kept = HeadTail()
            if self._first is not None:
                kept.feed(self._first)
                self._first = None
        kept.feed(chunk)

    def close_known(self, size: int) -> None:
        """The file's digests were those the version before holds (see ``Observer``): its identification there
        is taken when :meth:`FormatAnalyser.reusable` offered it, else the file is identified."""
        if self._analyser._identified_before(self._path, size):
            self._first = self._kept = None
        else:
            self.close(size)

    def close(self, size: int) -> None:
        first, kept = self._first, self._kept
        self._first = self._kept = None
        if kept is None:
            head = tail = (first or b"")[:BUFSIZE]
            if first is not None and len(first) > BUFSIZE:
                tail = first[-BUFSIZE:]
        else:
            head = bytes(kept.head)
            tail = head if size <= len(head) else kept.tail  # a small file: its head is its tail
        self._analyser._identify(self._path, head, tail, size)
