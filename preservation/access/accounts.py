"""Libraries, their users, API keys, and logging in.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed when
those change).  API keys are 256 random bits shown once; the catalog keeps
only their sha256, which is enough because a key cannot be guessed.

Each key has a scope, least privilege by default:

* ``read`` — the JSON API as its user may use it (a library's reader: its
  holdings, content, requests and usage; staff: every library's, read-only);
* ``staff`` — also staff decisions (approve, deny, record a trigger); staff users only;
* ``fixity`` — only the read-only fixity API (``/api/v2``), whose clients put
  the key in URLs; staff users only.  No other scope is accepted there, so a
  key that can decide never travels in a URL.

Login attempts are counted before the password is checked
(:mod:`preservation.access.login_limits`); a success clears its address's
count and gives the account its attempt back.  Only the right password of a
disabled user is told it is disabled (``AccountDisabled``).

A library has a contact address (decisions and expiring grants are mailed
there), a time zone (its readers' pages; none: the ``access_timezone``
setting) and a mail language (Chinese unless English).  A user has an e-mail
address (reset links, lockout notices) and a session epoch: a portal session
is valid only while it carries the current one, and disabling the user or
resetting the password moves it on.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Collection, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from preservation.catalog.access_models import (
    ROLE_LIBRARY,
    ROLE_STAFF,
    SCOPE_FIXITY,
    SCOPE_READ,
    SCOPE_STAFF,
    SCOPES,
    AccessUser,
    ApiToken,
    Library,
)
from preservation.access.localisation import CHINESE, ENGLISH, LANGUAGES, valid_timezone
from preservation.access.login_limits import (
    LoginLimits,
    forgive_attempt,
    refuse_over_limit,
    reserve_attempt,
    unknown_names,
)
from preservation.catalog.models import utcnow
from preservation.errors import (
    AccessRefused,
    AccountDisabled,
    AlreadyExists,
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
)
from preservation.monitoring_settings import plain_address
from preservation.repository import Repository
from preservation.text import check_xml_text

LIBRARY_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is an attack, not a password

LOGIN_REFUSED = "wrong username or password (or this account may not log in from your address)"
DISABLED = "ask your library's administrator or the consortium office to enable it again"
LANGUAGE_ALIASES = {"zh": CHINESE, "zh-cn": CHINESE, "zh_cn": CHINESE, "zh-hans": CHINESE, CHINESE.lower(): CHINESE,
                    "en": ENGLISH}
STAFF_ONLY_SCOPES = (SCOPE_STAFF, SCOPE_FIXITY)

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
    scope: str | None = None  # the API key's scope; None for a portal login (the whole role)
    timezone: str | None = None  # the library's time zone; None: the access_timezone setting
    session_epoch: int = 0  # a portal session carries it; disabling or a new password moves it on

    @property
    def is_staff(self) -> bool:
        return self.role == ROLE_STAFF

    @property
    def may_decide(self) -> bool:
        """Staff decisions need a staff user, logged in or holding a staff key."""
        return self.is_staff and self.scope in (None, SCOPE_STAFF)

    @property
    def agent(self) -> str:
        """How events name this person."""
        return f"user:{self.username}"

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "library": self.library_code,
                "library_name": self.library_name, "scope": self.scope}


def _principal(user: AccessUser, scope: str | None = None) -> Principal:
    lib = user.library
    return Principal(user.id, user.username, user.role, lib.id, lib.code, lib.name, scope, lib.timezone,
                     user.session_epoch or 0)


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
            "active": lib.active, "users": users, "created_at": lib.created_at, "contact_email": lib.contact_email,
            "timezone": lib.timezone, "language": lib.language or CHINESE}


def check_email(value: str, what: str = "e-mail address") -> str:
    """One plain address (``access@pku.example.org``), or InvalidRequest: nothing that could shape a mail header."""
    try:
        return plain_address(value or "")
    except ValueError as e:
        raise InvalidRequest(f"{what} {value!r}: {e}") from None


def check_timezone(value: str) -> str:
    """An IANA time zone name this machine knows, or InvalidRequest."""
    if not valid_timezone(value):
        raise InvalidRequest(f"unknown time zone {value!r}: give an IANA name such as Asia/Shanghai or Europe/Berlin")
    return value


def check_language(value: str) -> str:
    """The language code of a library's mails (zh or en), or InvalidRequest."""
    language = LANGUAGE_ALIASES.get((value or "").strip().lower())
    if language not in LANGUAGES:
        raise InvalidRequest(f"unknown language {value!r}: choose zh (Simplified Chinese) or en (English)")
    return language


