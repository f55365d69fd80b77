"""cProfile across threads: one profiler per thread, merged into one report.

The ingest does its work on thread pools (bagging, copying, verifying), which
plain cProfile would not see; ``threading.setprofile`` starts a profiler in
each new thread.  Times are wall-clock per thread, so the sum of ``tottime``
exceeds the elapsed time when threads overlap; with ``cpu=True`` they are each
thread's CPU time instead, which a loaded machine does not inflate.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import threading
import time
from pathlib import Path
from typing import Iterator

TOP = 45


@contextlib.contextmanager
def profiled(report: Path, cpu: bool = False) -> Iterator[None]:
    """Profile the block and every thread started inside it; write the report to ``report``.

    ``cpu``: time each thread's CPU (``time.thread_time``) rather than the wall clock.
    """
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    clock = (time.thread_time,) if cpu else ()

    def start_in_thread(*_args) -> None:
        profile = cProfile.Profile(*clock)
        with lock:
            profiles.append(profile)
        profile.enable()

    main = cProfile.Profile(*clock)
    profiles.append(main)
    threading.setprofile(start_in_thread)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)
        out = io.StringIO()
        with lock:
            stats = pstats.Stats(*profiles, stream=out)
        stats.strip_dirs()
        out.write(f"# {len(profiles)} thread profile(s) merged; {'CPU' if cpu else 'wall-clock'} per thread\n\n## by own time\n")
        stats.sort_stats("tottime").print_stats(TOP)
        out.write("\n## by cumulative time\n")
        stats.sort_stats("cumulative").print_stats(TOP)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(out.getvalue(), encoding="utf-8")
