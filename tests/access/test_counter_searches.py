"""Searches in COUNTER 5.1's Database Report: recorded by the portal and the API search, counted per database
as Searches_Regular, Searches_Automated or Searches_Federated, double clicks filtered, in JSON, TSV and /r51.

The world has four collections (journals, pca-j, trig-b, open-d); pku reads as alice, thu as bob.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from preservation.access import counter, counter_tabular, usage
from preservation.access.usage import Client
from preservation.catalog.access_models import SEARCH_API, SEARCH_PORTAL, SearchEvent
from preservation.catalog.models import Collection, utcnow
from preservation.search import make_query

from .conftest import login
from .test_counter import principal, report

T = datetime(2026, 3, 10, 9, 0, 0)
DATABASES = {"中文期刊 Journals", "Post-cancellation journals", "Triggered books", "Open data"}


def backdate_collections(world, when: datetime = datetime(2020, 1, 1)) -> None:
    with world.repo.catalog.session() as s:
        s.execute(update(Collection).values(created_at=when))


def search(world, who, words="物理", *, at=T, channel=SEARCH_PORTAL, offset=0, client=None):
    return usage.record_search(world.repo, who, make_query(words, offset=offset), channel=channel, at=at,
                               client=client)


def searches(dr: dict) -> dict[tuple[str, str, str], dict[str, int]]:
    """(database, Data_Type, metric) → month → count, search metrics only."""
    out = {}
    for entry in dr["Report_Items"]:
        for performance in entry["Attribute_Performance"]:
            for metric, months in performance["Performance"].items():
                if metric.startswith("Searches_"):
                    out[(entry["Database"], performance["Data_Type"], metric)] = months
    return out


def test_a_portal_search_is_automated_for_every_database_an_api_search_federated(world):
    backdate_collections(world)
    alice = principal(world, "alice")
    search(world, alice, at=T)
    search(world, alice, "拓扑", at=T + timedelta(minutes=5), channel=SEARCH_API)
    counted = searches(report(world, "dr"))
    assert counted == {**{(db, "Database_Full", "Searches_Automated"): {"2026-03": 1} for db in DATABASES},
                       **{(db, "Database_Full", "Searches_Federated"): {"2026-03": 1} for db in DATABASES}}
    assert "Exceptions" not in report(world, "dr")["Report_Header"]  # searches alone are usage: no 3030


def test_a_search_when_the_catalog_held_one_database_is_regular_and_later_databases_are_not_credited(world):
    backdate_collections(world, T + timedelta(days=1))
    with world.repo.catalog.session() as s:
        s.execute(update(Collection).where(Collection.key == "pca-j").values(created_at=datetime(2020, 1, 1)))
    alice = principal(world, "alice")
    search(world, alice, at=T)  # only pca-j existed
    search(world, alice, "拓扑", at=T + timedelta(days=2))  # all three
    assert searches(report(world, "dr")) == {
        ("Post-cancellation journals", "Database_Full", "Searches_Regular"): {"2026-03": 1},
        **{(db, "Database_Full", "Searches_Automated"): {"2026-03": 1} for db in DATABASES}}


def test_the_same_search_within_30_seconds_counts_once_the_later_kept(world):
    backdate_collections(world)
    alice, dora_like = principal(world, "alice"), principal(world, "bob")
    search(world, alice, at=T)
    search(world, alice, at=T + timedelta(seconds=20))  # a reload: no new set of results
    search(world, alice, at=T + timedelta(seconds=45))  # 25 s after the last: the chain is one search
    search(world, alice, at=T + timedelta(seconds=100))  # 55 s after: a new one
    search(world, alice, "拓扑", at=T + timedelta(seconds=101))  # another query
    search(world, alice, at=T + timedelta(seconds=102), channel=SEARCH_API)  # another channel
    search(world, dora_like, at=T + timedelta(seconds=103))  # another library: not pku's
    counted = searches(report(world, "dr"))
    assert {m: c["2026-03"] for (db, _, m), c in counted.items() if db == "Open data"} == {
        "Searches_Automated": 3, "Searches_Federated": 1}
    assert {m for (_, _, m) in searches(report(world, "dr", library="thu"))} == {"Searches_Automated"}


def test_a_search_repeated_across_midnight_of_a_month_counts_once_in_the_later_month(world):
    backdate_collections(world)
    alice = principal(world, "alice")
    search(world, alice, at=datetime(2026, 3, 31, 23, 59, 50))
    search(world, alice, at=datetime(2026, 4, 1, 0, 0, 5))
    assert searches(report(world, "dr", begin="2026-03", end="2026-03")) == {}
    march_april = searches(report(world, "dr", begin="2026-03", end="2026-04"))
    assert march_april[("Open data", "Database_Full", "Searches_Automated")] == {"2026-04": 1}


def test_later_pages_and_searches_without_a_library_are_not_recorded(world):
    alice = principal(world, "alice")
    assert search(world, alice, offset=20) is None
    with pytest.raises(ValueError):
        search(world, alice, channel="robot")
    with world.repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(SearchEvent)) == 0


def test_what_is_stored_is_hashed(world):
    alice = principal(world, "alice")
    event = search(world, alice, "拓扑绝缘体", client=Client("10.1.2.3", "Mozilla/5.0"))
    with world.repo.catalog.session() as s:
        row = s.get(SearchEvent, event.id)
        stored = " ".join(str(getattr(row, c.name)) for c in SearchEvent.__table__.columns)
    assert "拓扑" not in stored and "10.1.2.3" not in stored and "Mozilla" not in stored
    assert len(row.query) == len(row.visitor) == len(row.session_id) == 64


def test_filters_and_attributes_of_the_dr_apply_to_searches(world):
    backdate_collections(world)
    alice = principal(world, "alice")
    search(world, alice)
    only = searches(report(world, "dr", metric_type="Searches_Automated|Total_Item_Requests"))
    assert {m for (_, _, m) in only} == {"Searches_Automated"}
    assert searches(report(world, "dr", metric_type="Searches_Federated")) == {}
    assert searches(report(world, "dr", data_type="Journal")) == {}
    assert searches(report(world, "dr", access_method="TDM")) == {}
    with_method = report(world, "dr", attributes_to_show="Access_Method")
    assert {p.get("Access_Method") for e in with_method["Report_Items"] for p in e["Attribute_Performance"]} \
        == {"Regular"}
    # search metrics are the DR's: a TR asked for them warns (3060) and leaves them out
    tr = report(world, "tr", metric_type="Searches_Regular")
    assert [e["Code"] for e in tr["Report_Header"]["Exceptions"]][:1] == [3060]


def test_the_tabular_dr_has_a_row_per_database_and_search_metric(world):
    backdate_collections(world)
    search(world, principal(world, "alice"))
    tsv = counter_tabular.report_tsv(report(world, "dr"))
    lines = list(csv.reader(io.StringIO(tsv), delimiter="\t"))
    assert not any(lines[13]) and lines[0][:2] == ["Report_Name", "Database Report"]  # 13 header rows, a blank one
    header, rows = lines[14], lines[15:]
    assert header[:7] == ["Database", "Publisher", "Publisher_ID", "Platform", "Proprietary_ID", "Data_Type",
                          "Metric_Type"]
    found = {(r[0], r[5], r[6], r[7]) for r in rows if r}
    assert found == {(db, "Database_Full", "Searches_Automated", "1") for db in DATABASES}


def test_the_portal_and_the_api_record_their_searches_and_r51_reports_them(world, client):
    backdate_collections(world)
    month = f"{utcnow():%Y-%m}"
    alice = world.auth("alice")
    assert client.get("/api/v1/search", params={"q": "物理"}, headers=alice).status_code == 200
    assert client.get("/api/v1/search", params={"q": "物理", "offset": 20}, headers=alice).status_code == 200
    assert client.get("/api/v1/search", params={"q": "x"}, headers=alice).status_code == 400  # refused: nothing
    assert client.get("/api/v1/search", params={"issn": "1000-3291"}, headers=alice).status_code == 400
    assert login(client, "alice").status_code == 303
    assert client.get("/portal/search", params={"q": "拓扑"}).status_code == 200
    assert client.get("/portal/search", params={"q": ""}).status_code == 200  # the empty form: no search
    with world.repo.catalog.session() as s:
        assert sorted(s.scalars(select(SearchEvent.channel))) == [SEARCH_API, SEARCH_PORTAL]
    answer = client.get("/r51/reports/dr", params={"customer_id": "pku", "api_key": world.tokens["alice"],
                                                   "begin_date": month, "end_date": month})
    assert answer.status_code == 200
    counted = searches(answer.json())
    assert counted == {**{(db, "Database_Full", "Searches_Automated"): {month: 1} for db in DATABASES},
                       **{(db, "Database_Full", "Searches_Federated"): {month: 1} for db in DATABASES}}


def test_the_cli_search_is_an_operators_and_is_not_recorded(world, run_cli):
    result = run_cli("search", "物理", "--library", "pku", "--json", home=world.home)
    assert result.exit_code == 0, result.output
    with world.repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(SearchEvent)) == 0
