"""COUNTER Release 5.1: the Title (TR), Item (IR) and Database (DR) reports of one institution.

What is counted (``usage_events``, written by ``preservation.access.usage.record``):

* ``Total_Item_Investigations`` / ``Total_Item_Requests`` — every
  investigation (a request is one too) / every request, after the
  double-click filter: two clicks of one visitor on the same target (file or
  item page) within 30 seconds count once (the later one is kept, COUNTER 7.2);
* ``Unique_Item_Investigations`` / ``Unique_Item_Requests`` — items with
  such activity, counted once per session (COUNTER 7.3);
* ``Unique_Title_Investigations`` / ``Unique_Title_Requests`` — titles with
  such activity, once per session (COUNTER 7.4); COUNTER defines them for
  books only, so they appear in rows whose Data_Type is Book;
* ``Searches_Regular`` / ``Searches_Automated`` / ``Searches_Federated``
  (DR only, ``search_events``) — each search, credited to every database it
  covered, in a row of the database's own Data_Type ``Database_Full``
  (``counter_counts.tally_searches``, ``search_metric``).

Our mapping: a **Title** is a ``library_models.Title``, or the package when the
content has no title; an **Item** is a ``library_models.Item``, or the package
when the content has no item; a **Database** is a collection.  The platform is
one configured name.  Sessions are counted per month: a session never spans
two months (it is an hour).

The counting is in ``counter_counts``, the tabular form in ``counter_tabular``;
this module checks a request (its months, filters and attributes) and shapes
the counts into the Report_Header and Report_Items of the 5.1 JSON schema.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from preservation.access.counter_counts import (
    ITEM_DATA_TYPES,
    NO_TITLE_DATA_TYPE,
    PROPRIETARY_NAMESPACE,
    SEARCH_METRICS,
    UNKNOWN_YOP,
    Catalogue,
    Cell,
    Counts,
    SearchCounts,
    find_library,
    tally,
    tally_searches,
    yop_text,
)
from preservation.catalog.access_models import SCOPE_READ, SCOPE_STAFF, Library
from preservation.catalog.models import utcnow
from preservation.errors import UsageReportRefused
from preservation.repository import Repository

RELEASE = "5.1"
DEFAULT_PLATFORM = "preserve"

REPORTS = {
    "tr": ("TR", "Title Report", "Usage by title, with its Data_Type and, on request, YOP, Access_Type, "
           "Access_Method"),
    "ir": ("IR", "Item Report", "Usage by item (article, chapter, or package without items)"),
    "dr": ("DR", "Database Report", "Usage by database (collection)"),
}
ITEM_METRICS = ("Total_Item_Investigations", "Total_Item_Requests", "Unique_Item_Investigations",
                "Unique_Item_Requests")
TITLE_METRICS = ("Unique_Title_Investigations", "Unique_Title_Requests")
METRIC_TYPES = ITEM_METRICS + TITLE_METRICS
REPORT_METRICS = {"tr": METRIC_TYPES, "ir": METRIC_TYPES, "dr": METRIC_TYPES + SEARCH_METRICS}
SEARCH_DATA_TYPE = "Database_Full"  # a database's own row, where its searches are: our databases hold full content
UNSUPPORTED_METRICS = ("Limit_Exceeded", "No_License")  # valid in 5.1, never produced by this service
ATTRIBUTES = {"tr": ("YOP", "Access_Type", "Access_Method"), "ir": ("YOP", "Access_Type", "Access_Method"),
              "dr": ("Access_Method",)}
BOOK_TYPES = ("Book", "Reference_Work")  # the only Data_Types with Unique_Title metrics
ACCESS_TYPE = "Controlled"  # licensed content, released to entitled libraries
ACCESS_METHOD = "Regular"  # no text and data mining channel


# the COUNTER API exceptions this service raises (Appendix F of the Code of Practice)
EXCEPTION_MESSAGES = {
    1030: "Insufficient Information to Process Request",
    2000: "Requestor Not Authorized to Access Service",
    2010: "Requestor is Not Authorized to Access Usage for Institution",
    2020: "APIKey Invalid",
    3020: "Invalid Date Arguments",
    3030: "No Usage Available for Requested Dates",
    3031: "Usage Not Ready for Requested Dates",
    3050: "Parameter Not Recognized in this Context",
    3060: "Invalid ReportFilter Value",
    3062: "Invalid ReportAttribute Value",
}
HTTP_STATUS = {1030: 400, 3020: 400, 2000: 401, 2020: 401, 2010: 403}

_DATE_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])(?:-([0-9]{2}))?")
_YOP_RE = re.compile(r"([0-9]{4})(?:-([0-9]{4}))?")
FIRST_YEAR, LAST_YEAR = 1970, 9998
MAX_MONTHS = 120  # ten years of months in one report
SHOWN = 60  # characters of a caller's value named back in an exception

# the filter values of COUNTER 5.1 (Data_Type per report; Access_Type; Access_Method)
DATA_TYPES = {
    "tr": ("Book", "Conference", "Journal", "Newspaper_or_Newsletter", "Other", "Patent", "Reference_Work", "Report",
           "Standard", "Thesis_or_Dissertation", "Unspecified"),
    "ir": ("Article", "Audiovisual", "Book_Segment", "Conference_Item", "Database_Full_Item", "Dataset", "Image",
           "Interactive_Resource", "Multimedia", "News_Item", "Other", "Patent", "Reference_Item", "Report",
           "Software", "Sound", "Standard", "Thesis_or_Dissertation", "Unspecified"),
    "dr": ("Audiovisual", "Book", "Conference", "Database_Full_Item", "Image", "Interactive_Resource", "Journal",
           "Multimedia", "Newspaper_or_Newsletter", "Other", "Patent", "Reference_Work", "Report", "Sound",
           "Standard", "Thesis_or_Dissertation", "Unspecified", "Database_Aggregated", "Database_AI",
           "Database_Full"),
}
ACCESS_TYPES = ("Controlled", "Open", "Free_To_Read")
ACCESS_METHODS = ("Regular", "TDM")


def counter_exception(code: int, data: str = "") -> dict[str, Any]:
    """One COUNTER API Exception object."""
    out: dict[str, Any] = {"Code": code, "Message": EXCEPTION_MESSAGES[code]}
    if data:
        out["Data"] = data
    return out


def refused(code: int, data: str) -> UsageReportRefused:
    """A request refused with COUNTER exception ``code`` (its HTTP status in ``params``)."""
    return UsageReportRefused(f"{EXCEPTION_MESSAGES[code]}: {data}", counter_code=code,
                              http_status=HTTP_STATUS.get(code, 400), data=data)


# --- the period -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole months, first to last."""

    first: date  # the first day of the first month
    last: date  # the first day of the last month

    @property
    def months(self) -> list[str]:
        out, year, month = [], self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    @property
    def end_date(self) -> date:
        """The last day of the last month."""
        following = date(self.last.year + (self.last.month == 12), self.last.month % 12 + 1, 1)
        return following - timedelta(days=1)


