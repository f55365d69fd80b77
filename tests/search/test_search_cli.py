"""`preserve search`: JSON and table output, standings for a library, coded errors (JSON under --json)."""

from __future__ import annotations

import json

import pytest


def test_search_json_with_a_library(run_cli, library):
    out = run_cli("search", "物理", "--library", "pku", "--json", home=library.world.home).json()
    assert {h["doi"]: h["standing"] for h in out["items"]["hits"]}["10.7498/aps.61.1"] == "request"


def test_search_table(run_cli, library):
    out = run_cli("search", "物理学报", home=library.world.home).output
    assert "物理学报" in out and "titles (1)" in out


def test_identifier_and_year(run_cli, library):
    out = run_cli("search", "--issn", "1000-3290", "--year", "2019", "--json", home=library.world.home).json()
    assert [h["doi"] for h in out["items"]["hits"]] == ["10.7498/aps.68.1"]


def test_nothing_found(run_cli, library):
    assert "nothing found" in run_cli("search", "没有这个", home=library.world.home).output


@pytest.mark.parametrize("args, exit_code, code", [
    ([], 2, "E112"),
    (["--issn", "1000-3291"], 19, "E115"),
    (["物理", "--year", "abc"], 2, "E112"),
    (["物理", "--limit", "1000"], 2, "E112"),
    (["物理\x1b[2J"], 2, "E113"),
    (["物理", "--library", "nope"], 5, "E110"),
])
def test_bad_input_is_a_coded_error(run_cli, library, args, exit_code, code):
    result = run_cli("search", *args, "--json", home=library.world.home, exit_code=exit_code)
    assert json.loads(result.stderr)["error"]["code"] == code