UNCHANGED: Any = object()  # edit_library's default: leave this field as it is


def edit_library(repo: Repository, code: str, *, contact_email: str | None = UNCHANGED,
                 timezone: str | None = UNCHANGED, language: str | None = UNCHANGED) -> dict[str, Any]:
    """Change a library's contact address, time zone or mail language (None clears: no mail, the default zone,
    Chinese).  Everything is checked before anything changes; raises NotFound, InvalidRequest."""
    changes: dict[str, Any] = {}
    if contact_email is not UNCHANGED:
        changes["contact_email"] = None if contact_email is None else check_email(contact_email, "contact address")
    if timezone is not UNCHANGED:
        changes["timezone"] = None if timezone is None else check_timezone(timezone)
    if language is not UNCHANGED:
        changes["language"] = None if language is None else check_language(language)
    with repo.catalog.session() as s:
        lib = get_library(s, code)
        for name, value in changes.items():
            setattr(lib, name, value)
        s.flush()
        return _library_dict(lib)


def add_library(
    repo: Repository, code: str, name: str, *, contacts: Iterable[str] = (), ip_ranges: Iterable[str] = (),
    contact_email: str | None = None,
) -> dict[str, Any]:
    """Register a member library; raises InvalidRequest, InvalidText, AlreadyExists."""
    if not LIBRARY_CODE_RE.fullmatch(code or ""):
        raise InvalidRequest(f"library code {code!r} must be 1-32 letters, digits, '.', '_' or '-'")
    if not check_xml_text(name, "library name", max_length=300).strip():
        raise InvalidRequest("a library needs a name")
    contacts = [check_xml_text(c, "contact", max_length=300) for c in contacts]
    ranges = parse_ip_ranges(ip_ranges)
    address = check_email(contact_email, "contact address") if contact_email else None
    with repo.catalog.session() as s:
        if s.execute(select(Library.id).where(Library.code == code)).scalar_one_or_none() is not None:
            raise AlreadyExists(f"a library with code {code!r} exists already")
        lib = Library(code=code, name=name.strip(), contacts=[c.strip() for c in contacts if c.strip()],
                      ip_ranges=ranges, active=True, contact_email=address)
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


def hash_password(password: str) -> str:
    """The argon2id hash of a password that meets the rules; raises InvalidRequest."""
    check_password_rules(password)
    return _hasher.hash(password)


def add_user(
    repo: Repository, library_code: str, username: str, password: str, *, staff: bool = False,
    email: str | None = None,
) -> dict[str, Any]:
    """Add a portal user to a library (``staff``: consortium staff; ``email``: where reset links go).

    Raises InvalidRequest, AlreadyExists, NotFound.
    """
    if not USERNAME_RE.fullmatch(username or ""):
        raise InvalidRequest(f"username {username!r} must be 1-100 letters, digits, '.', '_', '@' or '-'")
    address = check_email(email) if email else None
    password_hash = hash_password(password)
    with repo.catalog.session() as s:
        lib = get_library(s, library_code)
        if s.execute(select(AccessUser.id).where(AccessUser.username == username)).scalar_one_or_none() is not None:
            raise AlreadyExists(f"a user named {username!r} exists already")
        user = AccessUser(library_id=lib.id, username=username, role=ROLE_STAFF if staff else ROLE_LIBRARY,
                          password_hash=password_hash, active=True, email=address)
        s.add(user)
        s.flush()
        return {"username": user.username, "role": user.role, "library": lib.code, "email": address}


