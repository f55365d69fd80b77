"""COUNTER Release 5.1: the double-click filter, sessions, Unique_* metrics, TR/IR/DR, exceptions, the tabular form.

Usage is recorded with ``usage.record`` at chosen instants, so each COUNTER
rule is checked at its boundary (29 s, 31 s, another hour, another user).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timedelta

import pytest

from preservation.access import accounts, counter, counter_tabular
from preservation.access.accounts import Principal
from preservation.access.usage import INVESTIGATION, REQUEST, Client, record
from preservation.catalog.access_models import UsageEvent
from preservation.catalog.library_models import Item, ItemFile, Title, TitleIdentifier
from preservation.catalog.models import Package, utcnow
from preservation.errors import NotFound, UsageReportRefused

from .world import PASSWORD, PAYLOAD_FILE

T0 = datetime(2026, 3, 10, 9, 0, 0)


def principal(world, username: str) -> Principal:
    from preservation.access.accounts import load_principal

    with world.repo.catalog.session() as s:
        from sqlalchemy import select

        from preservation.catalog.access_models import AccessUser
        uid = s.execute(select(AccessUser.id).where(AccessUser.username == username)).scalar_one()
    return load_principal(world.repo, uid, "127.0.0.1")


def add_book(world, label: str = "open", kind: str = "book") -> dict:
    """A title (book or journal) with one chapter/article that owns the package's PAYLOAD_FILE."""
    with world.repo.catalog.session() as s:
        package = s.get(Package, world.packages[label])
        title = Title(collection_id=package.collection_id, kind=kind, title="物理学报 Acta", publisher="APS China")
        s.add(title)
        s.flush()
        s.add(TitleIdentifier(title_id=title.id, scheme="issn_print", value="1000-3290"))
        item = Item(package_id=package.id, title_id=title.id, kind="chapter" if kind == "book" else "article",
                    doi="10.7498/aps.68.20190001", item_title="Chapter one", year=2019, source_format="jats")
        s.add(item)
        s.flush()
        s.add(ItemFile(item_id=item.id, package_id=package.id, path=PAYLOAD_FILE, role="fulltext"))
        return {"title_id": title.id, "item_id": item.id, "collection_id": package.collection_id,
                "package_id": package.id}


def use(world, who: Principal, kind: str, at: datetime, book: dict, path: str = PAYLOAD_FILE) -> None:
    with world.repo.catalog.session() as s:
        record(s, who, kind=kind, collection_id=book["collection_id"], package_id=book["package_id"], path=path,
               size=100, at=at)


def report(world, key: str, library: str = "pku", begin="2026-03", end="2026-03", **params) -> dict:
    req = counter.build_request(key, library, counter.parse_period(begin, end), params)
    return counter.build_report(world.repo, req)


def performance(entry: dict) -> dict:
    assert len(entry["Attribute_Performance"]) == 1
    return entry["Attribute_Performance"][0]["Performance"]


def test_record_finds_the_item_and_title_of_a_file_and_hashes_the_visitor(world):
    book = add_book(world)
    alice = principal(world, "alice")
    use(world, alice, REQUEST, T0, book)
    with world.repo.catalog.session() as s:
        event = s.query(UsageEvent).one()
        assert (event.item_id, event.title_id, event.metric, event.month) == \
            (book["item_id"], book["title_id"], "request", "2026-03")
        assert len(event.session_id) == 64 and len(event.visitor) == 64
        assert event.visitor == hashlib.sha256(f"user:{alice.user_id}".encode()).hexdigest()


