"""What one format check reports, and the table of checks by kind.

The checks (``pdf``, ``markup``, ``epub``, ``image`` beside this module)
parse hostile files with C libraries, so they run only inside a validating
process (:mod:`preservation.formats.checks.process`), never in the process
that ingests.  Each is a function ``check(stream, report)`` registered for a kind
with :func:`register`; it reads the file from ``stream`` (a seekable binary
file) and records what it finds on ``report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from preservation import codes

VALID = "valid"
INVALID = "invalid"
LIMIT = "limit"
ERROR = "error"
OUTCOMES = (VALID, INVALID, LIMIT, ERROR)

MAX_FINDINGS = 50
"""Findings kept per file; a file with a thousand bad products says so once, with the count."""

Check = Callable[[BinaryIO, "Report"], None]
CHECKS: dict[str, Check] = {}


def register(kind: str) -> Callable[[Check], Check]:
    """Register the decorated function as the check of ``kind`` (a later registration replaces it)."""

    def decorate(check: Check) -> Check:
        CHECKS[kind] = check
        return check

    return decorate


@dataclass
class Report:
    """What a check found in one file: faults make it invalid, notes do not."""

    kind: str
    outcome: str = VALID
    encrypted: bool = False
    drm: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    findings: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0

    def fault(self, code: str, message: str) -> None:
        """A defect of the file: the outcome becomes ``invalid`` (unless it already stopped or failed)."""
        self._add(code, message)
        if self.outcome == VALID:
            self.outcome = INVALID

    def note(self, code: str, message: str) -> None:
        """Something to know (encryption, permissions) that is not a defect."""
        self._add(code, message)

    def stopped(self, code: str, message: str) -> None:
        """The file was not checked to the end: a limit stopped it."""
        self._add(code, message)
        self.outcome = LIMIT

    def failed(self, code: str, message: str) -> None:
        """The check could not run on the file."""
        self._add(code, message)
        self.outcome = ERROR

    def _add(self, code: str, message: str) -> None:
        if code not in codes.CODES:
            raise ValueError(f"unknown finding code {code!r}")
        if len(self.findings) >= MAX_FINDINGS:
            self.dropped += 1
            return
        self.findings.append((code, message))

    def answer(self) -> dict[str, Any]:
        """The JSON-safe answer the validating process sends back."""
        details = dict(self.details)
        if self.dropped:
            details["findings_dropped"] = self.dropped
        return {
            "kind": self.kind,
            "outcome": self.outcome,
            "encrypted": self.encrypted,
            "drm": self.drm,
            "details": details,
            "findings": [list(f) for f in self.findings],
        }
