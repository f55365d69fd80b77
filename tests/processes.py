"""Running `preserve` commands as real processes (workers, schedulers) and waiting on them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY = "from preservation.cli.main import main; main()"


def start(home: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``preserve --home HOME ARGS…`` with stdout+stderr going to ``log``."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PRESERVE_NO_PROGRESS": "1", **(env or {})}
    out = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, "-c", ENTRY, "--home", str(home), *args], cwd=REPO_ROOT,
                                env=full_env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    """SIGTERM, then wait; SIGKILL if it does not exit in time.  Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def log_tails(*logs: Path, lines: int = 15) -> str:
    """The end of each log, to explain a failed assertion."""
    out = []
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else ["(no log)"]
        out.append(f"--- {log.name}\n" + "\n".join(text[-lines:]))
    return "\n".join(out)


def kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