def list_users(repo: Repository, library_code: str | None = None) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        stmt = select(AccessUser).join(Library).order_by(Library.code, AccessUser.username)
        if library_code:
            stmt = stmt.where(Library.id == get_library(s, library_code).id)
        return [_user_dict(u) for u in s.scalars(stmt)]


def _user_dict(user: AccessUser) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "library": user.library.code, "active": user.active,
            "email": user.email, "last_login_at": user.last_login_at}


def set_user_email(repo: Repository, username: str, email: str | None) -> dict[str, Any]:
    """Set (None: clear) where a user's password reset links are mailed; raises NotFound, InvalidRequest."""
    address = check_email(email) if email else None
    with repo.catalog.session() as s:
        user = _get_user(s, username)
        user.email = address
        return _user_dict(user)


def set_user_active(repo: Repository, username: str, active: bool) -> dict[str, Any]:
    """Enable or disable a user.  Disabling ends every portal session of the user at once (their epoch moves
    on, so an old session cookie stays dead after the user is enabled again) and the user's API keys stop
    working while disabled.  Raises NotFound."""
    with repo.catalog.session() as s:
        user = _get_user(s, username)
        changed = user.active != active
        user.active = active
        if not active:
            end_sessions(user)
        return {**_user_dict(user), "changed": changed}


def end_sessions(user: AccessUser) -> None:
    """Every portal session of ``user`` ends at its next request."""
    user.session_epoch = (user.session_epoch or 0) + 1


def _get_user(session: Session, username: str) -> AccessUser:
    user = session.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named {username!r}: see `preserve library user list`")
    return user


# --- API tokens --------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(repo: Repository, username: str, *, name: str = "", days: int | None = None,
                 scope: str = SCOPE_READ) -> dict[str, Any]:
    """A new API key for ``username``; the key itself is only in the returned dict.

    ``scope`` is least privilege by default (``read``); ``staff`` and
    ``fixity`` keys need a staff user.  Raises InvalidRequest, InvalidText, NotFound.
    """
    if days is not None and days <= 0:
        raise InvalidRequest("a key's lifetime must be a positive number of days")
    if scope not in SCOPES:
        raise InvalidRequest(f"scope {scope!r} must be one of {', '.join(SCOPES)}")
    name = check_xml_text(name or "", "key name", max_length=100)
    token = secrets.token_urlsafe(32)
    with repo.catalog.session() as s:
        user = _get_user(s, username)
        if scope in STAFF_ONLY_SCOPES and not user.is_staff:
            raise InvalidRequest(f"a {scope} key needs a staff user; {username!r} reads for library "
                                 f"{user.library.code} (use --scope read)")
        row = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token), prefix=token[:8], scope=scope,
                       expires_at=utcnow() + timedelta(days=days) if days else None)
        s.add(row)
        s.flush()
        return {"id": row.id, "username": user.username, "role": user.role, "name": name, "scope": scope,
                "prefix": row.prefix, "expires_at": row.expires_at, "token": token}


