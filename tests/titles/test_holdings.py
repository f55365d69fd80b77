"""Completeness: gaps against expected coverage, the holdings report (table, JSON, CSV), KBART export, the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from preservation.access.accounts import add_library, get_library
from preservation.catalog.access_models import Entitlement
from preservation.catalog.library_models import Title, TitleEntitlement
from preservation.coverage import Expected, export, gaps, report, title_gaps
from preservation.errors import InvalidRequest
from preservation.kbart import EXTRA_WRITTEN, import_title_list
from preservation.titles import HeldIssue, show_title

from .helpers import APS, CPB, KBART_HEADER, add_items, add_package, kbart_row, kbart_text
from .test_kbart import parse_export

TODAY = date(2026, 6, 1)


def held(*issues: tuple[int, str, str]) -> list[HeldIssue]:
    return [HeldIssue(1, y, v, i, f"{y}-01-01", f"{y}-01-01", 1, "p") for y, v, i in issues]


def test_gaps_in_years_volumes_and_issues() -> None:
    expected = [Expected(first_date="2015", first_volume="64", first_issue="1", last_date="2019-12",
                         last_volume="68", last_issue="24")]
    have = held((2015, "64", "1"), (2015, "64", "2"), (2015, "64", "4"), (2016, "65", "1"), (2018, "67", "1"),
                (2019, "68", "20"))
    gap = title_gaps(expected, have, TODAY)
    assert gap["years"] == [2017]
    assert gap["volumes"] == [66]
    # vol. 64: 3 (4 is held); vol. 65, 67: nothing known beyond issue 1; vol. 68: 1-19 and 21-24 (the range ends at 24)
    assert gap["issues"] == [{"volume": "64", "issues": ["3"]},
                             {"volume": "68", "issues": [str(n) for n in range(1, 20)] + ["21", "22", "23", "24"]}]


def test_an_open_range_runs_to_this_year_less_its_embargo() -> None:
    expected = [Expected(first_date="2022", embargo_info="P1Y")]
    assert title_gaps(expected, held((2022, "", ""), (2024, "", "")), TODAY)["years"] == [2023, 2025]
    rolling = [Expected(first_date="2000", embargo_info="R3Y")]
    assert title_gaps(rolling, held(), TODAY)["years"] == [2023, 2024, 2025, 2026]


def test_the_first_issue_of_a_range_bounds_the_first_volume() -> None:
    expected = [Expected(first_date="2019", first_volume="68", first_issue="10", last_date="2019", last_volume="68")]
    assert title_gaps(expected, held((2019, "68", "12")), TODAY)["issues"] == [{"volume": "68", "issues": ["10", "11"]}]


@pytest.fixture
def journals(repo, tmp_path):
    """物理学报 expected 2015-2019 (vol. 64-68), Chinese Physics B expected from 2008; some of 物理学报 preserved."""
    rows = [kbart_row(**APS, date_first_issue_online="2015", num_first_vol_online="64", num_first_issue_online="1",
                      date_last_issue_online="2019", num_last_vol_online="68", num_last_issue_online="2"),
            kbart_row(**CPB, date_first_issue_online="2025", num_first_vol_online="34")]
    path = tmp_path / "list.tsv"
    path.write_text(kbart_text(rows), encoding="utf-8")
    import_title_list(repo, path, "journals")
    aps_id = show_title(repo, "wlxb")["id"]
    fresh = add_package(repo, verified_days_ago=1)
    add_items(repo, fresh, aps_id, [(2015, "64", "1"), (2015, "64", "2"), (2016, "65", "1"), (2016, "65", "2")])
    stale = add_package(repo, verified_days_ago=200)  # older than the 90-day audit interval
    add_items(repo, stale, aps_id, [(2018, "67", "1"), (2018, "67", "2"), (2019, "68", "2")])
    return {"aps": aps_id, "fresh": fresh, "stale": stale, "list": path}


def test_gaps_of_a_collection(repo, journals) -> None:
    result = gaps(repo, "journals", today=TODAY)
    by_title = {t["title"]: t for t in result["titles"]}
    assert by_title["物理学报"]["years"] == [2017] and by_title["物理学报"]["volumes"] == [66]
    assert by_title["物理学报"]["issues"] == [{"volume": "68", "issues": ["1"]}]
    assert by_title["物理学报"]["summary"] == "years 2017; volumes 66; vol. 68 issues 1"
    assert by_title["Chinese Physics B"]["years"] == [2025, 2026] and by_title["Chinese Physics B"]["volumes"] == [34]


def test_gaps_against_a_kbart_file(repo, journals, tmp_path) -> None:
    unknown = dict(APS, publication_title="力学学报", print_identifier="0459-1879", title_id="lxxb")
    other = tmp_path / "other.tsv"
    other.write_text(kbart_text([kbart_row(**APS, date_first_issue_online="2016", date_last_issue_online="2018"),
                                 kbart_row(**unknown, date_first_issue_online="2020", date_last_issue_online="2021")]),
                     encoding="utf-8")
    result = gaps(repo, "journals", against=str(other), today=TODAY)
    assert [(t["title"], t["in_catalog"], t["years"]) for t in result["titles"]] == [
        ("物理学报", True, [2017]), ("力学学报", False, [2020, 2021])]


def test_report_shows_coverage_gaps_and_verification(repo, journals) -> None:
    result = report(repo, collection_key="journals", today=TODAY)
    assert result["audit_interval_days"] == 90
    by_title = {t["title"]: t for t in result["titles"]}
    aps = by_title["物理学报"]
    assert aps["identifier"] == "1000-3290" and aps["preserved"]["years"] == [2015, 2016, 2018, 2019]
    assert aps["preserved_span"] == "2015-01-01 v.64 no.1 – 2019-02-01 v.68 no.2"
    assert aps["standing"] == "overdue"  # one package's copies were last verified 200 days ago
    assert by_title["Chinese Physics B"]["standing"] == "none"


def test_report_standing_is_verified_when_every_copy_is_fresh(repo, tmp_path) -> None:
    path = tmp_path / "l.tsv"
    path.write_text(kbart_text([kbart_row(**APS)]), encoding="utf-8")
    import_title_list(repo, path, "journals")
    add_items(repo, add_package(repo, verified_days_ago=89), show_title(repo, "wlxb")["id"], [(2019, "68", "1")])
    (title,) = report(repo)["titles"]
    assert title["standing"] == "verified" and title["oldest_verification"] is not None


def test_export_of_a_collection_is_valid_kbart(repo, journals) -> None:
    out = io.StringIO()
    assert export(repo, out, collection_key="journals")["rows"] == 2
    rows = parse_export(out.getvalue())
    assert [(r["date_first_issue_online"], r["date_last_issue_online"], r["preserve_verification"]) for r in rows] == [
        ("2015-01-01", "2016-02-01", "verified"), ("2018-01-01", "2019-02-01", "overdue")]
    assert rows[1]["preserve_last_verified"] < rows[0]["preserve_last_verified"]


def test_export_for_a_library_is_what_it_may_read(repo, journals) -> None:
    add_library(repo, "PKU", "北京大学图书馆")
    out = io.StringIO()
    assert export(repo, out, library_code="PKU")["rows"] == 0  # a dark collection, no grant, no entitlement
    with repo.catalog.session() as s:
        collection = s.get(Title, journals["aps"]).collection
        collection.access_mode = "pca"
        library_id = get_library(s, "PKU").id
        s.add(TitleEntitlement(library_id=library_id, title_id=journals["aps"], first_date="2015",
                               last_date="2016"))
    out = io.StringIO()
    export(repo, out, library_code="PKU")
    rows = parse_export(out.getvalue())
    assert [(r["date_first_issue_online"], r["date_last_issue_online"]) for r in rows] == [
        ("2015-01-01", "2016-02-01")]
    with repo.catalog.session() as s:
        s.add(Entitlement(library_id=library_id, collection_id=collection.id, from_year=2019, to_year=2019))
    out = io.StringIO()
    export(repo, out, library_code="PKU")
    assert len(parse_export(out.getvalue())) == 2
    with repo.catalog.session() as s:
        s.get(type(collection), collection.id).access_mode = "open"
    out = io.StringIO()
    export(repo, out, library_code="PKU")
    assert [r["date_first_issue_online"] for r in parse_export(out.getvalue())] == ["2015-01-01", "2018-01-01"]


@pytest.mark.parametrize("kwargs", [{}, {"collection_key": "journals", "library_code": "PKU"},
                                    {"library_code": "PKU", "expected": True}])
def test_export_needs_one_subject(repo, kwargs) -> None:
    with pytest.raises(InvalidRequest):
        export(repo, io.StringIO(), **kwargs)


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch) -> None:
    """Tables as wide as their cells, so that a test reads whole titles."""
    monkeypatch.setenv("COLUMNS", "250")


def test_cli_title_import_list_show_with_json(run_cli, repo, tmp_path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text(kbart_text([kbart_row(**APS, date_first_issue_online="2015"), kbart_row(**CPB)]), encoding="utf-8")
    imported = run_cli("title", "import", path, "--collection", "journals", "--json").json()
    assert imported["ok"] and imported["titles_added"] == 2
    listed = run_cli("title", "list", "--collection", "journals", "--json").json()
    assert listed["total"] == listed["count"] == 2
    assert {t["title"] for t in listed["titles"]} == {"物理学报", "Chinese Physics B"}
    shown = run_cli("title", "show", "1000-3290", "--json").json()
    assert shown["identifiers"]["issn_print"] == ["1000-3290"] and shown["expected"][0]["first_date"] == "2015"
    assert "物理学报" in run_cli("title", "show", "wlxb").output
    assert "Chinese Physics B" in run_cli("title", "list").output
    missing = run_cli("title", "show", "0459-1879", "--json", exit_code=5)
    assert json.loads(missing.stderr)["error"]["code"] == "E110"


def test_cli_refused_import_names_every_line_in_json(run_cli, repo, tmp_path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(kbart_text([kbart_row(**APS), kbart_row(**dict(CPB, print_identifier="1674-1057"))]),
                    encoding="utf-8")
    result = run_cli("title", "import", path, "--collection", "journals", "--json", exit_code=18)
    body = result.json()
    assert body["ok"] is False and body["error"]["code"] == "E803"
    assert [(f["code"], f["params"]["line"], f["params"]["field"]) for f in body["findings"]] == [
        ("K009", 3, "print_identifier")]
    plain = run_cli("title", "import", path, "--collection", "journals", exit_code=18)
    assert "K009" in plain.stderr and "line 3" in plain.stderr
    assert run_cli("title", "list", "--json").json()["total"] == 0


def test_cli_library_file_and_entitlements(run_cli, repo, tmp_path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text(kbart_text([kbart_row(**APS)]), encoding="utf-8")
    run_cli("title", "import", path, "--collection", "journals")
    add_library(repo, "PKU", "北京大学图书馆")
    mine = tmp_path / "pku.tsv"
    mine.write_text(kbart_text([kbart_row(**APS, date_first_issue_online="2015", date_last_issue_online="2018")]),
                    encoding="utf-8")
    result = run_cli("title", "entitle", mine, "--library", "PKU", "--json").json()
    assert result["ok"] and result["added"] == 1
    listed = run_cli("title", "entitlements", "--library", "PKU", "--json").json()["entitlements"]
    assert [(e["title"], e["first_date"], e["last_date"]) for e in listed] == [("物理学报", "2015", "2018")]
    assert "2015" in run_cli("title", "entitlements", "--library", "PKU").output


def test_cli_holdings_report_in_three_formats(run_cli, repo, journals) -> None:
    as_json = run_cli("holdings", "report", "--collection", "journals", "--json").json()
    assert {t["title"]: t["standing"] for t in as_json["titles"]} == {"物理学报": "overdue", "Chinese Physics B": "none"}
    table = run_cli("holdings", "report").output
    assert "物理学报" in table and "overdue" in table
    rows = list(csv.reader(io.StringIO(run_cli("holdings", "report", "--format", "csv").output)))
    assert rows[0][:3] == ["title_id", "collection", "title"] and len(rows) == 3
    assert {r[2]: r[12] for r in rows[1:]} == {"物理学报": "overdue", "Chinese Physics B": "none"}


def test_cli_holdings_gaps_exits_1_when_there_are_gaps(run_cli, repo, journals, tmp_path) -> None:
    result = run_cli("holdings", "gaps", "journals", "--json", exit_code=1).json()
    assert {t["title"] for t in result["titles"]} == {"物理学报", "Chinese Physics B"}
    complete = tmp_path / "complete.tsv"
    complete.write_text(kbart_text([kbart_row(**APS, date_first_issue_online="2015", date_last_issue_online="2016")]),
                        encoding="utf-8")
    assert "no gaps" in run_cli("holdings", "gaps", "journals", "--against", complete).output
    bad = tmp_path / "bad.tsv"
    bad.write_text("not\ta\tkbart\tfile\n", encoding="utf-8")
    refused = run_cli("holdings", "gaps", "journals", "--against", bad, "--json", exit_code=18).json()
    assert refused["findings"][0]["code"] == "K002"


def test_cli_holdings_export(run_cli, repo, journals, tmp_path) -> None:
    out = tmp_path / "holdings.tsv"
    result = run_cli("holdings", "export", "--collection", "journals", "--output", out, "--json").json()
    assert result == {"ok": True, "collection": "journals", "rows": 2, "file": str(out)}
    header = out.read_text(encoding="utf-8").split("\n")[0].split("\t")
    assert header == [*KBART_HEADER, *EXTRA_WRITTEN]
    printed = run_cli("holdings", "export", "--collection", "journals").output
    assert printed == out.read_text(encoding="utf-8")
    refused = run_cli("holdings", "export", "--collection", "journals", "--json", exit_code=2)
    assert json.loads(refused.stderr)["error"]["code"] == "E112"
    assert not list(tmp_path.glob(".holdings.tsv.*"))  # no temporary file left behind

