"""The error tree: unique codes, exit codes that come from it, and one class for a failed source."""

from __future__ import annotations

import ast

import pytest

from preservation.errors import (
    EXIT_FINDINGS,
    EXIT_USAGE,
    PreservationError,
    SourceFailed,
    StorageUnavailable,
    all_error_classes,
)
from preservation.settings import REPO_ROOT

CLI = REPO_ROOT / "preservation" / "cli"


def test_error_codes_are_unique_and_well_formed() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    for cls in all_error_classes():
        assert cls.code[0] == "E" and cls.code[1:].isdigit() and len(cls.code) == 4, cls
        assert isinstance(cls.exit_code, int) and 0 < cls.exit_code < 126, cls


def test_only_findings_and_usage_errors_take_exit_codes_1_and_2() -> None:
    """1 means "the report holds findings" and 2 "usage": no other error may hide behind them."""
    by_exit = {code: sorted(c.__name__ for c in all_error_classes() if c.exit_code == code)
               for code in (EXIT_FINDINGS, EXIT_USAGE)}
    assert by_exit == {EXIT_FINDINGS: ["BagInvalid"], EXIT_USAGE: ["InvalidRequest", "InvalidText"]}


def test_a_failed_source_passes_through_a_writers_own_error_handling() -> None:
    cause = StorageUnavailable("no route", location="s3://x")
    failed = SourceFailed(cause)
    assert failed.error is cause and str(failed) == str(cause)
    assert not isinstance(failed, PreservationError)
    with pytest.raises(SourceFailed):
        try:
            raise failed
        except PreservationError:  # what a writer catches for its own failures
            pytest.fail("a writer would have taken the source's failure for its own")


def _system_exits(path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "SystemExit"]


def test_command_modules_take_exit_codes_from_the_error_tree() -> None:
    """Only cli/common.py raises SystemExit, with an error's exit code or EXIT_FINDINGS."""
    offenders = {p.name: _system_exits(p) for p in sorted(CLI.glob("*.py")) if p.name != "common.py"}
    assert {name: lines for name, lines in offenders.items() if lines} == {}
    assert len(_system_exits(CLI / "common.py")) == 2

