"""``preserve_packages`` counts packages as a librarian does (one per package, however many versions it has);
``preserve_package_versions`` counts every version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from preservation.catalog.models import Package
from preservation.ingest import ingest
from preservation.metrics import CatalogCollector

from ..fixtures import repo  # noqa: F401  (fixture)


def _delivery(root, text):
    (root / "articles").mkdir(parents=True)
    (root / "articles" / "a.txt").write_text(text, encoding="utf-8")
    return root


def _samples(repo) -> dict[tuple[str, str], float]:  # noqa: F811
    registry = CollectorRegistry()
    registry.register(CatalogCollector(repo))
    return {(s.name, s.labels.get("state", "")): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples}


def test_a_package_of_three_versions_is_one_package_and_three_versions(repo, tmp_path):  # noqa: F811
    ids = []
    for n in (1, 2, 3):
        result = ingest(repo, _delivery(tmp_path / f"v{n}", f"delivery {n}\n"), "journals", name="monthly",
                        version_of=ids[-1] if ids else None)
        assert result["state"] == "preserved", result
        ids.append(result["package_id"])
    single = ingest(repo, _delivery(tmp_path / "single", "once\n"), "journals", name="once")
    assert single["state"] == "preserved"

    got = _samples(repo)
    assert got[("preserve_packages", "preserved")] == 2
    assert got[("preserve_package_versions", "preserved")] == 4

    with repo.catalog.session() as s:  # version 1 damaged: the package is also counted as degraded
        s.execute(update(Package).where(Package.id == ids[0]).values(state="degraded"))
    got = _samples(repo)
    assert (got[("preserve_packages", "preserved")], got[("preserve_packages", "degraded")]) == (2, 1)
    assert (got[("preserve_package_versions", "preserved")], got[("preserve_package_versions", "degraded")]) == (3, 1)
