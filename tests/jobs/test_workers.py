"""Real `preserve worker` processes sharing one catalog: no job runs twice, a killed worker's job is finished."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select

from preservation.catalog.models import Event, Job, Replica
from preservation.events import verify_chain
from preservation.ingest import ingest
from preservation.jobs import kinds, queue

from ..corruption import add_file
from ..fixtures import make_repo
from ..processes import kill, log_tails, start, stop, wait_until
from .effects import read_effects

ENV = {"PRESERVE_EXTRA_HANDLERS": "tests.jobs.effects:register"}
MIX = {"effect": 144, "effect-flaky": 20, "effect-unexpected": 15, "effect-permanent": 15}  # + 6 real audits


@pytest.fixture
def wrepo(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    try:
        yield repo
    finally:
        repo.close()


def _jobs(repo) -> dict[int, Job]:
    with repo.catalog.session() as s:
        return {j.id: j for j in s.scalars(select(Job))}


def test_four_workers_drain_200_mixed_jobs_each_effect_exactly_once(wrepo, tmp_path):
    effects = tmp_path / "effects.log"
    for name in ("a", "b"):
        add_file(tmp_path / name / "file.txt", name.encode() * 5000)
        ingest(wrepo, tmp_path / name, "journals")
    rng = random.Random(200)
    effect_kinds = [kind for kind, n in MIX.items() for _ in range(n)]
    rng.shuffle(effect_kinds)
    with wrepo.catalog.session() as s:
        replica_ids = list(s.scalars(select(Replica.id)))
        for kind in effect_kinds:
            queue.enqueue(s, kind, {"file": str(effects)}, priority=rng.choice((10, 100, 150)))
        for replica_id in replica_ids:
            queue.enqueue(s, kinds.AUDIT, {"replica_id": replica_id}, dedupe_key=f"audit:{replica_id}",
                          priority=rng.choice((10, 100, 150)))
    home = wrepo.settings.home
    workers = [
        start(home, "worker", "--concurrency", "2", "--idle-exit", "1.5", "--poll", "0.1", "--retry-base", "0.05",
              "--lease", "20", log=tmp_path / f"worker-{i}.log", env=ENV)
        for i in range(4)
    ]
    try:
        for w in workers:
            assert w.wait(120) == 0, log_tails(*tmp_path.glob("worker-*.log"))
    finally:
        for w in workers:
            stop(w)
    jobs = {j.id: j for j in _jobs(wrepo).values() if j.kind != kinds.REPLICATE}
    assert len(jobs) == 200
    done = Counter(job_id for job_id, _pid, what, _attempt in read_effects(effects) if what == "done")
    with wrepo.catalog.session() as s:
        audited = Counter(e.job_id for e in s.scalars(select(Event).where(Event.event_type == "fixity check")))
    for job in jobs.values():
        if job.kind == kinds.AUDIT:
            assert job.state == queue.SUCCEEDED and job.result["ok"] and audited[job.id] == 1
        elif job.kind == "effect-permanent":
            assert job.state == queue.DEAD and job.attempts == 1 and job.last_error.startswith("E112")
            assert done[job.id] == 0
        else:
            assert job.state == queue.SUCCEEDED, (job.id, job.kind, job.state, job.last_error)
            assert done[job.id] == 1, f"job {job.id} ({job.kind}) had its effect {done[job.id]} times"
            assert job.attempts == (1 if job.kind == "effect" else 2)
    pids = {pid for _job, pid, _what, _attempt in read_effects(effects)}
    assert len(pids) >= 2, "the work should be shared between the worker processes"
    with wrepo.catalog.session() as s:
        assert verify_chain(s).ok
        all_job_events = list(s.scalars(select(Event).where(Event.event_type == "job")))
    job_events = Counter(e.outcome for e in all_job_events if e.detail["kind"] != kinds.REPLICATE)
    # started once per attempt; one terminal or retry event per attempt
    assert job_events["started"] == 200 + 35
    assert job_events["success"] == 185 and job_events["warning"] == 35 and job_events["failure"] == 15
    # the inline ingests held their replicate jobs: each started under the ingest's lease and done there
    held = Counter((e.outcome, e.detail.get("held", False)) for e in all_job_events
                   if e.detail["kind"] == kinds.REPLICATE)
    assert held == {("started", True): len(replica_ids), ("success", False): len(replica_ids)}
    assert sorted(audited[j.id] for j in jobs.values() if j.kind == kinds.AUDIT) == [1] * len(replica_ids)


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_a_killed_workers_job_is_finished_by_another_after_its_lease_expires(wrepo, tmp_path):
    effects = tmp_path / "effects.log"
    with wrepo.catalog.session() as s:
        slow = [queue.enqueue(s, "effect-slow", {"file": str(effects), "seconds": 3}).id for _ in range(2)]
    home = wrepo.settings.home
    workers = {
        w.pid: w for w in (
            start(home, "worker", "--concurrency", "1", "--idle-exit", "3", "--poll", "0.1", "--lease", "1.5",
                  log=tmp_path / f"worker-{i}.log", env=ENV)
            for i in range(2)
        )
    }

    def started():
        by_job = {job_id: pid for job_id, pid, what, _a in read_effects(effects) if what == "start"}
        return by_job if len(by_job) == 2 else None

    try:
        try:
            first_runs = wait_until(started, 60, 0.05, "both slow jobs to start")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{log_tails(*tmp_path.glob('worker-*.log'))}") from None
        victim_job = slow[0]
        victim_pid = first_runs[victim_job]
        kill(workers[victim_pid])
        survivor = next(w for pid, w in workers.items() if pid != victim_pid)
        assert survivor.wait(60) == 0, log_tails(*tmp_path.glob("worker-*.log"))
    finally:
        for w in workers.values():
            stop(w)
    runs = defaultdict(list)
    for job_id, pid, what, _attempt in read_effects(effects):
        runs[job_id].append((what, pid))
    survivor_pid = survivor.pid
    assert runs[victim_job] == [("start", victim_pid), ("start", survivor_pid), ("done", survivor_pid)], (
        dict(runs), victim_pid, survivor_pid, log_tails(*tmp_path.glob("worker-*.log")))
    other = slow[1]
    assert runs[other] == [("start", survivor_pid), ("done", survivor_pid)]  # heartbeats kept its short lease
    jobs = _jobs(wrepo)
    assert jobs[victim_job].state == queue.SUCCEEDED and jobs[victim_job].attempts == 2
    assert jobs[other].state == queue.SUCCEEDED and jobs[other].attempts == 1
    with wrepo.catalog.session() as s:
        starts = [e.detail for e in s.scalars(select(Event).where(Event.job_id == victim_job,
                                                                  Event.outcome == "started").order_by(Event.seq))]
    assert starts[1].get("reclaimed") is True


def test_sigterm_lets_the_running_job_finish_then_exits_0(wrepo, tmp_path):
    effects = tmp_path / "effects.log"
    with wrepo.catalog.session() as s:
        running = queue.enqueue(s, "effect-slow", {"file": str(effects), "seconds": 1.0}, priority=1).id
        waiting = queue.enqueue(s, "effect", {"file": str(effects)}, priority=2).id
    worker = start(wrepo.settings.home, "worker", "--concurrency", "1", "--poll", "0.1",
                   log=tmp_path / "worker.log", env=ENV)
    try:
        wait_until(lambda: read_effects(effects), 60, 0.05, "the slow job to start")
        assert stop(worker) == 0
    finally:
        stop(worker)
    jobs = _jobs(wrepo)
    assert jobs[running].state == queue.SUCCEEDED
    assert jobs[waiting].state == queue.QUEUED  # no new claims after SIGTERM
    assert "received SIGTERM" in (tmp_path / "worker.log").read_text()


def test_an_inline_ingest_holds_its_jobs_while_a_worker_runs(wrepo, tmp_path):
    delivery = tmp_path / "delivery"
    for i in range(48):
        add_file(delivery / f"part-{i:02}.bin", bytes([i]) * (256 * 1024))
    home = wrepo.settings.home
    worker = start(home, "worker", "--concurrency", "2", "--poll", "0.02", "--lease", "20",
                   log=tmp_path / "worker.log", env=ENV)
    try:
        wait_until(lambda: "started" in (tmp_path / "worker.log").read_text(), 60, 0.05, "the worker to start")
        ingesting = start(home, "ingest", str(delivery), "--collection", "journals", "--inline",
                          log=tmp_path / "ingest.log")
        assert ingesting.wait(180) == 0, log_tails(tmp_path / "ingest.log", tmp_path / "worker.log")
    finally:
        assert stop(worker) == 0, log_tails(tmp_path / "worker.log")
    report = (tmp_path / "ingest.log").read_text()
    assert "state preserved" in report and "Traceback" not in report, report
    assert report.count("files written, re-read and verified") == 3, report
    with wrepo.catalog.session() as s:
        replication = Counter((e.node_name, e.outcome) for e in s.scalars(
            select(Event).where(Event.event_type == "replication")))
        replicate_jobs = list(s.scalars(select(Job).where(Job.kind == kinds.REPLICATE)))
        job_agents = {e.agent for e in s.scalars(select(Event).where(Event.event_type == "job"))}
        assert verify_chain(s).ok
    nodes = {node for node, _ in replication}
    assert len(nodes) == 3
    # each copy made once: one start and one success per node, by the ingest, none by the worker
    assert replication == {(node, outcome): 1 for node in nodes for outcome in ("started", "success")}
    assert [(j.state, j.attempts, j.result["inline"]) for j in replicate_jobs] == [(queue.SUCCEEDED, 1, True)] * 3
    assert not any(agent.startswith("preserve-worker@") for agent in job_agents)
