"""The library portal: log in, see holdings, ask for access, follow requests, browse and download.

Every route but the login page needs a session (``portal_principal``); every
form carries the session's CSRF token; every state change is a POST answered
with a redirect (303) so a reload never repeats it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import RedirectResponse, Response

from preservation.access import holdings, requests
from preservation.access.accounts import Principal, authenticate_password
from preservation.access.payload_tree import package_tree
from preservation.access.version_view import package_versions
from preservation.access.web.account_pages import login_refused
from preservation.access.web.auth import (
    check_csrf,
    client_ip,
    config_of,
    portal_principal,
    repo_of,
    safe_next,
    start_session,
)
from preservation.access.web.files import file_response, zip_response
from preservation.access.web.flash import confirm, confirm_request
from preservation.access.web.params import Offset
from preservation.access.web.pages import render
from preservation.errors import AuthenticationFailed, TooManyAttempts

router = APIRouter(include_in_schema=False)

User = Annotated[Principal, Depends(portal_principal)]
FormText = Annotated[str, Form(max_length=5000)]


@router.get("/")
def root() -> Response:
    return RedirectResponse("/portal", status_code=303)


@router.get("/login")
def login_page(request: Request, next: Annotated[str, Query(max_length=2000)] = "") -> Response:
    return render(request, "login.html", None, next=safe_next(next))


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=100)] = "",
          password: Annotated[str, Form(max_length=1024)] = "", csrf: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    check_csrf(request, csrf)
    config = config_of(request)
    try:
        principal = authenticate_password(repo_of(request), username, password, client_ip(request),
                                          limits=config.login_limits)
    except (TooManyAttempts, AuthenticationFailed) as e:  # locked (until when), disabled or refused
        return login_refused(request, e, next, username)
    start_session(request, principal)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: FormText = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    confirm(request, "logged_out")
    return RedirectResponse("/login", status_code=303)


@router.get("/portal")
def home(request: Request, principal: User) -> Response:
    return render(request, "holdings.html", principal, collections=holdings.holdings(repo_of(request), principal))


@router.get("/portal/collections/{key}")
def collection(request: Request, key: str, principal: User, offset: Offset = 0) -> Response:
    page = holdings.collection_packages(repo_of(request), principal, key, offset=offset, limit=100)
    return render(request, "collection.html", principal, page=page)


@router.post("/portal/requests")
def create_request(request: Request, principal: User, csrf: FormText = "", reason: FormText = "",
                   collection: Annotated[str, Form(max_length=100)] = "",
                   package_id: Annotated[str, Form(max_length=36)] = "") -> Response:
    check_csrf(request, csrf)
    created = requests.request_access(repo_of(request), principal, reason=reason, collection_key=collection or None,
                                      package_id=package_id or None)
    confirm_request(request, created)
    return RedirectResponse(f"/portal/requests#request-{created['id']}", status_code=303)


@router.get("/portal/requests")
def my_requests(request: Request, principal: User) -> Response:
    repo = repo_of(request)
    return render(request, "requests.html", principal,
                  requests=requests.list_requests(repo, library_id=principal.library_id),
                  grants=requests.list_grants(repo, library_id=principal.library_id))


@router.get("/portal/packages/{package_id}")
def package(request: Request, package_id: str, principal: User, path: str = "", q: str = "", page: str = "",
            tags: str = "") -> Response:
    """One folder of the package's content (``path``), or a file name search (``q``), a page at a time; staff may
    add the bag's tag files (``tags=1``).  The parameters are text, checked by ``package_tree`` (a 400)."""
    repo = repo_of(request)
    tree = package_tree(repo, principal, package_id, folder=path, query=q, page=page, tag_files=tags)
    listed = package_versions(repo, principal, package_id) if tree["version"]["versions"] > 1 else None
    return render(request, "package.html", principal, page=tree, versions=listed)


@router.get("/portal/packages/{package_id}/zip")
def package_zip(request: Request, package_id: str, principal: User) -> Response:
    return zip_response(repo_of(request), principal, package_id)


@router.get("/portal/packages/{package_id}/files/{path:path}")
def download(request: Request, package_id: str, path: str, principal: User,
             range_: Annotated[str | None, Header(alias="range")] = None,
             if_range: Annotated[str | None, Header(alias="if-range")] = None) -> Response:
    return file_response(repo_of(request), principal, package_id, path, range_header=range_, if_range=if_range,
                         inline=True)
