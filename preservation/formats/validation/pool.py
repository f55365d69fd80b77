"""The pool of validating processes: :class:`Validator`.

It keeps a few long-lived validating processes
(:mod:`preservation.formats.checks.process`) and streams files through them:
each file has a wall-clock time limit, and each process an address-space and
a CPU limit, so a file that makes a parser loop, explode or crash costs one
process, which is killed and replaced.  That file gets outcome ``limit`` or
``error`` with a coded finding, and the others go on.  Answers are JSON lines
(:mod:`.results` checks them).
"""

from __future__ import annotations

import json
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from preservation import codes
from preservation.errors import ConfigError, InvalidRequest
from preservation.formats.validation.results import (
    ERROR, LIMIT, ProtocolViolation, Validation, stopped, validation_from,
)
from preservation.text import for_log

DEFAULT_TIME_LIMIT_S = 30.0
DEFAULT_MEMORY_LIMIT = 1 << 30
MIN_MEMORY_LIMIT = 128 << 20
"""Below this a validating process cannot even load qpdf, libxml2 and Pillow."""
STARTUP_S = 60.0
"""How long a new validating process may take to load its libraries (not counted in any file's limit)."""
FILES_PER_PROCESS = 1000
"""A process retires after this many files, so its heap never grows with the length of an ingest."""
MAX_ANSWER = 1 << 20

_END = object()
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BOOTSTRAP = (
    "import json, sys; hello = json.loads(sys.stdin.buffer.readline()); sys.path[:] = hello['sys_path']; "
    "from preservation.formats.checks.process import serve; serve(hello)"
)