def _parse_date(text: str | None, name: str, *, at_end: bool) -> date:
    if text is None or text == "":
        raise refused(1030, f"{name} is required (yyyy-mm or yyyy-mm-dd)")
    match = _DATE_RE.fullmatch(text)
    if not match:
        raise refused(3020, f"{name} {_shown([text])!r}: use yyyy-mm or yyyy-mm-dd")
    year, month = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise refused(3020, f"{name} {text!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    first = date(year, month, 1)
    if match.group(3) is not None:
        try:
            day = date(year, month, int(match.group(3)))
        except ValueError:
            raise refused(3020, f"{name} {text!r} is not a date") from None
        # COUNTER reports whole months: a begin_date must be a month's first day, an end_date its last
        following = date(year + (month == 12), month % 12 + 1, 1)
        if (not at_end and day != first) or (at_end and day != following - timedelta(days=1)):
            raise refused(3020, f"{name} {text!r}: COUNTER reports whole months, give the month's "
                                f"{'last' if at_end else 'first'} day or yyyy-mm")
    return first


def parse_period(begin: str | None, end: str | None) -> Period:
    """begin_date and end_date of a COUNTER request (yyyy-mm or yyyy-mm-dd); raises UsageReportRefused."""
    first = _parse_date(begin, "begin_date", at_end=False)
    last = _parse_date(end, "end_date", at_end=True)
    if last < first:
        raise refused(3020, f"end_date {end} is before begin_date {begin}")
    if (last.year - first.year) * 12 + last.month - first.month >= MAX_MONTHS:
        raise refused(3020, f"at most {MAX_MONTHS} months in one report")
    return Period(first, last)


# --- the request ------------------------------------------------------------------------------


@dataclass
class ReportRequest:
    """What a report is asked for: the institution, the months, filters and attributes (all checked)."""

    report: str  # tr, ir or dr
    library_code: str
    period: Period
    metric_types: tuple[str, ...] = METRIC_TYPES
    data_types: tuple[str, ...] | None = None
    access_types: tuple[str, ...] | None = None
    access_methods: tuple[str, ...] | None = None
    yops: tuple[tuple[int, int], ...] | None = None
    attributes: tuple[str, ...] = ()
    platform: str = DEFAULT_PLATFORM
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # warnings for the header
    filters_shown: dict[str, Any] = field(default_factory=dict)


def _shown(values: list[str]) -> str:
    """Outside values named back in an exception: pipe-joined, cut short (the caller's text is not echoed whole)."""
    text = "|".join(values)
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split("|") if v.strip()]


