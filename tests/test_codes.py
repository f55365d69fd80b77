"""The finding code table: unique codes, and documented in docs/bagit-findings.md."""

from __future__ import annotations

from preservation.bagit.codes import CODES, markdown_table
from preservation.settings import REPO_ROOT


def test_every_code_is_documented_as_in_the_table() -> None:
    doc = (REPO_ROOT / "docs" / "bagit-findings.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, "regenerate the table in docs/bagit-findings.md from codes.markdown_table()"


def test_codes_are_well_formed() -> None:
    for code, spec in CODES.items():
        assert code == spec.code and code[:3] in ("BAG", "PRF", "DLV") and len(code) == 6
        assert spec.severity in ("error", "warning")
