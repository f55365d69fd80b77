"""Prometheus metrics from the catalog, and the workers' own counters.

:class:`CatalogCollector` computes its gauges from the catalog at each
scrape, with a handful of aggregate queries that use indexes (replicas by
state and node, jobs by state, events and audits of the last day through
``ix_events_occurred_at`` and ``ix_replicas_last_audit``); nothing scans the
file table.  ``preserve serve`` exposes it at ``/metrics``; one scrape target
is enough for the whole catalog, so workers do not repeat it.

:class:`WorkerMetrics` counts a worker process's own jobs.  Each worker
process serves them on its own address (``preserve worker --metrics-listen``):
a worker's threads share one registry, and separate processes are separate
targets, so no multiprocess directory is needed.

Every metric is named in docs/monitoring.md and used by the Grafana dashboard
in config/grafana/.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from preservation import events
from preservation.catalog import lineages
from preservation.catalog.models import PACKAGE_STATES, REPLICA_STATES, Event, Job, Node, Package
from preservation.catalog.models import Replica, utcnow
from preservation.catalog.monitoring_models import Alert, Heartbeat
from preservation.errors import PreservationError
from preservation.jobs.queue import DEAD, FAILED, QUEUED, RUNNING
from preservation.liveness import node_reachability, process_state
from preservation.package_state import verified_within
from preservation.repository import Repository

log = logging.getLogger("preserve.metrics")

WINDOW = timedelta(days=1)  # "last day" gauges
MAX_EVENTS_READ = 20_000  # failure events read per scrape for findings by code (the count of events is exact)
JOB_STATES_SHOWN = (QUEUED, RUNNING, FAILED, DEAD)  # succeeded and cancelled jobs only grow: not a queue


class CatalogCollector(Collector):
    """Gauges computed from the catalog when scraped; ``preserve_catalog_up`` 0 when it cannot be read."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def describe(self) -> list:
        return []  # computed at scrape time: nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("preserve_catalog_up", "1 when the catalog answered this scrape")
        try:
            families = self._families()
        except (SQLAlchemyError, PreservationError) as e:
            log.warning("metrics: the catalog did not answer: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[GaugeMetricFamily]:
        now = utcnow()
        since = now - WINDOW
        policy = self.repo.policy
        interval_start = now - timedelta(days=policy.audit.interval_days)
        monitoring = self.repo.settings.monitoring
        out: list[GaugeMetricFamily] = []
        with self.repo.catalog.session() as s:
            # a package delivered in versions is one package, counted once under each state its versions are
            # in (as the status report counts it, catalog.lineages); every version is counted on its own below
            packages = GaugeMetricFamily("preserve_packages", "Packages (however many versions) by state",
                                         labels=["state"])
            counts = lineages.count_by(s, Package.state)
            for state in PACKAGE_STATES:
                packages.add_metric([state], counts.get(state, 0))
            out.append(packages)
            package_versions = GaugeMetricFamily("preserve_package_versions", "Package versions by state",
                                                 labels=["state"])
            counts = dict(s.execute(select(Package.state, func.count()).group_by(Package.state)).all())
            for state in PACKAGE_STATES:
                package_versions.add_metric([state], counts.get(state, 0))
            out.append(package_versions)

            replicas = GaugeMetricFamily("preserve_replicas", "Copies by state", labels=["state"])
            counts = dict(s.execute(select(Replica.state, func.count()).group_by(Replica.state)).all())
            for state in REPLICA_STATES:
                replicas.add_metric([state], counts.get(state, 0))
            out.append(replicas)

            out.extend(self._nodes(s, now, since, interval_start, policy.audit.read_budget_bytes_per_day, monitoring))
            out.extend(self._jobs(s, now))
            out.extend(self._events(s, since))
            out.extend(self._liveness(s, now, monitoring))
        return out

    def _nodes(self, s, now, since, interval_start, default_budget, monitoring) -> list[GaugeMetricFamily]:
        nodes = s.execute(select(Node.id, Node.name, Node.status, Node.read_budget_bytes_per_day)).all()
        per_node = {
            row.node_id: row for row in s.execute(
                select(Replica.node_id, func.count().label("copies"),
                       func.sum(case((verified_within(interval_start), 1), else_=0)).label("audited"))
                .group_by(Replica.node_id))
        }
        audited_bytes = dict(s.execute(
            select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0))
            .where(Replica.last_audit_at >= since).group_by(Replica.node_id)).all())
        reach = node_reachability(s, monitoring, now)
        copies = GaugeMetricFamily("preserve_node_replicas", "Copies on each node", labels=["node"])
        coverage = GaugeMetricFamily(
            "preserve_node_audit_coverage_ratio",
            "Share of a node's copies verified within the policy's audit interval", labels=["node"])
        read = GaugeMetricFamily("preserve_node_audit_bytes_last_day",
                                 "Bytes of the copies audited on each node in the last 24 hours", labels=["node"])
        budget = GaugeMetricFamily("preserve_node_read_budget_bytes_per_day", "Each node's daily audit read budget",
                                   labels=["node"])
        up = GaugeMetricFamily("preserve_node_reachable", "1 when the node answered the scheduler's last probe",
                               labels=["node", "status"])
        down_for = GaugeMetricFamily("preserve_node_unreachable_seconds",
                                     "Seconds since the node stopped answering (0 when it answers)", labels=["node"])
        for node_id, name, status, node_budget in nodes:
            row = per_node.get(node_id)
            count = row.copies if row else 0
            copies.add_metric([name], count)
            coverage.add_metric([name], (int(row.audited or 0) / count) if count else 1.0)
            read.add_metric([name], int(audited_bytes.get(node_id, 0)))
            budget.add_metric([name], node_budget or default_budget)
            probe = reach.get(node_id)
            if probe is not None:
                up.add_metric([name, status], 1 if probe["reachable"] else 0)
                since_text = probe["unreachable_since"]
                seconds = 0.0
                if since_text is not None:
                    seconds = (now - datetime.fromisoformat(since_text)).total_seconds()
                down_for.add_metric([name], max(seconds, 0.0))
        return [copies, coverage, read, budget, up, down_for]

    def _jobs(self, s, now) -> list[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("preserve_jobs", "Jobs by kind and state (queued, running, failed, dead)",
                                 labels=["kind", "state"])
        for kind, state, count in s.execute(
                select(Job.kind, Job.state, func.count()).where(Job.state.in_(JOB_STATES_SHOWN))
                .group_by(Job.kind, Job.state)):
            jobs.add_metric([kind, state], count)
        oldest = GaugeMetricFamily("preserve_job_oldest_due_seconds",
                                   "Age of the oldest job of each kind due to run and still waiting", labels=["kind"])
        for kind, first in s.execute(
                select(Job.kind, func.min(Job.run_after)).where(Job.state.in_((QUEUED, FAILED)), Job.run_after <= now)
                .group_by(Job.kind)):
            oldest.add_metric([kind], max((now - first).total_seconds(), 0.0))
        dead = GaugeMetricFamily("preserve_dead_jobs", "Dead jobs (waiting for an operator)")
        dead.add_metric([], s.scalar(select(func.count()).select_from(Job).where(Job.state == DEAD)) or 0)
        return [jobs, oldest, dead]

    def _events(self, s, since) -> list[GaugeMetricFamily]:
        findings = GaugeMetricFamily("preserve_findings_last_day",
                                     "Findings by code in the events of the last 24 hours", labels=["code"])
        by_code: dict[str, int] = {}
        rows = s.execute(
            select(Event.detail).where(Event.occurred_at >= since, Event.outcome != events.SUCCESS)
            .order_by(Event.occurred_at.desc()).limit(MAX_EVENTS_READ))
        for (detail,) in rows:
            for finding in (detail or {}).get("findings") or [] if isinstance(detail, dict) else []:
                code = finding.get("code") if isinstance(finding, dict) else None
                if isinstance(code, str) and len(code) <= 16 and code.isalnum():
                    by_code[code] = by_code.get(code, 0) + 1
        for code, count in sorted(by_code.items()):
            findings.add_metric([code], count)
        checks = GaugeMetricFamily("preserve_fixity_checks_last_day",
                                   "Fixity checks (audits, challenges) of the last 24 hours by outcome",
                                   labels=["outcome"])
        repairs = GaugeMetricFamily("preserve_repairs_last_day", "Repairs of the last 24 hours by outcome",
                                    labels=["outcome"])
        for event_type, family in ((events.FIXITY_CHECK, checks), (events.REPAIR, repairs)):
            counts = dict(s.execute(
                select(Event.outcome, func.count()).where(Event.occurred_at >= since, Event.event_type == event_type)
                .group_by(Event.outcome)).all())
            for outcome in (events.SUCCESS, events.FAILURE, events.WARNING):
                family.add_metric([outcome], counts.get(outcome, 0))
        return [findings, checks, repairs]

    def _liveness(self, s, now, monitoring) -> list[GaugeMetricFamily]:
        age = GaugeMetricFamily("preserve_heartbeat_age_seconds",
                                "Seconds since each running worker or scheduler last wrote its heartbeat",
                                labels=["role", "name", "host"])
        states = GaugeMetricFamily("preserve_processes", "Workers and schedulers by state (alive, silent, stopped)",
                                   labels=["role", "state"])
        tally: dict[tuple[str, str], int] = {}
        for row in s.scalars(select(Heartbeat)):
            state = process_state(row, now, monitoring)
            tally[(row.role, state)] = tally.get((row.role, state), 0) + 1
            if row.stopped_at is None:
                age.add_metric([row.role, row.name, row.host], max((now - row.last_seen_at).total_seconds(), 0.0))
        for role in ("worker", "scheduler"):
            for state in ("alive", "silent", "stopped"):
                states.add_metric([role, state], tally.get((role, state), 0))
        alerts = GaugeMetricFamily("preserve_alerts_open", "Alert conditions open now, by kind", labels=["kind"])
        for kind, count in s.execute(select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None))
                                     .group_by(Alert.kind)):
            alerts.add_metric([kind], count)
        return [age, states, alerts]


def catalog_registry(repo: Repository) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CatalogCollector(repo))
    return registry


def readiness(repo: Repository) -> str | None:
    """Why the catalog is not ready (unreachable, migrations not current), or None when it is."""
    try:
        with repo.catalog.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        repo.catalog.check_schema()
    except PreservationError as e:
        return f"{e.code} {e}"
    except SQLAlchemyError as e:
        return f"the catalog does not answer: {type(e).__name__}"
    return None


class WorkerMetrics:
    """A worker process's own counters, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.jobs = Counter("preserve_worker_jobs", "Jobs this worker finished, by kind and outcome "
                            "(succeeded, retried, dead, lost)", ["kind", "outcome"], registry=self.registry)
        self.seconds = Histogram("preserve_worker_job_duration_seconds", "Time a job ran on this worker, by kind",
                                 ["kind"], registry=self.registry,
                                 buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600))
        self.running = Gauge("preserve_worker_jobs_running", "Jobs running on this worker now", registry=self.registry)

    def finished(self, kind: str, outcome: str) -> None:
        self.jobs.labels(kind, outcome).inc()

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the server (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
