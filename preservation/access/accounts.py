"""Libraries, their users, API keys, and logging in.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed when
those change).  API keys are 256 random bits shown once; the catalog keeps
only their sha256, which is enough because a key cannot be guessed.  Failed
logins are counted per username *and* client address in the catalog, so the
limit holds across server processes and a flood against one account from one
address cannot lock its owner out from another.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from preservation.catalog.access_models import (
    ROLE_LIBRARY,
    ROLE_STAFF,
    AccessUser,
    ApiToken,
    Library,
    LoginFailure,
)
from preservation.catalog.models import utcnow
from preservation.errors import (
    AccessRefused,
    AlreadyExists,
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
)
from preservation.repository import Repository

LIBRARY_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is an attack, not a password

LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=15)

_hasher = PasswordHasher()
# verified against when the username is unknown, so both cases take the same time
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who is asking: one user of one library, as the web layer and library functions see them."""

    user_id: int
    username: str
    role: str
    library_id: int
    library_code: str
    library_name: str

    @property
    def is_staff(self) -> bool:
        return self.role == ROLE_STAFF

    @property
    def agent(self) -> str:
        """How events name this person."""
        return f"user:{self.username}"

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "library": self.library_code,
                "library_name": self.library_name}


def _principal(user: AccessUser) -> Principal:
    lib = user.library
    return Principal(user.id, user.username, user.role, lib.id, lib.code, lib.name)


# --- libraries -------------------------------------------------------------------


def parse_ip_ranges(values: Iterable[str]) -> list[str]:
    """Normalise CIDR ranges ('10.1.0.0/16', '2001:db8::/32', a single address); raises InvalidRequest."""
    out = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            out.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError as e:
            raise InvalidRequest(f"{value!r} is not an IP address or CIDR range ({e})") from e
    return out


def _library_dict(lib: Library, users: int = 0) -> dict[str, Any]:
    return {"code": lib.code, "name": lib.name, "contacts": lib.contacts or [], "ip_ranges": lib.ip_ranges or [],
            "active": lib.active, "users": users, "created_at": lib.created_at}


def add_library(
    repo: Repository, code: str, name: str, *, contacts: Iterable[str] = (), ip_ranges: Iterable[str] = ()
) -> dict[str, Any]:
    """Register a member library; raises InvalidRequest, AlreadyExists."""
    if not LIBRARY_CODE_RE.match(code or ""):
        raise InvalidRequest(f"library code {code!r} must be 1-32 letters, digits, '.', '_' or '-'")
    if not name.strip():
        raise InvalidRequest("a library needs a name")
    ranges = parse_ip_ranges(ip_ranges)
    with repo.catalog.session() as s:
        if s.execute(select(Library.id).where(Library.code == code)).scalar_one_or_none() is not None:
            raise AlreadyExists(f"a library with code {code!r} exists already")
        lib = Library(code=code, name=name.strip(), contacts=[c.strip() for c in contacts if c.strip()],
                      ip_ranges=ranges, active=True)
        s.add(lib)
        s.flush()
        return _library_dict(lib)


def get_library(session: Session, code: str) -> Library:
    lib = session.execute(select(Library).where(Library.code == code)).scalar_one_or_none()
    if lib is None:
        raise NotFound(f"no library with code {code!r}: see `preserve library list`")
    return lib


def list_libraries(repo: Repository) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        counts = dict(s.execute(select(AccessUser.library_id, func.count()).group_by(AccessUser.library_id)).all())
        return [_library_dict(lib, counts.get(lib.id, 0)) for lib in s.scalars(select(Library).order_by(Library.code))]


def address_allowed(ip_ranges: list[str], client_ip: str | None) -> bool:
    """True when the library sets no ranges, or ``client_ip`` falls in one of them."""
    if not ip_ranges:
        return True
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(r) for r in ip_ranges)


# --- users -----------------------------------------------------------------------


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidRequest(f"the password must have at most {MAX_PASSWORD} characters")


def add_user(
    repo: Repository, library_code: str, username: str, password: str, *, staff: bool = False
) -> dict[str, Any]:
    """Add a portal user to a library (``staff``: consortium staff).

    Raises InvalidRequest, AlreadyExists, NotFound.
    """
    if not USERNAME_RE.match(username or ""):
        raise InvalidRequest(f"username {username!r} must be 1-100 letters, digits, '.', '_', '@' or '-'")
    check_password_rules(password)
    password_hash = _hasher.hash(password)
    with repo.catalog.session() as s:
        lib = get_library(s, library_code)
        if s.execute(select(AccessUser.id).where(AccessUser.username == username)).scalar_one_or_none() is not None:
            raise AlreadyExists(f"a user named {username!r} exists already")
        user = AccessUser(library_id=lib.id, username=username, role=ROLE_STAFF if staff else ROLE_LIBRARY,
                          password_hash=password_hash, active=True)
        s.add(user)
        s.flush()
        return {"username": user.username, "role": user.role, "library": lib.code}


