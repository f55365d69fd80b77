"""Access requests, their decisions and the time-limited grants they produce.

A library asks for a collection or one package, with a reason, or in library
terms for a title, one issue of it or one item (:func:`request_in_library_terms`);
the grant an approval produces has the request's scope.  The access
policy (:func:`preservation.access.rights.decide_by_policy`) approves at once
when the collection's mode allows; otherwise the request waits for staff.
Every decision, automatic or not, is one ``access decision`` event naming
who decided and why, written in the transaction that creates the grants.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from preservation import events
from preservation import identifiers as ids
from preservation.access import reasons
from preservation.access.accounts import Principal, get_library
from preservation.access.reasons import Reason
from preservation.access.rights import (
    MAX_YEAR as MAX_ISSUE_YEAR,
    MIN_YEAR as MIN_ISSUE_YEAR,
    PolicyDecision,
    YearRange,
    decide_by_policy,
    decide_for_issue,
    decide_for_item,
    decide_for_title_request,
    decide_for_volume_request,
    grant_scope,
    row_span,
)
from preservation.catalog.access_models import (
    REQUEST_APPROVED,
    REQUEST_DENIED,
    REQUEST_PENDING,
    REQUEST_STATES,
    AccessGrant,
    AccessRequest,
    Library,
)
from preservation.catalog.library_models import PART_TEXT, Item, Title
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Collection, Package, utcnow
from preservation.titles import part_number
from preservation.collection import get_collection
from preservation.errors import AlreadyExists, InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.text import check_xml_text

# Event types of the access service (documented in docs/access.md); PREMIS has
# no access-decision type, so these are this repository's own, like "repair".
ACCESS_DECISION = "access decision"
GRANT_REVOCATION = "access revocation"

MAX_REASON = 2000

SCOPE_TITLE = "title"
SCOPE_VOLUME = "volume"  # volumes of a title: one volume, or a range of them
SCOPE_ISSUE = "issue"
SCOPE_ITEM = "item"
LIBRARY_SCOPES = (SCOPE_TITLE, SCOPE_VOLUME, SCOPE_ISSUE, SCOPE_ITEM)


def policy_agent(repo: Repository) -> str:
    """The agent of automatic decisions: this software applying the named policy (PREMIS: a software agent)."""
    return f"preserve:access-policy:{repo.policy.label}"


def _grant_dict(g: AccessGrant) -> dict[str, Any]:
    now = utcnow()
    session = object_session(g)
    package = session.get(Package, g.package_id) if session is not None and g.package_id else None
    title = session.get(Title, g.title_id) if session is not None and g.title_id is not None else None
    item = session.get(Item, g.item_id) if session is not None and g.item_id is not None else None
    return {
        "id": g.id, "library": g.library.code, "collection": g.collection.key, "package_id": g.package_id,
        # names for pages: librarians read names and titles, ids only in a details line
        "collection_title": g.collection.title, "package_name": package.name if package else None,
        "title": title.title if title else None, "item_title": item.item_title if item else None,
        "doi": item.doi if item else None,
        "scope": grant_scope(g), "from_year": g.from_year, "to_year": g.to_year,
        "title_id": g.title_id, "item_id": g.item_id, "volume": g.volume, "issue": g.issue,
        "first_date": g.first_date, "last_date": g.last_date, "first_volume": g.first_volume,
        "first_issue": g.first_issue, "last_volume": g.last_volume, "last_issue": g.last_issue,
        "covers": _grant_covers_text(g),
        "granted_by": g.granted_by, "created_at": g.created_at, "expires_at": g.expires_at,
        "revoked_at": g.revoked_at, "active": g.revoked_at is None and g.expires_at > now,
    }


def _grant_covers_text(g: AccessGrant) -> str:
    """What a grant opens, in a few words for pages and tables (its scope and bounds)."""
    scope = grant_scope(g)
    if scope == "issue":
        return f"issue {g.from_year}, vol. {g.volume or '-'}, no. {g.issue or '-'}"
    if scope in ("title", "volume"):
        span = row_span(g) if (scope == "volume" or g.first_date or g.last_date) else Reason("span-whole-title")
        if g.from_year is not None or g.to_year is not None:
            return Reason("span-years", span=span, first=g.from_year or "…", last=g.to_year or "…")
        return span
    if scope == "item":
        return f"item {g.item_id}"
    if g.from_year is not None or g.to_year is not None:
        return f"years {g.from_year or '…'}-{g.to_year or '…'}"
    return "the whole package" if scope == "package" else "the whole collection"


def request_scope(r: AccessRequest) -> str:
    """``item``, ``issue``, ``volume``, ``title``, ``package`` or ``collection``."""
    if r.item_id is not None:
        return SCOPE_ITEM
    if r.title_id is not None:
        if r.volume is not None:
            return SCOPE_ISSUE
        return SCOPE_VOLUME if r.first_volume is not None else SCOPE_TITLE
    return "package" if r.package_id else "collection"


def _library_terms(session: Session, r: AccessRequest) -> dict[str, Any]:
    """What a request in library terms names: its title, issue and item, for pages and the API."""
    item = session.get(Item, r.item_id) if r.item_id is not None else None
    title_id = r.title_id if item is None else item.title_id
    title = session.get(Title, title_id) if title_id is not None else None
    return {
        "title_id": title_id, "title": title.title if title else None,
        "item_id": r.item_id, "doi": item.doi if item else None, "item_title": item.item_title if item else None,
        "issue_year": r.issue_year, "volume": r.volume, "issue": r.issue,
        "first_volume": r.first_volume, "last_volume": r.last_volume,
    }


def asked_for(request: dict[str, Any]) -> str:
    """What a request (as :func:`list_requests` gives it) asks for, in a few words for a table."""
    scope = request["scope"]
    if scope == SCOPE_ITEM:
        return f"article {request['doi'] or request['item_id']}: {request['item_title']}"
    if scope == SCOPE_ISSUE:
        return (f"issue {request['title']} {request['issue_year']}, vol. {request['volume'] or '-'}, "
                f"no. {request['issue'] or '-'}")
    if scope == SCOPE_VOLUME:
        first, last = request["first_volume"], request["last_volume"]
        return f"{request['title']} vol. {first}" + (f"-{last}" if last != first else "")
    if scope == SCOPE_TITLE:
        return f"title {request['title']}"
    return f"package {request['package_name']}" if scope == "package" else "(all)"


def _request_dict(session: Session, r: AccessRequest) -> dict[str, Any]:
    grants = session.scalars(select(AccessGrant).where(AccessGrant.request_id == r.id).order_by(AccessGrant.id))
    why = reasons.restore(r.decision_reason, r.decision_coded)
    coded = reasons.coded(why)
    return {
        **_library_terms(session, r),
        "id": r.id, "library": r.library.code, "library_name": r.library.name, "user": r.user.username,
        "collection": r.collection.key, "collection_title": r.collection.title,
        "access_mode": r.collection.access_mode, "package_id": r.package_id,
        "package_name": r.package.name if r.package else None,
        "scope": request_scope(r), "reason": r.reason, "state": r.state,
        "automatic": r.automatic, "decided_by": r.decided_by, "decided_at": r.decided_at,
        "why": why, "why_code": coded["code"] if coded else None, "why_params": coded["params"] if coded else None,
        "created_at": r.created_at, "grants": [_grant_dict(g) for g in grants],
    }


def _apply(
    repo: Repository, session: Session, request: AccessRequest, *, approve: bool, why: str, by: str, automatic: bool,
    year_ranges: list[YearRange | None] | None = None, date_ranges: list[tuple[str, ...]] | None = None,
) -> list[AccessGrant]:
    """Record one decision: state, grants (when approved) and the event, in the caller's transaction.

    Each grant has the request's scope, narrowed by one of ``year_ranges``
    (None: no limit) or, for a title, one of ``date_ranges`` (the dates and
    volume bounds of a title entitlement); with neither, one grant of the
    whole scope.  A request of volumes gives its grants its volume bounds.
    """
    now = utcnow()
    request.state = REQUEST_APPROVED if approve else REQUEST_DENIED
    request.automatic = automatic
    request.decided_by = by
    request.decided_at = now
    request.decision_reason = why
    request.decision_coded = reasons.coded(why)
    grants: list[AccessGrant] = []
    if approve:
        expires = now + timedelta(days=repo.policy.access.grant_days)
        spans: list[tuple[YearRange | None, tuple[str, ...] | None]] = (
            [(years, None) for years in year_ranges or []] + [(None, dates) for dates in date_ranges or []])
        for years, dates in spans or [(None, None)]:
            grant = AccessGrant(
                library_id=request.library_id, collection_id=request.collection_id, package_id=request.package_id,
                request_id=request.id, from_year=years.start if years else None, to_year=years.end if years else None,
                granted_by=by, created_at=now, expires_at=expires,
                title_id=request.title_id, item_id=request.item_id, volume=request.volume, issue=request.issue,
                first_date=(dates[0] or None) if dates else None, last_date=(dates[1] or None) if dates else None,
            )
            if dates and len(dates) == 6:  # a title entitlement's volume bounds
                grant.first_volume, grant.first_issue, grant.last_volume, grant.last_issue = (
                    value or None for value in dates[2:])
            if request.first_volume is not None:  # volumes of the title
                grant.first_volume, grant.last_volume = request.first_volume, request.last_volume
            if request.volume is not None:  # one issue: of its year
                grant.from_year = grant.to_year = request.issue_year
            session.add(grant)
            grants.append(grant)
        session.flush()
    events.record_event(
        session, ACCESS_DECISION, events.SUCCESS if approve else events.FAILURE, agent=by,
        package_id=request.package_id, policy=repo.policy.label,
        detail={
            "request_id": request.id, "library": request.library.code, "collection": request.collection.key,
            "access_mode": request.collection.access_mode, "decision": request.state, "automatic": automatic,
            "scope": request_scope(request), "title_id": request.title_id, "item_id": request.item_id,
            "why": why, "requested_by": request.user.username, "reason": request.reason,
            "grants": [{"id": g.id, "expires_at": g.expires_at, "from_year": g.from_year, "to_year": g.to_year,
                        "first_date": g.first_date, "last_date": g.last_date, "first_volume": g.first_volume,
                        "first_issue": g.first_issue, "last_volume": g.last_volume, "last_issue": g.last_issue}
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
            request.decision_coded = reasons.coded(decision.why)
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
        decision: PolicyDecision = _policy_on(session, request)
        if decision.approve:
            _apply(repo, session, request, approve=True, why=decision.why, by=policy_agent(repo), automatic=True,
                   year_ranges=decision.year_ranges, date_ranges=decision.date_ranges)
            approved.append(request.id)
    return approved


def _policy_on(session: Session, request: AccessRequest) -> PolicyDecision:
    """The access policy's decision on a request of any scope."""
    collection = request.collection
    if request.item_id is not None:
        item = session.get(Item, request.item_id)
        return decide_for_item(session, request.library_id, collection, item.package, item)
    if request.title_id is not None and request.volume is not None:
        return decide_for_issue(session, request.library_id, collection, request.title_id, request.issue_year,
                                _issue_date(session, request.title_id, request.issue_year, request.volume,
                                            request.issue or ""),
                                volume=request.volume, issue=request.issue or "")
    if request.title_id is not None and request.first_volume is not None:
        return decide_for_volume_request(session, request.library_id, collection, request.title_id,
                                         request.first_volume, request.last_volume or request.first_volume)
    if request.title_id is not None:
        return decide_for_title_request(session, request.library_id, collection, request.title_id)
    return decide_by_policy(session, request.library_id, collection, request.package)


