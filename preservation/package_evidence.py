"""Checking a package's record and events file on one node with the coordinator's public keys alone.

What :mod:`preservation.node_records` wrote is checked here, without the
catalog, by ``catalog rebuild --from-nodes`` and by a node agent
(``preserve node verify-package``):

1. the evidence's Ed25519 signature, by a key of the coordinator given by its
   public key (a record whose signature does not verify, or that has none
   though keys are given, is not trusted: ``R006``);
2. the checkpoint it carries: its note signed by such a key, and the
   inclusion proof of the package's latest event under its root (``R009``);
3. every tag file it names, recomputed on the node (``R009``): the tag
   manifests and manifests pin every payload file, which an audit checks;
4. the events file: its first lines hash to what the evidence signed, and
   every line to its own ``hash`` with fields a catalog can hold (``R007``:
   the file is not used).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from preservation import merkle
from preservation.codes import (
    REBUILD_EVENT_ALTERED,
    REBUILD_EVIDENCE_MISMATCH,
    REBUILD_NO_EVIDENCE,
    REBUILD_NODE_FAILED,
    REBUILD_RECORD_UNTRUSTED,
    note,
)
from preservation.errors import CheckpointInvalid, ConfigError, InvalidKey, ObjectNotFound, PreservationError
from preservation.events import hash_of_exported
from preservation.findings import FindingList
from preservation.layout import PackageLayout, RepositoryLayout, recorded_package_ids
from preservation.node_records import EVIDENCE_FORMAT, canonical
from preservation.notes import verify_note
from preservation.signing_keys import parse_verifier_key
from storage_adapters import StorageAdapter

Keys = Mapping[str, tuple[str, Ed25519PublicKey]]
"""The coordinator's public keys by key id: (key name, key)."""


@dataclass
class RecordCheck:
    """What one node holds of one package, checked."""

    package_id: str | None  # None: the repository record (the events that name no package)
    node: str
    record: dict[str, Any] | None = None
    """The record when it can be used: signed by a known key, or unsigned (an R010 warning) only where no key is
    given or unsigned records are allowed explicitly."""
    signed: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    """Every event of the events file, each matching its hash; empty when the file is not used."""
    signed_events: int = 0
    """How many of :attr:`events` (the first ones) the verified signature covers."""
    findings: FindingList = field(default_factory=FindingList)

    @property
    def ok(self) -> bool:
        return self.findings.ok

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "package_id": self.package_id, "node": self.node, "signed": self.signed,
                "trusted": self.record is not None, "events": len(self.events), "signed_events": self.signed_events,
                "findings": self.findings.to_list()}


def _verify_signature(evidence: Any, package_id: str, keys: Keys) -> str | None:
    """Why the evidence's signature does not hold, or None when it does."""
    if not isinstance(evidence, dict) or not isinstance(evidence.get("body"), dict):
        return "the evidence is not an object with a body"
    body = evidence["body"]
    kid = evidence.get("key_id")
    if kid not in keys or keys[kid][0] != evidence.get("key"):
        return f"it is signed by key {str(kid)[:16]!r}, which is not a key of this coordinator"
    try:
        keys[kid][1].verify(base64.b64decode(str(evidence.get("signature")), validate=True), canonical(body))
    except (InvalidSignature, ValueError):
        return f"its signature by key {kid} does not verify"
    if body.get("format") != EVIDENCE_FORMAT or body.get("package_id") != package_id:
        return "it is signed for another package or in another format"
    return None


def _check_checkpoint(body: dict[str, Any], keys: Keys, where: str, findings: FindingList) -> None:
    cp = body.get("checkpoint")
    if cp is None:
        return
    try:
        signed_note = verify_note(str(cp.get("note")), keys)
        root = base64.b64decode(str(cp.get("root")), validate=True)
    except (CheckpointInvalid, ValueError) as e:
        note(findings, REBUILD_EVIDENCE_MISMATCH, f"its checkpoint does not verify: {e}", path=where)
        return
    if signed_note.size != cp.get("size") or signed_note.root != root:
        note(findings, REBUILD_EVIDENCE_MISMATCH, "its checkpoint's size or root differs from the signed note",
             path=where)
        return
    inclusion = cp.get("inclusion")
    if inclusion is None:
        return
    through = body.get("events") or {}
    try:
        seq = int(inclusion["seq"])
        proof = [base64.b64decode(p, validate=True) for p in inclusion["proof"]]
        leaf = merkle.leaf_hash(bytes.fromhex(str(through.get("through_hash"))))
    except (KeyError, TypeError, ValueError) as e:
        note(findings, REBUILD_EVIDENCE_MISMATCH, f"its inclusion proof cannot be read ({type(e).__name__})",
             path=where)
        return
    if seq != through.get("through_seq") or not merkle.verify_inclusion(seq - 1, signed_note.size, leaf, proof,
                                                                   signed_note.root):
        note(findings, REBUILD_EVIDENCE_MISMATCH, f"event {seq} is not under the checkpoint's root", path=where)


