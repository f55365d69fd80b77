"""Job kinds for queue tests, loaded by workers through PRESERVE_EXTRA_HANDLERS=tests.jobs.effects:register.

Each appends one line per effect to the file named in its payload, so a test
can count how many times each job's effect happened and in which process.
``O_APPEND`` writes of one short line are atomic between processes.
"""

from __future__ import annotations

import os
import time

from preservation.errors import InvalidRequest, StorageUnavailable
from preservation.runtime.handler_registry import HandlerRegistry, JobContext


def _append(ctx: JobContext, what: str) -> None:
    line = f"{ctx.job_id} {os.getpid()} {what} {ctx.attempt}\n".encode()
    fd = os.open(ctx.payload["file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def effect(ctx: JobContext) -> dict:
    _append(ctx, "done")
    return {"ok": True}


def flaky(ctx: JobContext) -> dict:
    """A retryable failure on the first attempt, then the effect."""
    if ctx.attempt == 1:
        raise StorageUnavailable("first attempt always fails", location="test")
    _append(ctx, "done")
    return {"ok": True}


def unexpected(ctx: JobContext) -> dict:
    """An exception outside the error tree on the first attempt (retried), then the effect."""
    if ctx.attempt == 1:
        raise ValueError("a bug in a handler")
    _append(ctx, "done")
    return {"ok": True}


def permanent(ctx: JobContext) -> dict:
    raise InvalidRequest("this job can never succeed")


def slow(ctx: JobContext) -> dict:
    _append(ctx, "start")
    time.sleep(float(ctx.payload.get("seconds", 1.0)))
    _append(ctx, "done")
    return {"ok": True}


def register(registry: HandlerRegistry) -> None:
    registry.register("effect", effect)
    registry.register("effect-flaky", flaky)
    registry.register("effect-unexpected", unexpected)
    registry.register("effect-permanent", permanent)
    registry.register("effect-slow", slow)


def read_effects(path) -> list[tuple[int, int, str, int]]:
    """(job id, pid, what, attempt) per line."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            job_id, pid, what, attempt = line.split()
            out.append((int(job_id), int(pid), what, int(attempt)))
    return out
