"""Metrics and health endpoints, started for real and scraped with the Prometheus text parser: `preserve serve`,
the node agent and a worker process; the values follow an ingest, an audit and a corruption."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from alembic import command
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from devtools.demo import make_sample_delivery
from preservation.audit import audit
from preservation.catalog import db
from preservation.catalog.models import Package, Replica
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.jobs import kinds
from preservation.metrics import WorkerMetrics
from preservation.repository import Repository

from ..access.live import running_service
from ..corruption import flip_bit
from ..processes import log_tails, start, stop, wait_until
from ..services import free_port
from .conftest import write_config
from .scrape import names, scrape, total, value


def _payload_file(root, package_id: str):
    return next(p for p in sorted((root / package_id).rglob("*")) if p.is_file() and "/data/" in str(p))


def test_serve_metrics_follow_an_ingest_an_audit_and_a_corruption(world):
    with running_service(world.repo) as base:
        before = scrape(f"{base}/metrics")
        assert value(before, "preserve_catalog_up") == 1
        assert value(before, "preserve_replicas", state="verified") == 0
        assert value(before, "preserve_node_replicas", node="inst") == 0

        result = ingest(world.repo, make_sample_delivery(world.tmp / "delivery", megabytes=1), "journals")
        package_id = result["package_id"]
        after_ingest = scrape(f"{base}/metrics")
        assert value(after_ingest, "preserve_replicas", state="verified") == 3
        assert value(after_ingest, "preserve_packages", state="preserved") == 1
        assert value(after_ingest, "preserve_node_audit_coverage_ratio", node="uni") == 1.0

        flip_bit(_payload_file(world.node_root("uni"), package_id))
        audit(world.repo, package_id=package_id)
        after_audit = scrape(f"{base}/metrics")
        assert value(after_audit, "preserve_replicas", state="corrupt") == 1
        assert value(after_audit, "preserve_replicas", state="verified") == 2
        assert value(after_audit, "preserve_packages", state="degraded") == 1
        assert value(after_audit, "preserve_fixity_checks_last_day", outcome="failure") == 1
        assert value(after_audit, "preserve_fixity_checks_last_day", outcome="success") == 2
        assert total(after_audit, "preserve_findings_last_day") >= 1
        assert value(after_audit, "preserve_node_audit_bytes_last_day", node="cas") > 0
        assert value(after_audit, "preserve_jobs", kind="repair", state="queued") == 1
        assert value(after_audit, "preserve_node_audit_coverage_ratio", node="uni") == 0.0

        # requests are counted by route template, never by raw path
        httpx.get(f"{base}/api/packages/{package_id}", timeout=30)
        httpx.get(f"{base}/no/such/{package_id}", timeout=30)
        counted = scrape(f"{base}/metrics")
        routes = {s.labels["route"] for s in counted["preserve_http_requests_total"]}
        assert "/metrics" in routes and "(unmatched)" in routes
        assert not any(package_id in r for r in routes), routes
        assert value(counted, "preserve_http_requests_total", route="/metrics", status="200", method="GET") == 3
        assert value(counted, "preserve_http_request_duration_seconds_count", route="/metrics", method="GET") == 3

        assert httpx.get(f"{base}/healthz", timeout=30).json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz", timeout=30).json() == {"status": "ready"}


def test_metrics_are_refused_to_clients_outside_metrics_allow(world):
    write_config(world.home, monitoring={"metrics_allow": "['10.0.0.0/8']"})
    with running_service(world.reopen()) as base:
        response = httpx.get(f"{base}/metrics", timeout=30)
        assert response.status_code == 403 and "preserve_" not in response.text
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200


def test_readyz_is_503_while_the_catalog_needs_its_migrations(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    command.upgrade(db._alembic_config(f"sqlite:///{home / 'catalog.sqlite'}"), "0010")  # one migration short
    repo = Repository.open(home, check_schema=False)
    try:
        with running_service(repo) as base:
            response = httpx.get(f"{base}/readyz", timeout=30)
            assert response.status_code == 503
            assert response.json()["status"] == "not ready" and "E2" in response.json()["reason"]
            assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
    finally:
        repo.close()


def test_node_agent_metrics_count_bytes_written_read_and_digested(world):
    base = f"http://127.0.0.1:{world.agent.port}"
    assert httpx.get(f"{base}/healthz", timeout=30).json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz", timeout=30).json() == {"status": "ready"}
    first = scrape(f"{base}/metrics")
    assert value(first, "preserve_agent_written_bytes_total") == 0

    result = ingest(world.repo, make_sample_delivery(world.tmp / "delivery", megabytes=1), "journals")
    after_ingest = scrape(f"{base}/metrics")
    with world.repo.catalog.session() as s:
        stored = s.get(Package, result["package_id"]).total_bytes
    assert value(after_ingest, "preserve_agent_written_bytes_total") >= stored  # the bag, with upload trailers
    assert total(after_ingest, "preserve_http_requests_total", route="/v1/objects/{key:path}", method="PUT") > 0

    audit(world.repo, package_id=result["package_id"], node_name="inst")
    after_audit = scrape(f"{base}/metrics")
    assert value(after_audit, "preserve_agent_digests_total", outcome="ok") > value(after_ingest,
                                                                                   "preserve_agent_digests_total",
                                                                                   outcome="ok")
    assert value(after_audit, "preserve_agent_digest_bytes_total") > value(after_ingest,
                                                                          "preserve_agent_digest_bytes_total")
    routes = {s.labels["route"] for s in after_audit["preserve_http_requests_total"]}
    # an audit sends the agent its rows to check (POST /v1/verify); routes are labelled by template, never by key
    assert "/v1/verify" in routes and not any("data/" in r for r in routes), routes


def test_a_worker_serves_its_job_counts(world, preserved_in, tmp_path):
    with world.repo.catalog.session() as s:
        ids = s.scalars(select(Replica.id).where(Replica.package_id == preserved_in)).all()
        for replica_id in ids:
            kinds.enqueue_for_replica(s, kinds.SCHEDULED_AUDIT, replica_id, package_id=preserved_in)
    port = free_port()
    log = tmp_path / "worker.log"
    worker = start(world.home, "worker", "--poll", "0.2", "--metrics-listen", f"127.0.0.1:{port}", log=log)
    try:
        def audits_done():
            try:
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
            except httpx.HTTPError:
                return None
            done = value(samples, "preserve_worker_jobs_total", kind="audit", outcome="succeeded")
            # a job is counted when its outcome is recorded and timed once its events are flushed to the node:
            # a scrape may fall between the two, so wait for both
            timed = value(samples, "preserve_worker_job_duration_seconds_count", kind="audit")
            return samples if done == len(ids) and timed == len(ids) else None

        samples = wait_until(audits_done, 120, what="three audits counted by the worker\n" + log_tails(log))
        assert value(samples, "preserve_worker_job_duration_seconds_count", kind="audit") == len(ids)
        assert value(samples, "preserve_worker_jobs_running") == 0
    finally:
        assert stop(worker) == 0, log_tails(log)


@pytest.mark.parametrize("listen", ["nowhere", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:８０８０", "127.0.0.1:+80", ":80", "a\x00b:80"])
def test_a_bad_metrics_address_is_refused(run_cli, listen):
    init_home(run_cli.home)
    out = run_cli("worker", "--once", "--metrics-listen", listen, "--json", exit_code=4)
    error = json.loads(out.stderr)["error"]
    assert error["code"] == "E100" and "--metrics-listen" in error["message"]


DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana" / "preserve-dashboard.json"


def test_the_grafana_dashboard_uses_only_metrics_that_are_served(world, preserved_in):
    served: set[str] = set()
    with running_service(world.repo) as base:
        httpx.get(f"{base}/healthz", timeout=30)
        served |= names(f"{base}/metrics")
    served |= names(f"http://127.0.0.1:{world.agent.port}/metrics")
    worker = WorkerMetrics()
    worker.finished("audit", "succeeded")
    worker.seconds.labels("audit").observe(1)
    served |= {s.name for f in text_string_to_metric_families(generate_latest(worker.registry).decode())
               for s in f.samples}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"preserve_[a-z_]+", target["expr"])}
    assert len(used) >= 20
    assert used <= served, f"the dashboard names metrics nobody serves: {sorted(used - served)}"