def list_users(repo: Repository, library_code: str | None = None) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        stmt = select(AccessUser).join(Library).order_by(Library.code, AccessUser.username)
        if library_code:
            stmt = stmt.where(Library.id == get_library(s, library_code).id)
        return [{"username": u.username, "role": u.role, "library": u.library.code, "active": u.active,
                 "last_login_at": u.last_login_at} for u in s.scalars(stmt)]


def _get_user(session: Session, username: str) -> AccessUser:
    user = session.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named {username!r}: see `preserve library user list`")
    return user


# --- API tokens --------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(repo: Repository, username: str, *, name: str = "", days: int | None = None) -> dict[str, Any]:
    """A new API key for ``username``; the key itself is only in the returned dict."""
    if days is not None and days <= 0:
        raise InvalidRequest("a key's lifetime must be a positive number of days")
    token = secrets.token_urlsafe(32)
    with repo.catalog.session() as s:
        user = _get_user(s, username)
        row = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token), prefix=token[:8],
                       expires_at=utcnow() + timedelta(days=days) if days else None)
        s.add(row)
        s.flush()
        return {"id": row.id, "username": user.username, "role": user.role, "name": name, "prefix": row.prefix,
                "expires_at": row.expires_at, "token": token}


def list_tokens(repo: Repository, username: str | None = None) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        stmt = select(ApiToken).join(AccessUser).order_by(ApiToken.id)
        if username:
            stmt = stmt.where(AccessUser.id == _get_user(s, username).id)
        return [{"id": t.id, "username": t.user.username, "name": t.name, "prefix": t.prefix,
                 "created_at": t.created_at, "expires_at": t.expires_at, "last_used_at": t.last_used_at,
                 "revoked_at": t.revoked_at} for t in s.scalars(stmt)]


def revoke_token(repo: Repository, token_id: int) -> dict[str, Any]:
    with repo.catalog.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no API key with id {token_id}: see `preserve library token list`")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return {"id": row.id, "username": row.user.username, "revoked_at": row.revoked_at}


# --- authentication ------------------------------------------------------------------


def _usable(user: AccessUser | None, client_ip: str | None) -> AccessUser:
    if user is None or not user.active or not user.library.active:
        raise AuthenticationFailed("unknown or disabled user")
    if not user.is_staff and not address_allowed(user.library.ip_ranges or [], client_ip):
        raise AccessRefused(f"library {user.library.code} reads only from its registered addresses, not {client_ip}")
    return user


def authenticate_token(repo: Repository, token: str, *, username: str | None = None,
                       client_ip: str | None = None) -> Principal:
    """The principal an API key belongs to; raises AuthenticationFailed, AccessRefused (address)."""
    if not token or len(token) > 200:
        raise AuthenticationFailed("no valid API key given")
    now = utcnow()
    with repo.catalog.session() as s:
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            raise AuthenticationFailed("the API key is unknown, expired or revoked")
        if username is not None and not secrets.compare_digest(row.user.username.encode(), username.encode()):
            raise AuthenticationFailed("the API key does not belong to that user")
        user = _usable(row.user, client_ip)
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now
        return _principal(user)


def _recent_failures(session: Session, username: str, client_ip: str, since: datetime) -> int:
    return session.execute(
        select(func.count()).select_from(LoginFailure).where(
            LoginFailure.username == username, LoginFailure.client_ip == client_ip, LoginFailure.occurred_at > since)
    ).scalar_one()


def authenticate_password(
    repo: Repository, username: str, password: str, client_ip: str, *,
    max_failures: int = LOGIN_MAX_FAILURES, window: timedelta = LOGIN_WINDOW,
) -> Principal:
    """Check a login; raises TooManyAttempts (before looking at the password), AuthenticationFailed, AccessRefused."""
    username = (username or "")[:100]
    client_ip = (client_ip or "unknown")[:64]
    now = utcnow()
    with repo.catalog.session() as s:
        if _recent_failures(s, username, client_ip, now - window) >= max_failures:
            raise TooManyAttempts(username=username, client_ip=client_ip, minutes=int(window.total_seconds() // 60))
        user = s.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
        ok = False
        if password and len(password) <= MAX_PASSWORD:
            try:
                ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
            except (VerificationError, InvalidHashError):
                ok = False
    if not ok:
        with repo.catalog.session() as s:
            s.add(LoginFailure(username=username, client_ip=client_ip, occurred_at=now))
            s.execute(delete(LoginFailure).where(LoginFailure.occurred_at < now - 4 * window))
        raise AuthenticationFailed("wrong username or password")
    with repo.catalog.session() as s:
        user = _usable(s.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none(),
                       client_ip)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = now
        s.execute(delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.client_ip == client_ip))
        return _principal(user)


def load_principal(repo: Repository, user_id: int, client_ip: str | None) -> Principal:
    """Re-check a logged-in user on every request: still active, still at an allowed address."""
    with repo.catalog.session() as s:
        return _principal(_usable(s.get(AccessUser, user_id), client_ip))