def test_without_a_user_the_visitor_is_the_address_and_user_agent_hashed(world):
    book = add_book(world)
    anonymous = Principal(user_id=None, username="", role="library", library_id=1, library_code="pku",
                          library_name="PKU")
    with world.repo.catalog.session() as s:
        for ip in ("192.0.2.1", "192.0.2.1", "192.0.2.2"):
            record(s, anonymous, kind=REQUEST, collection_id=book["collection_id"], package_id=book["package_id"],
                   path=PAYLOAD_FILE, client=Client(ip=ip, user_agent="Mozilla/5.0"), at=T0)
    with world.repo.catalog.session() as s:
        events = s.query(UsageEvent).order_by(UsageEvent.id).all()
        assert events[0].session_id == events[1].session_id != events[2].session_id
        assert all("192.0.2" not in e.visitor + e.session_id for e in events)


def test_double_clicks_within_30_seconds_count_once(world):
    book = add_book(world)
    alice = principal(world, "alice")
    for seconds in (0, 29, 58):  # a chain of double clicks: one action
        use(world, alice, REQUEST, T0 + timedelta(seconds=seconds), book)
    use(world, alice, REQUEST, T0 + timedelta(seconds=89), book)  # 31 s after the last: a second action
    tr = report(world, "tr")
    counts = performance(tr["Report_Items"][0])
    assert counts["Total_Item_Requests"] == {"2026-03": 2}
    assert counts["Total_Item_Investigations"] == {"2026-03": 2}
    assert counts["Unique_Item_Requests"] == {"2026-03": 1}


def test_a_double_click_across_an_hour_counts_only_the_later_click_in_unique_metrics(world):
    """The filter runs on the raw events first: the dropped 09:59:50 click leaves no Unique count in its hour."""
    book = add_book(world)
    alice = principal(world, "alice")
    use(world, alice, REQUEST, datetime(2026, 3, 10, 9, 59, 50), book)
    use(world, alice, REQUEST, datetime(2026, 3, 10, 10, 0, 5), book)
    counts = performance(report(world, "tr")["Report_Items"][0])
    assert counts == {
        "Total_Item_Investigations": {"2026-03": 1}, "Total_Item_Requests": {"2026-03": 1},
        "Unique_Item_Investigations": {"2026-03": 1}, "Unique_Item_Requests": {"2026-03": 1},
        "Unique_Title_Investigations": {"2026-03": 1}, "Unique_Title_Requests": {"2026-03": 1},
    }


def test_a_double_click_across_a_month_counts_in_the_later_month_whatever_the_period(world):
    book = add_book(world)
    alice = principal(world, "alice")
    use(world, alice, REQUEST, datetime(2026, 1, 31, 23, 59, 50), book)
    use(world, alice, REQUEST, datetime(2026, 2, 1, 0, 0, 5), book)
    use(world, alice, INVESTIGATION, datetime(2026, 1, 10, 8, 0, 0), book)  # January has activity of its own
    january_alone = performance(report(world, "tr", begin="2026-01", end="2026-01")["Report_Items"][0])
    both = performance(report(world, "tr", begin="2026-01", end="2026-02")["Report_Items"][0])
    assert january_alone["Total_Item_Investigations"] == {"2026-01": 1}
    assert "Total_Item_Requests" not in january_alone or january_alone["Total_Item_Requests"] == {}
    assert both["Total_Item_Investigations"] == {"2026-01": 1, "2026-02": 1}
    assert both["Total_Item_Requests"] == {"2026-02": 1}
    assert both["Unique_Item_Requests"] == {"2026-02": 1}
    assert both["Unique_Item_Investigations"] == {"2026-01": 1, "2026-02": 1}


def test_another_user_or_another_hour_is_another_session(world):
    book = add_book(world)
    alice = principal(world, "alice")
    accounts.add_user(world.repo, "pku", "dora", PASSWORD)
    dora = principal(world, "dora")
    use(world, alice, REQUEST, T0, book)
    use(world, dora, REQUEST, T0 + timedelta(seconds=5), book)  # not alice's double click
    use(world, alice, REQUEST, T0 + timedelta(hours=1), book)  # alice again, in the next hour
    use(world, alice, INVESTIGATION, T0 + timedelta(hours=2), book)
    counts = performance(report(world, "tr")["Report_Items"][0])
    assert counts == {
        "Total_Item_Investigations": {"2026-03": 4}, "Total_Item_Requests": {"2026-03": 3},
        "Unique_Item_Investigations": {"2026-03": 4}, "Unique_Item_Requests": {"2026-03": 3},
        "Unique_Title_Investigations": {"2026-03": 4}, "Unique_Title_Requests": {"2026-03": 3},
    }


