"""``/api/v2/file/…``: the Archivematica Storage Service routes Artefactual's ``fixity`` tool calls.

Authenticated as the Storage Service does, by ``username`` and ``api_key``
query parameters; the key must be a staff user's ``fixity`` key, which can
do nothing else (keys in URLs end up in logs and browser histories).  Pagination links
(``meta.next``) are paths from the server root that carry both parameters,
because the tool appends them to its base URL as they are.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from preservation.access import fixity_api
from preservation.access.accounts import Principal, authenticate_token
from preservation.access.web.auth import client_ip, config_of, repo_of
from preservation.access.web.params import Offset, WholeNumber
from preservation.catalog.access_models import SCOPE_FIXITY
from preservation.errors import AccessRefused, NotFound

router = APIRouter(prefix="/api/v2", tags=["fixity (Archivematica Storage Service subset)"])


def fixity_principal(request: Request, username: Annotated[str, Query(max_length=100)] = "",
                     api_key: Annotated[str, Query(max_length=200)] = "") -> Principal:
    principal = authenticate_token(repo_of(request), api_key, scopes=(SCOPE_FIXITY,), username=username,
                                   client_ip=client_ip(request))
    if not principal.is_staff:
        raise AccessRefused("the fixity API is for consortium staff")
    return principal


Caller = Annotated[Principal, Depends(fixity_principal)]


def _package_id(text: str) -> str:
    """The canonical form of a UUID path parameter; anything else is simply not found."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise NotFound(f"no package {text!r}") from None


@router.get("/file/", summary="Packages, as Storage Service files (paginated)")
def list_files(request: Request, caller: Caller, username: Annotated[str, Query()] = "",
               api_key: Annotated[str, Query()] = "", offset: Offset = 0,
               limit: Annotated[int | None, WholeNumber, Query(ge=1, le=1000)] = None) -> dict[str, Any]:
    limit = limit or config_of(request).fixity_page_size
    total, objects = fixity_api.list_aips(repo_of(request), offset=offset, limit=limit)

    def page(at: int) -> str:
        query = urlencode({"username": username, "api_key": api_key, "limit": limit, "offset": at})
        return f"{fixity_api.API_ROOT}/file/?{query}"

    return {
        "meta": {"limit": limit, "offset": offset, "total_count": total,
                 "next": page(offset + limit) if offset + limit < total else None,
                 "previous": page(max(0, offset - limit)) if offset > 0 else None},
        "objects": objects,
    }


@router.get("/file/{package_id}/", summary="One package, as a Storage Service file")
def get_file(request: Request, package_id: str, caller: Caller) -> dict[str, Any]:
    return fixity_api.get_aip(repo_of(request), _package_id(package_id))


@router.get("/file/{package_id}/check_fixity/", summary="Audit every copy of the package now")
def check_fixity(request: Request, package_id: str, caller: Caller) -> dict[str, Any]:
    return fixity_api.check_fixity(repo_of(request), _package_id(package_id), agent=f"fixity-api:{caller.username}")
