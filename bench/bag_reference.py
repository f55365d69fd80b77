"""The child entry points of ``bench_bag`` for bagit-python: ``cp -r`` + ``make_bag`` and ``Bag.validate``.

A module of its own, so that bagit-python's child process imports only
bagit-python, not our library (see :mod:`bench.bag_ours`).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import bagit

from bench.corpora import iter_files, read_through


def _payload(bag: Path) -> tuple[int, int]:
    files = [Path(p) for p in iter_files(bag / "data")]
    return len(files), sum(p.stat().st_size for p in files)


def run_create(delivery: str, dest: str, info: dict[str, str], algorithms: list[str], processes: int) -> dict:
    """``cp -r delivery dest`` then ``make_bag`` in place: a bag that leaves the delivery untouched."""
    read_through(list(iter_files(Path(delivery))))
    os.sync()  # start on a settled disk: no earlier writes still going out
    start = time.perf_counter()
    subprocess.run(["cp", "-r", delivery, dest], check=True)
    bagit.make_bag(dest, dict(info), processes=processes, checksums=algorithms)
    seconds = time.perf_counter() - start
    files, octets = _payload(Path(dest))
    return {"seconds": seconds, "files": files, "bytes": octets}


def run_validate(bag: str, processes: int) -> dict:
    """``bagit.Bag(bag).validate(processes=processes)``; raises bagit.BagValidationError when invalid."""
    read_through(list(iter_files(Path(bag))))
    start = time.perf_counter()
    bagit.Bag(bag).validate(processes=processes)
    seconds = time.perf_counter() - start
    files, octets = _payload(Path(bag))
    return {"seconds": seconds, "files": files, "bytes": octets}
