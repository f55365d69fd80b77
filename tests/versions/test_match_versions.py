"""The policy matches a new delivery to the package it follows: on a bag-info identifier, or on title and year."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from preservation.catalog.models import Package
from preservation.catalog.version_models import PackageVersion
from preservation.errors import AmbiguousVersionMatch, PolicyError, VersionRefused
from preservation.ingest import ingest
from preservation.policy import load_policy
from preservation.settings import REPO_ROOT

from ..fixtures import make_repo
from .helpers import FIRST, second, write_delivery

IDENT = {"External-Identifier": "CNKI-EXPORT-物理学报"}


def _policy(tmp_path: Path, **versions) -> Path:
    data = yaml.safe_load((REPO_ROOT / "policies" / "default.yaml").read_text(encoding="utf-8"))
    data["versions"] = versions
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def matching(tmp_path):
    repo = make_repo(tmp_path / "home", policy=_policy(tmp_path, match_on=["identifier", "title_year"]))
    try:
        yield repo
    finally:
        repo.close()


def _counts(repo) -> tuple[int, int]:
    with repo.catalog.session() as s:
        return (s.scalar(select(func.count()).select_from(Package)),
                s.scalar(select(func.count()).select_from(PackageVersion)))


def _staging_left(repo) -> list[str]:
    root = repo.staging_dir
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_the_same_identifier_makes_the_delivery_version_2(matching, tmp_path):
    v1 = ingest(matching, write_delivery(tmp_path / "d1", FIRST), "journals", bag_info=IDENT)
    assert "matched" not in v1 and "version" not in v1
    v2 = ingest(matching, write_delivery(tmp_path / "d2", second(FIRST)), "journals", bag_info=IDENT)
    assert v2["state"] == "preserved"
    assert v2["matched"] == {"package_id": v1["package_id"], "on": "identifier", "field": "External-Identifier",
                             "value": IDENT["External-Identifier"]}
    assert v2["version"]["number"] == 2 and v2["version"]["lineage_id"] == v1["package_id"]
    v3 = ingest(matching, write_delivery(tmp_path / "d3", {**second(FIRST), "g.txt": b"golf\n"}), "journals",
                bag_info=IDENT)
    assert v3["version"]["number"] == 3 and v3["matched"]["package_id"] == v1["package_id"]  # the lineage, once


def test_title_and_year_match_across_width_case_and_spaces_but_not_another_year(matching, tmp_path):
    v1 = ingest(matching, write_delivery(tmp_path / "d1", FIRST), "journals",
                bag_info={"Title": "物理学报  Acta Physica", "Year": "2024"})
    v2 = ingest(matching, write_delivery(tmp_path / "d2", second(FIRST)), "journals",
                bag_info={"Title": "物理学报 ＡＣＴＡ physica", "Coverage-Year": "2024"})
    assert v2["matched"]["on"] == "title_year" and v2["matched"]["package_id"] == v1["package_id"]
    assert v2["version"]["number"] == 2
    other = ingest(matching, write_delivery(tmp_path / "d3", second(FIRST)), "journals",
                   bag_info={"Title": "物理学报 Acta Physica", "Year": "2025"})
    assert "matched" not in other and "version" not in other


def test_two_packages_that_match_refuse_the_delivery_and_nothing_changes(tmp_path):
    home = tmp_path / "home"
    repo = make_repo(home)  # matching off: two unrelated packages carry the same identifier
    try:
        for n in (1, 2):
            ingest(repo, write_delivery(tmp_path / f"d{n}", {**FIRST, "n.txt": str(n).encode()}), "journals",
                   bag_info=IDENT)
    finally:
        repo.close()
    (home / "preserve.yaml").write_text(f"policy: '{_policy(tmp_path, match_on=['identifier'])}'\n",
                                        encoding="utf-8")
    from preservation.repository import Repository

    with Repository.open(home) as repo:
        before = _counts(repo)
        with pytest.raises(AmbiguousVersionMatch) as refused:
            ingest(repo, write_delivery(tmp_path / "d3", second(FIRST)), "journals", bag_info=IDENT)
        assert refused.value.code == "E508" and refused.value.params["count"] == 2
        assert "--version-of" in refused.value.message
        assert _counts(repo) == before and _staging_left(repo) == []


def test_a_match_whose_newest_version_is_not_preserved_is_refused_and_nothing_changes(matching, tmp_path):
    ingest(matching, write_delivery(tmp_path / "d1", FIRST), "journals", bag_info=IDENT, replicate=False)
    before = _counts(matching)
    with pytest.raises(VersionRefused) as refused:
        ingest(matching, write_delivery(tmp_path / "d2", second(FIRST)), "journals", bag_info=IDENT)
    assert refused.value.code == "E503"
    assert _counts(matching) == before


def test_no_value_no_rule_or_another_collection_is_a_new_package(matching, tmp_path):
    from preservation.collection import add_collection

    add_collection(matching, "books", "Books", publisher="P")
    ingest(matching, write_delivery(tmp_path / "d1", FIRST), "journals", bag_info=IDENT)
    plain = ingest(matching, write_delivery(tmp_path / "d2", second(FIRST)), "journals")
    elsewhere = ingest(matching, write_delivery(tmp_path / "d3", second(FIRST)), "books", bag_info=IDENT)
    assert "matched" not in plain and "matched" not in elsewhere
    assert _counts(matching) == (3, 0)


def test_the_cli_says_it_matched_and_on_what(matching, tmp_path, run_cli):
    v1 = ingest(matching, write_delivery(tmp_path / "d1", FIRST), "journals", bag_info=IDENT)
    home = matching.settings.home
    delivery = write_delivery(tmp_path / "d2", second(FIRST))
    out = run_cli("ingest", delivery, "--collection", "journals", "--info",
                  f"External-Identifier={IDENT['External-Identifier']}", "--inline", "--json", home=home)
    body = json.loads(out.output)
    assert body["matched"]["package_id"] == v1["package_id"] and body["matched"]["on"] == "identifier"
    assert body["version"]["number"] == 2
    delivery = write_delivery(tmp_path / "d3", {**second(FIRST), "h.txt": b"hotel\n"})
    text = run_cli("ingest", delivery, "--collection", "journals", "--info",
                   f"External-Identifier={IDENT['External-Identifier']}", "--inline", "-q", home=home).output
    assert f"matched package {v1['package_id']} on External-Identifier = 'CNKI-EXPORT-物理学报'" in text
    assert "version 3 of" in text


@pytest.mark.parametrize("versions, problem", [
    ({"match_on": ["isbn"]}, "match_on"),
    ({"match_on": ["identifier", "identifier"]}, "twice"),
    ({"match_on": ["identifier"], "identifier_field": "External Identifier"}, "identifier_field"),
    ({"match_on": ["title_year"], "title_field": ""}, "title_field"),
    ({"match_on": "identifier"}, "match_on"),
    ({"match": ["identifier"]}, "match"),
])
def test_a_bad_versions_section_is_refused_naming_the_field(tmp_path, versions, problem):
    with pytest.raises(PolicyError) as refused:
        load_policy(_policy(tmp_path, **versions))
    assert problem in refused.value.message
