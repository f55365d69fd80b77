"""The portal's account pages: a refused log-in explained, "forgot password", and the reset link's page.

A refused log-in says what a reader may know: a lock (after too many failed log-ins) and until when,
the same for a username that does not exist; "disabled" only to who gave the right password.  The
locked user is e-mailed once per lock, from a background task after the answer, so an attacker learns
nothing from the time it takes.  "Forgot password" answers the same whether or not the user exists and
mails the link after the answer, for the same reason; links start at ``notifications.portal_url``,
never at the Host header a client sent.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from preservation.access import notifications, password_reset
from preservation.access.accounts import MAX_PASSWORD, MIN_PASSWORD
from preservation.access.password_reset import ResetLink
from preservation.access.web import i18n
from preservation.access.web.auth import check_csrf, client_ip, repo_of, safe_next
from preservation.access.web.i18n import gettext
from preservation.access.web.pages import render
from preservation.errors import AccessRefused, AccountDisabled, AuthenticationFailed, InvalidRequest, TooManyAttempts
from preservation.repository import Repository

router = APIRouter(include_in_schema=False)
log = logging.getLogger("preserve.access")

Token = Annotated[str, Query(max_length=200)]


def _tell_locked(repo: Repository, username: str, until) -> None:
    try:
        if notifications.account_locked(repo, username, until):
            notifications.deliver_due(repo)
    except Exception:  # a background task: the reader has had the answer; the scheduler retries queued mail
        log.exception("the lockout notice could not be queued or sent")


def login_refused(request: Request, error: AccessRefused, next_path: str, username: str) -> Response:
    """The log-in page again, saying why in the reader's language: locked (until when), disabled, or refused."""
    if isinstance(error, TooManyAttempts):
        until = error.params.get("until")
        text = gettext("This account is locked after too many failed log-ins, until %(until)s. Try again then, "
                       "or ask for a password reset link.", until=i18n.format_when(until))
        response = render(request, "login.html", None, status=429, next=safe_next(next_path), error=text,
                          locked=True)
        if until is not None:
            response.background = BackgroundTask(_tell_locked, repo_of(request), username[:100], until)
        return response
    if isinstance(error, AccountDisabled):
        text = gettext("This account is disabled. Ask your library's administrator or the consortium office "
                       "to enable it again.")
        return render(request, "login.html", None, status=403, next=safe_next(next_path), error=text)
    return render(request, "login.html", None, status=401, next=safe_next(next_path),
                  error=gettext("Log-in refused: wrong username or password (or this account may not log in "
                                "from your address)."))


def _reset_offered(request: Request) -> bool:
    return repo_of(request).settings.notifications.enabled


@router.get("/login/forgot")
def forgot_page(request: Request) -> Response:
    return render(request, "forgot.html", None, offered=_reset_offered(request))


def _send(repo: Repository, link: ResetLink, language: str) -> None:
    try:
        notifications.send_reset_link(repo, link, language)
    except (OSError, ValueError, smtplib.SMTPException) as e:
        log.warning("the password reset link for %s was not sent: %s", link.username, type(e).__name__)


@router.post("/login/forgot")
def forgot(request: Request, username: Annotated[str, Form(max_length=100)] = "",
           csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, csrf)
    repo = repo_of(request)
    if not _reset_offered(request):
        return render(request, "forgot.html", None, status=503, offered=False)
    try:
        link = password_reset.request_reset(repo, username.strip(), client_ip(request))
    except TooManyAttempts as e:
        return render(request, "forgot.html", None, status=429, offered=True, error=gettext(
            "Too many reset requests from your address: try again in %(minutes)s minutes.",
            minutes=e.params.get("minutes", 60)))
    response = render(request, "forgot.html", None, offered=True, sent=True,
                      minutes=repo.settings.notifications.reset_minutes)
    if link is not None:
        response.background = BackgroundTask(_send, repo, link, i18n.current_language())
    return response


@router.get("/login/reset")
def reset_page(request: Request, token: Token = "") -> Response:
    try:
        username = password_reset.check_token(repo_of(request), token)
    except AuthenticationFailed:
        return render(request, "reset.html", None, status=400, token="", username="", invalid=True)
    return render(request, "reset.html", None, token=token, username=username, invalid=False)


@router.post("/login/reset")
def reset(request: Request, token: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1024)] = "",
          confirm: Annotated[str, Form(max_length=1024)] = "",
          csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, csrf)
    repo = repo_of(request)
    try:
        username = password_reset.check_token(repo, token)
    except AuthenticationFailed:
        return render(request, "reset.html", None, status=400, token="", username="", invalid=True)
    problem = None
    if password != confirm:
        problem = gettext("The two passwords differ: type the same new password twice.")
    else:
        try:
            password_reset.reset_password(repo, token, password)
        except InvalidRequest:
            problem = gettext("The new password must have between %(min)s and %(max)s characters.",
                              min=MIN_PASSWORD, max=MAX_PASSWORD)
        except AuthenticationFailed:
            return render(request, "reset.html", None, status=400, token="", username="", invalid=True)
    if problem:
        return render(request, "reset.html", None, status=400, token=token, username=username, invalid=False,
                      error=problem)
    request.session.clear()
    return RedirectResponse("/login?reset=done", status_code=303)
