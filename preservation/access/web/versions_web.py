"""Versions of a package over HTTP: the JSON API and the portal's page of one version's changes.

``GET /api/v1/packages/{id}/versions`` lists the versions (paged), and
``GET /api/v1/packages/{id}/versions/{n}/changes`` what version ``n``
added, changed, removed and renamed (paged, ``kind`` to keep one kind);
the portal shows the same on ``/portal/packages/{id}/versions/{n}``.  Thin
layers over :mod:`preservation.access.version_view`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from preservation.access.accounts import Principal
from preservation.access.holdings import MAX_PAGE
from preservation.access.version_view import MAX_VERSION, package_versions, version_changes
from preservation.access.web.auth import api_principal, portal_principal, repo_of
from preservation.access.web.pages import render
from preservation.access.web.params import Offset, PageLimit, WholeNumber

router = APIRouter(prefix="/api/v1")
portal_router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(api_principal)]
User = Annotated[Principal, Depends(portal_principal)]
Number = Annotated[int, WholeNumber, Path(ge=1, le=MAX_VERSION, description="The version's number (1 is the first)")]
Kind = Annotated[Literal["added", "changed", "removed", "renamed"] | None,
                 Query(description="Only changes of this kind")]
PORTAL_PAGE = 200


@router.get("/packages/{package_id}/versions", tags=["holdings"],
            summary="The versions of a package, oldest first: when each was delivered and what changed in it (counts)",
            description="Any version's id names the package. `reads` is the version the caller's library reads "
                        "(\"as of\" its entitled period); `changes_listed` says whose changed paths it may list.")
def versions(request: Request, package_id: str, principal: Reader, offset: Offset = 0,
             limit: PageLimit = 100) -> dict[str, Any]:
    return package_versions(repo_of(request), principal, package_id, offset=offset, limit=limit)


@router.get("/packages/{package_id}/versions/{number}/changes", tags=["content"],
            summary="The files version n added, changed, removed and renamed against the version before (paged)",
            description="Of version 1, every payload file is added. A library needs a read right, and sees the "
                        "versions up to the one it reads.")
def changes(request: Request, package_id: str, number: Number, principal: Reader, kind: Kind = None,
            offset: Offset = 0, limit: PageLimit = MAX_PAGE) -> dict[str, Any]:
    return version_changes(repo_of(request), principal, package_id, number, kind=kind, offset=offset, limit=limit)


@portal_router.get("/portal/packages/{package_id}/versions/{number}")
def changes_page(request: Request, package_id: str, number: Number, principal: User, kind: Kind = None,
                 offset: Offset = 0) -> Response:
    repo = repo_of(request)
    page = version_changes(repo, principal, package_id, number, kind=kind, offset=offset, limit=PORTAL_PAGE)
    listed = package_versions(repo, principal, package_id, offset=0, limit=MAX_PAGE)
    return render(request, "version_changes.html", principal, page=page, listed=listed, kind=kind)
