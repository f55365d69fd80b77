"""The operator's view of the queue: `ingest` hands copies to workers, `worker`, `jobs list/show/retry/cancel`."""

from __future__ import annotations

import threading

from preservation.jobs import queue
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions

from ..fixtures import make_repo


def test_ingest_queues_copies_for_workers_and_jobs_can_be_inspected(run_cli, sample_delivery):
    make_repo(run_cli.home).close()
    queued = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--json").json()
    assert queued["ok"] and queued["state"] == "replicating" and len(queued["replica_ids"]) == 3
    listed = run_cli("jobs", "list", "--json").json()["jobs"]
    assert sorted(j["kind"] for j in listed) == ["replicate"] * 3 and {j["state"] for j in listed} == {"queued"}
    assert "copies queued for workers" in run_cli("ingest", str(sample_delivery), "--collection", "journals",
                                                  "--allow-duplicate").output
    report = run_cli("worker", "--once", "--concurrency", "2", "--json").json()
    assert report["succeeded"] == 6 and report["dead"] == 0
    status = run_cli("status", "--json").json()
    assert status["packages"]["preserved"]["count"] == 2 and status["jobs"]["succeeded"] == 6
    job = run_cli("jobs", "show", str(listed[0]["id"]), "--json").json()
    assert job["state"] == "succeeded" and job["payload"] == {"replica_id": job["payload"]["replica_id"]}
    assert [e["event_type"] for e in job["events"]][0] == "job"
    assert {"replication"} <= {e["event_type"] for e in job["events"]}
    text = run_cli("jobs", "show", str(listed[0]["id"])).output
    assert "replicate" in text and "succeeded" in text
    assert "replicate" in run_cli("jobs", "list", "--kind", "replicate").output


def test_retry_and_cancel_from_the_command_line(run_cli):
    repo = make_repo(run_cli.home)
    try:
        with repo.catalog.session() as s:
            dead = queue.enqueue(s, "no-such-kind", {}).id
            spare = queue.enqueue(s, "no-such-kind", {}).id
        Worker(repo, default_registry(), WorkerOptions(once=True, max_jobs=1)).run()
    finally:
        repo.close()
    assert run_cli("jobs", "list", "--state", "dead", "--json").json()["jobs"][0]["id"] == dead
    out = run_cli("jobs", "cancel", str(dead), exit_code=2)
    assert "only queued or failed jobs can be cancelled" in out.stderr
    assert run_cli("jobs", "retry", str(dead), "--json").json()["state"] == "queued"
    assert "cancelled" in run_cli("jobs", "cancel", str(spare)).output
    assert run_cli("jobs", "retry", "424242", exit_code=5).stderr
    assert run_cli("jobs", "list", "--state", "nonsense", exit_code=2)


def test_ingest_wait_reports_what_the_workers_did(run_cli, sample_delivery):
    repo = make_repo(run_cli.home)
    try:
        timed_out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--timeout", "0.3",
                            "--json", exit_code=31).json()
        assert timed_out["timed_out"] and timed_out["state"] == "replicating" and timed_out["live_jobs"] == 3
        worker = Worker(repo, default_registry(), WorkerOptions(concurrency=2, poll_seconds=0.05))
        runner = threading.Thread(target=worker.run)
        runner.start()
        try:
            waited = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--allow-duplicate",
                             "--json").json()
        finally:
            worker.stop()
            runner.join(30)
        assert waited["ok"] and waited["state"] == "preserved" and waited["live_jobs"] == 0
        out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--wait", "--inline", exit_code=2)
        assert "use one of --inline and --wait" in out.stderr
    finally:
        repo.close()