def list_tokens(repo: Repository, username: str | None = None) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        stmt = select(ApiToken).join(AccessUser).order_by(ApiToken.id)
        if username:
            stmt = stmt.where(AccessUser.id == _get_user(s, username).id)
        return [{"id": t.id, "username": t.user.username, "name": t.name, "scope": t.scope, "prefix": t.prefix,
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


def authenticate_token(repo: Repository, token: str, *, scopes: Collection[str], username: str | None = None,
                       client_ip: str | None = None) -> Principal:
    """The principal an API key belongs to, when the key's scope is one of ``scopes``.

    Raises AuthenticationFailed (unknown, expired, revoked, another user's),
    AccessRefused (a scope not accepted here; an address outside the library's ranges).
    """
    if not token or len(token) > 200:
        raise AuthenticationFailed("no valid API key given")
    now = utcnow()
    with repo.catalog.session() as s:
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            raise AuthenticationFailed("the API key is unknown, expired or revoked")
        if username is not None and not secrets.compare_digest(row.user.username.encode(),
                                                               username.encode("utf-8", "replace")):
            raise AuthenticationFailed("the API key does not belong to that user")
        if row.scope not in scopes:
            raise AccessRefused(f"this is a {row.scope} key; here only a {' or '.join(scopes)} key is accepted "
                                "(create one with `preserve library token create USER --scope …`)")
        user = _usable(row.user, client_ip)
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now
        return _principal(user, scope=row.scope)


def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class _LoginRow:
    user_id: int
    password_hash: str
    may_log_in: bool  # active user of an active library, at an address its library allows
    disabled: bool  # the user or the library is disabled (told only to who gives the right password)


def _look_up(repo: Repository, username: str, client_ip: str) -> _LoginRow | None:
    with repo.catalog.session() as s:
        user = s.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
        if user is None:
            return None
        disabled = not (user.active and user.library.active)
        may = not disabled and (user.is_staff or address_allowed(user.library.ip_ranges or [], client_ip))
        return _LoginRow(user.id, user.password_hash, bool(may), disabled)


def authenticate_password(
    repo: Repository, username: str, password: str, client_ip: str, *, limits: LoginLimits = LoginLimits(),
) -> Principal:
    """Check a login; raises TooManyAttempts (before looking at the password), AccountDisabled or
    AuthenticationFailed.

    The argon2 verification (~0.2 s) runs outside every catalog transaction:
    one short read finds the user, one short write counts the attempt, and
    one short write records a success.  Every refusal is the same 401, whether
    the username is unknown, the password wrong, the user disabled or the
    address outside the library's ranges, so a login never tells which.  Only the right password of a
    disabled user is told that the account is disabled (AccountDisabled): it reveals nothing to a guesser.
    """
    username = (username or "")[:100]
    client_ip = (client_ip or "unknown")[:64]
    now = utcnow()
    row = _look_up(repo, username, client_ip)
    if row is None:
        account, address = unknown_names.reserve(repo.catalog.url, username, client_ip, now, limits.window)
        refuse_over_limit(username, client_ip, account, address, limits, now)
    else:
        with repo.catalog.session() as s:
            reserve_attempt(s, username, client_ip, now, limits)
    # an unknown user, or one who may not log in from here, costs the same verification
    target = row.password_hash if row is not None and (row.may_log_in or row.disabled) else _DUMMY_HASH
    ok = bool(password) and len(password) <= MAX_PASSWORD and _verify_password(target, password)
    if ok and row is not None and row.disabled:
        raise AccountDisabled(DISABLED)
    if not ok or row is None or not row.may_log_in:
        raise AuthenticationFailed(LOGIN_REFUSED)
    new_hash = _hasher.hash(password) if _hasher.check_needs_rehash(row.password_hash) else None
    with repo.catalog.session() as s:
        user = s.get(AccessUser, row.user_id)
        if user is None or user.password_hash != row.password_hash:
            raise AuthenticationFailed(LOGIN_REFUSED)  # deleted or given a new password meanwhile
        if new_hash:
            user.password_hash = new_hash
        user.last_login_at = now
        forgive_attempt(s, username, client_ip)
        return _principal(_usable(user, client_ip))


def load_principal(repo: Repository, user_id: int, client_ip: str | None,
                   session_epoch: int | None = None) -> Principal:
    """Re-check a logged-in user on every request: still active, still at an allowed address, and (given the
    session's ``session_epoch``) no session-ending change since the login.  Raises AuthenticationFailed."""
    with repo.catalog.session() as s:
        principal = _principal(_usable(s.get(AccessUser, user_id), client_ip))
        if session_epoch is not None and session_epoch != principal.session_epoch:
            raise AuthenticationFailed("this session has ended (the account was disabled or its password reset)")
        return principal
