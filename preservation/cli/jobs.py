"""`preserve jobs …`: look at the queue, retry dead jobs, cancel queued ones."""

from __future__ import annotations

import click

from preservation.jobs.admin import cancel_job, list_jobs, retry_job, show_job
from preservation.jobs.queue import JOB_STATES

from .common import console, emit_json, json_option, repo, say, say_plain, table


@click.group("jobs")
def jobs() -> None:
    """The job queue workers take their work from."""


@jobs.command("list")
@click.option("--state", type=click.Choice(JOB_STATES), default=None)
@click.option("--kind", default=None, help="replicate, audit, repair, ingest, …")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@json_option
def list_(state, kind, limit, as_json) -> None:
    """List jobs, newest first."""
    items = list_jobs(repo().catalog, state=state, kind=kind, limit=limit)
    if as_json:
        emit_json(items)
        return
    table("jobs", ["id", "kind", "state", "attempts", "run after", "package", "last error"], [
        [j["id"], j["kind"], j["state"], f"{j['attempts']}/{j['max_attempts']}", j["run_after"],
         (j["package_id"] or "")[:8], (j["last_error"] or "")[:80]] for j in items
    ])


@jobs.command("show")
@click.argument("job_id", type=int)
@json_option
def show(job_id: int, as_json: bool) -> None:
    """Show one job in full, with the events it caused."""
    job = show_job(repo().catalog, job_id)
    if as_json:
        emit_json(job)
        return
    out = console()
    for key in ("id", "kind", "state", "attempts", "max_attempts", "priority", "package_id", "payload", "run_after",
                "lease_owner", "lease_expires_at", "created_at", "finished_at", "result"):
        say_plain(out, f"{key:<17} {job[key]}")
    if job["last_error"]:
        say_plain(out, "last error:")
        say_plain(out, job["last_error"])
    for e in job["events"]:
        say_plain(out, f"  event {e['seq']} {e['occurred_at']} {e['event_type']} {e['outcome']}")


@jobs.command("retry")
@click.argument("job_id", type=int)
@json_option
def retry(job_id: int, as_json: bool) -> None:
    """Queue a dead or failed job again now, attempts reset."""
    job = retry_job(repo().catalog, job_id)
    if as_json:
        emit_json(job)
    else:
        say(f"job {job_id} ({job['kind']}) queued again")


@jobs.command("cancel")
@click.argument("job_id", type=int)
@json_option
def cancel(job_id: int, as_json: bool) -> None:
    """Cancel a queued or failed job."""
    job = cancel_job(repo().catalog, job_id)
    if as_json:
        emit_json(job)
    else:
        say(f"job {job_id} ({job['kind']}) cancelled")
