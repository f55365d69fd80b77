"""Catalog tables of the access service: who may read what, who asked, what was read.

Libraries and their users, hashed API tokens, entitlements (library ×
collection × year range), trigger events, access requests and the
time-limited grants they produce, per-file usage and login attempt counters.  They
share the catalog's ``Base`` (one metadata, one migration history).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from preservation.catalog.models import Base, Collection, Package, utcnow

ROLE_LIBRARY = "library"  # a member library's reader
ROLE_STAFF = "staff"  # consortium staff: decides requests, records triggers, reads usage
ROLES = (ROLE_LIBRARY, ROLE_STAFF)

# What an API key may do (see preservation.access.accounts for the rules).
SCOPE_FIXITY = "fixity"  # only the read-only fixity API (/api/v2), which carries the key in URLs
SCOPE_READ = "read"  # the JSON API as a reader: holdings, content, the library's own requests and usage
SCOPE_STAFF = "staff"  # also staff decisions: approve, deny, record triggers
SCOPES = (SCOPE_FIXITY, SCOPE_READ, SCOPE_STAFF)

TRIGGER_KINDS = ("publisher_ceased", "title_discontinued", "back_issues_removed", "catastrophic_failure")

REQUEST_PENDING = "pending"
REQUEST_APPROVED = "approved"
REQUEST_DENIED = "denied"
REQUEST_STATES = (REQUEST_PENDING, REQUEST_APPROVED, REQUEST_DENIED)

USAGE_VIEW = "view"  # a package's contents were listed
USAGE_DOWNLOAD = "download"  # bytes of a file (or a whole package as zip) were sent
USAGE_KINDS = (USAGE_VIEW, USAGE_DOWNLOAD)

ITEM_ID = BigInteger().with_variant(Integer, "sqlite")  # as items.id (library_models)


class Library(Base):
    """A member institution."""

    __tablename__ = "libraries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    contacts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # CIDR ranges; when any are set, the library's readers must come from them
    ip_ranges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # migration 0018: where decisions and expiring grants are mailed, the zone its pages show times in
    # (null: the access_timezone setting) and the language of its mails (null: Chinese)
    contact_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)

    users: Mapped[list["AccessUser"]] = relationship(back_populates="library")


class AccessUser(Base):
    """A person who logs in to the portal: a library's reader or consortium staff."""

    __tablename__ = "access_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"), index=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=ROLE_LIBRARY)
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, PHC string format
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # migration 0018: where a password reset link is mailed; a session is valid only while it carries the
    # user's current epoch, which disabling the user or resetting the password moves on
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    library: Mapped[Library] = relationship(back_populates="users")

    @property
    def is_staff(self) -> bool:
        return self.role == ROLE_STAFF


