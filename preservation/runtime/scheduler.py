"""`preserve scheduler`: periodic upkeep, with one active scheduler and any number of standbys.

The active scheduler runs APScheduler with its job store in the catalog
(table ``apscheduler_jobs``), so a standby that takes over keeps the
schedule.  A scheduler that cannot take the leader lock (see
:mod:`preservation.runtime.leader`) waits as a standby and retries every few
seconds; one that loses the lock stops its tasks at once and becomes a
standby again.

Stored APScheduler jobs name a module-level function and the task's name
(a persistent store cannot hold a bound method); the function finds the
process's active scheduler in ``_ACTIVE``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from preservation import alerts, liveness
from preservation.access import notifications
from preservation import dashboard, node_records, witness
from preservation.runtime.leader import LeaderLock, leader_lock
from preservation.runtime.policy_reload import PolicyWatcher
from preservation.repository import Repository
from preservation.upkeep import audits, challenges, missing_copies, reidentification, stalled, sweeping

log = logging.getLogger("preserve.scheduler")

JOBSTORE_TABLE = "apscheduler_jobs"
SWEEP_EVERY_TICKS = 10


@dataclass(frozen=True)
class Task:
    name: str
    every: timedelta
    run: Callable[["SchedulerService"], Any]


class SchedulerService:
    def __init__(self, repo: Repository, *, tick: float = 60.0, standby_retry: float = 5.0,
                 lock: LeaderLock | None = None, agent: str | None = None) -> None:
        self.repo = repo
        self.tick = tick
        self.standby_retry = standby_retry
        self.lock = lock or leader_lock(repo)
        self.agent = agent or f"preserve-scheduler@{socket.gethostname()}"
        self.active = False
        self._stop = threading.Event()
        # SIGHUP (reload_policy) or a changed policy file, looked at each tick: docs/operations.md
        self.policy_watcher = PolicyWatcher(repo, agent=self.agent, process="scheduler",
                                            every=min(tick, standby_retry))
        every = timedelta(seconds=tick)
        self.tasks = {t.name: t for t in (
            Task("audit-planning", every, lambda svc: audits.schedule_audits(svc.repo)),
            Task("replication", every, lambda svc: missing_copies.place_missing_copies(svc.repo, agent=svc.agent)),
            Task("stalled-work", every, lambda svc: stalled.requeue_stalled(svc.repo)),
            Task("challenges", every, lambda svc: challenges.schedule_challenges(svc.repo)),
            # a new signature file is a rare event: looking for older records need not be frequent
            Task("reidentification", every * SWEEP_EVERY_TICKS,
                 lambda svc: reidentification.plan_reidentification(svc.repo)),
            Task("sweep", every * SWEEP_EVERY_TICKS, lambda svc: sweeping.sweep(svc.repo, agent=svc.agent)),
            Task("node-probes", every, lambda svc: liveness.probe_nodes(svc.repo)),
            # signs the event log after checkpoints.every_events events or every_seconds (docs/evidence.md)
            Task("checkpoints", every, lambda svc: witness.checkpoint_and_witness_if_due(svc.repo)),
            # the events that name no package, to every node's repository record: what
            # `catalog rebuild --from-nodes` restores of them (docs/evidence.md)
            Task("repository-events", every, lambda svc: node_records.flush_repository_events(svc.repo)),
            Task("alerts", every, lambda svc: alerts.evaluate(svc.repo)),
            # e-mail to staff and libraries: new requests, decisions, grants about to expire (docs/access.md)
            Task("notifications", every, lambda svc: notifications.tick(svc.repo)),
            # queue depth and audit coverage for the staff dashboard, at most every dashboard.SAMPLE_SECONDS
            Task("samples", every, lambda svc: dashboard.take_sample(svc.repo)),
        )}

    def stop(self) -> None:
        self._stop.set()

    def reload_policy(self) -> None:
        """Reload the policy file at the next tick (safe from a signal handler)."""
        self.policy_watcher.request()

    def run(self) -> None:
        """Be a standby until the lock is free, then the active scheduler, until stopped."""
        standby_logged = False
        heartbeat = liveness.HeartbeatWriter(
            self.repo.catalog, "scheduler", f"{socket.gethostname()}:{os.getpid()}",
            interval=self.repo.settings.monitoring.heartbeat_seconds, doing=lambda: {"active": self.active},
        ).start()
        try:
            while not self._stop.is_set():
                if not self.lock.acquire():
                    if not standby_logged:
                        log.info("scheduler standby: another scheduler is active; retrying every %ss",
                                 self.standby_retry)
                        standby_logged = True
                    self._stop.wait(self.standby_retry)
                    self.policy_watcher.tick()
                    continue
                standby_logged = False
                try:
                    self._lead()
                except SQLAlchemyError as e:
                    log.error("scheduler stopped leading after a catalog error (%s); standing by", e)
                    self.lock.release()
                    self._stop.wait(self.standby_retry)
        finally:
            self.lock.release()
            heartbeat.stop()

    def _lead(self) -> None:
        global _ACTIVE
        log.info("scheduler active (tick %ss)", self.tick)
        self.active = True
        _ACTIVE = self
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.repo.catalog.engine, tablename=JOBSTORE_TABLE)},
            # one task at a time: they enqueue overlapping work and need not race each other
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        scheduler.start(paused=True)
        try:
            self._reconcile(scheduler)
            scheduler.resume()
            while not self._stop.wait(min(self.tick, self.standby_retry)):
                self.policy_watcher.tick()
                if not self.lock.held():
                    log.error("scheduler lost its leader lock: stopping its tasks and going back to standby")
                    break
        finally:
            scheduler.shutdown(wait=True)
            self.active = False
            _ACTIVE = None

    def _reconcile(self, scheduler: BackgroundScheduler) -> None:
        """Keep stored jobs whose schedule is unchanged (their next run time survives a failover)."""
        stored = {job.id: job for job in scheduler.get_jobs()}
        for name, task in self.tasks.items():
            job = stored.pop(name, None)
            if job is not None and getattr(job.trigger, "interval", None) == task.every and job.args == (name,):
                continue
            scheduler.add_job(run_task, IntervalTrigger(seconds=task.every.total_seconds()), args=(name,), id=name,
                              name=name, replace_existing=True, next_run_time=datetime.now(timezone.utc))
        for job_id in stored:
            scheduler.remove_job(job_id)

    def run_task(self, name: str) -> Any:
        task = self.tasks[name]
        try:
            result = task.run(self)
        except Exception:  # noqa: BLE001 - one failed run must not stop the schedule; logged with its traceback
            log.exception("scheduled task %s failed", name)
            return None
        log.info("task %s: %s", name, result)
        return result


_ACTIVE: SchedulerService | None = None


def run_task(name: str) -> Any:
    """Entry point stored in the APScheduler job store."""
    service = _ACTIVE
    if service is None or not service.active:
        log.warning("task %s fired but this process is not the active scheduler", name)
        return None
    return service.run_task(name)
