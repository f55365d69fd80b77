"""The read-only queries of the quick commands (``preserve status``, ``preserve node list``), defined with SQLAlchemy.

This module is where each of them is written, from the tables and the shared rules (a package's head version,
``catalog.lineages``; audit coverage, ``package_state.verified_within``).  What runs is the SQL SQLAlchemy
compiles them to, kept for SQLite and PostgreSQL in :mod:`preservation.catalog.read_sql` and run by
:class:`preservation.catalog.reader.Reader` without importing SQLAlchemy (docs/architecture.md, "Quick reads").

After changing a query here, or a table or rule it uses: ``python -m preservation.read_queries`` rewrites
``read_sql.py``; ``tests/test_read_queries.py`` fails until it is current.  A parameter given at run time is a
``bindparam`` without a value (``since``); every other value is compiled in as a constant parameter.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import JSON, Boolean, DateTime, Select, bindparam, case, func, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from preservation.catalog import lineages
from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import PACKAGE_DAMAGED, REPLICA_VERIFIED, Event, Job, Node, Package, Replica
from preservation.catalog.models import UnrepairableFile
from preservation.catalog.monitoring_models import Heartbeat, NodeProbe
from preservation.catalog.version_models import PackageVersion
from preservation.catalog.vocabulary import DEAD, FAILURE, REPAIR, SUCCESS
from preservation.package_state import verified_within
from preservation.status import LISTED

READ_SQL = Path(__file__).resolve().parent / "catalog" / "read_sql.py"


def _since_until(column) -> list:
    """``column`` in the window [:since, :until); a NULL ``until`` leaves the window open."""
    until = bindparam("until", type_=DateTime)
    return [column >= bindparam("since", type_=DateTime), or_(until.is_(None), column < until)]


def _count_if(condition) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _packages_by_state() -> Select:
    # a package delivered in versions counts once per state its versions are in, with its newest version's size
    heads = lineages.heads(by=[Package.state])
    return (select(Package.state.label("state"), func.count().label("count"),
                   func.coalesce(func.sum(Package.total_bytes), 0).label("bytes"))
            .join(heads, heads.c.id == Package.id).group_by(Package.state))


def _per_node() -> Select:
    window_start = bindparam("window_start", type_=DateTime)
    return (select(Replica.node_id.label("node_id"), func.count().label("replicas"),
                   func.coalesce(func.sum(Replica.bytes), 0).label("bytes"),
                   func.sum(case((Replica.state == REPLICA_VERIFIED, 1), else_=0)).label("verified"),
                   func.sum(case((verified_within(window_start), 1), else_=0)).label("verified_in_interval"),
                   func.min(Replica.verified_at).label("oldest_verified"),
                   func.min(Replica.next_audit_at).label("next_audit"))
            .group_by(Replica.node_id))


def _locked_files() -> Select:
    encrypted, drm = FileFormat.encrypted.is_(True), FileFormat.drm.is_(True)
    return (select(_count_if(encrypted).label("encrypted"), _count_if(drm).label("drm"),
                   _count_if(or_(encrypted, drm)).label("locked"))
            .where(or_(encrypted, drm)))


def _columns(*columns) -> list:
    return [c.label(c.name) for c in columns]


QUERIES: dict[str, Callable[[], Select]] = {
    # preserve status (preservation.status)
    "status.packages_by_state": _packages_by_state,
    "status.versions_by_state": lambda: select(Package.state.label("state"), func.count().label("count"))
    .group_by(Package.state),
    "status.replicas_by_state": lambda: select(Replica.state.label("state"), func.count().label("count"))
    .group_by(Replica.state),
    "status.per_node": _per_node,
    "status.jobs_by_state": lambda: select(Job.state.label("state"), func.count().label("count")).group_by(Job.state),
    "status.oldest_verified": lambda: select(func.min(Replica.verified_at).label("oldest")),
    "status.locked_files": _locked_files,
    "status.damaged_packages": lambda: select(Package.id.label("id"), Package.name.label("name"))
    .where(Package.state == PACKAGE_DAMAGED).order_by(Package.created_at).limit(LISTED),
    "status.unrepairable_count": lambda: select(func.count(func.distinct(UnrepairableFile.path)).label("count"))
    .where(UnrepairableFile.package_id == bindparam("package_id")),
    "status.dead_jobs": lambda: select(*_columns(Job.id, Job.kind, Job.package_id, Job.last_error))
    .where(Job.state == DEAD).order_by(Job.id.desc()).limit(LISTED),
    "status.versions": lambda: select(*_columns(PackageVersion.lineage_id, PackageVersion.package_id,
                                                PackageVersion.changes)),
    "status.version_holders": lambda: select(Replica.package_id.label("package_id"), Node.name.label("node"))
    .join(Node).join(PackageVersion, PackageVersion.package_id == Replica.package_id),
    # the incidents of a window (status.incidents)
    "incidents.repaired": lambda: select(func.count().label("count")).select_from(Event)
    .where(Event.event_type == REPAIR, Event.outcome == SUCCESS, *_since_until(Event.occurred_at)),
    "incidents.failures": lambda: select(*_columns(Event.seq, Event.occurred_at, Event.event_type, Event.node_name,
                                                   Event.package_id, Event.detail))
    .where(Event.outcome == FAILURE, *_since_until(Event.occurred_at)).order_by(Event.seq.desc()),
    "incidents.dead_jobs": lambda: select(func.count().label("count")).select_from(Job)
    .where(Job.state == DEAD, *_since_until(Job.finished_at)),
    # the files of a package no copy holds right (catalog.reads.unrepairable_files)
    "package.unrepairable_files": lambda: select(UnrepairableFile.path.label("path"), Node.name.label("node"))
    .join(Replica, Replica.id == UnrepairableFile.replica_id).join(Node, Node.id == Replica.node_id)
    .where(UnrepairableFile.package_id == bindparam("package_id")).order_by(UnrepairableFile.path, Node.name),
    # liveness (catalog.reads): heartbeats, node probes
    "liveness.heartbeats": lambda: select(*_columns(Heartbeat.role, Heartbeat.name, Heartbeat.host, Heartbeat.pid,
                                                    Heartbeat.started_at, Heartbeat.last_seen_at,
                                                    Heartbeat.stopped_at, Heartbeat.doing))
    .order_by(Heartbeat.last_seen_at.desc()),
    "liveness.probes": lambda: select(*_columns(NodeProbe.node_id, NodeProbe.checked_at, NodeProbe.reachable,
                                                NodeProbe.unreachable_since, NodeProbe.error)),
    # nodes (catalog.reads.list_nodes; status)
    "nodes.by_name": lambda: select(*_columns(Node.id, Node.name, Node.org_type, Node.organisation, Node.region,
                                              Node.uri, Node.status, Node.capacity_bytes,
                                              Node.read_budget_bytes_per_day)).order_by(Node.name),
    "nodes.usage": lambda: select(Replica.node_id.label("node_id"), func.count(Replica.id).label("replicas"),
                                  func.sum(Replica.bytes).label("bytes")).group_by(Replica.node_id),
}

DIALECTS = {"sqlite": sqlite.dialect(paramstyle="named"), "postgresql": psycopg.dialect()}


def _kind(type_: Any) -> str | None:
    """What a column's values need on SQLite to be what SQLAlchemy would return (reader._sqlite_value)."""
    if isinstance(type_, DateTime):
        return "datetime"
    if isinstance(type_, JSON):
        return "json"
    if isinstance(type_, Boolean):
        return "bool"
    return None


