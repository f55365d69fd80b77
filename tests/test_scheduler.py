"""`preserve scheduler` and `preserve worker` as real processes: one active scheduler, and damage healed unattended."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from preservation.catalog.models import Event, Replica
from preservation.events import verify_chain
from preservation.ingest import ingest
from preservation.settings import DEFAULT_POLICY
from preservation.status import status

from .corruption import add_file, flip_bit
from .fixtures import make_repo, node_root
from .processes import kill, start, stop, wait_until

TARGET = "data/期刊/物理学报/2024/第01期/论文-002.pdf"


def _log(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@pytest.mark.parametrize("catalog_url", ["postgresql", "sqlite"], indirect=True)
def test_one_scheduler_is_active_and_a_standby_takes_over_when_it_dies(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    home = repo.settings.home
    args = ("scheduler", "--tick", "1", "--standby-retry", "1")
    logs = [tmp_path / "scheduler-a.log", tmp_path / "scheduler-b.log"]
    first = start(home, *args, log=logs[0])
    second = None
    try:
        wait_until(lambda: "scheduler active" in _log(logs[0]), 60, what="the first scheduler to become active")
        second = start(home, *args, log=logs[1])
        wait_until(lambda: "scheduler standby" in _log(logs[1]), 60, what="the second scheduler to wait")
        wait_until(lambda: _log(logs[0]).count("task audit-planning") >= 2, 30, what="the active scheduler's ticks")
        assert "scheduler active" not in _log(logs[1]) and "task " not in _log(logs[1])
        with repo.catalog.engine.connect() as conn:
            stored = set(conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
        assert stored == {"audit-planning", "replication", "stalled-work", "challenges", "reidentification", "sweep",
                          "node-probes", "checkpoints", "alerts", "notifications", "samples", "repository-events"}
        kill(first)
        killed_at = time.monotonic()
        wait_until(lambda: "scheduler active" in _log(logs[1]), 60, 0.1, "the standby to take over")
        took_over = time.monotonic() - killed_at
        assert took_over < 60
        wait_until(lambda: "task audit-planning" in _log(logs[1]), 30, what="the new active scheduler's tasks")
        assert stop(second) == 0
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc)
        repo.close()


def _fast_policy(tmp_path: Path) -> Path:
    """The default policy with an audit interval of 8.6 seconds, so audits fall due during the test."""
    text_ = DEFAULT_POLICY.read_text(encoding="utf-8")
    text_ = re.sub(r"(?m)^name: .*$", "name: fast-audits", text_)
    text_ = re.sub(r"(?m)^(\s*)interval_days: .*$", r"\1interval_days: 0.0001", text_)
    path = tmp_path / "fast-audits.yaml"
    path.write_text(text_, encoding="utf-8")
    return path


def test_damage_is_found_and_repaired_with_no_operator_command(repo, tmp_path, sample_delivery, run_cli,
                                                               monkeypatch):
    damaged = ingest(repo, sample_delivery, "journals")["package_id"]
    other = tmp_path / "other"
    add_file(other / "notes.txt", "未受影响 untouched".encode() * 500)
    healthy = ingest(repo, other, "journals")["package_id"]
    good = (node_root(repo, "uni-pku") / damaged / TARGET).read_bytes()
    flip_bit(node_root(repo, "cas-nsl") / damaged / TARGET)
    for path in sorted((node_root(repo, "inst-istic") / damaged).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    policy = _fast_policy(tmp_path)
    env = {"PRESERVE_POLICY": str(policy)}
    home = repo.settings.home
    scheduler = start(home, "scheduler", "--tick", "0.5", log=tmp_path / "scheduler.log", env=env)
    worker = start(home, "worker", "--concurrency", "2", "--poll", "0.2", "--retry-base", "0.2",
                   log=tmp_path / "worker.log", env=env)
    monkeypatch.setenv("PRESERVE_POLICY", str(policy))

    def healed():
        with repo.catalog.session() as s:
            repaired = {e.node_name for e in s.scalars(
                select(Event).where(Event.package_id == damaged, Event.event_type == "repair",
                                    Event.outcome == "success"))}
        if repaired != {"cas-nsl", "inst-istic"}:
            return None
        report = status(repo)
        everything_verified = report["replicas"]["verified"] == 6 and sum(report["replicas"].values()) == 6
        return report if everything_verified and report["packages"]["preserved"]["count"] == 2 else None

    try:
        started = time.monotonic()
        wait_until(healed, 120, 0.5, "both copies to be repaired and every copy verified")
        elapsed = time.monotonic() - started
        report = run_cli("status", "--json").json()
        assert report["replicas"]["verified"] == 6 and report["packages"]["preserved"]["count"] == 2
        assert report["dead_jobs"] == 0 and report["damaged_packages"] == []
        assert all(n["audit_coverage"] == 1.0 for n in report["nodes"])
        assert stop(worker) == 0 and stop(scheduler) == 0
    finally:
        stop(worker)
        stop(scheduler)
    assert elapsed < 120
    assert (node_root(repo, "cas-nsl") / damaged / TARGET).read_bytes() == good
    assert (node_root(repo, "inst-istic") / damaged / TARGET).read_bytes() == good
    with repo.catalog.session() as s:
        failed_audits = {(e.node_name, e.detail["state"]) for e in s.scalars(
            select(Event).where(Event.package_id == damaged, Event.event_type == "fixity check",
                                Event.outcome == "failure"))}
        assert {("cas-nsl", "corrupt"), ("inst-istic", "missing")} <= failed_audits
        agents = set(s.scalars(select(Event.agent).where(Event.package_id == damaged, Event.event_type == "repair")))
        assert all(a.startswith("preserve-worker@") for a in agents)
        assert all(r.state == "verified" for r in s.scalars(select(Replica).where(Replica.package_id == healthy)))
        assert verify_chain(s).ok
    assert "scheduler active" in _log(tmp_path / "scheduler.log")
