"""Entitlements one by one and in bulk: a bad row refuses the whole file, each finding names row and field."""

from __future__ import annotations

import pytest

from preservation.access.entitlements import add_entitlement, import_entitlements, list_entitlements
from preservation.codes import (
    DUPLICATE_ROW,
    FIELD_MISSING,
    NOT_A_YEAR,
    UNKNOWN_COLLECTION,
    UNKNOWN_FIELD,
    UNKNOWN_LIBRARY,
    UNREADABLE_FILE,
    YEARS_REVERSED,
)
from preservation.errors import AlreadyExists, ImportRejected, InvalidRequest, NotFound


def ranges(world):
    return sorted((e["library"], e["collection"], e["from_year"], e["to_year"]) for e in list_entitlements(world.repo))


BASE = [("pku", "pca-j", 2010, 2015), ("thu", "pca-j", 2016, 2020)]


def test_add_checks_names_and_years(world):
    add_entitlement(world.repo, "pku", "journals", 2000, 2004, note="LIC-77")
    with pytest.raises(AlreadyExists):
        add_entitlement(world.repo, "pku", "journals", 2000, 2004)
    with pytest.raises(InvalidRequest, match="after"):
        add_entitlement(world.repo, "pku", "journals", 2005, 2004)
    with pytest.raises(InvalidRequest, match="between"):
        add_entitlement(world.repo, "pku", "journals", 99, 2004)
    with pytest.raises(NotFound):
        add_entitlement(world.repo, "nope", "journals", 2000, 2004)
    with pytest.raises(NotFound):
        add_entitlement(world.repo, "pku", "nope", 2000, 2004)


def test_csv_import_adds_all_and_is_rerunnable(world, tmp_path):
    f = tmp_path / "ents.csv"
    f.write_text("library,collection,from_year,to_year,note\n"
                 "pku,journals,2001,2003,LIC-1\n"
                 "thu,journals,1999,1999,\n"
                 "pku,pca-j,2010,2015,already there\n", encoding="utf-8")
    result = import_entitlements(world.repo, f, created_by="operator:test")
    assert (result["rows"], result["added"], result["unchanged"]) == (3, 2, 1)
    assert ranges(world) == sorted(BASE + [("pku", "journals", 2001, 2003), ("thu", "journals", 1999, 1999)])
    again = import_entitlements(world.repo, f)
    assert (again["added"], again["unchanged"]) == (0, 3)


def test_yaml_import(world, tmp_path):
    f = tmp_path / "ents.yaml"
    f.write_text("entitlements:\n"
                 "  - {library: pku, collection: open-d, from_year: 2020, to_year: 2021}\n"
                 "  - {library: thu, collection: trig-b, from_year: 2018, to_year: 2018, note: back file}\n",
                 encoding="utf-8")
    assert import_entitlements(world.repo, f)["added"] == 2


BAD_CSV = (
    "library,collection,from_year,to_year,form_year\n"  # line 1: header with a typo column
    "pku,journals,2001,2003,\n"                          # line 2: fine
    "nope,journals,2001,2003,\n"                         # line 3: unknown library
    "pku,nothing,2001,2003,\n"                           # line 4: unknown collection
    "pku,journals,20x1,2003,\n"                          # line 5: not a year
    "pku,journals,2005,2003,\n"                          # line 6: reversed
    "pku,,2001,2003,\n"                                  # line 7: collection missing
    "thu,journals,1990,1991,\n"                          # line 8: fine
    "thu,journals,1990,1991,\n"                          # line 9: duplicate of line 8
)


def test_bad_rows_refuse_the_whole_file_and_name_row_and_field(world, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text(BAD_CSV, encoding="utf-8")
    before = ranges(world)
    with pytest.raises(ImportRejected) as e:
        import_entitlements(world.repo, f)
    found = {(x.code, x.params["row"], x.params["field"]) for x in e.value.findings}
    assert {
        (UNKNOWN_FIELD, 1, "form_year"), (UNKNOWN_LIBRARY, 3, "library"), (UNKNOWN_COLLECTION, 4, "collection"),
        (NOT_A_YEAR, 5, "from_year"), (YEARS_REVERSED, 6, "from_year"), (FIELD_MISSING, 7, "collection"),
        (DUPLICATE_ROW, 9, "library"),
    } <= found
    assert not any(row in (2, 8) for _, row, _ in found)
    assert "row 3, field 'library'" in "\n".join(str(x) for x in e.value.findings)
    assert e.value.code == "E803" and e.value.exit_code == 18
    assert ranges(world) == before, "nothing may be imported from a refused file"


@pytest.mark.parametrize("name, content", [
    ("empty.csv", ""), ("nothing.yaml", "[]\n"), ("scalar.yaml", "just text\n"), ("broken.yaml", "a: [\n"),
    ("ents.txt", "library,collection\n"), ("items.yaml", "- 5\n"),
])
def test_unreadable_files_are_refused(world, tmp_path, name, content):
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ImportRejected) as e:
        import_entitlements(world.repo, f)
    assert UNREADABLE_FILE in [x.code for x in e.value.findings]


def test_cli_import_prints_every_bad_row_and_exits_18(world, tmp_path, run_cli):
    f = tmp_path / "bad.csv"
    f.write_text(BAD_CSV, encoding="utf-8")
    out = run_cli("entitlement", "import", f, exit_code=18, home=world.home)
    assert "E803" in out.stderr
    for row in (1, 3, 4, 5, 6, 7, 9):
        assert f"row {row}, field" in out.stderr
    as_json = run_cli("entitlement", "import", f, "--json", exit_code=18, home=world.home).json()
    assert as_json["ok"] is False and {x["code"] for x in as_json["findings"]} >= {UNKNOWN_LIBRARY, DUPLICATE_ROW}
