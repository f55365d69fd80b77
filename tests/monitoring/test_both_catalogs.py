"""Every monitoring query on SQLite and on PostgreSQL: heartbeats, probes, status's liveness, the metrics
collector and the alert evaluation (with a recording sender), after a corruption found by an audit."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devtools.demo import make_sample_delivery
from preservation.alerts import evaluate
from preservation.audit import audit
from preservation.ingest import ingest
from preservation.liveness import HeartbeatWriter, probe_nodes
from preservation.metrics import catalog_registry
from preservation.status import status

from ..corruption import flip_bit
from ..fixtures import make_repo, node_root


def test_monitoring_queries(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    try:
        package_id = ingest(repo, make_sample_delivery(tmp_path / "delivery", megabytes=1), "journals")["package_id"]
        victim = next(p for p in sorted((node_root(repo, "cas-nsl") / package_id).rglob("*"))
                      if p.is_file() and "/data/" in str(p))
        flip_bit(victim)
        audit(repo, package_id=package_id)
        beat = HeartbeatWriter(repo.catalog, "worker", "host:1:abc", interval=60, doing=lambda: {"jobs": []})
        beat.beat()
        assert probe_nodes(repo) == {"probed": 3, "unreachable": []}

        live = status(repo)["liveness"]
        assert live["workers_alive"] == 1 and not live["scheduler_alive"]
        assert all(n["reachability"]["reachable"] for n in status(repo)["nodes"])

        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(generate_latest(catalog_registry(repo)).decode())
                   for s in f.samples}
        assert samples[("preserve_catalog_up", ())] == 1
        assert samples[("preserve_replicas", (("state", "corrupt"),))] == 1
        assert samples[("preserve_node_audit_coverage_ratio", (("node", "cas-nsl"),))] == 0
        assert samples[("preserve_processes", (("role", "worker"), ("state", "alive")))] == 1

        sent = []
        result = evaluate(repo, sender=lambda channel, message: sent.append((channel, message)))
        assert result["open"] == 3 and result["opened"] == 3 and sent == []  # no channel configured
        assert evaluate(repo)["opened"] == 0
        beat.stop()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(generate_latest(catalog_registry(repo)).decode())
                   for s in f.samples}
        assert samples[("preserve_alerts_open", (("kind", "copy_damaged"),))] == 1
        assert samples[("preserve_processes", (("role", "worker"), ("state", "stopped")))] == 1
    finally:
        repo.close()