def build_request(report: str, library_code: str, period: Period, params: dict[str, str], *,
                  platform: str = DEFAULT_PLATFORM) -> ReportRequest:
    """Check a report's filters and attributes (COUNTER API parameter names, pipe-separated values).

    Values this service does not support are left out and named in a 3060 or
    3062 warning, as the COUNTER API asks; raises UsageReportRefused (3020) for
    a bad year of publication.
    """
    req = ReportRequest(report=report, library_code=library_code, period=period, platform=platform,
                        metric_types=REPORT_METRICS[report])
    if "metric_type" in params:
        wanted = _split(params["metric_type"])
        bad = [m for m in wanted if m not in REPORT_METRICS[report]]
        if bad:
            req.exceptions.append(counter_exception(3060, f"metric_type: {_shown(bad)}"))
        req.metric_types = tuple(m for m in REPORT_METRICS[report] if m in wanted)
        req.filters_shown["Metric_Type"] = list(req.metric_types)
    for name, key, known in (("data_type", "data_types", DATA_TYPES[report]),
                             ("access_type", "access_types", ACCESS_TYPES),
                             ("access_method", "access_methods", ACCESS_METHODS)):
        if name in params:
            wanted = _split(params[name])
            bad = [v for v in wanted if v not in known]
            if bad:
                req.exceptions.append(counter_exception(3060, f"{name}: {_shown(bad)}"))
            values = tuple(v for v in known if v in wanted)
            setattr(req, key, values)
            req.filters_shown["_".join(w.capitalize() for w in name.split("_"))] = list(values)
    if "yop" in params and report != "dr":
        ranges = []
        for part in _split(params["yop"]):
            match = _YOP_RE.fullmatch(part)
            if not match:
                raise refused(3020, f"yop {_shown([part])}: use yyyy or yyyy-yyyy")
            low = int(match.group(1))
            high = int(match.group(2) or low)
            if high < low:
                raise refused(3020, f"yop {_shown([part])}: the range ends before it starts")
            ranges.append((low, high))
        req.yops = tuple(ranges)
        req.filters_shown["YOP"] = [f"{low}" if low == high else f"{low}-{high}" for low, high in ranges]
    if "attributes_to_show" in params:
        wanted = _split(params["attributes_to_show"])
        bad = [a for a in wanted if a not in ATTRIBUTES[report]]
        if bad:
            req.exceptions.append(counter_exception(3062, f"attributes_to_show: {_shown(bad)}"))
        req.attributes = tuple(a for a in ATTRIBUTES[report] if a in wanted)
    if params.get("granularity", "Month") != "Month":
        req.exceptions.append(counter_exception(3062, f"granularity: {_shown([params['granularity']])} (only Month)"))
    if report == "ir" and params.get("include_parent_details", "False") != "False":
        req.exceptions.append(counter_exception(3062, "include_parent_details: only False"))
    if report == "ir" and params.get("include_component_details", "False") != "False":
        req.exceptions.append(counter_exception(3062, "include_component_details: only False"))
    return req


