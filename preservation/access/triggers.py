"""Trigger events: the publisher ceased, a title was discontinued, back issues were removed, a catastrophe.

Recording one is an ``access trigger`` event; in a ``trigger`` collection it
also approves, in the same transaction, every request that was waiting for it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from preservation import events
from preservation.access.requests import decide_pending_by_policy
from preservation.access.rights import MODE_TRIGGER
from preservation.catalog.access_models import TRIGGER_KINDS, TriggerEvent
from preservation.catalog.models import Collection, utcnow
from preservation.collection import get_collection
from preservation.errors import InvalidRequest
from preservation.repository import Repository
from preservation.text import check_xml_text

ACCESS_TRIGGER = "access trigger"
MAX_EVIDENCE = 5000


def _trigger_dict(t: TriggerEvent) -> dict[str, Any]:
    return {"id": t.id, "collection": t.collection.key, "kind": t.kind, "date": t.occurred_on.isoformat(),
            "evidence": t.evidence, "recorded_by": t.recorded_by, "recorded_at": t.recorded_at}


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError) as e:
        raise InvalidRequest(f"{text!r} is not a date: use YYYY-MM-DD") from e


def record_trigger(
    repo: Repository, collection_key: str, *, kind: str, occurred_on: date, evidence: str, recorded_by: str
) -> dict[str, Any]:
    """Record a trigger event; raises NotFound, InvalidRequest (kind, future date, no evidence), InvalidText."""
    check_xml_text(collection_key or "", "collection")
    check_xml_text(recorded_by or "", "recorded_by", max_length=100)
    if kind not in TRIGGER_KINDS:
        raise InvalidRequest(f"trigger kind {kind!r} must be one of {', '.join(TRIGGER_KINDS)}")
    if occurred_on > utcnow().date():
        raise InvalidRequest(f"{occurred_on.isoformat()} is in the future: record a trigger once it has happened")
    evidence = check_xml_text((evidence or "").strip(), "evidence")
    if not evidence:
        raise InvalidRequest("a trigger needs evidence (a reference, URL or statement staff can show an auditor)")
    if len(evidence) > MAX_EVIDENCE:
        raise InvalidRequest(f"the evidence must be at most {MAX_EVIDENCE} characters")
    with repo.catalog.session() as s:
        collection: Collection = get_collection(s, collection_key)
        trigger = TriggerEvent(collection_id=collection.id, kind=kind, occurred_on=occurred_on, evidence=evidence,
                               recorded_by=recorded_by)
        s.add(trigger)
        s.flush()
        opens = collection.access_mode == MODE_TRIGGER
        approved = decide_pending_by_policy(repo, s, collection) if opens else []
        events.record_event(
            s, ACCESS_TRIGGER, events.SUCCESS, agent=recorded_by, policy=repo.policy.label,
            detail={"trigger_id": trigger.id, "collection": collection.key, "kind": kind,
                    "date": occurred_on.isoformat(), "evidence": evidence, "access_mode": collection.access_mode,
                    "requests_approved": approved},
        )
        out = _trigger_dict(trigger)
        out["requests_approved"] = approved
        out["opens_collection"] = opens
        return out


def list_triggers(repo: Repository, collection_key: str | None = None) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        stmt = select(TriggerEvent).order_by(TriggerEvent.occurred_on.desc(), TriggerEvent.id.desc())
        if collection_key:
            stmt = stmt.where(TriggerEvent.collection_id == get_collection(s, collection_key).id)
        return [_trigger_dict(t) for t in s.scalars(stmt)]
