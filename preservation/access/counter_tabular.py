"""The tabular form of a COUNTER 5.1 report (TSV): the 13 header rows, a blank row, then the body.

The body has the report's identifying columns, the attributes asked for, then
Metric_Type, Reporting_Period_Total and one column per month (``Jan-2026``),
as the Code of Practice's section 3.2 lays out.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any, Iterator

from preservation.access.counter import ATTRIBUTES, Period

TABULAR_COLUMNS = {
    "tr": ["Title", "Publisher", "Publisher_ID", "Platform", "DOI", "Proprietary_ID", "ISBN", "Print_ISSN",
           "Online_ISSN", "URI", "Data_Type", "YOP", "Access_Type", "Access_Method"],
    "ir": ["Item", "Publisher", "Publisher_ID", "Platform", "Authors", "Publication_Date", "Article_Version", "DOI",
           "Proprietary_ID", "ISBN", "Print_ISSN", "Online_ISSN", "URI", "Data_Type", "YOP", "Access_Type",
           "Access_Method"],
    "dr": ["Database", "Publisher", "Publisher_ID", "Platform", "Proprietary_ID", "Data_Type", "Access_Method"],
}


def _month_label(month: str) -> str:
    year, mon = month.split("-")
    return f"{date(int(year), int(mon), 1):%b}-{year}"


def _tabular_rows(report_key: str, report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    items = report["Report_Items"]
    if report_key == "ir":
        items = [entry for parent in items for entry in parent["Items"]]
    for entry in items:
        ids = entry.get("Item_ID", {})
        base = {k: v for k, v in entry.items() if k not in ("Item_ID", "Attribute_Performance")}
        base.update({"DOI": ids.get("DOI", ""), "Proprietary_ID": ids.get("Proprietary", ""),
                     "Print_ISSN": ids.get("Print_ISSN", ""), "Online_ISSN": ids.get("Online_ISSN", ""),
                     "ISBN": ids.get("ISBN", ""), "URI": ids.get("URI", "")})
        for performance in entry["Attribute_Performance"]:
            attributes = {k: v for k, v in performance.items() if k != "Performance"}
            for metric, counts in performance["Performance"].items():
                yield {**base, **attributes, "Metric_Type": metric, "counts": counts}


def report_tsv(report: dict[str, Any]) -> str:
    """The tabular form of a COUNTER 5.1 report: the 13 header rows, a blank row, the body (tab-separated)."""
    header = report["Report_Header"]
    key = header["Report_ID"].lower()
    filters = header["Report_Filters"]
    months = Period(date.fromisoformat(filters["Begin_Date"]), date.fromisoformat(filters["End_Date"])).months
    columns = TABULAR_COLUMNS[key]
    attributes = header.get("Report_Attributes", {}).get("Attributes_To_Show", [])
    hidden = {a for a in ATTRIBUTES[key] if a not in attributes}
    columns = [c for c in columns if c not in hidden]
    shown_filters = "; ".join(f"{k}={'|'.join(v) if isinstance(v, list) else v}" for k, v in filters.items()
                              if k not in ("Begin_Date", "End_Date"))
    exceptions = "; ".join(f"{e['Code']}: {e['Message']}" + (f" ({e['Data']})" if e.get("Data") else "")
                           for e in header.get("Exceptions", []))
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    width = len(columns) + 2 + len(months)
    for name, value in (
        ("Report_Name", header["Report_Name"]), ("Report_ID", header["Report_ID"]), ("Release", header["Release"]),
        ("Institution_Name", header["Institution_Name"]),
        ("Institution_ID", "; ".join(v if k == "Proprietary" else f"{k}:{v}"  # a proprietary id carries its namespace
                                     for k, vs in header["Institution_ID"].items() for v in vs)),
        ("Metric_Types", "; ".join(filters.get("Metric_Type", []))),
        ("Report_Filters", shown_filters),
        ("Report_Attributes", f"Attributes_To_Show={'|'.join(attributes)}" if attributes else ""),
        ("Exceptions", exceptions),
        ("Reporting_Period", f"Begin_Date={filters['Begin_Date']}; End_Date={filters['End_Date']}"),
        ("Created", header["Created"]), ("Created_By", header["Created_By"]),
        ("Registry_Record", header.get("Registry_Record", "")),
    ):
        writer.writerow([name, value] + [""] * (width - 2))
    writer.writerow([""] * width)
    writer.writerow(columns + ["Metric_Type", "Reporting_Period_Total"] + [_month_label(m) for m in months])
    for row in _tabular_rows(key, report):
        counts = row["counts"]
        writer.writerow([row.get(c, "") for c in columns] + [row["Metric_Type"], sum(counts.values())]
                        + [counts.get(m, 0) for m in months])
    return out.getvalue()
