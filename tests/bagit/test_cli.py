"""`preserve bag create / validate` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from preservation.bagit import default_profile
from preservation.cli.main import cli

from .builders import make_bag, make_tree


def run(*args: str, exit_code: int = 0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == exit_code, result.output
    return result


def test_create_then_validate(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"a.txt": b"a", "中/文.txt": b"zh"})
    out = run(
        "bag", "create", source, tmp_path / "bag", "--info", "External-Identifier=pkg-9",
        "--info", "Keyword=one", "--info", "Keyword=two", "--workers", "1", "--json",
    )
    created = json.loads(out.stdout)
    assert created["payload_files"] == 2 and created["payload_oxum"] == "3.2" and created["version"] == "1.0"
    assert created["bag_info"]["Keyword"] == ["one", "two"]
    out = run("bag", "validate", tmp_path / "bag", "--json")
    report = json.loads(out.stdout)
    assert report["valid"] is True and report["errors"] == 0 and report["findings"] == []
    assert "valid" in run("bag", "validate", tmp_path / "bag").stdout


def test_invalid_bag_exits_1_and_lists_each_finding(tmp_path: Path) -> None:
    bag = make_bag(tmp_path)
    (bag / "data" / "a.txt").write_bytes(b"changed\n")
    (bag / "data" / "new.txt").write_bytes(b"unexpected")
    report = json.loads(run("bag", "validate", bag, "--json", exit_code=1).stdout)
    assert report["valid"] is False
    assert {(f["code"], f.get("path")) for f in report["findings"]} == {
        ("BAG202", "data/a.txt"), ("BAG203", "data/new.txt"), ("BAG406", "bag-info.txt"),
    }
    text = run("bag", "validate", bag, exit_code=1).stdout
    assert "BAG202" in text and "data/new.txt" in text and "invalid" in text


def test_warnings_print_but_do_not_fail(tmp_path: Path) -> None:
    bag = make_bag(tmp_path)
    (bag / "notes.txt").write_text("an unlisted tag file")
    out = run("bag", "validate", bag)
    assert "BAG303" in out.stdout and "valid" in out.stdout


def test_profile_option(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"a": b"a"})
    run("bag", "create", source, tmp_path / "bag")
    report = json.loads(run("bag", "validate", tmp_path / "bag", "--profile", default_profile(), "--json",
                            exit_code=1).stdout)
    assert sorted(f["code"] for f in report["findings"]) == ["PRF001", "PRF001", "PRF001"]


def test_refused_delivery_exits_with_its_error_code(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"ok": b"ok", "bad\nname": b"x"})
    out = run("bag", "create", source, tmp_path / "bag", "--json", exit_code=10)
    refused = json.loads(out.stdout)
    assert refused["error"]["code"] == "E402" and [f["code"] for f in refused["findings"]] == ["DLV008"]
    assert not (tmp_path / "bag").exists()


@pytest.mark.parametrize(
    "args, exit_code",
    [
        (["--info", "no-equals-sign"], 2),
        (["--info", "Payload-Oxum=1.1"], 2),
        (["--workers", "0"], 2),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], exit_code: int) -> None:
    source = make_tree(tmp_path / "src", {"a": b"a"})
    run("bag", "create", source, tmp_path / "bag", *args, exit_code=exit_code)
    assert not (tmp_path / "bag").exists()


def test_missing_paths(tmp_path: Path) -> None:
    run("bag", "validate", tmp_path / "nothing", exit_code=5)
    run("bag", "create", tmp_path / "nothing", tmp_path / "bag", exit_code=5)


def test_not_a_delivery_lists_its_finding(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("plain text")
    refused = json.loads(run("bag", "create", tmp_path / "notes.txt", tmp_path / "bag", "--json", exit_code=10).stdout)
    assert [f["code"] for f in refused["findings"]] == ["DLV026"]


def test_create_refuses_bag_info_that_xml_cannot_carry(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"a.txt": b"a"})
    out = run("bag", "create", source, tmp_path / "bag", "--info", "Title=a\uffffb", exit_code=2)
    assert "E113" in out.output and "U+FFFF" in out.output
    assert not (tmp_path / "bag").exists() or not any((tmp_path / "bag").iterdir())
