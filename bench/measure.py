"""Running one contender in a child process and reading its time and peak memory.

The child is ``python -m bench.child module:function``; the function's keyword
arguments go in as JSON and its result (a dict with at least ``seconds``,
timed inside the child around the measured work only) comes back as JSON.
The parent reaps the child with ``os.wait4`` (CPU time).  Peak memory is what
the child reports: its own VmHWM and the peak of every process it waited for
(a process pool's workers included).  ``wait4``'s ru_maxrss is not used for
it: a spawned child's count starts at this runner's own resident set.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpora import BENCH_DIR, OUT_DIR

REPO_ROOT = BENCH_DIR.parent


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields)
    return total - idle, total


def machine_busy(interval: float = 1.0) -> float:
    """Fraction of all cores busy over the next ``interval`` seconds."""
    busy0, total0 = _cpu_ticks()
    time.sleep(interval)
    busy1, total1 = _cpu_ticks()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(limit: float, max_wait: float, interval: float = 1.0) -> float:
    """Wait (up to ``max_wait`` s) until other work uses under ``limit`` of the cores; returns the last reading."""
    deadline = time.monotonic() + max_wait
    busy = machine_busy(interval)
    while busy >= limit and time.monotonic() < deadline:
        busy = machine_busy(interval)
    return busy


class ContenderFailed(RuntimeError):
    """A contender's child process did not finish its work (its traceback is on stderr)."""


@dataclass
class Measured:
    result: dict[str, Any]
    peak_rss: int
    """Bytes: the largest resident set of the child (VmHWM) or of any of its reaped descendants."""
    wall: float
    """Seconds from spawn to exit, interpreter start-up included."""
    others: float
    """Fraction of the machine's cores busy with other processes while the child ran."""
    cpu: float
    """CPU seconds (user + system) of the child and its reaped descendants, start-up included."""

    @property
    def seconds(self) -> float:
        return float(self.result["seconds"])


@dataclass
class Quiet:
    """Before each child, wait up to ``max_wait`` s for other processes to use under ``limit`` of the cores."""

    limit: float = 0.15
    max_wait: float = 0.0


QUIET = Quiet()


@dataclass
class Repeat:
    """How many times ``best_of`` runs our side (the hashing limit takes its best of several runs itself)."""

    times: int = 3


REPEAT = Repeat()


def run_child(target: str, **kwargs: Any) -> Measured:
    """Run ``target`` ("module:function") with ``kwargs`` in a fresh interpreter.

    Raises ContenderFailed when the child exits non-zero.
    """
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if QUIET.max_wait > 0:
        wait_for_quiet(QUIET.limit, QUIET.max_wait, interval=0.5)
    with tempfile.TemporaryDirectory(dir=OUT_DIR, prefix="child-") as tmp:
        args_path = Path(tmp) / "args.json"
        out_path = Path(tmp) / "result.json"
        args_path.write_text(json.dumps(kwargs), encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        argv = [sys.executable, "-m", "bench.child", target, str(args_path), str(out_path)]
        busy_before, total_before = _cpu_ticks()
        start = time.perf_counter()
        pid = os.posix_spawn(sys.executable, argv, env)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        busy_after, total_after = _cpu_ticks()
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not out_path.exists():
            raise ContenderFailed(f"{target} exited with status {code}")
        result = json.loads(out_path.read_text(encoding="utf-8"))
    busy = (busy_after - busy_before) / CLOCK_TICKS
    capacity = (total_after - total_before) / CLOCK_TICKS
    others = max(0.0, busy - usage.ru_utime - usage.ru_stime) / capacity if capacity else 0.0
    # the child's own VmHWM and its children's peak: wait4's ru_maxrss would include this runner's size
    # (and the largest of its worker processes that are not its children, when it reports them)
    peak = max(int(result.get("peak_rss_self", 0)), int(result.get("peak_rss_children", 0)),
               int(result.get("peak_rss_workers", 0))) or usage.ru_maxrss * 1024
    return Measured(result=result, peak_rss=peak, wall=wall, others=others,
                    cpu=usage.ru_utime + usage.ru_stime)


def best_of(target: str, times: int | None = None, **kwargs: Any) -> Measured:
    """Run ``target`` ``times`` times (default ``REPEAT.times``), each in a fresh child; the fastest run.

    The same rule as the references' (``bench.hashlimit`` keeps its best of
    several runs): on a shared VM a single run measures the neighbours too.
    The peak memory reported is the largest of all runs, and every run's
    time is kept in ``result["runs"]``.
    """
    runs = [run_child(target, **kwargs) for _ in range(max(1, times or REPEAT.times))]
    best = min(runs, key=lambda m: m.seconds)
    best.result["runs"] = [round(m.seconds, 4) for m in runs]
    best.peak_rss = max(m.peak_rss for m in runs)
    best.others = max(m.others for m in runs)
    return best
