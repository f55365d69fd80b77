"""The event log: PREMIS-style events chained by hash.

Each event's hash covers its own content and the previous event's hash, so
altering, removing or reordering any stored event breaks the chain at that
point.  Appends lock the single chain-head row, which serialises writers on
PostgreSQL (row lock) and SQLite (``BEGIN IMMEDIATE``) alike, and the head
pins the tail so that removing the newest events is detected too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.catalog.evidence_models import append_leaf
from preservation.catalog.models import ChainHead, Event, utcnow

# PREMIS 3 event types and outcomes (catalog.vocabulary holds them, importable without SQLAlchemy)
from preservation.catalog.vocabulary import (  # noqa: F401 - offered here under their old names
    ACCESS,
    DEACCESSION,
    DELETION,
    DISSEMINATION,
    FAILURE,
    FIXITY_CHECK,
    INFORMATION_PACKAGE_CREATION,
    INGESTION,
    KEY_INTRODUCTION,
    MESSAGE_DIGEST_CALCULATION,
    METADATA_MODIFICATION,
    POLICY_ASSIGNMENT,
    REPAIR,
    REPLICATION,
    SUCCESS,
    VALIDATION,
    WARNING,
)

incident_log = logging.getLogger("preserve.incidents")

GENESIS_HASH = "0" * 64
SYSTEM_AGENT = "preserve"


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def event_hash(fields: dict[str, Any], prev_hash: str) -> str:
    body = json.dumps(_canonical(fields), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


HASHED_FIELDS = ("seq", "event_id", "event_type", "occurred_at", "outcome", "agent", "package_id", "replica_id",
                 "node_name", "job_id", "policy", "detail")
"""What an event's hash covers, beside the previous event's hash."""


def _hashed_fields(ev: Event) -> dict[str, Any]:
    fields = {name: getattr(ev, name) for name in HASHED_FIELDS}
    fields["detail"] = ev.detail or {}
    return fields


def hash_of_exported(exported: dict[str, Any]) -> str | None:
    """The hash an event exported by :func:`event_to_dict` must carry, recomputed from its fields and
    ``prev_hash``; None when it does not have exactly those fields."""
    if set(exported) != {*HASHED_FIELDS, "prev_hash", "hash"} or not isinstance(exported["prev_hash"], str):
        return None
    return event_hash({name: exported[name] for name in HASHED_FIELDS}, exported["prev_hash"])


def record_event(
    session: Session,
    event_type: str,
    outcome: str,
    *,
    agent: str = SYSTEM_AGENT,
    package_id: str | None = None,
    replica_id: int | None = None,
    node_name: str | None = None,
    job_id: int | None = None,
    policy: str | None = None,
    detail: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Append one event to the chain inside the caller's transaction."""
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one()
    ev = Event(
        seq=head.seq + 1,
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        occurred_at=occurred_at or utcnow(),
        outcome=outcome,
        agent=agent,
        package_id=package_id,
        replica_id=replica_id,
        node_name=node_name,
        job_id=job_id,
        policy=policy,
        detail=_canonical(detail or {}),
        prev_hash=head.hash,
        hash="",
    )
    ev.hash = event_hash(_hashed_fields(ev), head.hash)
    session.add(ev)
    head.seq = ev.seq
    head.hash = ev.hash
    session.flush()
    append_leaf(session, ev.seq, ev.hash, ev.prev_hash)  # the Merkle tree over the log (preservation.merkle)
    if outcome == FAILURE or (isinstance(ev.detail, dict) and ev.detail.get("findings")):
        log_incident(ev)
    return ev


INCIDENT_LINES = 20  # findings logged per event; the event keeps its own list


