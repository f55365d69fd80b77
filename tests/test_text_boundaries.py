"""Operator-given text is checked where it enters: names are whole-string matches, free text must fit XML 1.0."""

from __future__ import annotations

import json

import pytest

from .test_cli import _network


@pytest.mark.parametrize("field, value", [("--title", "期刊\uffff"), ("--publisher", "P\x01"),
                                          ("--licence", "L\ud800"), ("--description", "d\x1b[31m")])
def test_collection_text_xml_cannot_carry_is_refused(run_cli, tmp_path, field, value):
    _network(run_cli, tmp_path)
    args = {"--title": "t", "--publisher": "p", "--licence": "l", "--description": "d", field: value}
    out = run_cli("collection", "add", "c2", *[x for kv in args.items() for x in kv], exit_code=2)
    assert "E113" in out.stderr and field.lstrip("-") in out.stderr
    assert [c["key"] for c in run_cli("collection", "list", "--json").json()["collections"]] == ["journals"]


@pytest.mark.parametrize("name", ["n9\n", "n9\nother"])
def test_names_are_matched_whole(run_cli, tmp_path, name):
    _network(run_cli, tmp_path)
    run_cli("node", "add", name, "--type", "cas", "--region", "x", "--uri", (tmp_path / "n9").as_uri(), exit_code=2)
    run_cli("collection", "add", name, "--title", "t", exit_code=2)
    assert not (tmp_path / "n9").exists()
    assert run_cli("node", "list", "--json").json()["count"] == 3


def test_node_region_xml_cannot_carry_is_refused(run_cli, tmp_path):
    _network(run_cli, tmp_path)
    out = run_cli("node", "add", "n9", "--type", "cas", "--region", "bei\x00jing", "--uri",
                  (tmp_path / "n9").as_uri(), exit_code=2)
    assert "E113" in out.stderr
    assert run_cli("node", "list", "--json").json()["count"] == 3


def test_errors_in_json_mode_are_json(run_cli, tmp_path):
    _network(run_cli, tmp_path)
    out = run_cli("collection", "add", "c2", "--title", "t\uffff", "--json", exit_code=2)
    error = json.loads(out.stderr)
    assert error["ok"] is False and error["error"]["code"] == "E113"
    assert error["error"]["params"] == {"field": "title", "characters": ["U+FFFF"]}
    out = run_cli("audit", "--package", "nope", "--json", exit_code=5)
    assert json.loads(out.stderr)["error"]["code"] == "E110"
    assert "E110" in run_cli("audit", "--package", "nope", exit_code=5).stderr.split(":")[0]