class ApiToken(Base):
    """An API key; only its sha256 is stored (the key is 256 random bits, shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("access_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # first characters, to tell keys apart in listings
    scope: Mapped[str] = mapped_column(String(16), default=SCOPE_READ)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[AccessUser] = relationship()


class Entitlement(Base):
    """A library paid for a collection's content of these years (inclusive)."""

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("library_id", "collection_id", "from_year", "to_year", name="uq_entitlements_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    from_year: Mapped[int] = mapped_column(Integer)
    to_year: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    library: Mapped[Library] = relationship()
    collection: Mapped[Collection] = relationship()


class TriggerEvent(Base):
    """A recorded trigger (publisher ceased …) that opens a ``trigger`` collection."""

    __tablename__ = "trigger_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_on: Mapped[date] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    collection: Mapped[Collection] = relationship()


class AccessRequest(Base):
    """A library asks to read a collection (``package_id`` null), one package, or in library terms a title
    (``title_id``), one issue of it (``title_id``, ``issue_year``, ``volume`` and ``issue``) or one item."""

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_library_state", "library_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("access_users.id"))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    package_id: Mapped[str | None] = mapped_column(ForeignKey("packages.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=REQUEST_PENDING, index=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)  # decided by the policy, not by staff
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the policy's reason as its code and parameters (preservation.access.reasons, migration 0020); null for
    # a staff member's own words and for rows from before
    decision_coded: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # item-level scope (migration 0009); all null for a collection or package request
    title_id: Mapped[int | None] = mapped_column(ForeignKey("titles.id"), nullable=True)
    item_id: Mapped[int | None] = mapped_column(ITEM_ID, ForeignKey("items.id"), nullable=True, index=True)
    issue_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    volume: Mapped[str | None] = mapped_column(String(32), nullable=True)  # not null only for an issue
    issue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # volumes of a title (``title_id``): first and last volume number, both not null only for a volume request
    first_volume: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_volume: Mapped[str | None] = mapped_column(String(32), nullable=True)

    library: Mapped[Library] = relationship()
    user: Mapped[AccessUser] = relationship()
    collection: Mapped[Collection] = relationship()
    package: Mapped[Package | None] = relationship()


class AccessGrant(Base):
    """A time-limited right of one library to read a collection or one package.

    ``from_year``/``to_year`` (both null for no limit) narrow a collection
    grant to the packages of those years, as post-cancellation grants are.

    A grant in library terms (migration 0009) opens only items, never a
    whole package: ``item_id`` one item; ``title_id`` with ``volume`` and
    ``issue`` not null one issue (of the year ``from_year`` = ``to_year``);
    ``title_id`` alone the title's items, narrowed by the years, by
    ``first_date``/``last_date`` (ISO date text, "" open) and by
    ``first_volume``/``first_issue``/``last_volume``/``last_issue`` (a
    volume or volume range, optionally to the issue, as a KBART row bounds
    it) when set: what they open is decided by the one title-range rule,
    ``preservation.titles.range_covers`` (``rights.title_grant_covers``).
    """

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_library_collection", "library_id", "collection_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    package_id: Mapped[str | None] = mapped_column(ForeignKey("packages.id"), nullable=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("access_requests.id"), nullable=True, index=True)
    from_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    granted_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    title_id: Mapped[int | None] = mapped_column(ForeignKey("titles.id"), nullable=True)
    item_id: Mapped[int | None] = mapped_column(ITEM_ID, ForeignKey("items.id"), nullable=True)
    volume: Mapped[str | None] = mapped_column(String(32), nullable=True)
    issue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    first_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    last_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    first_volume: Mapped[str | None] = mapped_column(String(32), nullable=True)
    first_issue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_volume: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_issue: Mapped[str | None] = mapped_column(String(32), nullable=True)

    library: Mapped[Library] = relationship()
    collection: Mapped[Collection] = relationship()


class UsageEvent(Base):
    """One investigation or request by a library: what the COUNTER Release 5.1 reports count.

    ``metric`` is ``investigation`` (an item's page or a listing was shown) or
    ``request`` (its content was sent; a request is also an investigation).
    ``visitor`` and ``session_id`` are SHA-256 hashes, never the raw address or
    user agent: the visitor is the user (or address + user agent) whose clicks
    the 30-second double-click filter compares, the session adds the date and
    hour, as COUNTER's surrogate session id does.  ``item_id`` and
    ``title_id`` are kept without foreign keys: usage is history and outlives
    a re-read item.  ``month`` (``YYYY-MM``) is what reports group by.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_library_occurred", "library_id", "occurred_at"),
        Index("ix_usage_events_library_month", "library_id", "month"),
        Index("ix_usage_events_month", "month"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    package_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    path: Mapped[str] = mapped_column(String(1024), default="")  # "" for a whole package or a listing
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(16), default="investigation")
    item_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), nullable=True)
    title_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    visitor: Mapped[str] = mapped_column(String(64), default="")
    session_id: Mapped[str] = mapped_column(String(64), default="")
    month: Mapped[str] = mapped_column(String(7), default="")


SEARCH_PORTAL = "portal"  # the portal's search page: results shown in our own interface
SEARCH_API = "api"  # GET /api/v1/search with an API key: results go to another system
SEARCH_CHANNELS = (SEARCH_PORTAL, SEARCH_API)


class SearchEvent(Base):
    """One search a library ran (a new set of results: a later page of the same results is not one).

    What COUNTER 5.1's Database Report counts as Searches_Regular, _Automated
    and _Federated (``preservation.access.counter_counts.tally_searches``
    decides which from ``channel`` and from the databases the search covered:
    every collection of the catalog at ``occurred_at``).  ``visitor`` and
    ``session_id`` are hashed as in ``usage_events``; ``query`` is a SHA-256
    of the query (words, author, identifier, year), never the words, and is
    what the 30-second double-click filter compares.
    """

    __tablename__ = "search_events"
    __table_args__ = (Index("ix_search_events_library_occurred", "library_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    query: Mapped[str] = mapped_column(String(64))
    visitor: Mapped[str] = mapped_column(String(64), default="")
    session_id: Mapped[str] = mapped_column(String(64), default="")
    month: Mapped[str] = mapped_column(String(7), default="")


class LoginCounter(Base):
    """Login attempts in the current window: per username and address, and per username from any address.

    ``client_ip`` is ``*`` for the account-wide counter.  An attempt is counted
    (``UPDATE … RETURNING``) before its password is looked at, so concurrent
    guesses cannot all slip under the limit.
    """

    __tablename__ = "login_counters"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    client_ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class PasswordReset(Base):
    """A password reset link sent by mail (or printed by the CLI): single use, expiring, only its sha256 kept."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("access_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    client_ip: Mapped[str] = mapped_column(String(64), default="")


class Notification(Base):
    """One e-mail to a person or a library, queued in the transaction that knows it is due, sent once.

    ``key`` names what it tells (``request:17:new``, ``grant:4:expiring``), so the same news is never
    queued twice, also after a restart; ``sent_at`` is set when the SMTP server accepted it.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_unsent", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