def log_incident(ev: Event) -> None:
    """Log each finding of an event at WARNING, naming node, package and file (an event without findings: one line)."""
    detail = ev.detail if isinstance(ev.detail, dict) else {}
    findings = [f for f in detail.get("findings") or [] if isinstance(f, dict)]
    for f in findings[:INCIDENT_LINES]:
        context = {"package": ev.package_id, "node": ev.node_name, "path": f.get("path"), "code": f.get("code")}
        incident_log.warning("%s finding %s: node %s, package %s, file %s: %s", ev.event_type, f.get("code"),
                             ev.node_name or "-", ev.package_id or "-", f.get("path") or "-", f.get("message"),
                             extra=context)
    if len(findings) > INCIDENT_LINES:
        incident_log.warning("%s: %d more finding(s) on node %s, package %s: see `preserve events list --package %s`",
                             ev.event_type, len(findings) - INCIDENT_LINES, ev.node_name or "-", ev.package_id or "-",
                             ev.package_id or "-", extra={"package": ev.package_id, "node": ev.node_name})
    if not findings:
        paths = detail.get("paths") or []
        incident_log.warning("%s %s: node %s, package %s, file %s: %s", ev.event_type, ev.outcome, ev.node_name or "-",
                             ev.package_id or "-", paths[0] if paths else "-",
                             detail.get("reason") or detail.get("error") or detail.get("state") or "",
                             extra={"package": ev.package_id, "node": ev.node_name,
                                    "path": paths[0] if paths else None})


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    event_id: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "event_id": self.event_id, "reason": self.reason}


@dataclass(frozen=True)
class ChainReport:
    events_checked: int
    head_seq: int
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "head_seq": self.head_seq,
            "first_break": self.breaks[0].to_dict() if self.breaks else None,
            "breaks": [b.to_dict() for b in self.breaks[:100]],
        }


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Recompute every link; report each place where the stored chain disagrees."""
    breaks: list[ChainBreak] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    stmt = select(Event).order_by(Event.seq).execution_options(yield_per=batch)
    for ev in session.scalars(stmt):
        checked += 1
        if ev.seq != expected_seq:
            breaks.append(
                ChainBreak(ev.seq, ev.event_id, f"events {expected_seq}..{ev.seq - 1} are missing (removed?)")
            )
        if ev.prev_hash != expected_prev:
            breaks.append(
                ChainBreak(ev.seq, ev.event_id, "its previous-hash does not match the event before it (removed or reordered)")
            )
        recomputed = event_hash(_hashed_fields(ev), ev.prev_hash)
        if recomputed != ev.hash:
            breaks.append(ChainBreak(ev.seq, ev.event_id, "its content does not match its hash (altered)"))
        expected_prev = ev.hash
        expected_seq = ev.seq + 1
        session.expunge(ev)
    head = session.get(ChainHead, 1)
    head_seq = head.seq if head else 0
    if head is None:
        breaks.append(ChainBreak(0, None, "the chain head is missing"))
    elif head.seq != expected_seq - 1 or head.hash != expected_prev:
        breaks.append(
            ChainBreak(head.seq, None, f"the chain head points at event {head.seq} but the log ends at {expected_seq - 1} (events removed from the end?)")
        )
    return ChainReport(events_checked=checked, head_seq=head_seq, breaks=breaks)


def iter_events(session: Session, package_id: str | None = None, limit: int | None = None, *,
                outcome: str | None = None, event_type: str | None = None, node_name: str | None = None,
                since: datetime | None = None, until: datetime | None = None) -> Iterator[Event]:
    """Events in chain order, those that match every filter given (``since`` inclusive, ``until`` exclusive)."""
    stmt = select(Event).order_by(Event.seq)
    if package_id:
        stmt = stmt.where(Event.package_id == package_id)
    if outcome:
        stmt = stmt.where(Event.outcome == outcome)
    if event_type:
        stmt = stmt.where(Event.event_type == event_type)
    if node_name:
        stmt = stmt.where(Event.node_name == node_name)
    if since is not None:
        stmt = stmt.where(Event.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(Event.occurred_at < until)
    if limit:
        stmt = stmt.limit(limit)
    yield from session.scalars(stmt.execution_options(yield_per=1000))


def event_to_dict(ev: Event) -> dict[str, Any]:
    out = _canonical(_hashed_fields(ev))
    out["prev_hash"] = ev.prev_hash
    out["hash"] = ev.hash
    return out
