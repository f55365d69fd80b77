"""One line per fault class, printed at the end of the run (see conftest.py)."""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    LINES.append(line)
