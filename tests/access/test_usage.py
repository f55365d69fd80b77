"""Usage: every listing and download is logged per library, collection and title; the month's summary for staff.

The summary counts by COUNTER's rules (tests/access/test_counter.py checks each rule): alice's whole file and
her range of the same file, within 30 seconds, are one request.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from urllib.parse import quote

import pytest
from sqlalchemy import select

from preservation.access.accounts import load_principal
from preservation.access.usage import REQUEST, record, usage_report
from preservation.catalog.access_models import UsageEvent
from preservation.catalog.models import utcnow
from preservation.errors import InvalidRequest

from .test_api import catalog_file
from .world import PAYLOAD_FILE


def this_month() -> str:
    return utcnow().strftime("%Y-%m")


def use_open_package(client, world) -> int:
    """alice: a listing, a whole file, a range and the zip; bob: one file.  Returns the zip's size."""
    pid = world.packages["open"]
    file_url = f"/api/v1/packages/{pid}/files/{quote(PAYLOAD_FILE)}"
    assert client.get(f"/api/v1/packages/{pid}/files", headers=world.auth("alice")).status_code == 200
    assert client.get(file_url, headers=world.auth("alice")).status_code == 200
    assert client.get(file_url, headers={**world.auth("alice"), "Range": "bytes=0-99"}).status_code == 206
    zipped = client.get(f"/api/v1/packages/{pid}/zip", headers=world.auth("alice"))
    assert client.get(file_url, headers=world.auth("bob")).status_code == 200
    return len(zipped.content)


def test_every_view_and_download_is_logged(client, world):
    zip_size = use_open_package(client, world)
    size, _ = catalog_file(world, "open")
    with world.repo.catalog.session() as s:
        rows = [(e.kind, e.path, e.bytes) for e in s.scalars(select(UsageEvent).order_by(UsageEvent.id))]
    assert rows == [("view", "", 0), ("download", PAYLOAD_FILE, size), ("download", PAYLOAD_FILE, 100),
                    ("download", "", zip_size), ("download", PAYLOAD_FILE, size)]


def test_refused_requests_are_not_usage(client, world):
    pid = world.packages["dark"]
    url = f"/api/v1/packages/{pid}/files/{quote(PAYLOAD_FILE)}"
    assert client.get(url, headers=world.auth("alice")).status_code == 403
    assert client.get(f"/api/v1/packages/{pid}/files", headers=world.auth("alice")).status_code == 403
    with world.repo.catalog.session() as s:
        assert s.scalars(select(UsageEvent)).first() is None


def test_monthly_report_counts_per_institution_title_and_database(client, world):
    zip_size = use_open_package(client, world)
    size, _ = catalog_file(world, "open")
    with world.repo.catalog.session() as s:  # another month's usage must not count
        alice = load_principal(world.repo, 1, "127.0.0.1")
        record(s, alice, kind=REQUEST, collection_id=1, package_id=world.packages["dark"], path=PAYLOAD_FILE, size=5,
               at=datetime(2001, 1, 15))
    report = usage_report(world.repo, this_month())
    titles = {(r["institution_id"], r["title"]): r for r in report["title_report"]}
    assert set(titles) == {("pku", "open-data-2021"), ("thu", "open-data-2021")}
    pku = titles[("pku", "open-data-2021")]
    assert (pku["Total_Item_Investigations"], pku["Total_Item_Requests"], pku["Unique_Title_Requests"]) == (3, 2, 1)
    assert pku["bytes"] == size + 100 + zip_size and pku["database"] == "open-d"
    thu = titles[("thu", "open-data-2021")]
    assert (thu["Total_Item_Investigations"], thu["Total_Item_Requests"], thu["Unique_Title_Requests"]) == (1, 1, 1)
    dbs = {(r["institution_id"], r["database"]): r["Total_Item_Requests"] for r in report["database_report"]}
    assert dbs == {("pku", "open-d"): 2, ("thu", "open-d"): 1}
    assert report["institutions"] == 2
    only_thu = usage_report(world.repo, this_month(), library_code="thu")
    assert [r["institution_id"] for r in only_thu["title_report"]] == ["thu"]
    old = usage_report(world.repo, "2001-01")
    assert [(r["institution_id"], r["Total_Item_Requests"]) for r in old["database_report"]] == [("pku", 1)]
    assert usage_report(world.repo, "2001-02")["title_report"] == []


def test_report_through_the_cli_and_the_api(client, world, run_cli):
    use_open_package(client, world)
    text = run_cli("usage", "report", "--month", this_month(), "--format", "csv", home=world.home).output
    rows = list(csv.DictReader(io.StringIO(text)))
    wanted = {("TR", "pku", "open-data-2021", "Total_Item_Requests"): "2",
              ("TR", "pku", "open-data-2021", "Unique_Title_Requests"): "1",
              ("DR", "thu", "", "Total_Item_Requests"): "1"}
    got = {(r["Report"], r["Institution_ID"], r["Title"], r["Metric_Type"]): r["Reporting_Period_Total"] for r in rows}
    for key, value in wanted.items():
        assert got[key] == value, key
    as_json = run_cli("usage", "report", "--month", this_month(), "--format", "json", home=world.home).json()
    assert as_json == client.get(f"/api/v1/usage?month={this_month()}", headers=world.auth("carol")).json()
    mine = client.get(f"/api/v1/usage?month={this_month()}", headers=world.auth("bob")).json()
    assert {r["institution_id"] for r in mine["title_report"]} == {"thu"}
    run_cli("usage", "report", "--month", "2026-13", exit_code=2, home=world.home)


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "26-01", "2026-1", "", "2026-01-01"])
def test_bad_months_are_refused(world, month):
    with pytest.raises(InvalidRequest):
        usage_report(world.repo, month)
