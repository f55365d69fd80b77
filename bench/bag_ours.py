"""The child entry points of ``bench_bag`` for our side: ``create_bag`` and ``validate_bag``.

A module of its own, so that our child process imports only our library (and
bagit-python's child only bagit-python): each contender's peak memory is then
its own, not the sum of both libraries' imports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.corpora import iter_files, read_through
from preservation.bagit import create_bag, open_delivery, validate_bag


def run_create(delivery: str, dest: str, info: dict[str, str], algorithms: list[str], workers: int) -> dict:
    """Bag ``delivery`` into ``dest`` without flushing, then time the ``os.sync()`` that ``fsync=True`` adds."""
    read_through(list(iter_files(Path(delivery))))
    os.sync()  # start on a settled disk: no earlier writes still going out
    start = time.perf_counter()
    result = create_bag(open_delivery(delivery), dest, info, algorithms=algorithms, workers=workers, fsync=False)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    os.sync()
    return {"seconds": seconds, "files": result.payload_files, "bytes": result.payload_bytes,
            "sync_seconds": time.perf_counter() - start}


def run_validate(bag: str, workers: int) -> dict:
    """Validate ``bag``; raises RuntimeError when our validator finds it invalid."""
    read_through(list(iter_files(Path(bag))))
    start = time.perf_counter()
    report = validate_bag(bag, workers=workers)
    seconds = time.perf_counter() - start
    if not report.valid:
        raise RuntimeError(f"our validator refused the benchmark bag: {report.errors[:3]}")
    return {"seconds": seconds, "files": report.payload_files, "bytes": report.payload_bytes}