def test_unique_title_counts_one_per_session_across_the_titles_items(world):
    book = add_book(world)
    with world.repo.catalog.session() as s:
        second = Item(package_id=book["package_id"], title_id=book["title_id"], kind="chapter",
                      item_title="Chapter two", year=2019, source_format="jats")
        s.add(second)
        s.flush()
        s.add(ItemFile(item_id=second.id, package_id=book["package_id"], path="data/index.xml", role="fulltext"))
    alice = principal(world, "alice")
    use(world, alice, REQUEST, T0, book)
    use(world, alice, REQUEST, T0 + timedelta(minutes=5), book, path="data/index.xml")
    counts = performance(report(world, "tr")["Report_Items"][0])
    assert counts["Unique_Item_Requests"] == {"2026-03": 2}
    assert counts["Unique_Title_Requests"] == {"2026-03": 1}
    ir = report(world, "ir")
    assert sorted(i["Item"] for i in ir["Report_Items"][0]["Items"]) == ["Chapter one", "Chapter two"]


def test_journal_rows_carry_no_unique_title_metrics(world):
    book = add_book(world, kind="journal")
    use(world, principal(world, "alice"), REQUEST, T0, book)
    tr = report(world, "tr")
    item = tr["Report_Items"][0]
    assert item["Attribute_Performance"][0]["Data_Type"] == "Journal"
    assert set(performance(item)) == set(counter.ITEM_METRICS)
    assert item["Item_ID"]["Print_ISSN"] == "1000-3290"


def test_report_shapes_follow_the_5_1_schema(world):
    book = add_book(world)
    use(world, principal(world, "alice"), REQUEST, T0, book)
    use(world, principal(world, "bob"), REQUEST, T0, book)  # another library: not in pku's report
    tr = report(world, "tr", begin="2026-02-01", end="2026-03-31", attributes_to_show="YOP|Access_Type|Access_Method")
    header = tr["Report_Header"]
    assert (header["Release"], header["Report_ID"], header["Report_Name"]) == ("5.1", "TR", "Title Report")
    assert header["Institution_ID"] == {"Proprietary": ["preserve:pku"]}
    assert header["Report_Filters"] == {"Begin_Date": "2026-02-01", "End_Date": "2026-03-31"}
    assert header["Report_Attributes"] == {"Attributes_To_Show": ["YOP", "Access_Type", "Access_Method"]}
    assert "Exceptions" not in header
    [title] = tr["Report_Items"]
    assert (title["Title"], title["Publisher"], title["Platform"]) == ("物理学报 Acta", "APS China", "preserve")
    attributes = {k: v for k, v in title["Attribute_Performance"][0].items() if k != "Performance"}
    assert attributes == {"Data_Type": "Book", "YOP": "2019", "Access_Type": "Controlled", "Access_Method": "Regular"}
    assert performance(title)["Total_Item_Requests"] == {"2026-03": 1}  # months without usage are left out
    ir = report(world, "ir")
    [parentless] = ir["Report_Items"]
    [item] = parentless["Items"]
    assert item["Item_ID"]["DOI"] == "10.7498/aps.68.20190001"
    assert item["Attribute_Performance"][0]["Data_Type"] == "Book_Segment"
    assert "Unique_Title_Requests" not in performance(item)
    dr = report(world, "dr", attributes_to_show="Access_Method")
    [database] = dr["Report_Items"]
    assert database["Database"] == "Open data" and database["Item_ID"] == {"Proprietary": "preserve:open-d"}
    assert database["Attribute_Performance"][0]["Access_Method"] == "Regular"
    assert performance(database)["Unique_Title_Requests"] == {"2026-03": 1}