# --- the reports ------------------------------------------------------------------------------


def _performance(monthly: dict[str, dict[str, int]], metrics: Iterable[str]) -> dict[str, dict[str, int]]:
    """COUNTER Performance: metric → month → count, months with nothing left out, metrics with nothing too."""
    out = {}
    for metric in metrics:
        counts = {month: n for month, n in sorted(monthly.get(metric, {}).items()) if n}
        if counts:
            out[metric] = counts
    return out


def _matches(req: ReportRequest, data_type: str, yop: str) -> bool:
    if req.data_types is not None and data_type not in req.data_types:
        return False
    if req.access_types is not None and ACCESS_TYPE not in req.access_types:
        return False
    if req.access_methods is not None and ACCESS_METHOD not in req.access_methods:
        return False
    if req.yops is not None and not any(low <= int(yop) <= high for low, high in req.yops):
        return False
    return True


def _attributes(req: ReportRequest, data_type: str, yop: str) -> dict[str, str]:
    out = {"Data_Type": data_type}
    if "YOP" in req.attributes:
        out["YOP"] = yop
    if "Access_Type" in req.attributes:
        out["Access_Type"] = ACCESS_TYPE
    if "Access_Method" in req.attributes:
        out["Access_Method"] = ACCESS_METHOD
    return out


def _header(req: ReportRequest, library: Library, created_by: str) -> dict[str, Any]:
    report_id, name, _ = REPORTS[req.report]
    filters: dict[str, Any] = {"Begin_Date": req.period.first.isoformat(), "End_Date": req.period.end_date.isoformat()}
    filters.update(req.filters_shown)
    header: dict[str, Any] = {
        "Report_Name": name, "Report_ID": report_id, "Release": RELEASE,
        "Institution_Name": library.name,
        "Institution_ID": {"Proprietary": [f"{PROPRIETARY_NAMESPACE}:{library.code}"]},
        "Report_Filters": filters,
        "Created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Created_By": created_by,
        "Registry_Record": "",
    }
    if req.attributes:
        header["Report_Attributes"] = {"Attributes_To_Show": list(req.attributes)}
    return header


KEY_SCOPES = (SCOPE_READ, SCOPE_STAFF)  # the API keys a harvester may use


def build_report(repo: Repository, req: ReportRequest, *, created_by: str = DEFAULT_PLATFORM) -> dict[str, Any]:
    """The COUNTER 5.1 JSON report (Report_Header, Report_Items) for ``req``; raises NotFound for the library.

    An empty period carries Exception 3030, months after the current one 3031;
    both with Report_Items empty as far as they go, as the COUNTER API asks.
    """
    current = f"{utcnow():%Y-%m}"
    months = req.period.months
    not_ready = [m for m in months if m > current]
    ready = [m for m in months if m <= current]
    with repo.catalog.session() as s:
        library = find_library(s, req.library_code)
        by_yop = "YOP" in req.attributes or req.yops is not None
        cells, titles = tally(s, library.id, ready, by_yop=by_yop) if ready else ({}, {})
        catalogue = Catalogue.load(s, cells)
        if req.report == "dr":
            searches = tally_searches(s, library.id, ready) if ready else {}
            catalogue.add_collections(s, {collection_id for collection_id, _, _ in searches})
            items = _database_items(req, cells, titles, catalogue, searches)
        else:
            items = {"tr": _title_items, "ir": _item_items}[req.report](req, cells, titles, catalogue)
        header = _header(req, library, created_by)
    exceptions = list(req.exceptions)
    if not_ready:
        exceptions.append(counter_exception(3031, f"months not yet processed: {', '.join(not_ready)}"))
    if not items:
        exceptions.append(counter_exception(3030, f"no usage from {months[0]} to {months[-1]}"))
    if exceptions:
        header["Exceptions"] = exceptions
    return {"Report_Header": header, "Report_Items": items}


