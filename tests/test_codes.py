"""The one table of finding codes: unique, well formed, and documented where each family says."""

from __future__ import annotations

import ast
import re

import pytest

from preservation import codes
from preservation.codes import CODES, FAMILIES, markdown_table
from preservation.settings import REPO_ROOT


def test_every_family_table_is_in_its_document() -> None:
    for family in FAMILIES.values():
        rows = markdown_table(family.prefix).split("\n", 2)[2]
        doc = (REPO_ROOT / family.doc).read_text(encoding="utf-8")
        assert rows in doc, f"regenerate the {family.prefix} table in {family.doc} from codes.markdown_table()"


def test_the_index_of_families_names_every_family() -> None:
    index = (REPO_ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    for prefix in FAMILIES:
        assert re.search(rf"^\| `{prefix}` \|", index, re.M), f"docs/findings.md lists no family {prefix}"


def test_every_code_is_in_exactly_one_documented_table() -> None:
    for code, spec in CODES.items():
        doc = (REPO_ROOT / FAMILIES[spec.family].doc).read_text(encoding="utf-8")
        assert len(re.findall(rf"^\| {code} \|", doc, re.M)) == 1, code


def test_codes_are_well_formed() -> None:
    for code, spec in CODES.items():
        assert code == spec.code and re.fullmatch(r"[A-Z]+\d{3}", code)
        assert spec.family in FAMILIES
        assert spec.severity in ("error", "warning")
        assert spec.title and "\n" not in spec.title


def test_a_code_cannot_be_defined_twice_or_outside_a_family() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        codes._code("A001", "error", "again")
    with pytest.raises(ValueError, match="known family"):
        codes._code("Z001", "error", "no such family")
    assert CODES["A001"].title == "a file the catalog lists is not on the node"


def test_no_module_spells_a_finding_code_of_its_own() -> None:
    """A code string in product code outside codes.py would be a second, undocumented registry."""
    form = re.compile(r"(?:%s)\d{3}" % "|".join(FAMILIES))
    offenders = []
    for path in sorted((REPO_ROOT / "preservation").rglob("*.py")):
        if path.name == "codes.py" and path.parent.name == "preservation":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and form.fullmatch(node.value):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.value}")
    assert offenders == []
