"""Liveness: heartbeats of real worker and scheduler processes, node probes, and what `preserve status` says."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from preservation.catalog.monitoring_models import Heartbeat, NodeProbe
from preservation.cli.main import cli
from preservation.errors import ConfigError
from preservation.liveness import probe_nodes
from preservation.settings import load_settings

from ..processes import kill, log_tails, start, stop, wait_until
from .conftest import write_config


def status_json(home) -> dict:
    result = CliRunner().invoke(cli, ["--home", str(home), "status", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def status_text(home) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), "status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_shows_alive_processes_and_a_killed_worker_as_silent(world, preserved_in, tmp_path):
    worker_log, scheduler_log = tmp_path / "worker.log", tmp_path / "scheduler.log"
    worker = start(world.home, "worker", "--poll", "0.2", log=worker_log)
    scheduler = start(world.home, "scheduler", "--tick", "1", log=scheduler_log)
    try:
        def both_alive():
            live = status_json(world.home)["liveness"]
            active = any(p["role"] == "scheduler" and p["doing"].get("active") for p in live["processes"])
            return live if active and live["workers_alive"] == 1 else None  # a standby's first beat comes first

        live = wait_until(both_alive, 60, what="a worker and an active scheduler alive in status")
        by_role = {p["role"]: p for p in live["processes"]}
        assert by_role["worker"]["pid"] == worker.pid and by_role["scheduler"]["pid"] == scheduler.pid
        assert by_role["scheduler"]["doing"] == {"active": True}, live["processes"]
        assert "jobs" in by_role["worker"]["doing"]
        text = status_text(world.home)
        assert "processes" in text and "alive" in text

        # the scheduler probes every node at its tick
        nodes = wait_until(lambda: (n := status_json(world.home)["nodes"]) and all(x["reachability"] for x in n) and n,
                           60, what="probes of every node")
        assert all(n["reachability"]["reachable"] for n in nodes)

        kill(worker)  # SIGKILL: no clean stop, the row is never marked stopped
        live = wait_until(lambda: (lv := status_json(world.home)["liveness"])["counts"]["silent"] == 1 and lv,
                          30, what="the killed worker shown silent")
        silent = [p for p in live["processes"] if p["state"] == "silent"]
        assert silent[0]["role"] == "worker" and silent[0]["pid"] == worker.pid
        assert "SILENT" in status_text(world.home)
    finally:
        stop(worker)
        assert stop(scheduler) == 0, log_tails(scheduler_log)
    # a clean stop is not silence
    with world.repo.catalog.session() as s:
        row = s.scalar(select(Heartbeat).where(Heartbeat.role == "scheduler"))
        assert row.stopped_at is not None


def test_a_stopped_worker_is_stopped_not_silent(world, tmp_path):
    log = tmp_path / "worker.log"
    worker = start(world.home, "worker", "--once", log=log)
    assert worker.wait(60) == 0, log_tails(log)
    procs = status_json(world.home)["liveness"]["processes"]
    assert [(p["role"], p["state"]) for p in procs] == [("worker", "stopped")]


def _probe(world) -> dict[str, NodeProbe]:
    probe_nodes(world.repo)
    with world.repo.catalog.session() as s:
        return {p.node_id: p for p in s.scalars(select(NodeProbe))}


def _by_name(world) -> dict[str, dict]:
    return {n["name"]: n["reachability"] for n in status_json(world.home)["nodes"]}


def test_probes_find_every_node_reachable_then_a_killed_agent_and_a_missing_root(world, preserved_in):
    _probe(world)
    assert {name: r["reachable"] for name, r in _by_name(world).items()} == {"uni": True, "cas": True, "inst": True}

    world.agent.kill()
    moved = world.node_root("cas").with_name("cas-unmounted")
    world.node_root("cas").rename(moved)
    first = probe_nodes(world.repo)
    assert sorted(first["unreachable"]) == ["cas", "inst"]
    reach = _by_name(world)
    assert reach["uni"]["reachable"] and reach["uni"]["unreachable_since"] is None
    assert "is not there" in reach["cas"]["error"]
    assert reach["inst"]["unreachable"] is True  # threshold 0 in these tests: shown unreachable at once
    since = reach["inst"]["unreachable_since"]
    probe_nodes(world.repo)
    assert _by_name(world)["inst"]["unreachable_since"] == since  # since the first failed probe, not the last
    text = status_text(world.home)
    assert "UNREACHABLE since" in text

    moved.rename(world.node_root("cas"))
    probe_nodes(world.repo)
    assert _by_name(world)["cas"] == {**_by_name(world)["cas"], "reachable": True, "unreachable_since": None}


def test_an_empty_root_holding_catalogued_copies_is_an_unmounted_disk(world, preserved_in):
    root = world.node_root("uni")
    shutil.rmtree(root)
    root.mkdir()  # the mount point is left, empty
    probe_nodes(world.repo)
    reach = _by_name(world)["uni"]
    assert not reach["reachable"] and "is empty although the catalog counts 1" in reach["error"]


def test_below_the_threshold_a_node_is_not_answering_but_not_yet_unreachable(world, preserved_in):
    write_config(world.home, monitoring={"node_unreachable_alert_seconds": 3600})
    world.reopen()
    world.agent.kill()
    probe_nodes(world.repo)
    reach = _by_name(world)["inst"]
    assert reach["reachable"] is False and reach["unreachable"] is False
    assert "not answering since" in status_text(world.home)


@pytest.mark.parametrize("section, why", [
    ("monitoring:\n  heartbeat_seconds: '5'\n", "monitoring.heartbeat_seconds"),
    ("monitoring:\n  heartbeat_seconds: true\n", "monitoring.heartbeat_seconds"),
    ("monitoring:\n  heartbeat_seconds: 0\n", "monitoring.heartbeat_seconds"),
    ("monitoring:\n  heartbeat_seconds: 30\n  silent_after_seconds: 40\n", "monitoring.silent_after_seconds"),
    ("monitoring:\n  audit_coverage_min: 1.5\n", "monitoring.audit_coverage_min"),
    ("monitoring:\n  beats: 5\n", "monitoring.beats"),
])
def test_bad_monitoring_settings_are_refused_naming_the_field(tmp_path, section, why):
    (tmp_path / "preserve.yaml").write_text(section, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path)
    assert why in str(e.value) and e.value.code == ConfigError.code
