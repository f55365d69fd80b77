"""Usage: every investigation and request of released content, recorded as COUNTER Release 5.1 counts it.

:func:`record` writes one :class:`UsageEvent` in the caller's transaction.
What it stores is what the COUNTER reports (``preservation.access.counter``)
need and nothing more:

* the **metric**: ``request`` when content was sent (a file, a byte range of
  it, a whole package as zip), ``investigation`` when only an item's page or
  a listing was shown.  A request is also an investigation: the reports
  count it under both, so it is recorded once;
* the **item** and **title** (found from the file's item when the caller
  does not name them);
* the **visitor** — the user, or the address and user agent when there is
  no user — whose clicks the 30-second double-click filter compares, and the
  **session** (visitor + date + hour, COUNTER's surrogate session id) that
  the ``Unique_*`` metrics count.  Both are SHA-256 hashes: no address or user
  agent is stored.

:func:`record_search` writes one :class:`SearchEvent` per search a library
runs through the portal or the API (the Database Report's ``Searches_*``).

:func:`usage_report` is the month's summary for staff (the portal page and
``GET /api/v1/usage``): per institution × title and institution × database,
with bytes, counted by the same rules as the COUNTER reports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.access import counter_counts
from preservation.access.accounts import Principal
from preservation.catalog.access_models import (
    SEARCH_CHANNELS,
    USAGE_DOWNLOAD,
    USAGE_KINDS,
    SearchEvent,
    UsageEvent,
)
from preservation.catalog.library_models import Item, ItemFile
from preservation.catalog.models import utcnow
from preservation.errors import InvalidRequest
from preservation.repository import Repository

INVESTIGATION = "investigation"  # an item's page, its metadata or a listing was shown
REQUEST = "request"  # the content itself was sent (also an investigation)
METRICS = (INVESTIGATION, REQUEST)

MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
FIRST_YEAR, LAST_YEAR = 1970, 9998  # a month's end must still be a date
CSV_COLUMNS = ["Report", "Institution_ID", "Institution_Name", "Database", "Title", "Title_ID", "Metric_Type",
               "Reporting_Period_Total"]
MAX_USER_AGENT = 1000  # longer agents are cut before hashing: still one visitor, never a large string held


@dataclass(frozen=True)
class Client:
    """Where a request came from: only hashed, and only when there is no user to name the visitor."""

    ip: str
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: Any) -> Client:
        """The client of a starlette request (address of the connection, User-Agent header)."""
        ip = request.client.host if request.client else "unknown"
        return cls(ip=ip, user_agent=request.headers.get("user-agent", "")[:MAX_USER_AGENT])


def pseudonym(text: str) -> str:
    """A SHA-256 hash of a visitor or session: what is stored instead of an address, user agent or user id."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def visitor_of(principal: Principal, client: Client | None) -> str:
    """Who double-clicks: the user when there is one, else address + user agent (COUNTER 7.2), hashed."""
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if client is not None:
        return f"client:{client.ip}|{client.user_agent[:MAX_USER_AGENT]}"
    return f"library:{principal.library_id}"


def session_of(visitor: str, at: datetime) -> str:
    """COUNTER's surrogate session id: visitor + transaction date + hour of day (COUNTER 7.3), hashed."""
    return pseudonym(f"{visitor}|{at:%Y-%m-%d|%H}")


def record(
    session: Session, principal: Principal, *, kind: str, collection_id: int, package_id: str | None,
    path: str = "", size: int = 0, item_id: int | None = None, title_id: int | None = None,
    client: Client | None = None, at: datetime | None = None,
) -> UsageEvent:
    """Record one investigation or request in the caller's transaction (call it only once access succeeded).

    ``kind`` is :data:`INVESTIGATION` or :data:`REQUEST`.  Without ``item_id``
    the item is the one the file ``path`` of ``package_id`` belongs to, if
    any; without ``title_id`` the title is the item's.  Raises ValueError for
    an unknown kind (a programming error, never outside input).
    """
    if kind not in METRICS:
        raise ValueError(f"usage metric {kind!r}")
    at = at or utcnow()
    if item_id is None and package_id and path:
        item_id = session.execute(
            select(ItemFile.item_id).where(ItemFile.package_id == package_id, ItemFile.path == path)
            .order_by(ItemFile.item_id).limit(1)
        ).scalar_one_or_none()
    if item_id is not None and title_id is None:
        title_id = session.execute(select(Item.title_id).where(Item.id == item_id)).scalar_one_or_none()
    visitor = visitor_of(principal, client)
    event = UsageEvent(
        occurred_at=at, library_id=principal.library_id, user_id=principal.user_id, collection_id=collection_id,
        package_id=package_id, path=path[:1024], bytes=max(0, size), kind=USAGE_DOWNLOAD if kind == REQUEST else "view",
        metric=kind, item_id=item_id, title_id=title_id, visitor=pseudonym(visitor), session_id=session_of(visitor, at),
        month=f"{at:%Y-%m}",
    )
    session.add(event)
    return event


