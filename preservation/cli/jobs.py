"""`preserve jobs …`: look at the queue, retry dead jobs, cancel queued ones, acknowledge dead ones."""

from __future__ import annotations

import json

import click

from preservation.jobs.admin import acknowledge_job, cancel_job, list_jobs, retry_job, show_job
from preservation.jobs.queue import JOB_STATES

from .common import JOB_ID, console, emit_json, emit_list, json_option, repo, say, say_plain, table


@click.group("jobs")
def jobs() -> None:
    """The job queue workers take their work from."""


@jobs.command("list")
@click.option("--state", type=click.Choice(JOB_STATES), default=None)
@click.option("--kind", default=None, help="replicate, audit, repair, ingest, …")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@json_option
def list_(state, kind, limit, as_json) -> None:
    """List jobs, newest first (the short package ids are accepted wherever a package id is)."""
    items = list_jobs(repo().catalog, state=state, kind=kind, limit=limit)
    if as_json:
        emit_list("jobs", items)
        return
    table("jobs", ["id", "kind", "state", "attempts", "run after", "package", "last error"], [
        [j["id"], j["kind"], j["state"], f"{j['attempts']}/{j['max_attempts']}", j["run_after"],
         (j["package_id"] or "")[:8], (j["last_error"] or "")[:80]] for j in items
    ])


@jobs.command("show")
@click.argument("job_id", type=JOB_ID)
@json_option
def show(job_id: int, as_json: bool) -> None:
    """Show one job in full, with the events it caused."""
    job = show_job(repo().catalog, job_id)
    if as_json:
        emit_json(job)
        return
    out = console()
    for key in ("id", "kind", "state", "attempts", "max_attempts", "priority", "package_id", "run_after",
                "lease_owner", "lease_expires_at", "created_at", "finished_at"):
        say_plain(out, f"{key:<17} {'' if job[key] is None else job[key]}")
    for key in ("payload", "result"):
        say_plain(out, f"{key:<17} {_fields(job[key])}")
    if job["last_error"]:
        say_plain(out, "last error:")
        say_plain(out, job["last_error"])
    for e in job["events"]:
        note = f"  note: {e['note']}" if e.get("note") else ""
        say_plain(out, f"  event {e['seq']} {e['occurred_at']} {e['event_type']} {e['outcome']}{note}")


def _fields(value) -> str:
    """A job's payload or result for a person: ``key=value`` pairs, nested values as JSON (never a Python repr)."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return "  ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)}"
                         for k, v in value.items())
    return json.dumps(value, ensure_ascii=False, default=str)


@jobs.command("retry")
@click.argument("job_id", type=JOB_ID)
@json_option
def retry(job_id: int, as_json: bool) -> None:
    """Queue a dead or failed job again now, attempts reset."""
    job = retry_job(repo().catalog, job_id)
    if as_json:
        emit_json(job)
    else:
        say(f"job {job_id} ({job['kind']}) queued again")


@jobs.command("cancel")
@click.argument("job_id", type=JOB_ID)
@json_option
def cancel(job_id: int, as_json: bool) -> None:
    """Cancel a queued or failed job."""
    job = cancel_job(repo().catalog, job_id)
    if as_json:
        emit_json(job)
    else:
        say(f"job {job_id} ({job['kind']}) cancelled")


@jobs.command("ack")
@click.argument("job_id", type=JOB_ID)
@click.option("--note", default="", help="Why it may be left (kept in the job's event), e.g. a ticket number.")
@json_option
def ack(job_id: int, note: str, as_json: bool) -> None:
    """Acknowledge a dead job: status and alerts stop counting it; its copy is still retried once a source exists."""
    job = acknowledge_job(repo().catalog, job_id, note=note)
    if as_json:
        emit_json(job)
    else:
        say(f"job {job_id} ({job['kind']}) acknowledged")