def _metrics_for(req: ReportRequest, data_type: str, with_titles: bool) -> list[str]:
    allowed = list(ITEM_METRICS) + (list(TITLE_METRICS) if with_titles and data_type in BOOK_TYPES else [])
    return [m for m in allowed if m in req.metric_types]


def _add(monthly: dict[str, dict[str, int]], month: str, counts: Counts) -> None:
    for metric, n in (("Total_Item_Investigations", counts.inv), ("Total_Item_Requests", counts.req),
                      ("Unique_Item_Investigations", counts.unique_inv), ("Unique_Item_Requests", counts.unique_req)):
        monthly[metric][month] = monthly[metric].get(month, 0) + n


def _cell_yop(cell: Cell, catalogue: Catalogue) -> str:
    item = catalogue.item(cell.item_key)
    return yop_text(item.year if item else None)


def _title_items(req, cells, titles, catalogue) -> list[dict[str, Any]]:
    rows: dict[tuple[str, int], dict[tuple[str, str], dict[str, dict[str, int]]]] = defaultdict(dict)
    by_yop = "YOP" in req.attributes or req.yops is not None
    for cell, counts in cells.items():
        data_type = catalogue.title_data_type(cell.title_key)
        yop = _cell_yop(cell, catalogue)
        if not _matches(req, data_type, yop):
            continue
        group = rows[(cell.title_key, cell.collection_id)]
        monthly = group.setdefault((data_type, yop if "YOP" in req.attributes else ""), defaultdict(dict))
        _add(monthly, cell.month, counts)
    title_counts: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
    for (_, month, key, title_yop), (inv, requests) in titles.items():
        title_counts[key].append((month, title_yop, inv, requests))
    out = []
    for (title_key, collection_id), groups in rows.items():
        performances = []
        for (data_type, yop), monthly in sorted(groups.items()):
            for month, title_yop, inv, requests in title_counts.get(title_key, ()):
                if "YOP" in req.attributes and title_yop != yop:
                    continue
                if by_yop and not _matches(req, data_type, title_yop):
                    continue
                for metric, n in (("Unique_Title_Investigations", inv), ("Unique_Title_Requests", requests)):
                    monthly[metric][month] = monthly[metric].get(month, 0) + n
            performance = _performance(monthly, _metrics_for(req, data_type, True))
            if performance:
                performances.append({**_attributes(req, data_type, yop or UNKNOWN_YOP), "Performance": performance})
        if performances:
            out.append({"Title": catalogue.title_name(title_key),
                        "Publisher": catalogue.publisher(title_key, collection_id), "Platform": req.platform,
                        "Item_ID": catalogue.title_item_id(title_key), "Attribute_Performance": performances})
    return sorted(out, key=lambda r: (r["Title"], r["Item_ID"]["Proprietary"]))


