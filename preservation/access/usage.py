"""Usage: every listing and download, per library, collection and title, and the monthly report.

The report follows COUNTER Release 5 in spirit, with a title (a package) in
place of a journal title and a collection in place of a database:

* ``Total_Item_Investigations`` — views (a package's contents listed) plus
  downloads;
* ``Total_Item_Requests`` — downloads (a file, a byte range of it, or a whole
  package as zip);
* ``Unique_Title_Requests`` — for a title, the number of distinct
  (user, day) pairs with at least one download: COUNTER counts per user
  session, a day stands in for a session here.

Title rows (``TR``) are per institution and title, database rows (``DR``) per
institution and collection.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from preservation.access.accounts import Principal, get_library
from preservation.catalog.access_models import USAGE_DOWNLOAD, USAGE_KINDS, Library, UsageEvent
from preservation.catalog.models import Collection, Package, utcnow
from preservation.errors import InvalidRequest
from preservation.repository import Repository

MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
FIRST_YEAR, LAST_YEAR = 1970, 9998  # a month's end must still be a date
CSV_COLUMNS = ["Report", "Institution_ID", "Institution_Name", "Database", "Title", "Title_ID", "Metric_Type",
               "Reporting_Period_Total"]


def record_usage(
    session: Session, principal: Principal, *, collection_id: int, package_id: str | None, path: str, size: int,
    kind: str,
) -> None:
    """Log one view or download in the caller's transaction."""
    if kind not in USAGE_KINDS:
        raise ValueError(f"usage kind {kind!r}")
    session.add(UsageEvent(occurred_at=utcnow(), library_id=principal.library_id, user_id=principal.user_id,
                           collection_id=collection_id, package_id=package_id, path=path[:1024], bytes=size,
                           kind=kind))


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
    """COUNTER-style title and database rows for one month (optionally one library)."""
    start, end = month_bounds(month)
    downloads = func.sum(case((UsageEvent.kind == USAGE_DOWNLOAD, 1), else_=0))
    with repo.catalog.session() as s:
        where = [UsageEvent.occurred_at >= start, UsageEvent.occurred_at < end]
        if library_code:
            where.append(UsageEvent.library_id == get_library(s, library_code).id)
        titles = s.execute(
            select(Library.code, Library.name, Collection.key, UsageEvent.package_id, Package.name,
                   func.count(), downloads, func.coalesce(func.sum(UsageEvent.bytes), 0))
            .select_from(UsageEvent)
            .join(Library, Library.id == UsageEvent.library_id)
            .join(Collection, Collection.id == UsageEvent.collection_id)
            .outerjoin(Package, Package.id == UsageEvent.package_id)
            .where(*where)
            .group_by(Library.code, Library.name, Collection.key, UsageEvent.package_id, Package.name)
            .order_by(Library.code, Collection.key, Package.name)
        ).all()
        day_users = (
            select(UsageEvent.library_id, UsageEvent.package_id, UsageEvent.user_id,
                   func.date(UsageEvent.occurred_at).label("day"))
            .where(*where, UsageEvent.kind == USAGE_DOWNLOAD)
            .distinct()
            .subquery()
        )
        unique = {
            (code, package_id): n for code, package_id, n in s.execute(
                select(Library.code, day_users.c.package_id, func.count())
                .select_from(day_users).join(Library, Library.id == day_users.c.library_id)
                .group_by(Library.code, day_users.c.package_id)
            )
        }
        libraries = s.execute(select(func.count(distinct(UsageEvent.library_id))).where(*where)).scalar_one()
    title_rows = []
    databases: dict[tuple[str, str], dict[str, Any]] = {}
    for code, name, collection, package_id, title, total, dl, size in titles:
        dl = int(dl or 0)
        title_rows.append({
            "institution_id": code, "institution_name": name, "database": collection, "title_id": package_id,
            "title": title or "", "Total_Item_Investigations": total, "Total_Item_Requests": dl,
            "Unique_Title_Requests": unique.get((code, package_id), 0), "bytes": int(size),
        })
        db = databases.setdefault((code, collection), {
            "institution_id": code, "institution_name": name, "database": collection,
            "Total_Item_Investigations": 0, "Total_Item_Requests": 0, "bytes": 0,
        })
        db["Total_Item_Investigations"] += total
        db["Total_Item_Requests"] += dl
        db["bytes"] += int(size)
    return {"month": month, "period": {"begin": start.date().isoformat(), "end_exclusive": end.date().isoformat()},
            "institutions": libraries, "title_report": title_rows, "database_report": list(databases.values())}


def report_csv(report: dict[str, Any]) -> str:
    """The report as one CSV: a row per institution × title/database × metric."""
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
