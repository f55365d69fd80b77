"""cProfile across threads: one profiler per thread, merged into one report.

The ingest does its work on thread pools (bagging, copying, verifying), which
plain cProfile would not see; ``threading.setprofile`` starts a profiler in
each new thread.  Times are wall-clock per thread, so the sum of ``tottime``
exceeds the elapsed time when threads overlap.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import threading
from pathlib import Path
from typing import Iterator

TOP = 45


@contextlib.contextmanager
def profiled(report: Path) -> Iterator[None]:
    """Profile the block and every thread started inside it; write the report to ``report``."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_args) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()

    main = cProfile.Profile()
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
        out.write(f"# {len(profiles)} thread profile(s) merged; wall-clock per thread\n\n## by own time\n")
        stats.sort_stats("tottime").print_stats(TOP)
        out.write("\n## by cumulative time\n")
        stats.sort_stats("cumulative").print_stats(TOP)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(out.getvalue(), encoding="utf-8")
