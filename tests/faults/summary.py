"""One line per fault class, printed at the end of the run (see conftest.py).

A test (or its fixture) calls ``report``; the line rides on that test's report (``user_properties``), so it
reaches the process that prints the summary also when pytest-xdist runs the test in another process.
"""

from __future__ import annotations

PROPERTY = "fault-summary"
PENDING: list[str] = []  # said in this process, not yet attached to a test report
LINES: list[str] = []  # gathered from the reports, in the printing process


def report(line: str) -> None:
    PENDING.append(line)
