"""The portal's search: a results page with each hit's standing, and an item's page (files, request, download)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from preservation.access import usage
from preservation.access.accounts import Principal
from preservation.access.items import item_detail
from preservation.access.web.auth import portal_principal, repo_of
from preservation.access.web.i18n import gettext
from preservation.access.web.pages import render
from preservation.access.web.params import WholeNumber
from preservation.catalog.access_models import SEARCH_PORTAL
from preservation.errors import InvalidRequest
from preservation.search import DEFAULT_LIMIT, MAX_OFFSET, MAX_QUERY, make_query, search

router = APIRouter(include_in_schema=False)

User = Annotated[Principal, Depends(portal_principal)]


@router.get("/portal/search")
def search_page(request: Request, principal: User, q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
                offset: Annotated[int, WholeNumber, Query(ge=0, le=MAX_OFFSET)] = 0) -> Response:
    if not q.strip():
        return render(request, "search.html", principal, q=q, result=None)
    try:
        query = make_query(q, offset=offset, limit=DEFAULT_LIMIT)
    except InvalidRequest as e:
        return render(request, "search.html", principal, status=400, q=q, result=None,
                      error=gettext("The search words could not be used: %(detail)s", detail=e.message))
    result = search(repo_of(request), query, library_id=principal.library_id)
    usage.record_search(repo_of(request), principal, query, channel=SEARCH_PORTAL,
                        client=usage.Client.from_request(request))
    return render(request, "search.html", principal, q=q, result=result, offset=offset, limit=DEFAULT_LIMIT)


@router.get("/portal/items/{doi:path}")
def item_page(request: Request, doi: str, principal: User) -> Response:
    return render(request, "item.html", principal, item=item_detail(repo_of(request), principal, doi))
