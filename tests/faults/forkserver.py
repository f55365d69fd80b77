"""Run `preserve` commands in forked processes that the crash tests SIGKILL.

Importing preserve takes a second or two; 120 crash runs cannot pay that each
time.  The server (``python -m tests.faults.forkserver``) imports it once and
forks one child per command, so a child starts working at once and a kill
lands inside the command, not inside the interpreter's start-up.  The server
itself runs no preserve code and starts no threads, so every child begins
from a clean, single-threaded copy.

Protocol: one JSON object per line on stdin, one reply per line on stdout.

``{"op": "run", "argv": [...], "env": {...}, "log": PATH, "marker": PATH}``
forks a child that runs ``preserve ARGV`` with ``env`` added to its
environment and its output in ``log``, and replies ``{"pid": N}``.  The
child installs the faults the environment asks for (tests.faults.disk),
writes ``started`` to ``marker`` right before the command and
``finished <exit code>`` after it.

``{"op": "wait", "pid": N}`` waits for that child and replies
``{"pid": N, "code": C, "signal": S}`` (one of them null).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _child(argv: list[str], env: dict[str, str], log: str, marker: str) -> None:
    """Run one command and leave the process with its exit code; never returns."""
    code = 70
    try:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.environ.update(env)
        from preservation.cli.main import cli
        from tests.faults.disk import install_from_environment

        install_from_environment()
        Path(marker).write_text("started\n")
        try:
            cli.main(args=argv, prog_name="preserve", standalone_mode=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        with open(marker, "a") as f:
            f.write(f"finished {code}\n")
    except BaseException:  # noqa: BLE001 - report anything, then leave with a distinct code
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    os.environ["PRESERVE_NO_PROGRESS"] = "1"
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401 - or each child on PostgreSQL imports it (0.2 s)

    import preservation.cli.main

    preservation.cli.main.cli.load_all()  # every command group imported once: what the children inherit
    import tests.faults.disk  # noqa: F401

    reply = sys.stdout
    reply.write(json.dumps({"ready": True}) + "\n")
    reply.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "run":
            if threading.active_count() != 1:
                raise RuntimeError("the fork server must stay single-threaded")
            pid = os.fork()
            if pid == 0:
                _child(request["argv"], request.get("env") or {}, request["log"], request["marker"])
            answer = {"pid": pid}
        elif request["op"] == "wait":
            _, status = os.waitpid(request["pid"], 0)
            answer = {
                "pid": request["pid"],
                "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            }
        else:
            answer = {"error": f"unknown op {request['op']!r}"}
        reply.write(json.dumps(answer) + "\n")
        reply.flush()


@dataclass(frozen=True)
class ChildExit:
    code: int | None
    signal: int | None
    seconds: float
    started: bool
    finished: bool

    @property
    def killed(self) -> bool:
        return self.signal == signal.SIGKILL


class ForkServer:
    """The test side: start the server, run commands, kill them after a delay."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PRESERVE_NO_PROGRESS": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.forkserver"], cwd=REPO_ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        if self._read().get("ready") is not True:
            raise RuntimeError("the fork server did not start")

    def _read(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server exited (code {self._proc.poll()})")
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def run(self, argv: list[str], log: Path, *, env: dict[str, str] | None = None,
            kill_after: float | None = None) -> ChildExit:
        """Run ``preserve ARGV``; with ``kill_after`` SIGKILL it that many seconds after it was forked."""
        marker = log.with_suffix(".marker")
        marker.unlink(missing_ok=True)
        started = time.monotonic()
        pid = self._ask({"op": "run", "argv": [str(a) for a in argv], "env": env or {}, "log": str(log),
                         "marker": str(marker)})["pid"]
        if kill_after is not None:
            time.sleep(max(0.0, kill_after - (time.monotonic() - started)))
            os.kill(pid, signal.SIGKILL)  # a zombie until waited for, so the pid cannot be reused meanwhile
        status = self._ask({"op": "wait", "pid": pid})
        seconds = time.monotonic() - started
        text = marker.read_text() if marker.exists() else ""
        return ChildExit(status["code"], status["signal"], seconds, "started" in text, "finished" in text)

    def close(self) -> None:
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    serve()