def record_usage(
    session: Session, principal: Principal, *, collection_id: int, package_id: str | None, path: str, size: int,
    kind: str, client: Client | None = None,
) -> None:
    """Record a ``view`` (an investigation) or a ``download`` (a request) in the caller's transaction."""
    if kind not in USAGE_KINDS:
        raise ValueError(f"usage kind {kind!r}")
    record(session, principal, kind=REQUEST if kind == USAGE_DOWNLOAD else INVESTIGATION,
           collection_id=collection_id, package_id=package_id, path=path, size=size, client=client)


def query_key(query: Any) -> str:
    """A SHA-256 of what a search looks for (words, author, identifier, year), not of which page of it."""
    wanted = {k: v for k, v in query.to_dict().items() if k not in ("offset", "limit")}
    return pseudonym(json.dumps(wanted, ensure_ascii=False, sort_keys=True))


def record_search(repo: Repository, principal: Principal, query: Any, *, channel: str,
                  client: Client | None = None, at: datetime | None = None) -> SearchEvent | None:
    """Record one search a library ran (call it once the search has answered), in a transaction of its own.

    ``query`` is a checked ``preservation.search.Query``; ``channel`` is
    ``portal`` (results shown in our interface) or ``api`` (results sent to
    another system).  A later page of the same results (``offset`` > 0) is
    not a new search (COUNTER 5.1, 7.6: a search retrieves a new set of
    results) and is not recorded; neither is a search without a library.
    Raises ValueError for an unknown channel (a programming error).
    """
    if channel not in SEARCH_CHANNELS:
        raise ValueError(f"search channel {channel!r}")
    if query.offset or principal.library_id is None:
        return None
    at = at or utcnow()
    visitor = visitor_of(principal, client)
    event = SearchEvent(occurred_at=at, library_id=principal.library_id, user_id=principal.user_id, channel=channel,
                        query=query_key(query), visitor=pseudonym(visitor), session_id=session_of(visitor, at),
                        month=f"{at:%Y-%m}")
    with repo.catalog.session() as s:
        s.add(event)
    return event


def log_usage(repo: Repository, principal: Principal, **fields: Any) -> None:
    with repo.catalog.session() as s:
        record_usage(s, principal, **fields)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-01' → [2026-01-01, 2026-02-01); raises InvalidRequest."""
    match = MONTH_RE.fullmatch(month or "")
    if not match:
        raise InvalidRequest(f"month {month!r}: use YYYY-MM, e.g. 2026-01")
    year, mon = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidRequest(f"month {month!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    start = datetime(year, mon, 1)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1)
    return start, end


def usage_report(repo: Repository, month: str, *, library_code: str | None = None) -> dict[str, Any]:
    """The month's title and database rows per institution (optionally one library), counted by COUNTER's rules.

    Raises InvalidRequest for a bad month, NotFound for an unknown library.
    """
    start, end = month_bounds(month)
    summary = counter_counts.monthly_summary(repo, month, library_code=library_code)
    return {"month": month, "period": {"begin": start.date().isoformat(), "end_exclusive": end.date().isoformat()},
            **summary}


def report_csv(report: dict[str, Any]) -> str:
    """The summary as one CSV: a row per institution × title/database × metric."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report["title_report"]:
        for metric in ("Total_Item_Investigations", "Total_Item_Requests", "Unique_Title_Requests"):
            writer.writerow(["TR", row["institution_id"], row["institution_name"], row["database"], row["title"],
                             row["title_id"] or "", metric, row[metric]])
    for row in report["database_report"]:
        for metric in ("Total_Item_Investigations", "Total_Item_Requests"):
            writer.writerow(["DR", row["institution_id"], row["institution_name"], row["database"], "", "", metric,
                             row[metric]])
    return out.getvalue()
