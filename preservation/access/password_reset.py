"""Password reset by a single-use, expiring link: made for the "forgot password" page or by an operator.

A reset token is 256 random bits; the catalog keeps only its sha256, so a copy of the catalog opens no
account.  A token works once, for ``notifications.reset_minutes`` (30 by default), and only while its
user is enabled; using it sets the new password (the same rules and argon2id hash as any password),
spends every other open token of the user and ends the user's portal sessions.

The "forgot password" request answers the same whether or not the username exists, is disabled or has
no address: :func:`request_reset` returns the link to mail, or None, and the web layer shows one
message either way and mails in the background so that the answer takes the same time.  It is rate
limited per address (``reset_requests_per_hour``, refused with E805 whoever is named) and per user
(``resets_per_hour`` links, beyond which requests are silently dropped).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from preservation.access.accounts import USERNAME_RE, end_sessions, hash_password
from preservation.access.login_limits import Count, count_attempt, locked_until
from preservation.catalog.access_models import AccessUser, LoginCounter, PasswordReset
from preservation.catalog.models import utcnow
from preservation.errors import AuthenticationFailed, NotFound, TooManyResetRequests
from preservation.repository import Repository

RESET_PATH = "/login/reset"
RESET_COUNTER = "reset:"  # the login counters' username for reset requests per address (':' is in no username)
HOUR = timedelta(hours=1)
INVALID_LINK = "this password reset link is unknown, used or expired: ask for a new one"


@dataclass(frozen=True)
class ResetLink:
    """A new reset token and who it is for (the token exists only here, never in the catalog)."""

    token: str
    username: str
    email: str | None
    language: str | None  # the user's library's mail language
    expires_at: datetime

    def url(self, portal_url: str | None) -> str:
        """The link to send: ``portal_url`` + the reset page (just the path when no portal address is set)."""
        return f"{portal_url or ''}{RESET_PATH}?token={self.token}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _new_link(session: Session, user: AccessUser, client_ip: str, now: datetime, minutes: int) -> ResetLink:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=minutes)
    session.add(PasswordReset(user_id=user.id, token_hash=_hash(token), created_at=now, expires_at=expires,
                              client_ip=client_ip[:64]))
    return ResetLink(token, user.username, user.email, user.library.language, expires)


def create_reset(repo: Repository, username: str, *, client_ip: str = "operator") -> ResetLink:
    """An operator's reset link for ``username`` (``preserve library user reset-password``).

    Raises NotFound for an unknown user; a disabled user gets a link that will not work until enabled.
    """
    with repo.catalog.session() as s:
        user = s.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
        if user is None:
            raise NotFound(f"no user named {username!r}: see `preserve library user list`")
        return _new_link(s, user, client_ip, utcnow(), repo.settings.notifications.reset_minutes)


def request_reset(repo: Repository, username: str, client_ip: str) -> ResetLink | None:
    """The "forgot password" request: a link to mail, or None (unknown, disabled, no address, too many).

    Raises TooManyResetRequests when ``client_ip`` asked too often, whatever the username.
    """
    settings = repo.settings.notifications
    now = utcnow()
    client_ip = (client_ip or "unknown")[:64]
    with repo.catalog.session() as s:
        count: Count = count_attempt(s, RESET_COUNTER, client_ip, now, HOUR)
        s.execute(delete(LoginCounter).where(LoginCounter.username == RESET_COUNTER,
                                             LoginCounter.window_start < now - 4 * HOUR))
        if count.attempts > settings.reset_requests_per_hour:
            _, minutes = locked_until(count, HOUR, now)
            raise TooManyResetRequests(client_ip=client_ip, minutes=minutes)
    if not USERNAME_RE.fullmatch(username or "") or not settings.enabled:
        return None
    with repo.catalog.session() as s:
        user = s.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
        if user is None or not user.active or not user.library.active or not user.email:
            return None
        recent = s.execute(select(func.count()).select_from(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.created_at > now - HOUR)).scalar_one()
        if recent >= settings.resets_per_hour:
            return None
        return _new_link(s, user, client_ip, now, settings.reset_minutes)


def _open_reset(session, token: str, now: datetime) -> PasswordReset:
    if not token or len(token) > 200:
        raise AuthenticationFailed(INVALID_LINK)
    row = session.execute(select(PasswordReset).where(PasswordReset.token_hash == _hash(token))
                          .with_for_update()).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise AuthenticationFailed(INVALID_LINK)
    user = session.get(AccessUser, row.user_id)
    if user is None or not user.active or not user.library.active:
        raise AuthenticationFailed(INVALID_LINK)
    return row


def check_token(repo: Repository, token: str) -> str:
    """The username a working reset token is for; raises AuthenticationFailed (unknown, used, expired)."""
    with repo.catalog.session() as s:
        row = _open_reset(s, token, utcnow())
        return s.get(AccessUser, row.user_id).username


def reset_password(repo: Repository, token: str, password: str) -> str:
    """Set a new password with a reset token; returns the username.

    The token is spent, with every other open token of the user, and the user's sessions end.  Raises
    AuthenticationFailed (the token), InvalidRequest (the password rules; the token stays usable).
    """
    password_hash = hash_password(password)  # ~0.2 s, outside the transaction
    now = utcnow()
    with repo.catalog.session() as s:
        row = _open_reset(s, token, now)
        user = s.get(AccessUser, row.user_id)
        user.password_hash = password_hash
        end_sessions(user)
        s.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                  .values(used_at=now))
        return user.username
