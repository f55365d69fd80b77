"""The JSON API of search and items: ``GET /api/v1/search`` and ``GET /api/v1/items/{doi}[/files/{path}]``.

A DOI holds ``/``, so both item routes take it with the ``path`` converter
(as is, or percent-encoded: the router decodes ``%2F``); where the DOI ends
and ``/files/`` begins is settled against the catalog
(:func:`preservation.access.items.split_item_path`).  A file is served by the
same verified, Range-aware response as a package's file, under the same read
right, and counted as a COUNTER request of its item.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from preservation.access import usage
from preservation.access.accounts import Principal
from preservation.access.items import item_detail, item_file
from preservation.access.web.auth import api_principal, repo_of
from preservation.access.web.files import file_response
from preservation.access.web.params import WholeNumber
from preservation.catalog.access_models import SEARCH_API
from preservation.search import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_QUERY, MAX_YEAR, MIN_YEAR, make_query
from preservation.search import search as run_search

router = APIRouter(prefix="/api/v1")

Reader = Annotated[Principal, Depends(api_principal)]
Words = Annotated[str | None, Query(max_length=MAX_QUERY)]
IdentifierText = Annotated[str | None, Query(max_length=300)]
Year = Annotated[int | None, WholeNumber, Query(ge=MIN_YEAR, le=MAX_YEAR, description="Only items of this year")]
SearchOffset = Annotated[int, WholeNumber, Query(ge=0, le=MAX_OFFSET, description="Hits to skip")]
SearchLimit = Annotated[int, WholeNumber, Query(ge=1, le=MAX_LIMIT, description="Hits per page")]


@router.get(
    "/search", tags=["search"],
    summary="Titles and items by words of their titles (Chinese too), by ISSN, ISBN, CN or DOI, author and year",
    description=(
        "Every word of `q` (split on white space) must occur in a title; words of two characters and more, "
        "Chinese included (`物理` finds `中国物理学报`); a `q` that is a valid DOI, ISSN, ISBN or CN number is "
        "an exact lookup. Give `q`, an identifier or `author`. Each hit carries the caller's library's "
        "`standing`: `read`, `request` (the policy would approve a request at once) or `dark` (staff decide). "
        "Totals are counted up to 1000 (`total_exact` false beyond)."),
)
def search(request: Request, principal: Reader, q: Words = None, issn: IdentifierText = None,
           isbn: IdentifierText = None, cn: IdentifierText = None, doi: IdentifierText = None,
           author: Words = None, year: Year = None, offset: SearchOffset = 0,
           limit: SearchLimit = DEFAULT_LIMIT) -> dict[str, Any]:
    query = make_query(q, issn=issn, isbn=isbn, cn=cn, doi=doi, author=author, year=year, offset=offset,
                       limit=limit)
    result = run_search(repo_of(request), query, library_id=principal.library_id)
    usage.record_search(repo_of(request), principal, query, channel=SEARCH_API,
                        client=usage.Client.from_request(request))
    return result


@router.get(
    "/items/{doi:path}/files/{path:path}", tags=["content"], response_class=Response,
    summary="Download one file of an item (verified against the catalog sha256; HTTP Range supported)",
    description="When the whole of `{doi}/files/{path}` is the DOI of an item (a DOI may hold `/files/`), "
                "the answer is that item, as `GET /api/v1/items/{doi}` gives it.",
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Partial content"},
               416: {"description": "Range not satisfiable"}},
)
def download_item_file(request: Request, doi: str, path: str, principal: Reader,
                       range_: Annotated[str | None, Header(alias="range")] = None,
                       if_range: Annotated[str | None, Header(alias="if-range")] = None) -> Response:
    repo = repo_of(request)
    package_id, file_path, item_doi = item_file(repo, doi, path)
    if file_path is None:  # a DOI that holds "/files/" itself: its item
        return JSONResponse(jsonable_encoder(item_detail(repo, principal, item_doi)))
    return file_response(repo, principal, package_id, file_path, range_header=range_, if_range=if_range,
                         exact=False)


@router.get(
    "/items/{doi:path}", tags=["content"],
    summary="One item by DOI: metadata, the caller's standing, and its files (sizes, sha256) when readable",
)
def item(request: Request, doi: str, principal: Reader) -> dict[str, Any]:
    return item_detail(repo_of(request), principal, doi)
