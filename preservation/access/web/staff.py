"""Staff pages: pending requests and decisions, trigger events, usage."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from preservation.access import requests, triggers, usage
from preservation.access.accounts import Principal
from preservation.access.web.auth import check_csrf, portal_staff, repo_of
from preservation.access.web.flash import confirm
from preservation.access.web.pages import render
from preservation.access.web.params import RowId
from preservation.catalog.access_models import REQUEST_PENDING, TRIGGER_KINDS
from preservation.catalog.models import utcnow
from preservation.collection import list_collections

router = APIRouter(prefix="/staff", include_in_schema=False)

Staff = Annotated[Principal, Depends(portal_staff)]
FormText = Annotated[str, Form(max_length=5000)]


@router.get("/requests")
def pending(request: Request, principal: Staff,
            state: Annotated[Literal["pending", "approved", "denied"], Query()] = REQUEST_PENDING) -> Response:
    return render(request, "staff_requests.html", principal, state=state,
                  requests=requests.list_requests(repo_of(request), state=state))


@router.post("/requests/{request_id}/decide")
def decide(request: Request, request_id: RowId, principal: Staff, csrf: FormText = "", why: FormText = "",
           decision: Annotated[Literal["approve", "deny"], Form()] = "deny") -> Response:
    check_csrf(request, csrf)
    requests.decide_request(repo_of(request), request_id, approve=decision == "approve", by=principal.agent, why=why)
    confirm(request, "approved" if decision == "approve" else "denied", id=request_id)
    return RedirectResponse("/staff/requests", status_code=303)


@router.post("/grants/{grant_id}/revoke")
def revoke(request: Request, grant_id: RowId, principal: Staff, csrf: FormText = "", why: FormText = "") -> Response:
    check_csrf(request, csrf)
    requests.revoke_grant(repo_of(request), grant_id, by=principal.agent, why=why)
    confirm(request, "revoked", id=grant_id)
    return RedirectResponse("/staff/requests?state=approved", status_code=303)


@router.get("/triggers")
def trigger_page(request: Request, principal: Staff) -> Response:
    repo = repo_of(request)
    return render(request, "staff_triggers.html", principal, kinds=TRIGGER_KINDS, today=utcnow().date().isoformat(),
                  collections=list_collections(repo), triggers=triggers.list_triggers(repo))


@router.post("/triggers")
def record_trigger(request: Request, principal: Staff, csrf: FormText = "", evidence: FormText = "",
                   collection: Annotated[str, Form(max_length=100)] = "",
                   kind: Annotated[str, Form(max_length=32)] = "",
                   date: Annotated[str, Form(max_length=10)] = "") -> Response:
    check_csrf(request, csrf)
    recorded = triggers.record_trigger(repo_of(request), collection, kind=kind,
                                       occurred_on=triggers.parse_date(date), evidence=evidence,
                                       recorded_by=principal.agent)
    if recorded["opens_collection"]:
        confirm(request, "trigger_opened", id=recorded["id"], approved=len(recorded["requests_approved"]))
    else:
        confirm(request, "trigger_recorded", id=recorded["id"])
    return RedirectResponse("/staff/triggers", status_code=303)


@router.get("/usage")
def usage_page(request: Request, principal: Staff,
               month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")] = "") -> Response:
    month = month or utcnow().strftime("%Y-%m")
    return render(request, "staff_usage.html", principal, report=usage.usage_report(repo_of(request), month))
