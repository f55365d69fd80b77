"""`preserve ingest --wait` against a real `preserve worker` process: it waits until the package's replication jobs
have ended, shows progress, honours --timeout, and says in JSON and by its exit code what state it left."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

from sqlalchemy import select

from preservation.catalog.models import Job, Package, utcnow
from preservation.cli import ingest as ingest_command
from preservation.errors import NotPreserved, WaitTimedOut

from ..fixtures import make_repo, node_root
from ..processes import log_tails, start, stop


def _replication_jobs(repo, package_id):
    with repo.catalog.session() as s:
        return s.execute(select(Job.state, Job.finished_at).where(Job.package_id == package_id,
                                                                  Job.kind == "replicate")).all()


def _worker(home, log):
    return start(home, "worker", "--concurrency", "2", "--poll", "0.05", "--retry-base", "0", "--lease", "30",
                 log=log)


def test_wait_returns_once_every_replication_job_has_ended_and_the_package_is_preserved(run_cli, sample_delivery,
                                                                                        tmp_path):
    repo = make_repo(run_cli.home)
    worker = _worker(run_cli.home, tmp_path / "worker.log")
    try:
        out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--timeout", "120")
        returned = utcnow()
        assert "state preserved" in out.output, log_tails(tmp_path / "worker.log")
        progress = [line for line in out.stderr.splitlines() if "copies verified" in line]
        assert progress[0].startswith("  0 of 3 copies verified") and "queued" in progress[0]
        assert progress[-1] == "  3 of 3 copies verified; replication jobs: 3 succeeded; package preserved"
        package_id = out.output.split()[1].rstrip(":")
        jobs = _replication_jobs(repo, package_id)
        assert [state for state, _ in jobs] == ["succeeded"] * 3
        # every job had ended when the command returned, not only marked the package preserved
        assert all(finished <= returned + timedelta(seconds=0.001) for _, finished in jobs)

        again = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--allow-duplicate",
                        "--json")
        result = again.json()
        assert result["ok"] and result["state"] == "preserved" and result["timed_out"] is False
        assert result["wait"]["outcome"] == "preserved" and result["wait"]["replication_jobs"] == {"succeeded": 3}
        assert result["wait"]["copies_verified"] == result["wait"]["copies"] == 3
        assert again.stderr == ""  # --json: no progress lines
    finally:
        assert stop(worker) == 0, log_tails(tmp_path / "worker.log")
        repo.close()


def test_a_timeout_says_what_state_it_left_and_the_jobs_go_on(run_cli, sample_delivery, tmp_path):
    repo = make_repo(run_cli.home)
    try:
        out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--timeout", "0.5",
                      "--json", exit_code=WaitTimedOut.exit_code)
        result = out.json()
        assert result["ok"] is False and result["timed_out"] and result["wait"]["outcome"] == "timed out"
        assert result["wait"]["replication_jobs"] == {"queued": 3} and result["wait"]["waited_seconds"] >= 0.5
        error = json.loads(out.stderr)["error"]
        assert error["code"] == "E601" and error["params"] == {
            "package_id": result["package_id"], "state": "replicating", "copies": 3, "copies_verified": 0,
            "live_jobs": 3, "dead_jobs": 0}
        text = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--allow-duplicate", "--wait",
                       "--timeout", "0", exit_code=WaitTimedOut.exit_code)
        assert "error E601" in text.stderr and "3 replication job(s) still live" in text.stderr
        # nothing was cancelled: a worker started afterwards preserves both packages
        worker = _worker(run_cli.home, tmp_path / "worker.log")
        try:
            waited = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--allow-duplicate",
                             "--wait", "--timeout", "120", "--json").json()
            assert waited["ok"], log_tails(tmp_path / "worker.log")
        finally:
            stop(worker)
        for package_id in (result["package_id"], waited["package_id"]):
            assert {state for state, _ in _replication_jobs(repo, package_id)} == {"succeeded"}
    finally:
        repo.close()


def test_replication_that_fails_ends_the_wait_with_its_own_exit_code(run_cli, sample_delivery, tmp_path):
    repo = make_repo(run_cli.home)
    worker = None
    try:
        broken = node_root(repo, "inst-istic")
        shutil.rmtree(broken)
        broken.write_text("not a directory: every write to this node fails\n")
        worker = _worker(run_cli.home, tmp_path / "worker.log")
        out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--timeout", "120",
                      "--json", exit_code=NotPreserved.exit_code)
        result = out.json()
        assert result["ok"] is False and result["wait"]["outcome"] == "failed", log_tails(tmp_path / "worker.log")
        assert result["wait"]["replication_jobs"] == {"dead": 1, "succeeded": 2}
        error = json.loads(out.stderr)["error"]
        assert error["code"] == "E602" and error["params"]["dead_jobs"] == 1
        assert error["params"]["copies_verified"] == 2 and error["params"]["state"] != "preserved"
    finally:
        if worker is not None:
            stop(worker)
        repo.close()


def test_ctrl_c_while_waiting_leaves_the_jobs_to_the_workers_and_says_so(run_cli, sample_delivery, monkeypatch):
    repo = make_repo(run_cli.home)
    try:
        def interrupted(_snapshot):
            raise KeyboardInterrupt  # in the wait, after the package is registered and its jobs queued

        monkeypatch.setattr(ingest_command, "_show_progress", interrupted)
        out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", exit_code=22)
        assert "stopped by Ctrl-C" in out.stderr and "at once when they were queued for workers" in out.stderr
        with repo.catalog.session() as s:
            [package_id] = s.scalars(select(Package.id)).all()
        assert sorted(state for state, _ in _replication_jobs(repo, package_id)) == ["queued"] * 3  # none cancelled
    finally:
        repo.close()
