"""The SQLite search index matches the tables after every kind of write (catalog.search_index, migration 0015).

The index is contentless, so "matches" is checked on what it holds: every
(term, row, column, offset) of the live FTS5 tables (read through fts5vocab
``instance`` tables) against an index built afresh from ``items`` and
``titles`` with the same SQL, and the per-row and total token counts.  A
row left unindexed, a stale value, or old values taken out of an index that
never held them all show as differences.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import delete, insert, text, update

from preservation import search
from preservation.catalog.db import Catalog, _alembic_config
from preservation.catalog.library_models import Item, Title
from preservation.catalog.models import Package
from preservation.catalog.search_index import INDEXED, bigram_sql, index_pending, value_sql
from preservation.catalog.search_tables import BIGRAMS, PENDING

from .catalog_data import add_package, populate


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    cat.upgrade()
    try:
        yield cat
    finally:
        cat.dispose()


def index_differences(conn) -> dict[str, int]:
    """For each FTS5 table: how many index entries differ from an index rebuilt from the catalog tables."""
    differences = {}
    for fts, (table, columns) in INDEXED.items():
        names = ", ".join(columns)
        for live, tokenizer, values in ((fts, "trigram", value_sql("x", columns)),
                                        (fts + BIGRAMS, "unicode61 remove_diacritics 0", bigram_sql("x", columns))):
            reference = f"ref_{live}"
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{reference}")
            conn.exec_driver_sql(f"CREATE VIRTUAL TABLE temp.{reference} USING fts5({names}, content='', "
                                 f"tokenize='{tokenizer}')")
            conn.exec_driver_sql(f"INSERT INTO temp.{reference}(rowid, {names}) SELECT x.id, {values} FROM {table} x")
            for name, schema in ((live, "main"), (reference, "temp")):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.v_{name}")
                conn.exec_driver_sql(f"CREATE VIRTUAL TABLE temp.v_{name} USING fts5vocab({schema}, {name}, instance)")
            columns_ = "term, doc, col, offset"
            differences[live] = conn.exec_driver_sql(
                f"SELECT count(*) FROM (SELECT {columns_} FROM temp.v_{live} EXCEPT "
                f"SELECT {columns_} FROM temp.v_{reference} UNION ALL SELECT * FROM (SELECT {columns_} FROM "
                f"temp.v_{reference} EXCEPT SELECT {columns_} FROM temp.v_{live}))").scalar_one()
            # each row's token counts, and the totals FTS5 keeps (rows, tokens per column; a 'delete' of a row the
            # index never held would lower them without a visible entry to differ)
            differences[live] += conn.exec_driver_sql(
                f"SELECT count(*) FROM (SELECT id, sz FROM {live}_docsize EXCEPT SELECT id, sz FROM "
                f"temp.{reference}_docsize UNION ALL SELECT * FROM (SELECT id, sz FROM temp.{reference}_docsize "
                f"EXCEPT SELECT id, sz FROM {live}_docsize))").scalar_one()
            differences[live] += conn.exec_driver_sql(
                f"SELECT (SELECT block FROM {live}_data WHERE id = 1) IS NOT "
                f"(SELECT block FROM temp.{reference}_data WHERE id = 1)").scalar_one()
            for name in (f"v_{live}", f"v_{reference}", reference):
                conn.exec_driver_sql(f"DROP TABLE temp.{name}")
    return differences


def pending(conn) -> int:
    return sum(conn.exec_driver_sql(f"SELECT count(*) FROM {fts}{PENDING}").scalar_one() for fts in INDEXED)


def assert_index_matches(catalog) -> None:
    with catalog.engine.connect() as conn:
        assert pending(conn) == 0
        assert index_differences(conn) == {name: 0 for fts in INDEXED for name in (fts, fts + BIGRAMS)}
        entries = conn.exec_driver_sql("SELECT count(*) FROM search_items_vocab").scalar_one()
        assert entries > 0  # the comparison compared something


def item_ids(catalog, q: str) -> list[int]:
    with catalog.session() as s:
        return [hit["id"] for hit in search.search_in(s, search.make_query(q), None)["items"]["hits"]]


def test_bulk_and_orm_inserts_are_indexed_at_commit(catalog):
    data = populate(catalog)  # titles through the ORM, items through Core inserts
    assert_index_matches(catalog)
    with catalog.session() as s:
        s.execute(insert(Item), [{"package_id": data.package_id, "kind": "article", "item_title": f"引力波探测 {n}",
                                  "authors": "赵 钱", "source_format": "jats"} for n in range(50)])
        assert pending(s.connection()) == 50  # noted by the trigger, not yet indexed
    assert_index_matches(catalog)
    assert len(item_ids(catalog, "引力波")) == 20  # a full page of the 50


def test_updates_replace_the_indexed_values(catalog):
    data = populate(catalog)
    doi = next(iter(data.items))
    with catalog.session() as s:
        s.execute(update(Item).where(Item.doi == doi).values(item_title="粒子加速器设计"))
        s.execute(update(Title).where(Title.id == data.titles["物理学报"]).values(title_english="Plasma Letters"))
    assert_index_matches(catalog)
    assert item_ids(catalog, "加速器") == [data.items[doi]]
    with catalog.session() as s:
        assert not search.search_in(s, search.make_query("Acta Physica"), None)["titles"]["hits"]
        assert search.search_in(s, search.make_query("Plasma"), None)["titles"]["hits"]


def test_a_row_changed_or_removed_before_its_commit(catalog):
    """Inserted then updated, or inserted then deleted, in one transaction: never indexed twice or taken out unindexed."""
    data = populate(catalog)
    with catalog.session() as s:
        first, second = (s.execute(insert(Item).values(package_id=data.package_id, kind="article", item_title=t,
                                                        authors="孙 李", source_format="jats").returning(Item.id))
                         .scalar_one() for t in ("暗物质初探", "超导体综述"))
        s.execute(update(Item).where(Item.id == first).values(item_title="暗能量初探", authors="周 吴"))
        s.execute(update(Item).where(Item.id == first).values(item_title="暗能量再探"))
        s.execute(delete(Item).where(Item.id == second))
    assert_index_matches(catalog)
    assert item_ids(catalog, "暗能量再探") == [first]
    assert item_ids(catalog, "超导体") == [] and item_ids(catalog, "暗物质") == []


def test_deletes_and_cascades_take_rows_out(catalog):
    data = populate(catalog)
    with catalog.session() as s:
        other = add_package(s, data.collection_id, name="pkg-2020")
        s.execute(insert(Item), [{"package_id": other, "kind": "article", "item_title": "量子纠缠实验",
                                  "authors": "郑 王", "source_format": "jats"}])
    with catalog.session() as s:
        s.execute(delete(Item).where(Item.doi == next(iter(data.items))))
        s.execute(delete(Package).where(Package.id == data.package_id))  # its items go by cascade
        s.execute(delete(Title).where(Title.id == data.titles["物理学报"]))
    assert_index_matches(catalog)
    assert len(item_ids(catalog, "量子纠缠")) == 1


def test_a_rolled_back_transaction_leaves_no_rows_and_no_notes(catalog):
    data = populate(catalog)
    with catalog.engine.connect() as conn:
        with conn.begin() as transaction:
            conn.execute(insert(Item), [{"package_id": data.package_id, "kind": "article",
                                         "item_title": "中微子振荡", "authors": "", "source_format": "jats"}])
            transaction.rollback()
    assert_index_matches(catalog)
    assert item_ids(catalog, "中微子") == []


def test_index_pending_may_be_called_inside_the_transaction(catalog):
    data = populate(catalog)
    with catalog.session() as s:
        s.execute(insert(Item), [{"package_id": data.package_id, "kind": "article", "item_title": "拓扑绝缘体",
                                  "authors": "", "source_format": "jats"}])
        conn = s.connection()
        assert index_pending(conn) == 1  # one table had rows to write
        assert pending(conn) == 0
        assert len(search.search_in(s, search.make_query("拓扑"), None)["items"]["hits"]) == 1
        assert index_pending(conn) == 0
    assert_index_matches(catalog)


def _migrate(catalog, step, target: str) -> None:
    """``command.upgrade`` or ``downgrade`` on the catalog's own engine, as ``Catalog.upgrade`` runs them."""
    config = _alembic_config(catalog.url)
    with catalog.engine.begin() as conn:
        config.attributes["connection"] = conn
        step(config, target)


