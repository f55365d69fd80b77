"""Incidents you can see (issue 19 point 1): findings logged at WARNING, status's recent incidents, event filters."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from preservation import events
from preservation.catalog.models import utcnow
from preservation.catalog.reader import Reader
from preservation.ingest import ingest
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.status import incidents

from .corruption import flip_bit
from .fixtures import make_repo, node_root

XML = "data/期刊/物理学报/2024/元数据.xml"


def test_a_corruption_is_logged_shown_in_status_and_filtered_in_events(run_cli, sample_delivery, tmp_path, caplog):
    repo = make_repo(run_cli.home)
    try:
        pid = ingest(repo, str(sample_delivery), "journals")["package_id"]
        flip_bit(node_root(repo, "cas-nsl") / pid / XML)
        log_file = tmp_path / "preserve.log"
        with caplog.at_level(logging.WARNING, logger="preserve.incidents"):
            run_cli("--log-format", "json", "--log-file", str(log_file), "audit", "--package", pid[:8], "--json",
                    exit_code=1)
        warned = [r for r in caplog.records if r.name == "preserve.incidents"]
        assert warned and all(r.levelno == logging.WARNING for r in warned)
        line = warned[0].getMessage()
        assert "cas-nsl" in line and pid in line and XML in line and "A002" in line
        lines = [json.loads(x) for x in log_file.read_text(encoding="utf-8").splitlines()]
        finding = next(x for x in lines if x["logger"] == "preserve.incidents")
        assert finding["level"] == "WARNING" and finding["node"] == "cas-nsl" and finding["package"] == pid
        assert finding["path"] == XML and finding["time"].endswith("Z")

        found = run_cli("status", "--json").json()["incidents"]
        assert found["damage_found"] == 1 and found["repaired"] == 0 and found["dead_jobs"] == 0
        assert found["recent"][0]["node"] == "cas-nsl" and found["recent"][0]["path"] == XML
        Worker(repo, default_registry(), WorkerOptions(once=True)).run()
        found = run_cli("status", "--json").json()["incidents"]
        assert found["repaired"] == 1 and found["damage_found"] == 1
        text = run_cli("status").output
        assert "recent incidents" in text and "copies repaired" in text and XML in text
        assert run_cli("status", "--since", "2999-01-01", "--json").json()["incidents"]["damage_found"] == 0

        failures = run_cli("events", "list", "--outcome", "failure", "--json").json()
        assert failures["count"] == len(failures["events"]) >= 1
        assert {e["outcome"] for e in failures["events"]} == {"failure"}
        assert {e["node_name"] for e in failures["events"]} == {"cas-nsl"}
        repairs = run_cli("events", "list", "--type", "repair", "--package", pid[:6], "--node", "cas-nsl",
                          "--since", "1h", "--json").json()["events"]
        assert repairs and {e["event_type"] for e in repairs} == {"repair"}
        assert run_cli("events", "list", "--until", "2000-01-01T00:00:00+08:00", "--json").json()["count"] == 0
        assert run_cli("events", "list", "--since", "2999-01-01", "--json").json() == {"events": [], "count": 0}
    finally:
        repo.close()


def test_event_filters_refuse_bad_times_as_coded_errors(run_cli):
    run_cli("init")
    for bad in ("yesterday", "2026-13-01", "99999999d", "1e3h", "-5d", "２４h"):
        out = run_cli("events", "list", "--since", bad, "--json", exit_code=2)
        assert json.loads(out.stderr)["error"]["code"] == "E112", bad
    out = run_cli("events", "list", "--since", "2026-02-01", "--until", "2026-01-01", exit_code=2)
    assert "--since must be before --until" in out.stderr
    out = run_cli("events", "list", "--outcome", "lost", "--json", exit_code=2)
    assert json.loads(out.stderr)["error"]["code"] == "E112"


def test_incidents_tell_unreachable_nodes_and_unrepairable_files_apart(repo):
    now = utcnow()
    with repo.catalog.session() as s:
        events.record_event(s, events.FIXITY_CHECK, events.FAILURE, node_name="uni-pku", package_id=None,
                            detail={"state": "suspect", "findings": [{"code": "A009", "message": "no answer"}]},
                            occurred_at=now - timedelta(hours=3))
        events.record_event(s, events.FIXITY_CHECK, events.FAILURE, node_name="uni-pku",
                            detail={"check": "proof of possession", "finding": None, "reason": "E303 timeout"},
                            occurred_at=now - timedelta(hours=1))
        events.record_event(s, events.REPAIR, events.FAILURE, node_name="cas-nsl",
                            detail={"state": "corrupt", "files_without_verified_copy": 1, "paths": ["data/a.xml"]})
        events.record_event(s, events.FIXITY_CHECK, events.FAILURE, node_name="old",
                            detail={"state": "corrupt"}, occurred_at=now - timedelta(days=30))
    with repo.catalog.session() as s:
        found = incidents(Reader.of_session(s), now - timedelta(days=1))
    assert found["damage_found"] == 0 and found["unrepairable"] == 1 and found["repair_failed"] == 0
    [pku] = found["nodes_unreachable"]
    assert pku["node"] == "uni-pku" and pku["failures"] == 2 and pku["since"] < pku["last"]
    assert [e["incident"] for e in found["recent"]] == ["unrepairable", "node_unreachable", "node_unreachable"]
    assert found["recent"][0]["path"] == "data/a.xml"
