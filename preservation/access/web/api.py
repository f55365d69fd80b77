"""The JSON API (``/api/v1``): the same functions as the portal, for programs.

Every route needs ``Authorization: Bearer <key>``.  Library users see their
own library's requests, grants and usage; staff routes check the role.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from preservation.access import holdings, requests, triggers, usage
from preservation.access.accounts import Principal
from preservation.access.web.auth import api_principal, api_staff, repo_of
from preservation.access.web.files import file_response, zip_response
from preservation.access.web.params import Offset, PageLimit, RowId
from preservation.catalog.access_models import TRIGGER_KINDS
from preservation.errors import AccessRefused

router = APIRouter(prefix="/api/v1")

Reader = Annotated[Principal, Depends(api_principal)]
Staff = Annotated[Principal, Depends(api_staff)]


class AccessRequestIn(BaseModel):
    collection: str | None = Field(default=None, max_length=100, description="Collection key (or give package_id)")
    package_id: str | None = Field(default=None, max_length=36, description="One package instead of a collection")
    reason: str = Field(min_length=1, max_length=2000, description="Why the library needs access")


class DecisionIn(BaseModel):
    why: str = Field(min_length=1, max_length=2000, description="Recorded in the decision event")


class TriggerIn(BaseModel):
    collection: str = Field(max_length=100)
    kind: Literal[TRIGGER_KINDS]  # type: ignore[valid-type]
    date: date
    evidence: str = Field(min_length=1, max_length=5000)


@router.get("/me", tags=["account"], summary="The caller's user and library")
def me(principal: Reader) -> dict[str, Any]:
    return principal.to_dict()


@router.get("/collections", tags=["holdings"], summary="Every collection, with the caller's library's standing")
def collections(request: Request, principal: Reader) -> list[dict[str, Any]]:
    return holdings.holdings(repo_of(request), principal)


@router.get("/collections/{key}/packages", tags=["holdings"], summary="Packages of a collection, with read rights")
def collection_packages(request: Request, key: str, principal: Reader, offset: Offset = 0,
                        limit: PageLimit = 100) -> dict[str, Any]:
    return holdings.collection_packages(repo_of(request), principal, key, offset=offset, limit=limit)


@router.get("/packages/{package_id}", tags=["holdings"], summary="One package and the caller's read right")
def package(request: Request, package_id: str, principal: Reader) -> dict[str, Any]:
    return holdings.package_detail(repo_of(request), principal, package_id)


@router.get("/packages/{package_id}/files", tags=["content"], summary="The package's files (needs a read right)")
def package_files(request: Request, package_id: str, principal: Reader, offset: Offset = 0,
                  limit: PageLimit = 500) -> dict[str, Any]:
    return holdings.package_files(repo_of(request), principal, package_id, offset=offset, limit=limit)


@router.get(
    "/packages/{package_id}/files/{path:path}", tags=["content"], response_class=Response,
    summary="Download one file (verified against the catalog sha256 before it is sent; HTTP Range supported)",
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Partial content"},
               416: {"description": "Range not satisfiable"}},
)
def download_file(request: Request, package_id: str, path: str, principal: Reader,
                  range_: Annotated[str | None, Header(alias="range")] = None,
                  if_range: Annotated[str | None, Header(alias="if-range")] = None) -> Response:
    return file_response(repo_of(request), principal, package_id, path, range_header=range_, if_range=if_range)


@router.get("/packages/{package_id}/zip", tags=["content"], response_class=Response,
            summary="The whole package (its BagIt bag) as a streamed zip",
            responses={200: {"content": {"application/zip": {}}}})
def download_zip(request: Request, package_id: str, principal: Reader) -> Response:
    return zip_response(repo_of(request), principal, package_id)


@router.post("/requests", tags=["requests"], status_code=201,
             summary="Ask for access to a collection or a package; the policy may approve at once")
def create_request(request: Request, body: AccessRequestIn, principal: Reader) -> dict[str, Any]:
    return requests.request_access(repo_of(request), principal, reason=body.reason, collection_key=body.collection,
                                   package_id=body.package_id)


@router.get("/requests", tags=["requests"], summary="Requests: the caller's library's, or all for staff")
def list_requests(request: Request, principal: Reader,
                  state: Annotated[Literal["pending", "approved", "denied"] | None, Query()] = None
                  ) -> list[dict[str, Any]]:
    library_id = None if principal.is_staff else principal.library_id
    return requests.list_requests(repo_of(request), library_id=library_id, state=state)


@router.get("/requests/{request_id}", tags=["requests"], summary="One request (another library's is not found)")
def get_request(request: Request, request_id: RowId, principal: Reader) -> dict[str, Any]:
    library_id = None if principal.is_staff else principal.library_id
    return requests.get_request(repo_of(request), request_id, library_id=library_id)


@router.post("/requests/{request_id}/approve", tags=["staff"], summary="Approve a pending request (staff)")
def approve(request: Request, request_id: RowId, body: DecisionIn, principal: Staff) -> dict[str, Any]:
    return requests.decide_request(repo_of(request), request_id, approve=True, by=principal.agent, why=body.why)


@router.post("/requests/{request_id}/deny", tags=["staff"], summary="Deny a pending request (staff)")
def deny(request: Request, request_id: RowId, body: DecisionIn, principal: Staff) -> dict[str, Any]:
    return requests.decide_request(repo_of(request), request_id, approve=False, by=principal.agent, why=body.why)


@router.get("/grants", tags=["requests"], summary="Active grants: the caller's library's, or all for staff")
def grants(request: Request, principal: Reader) -> list[dict[str, Any]]:
    library_id = None if principal.is_staff else principal.library_id
    return requests.list_grants(repo_of(request), library_id=library_id)


@router.get("/triggers", tags=["holdings"], summary="Recorded trigger events")
def list_triggers(request: Request, principal: Reader,
                  collection: Annotated[str | None, Query(max_length=100)] = None) -> list[dict[str, Any]]:
    return triggers.list_triggers(repo_of(request), collection)


@router.post("/triggers", tags=["staff"], status_code=201, summary="Record a trigger event (staff)")
def record_trigger(request: Request, body: TriggerIn, principal: Staff) -> dict[str, Any]:
    return triggers.record_trigger(repo_of(request), body.collection, kind=body.kind, occurred_on=body.date,
                                   evidence=body.evidence, recorded_by=principal.agent)


@router.get("/usage", tags=["usage"], summary="COUNTER-style usage for a month (a library sees only its own)")
def usage_report(request: Request, principal: Reader, month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
                 library: Annotated[str | None, Query(max_length=32)] = None) -> dict[str, Any]:
    if not principal.is_staff:
        if library not in (None, principal.library_code):
            raise AccessRefused("a library sees only its own usage")
        library = principal.library_code
    return usage.usage_report(repo_of(request), month, library_code=library)
