"""The access service as one ASGI application: JSON API, fixity API, portal, security headers.

Errors are translated here, once: a PreservationError becomes its HTTP status
(401, 403, 404, 409, 429, 503 …) with a JSON body under ``/api`` and a page
elsewhere; the body carries the error's code and message, never a traceback.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus, unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preservation.access.web import (
    account_pages, api, counter_api, dashboard, error_words, fixity, language, monitoring, portal, search_api,
    search_portal, staff, titles, versions_web,
)
from preservation.access.web.i18n import LanguageMiddleware
from preservation.access.web.auth import LoginRequired, ServiceConfig, portal_principal
from preservation.access.web.files import RangeNotSatisfiable, not_satisfiable
from preservation.access.web.pages import STATIC, render
from preservation.errors import (
    AccessRefused,
    AlreadyExists,
    AuthenticationFailed,
    ImportRejected,
    InvalidRequest,
    NotFound,
    NoVerifiedSource,
    PreservationError,
    StorageError,
    TooManyAttempts,
)
from preservation.http_metrics import RequestMetrics
from preservation.repository import Repository

SESSION_COOKIE = "preserve_session"
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Adds the security headers to every response that does not set its own (ASGI, streaming-safe)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if hsts:
            self.headers["strict-transport-security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in self.headers.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RefuseControlCharacters:
    """400 for any path or query that decodes to a control character (NUL included), before routing.

    No parameter is ever joined to a disk path, but a NUL still must not reach
    a database driver (PostgreSQL refuses it with an error, not a miss).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope["path"]) or \
                    any(b < 0x20 or b == 0x7F for b in query):
                refused = InvalidRequest("control characters are not allowed in URLs")
                response = JSONResponse({"error": refused.to_dict()}, status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


CREDENTIAL_PARAMETERS = ("api_key", "username")
SECRET_PARAMETERS = ("api_key",)  # masked wherever a URL is logged


def credential_name(raw_name: str) -> str | None:
    """The credential parameter a raw query name stands for, however it is spelled (``api%5Fkey``, ``API_KEY``)."""
    decoded = unquote_plus(raw_name, errors="replace").strip().lower()
    return decoded if decoded in CREDENTIAL_PARAMETERS else None


def ambiguous_credentials(query_string: bytes) -> str | None:
    """Why a query's credential parameters are ambiguous, or None.

    A credential must be sent once and spelled plainly: an encoded name
    (``api%5Fkey``) is decoded by the router and authenticates, so any other
    spelling is refused, and of two values one would be checked while the
    other is logged.
    """
    seen: set[str] = set()
    for field in query_string.decode("latin-1").split("&"):
        raw_name = field.partition("=")[0]
        name = credential_name(raw_name)
        if name is None:
            continue
        if raw_name != name:
            return f"the query parameter {name} must be spelled plainly, not encoded or in other case"
        if name in seen:
            return f"the query parameter {name} is given more than once"
        seen.add(name)
    return None


class RefuseAmbiguousCredentials:
    """400 (E112) before routing for a credential query parameter that is encoded, re-cased or repeated."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = ambiguous_credentials(scope.get("query_string", b""))
            if problem:
                response = JSONResponse({"error": InvalidRequest(problem).to_dict()}, status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_status(error: PreservationError) -> int:
    for cls, status in ((TooManyAttempts, 429), (AuthenticationFailed, 401), (AccessRefused, 403), (NotFound, 404),
                        (AlreadyExists, 409), (InvalidRequest, 400), (ImportRejected, 400),
                        (NoVerifiedSource, 503), (StorageError, 503)):
        if isinstance(error, cls):
            return status
    return 500


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status: int, code: str, message: str) -> Response:
    try:
        principal = portal_principal(request)
    except LoginRequired:
        principal = None
    return render(request, "error.html", principal, status=status, http_status=status, code=code, detail=message,
                  meaning=error_words.meaning(code))


def create_app(repo: Repository, config: ServiceConfig) -> FastAPI:
    app = FastAPI(
        title="preserve access service",
        summary="Dark content opened to entitled libraries, on demand; verified bytes only.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.repo = repo
    app.state.config = config
    app.include_router(api.router)
    app.include_router(fixity.router)
    app.include_router(portal.router)
    app.include_router(staff.router)
    app.include_router(dashboard.router)
    app.include_router(counter_api.router)
    app.include_router(search_api.router)
    app.include_router(search_portal.router)
    app.include_router(titles.router)
    app.include_router(monitoring.router)
    app.include_router(language.router)
    app.include_router(account_pages.router)
    app.include_router(versions_web.router)
    app.include_router(versions_web.portal_router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(SessionMiddleware, secret_key=config.secret, session_cookie=SESSION_COOKIE,
                       max_age=config.session_seconds, same_site="lax", https_only=config.cookie_secure)
    app.add_middleware(LanguageMiddleware, timezone_name=config.timezone)
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(RefuseAmbiguousCredentials)
    app.add_middleware(SecurityHeaders, hsts=config.cookie_secure)
    # outermost: requests refused by the checks above are counted too, under their route's template
    app.state.metrics_registry = monitoring.metrics_registry(repo)
    app.add_middleware(RequestMetrics, registry=app.state.metrics_registry, service="access", routes=app.routes)

    @app.exception_handler(PreservationError)
    async def preservation_error(request: Request, error: PreservationError) -> Response:
        status = http_status(error)
        if _is_api(request):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"error": error.to_dict()}, status_code=status, headers=headers)
        return _error_page(request, status, error.code, error.message)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, error: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(error.next_path, safe='/')}", status_code=303)

    @app.exception_handler(RangeNotSatisfiable)
    async def range_not_satisfiable(request: Request, error: RangeNotSatisfiable) -> Response:
        return not_satisfiable(error.size)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        wrapped = InvalidRequest(f"invalid request: {problems}")
        if _is_api(request):
            return JSONResponse({"error": wrapped.to_dict()}, status_code=422)
        return _error_page(request, 422, wrapped.code, wrapped.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if _is_api(request) or error.status_code == 405:
            return JSONResponse({"error": {"code": f"HTTP{error.status_code}", "message": str(error.detail)}},
                                status_code=error.status_code)
        return _error_page(request, error.status_code, f"HTTP{error.status_code}", str(error.detail))

    return app
