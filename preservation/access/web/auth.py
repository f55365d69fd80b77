"""Who is calling: API keys for the JSON API, signed session cookies for the portal, CSRF tokens.

The JSON API (``/api/v1``) accepts only ``Authorization: Bearer <key>``, never
cookies, so a page on another site cannot make a browser call it.  The portal
uses a signed, HttpOnly, SameSite=Lax session cookie and a per-session CSRF
token that every form must send back.  Each request re-reads the user from
the catalog, so disabling a user or library, or moving outside a library's
address ranges, takes effect at once; a session also carries the user's
session epoch, so one ended by disabling or a password reset stays ended.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, Request

from preservation.access.accounts import Principal, authenticate_token, load_principal
from preservation.access.login_limits import LOGIN_ACCOUNT_MAX_FAILURES, LOGIN_MAX_FAILURES, LOGIN_WINDOW, LoginLimits
from preservation.catalog.access_models import SCOPE_READ, SCOPE_STAFF
from preservation.errors import AccessRefused, AuthenticationFailed
from preservation.repository import Repository

SESSION_USER = "uid"
SESSION_CSRF = "csrf"
SESSION_LOGIN_AT = "at"
SESSION_EPOCH = "ep"  # the user's session epoch at login: disabling or a password reset ends the session


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of one running access service."""

    secret: str
    cookie_secure: bool = True  # False only for plain-HTTP tests on 127.0.0.1
    session_seconds: int = 8 * 3600  # absolute lifetime of a login
    login_max_failures: int = LOGIN_MAX_FAILURES  # per username and address
    login_account_max_failures: int = LOGIN_ACCOUNT_MAX_FAILURES  # per username, from any address
    login_window: timedelta = LOGIN_WINDOW
    fixity_page_size: int = 20
    timezone: str = "Asia/Shanghai"  # the portal's times are shown in this zone, named

    @property
    def login_limits(self) -> LoginLimits:
        return LoginLimits(self.login_max_failures, self.login_account_max_failures, self.login_window)


class LoginRequired(Exception):
    """The portal needs a logged-in user; the handler redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def repo_of(request: Request) -> Repository:
    return request.app.state.repo


def config_of(request: Request) -> ServiceConfig:
    return request.app.state.config


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def api_principal(request: Request) -> Principal:
    """The owner of the bearer key; raises AuthenticationFailed (401), AccessRefused (address)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("send an API key as 'Authorization: Bearer <key>' "
                                   "(an operator creates one with `preserve library token create`)")
    return authenticate_token(repo_of(request), token.strip(), scopes=(SCOPE_READ, SCOPE_STAFF),
                              client_ip=client_ip(request))


def portal_principal(request: Request) -> Principal:
    """The logged-in user; raises LoginRequired when there is none or the login is too old."""
    uid = request.session.get(SESSION_USER)
    login_at = request.session.get(SESSION_LOGIN_AT)
    if not isinstance(uid, int) or not isinstance(login_at, (int, float)):
        raise LoginRequired(request.url.path)
    if time.time() - login_at > config_of(request).session_seconds:
        request.session.clear()
        raise LoginRequired(request.url.path)
    epoch = request.session.get(SESSION_EPOCH, 0)
    try:
        return load_principal(repo_of(request), uid, client_ip(request), epoch if isinstance(epoch, int) else -1)
    except AuthenticationFailed:
        request.session.clear()
        raise LoginRequired(request.url.path) from None


def start_session(request: Request, principal: Principal) -> None:
    """A fresh session for a new login (nothing carried over from before, new CSRF token)."""
    request.session.clear()
    request.session[SESSION_USER] = principal.user_id
    request.session[SESSION_LOGIN_AT] = int(time.time())
    request.session[SESSION_EPOCH] = principal.session_epoch
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Raise AccessRefused (403) unless the form sent back this session's CSRF token."""
    expected = request.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not submitted or \
            not secrets.compare_digest(expected.encode(), submitted.encode("utf-8", "surrogateescape")):
        raise AccessRefused("the form's security token is missing or out of date: reload the page and submit again")


def require_staff(principal: Principal) -> Principal:
    """Raise AccessRefused unless ``principal`` may take staff decisions (a staff login or staff key)."""
    if not principal.is_staff:
        raise AccessRefused("only consortium staff may do this")
    if not principal.may_decide:
        raise AccessRefused(f"this API key's scope is {principal.scope}: staff decisions need a staff key "
                            "(`preserve library token create USER --scope staff`)")
    return principal


def api_staff(principal: Principal = Depends(api_principal)) -> Principal:
    return require_staff(principal)


def portal_staff(principal: Principal = Depends(portal_principal)) -> Principal:
    return require_staff(principal)


def reader_zone(principal: Principal | None) -> str | None:
    """The time zone a reader's pages show: their library's, when set; staff and visitors see the setting's."""
    if principal is None or principal.is_staff:
        return None
    return principal.timezone


def safe_next(target: str | None) -> str:
    """A post-login redirect target that stays on this site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target \
            or any(ord(ch) < 0x20 for ch in target):
        return "/portal"
    return target
