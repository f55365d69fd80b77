"""Log-in throttling: attempts counted in the catalog before any password is checked, and the lock they cause.

Per username and address (5 per 15 minutes, so a flood from one address cannot lock the owner out from
another) and per username from any address (20 per 15 minutes, so many addresses cannot guess together).
Each attempt is counted (``UPDATE … RETURNING``) in its own short transaction before the password is looked
at, so concurrent guesses cannot all slip under the limit; usernames the catalog does not know are counted in
the process's memory only.  A refusal carries when its lock ends (``TooManyAttempts`` param ``until``).  The
same counters, under a username no user can have, limit password reset requests per address.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from preservation.catalog.access_models import LoginCounter
from preservation.errors import TooManyAttempts

LOGIN_MAX_FAILURES = 5  # attempts per username and address in a window
LOGIN_ACCOUNT_MAX_FAILURES = 20  # attempts per username from any address in a window
LOGIN_WINDOW = timedelta(minutes=15)
ANY_ADDRESS = "*"  # the client_ip of a username's account-wide counter
_COUNTERS = LoginCounter.__table__


@dataclass(frozen=True)
class Count:
    """Attempts counted in a window, and when the window began."""

    attempts: int
    window_start: datetime


class _UnknownNameAttempts:
    """Login attempts on usernames the catalog does not know, counted in this process.

    They meet the same limits as real accounts, or a 429 would tell an
    attacker which usernames exist; but they are never written to the
    catalog, so a flood of made-up names never takes its write lock (nor
    fills a table).  Bounded: the oldest names are forgotten first.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._counts: OrderedDict[tuple[str, str, str], tuple[datetime, int]] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(self, catalog_url: str, username: str, client_ip: str, now: datetime,
                window: timedelta) -> tuple[Count, Count]:
        with self._lock:
            return (self._count((catalog_url, username, ANY_ADDRESS), now, window),
                    self._count((catalog_url, username, client_ip), now, window))

    def _count(self, key: tuple[str, str, str], now: datetime, window: timedelta) -> Count:
        start, attempts = self._counts.pop(key, (now, 0))
        if start <= now - window:
            start, attempts = now, 0
        self._counts[key] = (start, attempts + 1)
        while len(self._counts) > self._capacity:
            self._counts.popitem(last=False)
        return Count(attempts + 1, start)


unknown_names = _UnknownNameAttempts()


def _insert_counter(session: Session, username: str, client_ip: str, now: datetime) -> None:
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(_COUNTERS).values(username=username, client_ip=client_ip, window_start=now, attempts=0)
                    .on_conflict_do_nothing())


def count_attempt(session: Session, username: str, client_ip: str, now: datetime, window: timedelta) -> Count:
    """Add one attempt to a counter (restarting its window when it has passed); returns the new count.

    The row lock of the UPDATE serialises concurrent attempts on PostgreSQL
    as ``BEGIN IMMEDIATE`` does on SQLite, so each sees every earlier one.
    """
    _insert_counter(session, username, client_ip, now)
    passed = _COUNTERS.c.window_start <= now - window
    attempts, start = session.execute(
        update(_COUNTERS)
        .where(_COUNTERS.c.username == username, _COUNTERS.c.client_ip == client_ip)
        .values(attempts=case((passed, 1), else_=_COUNTERS.c.attempts + 1),
                window_start=case((passed, now), else_=_COUNTERS.c.window_start))
        .returning(_COUNTERS.c.attempts, _COUNTERS.c.window_start)
    ).one()
    return Count(attempts, start)


@dataclass(frozen=True)
class LoginLimits:
    """How many login attempts a window allows: per username and address, and per username from anywhere."""

    per_address: int = LOGIN_MAX_FAILURES
    per_account: int = LOGIN_ACCOUNT_MAX_FAILURES
    window: timedelta = LOGIN_WINDOW


def locked_until(count: Count, window: timedelta, now: datetime) -> tuple[datetime, int]:
    """When a locked counter's window ends, and the whole minutes left until then (at least 1)."""
    until = count.window_start + window
    return until, max(1, math.ceil((until - now).total_seconds() / 60))


def refuse_over_limit(username: str, client_ip: str, account: Count, address: Count, limits: LoginLimits,
                       now: datetime) -> None:
    """Raise TooManyAttempts (its ``until`` param: when the lock ends) when either limit is passed."""
    for count, limit, where in ((address, limits.per_address, client_ip), (account, limits.per_account,
                                                                            "any address")):
        if count.attempts > limit:
            until, minutes = locked_until(count, limits.window, now)
            raise TooManyAttempts(username=username, client_ip=where, minutes=minutes, until=until)


def reserve_attempt(s: Session, username: str, client_ip: str, now: datetime, limits: LoginLimits) -> None:
    """Count this attempt in the caller's short transaction (its own), before any password is looked at.

    Raises TooManyAttempts when either limit is reached (the caller's rollback then counts nothing).
    """
    # Every transaction on a username's counters locks its account row first, so
    # concurrent ones queue there and can never deadlock (PostgreSQL).
    account = count_attempt(s, username, ANY_ADDRESS, now, limits.window)
    address = count_attempt(s, username, client_ip, now, limits.window)
    refuse_over_limit(username, client_ip, account, address, limits, now)
    s.execute(delete(_COUNTERS).where(_COUNTERS.c.username == username,
                                      _COUNTERS.c.window_start < now - 4 * limits.window))


def forgive_attempt(s: Session, username: str, client_ip: str) -> None:
    """After a success: give the account its attempt back and clear this address's count.

    The account row first: the lock order of :func:`reserve_attempt`.
    """
    s.execute(update(_COUNTERS).where(_COUNTERS.c.username == username, _COUNTERS.c.client_ip == ANY_ADDRESS,
                                      _COUNTERS.c.attempts > 0)
              .values(attempts=_COUNTERS.c.attempts - 1))
    s.execute(delete(_COUNTERS).where(_COUNTERS.c.username == username, _COUNTERS.c.client_ip == client_ip))
