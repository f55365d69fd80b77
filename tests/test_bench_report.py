"""make bench rewrites docs/benchmarks.md but keeps the sections of benchmarks run on their own."""

from __future__ import annotations

from bench.report import carry_over

PREVIOUS = """# Benchmarks

## Headline

old headline

## KBART import

100,000 rows: 9.1 s
"""

RENDERED = """# Benchmarks

## Headline

new headline
"""


def test_sections_this_run_did_not_write_are_kept_and_marked():
    out = carry_over(PREVIOUS, RENDERED)
    assert "new headline" in out and "old headline" not in out
    assert out.index("## KBART import") > out.index("new headline")
    assert "100,000 rows: 9.1 s" in out and "Kept from an earlier run" in out


def test_keeping_is_stable_over_runs_and_a_remeasured_section_replaces_the_old():
    once = carry_over(PREVIOUS, RENDERED)
    assert carry_over(once, RENDERED) == once
    fresh = RENDERED + "\n## KBART import\n\n100,000 rows: 7.5 s\n"
    again = carry_over(once, fresh)
    assert "7.5 s" in again and "9.1 s" not in again and "Kept from an earlier run" not in again


def test_nothing_previous_changes_nothing():
    assert carry_over("", RENDERED) == RENDERED
