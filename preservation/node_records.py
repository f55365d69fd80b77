"""The package record on each node: what the catalog knows of a package, its events and its signed evidence.

Beside each bag (keys from :class:`~preservation.layout.PackageLayout`):

* ``.preserve/packages/<id>.json``: the package, its collection and version,
  and ``evidence``: the sha256 of every tag file of the bag (``bagit.txt``,
  ``bag-info.txt``, the manifests and tag manifests, whose lines pin every
  payload file), the package's events as far as they go at that moment
  (their count, last event and the sha256 of those lines) and the latest
  signed checkpoint of the event log, with an inclusion proof of the
  package's latest event under it when it covers one.  The coordinator signs
  that body with its checkpoint key (``checkpoints.key``): once per copy
  written or repaired, never per event, and once more when a later checkpoint
  covers the package's events (at the first job on that copy after it).
* ``.preserve/packages/<id>.events.jsonl``: every event of the package, one
  JSON object a line (:func:`preservation.events.event_to_dict`, with its
  ``prev_hash`` and ``hash``) in chain order.  It is written whole from the
  catalog, atomically, by the copy or repair of that copy and after every job
  on that copy (the worker calls :func:`flush_events`): one write per job, not
  per event.  Its lines only ever grow, so the lines the evidence signed stay
  byte for byte the first lines of the file.

The events that name no package (a node re-pointed, renamed or removed, a policy reloaded, a trigger event, a
signing key introduced …) are kept on every node in the same way, under ``.preserve/repository/``
(:class:`~preservation.layout.RepositoryLayout`): ``repository.events.jsonl``, every such event in chain
order, and ``repository.json``, a record whose evidence is the same body with ``package_id`` null and no tag
files, signed by the same key.  The scheduler brings them up to date on every node at its ticks
(:func:`flush_repository_events`), rewriting them only on a node whose record is behind the catalog, and
never over a longer history the catalog does not continue (a catalog restored from an older backup).

``catalog rebuild --from-nodes`` reads both back (:mod:`preservation.package_evidence`
checks them); a node agent checks the evidence against its own storage
without the catalog (``preserve node verify-package``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from preservation import merkle
from preservation.catalog.evidence_models import Checkpoint, compute
from preservation.catalog.models import (
    REPLICA_CORRUPT,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Event,
    Node,
    Package,
    PackageFile,
    Replica,
)
from preservation.errors import ObjectNotFound, PreservationError
from preservation.events import event_to_dict
from preservation.layout import PackageLayout, RepositoryLayout
from preservation.package_state import readable_node
from preservation.repository import Repository
from preservation.settings import Settings
from preservation.signing_keys import key_id, load_private_key, raw_public
from preservation.versions import version_of
from storage_adapters import StorageAdapter

EVIDENCE_FORMAT = "preserve-package-evidence/1"
HELD = (REPLICA_VERIFIED, REPLICA_SUSPECT, REPLICA_CORRUPT)
"""Copies whose node holds the bag: their events file is kept up to date."""


def canonical(value: Any) -> bytes:
    """The bytes a signature covers: JSON with sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_line(ev: Event) -> bytes:
    return canonical(event_to_dict(ev)) + b"\n"


@dataclass(frozen=True)
class EventsFile:
    data: bytes
    count: int
    last_seq: int
    last_hash: str | None


def events_file(session: Session, package_id: str | None) -> EventsFile:
    """The package's events file as the catalog has it now (``None``: the events that name no package)."""
    lines: list[bytes] = []
    last: Event | None = None
    stmt = select(Event).where(Event.package_id.is_(None) if package_id is None else Event.package_id == package_id)
    stmt = stmt.order_by(Event.seq)
    for ev in session.scalars(stmt.execution_options(yield_per=1000)):
        lines.append(event_line(ev))
        last = ev
    return EventsFile(b"".join(lines), len(lines), last.seq if last else 0, last.hash if last else None)


# --- evidence ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvidenceSigner:
    name: str
    key_id: str
    private: Ed25519PrivateKey


def evidence_signer(settings: Settings) -> EvidenceSigner | None:
    """The coordinator's checkpoint key, or None when the home has none (records are then unsigned)."""
    cfg = settings.checkpoints
    if cfg.key is None or not cfg.origin:
        return None
    key = load_private_key(cfg.key)
    return EvidenceSigner(cfg.origin, key_id(cfg.origin, raw_public(key.public_key())), key)


def _checkpoint(session: Session, last_seq: int, last_hash: str | None) -> dict[str, Any] | None:
    cp = session.scalars(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)).first()
    if cp is None:
        return None
    out: dict[str, Any] = {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "note": cp.note}
    if last_hash is not None and 0 < last_seq <= cp.size:
        proof = compute(session, lambda lk: merkle.inclusion_proof(last_seq - 1, cp.size, lk))
        out["inclusion"] = {"seq": last_seq, "proof": [base64.b64encode(p).decode() for p in proof]}
    return out


