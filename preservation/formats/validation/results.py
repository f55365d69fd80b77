"""What validation found in one file, and how a validating process's answer becomes it.

Nothing a validating process answers is trusted: an answer is checked field
by field (:func:`validation_from`), its text clipped to :data:`MAX_TEXT`
characters and made XML-safe, its details kept two levels deep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from preservation import codes
from preservation.findings import FindingList
from preservation.text import xml_safe

VALID, INVALID, LIMIT, ERROR = "valid", "invalid", "limit", "error"
OUTCOMES = (VALID, INVALID, LIMIT, ERROR)
MAX_TEXT = 300
MAX_FINDINGS = 64
MAX_DETAIL_ITEMS = 20


@dataclass(frozen=True)
class Validation:
    """What validation found in one file."""

    kind: str
    outcome: str
    encrypted: bool = False
    drm: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    findings: tuple[tuple[str, str], ...] = ()

    @property
    def codes(self) -> list[str]:
        return [code for code, _ in self.findings]

    def finding_list(self, path: str | None = None) -> FindingList:
        """The findings as coded :class:`~preservation.findings.Finding` objects, at the registry's severity."""
        findings = FindingList()
        for code, message in self.findings:
            codes.note(findings, code, message, path, kind=self.kind, outcome=self.outcome)
        return findings

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "outcome": self.outcome, "encrypted": self.encrypted, "drm": self.drm,
                "details": self.details, "findings": [{"code": c, "message": m} for c, m in self.findings]}


class ProtocolViolation(Exception):
    """A validating process answered something that is not a well-formed answer."""


def _text(value: Any) -> str:
    text = xml_safe(str(value))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _detail(value: Any, depth: int = 0) -> Any:
    """A detail value made JSON- and XML-safe, clipped (an answer is outside text)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _text(value)
    if depth < 2 and isinstance(value, list):
        return [_detail(v, depth + 1) for v in value[:MAX_DETAIL_ITEMS]]
    if depth < 2 and isinstance(value, dict):
        return {_text(k): _detail(v, depth + 1) for k, v in list(value.items())[:MAX_DETAIL_ITEMS]}
    return _text(value)


def validation_from(answer: dict[str, Any], kind: str) -> Validation:
    """The :class:`Validation` a process's answer describes; raises ProtocolViolation for a malformed answer."""
    outcome = answer.get("outcome")
    findings = answer.get("findings")
    details = answer.get("details")
    if outcome not in OUTCOMES or not isinstance(findings, list) or not isinstance(details, dict):
        raise ProtocolViolation("an answer without outcome, findings or details")
    checked = []
    for item in findings[:MAX_FINDINGS]:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in codes.CODES and isinstance(item[1], str)):
            raise ProtocolViolation("a finding that is not [known code, message]")
        checked.append((item[0], _text(item[1])))
    return Validation(kind=kind, outcome=outcome, encrypted=answer.get("encrypted") is True,
                      drm=answer.get("drm") is True, details=_detail(details), findings=tuple(checked))


def stopped(kind: str, outcome: str, code: str, message: str, **details: Any) -> Validation:
    return Validation(kind=kind, outcome=outcome, details=details, findings=((code, message),))