def compiled(name: str) -> dict[str, Any]:
    """The query ``name`` compiled for every dialect: its SQL, constant and run-time parameters, column kinds."""
    statement = QUERIES[name]()
    columns = [c.name for c in statement.selected_columns]
    out: dict[str, Any] = {"columns": tuple(columns),
                           "kinds": tuple(_kind(c.type) for c in statement.selected_columns)}
    for dialect_name, dialect in DIALECTS.items():
        c = statement.compile(dialect=dialect)
        runtime = tuple(sorted(k for k, b in c.binds.items() if b.required))
        out[dialect_name] = {"sql": c.string, "params": {k: v for k, v in c.params.items() if k not in runtime},
                             "runtime": runtime}
    return out


def source() -> str:
    """The text of ``catalog/read_sql.py``."""
    queries = {name: compiled(name) for name in QUERIES}
    return ('"""The SQL of the quick read-only queries, for SQLite and PostgreSQL: GENERATED, do not edit.\n\n'
            "Written by ``python -m preservation.read_queries`` from the definitions in\n"
            ":mod:`preservation.read_queries` (tests/test_read_queries.py holds the two equal); run by\n"
            ":class:`preservation.catalog.reader.Reader`.\n"
            '"""\n\n'
            f"QUERIES = {pprint.pformat(queries, width=120, sort_dicts=True)}\n")


def main(argv: list[str] | None = None) -> int:
    text = source()
    if READ_SQL.exists() and READ_SQL.read_text(encoding="utf-8") == text:
        print(f"{READ_SQL} is current")
        return 0
    READ_SQL.write_text(text, encoding="utf-8")
    print(f"wrote {READ_SQL}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