def _check_tag_files(adapter: StorageAdapter, layout: PackageLayout, body: dict[str, Any], node: str,
                     findings: FindingList) -> None:
    wanted = body.get("tag_files") or {}
    if not isinstance(wanted, dict):
        note(findings, REBUILD_EVIDENCE_MISMATCH, "its tag files are not a mapping", path=f"{node}:{layout.record_key}")
        return
    for res in adapter.digest_many([layout.key(p) for p in sorted(wanted)], ["sha256"]):
        path = layout.path_of(res.key)
        if res.error is not None:
            note(findings, REBUILD_EVIDENCE_MISMATCH, f"a file the evidence signed cannot be read: {res.error}",
                 path=f"{node}:{layout.key(path)}")
        elif res.digests.get("sha256") != wanted[path]:
            note(findings, REBUILD_EVIDENCE_MISMATCH, "the file differs from the sha256 the evidence signed",
                 path=f"{node}:{layout.key(path)}")


_HEX64 = re.compile(r"[0-9a-f]{64}")
_TEXT = {"event_id": 36, "event_type": 64, "outcome": 16, "agent": 200}
"""The string fields of an event and their longest length (the catalog's columns)."""
_OPTIONAL_TEXT = {"node_name": 64, "policy": 100}
_OPTIONAL_INT = ("replica_id", "job_id")


def _field_problem(ev: dict[str, Any]) -> str | None:
    """Why an event's fields cannot go into a catalog (a wrong type, format or length), or None."""
    for name in ("seq", *_OPTIONAL_INT):
        value = ev[name]
        if (value is not None or name == "seq") and (type(value) is not int or not 0 < value < 2 ** 63):
            return f"its {name} is not a positive integer"
    for name, longest in {**_TEXT, **_OPTIONAL_TEXT}.items():
        value = ev[name]
        if value is None and name in _OPTIONAL_TEXT:
            continue
        if not isinstance(value, str) or not value or len(value) > longest:
            return f"its {name} is not a string of 1 to {longest} characters"
    if not isinstance(ev["occurred_at"], str) or len(ev["occurred_at"]) > 40:
        return "its occurred_at is not a date"
    try:
        datetime.fromisoformat(ev["occurred_at"])
    except ValueError:
        return "its occurred_at is not a date"
    if not isinstance(ev["detail"], dict):
        return "its detail is not an object"
    if not _HEX64.fullmatch(ev["prev_hash"]):
        return "its prev_hash is not a sha256"
    return None


