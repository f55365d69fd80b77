"""The quick read-only queries: their compiled SQL is current, and runs to what SQLAlchemy returns, on both catalogs.

``preservation.read_queries`` defines them with SQLAlchemy; ``catalog/read_sql.py`` holds what they compile to;
``catalog.reader.Reader`` runs that SQL on the driver (issue 22 point 3: `status` and `node list` start without
SQLAlchemy).  Each query is run here both ways on a catalog holding a row of every kind it reads (times, JSON,
booleans, NULLs), and the rows must be equal value for value.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from preservation import events
from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import Node, Package, Replica, UnrepairableFile, utcnow
from preservation.catalog.monitoring_models import NodeProbe
from preservation.catalog import read_sql
from preservation.catalog.reader import Reader, open_sqlite
from preservation.catalog.version_models import PackageVersion
from preservation.errors import CatalogOutdated
from preservation.home_dir import sqlite_path
from preservation.ingest import ingest
from preservation.jobs.queue import enqueue
from preservation.liveness import HeartbeatWriter, probe_nodes
from preservation.read_queries import QUERIES, READ_SQL, source
from preservation.status import StatusInputs, report, status

from .fixtures import make_repo

WINDOW = {"since": utcnow() - timedelta(days=30), "until": None}


def test_the_compiled_sql_is_what_the_definitions_compile_to():
    assert READ_SQL.read_text(encoding="utf-8") == source(), \
        "a read query or a table it reads changed: run `python -m preservation.read_queries`"


def _params(name: str, package_id: str) -> dict:
    runtime = set(read_sql.QUERIES[name]["sqlite"]["runtime"])
    given = {"package_id": package_id, "window_start": utcnow() - timedelta(days=90), **WINDOW}
    return {k: v for k, v in given.items() if k in runtime}


def _fill(repo, delivery) -> tuple[str, str]:
    """A row of every kind the quick queries read; returns the package id and the node whose copy lacks a file."""
    pid = ingest(repo, str(delivery), "journals")["package_id"]
    HeartbeatWriter(repo.catalog, "worker", "host:1:abc", interval=60, doing=lambda: {"jobs": [{"job": 7}]}).beat()
    probe_nodes(repo)
    now = utcnow()
    with repo.catalog.session() as s:
        replica = s.scalars(select(Replica).where(Replica.package_id == pid).order_by(Replica.id)).first()
        s.execute(update(NodeProbe).where(NodeProbe.node_id == replica.node_id)
                  .values(reachable=False, unreachable_since=now - timedelta(hours=2), error="no answer"))
        s.execute(update(Package).where(Package.id == pid).values(state="damaged"))
        lacking = s.get(Node, replica.node_id).name
        s.add(UnrepairableFile(package_id=pid, replica_id=replica.id, path="data/a.xml", found_at=now))
        s.add(PackageVersion(package_id=pid, lineage_id=pid, number=1, changes={"referenced_bytes": 12}))
        s.execute(update(FileFormat).where(FileFormat.package_id == pid).values(encrypted=True))
        job = enqueue(s, "audit", {"x": 1}, package_id=pid)
        job.state, job.last_error, job.finished_at = "dead", "boom\nsecond line", now
        events.record_event(s, events.FIXITY_CHECK, events.FAILURE, node_name="cas-nsl", package_id=pid,
                            detail={"state": "corrupt", "findings": [{"code": "A002", "path": "data/a.xml"}]})
        events.record_event(s, events.REPAIR, events.SUCCESS, package_id=pid, detail={})
    return pid, lacking


@pytest.fixture
def busy_repo(tmp_path, catalog_url, sample_delivery):
    """A catalog (SQLite, then PostgreSQL) with a row of every kind the quick queries read."""
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    try:
        yield (repo, *_fill(repo, sample_delivery))
    finally:
        repo.close()


def test_each_query_reads_on_the_driver_what_sqlalchemy_reads(busy_repo):
    repo, pid, _ = busy_repo
    with repo.catalog.session() as s:
        for name, statement in QUERIES.items():
            params = _params(name, pid)
            expected = [tuple(r) for r in s.execute(statement(), params).all()]
            got = [tuple(r) for r in Reader.of_session(s).rows(name, **params)]
            assert got == expected, name
            assert [type(v) for r in got for v in r] == [type(v) for r in expected for v in r], name
            assert expected, f"{name} read nothing: the fixture misses what it reads"


def test_status_reads_the_same_on_the_sqlite_file_as_through_a_session(repo, sample_delivery):
    _, lacking = _fill(repo, sample_delivery)
    path = sqlite_path(repo.settings.catalog_url)
    since = utcnow() - timedelta(days=7)  # both windows start at the same moment
    through_session = status(repo, incidents_since=since)
    inputs = StatusInputs(catalog=repo.catalog.display_url, policy=repo.policy.label,
                          audit_interval_days=repo.policy.audit.interval_days, monitoring=repo.settings.monitoring)
    with open_sqlite(path, repo.catalog.display_url) as reader:
        on_file = report(reader, inputs, incidents_since=since)
    for found in (through_session, on_file):
        found.pop("generated_at")
    assert json.dumps(on_file, sort_keys=True, default=str) == json.dumps(through_session, sort_keys=True, default=str)
    [damaged] = on_file["damaged_packages"]
    assert damaged["unrepairable"] == [{"path": "data/a.xml", "nodes": [lacking]}]
    assert damaged["unrepairable_files"] == 1
    assert on_file["nodes"][[n["name"] for n in on_file["nodes"]].index(lacking)]["reachability"]["reachable"] is False
    assert on_file["locked_files"]["encrypted"] >= 1 and on_file["dead_job_list"][0]["last_error"] == "boom"
    assert on_file["incidents"]["damage_found"] == 1 and on_file["incidents"]["repaired"] == 1


def test_the_file_reader_refuses_a_catalog_behind_the_migrations(repo):
    with repo.catalog.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    path = sqlite_path(repo.settings.catalog_url)
    with pytest.raises(CatalogOutdated):
        with open_sqlite(path, repo.catalog.display_url):
            pass


def test_a_query_given_the_wrong_parameters_is_refused(repo):
    with repo.catalog.session() as s:
        with pytest.raises(TypeError):
            Reader.of_session(s).rows("status.per_node")
        with pytest.raises(TypeError):
            Reader.of_session(s).rows("nodes.by_name", since=utcnow())
