"""Bounded parallel map: both cores busy, memory flat however many items."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, window: int | None = None) -> Iterator[R]:
    """Like ``map`` over threads, results in input order, at most ``window`` in flight.

    An exception from ``fn`` is raised when its result is reached; the
    remaining in-flight items are still waited for, so no thread outlives it.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    window = window or workers * 4
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preserve-io") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
