"""The catalog on SQLite and on PostgreSQL: schema, migrations checks, events, jobs, indexes.

Every test here takes ``catalog_url`` and so runs on both databases; on CI
the PostgreSQL half must run (a missing server fails the run).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert, select, text, update

from preservation.catalog.db import Catalog
from preservation.catalog.models import ChainHead, Collection, Event, Node, Package, PackageFile, Replica
from preservation.collection import add_collection
from preservation.errors import AlreadyExists, CatalogNotInitialised, CatalogOutdated, CatalogTooNew, InvalidRequest
from preservation.events import FIXITY_CHECK, SUCCESS, record_event, verify_chain
from preservation.home import init_home
from preservation.jobs import kinds, queue
from preservation.nodes import add_node, list_nodes
from preservation.repository import Repository
from preservation.status import status

from .fixtures import make_repo


def _package(session, pid="p-1") -> Package:
    c = Collection(key=f"c-{pid}", title="t")
    session.add(c)
    session.flush()
    p = Package(id=pid, collection_id=c.id, name="n", payload_oxum="0.0", payload_files=0, payload_bytes=0,
                total_bytes=0, policy="default@1")
    session.add(p)
    session.flush()
    return p


def test_fresh_catalog_is_refused_until_init(catalog_url):
    cat = Catalog(catalog_url)
    with pytest.raises(CatalogNotInitialised) as e:
        cat.check_schema()
    assert "preserve init" in str(e.value)
    cat.upgrade()
    cat.check_schema()
    cat.dispose()


def test_catalog_at_an_older_revision_tells_operator_to_upgrade(catalog):
    with catalog.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(CatalogOutdated) as e:
        catalog.check_schema()
    assert "preserve catalog upgrade" in str(e.value)
    assert e.value.exit_code == CatalogOutdated.exit_code


def test_catalog_from_a_newer_preserve_is_refused(catalog):
    with catalog.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    with pytest.raises(CatalogTooNew):
        catalog.check_schema()


def test_upgrade_is_idempotent(catalog):
    before = catalog.current_revision()
    assert catalog.upgrade() == before


def test_event_chain_appends_and_verifies(catalog):
    with catalog.session() as s:
        _package(s)
        for i in range(5):
            record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", detail={"i": i, "名": "值"})
    with catalog.session() as s:
        report = verify_chain(s)
        assert report.ok and report.events_checked == 5


@pytest.mark.parametrize("tamper", ["alter", "remove_middle", "remove_last", "reorder"])
def test_event_chain_detects_tampering(catalog, tamper):
    with catalog.session() as s:
        _package(s)
        for i in range(6):
            record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", detail={"i": i})
    with catalog.engine.begin() as conn:
        if tamper == "alter":
            conn.execute(update(Event).where(Event.seq == 3).values(outcome="failure"))
        elif tamper == "remove_middle":
            conn.execute(Event.__table__.delete().where(Event.seq == 4))
        elif tamper == "remove_last":
            conn.execute(Event.__table__.delete().where(Event.seq == 6))
        else:
            a, b = [conn.execute(select(Event.detail).where(Event.seq == n)).scalar_one() for n in (2, 5)]
            conn.execute(update(Event).where(Event.seq == 2).values(detail=b))
            conn.execute(update(Event).where(Event.seq == 5).values(detail=a))
    with catalog.session() as s:
        report = verify_chain(s)
    assert not report.ok
    first = report.breaks[0].seq
    assert first == {"alter": 3, "remove_middle": 5, "remove_last": 6, "reorder": 2}[tamper]


def test_concurrent_event_appends_keep_one_chain(catalog):
    with catalog.session() as s:
        _package(s)

    def writer(n):
        for i in range(10):
            with catalog.session() as s:
                record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", detail={"writer": n, "i": i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with catalog.session() as s:
        report = verify_chain(s)
        assert report.ok and report.events_checked == 40
        assert s.get(ChainHead, 1).seq == 40


def test_enqueue_dedupes_live_jobs_only(catalog):
    with catalog.session() as s:
        a = queue.enqueue(s, kinds.AUDIT, {"replica_id": 1}, dedupe_key="audit:1")
        b = queue.enqueue(s, kinds.AUDIT, {"replica_id": 1}, dedupe_key="audit:1")
        assert a.id == b.id
        a.state = queue.SUCCEEDED  # a finished job frees its key
        s.flush()
        c = queue.enqueue(s, kinds.AUDIT, {"replica_id": 1}, dedupe_key="audit:1")
        assert c.id != a.id


def test_file_rows_are_unique_per_package_path(catalog):
    with pytest.raises(Exception):
        with catalog.session() as s:
            _package(s)
            row = {"package_id": "p-1", "path": "data/a", "size": 1, "sha256": "0" * 64, "sha512": "0" * 128}
            s.execute(insert(PackageFile), [row, row])
    with catalog.session() as s:
        assert s.scalar(select(PackageFile.id)) is None


def test_audit_queries_use_indexes(catalog):
    """Files by package and replicas by next audit must not scan whole tables."""
    queries = {
        "files": "SELECT path FROM files WHERE package_id = 'x' ORDER BY path",
        "replicas": "SELECT id FROM replicas WHERE next_audit_at < '2030-01-01' ORDER BY next_audit_at",
        "events": "SELECT seq FROM events WHERE package_id = 'x'",
    }
    with catalog.engine.connect() as conn:
        for name, q in queries.items():
            if catalog.dialect == "sqlite":
                plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + q)))
                assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (name, plan)
            else:
                conn.execute(text("SET enable_seqscan = off"))
                plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + q)))
                assert "Index" in plan, (name, plan)


def test_repository_registration_on_both_databases(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    try:
        names = [n["name"] for n in list_nodes(repo)]
        assert names == ["cas-nsl", "inst-istic", "uni-pku"]
        with pytest.raises(AlreadyExists):
            add_collection(repo, "journals", "again")
        with pytest.raises(InvalidRequest):
            add_node(repo, "bad name!", "cas", "x", (tmp_path / "n").as_uri())
        with pytest.raises(InvalidRequest):
            add_node(repo, "n2", "company", "x", (tmp_path / "n").as_uri())
        report = status(repo)
        assert report["packages"]["preserved"]["count"] == 0
        assert [n["name"] for n in report["nodes"]] == names
    finally:
        repo.close()


def test_init_home_writes_config_and_is_rerunnable(tmp_path, catalog_url):
    home = tmp_path / "h"
    home.mkdir()
    (home / "preserve.yaml").write_text(f"catalog_url: '{catalog_url}'\n")
    first = init_home(home)
    second = init_home(home)
    assert first["revision"] == second["revision"]
    Repository.open(home).close()


def test_replica_per_node_is_unique(catalog):
    with catalog.session() as s:
        _package(s)
        n = Node(name="n1", org_type="cas", region="r", uri="file:///x")
        s.add(n)
        s.flush()
        s.add(Replica(package_id="p-1", node_id=n.id))
    with pytest.raises(Exception):
        with catalog.session() as s:
            n = s.scalar(select(Node))
            s.add(Replica(package_id="p-1", node_id=n.id))


def test_challenge_column_migrates_down_and_up_on_a_catalog_with_copies(catalog, catalog_url):
    from alembic import command
    from sqlalchemy import inspect

    from preservation.catalog.db import _alembic_config

    with catalog.session() as s:
        p = _package(s)
        node = Node(name="n1", uri="file:///tmp/n1", org_type="university", region="beijing")
        s.add(node)
        s.flush()
        s.add(Replica(package_id=p.id, node_id=node.id, state="verified"))
    config = _alembic_config(catalog_url)
    command.downgrade(config, "0002")
    catalog.engine.dispose()
    assert "last_challenge_at" not in {c["name"] for c in inspect(catalog.engine).get_columns("replicas")}
    command.upgrade(config, "head")
    catalog.engine.dispose()
    with catalog.session() as s:
        [replica] = s.scalars(select(Replica)).all()
        assert (replica.state, replica.last_challenge_at) == ("verified", None)
    catalog.check_schema()
