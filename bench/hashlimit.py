"""The hashing limit: the fastest plain-hashlib way to digest the same files.

It is the reference the ingest and audit benchmarks are held to, so it must
be the honest best this machine can do in Python, not a straw man.  Every
strategy reads each byte once per process that needs it, with a reused
buffer (``readinto``), and runs on all cores:

``processes over files``
    a process pool, one task per batch of files, each file read once and fed
    to every algorithm;
``threads over files``
    the same with threads (hashlib releases the GIL on big buffers);
``one process per algorithm``
    for few big files and two algorithms: sha256 in one process, sha512 in
    the other, each reading all the files.

Pools are started before the clock starts; each strategy runs ``repeats``
times after a read that warms the page cache, and the best time wins.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Callable, Sequence

from bench.corpora import read_through

BUFFER = 4 * 1024 * 1024
BATCH_FILES = 256


def cores() -> int:
    return len(os.sched_getaffinity(0))


def hash_files(paths: Sequence[str], algorithms: Sequence[str]) -> int:
    """Digest each file with every algorithm in one read pass; returns bytes read."""
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    total = 0
    for path in paths:
        hashes = [hashlib.new(a) for a in algorithms]
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                chunk = view[:n]
                for h in hashes:
                    h.update(chunk)
                total += n
        for h in hashes:
            h.digest()
    return total


def batches(paths: Sequence[str], sizes: Sequence[int], parts: int) -> list[list[str]]:
    """Split files into batches of about equal bytes, several per worker for balance."""
    total = sum(sizes) or 1
    target = max(1, total // (parts * 8))
    out: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for path, size in zip(paths, sizes):
        current.append(path)
        current_bytes += size
        if current_bytes >= target or len(current) >= BATCH_FILES:
            out.append(current)
            current, current_bytes = [], 0
    if current:
        out.append(current)
    return out


def _started(pool: Executor, workers: int) -> Executor:
    """Make every worker exist before timing (a pool spawns them lazily)."""
    wait([pool.submit(time.sleep, 0.05) for _ in range(workers)])
    return pool


def _time_over_files(pool: Executor, work: list[list[str]], algorithms: Sequence[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = sum(f.result() for f in [pool.submit(hash_files, batch, algorithms) for batch in work])
    return time.perf_counter() - start, done


def _time_per_algorithm(pool: Executor, paths: list[str], algorithms: Sequence[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = [f.result() for f in [pool.submit(hash_files, paths, (a,)) for a in algorithms]]
    return time.perf_counter() - start, done[0]


def measure(paths: list[str], algorithms: list[str], repeats: int = 2) -> dict:
    """Best time of every strategy over ``paths``; the child-process contender entry point."""
    n = cores()
    sizes = [os.path.getsize(p) for p in paths]
    total = sum(sizes)
    work = batches(paths, sizes, n)
    strategies: dict[str, Callable[[], tuple[float, int]]] = {}
    process_pool = _started(ProcessPoolExecutor(max_workers=n), n)
    thread_pool = ThreadPoolExecutor(max_workers=n)
    strategies["processes over files"] = lambda: _time_over_files(process_pool, work, algorithms)
    strategies["threads over files"] = lambda: _time_over_files(thread_pool, work, algorithms)
    algorithm_pool = None
    if len(algorithms) > 1:
        algorithm_pool = _started(ProcessPoolExecutor(max_workers=len(algorithms)), len(algorithms))
        strategies["one process per algorithm"] = lambda: _time_per_algorithm(algorithm_pool, paths, algorithms)
    times: dict[str, float] = {}
    try:
        for name, run in strategies.items():
            best = float("inf")
            for _ in range(repeats):
                read_through(paths)
                seconds, done = run()
                if done != total:
                    raise RuntimeError(f"{name} read {done} bytes, expected {total}")
                best = min(best, seconds)
            times[name] = best
    finally:
        process_pool.shutdown()
        thread_pool.shutdown()
        if algorithm_pool is not None:
            algorithm_pool.shutdown()
    winner = min(times, key=times.__getitem__)
    return {
        "seconds": times[winner],
        "strategy": winner,
        "strategies": times,
        "files": len(paths),
        "bytes": total,
        "algorithms": list(algorithms),
        "cores": n,
    }
