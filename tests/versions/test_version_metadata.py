"""Metadata across versions: one item per article of a lineage, updated by a later version's metadata."""

from __future__ import annotations

import shutil
import threading
import time

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from devtools.articles import jats_article
from preservation.catalog.library_models import Item
from preservation.catalog.models import Package
from preservation.deaccession import deaccession
from preservation.findings import FindingList
from preservation.ingest import ingest
from preservation.metadata.items import register_items
from preservation.metadata.records import ItemRecord
from preservation.titles import held_issues

from ..fixtures import _drop_schema, _postgres_url, make_repo
from ..metadata.samples import AUTHORS, jats_delivery, write


def _md(result) -> list[str]:
    return sorted(w["code"] for w in result.get("warnings", []) if w["code"].startswith("MD"))


def _items(repo) -> list[Item]:
    with repo.catalog.session() as s:
        return s.scalars(select(Item).order_by(Item.id)).all()


def _held_items(repo) -> int:
    with repo.catalog.session() as s:
        return sum(h.items for issues in held_issues(s).values() for h in issues)  # what the holdings report counts


def _version_two(tmp_path):
    """v1: articles 1-4; v2: article 2's title corrected, article 4 removed, article 5 added."""
    one, two = tmp_path / "v1", tmp_path / "v2"
    dois = jats_delivery(one, 4)
    shutil.copytree(one, two)
    write(two, "期刊/物理学报/第02篇.xml",
          jats_article(dois[1], "拓扑绝缘体的表面态（2，勘误）", AUTHORS, volume=68, issue=2, year=2019, month=3,
                       pdf="第02篇.pdf", body_bytes=3000, seed=2, first_page=200))
    (two / "期刊/物理学报/第04篇.xml").unlink()
    (two / "期刊/物理学报/第04篇.pdf").unlink()
    dois += jats_delivery(two, 1, first=5)
    return one, two, dois


def test_a_new_version_keeps_one_item_per_doi_and_updates_the_changed_one(repo, tmp_path):
    one, two, dois = _version_two(tmp_path)
    v1 = ingest(repo, one, "journals")
    assert v1["state"] == "preserved" and _md(v1) == []
    before = {i.doi: (i.id, i.package_id, i.item_title) for i in _items(repo)}
    v2 = ingest(repo, two, "journals", version_of=v1["package_id"])
    assert v2["state"] == "preserved"
    assert _md(v2) == []  # neither MD011 (the lineage's own DOIs) nor MD012 (the referenced PDFs are held)
    assert v2["content"]["metadata"] == {"items": 1, "item_files": 2, "titles_created": 0, "sources": {"jats": 1},
                                         "earlier_items_kept": 3, "earlier_items_updated": 1}
    items = _items(repo)
    assert sorted(i.doi for i in items) == sorted(dois) and len(items) == 5  # exactly one item per DOI
    now = {i.doi: i for i in items}
    for doi in dois[:4]:  # kept: same row, still pointing at the version that stored its files
        assert (now[doi].id, now[doi].package_id) == before[doi][:2]
    assert now[dois[1]].item_title == "拓扑绝缘体的表面态（2，勘误）"
    assert now[dois[0]].item_title == before[dois[0]][2]
    assert now[dois[4]].package_id == v2["package_id"]
    assert _held_items(repo) == 5  # each article once, though both versions are preserved


def test_an_unchanged_version_warns_nothing_and_changes_no_item(repo, tmp_path):
    dois = jats_delivery(tmp_path / "v1", 2)
    v1 = ingest(repo, tmp_path / "v1", "journals")
    write(tmp_path / "v1", "勘误-001.txt", "第01篇：作者姓名更正。\n")
    v2 = ingest(repo, tmp_path / "v1", "journals", version_of=v1["package_id"])
    assert _md(v2) == []
    assert v2["content"]["metadata"]["earlier_items_kept"] == 2
    assert v2["content"]["metadata"]["earlier_items_updated"] == 0
    assert [(i.doi, i.package_id) for i in _items(repo)] == [(d, v1["package_id"]) for d in dois]
    assert _held_items(repo) == 2


def test_another_lineage_holding_the_doi_still_gets_md011(repo, tmp_path):
    one, two, dois = _version_two(tmp_path)
    v1 = ingest(repo, one, "journals")
    ingest(repo, two, "journals", version_of=v1["package_id"])
    jats_delivery(tmp_path / "other", 1, first=2)
    other = ingest(repo, tmp_path / "other", "journals")
    taken = [w for w in other["warnings"] if w["code"] == "MD011"]
    assert len(taken) == 1 and taken[0]["params"]["package_id"] == v1["package_id"]
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Item).where(Item.doi == dois[1])) == 1
        assert s.scalar(select(Item.doi).where(Item.package_id == other["package_id"])) is None


def test_a_deaccessioned_package_holds_no_doi(repo, tmp_path):
    dois = jats_delivery(tmp_path / "gone", 1)
    gone = ingest(repo, tmp_path / "gone", "journals")
    deaccession(repo, gone["package_id"], reason="withdrawn by the publisher", agent="test")
    with repo.catalog.session() as s:
        assert s.get(Package, gone["package_id"]).state == "deaccessioned"
    again = ingest(repo, tmp_path / "gone", "journals")
    assert _md(again) == []
    with repo.catalog.session() as s:
        assert s.scalar(select(Item.package_id).where(Item.doi == dois[0])) == again["package_id"]


def test_two_concurrent_ingests_claiming_one_doi_on_postgresql(tmp_path):
    """The second transaction waits on the first's uncommitted item, then stores its own without the DOI (MD011)."""
    url, schema = _postgres_url()
    repo = make_repo(tmp_path / "home", url)
    first = None
    try:
        write(tmp_path / "a", "a.txt", "a\n")
        write(tmp_path / "b", "b.txt", "b\n")
        a = ingest(repo, tmp_path / "a", "journals")["package_id"]
        b = ingest(repo, tmp_path / "b", "journals")["package_id"]
        doi = "10.7498/aps.68.20199999"

        def record() -> ItemRecord:
            return ItemRecord(kind="article", source_format="jats", metadata_path="data/x.xml", doi=doi,
                              item_title="同一篇文章")

        first = Session(repo.catalog.engine)
        other = create_engine(url)  # connections of its own: the catalog's pool is small
        register_items(first, a, [record()], FindingList())  # uncommitted: the second cannot see it
        outcome: dict = {}

        def second() -> None:
            with Session(other) as s:
                try:
                    findings = FindingList()
                    register_items(s, b, [record()], findings)
                    s.commit()
                    outcome["codes"] = [f.code for f in findings]
                except Exception as e:  # noqa: BLE001 - reported by the assertion below
                    outcome["error"] = e

        thread = threading.Thread(target=second, daemon=True)
        thread.start()
        with other.connect() as watch:  # until the second insert waits on the first's row
            for _ in range(200):
                if watch.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND query ILIKE '%INSERT INTO items%'")):
                    break
                watch.rollback()  # pg_stat_activity is a snapshot per transaction
                time.sleep(0.05)
            else:
                raise AssertionError(f"the second ingest never waited on the first: {outcome}")
        first.commit()
        first.close()
        thread.join(30)
        other.dispose()
        assert "error" not in outcome, outcome.get("error")
        assert outcome["codes"] == ["MD011"]
        with repo.catalog.session() as s:
            assert s.execute(select(Item.package_id, Item.doi).order_by(Item.id)).all() == [(a, doi), (b, None)]
    finally:
        if first is not None:
            first.close()  # a failed test must not leave its transaction holding the schema
        repo.close()
        _drop_schema(schema)
