"""Coded findings: what validation and audits report instead of stopping at the first problem.

A finding has a stable ``code`` (tests and scripts assert on it; every code is
defined in :mod:`preservation.codes`), a severity
(``error`` makes the subject invalid, ``warning`` does not), the path it is
about, and parameters.  Reports collect every finding before they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    path: str | None = None
    severity: str = ERROR
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        if self.params:
            out["params"] = self.params
        return out

    def __str__(self) -> str:
        where = f" {self.path}" if self.path is not None else ""
        return f"{self.code} {self.severity}{where}: {self.message}"


class FindingList:
    """An ordered collection of findings with error/warning views."""

    def __init__(self, findings: Iterable[Finding] = ()) -> None:
        self._items: list[Finding] = list(findings)

    def add(self, code: str, message: str, path: str | None = None, severity: str = ERROR, **params: Any) -> Finding:
        finding = Finding(code=code, message=message, path=path, severity=severity, params=params)
        self._items.append(finding)
        return finding

    def extend(self, findings: Iterable[Finding]) -> None:
        self._items.extend(findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self._items if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self._items if not f.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> list[str]:
        return [f.code for f in self._items]

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._items]
