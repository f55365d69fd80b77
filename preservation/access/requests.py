"""Access requests, their decisions and the time-limited grants they produce.

A library asks for a collection or one package, with a reason.  The access
policy (:func:`preservation.access.rights.decide_by_policy`) approves at once
when the collection's mode allows; otherwise the request waits for staff.
Every decision, automatic or not, is one ``access decision`` event naming
who decided and why, written in the transaction that creates the grants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import events
from preservation.access.accounts import Principal, get_library
from preservation.access.rights import PolicyDecision, YearRange, decide_by_policy
from preservation.catalog.access_models import (
    REQUEST_APPROVED,
    REQUEST_DENIED,
    REQUEST_PENDING,
    REQUEST_STATES,
    AccessGrant,
    AccessRequest,
    Library,
)
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Collection, Package, utcnow
from preservation.collection import get_collection
from preservation.errors import AlreadyExists, InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.text import check_xml_text

# Event types of the access service (documented in docs/access.md); PREMIS has
# no access-decision type, so these are this repository's own, like "repair".
ACCESS_DECISION = "access decision"
GRANT_REVOCATION = "access revocation"

MAX_REASON = 2000


def policy_agent(repo: Repository) -> str:
    """The agent of automatic decisions: this software applying the named policy (PREMIS: a software agent)."""
    return f"preserve:access-policy:{repo.policy.label}"


def _grant_dict(g: AccessGrant) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": g.id, "library": g.library.code, "collection": g.collection.key, "package_id": g.package_id,
        "scope": "package" if g.package_id else "collection", "from_year": g.from_year, "to_year": g.to_year,
        "granted_by": g.granted_by, "created_at": g.created_at, "expires_at": g.expires_at,
        "revoked_at": g.revoked_at, "active": g.revoked_at is None and g.expires_at > now,
    }


def _request_dict(session: Session, r: AccessRequest) -> dict[str, Any]:
    grants = session.scalars(select(AccessGrant).where(AccessGrant.request_id == r.id).order_by(AccessGrant.id))
    return {
        "id": r.id, "library": r.library.code, "library_name": r.library.name, "user": r.user.username,
        "collection": r.collection.key, "collection_title": r.collection.title,
        "access_mode": r.collection.access_mode, "package_id": r.package_id,
        "package_name": r.package.name if r.package else None,
        "scope": "package" if r.package_id else "collection", "reason": r.reason, "state": r.state,
        "automatic": r.automatic, "decided_by": r.decided_by, "decided_at": r.decided_at,
        "why": r.decision_reason, "created_at": r.created_at, "grants": [_grant_dict(g) for g in grants],
    }


def _apply(
    repo: Repository, session: Session, request: AccessRequest, *, approve: bool, why: str, by: str, automatic: bool,
    year_ranges: list[YearRange | None] | None = None,
) -> list[AccessGrant]:
    """Record one decision: state, grants (when approved) and the event, in the caller's transaction."""
    now = utcnow()
    request.state = REQUEST_APPROVED if approve else REQUEST_DENIED
    request.automatic = automatic
    request.decided_by = by
    request.decided_at = now
    request.decision_reason = why
    grants: list[AccessGrant] = []
    if approve:
        expires = now + timedelta(days=repo.policy.access.grant_days)
        for years in year_ranges or [None]:
            grant = AccessGrant(
                library_id=request.library_id, collection_id=request.collection_id, package_id=request.package_id,
                request_id=request.id, from_year=years.start if years else None, to_year=years.end if years else None,
                granted_by=by, created_at=now, expires_at=expires,
            )
            session.add(grant)
            grants.append(grant)
        session.flush()
    events.record_event(
        session, ACCESS_DECISION, events.SUCCESS if approve else events.FAILURE, agent=by,
        package_id=request.package_id, policy=repo.policy.label,
        detail={
            "request_id": request.id, "library": request.library.code, "collection": request.collection.key,
            "access_mode": request.collection.access_mode, "decision": request.state, "automatic": automatic,
            "why": why, "requested_by": request.user.username, "reason": request.reason,
            "grants": [{"id": g.id, "expires_at": g.expires_at, "from_year": g.from_year, "to_year": g.to_year}
                       for g in grants],
        },
    )
    return grants


def _check_reason(reason: str, field: str = "reason") -> str:
    reason = check_xml_text((reason or "").strip(), field)
    if not reason:
        raise InvalidRequest("say why your library needs access (the reason is shown to staff)")
    if len(reason) > MAX_REASON:
        raise InvalidRequest(f"the reason must be at most {MAX_REASON} characters")
    return reason


def request_access(
    repo: Repository, principal: Principal, *, reason: str, collection_key: str | None = None,
    package_id: str | None = None,
) -> dict[str, Any]:
    """A library asks to read a collection or one package; the policy may approve at once.

    Raises InvalidRequest (no reason, package not in that collection), NotFound, AlreadyExists
    (the same request is pending).
    """
    reason = _check_reason(reason)
    if not collection_key and not package_id:
        raise InvalidRequest("name the collection or the package you ask for")
    check_xml_text(collection_key or "", "collection")
    check_xml_text(package_id or "", "package_id")
    with repo.catalog.session() as s:
        package = None
        if package_id:
            package = s.get(Package, package_id)
            if package is None or package.state == PACKAGE_DEACCESSIONED:
                raise NotFound(f"no package {package_id!r}")
            collection = package.collection
            if collection_key and collection_key != collection.key:
                raise InvalidRequest(
                    f"package {package_id} belongs to collection {collection.key}, not {collection_key}")
        else:
            collection = get_collection(s, collection_key)
        duplicate = s.execute(
            select(AccessRequest.id).where(
                AccessRequest.library_id == principal.library_id, AccessRequest.collection_id == collection.id,
                AccessRequest.state == REQUEST_PENDING,
                AccessRequest.package_id.is_(None) if package is None else AccessRequest.package_id == package.id,
            )
        ).scalar_one_or_none()
        if duplicate is not None:
            raise AlreadyExists(f"your library's request {duplicate} for the same content is still pending")
        request = AccessRequest(
            library_id=principal.library_id, user_id=principal.user_id, collection_id=collection.id,
            package_id=package.id if package else None, reason=reason, state=REQUEST_PENDING,
        )
        s.add(request)
        s.flush()
        decision = decide_by_policy(s, principal.library_id, collection, package)
        if decision.approve:
            _apply(repo, s, request, approve=True, why=decision.why, by=policy_agent(repo), automatic=True,
                   year_ranges=decision.year_ranges)
        else:
            request.decision_reason = decision.why
        return _request_dict(s, request)