def test_content_without_items_is_reported_under_its_package(world):
    alice = principal(world, "alice")
    with world.repo.catalog.session() as s:
        package = s.get(Package, world.packages["open"])
        record(s, alice, kind=REQUEST, collection_id=package.collection_id, package_id=package.id, path="", at=T0)
    [title] = report(world, "tr")["Report_Items"]
    assert title["Title"] == "open-data-2021"
    assert title["Item_ID"] == {"Proprietary": f"preserve:p{world.packages['open']}"}
    assert title["Attribute_Performance"][0]["Data_Type"] == "Unspecified"


def test_an_empty_period_says_3030_and_future_months_3031(world):
    empty = report(world, "tr", begin="2001-01", end="2001-02")
    assert empty["Report_Items"] == []
    assert [e["Code"] for e in empty["Report_Header"]["Exceptions"]] == [3030]
    future = f"{utcnow().year + 1}-01"
    ahead = report(world, "dr", begin=future, end=future)
    assert [e["Code"] for e in ahead["Report_Header"]["Exceptions"]] == [3031, 3030]


def test_filters_and_unsupported_values(world):
    book = add_book(world)
    use(world, principal(world, "alice"), REQUEST, T0, book)
    only = report(world, "tr", metric_type="Total_Item_Requests|Bogus")
    assert set(performance(only["Report_Items"][0])) == {"Total_Item_Requests"}
    assert only["Report_Header"]["Exceptions"] == [{"Code": 3060, "Message": "Invalid ReportFilter Value",
                                                   "Data": "metric_type: Bogus"}]
    assert report(world, "tr", data_type="Journal")["Report_Items"] == []
    assert report(world, "tr", yop="2019")["Report_Items"] != []
    assert report(world, "tr", yop="2000-2018")["Report_Items"] == []
    odd = report(world, "tr", attributes_to_show="Country_Code")
    assert [e["Code"] for e in odd["Report_Header"]["Exceptions"]] == [3062]
    unknown = report(world, "tr", data_type="Book|Podcast", access_method="Regular|Telepathy")
    assert [(e["Code"], e["Data"]) for e in unknown["Report_Header"]["Exceptions"]] == \
        [(3060, "data_type: Podcast"), (3060, "access_method: Telepathy")]
    assert unknown["Report_Header"]["Report_Filters"]["Data_Type"] == ["Book"]
    assert unknown["Report_Items"] != []
    assert report(world, "tr", access_type="Open")["Report_Items"] == []  # all of ours is Controlled
    long = report(world, "tr", metric_type="x" * 5000)
    assert len(long["Report_Header"]["Exceptions"][0]["Data"]) < 100


@pytest.mark.parametrize(("begin", "end", "code"), [
    ("2026-13", "2026-12", 3020), ("2026-1", "2026-02", 3020), ("2026-02-30", "2026-03", 3020),
    ("2026-02-02", "2026-03", 3020), ("2026-02", "2026-03-30", 3020), ("2026-03", "2026-02", 3020),
    ("１９９９-01", "2026-01", 3020), ("1900-01", "2026-01", 3020), ("2000-01", "2026-01", 3020),
    ("", "2026-01", 1030), (None, "2026-01", 1030), ("2026-01", None, 1030), ("2026-01 ", "2026-02", 3020),
])
def test_bad_dates_are_refused_with_their_counter_code(begin, end, code):
    with pytest.raises(UsageReportRefused) as caught:
        counter.parse_period(begin, end)
    assert caught.value.params["counter_code"] == code