def _held_items(title_id: int, year: int, volume: str, issue: str):
    return (select(Item).join(Package, Package.id == Item.package_id)
            .where(Item.title_id == title_id, Item.year == year, Item.volume == volume, Item.issue == issue,
                   Package.state != PACKAGE_DEACCESSIONED))


def _issue_date(session: Session, title_id: int, year: int, volume: str, issue: str) -> str:
    """The issue's date: the earliest publication date of its items, else its year."""
    dates = [d for d in session.scalars(_held_items(title_id, year, volume, issue).with_only_columns(Item.published))
             if d]
    return min(dates) if dates else str(year)


def _whole_number(value: int | str | None, name: str, low: int, high: int) -> int:
    """A number from outside: an int, or plain ASCII digits, within [low, high]; raises InvalidRequest."""
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidRequest(f"{name} is required")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 19):
            raise InvalidRequest(f"{name} must be a whole number written with the digits 0-9")
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return value


def _part(value: str | None, name: str) -> str:
    """A volume or issue as the catalog stores it ("" when the issue has none)."""
    text = check_xml_text((value or "").strip(), name, max_length=PART_TEXT)
    if any(ch.isspace() and ch != " " for ch in text):
        raise InvalidRequest(f"{name} must be one line")
    return text


def _volume_number(value: str | None, name: str) -> str:
    """A volume bound of a request: a volume as the catalog stores it, that starts with a number."""
    text = _part(value, name)
    if not text:
        raise InvalidRequest(f"{name} is required for a request of volumes")
    if part_number(text) is None:
        raise InvalidRequest(f"{name} {ascii(text)} is not a volume number: volumes are requested by number "
                             "(ask for an issue or an article otherwise)")
    return text