def _item_items(req, cells, titles, catalogue) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str, int], dict[str, dict[str, int]]] = {}
    for cell, counts in cells.items():
        item = catalogue.item(cell.item_key)
        data_type = ITEM_DATA_TYPES.get(item.kind, "Other") if item else NO_TITLE_DATA_TYPE
        yop = yop_text(item.year if item else None)
        if not _matches(req, data_type, yop):
            continue
        monthly = rows.setdefault((cell.item_key, data_type, cell.collection_id), defaultdict(dict))
        _add(monthly, cell.month, counts)
    reported = []
    for (item_key, data_type, collection_id), monthly in rows.items():
        performance = _performance(monthly, _metrics_for(req, data_type, False))
        if not performance:
            continue
        item = catalogue.item(item_key)
        yop = yop_text(item.year if item else None)
        ids = {"Proprietary": f"{PROPRIETARY_NAMESPACE}:{item_key}"}
        if item is not None and item.doi:
            ids = {"DOI": item.doi, **ids}
        entry: dict[str, Any] = {
            "Item": (item.item_title if item and item.item_title else catalogue.title_name(item_key)),
            "Publisher": catalogue.publisher(f"t{item.title_id}" if item and item.title_id else item_key,
                                             collection_id),
            "Platform": req.platform, "Item_ID": ids,
            "Attribute_Performance": [{**_attributes(req, data_type, yop), "Performance": performance}],
        }
        reported.append(entry)
    reported.sort(key=lambda r: (r["Item"], r["Item_ID"]["Proprietary"]))
    return [{"Items": reported}] if reported else []


def _search_performance(req: ReportRequest, searches: SearchCounts) -> dict[int, dict[str, Any]]:
    """Each database's searches as one Attribute_Performance entry of its own Data_Type (Database_Full)."""
    if req.data_types is not None and SEARCH_DATA_TYPE not in req.data_types:
        return {}
    if req.access_methods is not None and ACCESS_METHOD not in req.access_methods:
        return {}
    monthly: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (collection_id, month, metric), n in searches.items():
        monthly[collection_id][metric][month] = n
    out = {}
    for collection_id, counts in monthly.items():
        performance = _performance(counts, [m for m in SEARCH_METRICS if m in req.metric_types])
        if performance:
            attributes = {"Data_Type": SEARCH_DATA_TYPE}
            if "Access_Method" in req.attributes:
                attributes["Access_Method"] = ACCESS_METHOD
            out[collection_id] = {**attributes, "Performance": performance}
    return out


def _database_items(req, cells, titles, catalogue, searches: SearchCounts | None = None) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, dict[str, dict[str, int]]]] = defaultdict(dict)
    title_types: dict[str, str] = {}
    for cell, counts in cells.items():
        data_type = catalogue.title_data_type(cell.title_key)
        if not _matches(req, data_type, UNKNOWN_YOP if req.yops is None else _cell_yop(cell, catalogue)):
            continue
        title_types[cell.title_key] = data_type
        monthly = rows[cell.collection_id].setdefault(data_type, defaultdict(dict))
        _add(monthly, cell.month, counts)
    collection_of = {cell.title_key: cell.collection_id for cell in cells}
    for (library, month, key, _), (inv, req_n) in titles.items():
        data_type = title_types.get(key)
        if data_type is None or data_type not in BOOK_TYPES:
            continue
        monthly = rows[collection_of[key]][data_type]
        monthly["Unique_Title_Investigations"][month] = monthly["Unique_Title_Investigations"].get(month, 0) + inv
        monthly["Unique_Title_Requests"][month] = monthly["Unique_Title_Requests"].get(month, 0) + req_n
    search_rows = _search_performance(req, searches or {})
    out = []
    for collection_id in sorted(set(rows) | set(search_rows)):
        by_type = rows.get(collection_id, {})
        performances = []
        for data_type, monthly in sorted(by_type.items()):
            performance = _performance(monthly, _metrics_for(req, data_type, True))
            if performance:
                attributes = {"Data_Type": data_type}
                if "Access_Method" in req.attributes:
                    attributes["Access_Method"] = ACCESS_METHOD
                performances.append({**attributes, "Performance": performance})
        if collection_id in search_rows:
            performances.append(search_rows[collection_id])
        collection = catalogue.collections[collection_id]
        if performances:
            out.append({"Database": collection.title, "Publisher": collection.publisher, "Platform": req.platform,
                        "Item_ID": {"Proprietary": f"{PROPRIETARY_NAMESPACE}:{collection.key}"},
                        "Attribute_Performance": performances})
    return sorted(out, key=lambda r: r["Database"])