@pytest.mark.parametrize("yop", ["19", "2019-2018", "abcd", "2019|x"])
def test_bad_years_of_publication_are_refused(yop):
    with pytest.raises(UsageReportRefused):
        counter.build_request("tr", "pku", counter.parse_period("2026-01", "2026-01"), {"yop": yop})


def test_an_unknown_library_is_not_found(world):
    with pytest.raises(NotFound):
        report(world, "tr", library="nobody")


def test_tabular_form_has_the_header_rows_then_the_body(world):
    book = add_book(world)
    use(world, principal(world, "alice"), REQUEST, T0, book)
    tr = report(world, "tr", begin="2026-02", end="2026-03", attributes_to_show="YOP")
    rows = list(csv.reader(io.StringIO(counter_tabular.report_tsv(tr)), delimiter="\t"))
    names = [r[0] for r in rows[:13]]
    assert names == ["Report_Name", "Report_ID", "Release", "Institution_Name", "Institution_ID", "Metric_Types",
                     "Report_Filters", "Report_Attributes", "Exceptions", "Reporting_Period", "Created", "Created_By",
                     "Registry_Record"]
    assert rows[2][1] == "5.1" and rows[9][1] == "Begin_Date=2026-02-01; End_Date=2026-03-31"
    assert set(rows[13]) == {""}
    header = rows[14]
    assert header[-4:] == ["Metric_Type", "Reporting_Period_Total", "Feb-2026", "Mar-2026"]
    assert "YOP" in header and "Access_Type" not in header
    body = {r[header.index("Metric_Type")]: r for r in rows[15:]}
    assert body["Total_Item_Requests"][-3:] == ["1", "0", "1"]
    assert body["Total_Item_Requests"][0] == "物理学报 Acta"


def test_cli_writes_counter_reports_as_tsv_and_json(world, run_cli):
    book = add_book(world)
    use(world, principal(world, "alice"), REQUEST, T0, book)
    tsv = run_cli("usage", "report", "--report", "dr", "--library", "pku", "--begin", "2026-03", home=world.home).output
    rows = list(csv.reader(io.StringIO(tsv), delimiter="\t"))
    assert rows[1][:2] == ["Report_ID", "DR"] and rows[15][0] == "Open data"
    as_json = run_cli("usage", "report", "--report", "ir", "--library", "pku", "--begin", "2026-02", "--end", "2026-03",
                      "--json", home=world.home).json()
    assert as_json["Report_Header"]["Report_ID"] == "IR"
    assert as_json["Report_Items"][0]["Items"][0]["Item"] == "Chapter one"
    with_yop = run_cli("usage", "report", "--report", "tr", "--library", "pku", "--month", "2026-03",
                       "--attributes", "YOP", "--format", "json", home=world.home).json()
    assert with_yop["Report_Items"][0]["Attribute_Performance"][0]["YOP"] == "2019"


@pytest.mark.parametrize(("args", "code"), [
    (["--report", "tr", "--begin", "2026-03"], 2),  # no library
    (["--report", "tr", "--library", "pku"], 24),  # no months
    (["--report", "tr", "--library", "pku", "--begin", "2026-3"], 24),
    (["--report", "tr", "--library", "pku", "--begin", "2026-04", "--end", "2026-03"], 24),
    (["--report", "tr", "--library", "nobody", "--begin", "2026-03"], 5),
    (["--report", "tr", "--library", "pku", "--begin", "2026-03", "--format", "csv"], 2),
    (["--report", "xr", "--library", "pku", "--begin", "2026-03"], 2),
    ([], 2),  # neither a report nor a month
    (["--month", "2026-03", "--format", "tsv"], 2),
])
def test_cli_refuses_bad_arguments_with_a_coded_error(world, run_cli, args, code):
    result = run_cli("usage", "report", *args, "--json", exit_code=code, home=world.home)
    if args[:2] != ["--report", "xr"]:  # click refuses an unknown choice itself
        assert json.loads(result.stderr)["error"]["code"] in ("E110", "E112", "E114")