def _held_volume_numbers(session: Session, title_id: int) -> set[int]:
    volumes = session.scalars(select(Item.volume).join(Package, Package.id == Item.package_id)
                              .where(Item.title_id == title_id, Package.state != PACKAGE_DEACCESSIONED)
                              .distinct())
    return {n for n in (part_number(v or "") for v in volumes) if n is not None}


def request_in_library_terms(
    repo: Repository, principal: Principal, *, scope: str, reason: str, title_id: int | str | None = None,
    year: int | str | None = None, volume: str | None = None, issue: str | None = None,
    doi: str | None = None, item_id: int | str | None = None, last_volume: str | None = None,
) -> dict[str, Any]:
    """A library asks for a title (``title_id``), volumes of it (``title_id``, ``volume`` and optionally
    ``last_volume``: a range), one issue (``title_id``, ``year``, ``volume``, ``issue``) or one item
    (``doi`` or ``item_id``); the policy may approve at once, else staff decide.

    Raises InvalidRequest (bad scope, numbers or reason; an issue or volumes the title does not have),
    InvalidText,
    InvalidIdentifier (a malformed DOI), NotFound (no such title or item), AlreadyExists (the same request
    of the library is pending).
    """
    reason = _check_reason(reason)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in reason):
        raise InvalidRequest("the reason must not contain control characters")
    if scope not in LIBRARY_SCOPES:
        raise InvalidRequest(f"scope must be one of {', '.join(LIBRARY_SCOPES)}")
    with repo.catalog.session() as s:
        terms: dict[str, Any] = {}
        if scope == SCOPE_ITEM:
            if doi:
                value = ids.parse_doi(doi)
                item = s.execute(select(Item).where(Item.doi == value)).scalar_one_or_none()
                missing = f"no item with DOI {ascii(value)}"
            else:
                number = _whole_number(item_id, "item_id", 1, 2**63 - 1)
                item = s.get(Item, number)
                missing = f"no item {number}"
            if item is None or item.package.state == PACKAGE_DEACCESSIONED:
                raise NotFound(missing)
            collection = item.package.collection
            terms = {"item_id": item.id}
        else:
            number = _whole_number(title_id, "title_id", 1, 2**31 - 1)
            title = s.get(Title, number)
            if title is None:
                raise NotFound(f"no title {number}")
            collection = title.collection
            terms = {"title_id": title.id}
            if scope == SCOPE_VOLUME:
                first = _volume_number(volume, "volume")
                last = _volume_number(last_volume, "last_volume") if (last_volume or "").strip() else first
                low, high = part_number(first), part_number(last)
                if high < low:  # type: ignore[operator]
                    raise InvalidRequest(f"last_volume {ascii(last)} comes before volume {ascii(first)}")
                if not any(low <= n <= high for n in _held_volume_numbers(s, title.id)):  # type: ignore[operator]
                    raise InvalidRequest(f"title {title.id} has nothing preserved of volume "
                                         f"{ascii(first)}" + (f" to {ascii(last)}" if last != first else ""))
                terms.update(first_volume=first, last_volume=last)
            elif scope == SCOPE_ISSUE:
                terms.update(issue_year=_whole_number(year, "year", MIN_ISSUE_YEAR, MAX_ISSUE_YEAR),
                             volume=_part(volume, "volume"), issue=_part(issue, "issue"))
                if s.execute(_held_items(title.id, terms["issue_year"], terms["volume"], terms["issue"])
                             .limit(1)).first() is None:
                    raise InvalidRequest(
                        f"title {title.id} has no preserved issue {terms['issue_year']} "
                        f"volume {ascii(terms['volume'])} issue {ascii(terms['issue'])}")
        same = [AccessRequest.library_id == principal.library_id, AccessRequest.state == REQUEST_PENDING]
        for column in ("title_id", "item_id", "issue_year", "volume", "issue", "first_volume", "last_volume"):
            value = terms.get(column)
            attribute = getattr(AccessRequest, column)
            same.append(attribute.is_(None) if value is None else attribute == value)
        duplicate = s.execute(select(AccessRequest.id).where(*same).limit(1)).scalar_one_or_none()
        if duplicate is not None:
            raise AlreadyExists(f"your library's request {duplicate} for the same content is still pending")
        request = AccessRequest(library_id=principal.library_id, user_id=principal.user_id,
                                collection_id=collection.id, reason=reason, state=REQUEST_PENDING, **terms)
        s.add(request)
        s.flush()
        decision = _policy_on(s, request)
        if decision.approve:
            _apply(repo, s, request, approve=True, why=decision.why, by=policy_agent(repo), automatic=True,
                   year_ranges=decision.year_ranges, date_ranges=decision.date_ranges)
        else:
            request.decision_reason = decision.why
            request.decision_coded = reasons.coded(decision.why)
        return _request_dict(s, request)


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