def _events_evidence(session: Session, events: EventsFile, now: datetime | None) -> dict[str, Any]:
    """The part of a body that pins an events file: its lines so far, the latest checkpoint, the time."""
    return {
        "events": {"count": events.count, "through_seq": events.last_seq, "through_hash": events.last_hash,
                   "sha256": hashlib.sha256(events.data).hexdigest()},
        "checkpoint": _checkpoint(session, events.last_seq, events.last_hash),
        "signed_at": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def evidence_body(session: Session, package_id: str, events: EventsFile, *,
                  now: datetime | None = None) -> dict[str, Any]:
    """What the coordinator signs for one package: tag files, events so far, the latest checkpoint."""
    package = session.get(Package, package_id)
    tag_files = dict(session.execute(select(PackageFile.path, PackageFile.sha256)
                                     .where(PackageFile.package_id == package_id, PackageFile.is_tag)).all())
    return {"format": EVIDENCE_FORMAT, "package_id": package_id, "payload_oxum": package.payload_oxum,
            "tag_files": dict(sorted(tag_files.items())), **_events_evidence(session, events, now)}


def repository_evidence_body(session: Session, events: EventsFile, *, now: datetime | None = None) -> dict[str, Any]:
    """What the coordinator signs for the events that name no package: a package's body with no package."""
    return {"format": EVIDENCE_FORMAT, "package_id": None, "payload_oxum": None, "tag_files": {},
            **_events_evidence(session, events, now)}


def sign_evidence(signer: EvidenceSigner, body: dict[str, Any]) -> dict[str, Any]:
    return {"body": body, "key": signer.name, "key_id": signer.key_id,
            "signature": base64.b64encode(signer.private.sign(canonical(body))).decode()}


# --- writing ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackageRecord:
    """What goes beside each copy of a package, made once for every copy written in one pass."""

    package_id: str
    record: dict[str, Any]
    events: EventsFile

    def write_to(self, dest: StorageAdapter) -> None:
        """Write the events file, then the record (whose evidence signs lines that must be there first)."""
        layout = PackageLayout(self.package_id)
        layout.write_events(dest, self.events.data)
        layout.write_record(dest, self.record)


def package_record(repo: Repository, package_id: str) -> PackageRecord:
    """The package's record (signed when the home has a checkpoint key) and events file, from the catalog.

    Our own bags carry the collection in bag-info too; a bag ingested as-is
    (kept byte-identical) does not, so the record is what ties it to its
    collection.  Raises CheckpointKeyMissing when a configured key cannot be read.
    """
    signer = evidence_signer(repo.settings)
    with repo.catalog.session() as s:
        p = s.get(Package, package_id)
        c = p.collection
        record: dict[str, Any] = {
            "package_id": p.id, "name": p.name, "source_kind": p.source_kind, "policy": p.policy,
            "created_at": p.created_at.isoformat(), "collection": {
                "key": c.key, "title": c.title, "publisher": c.publisher, "licence": c.licence,
                "access_mode": c.access_mode,
            },
        }
        version = version_of(s, package_id)
        if version is not None:  # which lineage it belongs to: the rebuild binds the versions again from it
            record["version"] = {"lineage_id": version.lineage_id, "number": version.number,
                                 "previous_id": version.previous_id, "changes": version.changes}
        events = events_file(s, package_id)
        if signer is not None:
            record["evidence"] = sign_evidence(signer, evidence_body(s, package_id, events))
    return PackageRecord(package_id, record, events)


def write_package_record(repo: Repository, dest: StorageAdapter, package_id: str) -> None:
    """Write the package's events file and its record, signed, beside a copy just written or repaired.

    Raises CheckpointKeyMissing when a configured key cannot be read, and the adapter's errors.
    """
    package_record(repo, package_id).write_to(dest)


def flush_events(repo: Repository, package_id: str, replica_id: int | None = None) -> list[str]:
    """Bring the events file of the package up to date on the node of ``replica_id`` (else on every node
    holding a copy); returns the nodes written.  Raises the adapter's errors."""
    with repo.catalog.session() as s:
        stmt = (select(Node).join(Replica, Replica.node_id == Node.id)
                .where(Replica.package_id == package_id, Replica.state.in_(HELD), readable_node()))
        if replica_id is not None:
            stmt = stmt.where(Replica.id == replica_id)
        nodes = s.scalars(stmt).all()
        if not nodes:
            return []
        for node in nodes:
            s.expunge(node)
        events = events_file(s, package_id)
        covered = repo.settings.checkpoints.key is not None and _covering_checkpoint(s, package_id)
    layout = PackageLayout(package_id)
    for node in nodes:
        adapter = repo.adapter(node)
        if covered and not _record_proves_inclusion(layout, adapter):
            write_package_record(repo, adapter, package_id)  # signed again: now under a checkpoint that covers it
        else:
            layout.write_events(adapter, events.data)
    return [n.name for n in nodes]


def _covering_checkpoint(session: Session, package_id: str) -> bool:
    """Whether the latest checkpoint covers the package's first event (its ingestion)."""
    size = session.scalar(select(Checkpoint.size).order_by(Checkpoint.size.desc()).limit(1))
    first = session.scalar(select(Event.seq).where(Event.package_id == package_id).order_by(Event.seq).limit(1))
    return size is not None and first is not None and size >= first


def _record_proves_inclusion(layout: PackageLayout, adapter: StorageAdapter) -> bool:
    """Whether the record on the node already carries a checkpoint with an inclusion proof (a small read)."""
    try:
        body = layout.read_record(adapter)["evidence"]["body"]
        return bool(body["checkpoint"]["inclusion"])
    except (ObjectNotFound, ValueError, KeyError, TypeError):
        return False


# --- the repository record: the events that name no package --------------------------------------------------

def _repository_through(session: Session) -> tuple[int, int, str | None]:
    """(count, last seq, last hash) of the events that name no package: one aggregate query and one by key."""
    count, last = session.execute(select(func.count(), func.max(Event.seq)).where(Event.package_id.is_(None))).one()
    hashed = session.scalar(select(Event.hash).where(Event.seq == last)) if last else None
    return int(count or 0), int(last or 0), hashed


def _recorded_through(layout: RepositoryLayout, adapter: StorageAdapter) -> tuple[int, int, str] | None:
    """(count, last seq, last hash) the repository record on the node says its events file holds; None when there
    is none or it cannot be read (it is then written again)."""
    try:
        events = layout.read_record(adapter)["events"]
        count, seq, last = events["count"], events["through_seq"], events["through_hash"]
    except (ObjectNotFound, ValueError, KeyError, TypeError):
        return None
    if type(count) is not int or type(seq) is not int or not isinstance(last, str):
        return None
    return count, seq, last


def _continues(session: Session, recorded: tuple[int, int, str]) -> bool:
    """Whether the catalog's log goes on from what the node's file holds: the event at the recorded last seq is
    the recorded one, with as many events that name no package up to it (a rewrite then only appends), or the
    catalog was rebuilt from the nodes and restored that event (its old hash under ``detail.restored``)."""
    count, seq, last = recorded
    held = session.scalar(select(Event.hash).where(Event.seq == seq, Event.package_id.is_(None)))
    before = session.scalar(select(func.count()).select_from(Event)
                            .where(Event.package_id.is_(None), Event.seq <= seq))
    if held == last and before == count:
        return True
    restored = Event.detail["restored"]["hash"].as_string()  # a scan, made only for a node that does not follow
    return session.scalar(select(Event.seq).where(Event.package_id.is_(None), restored == last).limit(1)) is not None


def flush_repository_events(repo: Repository) -> dict[str, Any]:
    """Bring the repository record and its events file up to date on every readable node that is behind.

    One aggregate query and one small read per node when nothing changed; otherwise the file is written whole
    from the catalog, then the record (signed when the home has a checkpoint key).  The file only ever grows: a
    node whose record names events this catalog's log does not continue (a catalog restored from an older
    backup, or another home's) is not overwritten but reported under ``refused``.  A node that cannot be
    written is reported under ``failed``; both are tried again at the next call.  Raises CheckpointKeyMissing
    when a configured key cannot be read.
    """
    layout = RepositoryLayout()
    with repo.catalog.session() as s:
        nodes = s.scalars(select(Node).where(readable_node()).order_by(Node.name)).all()
        for node in nodes:
            s.expunge(node)
        through = _repository_through(s)
    out: dict[str, Any] = {"events": through[0], "written": [], "refused": {}, "failed": {}}
    if through[0] == 0:
        return out
    recorded: dict[str, tuple[int, int, str] | None] = {}
    for node in nodes:
        try:
            recorded[node.name] = _recorded_through(layout, repo.adapter(node))
        except PreservationError as e:
            out["failed"][node.name] = f"{e.code} {e}"
    behind = [n for n in nodes if n.name in recorded and recorded[n.name] != through]
    if not behind:
        return out
    signer = evidence_signer(repo.settings)
    with repo.catalog.session() as s:
        for node in list(behind):
            mine = recorded[node.name]
            if mine is not None and not _continues(s, mine):
                out["refused"][node.name] = (f"its repository record holds {mine[0]} events through seq {mine[1]}, "
                                             "which this catalog's log does not continue: not overwritten")
                behind.remove(node)
        if not behind:
            return out
        events = events_file(s, None)
        record: dict[str, Any] = {"events": {"count": events.count, "through_seq": events.last_seq,
                                             "through_hash": events.last_hash}}
        if signer is not None:
            record["evidence"] = sign_evidence(signer, repository_evidence_body(s, events))
    for node in behind:
        try:
            adapter = repo.adapter(node)
            layout.write_events(adapter, events.data)  # first: the record's evidence signs lines that must be there
            layout.write_record(adapter, record)
            out["written"].append(node.name)
        except PreservationError as e:
            out["failed"][node.name] = f"{e.code} {e}"
    return out