def decide_request(repo: Repository, request_id: int, *, approve: bool, by: str, why: str) -> dict[str, Any]:
    """Staff approve or deny a pending request.

    Raises NotFound, InvalidRequest (not pending, no why), InvalidText (``why`` or ``by`` XML cannot carry).
    """
    why = check_xml_text((why or "").strip(), "why", max_length=MAX_REASON)
    if not why:
        raise InvalidRequest("say why (the decision and its reason are recorded as an event)")
    if not check_xml_text(by or "", "by", max_length=100):
        raise InvalidRequest("a decision needs the name of who decides")
    with repo.catalog.session() as s:
        request = s.get(AccessRequest, request_id)
        if request is None:
            raise NotFound(f"no access request {request_id}")
        if request.state != REQUEST_PENDING:
            raise InvalidRequest(f"request {request_id} was {request.state} already by {request.decided_by}")
        _apply(repo, s, request, approve=approve, why=why, by=by, automatic=False)
        return _request_dict(s, request)


def decide_pending_by_policy(repo: Repository, session: Session, collection: Collection) -> list[int]:
    """Re-run the policy on the collection's pending requests (after a trigger); returns those approved."""
    approved = []
    pending = session.scalars(
        select(AccessRequest).where(AccessRequest.collection_id == collection.id,
                                    AccessRequest.state == REQUEST_PENDING).order_by(AccessRequest.id)
    ).all()
    for request in pending:
        decision: PolicyDecision = decide_by_policy(session, request.library_id, collection, request.package)
        if decision.approve:
            _apply(repo, session, request, approve=True, why=decision.why, by=policy_agent(repo), automatic=True,
                   year_ranges=decision.year_ranges)
            approved.append(request.id)
    return approved


def list_requests(
    repo: Repository, *, library_id: int | None = None, library_code: str | None = None, state: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Requests, newest first; ``library_id`` or ``library_code`` limits them to one library's."""
    if state is not None and state not in REQUEST_STATES:
        raise InvalidRequest(f"state {state!r} must be one of {', '.join(REQUEST_STATES)}")
    with repo.catalog.session() as s:
        if library_code:
            library_id = get_library(s, library_code).id
        stmt = select(AccessRequest).order_by(AccessRequest.id.desc()).limit(max(1, min(limit, 1000)))
        if library_id is not None:
            stmt = stmt.where(AccessRequest.library_id == library_id)
        if state is not None:
            stmt = stmt.where(AccessRequest.state == state)
        return [_request_dict(s, r) for r in s.scalars(stmt)]


def get_request(repo: Repository, request_id: int, *, library_id: int | None = None) -> dict[str, Any]:
    """One request; with ``library_id``, another library's request is NotFound (its existence is not revealed)."""
    with repo.catalog.session() as s:
        request = s.get(AccessRequest, request_id)
        if request is None or (library_id is not None and request.library_id != library_id):
            raise NotFound(f"no access request {request_id}")
        return _request_dict(s, request)


def list_grants(
    repo: Repository, *, library_id: int | None = None, library_code: str | None = None, active_only: bool = True
) -> list[dict[str, Any]]:
    now = utcnow()
    with repo.catalog.session() as s:
        if library_code:
            library_id = get_library(s, library_code).id
        stmt = select(AccessGrant).order_by(AccessGrant.id.desc())
        if library_id is not None:
            stmt = stmt.where(AccessGrant.library_id == library_id)
        if active_only:
            stmt = stmt.where(AccessGrant.revoked_at.is_(None), AccessGrant.expires_at > now)
        return [_grant_dict(g) for g in s.scalars(stmt)]


def revoke_grant(repo: Repository, grant_id: int, *, by: str, why: str) -> dict[str, Any]:
    """End a grant now; raises NotFound, InvalidRequest (no why, already ended), InvalidText."""
    why = check_xml_text((why or "").strip(), "why", max_length=MAX_REASON)
    check_xml_text(by or "", "by", max_length=100)
    if not why:
        raise InvalidRequest("say why the grant is revoked")
    now = utcnow()
    with repo.catalog.session() as s:
        grant = s.get(AccessGrant, grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        if grant.revoked_at is not None or grant.expires_at <= now:
            raise InvalidRequest(f"grant {grant_id} has ended already")
        grant.revoked_at = now
        grant.revoked_by = by
        library = s.get(Library, grant.library_id)
        events.record_event(
            s, GRANT_REVOCATION, events.SUCCESS, agent=by, package_id=grant.package_id, policy=repo.policy.label,
            detail={"grant_id": grant.id, "library": library.code, "collection": grant.collection.key, "why": why},
        )
        return _grant_dict(grant)
