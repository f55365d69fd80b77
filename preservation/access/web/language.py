"""The language switch in the page header: remembers the reader's choice in a cookie, then goes back."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from preservation.access.web import i18n
from preservation.access.web.auth import safe_next
from preservation.errors import InvalidRequest

router = APIRouter(include_in_schema=False)
YEAR = 365 * 24 * 3600


@router.get("/language/{code}")
def choose_language(code: str, next: str | None = None) -> RedirectResponse:
    if code not in i18n.LANGUAGES:
        raise InvalidRequest(f"unknown language {code!r}; choose one of {', '.join(i18n.LANGUAGES)}")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(i18n.COOKIE, code, max_age=YEAR, httponly=True, samesite="lax")
    return response