def _revision_before_pending_lists() -> str:
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    found = [r.down_revision for r in script.walk_revisions() if r.module.__file__.endswith("_search_pending.py")]
    assert len(found) == 1
    return found[0]


def test_upgrade_from_per_row_triggers_and_back(tmp_path):
    """A catalog indexed by 0007's triggers keeps a matching index through the upgrade, and the downgrade."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'old.sqlite'}")
    try:
        previous = _revision_before_pending_lists()
        _migrate(catalog, command.upgrade, previous)
        populate(catalog)
        with catalog.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'search_items_pending'"
                                        ).scalar_one() == 0
        _migrate(catalog, command.upgrade, "head")
        assert_index_matches(catalog)
        with catalog.session() as s:
            package_id = s.execute(text("SELECT id FROM packages")).scalar_one()
            s.execute(insert(Item), [{"package_id": package_id, "kind": "article", "item_title": "声子晶体",
                                      "authors": "", "source_format": "jats"}])
        _migrate(catalog, command.downgrade, previous)
        with catalog.session() as s:
            s.execute(insert(Item), [{"package_id": package_id, "kind": "article", "item_title": "光子晶体",
                                      "authors": "", "source_format": "jats"}])
            s.execute(update(Item).where(Item.item_title == "声子晶体").values(item_title="声子晶格"))
        with catalog.engine.connect() as conn:
            assert index_differences(conn) == {name: 0 for fts in INDEXED for name in (fts, fts + BIGRAMS)}
        assert item_ids(catalog, "光子") and item_ids(catalog, "声子晶格")
    finally:
        catalog.dispose()