def _read_events(data: bytes, package_id: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The events of a file, or why it cannot be used (the first line that does not hold): every line must
    match its hash and carry fields a catalog can hold, of the package, in ``seq`` order."""
    out: list[dict[str, Any]] = []
    last = 0
    for n, line in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"), 1):
        try:
            ev = json.loads(line)
        except ValueError:
            return [], f"line {n} is not JSON"
        if not isinstance(ev, dict) or hash_of_exported(ev) != ev.get("hash"):
            return [], f"line {n} does not match its hash (altered)"
        problem = _field_problem(ev)
        if problem is not None:
            return [], f"line {n} cannot be restored: {problem}"
        if ev["package_id"] != package_id or ev["seq"] <= last:
            return [], f"line {n} is of another package or out of order"
        last = ev["seq"]
        out.append(ev)
    return out, None


def check_record(adapter: StorageAdapter, package_id: str | None, keys: Keys, *, node: str,
                 check_files: bool = True, allow_unsigned: bool = False) -> RecordCheck:
    """Check the record and events file of ``package_id`` on ``adapter`` (node ``node``) with ``keys``;
    ``package_id`` None checks the repository record (the events that name no package: no tag files).

    With keys, a record without evidence is not trusted (R006: anyone can strip a signature) unless
    ``allow_unsigned`` (then an R010 warning); with no key at all (a home that never signed) it is an R010
    warning.  What it finds is in the result's findings; raises InvalidKey for a package id that is no key."""
    layout: PackageLayout | RepositoryLayout = RepositoryLayout() if package_id is None else PackageLayout(package_id)
    check_files = check_files and package_id is not None
    out = RecordCheck(package_id, node)
    where = f"{node}:{layout.record_key}"
    try:
        record = layout.read_record(adapter)
    except ObjectNotFound:
        return out
    except ValueError:
        note(out.findings, REBUILD_RECORD_UNTRUSTED, "the package record is not JSON", path=where)
        return out
    except InvalidKey:
        raise
    except PreservationError as e:
        note(out.findings, REBUILD_NODE_FAILED, str(e), path=where)
        return out
    if not isinstance(record, dict):
        note(out.findings, REBUILD_RECORD_UNTRUSTED, "the package record is not a JSON object", path=where)
        return out
    evidence = record.get("evidence")
    body: dict[str, Any] = {}
    if evidence is None and keys and not allow_unsigned:
        note(out.findings, REBUILD_RECORD_UNTRUSTED, "the package record is not signed, though the coordinator "
                                                     "signs with a key: its evidence was removed", path=where)
        return out
    if evidence is None:
        note(out.findings, REBUILD_NO_EVIDENCE, "the package record is not signed", path=where)
    else:
        problem = _verify_signature(evidence, package_id, keys)
        if problem is not None:
            note(out.findings, REBUILD_RECORD_UNTRUSTED, f"the package record is not trusted: {problem}", path=where)
            return out
        out.signed = True
        body = evidence["body"]
        _check_checkpoint(body, keys, where, out.findings)
        if check_files:
            _check_tag_files(adapter, layout, body, node, out.findings)
    out.record = record
    _check_events(adapter, layout, body, node, out)
    return out


def _check_events(adapter: StorageAdapter, layout: PackageLayout | RepositoryLayout, body: dict[str, Any], node: str,
                  out: RecordCheck) -> None:
    where = f"{node}:{layout.events_key}"
    signed = body.get("events") or {}
    try:
        data = layout.read_events(adapter)
    except ObjectNotFound:
        if signed.get("count"):
            note(out.findings, REBUILD_EVENT_ALTERED, "the events file the evidence signed is gone", path=where)
        return
    except PreservationError as e:
        note(out.findings, REBUILD_NODE_FAILED, str(e), path=where)
        return
    count = int(signed.get("count") or 0)
    if out.signed:
        head = b"".join(data.split(b"\n")[:count]) if count else b""
        prefix = data[: len(head) + count]  # the signed lines with their newlines
        if hashlib.sha256(prefix).hexdigest() != signed.get("sha256"):
            note(out.findings, REBUILD_EVENT_ALTERED,
                 f"its first {count} lines differ from the lines the evidence signed: the file is not used", path=where)
            return
    events, problem = _read_events(data, layout.package_id)
    if problem is not None:
        note(out.findings, REBUILD_EVENT_ALTERED, f"{problem}: the file is not used", path=where)
        return
    out.events = events
    out.signed_events = count if out.signed else 0


def load_verifier_keys(paths: list[Path]) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """The coordinator's public keys from verifier-key files (``<name>+<key id>.pub``, one key a line).

    Raises ConfigError for a file that cannot be read, CheckpointInvalid for one that is not a key.
    """
    keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the public key file {path}: {type(e).__name__}") from e
        for line in text.splitlines():
            if line.strip():
                name, kid, key = parse_verifier_key(line)
                keys[kid] = (name, key)
    if not keys:
        raise ConfigError("no public key was given: pass the coordinator's <origin>+<key id>.pub files")
    return keys


def verify_packages(adapter: StorageAdapter, package_ids: list[str], keys: Keys, *, node: str,
                    check_files: bool = True, allow_unsigned: bool = False) -> list[RecordCheck]:
    """Check the records of ``package_ids`` (every package recorded on ``adapter`` when empty): a package
    without a record there is an R004 finding.  Raises the adapter's errors (and InvalidKey for a bad id)."""
    checks = []
    for package_id in package_ids or sorted(recorded_package_ids(adapter)):
        check = check_record(adapter, package_id, keys, node=node, check_files=check_files,
                             allow_unsigned=allow_unsigned)
        if check.record is None and check.findings.ok:
            note(check.findings, REBUILD_NODE_FAILED, "there is no package record of it on this node",
                 path=f"{node}:{PackageLayout(package_id).record_key}")
        checks.append(check)
    return checks