def _peak_of(pid: int) -> int:
    """A live process's peak resident set (VmHWM), in bytes; 0 where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class _Request:
    key: Any
    path: str
    kind: str
    number: int
    deadline: float
    sent: float


class _Process:
    """One validating process and the request it is working on."""

    def __init__(self, hello: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOTSTRAP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd="/", close_fds=True,
        )
        self.started = time.monotonic()
        self.ready = False
        self.done = 0
        self.peak = 0
        self.buffer = b""
        self.request: _Request | None = None
        os.set_blocking(self.proc.stdout.fileno(), False)
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.send(hello)

    @property
    def fd(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, message: dict[str, Any]) -> None:
        """Write one line; raises BrokenPipeError when the process is gone."""
        self.proc.stdin.write(json.dumps(message).encode("ascii") + b"\n")
        self.proc.stdin.flush()

    def read_lines(self) -> tuple[list[bytes], bool]:
        """The complete lines that have arrived, and whether the process closed its end."""
        closed = False
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                closed = True
                break
            self.buffer += chunk
            if len(self.buffer) > MAX_ANSWER:
                raise ProtocolViolation(f"an answer longer than {MAX_ANSWER} bytes")
        *lines, self.buffer = self.buffer.split(b"\n")
        return lines, closed

    def kill(self) -> int:
        """End the process (SIGKILL) and reap it; returns its exit status."""
        self.peak = max(self.peak, _peak_of(self.proc.pid))
        if self.proc.poll() is None:
            self.proc.kill()
        return self._reap()

    def close(self) -> None:
        """Let the process finish (end of input); kill it if it does not exit promptly."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._reap()

    def complaint(self) -> str:
        """What the process wrote on stderr before it was ready (it sends stderr to /dev/null once ready)."""
        try:
            return (self.proc.stderr.read() or b"")[-2000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _reap(self) -> int:
        status = self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        return status


class Validator:
    """A pool of validating processes; use as a context manager, from one thread.

    ``time_limit_s`` bounds each file's wall-clock time (and its CPU time, in
    the process); ``memory_limit_bytes`` each process's address space (what
    qpdf, libxml2 and Pillow may map and allocate, libraries included);
    ``workers`` is how many files are validated at once.  ``check_modules``
    are extra modules each process imports, which may register more kinds
    (:func:`preservation.formats.checks.base.register`).  Processes start on
    the first file that needs one.  Raises :class:`InvalidRequest` (E112) for
    limits out of range.
    """

    def __init__(self, time_limit_s: float = DEFAULT_TIME_LIMIT_S, memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT,
                 workers: int = 2, *, check_modules: Sequence[str] = (),
                 files_per_process: int = FILES_PER_PROCESS) -> None:
        if isinstance(time_limit_s, bool) or not isinstance(time_limit_s, (int, float)) \
                or not math.isfinite(time_limit_s) or not 0 < time_limit_s <= 86400:
            raise InvalidRequest(f"the validation time limit must be more than 0 and at most 86400 s: {time_limit_s!r}")
        if isinstance(memory_limit_bytes, bool) or not isinstance(memory_limit_bytes, int) \
                or not MIN_MEMORY_LIMIT <= memory_limit_bytes <= 1 << 46:
            raise InvalidRequest(
                f"the validation memory limit must be {MIN_MEMORY_LIMIT >> 20} MiB to 64 TiB: {memory_limit_bytes!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
            raise InvalidRequest(f"validation workers must be 1 to 256: {workers!r}")
        if isinstance(files_per_process, bool) or not isinstance(files_per_process, int) or files_per_process < 1:
            raise InvalidRequest(f"files per validating process must be at least 1: {files_per_process!r}")
        self.time_limit_s = float(time_limit_s)
        self.memory_limit_bytes = memory_limit_bytes
        self.workers = workers
        self.files_per_process = files_per_process
        self._hello = {
            "sys_path": [os.path.abspath(p) for p in sys.path if p],
            "modules": list(check_modules),
            "memory": memory_limit_bytes,
            "time": self.time_limit_s,
            "pixels": memory_limit_bytes // 8,
        }
        self._processes: list[_Process] = []
        self._selector = selectors.DefaultSelector()
        self._numbers = 0
        self._outcomes: Counter[str] = Counter()
        self._started = 0
        self._killed = 0
        self._peak = 0
        self._baseline = 0
        self._closed = False

    # --- the public face ------------------------------------------------------------------

    def __enter__(self) -> Validator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every validating process."""
        for process in list(self._processes):
            self._retire(process, kill=process.request is not None)
        self._selector.close()
        self._closed = True

    @property
    def process_ids(self) -> list[int]:
        """The process ids of the validating processes now running."""
        return [p.proc.pid for p in self._processes]

    @property
    def peak_rss_bytes(self) -> int:
        """The highest peak resident set of any validating process so far (bytes)."""
        return max([self._peak, *(p.peak for p in self._processes)])

    def stats(self) -> dict[str, Any]:
        """Files validated by outcome, processes started and killed, peak and idle memory of a process."""
        return {
            "files": sum(self._outcomes.values()),
            "outcomes": dict(self._outcomes),
            "processes_started": self._started,
            "processes_killed": self._killed,
            "peak_rss_bytes": self.peak_rss_bytes,
            "idle_rss_bytes": self._baseline,
            "memory_limit_bytes": self.memory_limit_bytes,
            "time_limit_s": self.time_limit_s,
        }

    def start(self) -> None:
        """Start every validating process now, without waiting for them.

        They load their libraries (a few tenths of a second each) while the
        caller does other work, bagging for instance; otherwise they start
        on the first file that needs one.
        """
        if self._closed:
            raise InvalidRequest("this validator is closed")
        while len(self._processes) < self.workers:
            self._spawn()

    def validate(self, path: str | os.PathLike[str], kind: str) -> Validation:
        """Validate one file (a convenience over :meth:`validate_many`)."""
        ((_, validation),) = list(self.validate_many([(None, path, kind)]))
        return validation

    def validate_many(self, items: Iterable[tuple[Any, str | os.PathLike[str], str]]) -> Iterator[tuple[Any, Validation]]:
        """``(key, validation)`` for each ``(key, path, kind)``, in the order they finish.

        Streams: at most ``workers`` files are in flight, and ``items`` is
        consumed only as processes become free.  Raises InvalidRequest (E112)
        for an item whose kind is not a kind name (check ``kind_for`` first:
        None is not a kind), before anything is sent for it, and
        ConfigError (E100) when a validating process cannot start at all (a
        missing library or check module: never something a file can cause).
        A file that hangs, explodes or crashes its process is an outcome,
        never an exception.  A caller that stops early leaves no file in
        flight: those processes are killed.
        """
        if self._closed:
            raise InvalidRequest("this validator is closed")
        pending = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and self._has_room():
                    item = next(pending, _END)
                    if item is _END:
                        exhausted = True
                        break
                    yield from self._submit(*item)
                if not any(p.request for p in self._processes):
                    return
                yield from self._wait()
        finally:
            # a caller that stops early (or an error) leaves no file in flight for the next call to receive
            for process in [p for p in self._processes if p.request is not None]:
                self._retire(process, kill=True)

    # --- the pool -----------------------------------------------------------------------------

    def _has_room(self) -> bool:
        return len(self._processes) < self.workers or any(p.request is None for p in self._processes)

    def _idle(self) -> _Process:
        """A process free to take a file: an idle one, or a new one (only called when there is room)."""
        for process in self._processes:
            if process.request is None:
                return process
        return self._spawn()

    def _spawn(self) -> _Process:
        process = _Process(self._hello)
        self._processes.append(process)
        self._selector.register(process.fd, selectors.EVENT_READ, process)
        self._started += 1
        return process

    def _retire(self, process: _Process, *, kill: bool) -> int:
        self._selector.unregister(process.fd)
        self._processes.remove(process)
        if kill:
            status = process.kill()
            self._killed += 1
        else:
            process.close()
            status = process.proc.returncode
        self._peak = max(self._peak, process.peak)
        return status

    def _submit(self, key: Any, path: str | os.PathLike[str], kind: str) -> Iterator[tuple[Any, Validation]]:
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise InvalidRequest(f"not a validation kind: {kind!r}")
        self._numbers += 1
        now = time.monotonic()
        request = _Request(key, os.path.abspath(os.fsdecode(path)), kind, self._numbers, now, now)
        for attempt in (1, 2):
            process = self._idle()
            try:
                process.send({"id": request.number, "path": request.path, "kind": kind})
            except OSError:
                # the process died between files (retired itself, or was killed): a fresh one takes the file
                self._retire(process, kill=True)
                if attempt == 2:
                    yield key, self._finish(stopped(kind, ERROR, codes.VALIDATION_CRASHED,
                                                     "two validating processes died before taking the file"))
                continue
            request.sent = time.monotonic()
            allowance = 0.0 if process.ready else max(0.0, process.started + STARTUP_S - request.sent)
            request.deadline = request.sent + allowance + self.time_limit_s
            process.request = request
            return

    def _wait(self) -> Iterator[tuple[Any, Validation]]:
        busy = [p for p in self._processes if p.request is not None]
        timeout = max(0.0, min(p.request.deadline for p in busy) - time.monotonic())
        for selected, _ in self._selector.select(timeout):
            yield from self._read(selected.data)
        now = time.monotonic()
        for process in [p for p in self._processes if p.request is not None and p.request.deadline <= now]:
            request = process.request
            # its answer may have arrived while the caller was busy with another file's result
            yield from self._read(process)
            if process not in self._processes or process.request is not request:
                continue
            self._retire(process, kill=True)
            if process.ready:
                yield request.key, self._finish(stopped(
                    request.kind, LIMIT, codes.VALIDATION_TIME_LIMIT,
                    f"still running after {self.time_limit_s:g} s: stopped", time_limit_s=self.time_limit_s))
            else:
                yield request.key, self._finish(stopped(
                    request.kind, ERROR, codes.VALIDATION_CRASHED,
                    f"the validating process did not start within {STARTUP_S:g} s"))

    def _read(self, process: _Process) -> Iterator[tuple[Any, Validation]]:
        if process not in self._processes:
            return
        try:
            lines, closed = process.read_lines()
            for line in lines:
                yield from self._answer(process, json.loads(line))
        except (ProtocolViolation, ValueError, RecursionError) as e:
            request = process.request
            self._retire(process, kill=True)
            if request is not None:
                yield request.key, self._finish(stopped(request.kind, ERROR, codes.VALIDATION_FAILED,
                                                         f"the validating process answered nonsense: {e}"))
            return
        if closed and process in self._processes:
            request = process.request
            complaint = "" if process.ready else process.complaint()
            status = self._retire(process, kill=True)
            if not process.ready:
                raise ConfigError(f"a validating process could not start (exit status {status}): "
                                  + for_log(complaint.strip().splitlines()[-1] if complaint.strip() else "no message"))
            if request is not None:
                yield request.key, self._finish(self._death(request, status))

    def _answer(self, process: _Process, answer: Any) -> Iterator[tuple[Any, Validation]]:
        if not isinstance(answer, dict):
            raise ProtocolViolation("an answer that is not an object")
        rss = answer.get("rss")
        if isinstance(rss, int) and not isinstance(rss, bool) and rss >= 0:
            process.peak = max(process.peak, rss)
        if answer.get("ready") is True and not process.ready:
            process.ready = True
            self._baseline = max(self._baseline, process.peak)
            if process.request is not None:
                # the file's own limit starts now that the process has loaded its libraries
                process.request.deadline = time.monotonic() + self.time_limit_s
            return
        request = process.request
        if request is None or answer.get("id") != request.number:
            raise ProtocolViolation("an answer to no request")
        validation = validation_from(answer, request.kind)
        process.request = None
        process.done += 1
        if answer.get("retire") is True or process.done >= self.files_per_process:
            self._retire(process, kill=answer.get("retire") is True)
        yield request.key, self._finish(validation)

    def _death(self, request: _Request, status: int) -> Validation:
        if status == -signal.SIGXCPU:
            return stopped(request.kind, LIMIT, codes.VALIDATION_TIME_LIMIT,
                            f"stopped by the CPU limit ({self.time_limit_s:g} s)", time_limit_s=self.time_limit_s)
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
            how = f"killed by {name}"
        else:
            how = f"exited with status {status}"
        return stopped(request.kind, ERROR, codes.VALIDATION_CRASHED, f"the validating process {how}",
                        exit_status=status)

    def _finish(self, validation: Validation) -> Validation:
        self._outcomes[validation.outcome] += 1
        return validation
