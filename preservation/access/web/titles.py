"""Titles in the portal and the API: a collection's titles, a title's years, volumes, issues and articles,
and requests in library terms (a title, volumes of it, an issue, an article).

A request form posts its scope and what it names as text; the library
function parses every number strictly and refuses what it cannot read
(:func:`preservation.access.requests.request_in_library_terms`), so a form
and the JSON API are held to the same rules.  Forms carry the session's
CSRF token; a request is a POST answered with a redirect (303).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, StrictInt

from preservation.access import requests
from preservation.access.accounts import Principal
from preservation.access.rights import MAX_YEAR, MIN_YEAR
from preservation.access.title_view import MAX_ARTICLES, MAX_TITLES, collection_titles, title_page
from preservation.access.web.auth import api_principal, check_csrf, portal_principal, repo_of
from preservation.access.web.flash import confirm_request
from preservation.access.web.pages import render
from preservation.access.web.params import MAX_OFFSET, MAX_ROW_ID, Offset, RowId, WholeNumber

router = APIRouter()

User = Annotated[Principal, Depends(portal_principal)]
Reader = Annotated[Principal, Depends(api_principal)]
Year = Annotated[int | None, WholeNumber, Query(ge=MIN_YEAR, le=MAX_YEAR, description="The year shown")]
Undated = Annotated[bool, Query(description="The title's articles of no known year instead of a year's")]
ArticleLimit = Annotated[int, WholeNumber, Query(ge=1, le=MAX_ARTICLES, description="Articles per page")]
TitleLimit = Annotated[int, WholeNumber, Query(ge=1, le=MAX_TITLES, description="Titles per page")]
FormText = Annotated[str, Form(max_length=5000)]
FormPart = Annotated[str, Form(max_length=100)]


@router.get("/portal/collections/{key}/titles", include_in_schema=False)
def titles_page(request: Request, key: str, principal: User, offset: Offset = 0) -> Response:
    return render(request, "titles.html", principal,
                  page=collection_titles(repo_of(request), key, offset=offset, limit=MAX_TITLES))


@router.get("/portal/titles/{title_id}", include_in_schema=False)
def title(request: Request, title_id: RowId, principal: User, year: Year = None, undated: Undated = False,
          offset: Annotated[int, WholeNumber, Query(ge=0, le=MAX_OFFSET)] = 0) -> Response:
    page = title_page(repo_of(request), principal, title_id, year=year, undated=undated, offset=offset)
    return render(request, "title.html", principal, page=page)


@router.post("/portal/item-requests", include_in_schema=False)
def create_item_request(request: Request, principal: User, csrf: FormText = "", reason: FormText = "",
                        scope: Annotated[str, Form(max_length=16)] = "", title_id: FormPart = "",
                        year: FormPart = "", volume: FormPart = "", issue: FormPart = "", last_volume: FormPart = "",
                        doi: Annotated[str, Form(max_length=400)] = "", item_id: FormPart = "") -> Response:
    check_csrf(request, csrf)
    created = requests.request_in_library_terms(
        repo_of(request), principal, scope=scope, reason=reason, title_id=title_id or None, year=year or None,
        volume=volume, issue=issue, doi=doi or None, item_id=item_id or None, last_volume=last_volume or None)
    confirm_request(request, created)
    return RedirectResponse(f"/portal/requests#request-{created['id']}", status_code=303)


class ItemRequestIn(BaseModel):
    scope: Literal["title", "volume", "issue", "item"] = Field(
        description="A whole title, volumes of it (volume, last_volume), one issue of it, or one item")
    reason: str = Field(min_length=1, max_length=2000, description="Why the library needs access")
    title_id: StrictInt | None = Field(default=None, ge=1, le=MAX_ROW_ID, description="The title (title, issue)")
    year: StrictInt | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR, description="The issue's year")
    volume: str | None = Field(default=None, max_length=32,
                               description="The issue's volume (\"\" for none); of volumes, the first")
    last_volume: str | None = Field(default=None, max_length=32,
                                    description="Of volumes, the last (the first alone when left out)")
    issue: str | None = Field(default=None, max_length=32, description="The issue's number (\"\" for none)")
    doi: str | None = Field(default=None, max_length=400, description="The item's DOI (item)")
    item_id: StrictInt | None = Field(default=None, ge=1, le=MAX_ROW_ID, description="The item, if it has no DOI")


@router.get("/api/v1/collections/{key}/titles", tags=["holdings"],
            summary="A collection's titles with preserved items, with their first and last years")
def api_collection_titles(request: Request, key: str, principal: Reader, offset: Offset = 0,
                          limit: TitleLimit = MAX_TITLES) -> dict[str, Any]:
    return collection_titles(repo_of(request), key, offset=offset, limit=limit)


@router.get("/api/v1/titles/{title_id}", tags=["holdings"],
            summary="A title: its years, and one year's volumes, issues and articles with the caller's standing")
def api_title(request: Request, title_id: RowId, principal: Reader, year: Year = None, undated: Undated = False,
              offset: Annotated[int, WholeNumber, Query(ge=0, le=MAX_OFFSET)] = 0,
              limit: ArticleLimit = MAX_ARTICLES) -> dict[str, Any]:
    return title_page(repo_of(request), principal, title_id, year=year, undated=undated, offset=offset,
                      limit=limit)


@router.post("/api/v1/item-requests", tags=["requests"], status_code=201,
             summary="Ask for a title, its volumes (title_id, volume, last_volume), one issue (title_id, year, "
                     "volume, issue) or one item (doi or item_id)")
def api_item_request(request: Request, body: ItemRequestIn, principal: Reader) -> dict[str, Any]:
    return requests.request_in_library_terms(
        repo_of(request), principal, scope=body.scope, reason=body.reason, title_id=body.title_id, year=body.year,
        volume=body.volume, issue=body.issue, doi=body.doi, item_id=body.item_id, last_volume=body.last_volume)
