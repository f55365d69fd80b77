"""The staff dashboard's series: per day and per node, what an operator would otherwise read in tables.

* audit coverage: the share of each node's copies verified within the policy's audit interval, from
  the samples the scheduler takes (:func:`take_sample`; the catalog keeps no history of it);
* bytes verified per day on each node (``bytes_read_on_node`` of its fixity checks), beside its read
  budget;
* findings: the findings of each node's failed fixity checks, per day;
* repairs: each node's repairs that succeeded and failed, per day;
* queue depth: the most jobs waiting or running at any sample of the day, and the dead jobs, overall and per
  node (the node of the copy a job is for; jobs for no copy, such as an ingest, are a row of their own).

Every series is one aggregate query over an index (``ix_events_occurred_at``,
``ix_monitoring_samples_series_sampled_at``), grouped by day in the database: a page reads the events of
its period through the index, never the whole log, and gets back one row per day and node.  Days are
calendar days in the ``access_timezone`` setting (Asia/Shanghai unless set: the consortium's day, not UTC's),
the newest last (today so far); the database turns each stored UTC time into that zone's date with the IANA
rules (PostgreSQL's ``timezone()``, on SQLite a function of :mod:`zoneinfo` registered on the connection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, delete, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from preservation import events
from preservation.catalog.models import Event, Job, Node, Replica, utcnow
from preservation.catalog.sample_models import (
    NO_NODE,
    SERIES_COVERAGE,
    SERIES_QUEUE,
    SERIES_QUEUE_BY_NODE,
    MonitoringSample,
)
from preservation.errors import InvalidRequest
from preservation.jobs.queue import DEAD, FAILED, QUEUED, RUNNING
from preservation.package_state import verified_within
from preservation.repository import Repository

WINDOWS = (7, 30, 90)  # the periods the page offers
MAX_DAYS = 366
SAMPLE_SECONDS = 600  # the scheduler samples at most this often
SAMPLE_RETENTION = timedelta(days=400)
WAITING = (QUEUED, RUNNING, FAILED)


@dataclass
class NodeSeries:
    name: str
    status: str
    read_budget: int
    coverage: list[float | None]  # share 0..1 at the day's last sample; None: no sample that day
    bytes_verified: list[int]
    audits: list[int]
    findings: list[int]
    repairs_succeeded: list[int]
    repairs_failed: list[int]
    queue_depth: list[int | None]  # most jobs for its copies waiting or running at one sample of the day
    dead_jobs: list[int | None]  # dead jobs for its copies at the day's last sample

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _local_date(FunctionElement):  # noqa: N801  (an SQL function's name)
    """The date, in an IANA zone, of a naive UTC timestamp column: ``_local_date(column, "Asia/Shanghai")``.

    The zone is written into the SQL as a literal (a setting checked against the zone database, never a
    reader's text), so that the same expression in SELECT and GROUP BY is the same text to PostgreSQL.

    With ``offset`` (minutes east of UTC, when the zone keeps one offset over the whole period asked
    about: :func:`_steady_offset`) SQLite computes the date itself, ``date(column, '+480 minutes')``,
    rather than calling Python once per row.
    """

    inherit_cache = True
    _traverse_internals = [*FunctionElement._traverse_internals, ("zone", InternalTraversal.dp_string),
                           ("offset", InternalTraversal.dp_plain_obj)]

    def __init__(self, column: Any, zone: str, offset: int | None = None) -> None:
        self.zone = zone
        self.offset = offset
        super().__init__(column)


@compiles(_local_date)
def _local_date_sqlite(element: _local_date, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    if element.offset is not None:
        return f"date({column}, '{int(element.offset):+d} minutes')"
    zone = compiler.render_literal_value(element.zone, String())
    return f"{SQLITE_LOCAL_DATE}({column}, {zone})"


@compiles(_local_date, "postgresql")
def _local_date_postgresql(element: _local_date, compiler: Any, **kw: Any) -> str:
    zone = compiler.render_literal_value(element.zone, String())
    return f"date(timezone({zone}, timezone('UTC', {compiler.process(element.clauses, **kw)})))"


SQLITE_LOCAL_DATE = "preserve_local_date"


@lru_cache(maxsize=65536)
def _local_date_text(minute: str, zone: str) -> str:
    """``YYYY-MM-DD HH:MM`` UTC → the date in ``zone`` (every zone's offset today is whole minutes)."""
    at = datetime.fromisoformat(minute).replace(tzinfo=timezone.utc)
    return at.astimezone(ZoneInfo(zone)).date().isoformat()


def _sqlite_local_date(value: str | None, zone: str) -> str | None:
    return None if value is None else _local_date_text(str(value)[:16], zone)


def _prepare(session: Session) -> None:
    """Give a SQLite connection the zone conversion :class:`_local_date` calls (PostgreSQL has its own)."""
    if session.get_bind().dialect.name == "sqlite":
        raw = session.connection().connection.driver_connection
        raw.create_function(SQLITE_LOCAL_DATE, 2, _sqlite_local_date, deterministic=True)


def _steady_offset(tz: ZoneInfo, start: datetime, end: datetime) -> int | None:
    """Minutes east of UTC when ``tz`` keeps one whole-minute offset from ``start`` to ``end`` (naive UTC),
    else None.  Offsets change only at a zone's transitions, and a zone has at most a few a year: the
    offset is compared at every day boundary and at both ends, so no transition between them goes unseen
    unless two fall within one day and cancel out (no zone does that)."""
    points = [start + timedelta(days=i) for i in range((end - start).days + 1)] + [end]
    offsets = {p.replace(tzinfo=timezone.utc).astimezone(tz).utcoffset() for p in points}
    if len(offsets) != 1:
        return None
    [offset] = offsets
    minutes, rest = divmod(int(offset.total_seconds()), 60)
    return None if rest else minutes


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The date in ``zone`` of a naive UTC time (as the catalog keeps them)."""
    return at.replace(tzinfo=timezone.utc).astimezone(zone).date()


@dataclass
class Dashboard:
    days: list[date]
    audit_interval_days: float
    nodes: list[NodeSeries]
    queue_depth: list[int | None]  # most jobs waiting or running at one sample of the day; None: no sample
    dead_jobs: list[int | None]  # dead jobs at the day's last sample
    queue_now: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {state: count}, from the jobs
    # jobs for no copy (an ingest, a whole package): queue depth and dead jobs as in NodeSeries
    unbound_queue_depth: list[int | None] = field(default_factory=list)
    unbound_dead_jobs: list[int | None] = field(default_factory=list)
    zone: str = "UTC"  # the IANA zone whose calendar days these are

    def to_dict(self) -> dict[str, Any]:
        return {"days": [d.isoformat() for d in self.days], "zone": self.zone,
                "audit_interval_days": self.audit_interval_days,
                "nodes": [n.to_dict() for n in self.nodes], "queue_depth": self.queue_depth,
                "dead_jobs": self.dead_jobs, "queue_now": self.queue_now,
                "unbound_queue_depth": self.unbound_queue_depth, "unbound_dead_jobs": self.unbound_dead_jobs}


def parse_days(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAYS:
        raise InvalidRequest(f"days must be a whole number from 1 to {MAX_DAYS}")
    return value


def _day(value: Any) -> date:
    """A database's DATE(...) as a date: SQLite returns text, PostgreSQL a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def dashboard(repo: Repository, days: int = 30, *, now: datetime | None = None,
              zone: str | None = None) -> Dashboard:
    """The series of the last ``days`` days in ``zone`` (default: the ``access_timezone`` setting), today
    included.  Raises InvalidRequest for a period out of range."""
    days = parse_days(days)
    now = now or utcnow()
    zone = zone or repo.settings.access_timezone
    tz = ZoneInfo(zone)
    first = local_day(now, tz) - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)
    day_list = [first + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    offset = _steady_offset(tz, start, now)
    policy = repo.policy
    with repo.catalog.session() as s:
        _prepare(s)
        node_rows = s.execute(select(Node.name, Node.status, Node.read_budget_bytes_per_day).order_by(Node.name)).all()
        nodes = {name: NodeSeries(name, status, int(budget or policy.audit.read_budget_bytes_per_day),
                                  [None] * days, [0] * days, [0] * days, [0] * days, [0] * days, [0] * days,
                                  [None] * days, [None] * days)
                 for name, status, budget in node_rows}
        unbound_depth: list[int | None] = [None] * days
        unbound_dead: list[int | None] = [None] * days
        by_label = {name: (series.queue_depth, series.dead_jobs) for name, series in nodes.items()}
        by_label[NO_NODE] = (unbound_depth, unbound_dead)

        day = _local_date(Event.occurred_at, zone, offset)
        read = Event.detail["bytes_read_on_node"].as_integer()
        found = Event.detail["findings_total"].as_integer()
        failed = case((Event.outcome == events.FAILURE, 1), else_=0)
        for d, node, checks, read_bytes, findings in s.execute(
                select(day, Event.node_name, func.count(), func.coalesce(func.sum(read), 0),
                       func.coalesce(func.sum(case((Event.outcome == events.FAILURE, found), else_=0)), 0))
                .where(Event.occurred_at >= start, Event.event_type == events.FIXITY_CHECK,
                       Event.node_name.is_not(None))
                .group_by(day, Event.node_name)):
            series, i = nodes.get(node), index.get(_day(d))
            if series is not None and i is not None:
                series.audits[i] = int(checks)
                series.bytes_verified[i] = int(read_bytes)
                series.findings[i] = int(findings)
        for d, node, ok, bad in s.execute(
                select(day, Event.node_name, func.sum(case((Event.outcome == events.SUCCESS, 1), else_=0)),
                       func.sum(failed))
                .where(Event.occurred_at >= start, Event.event_type == events.REPAIR, Event.node_name.is_not(None))
                .group_by(day, Event.node_name)):
            series, i = nodes.get(node), index.get(_day(d))
            if series is not None and i is not None:
                series.repairs_succeeded[i] = int(ok or 0)
                series.repairs_failed[i] = int(bad or 0)

        for at, node, value, total in _last_of_each_day(s, SERIES_COVERAGE, start, zone, offset):
            series, i = nodes.get(node), index.get(local_day(at, tz))
            if series is not None and i is not None:
                series.coverage[i] = (value / total) if total else 1.0

        queue_depth: list[int | None] = [None] * days
        dead_jobs: list[int | None] = [None] * days
        sample_day = _local_date(MonitoringSample.sampled_at, zone, offset)
        per_sample = (select(MonitoringSample.sampled_at.label("at"), func.sum(MonitoringSample.value).label("waiting"))
                      .where(MonitoringSample.series == SERIES_QUEUE, MonitoringSample.sampled_at >= start)
                      .group_by(MonitoringSample.sampled_at).subquery())
        for d, most in s.execute(select(_local_date(per_sample.c.at, zone, offset), func.max(per_sample.c.waiting))
                                 .group_by(_local_date(per_sample.c.at, zone, offset))):
            i = index.get(_day(d))
            if i is not None:
                queue_depth[i] = int(most or 0)
        last = (select(func.max(MonitoringSample.sampled_at).label("at"))
                .where(MonitoringSample.series == SERIES_QUEUE, MonitoringSample.sampled_at >= start)
                .group_by(sample_day).subquery())
        for at, dead in s.execute(select(MonitoringSample.sampled_at, func.sum(MonitoringSample.total))
                                  .join(last, MonitoringSample.sampled_at == last.c.at)
                                  .where(MonitoringSample.series == SERIES_QUEUE)
                                  .group_by(MonitoringSample.sampled_at)):
            i = index.get(local_day(at, tz))
            if i is not None:
                dead_jobs[i] = int(dead or 0)

        for d, label, most in s.execute(
                select(sample_day, MonitoringSample.label, func.max(MonitoringSample.value))
                .where(MonitoringSample.series == SERIES_QUEUE_BY_NODE, MonitoringSample.sampled_at >= start)
                .group_by(sample_day, MonitoringSample.label)):
            lists, i = by_label.get(label), index.get(_day(d))
            if lists is not None and i is not None:
                lists[0][i] = int(most or 0)
        for at, label, _waiting, dead in _last_of_each_day(s, SERIES_QUEUE_BY_NODE, start, zone, offset):
            lists, i = by_label.get(label), index.get(local_day(at, tz))
            if lists is not None and i is not None:
                lists[1][i] = int(dead or 0)

        queue_now: dict[str, dict[str, int]] = {}
        for kind, state, count in s.execute(select(Job.kind, Job.state, func.count())
                                            .where(Job.state.in_((*WAITING, DEAD))).group_by(Job.kind, Job.state)):
            queue_now.setdefault(kind, {}).update({state: int(count)})
    return Dashboard(day_list, policy.audit.interval_days, list(nodes.values()), queue_depth, dead_jobs,
                     dict(sorted(queue_now.items())), unbound_depth, unbound_dead, zone)


def _last_of_each_day(s, series: str, start: datetime, zone: str, offset: int | None):
    """(sampled_at, label, value, total) of the last sample of each day (in ``zone``) and label."""
    day = _local_date(MonitoringSample.sampled_at, zone, offset)
    last = (select(MonitoringSample.label, func.max(MonitoringSample.sampled_at).label("at"))
            .where(MonitoringSample.series == series, MonitoringSample.sampled_at >= start)
            .group_by(MonitoringSample.label, day).subquery())
    return s.execute(
        select(MonitoringSample.sampled_at, MonitoringSample.label, MonitoringSample.value, MonitoringSample.total)
        .join(last, and_(MonitoringSample.label == last.c.label, MonitoringSample.sampled_at == last.c.at))
        .where(MonitoringSample.series == series)).all()


def take_sample(repo: Repository, *, now: datetime | None = None, every: float = SAMPLE_SECONDS) -> dict[str, Any]:
    """Record queue depth by kind and by node, and audit coverage by node, unless a sample is younger than
    ``every`` seconds.

    A job's node is the node of the copy its payload names (``replica_id``); a job for no copy is counted
    under :data:`NO_NODE`.  Every node and :data:`NO_NODE` get a row at each sample, 0 when they have no job,
    so a day with a sample never shows a gap for them.

    Called by the scheduler at each tick; deletes samples older than :data:`SAMPLE_RETENTION`.
    """
    now = now or utcnow()
    interval_start = now - timedelta(days=repo.policy.audit.interval_days)
    with repo.catalog.session() as s:
        newest = s.scalar(select(func.max(MonitoringSample.sampled_at)))
        if newest is not None and (now - newest).total_seconds() < every:
            return {"sampled": False, "newest": newest.isoformat()}
        rows = []
        waiting = case((Job.state.in_(WAITING), 1), else_=0)
        dead = case((Job.state == DEAD, 1), else_=0)
        for kind, w, d in s.execute(select(Job.kind, func.sum(waiting), func.sum(dead))
                                    .where(Job.state.in_((*WAITING, DEAD))).group_by(Job.kind)):
            rows.append(MonitoringSample(sampled_at=now, series=SERIES_QUEUE, label=kind, value=int(w or 0),
                                         total=int(d or 0)))
        if not rows:  # an empty queue is a sample too (depth 0), not a gap
            rows.append(MonitoringSample(sampled_at=now, series=SERIES_QUEUE, label="", value=0, total=0))
        by_node = {name: (0, 0) for name in s.scalars(select(Node.name))}
        by_node[NO_NODE] = (0, 0)
        replica_id = Job.payload["replica_id"].as_integer()
        for name, w, d in s.execute(select(Node.name, func.sum(waiting), func.sum(dead))
                                    .select_from(Job)
                                    .join(Replica, Replica.id == replica_id, isouter=True)
                                    .join(Node, Node.id == Replica.node_id, isouter=True)
                                    .where(Job.state.in_((*WAITING, DEAD))).group_by(Node.name)):
            by_node[NO_NODE if name is None else name] = (int(w or 0), int(d or 0))
        rows.extend(MonitoringSample(sampled_at=now, series=SERIES_QUEUE_BY_NODE, label=label, value=w, total=d)
                    for label, (w, d) in by_node.items())
        audited = case((verified_within(interval_start), 1), else_=0)
        for name, copies, ok in s.execute(select(Node.name, func.count(Replica.id), func.sum(audited))
                                          .join(Replica, Replica.node_id == Node.id, isouter=True)
                                          .group_by(Node.name)):
            rows.append(MonitoringSample(sampled_at=now, series=SERIES_COVERAGE, label=name, value=int(ok or 0),
                                         total=int(copies or 0)))
        s.add_all(rows)
        pruned = s.execute(delete(MonitoringSample).where(MonitoringSample.sampled_at < now - SAMPLE_RETENTION))
    return {"sampled": True, "rows": len(rows), "pruned": pruned.rowcount or 0}
