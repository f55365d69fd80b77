"""The garbage collector paused around bulk work that makes many short-lived objects without cycles.

Decoding and writing thousands of records (a JSON list, its rows) makes
lists, dicts and tuples that reference counting frees as soon as they are
used.  A collector pass in between finds nothing to free: it only moves them
to the older generations, and that count brings on a full collection of the
whole process (tenths of a second in an ingest, over every object it holds).
:func:`paused` keeps the collector off while such work runs, and gives it
back as it found it.  Pauses nest and may overlap on several threads: the
collector runs again when the last of them ends, if it ran before the first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_lock = threading.RLock()  # (reentrant: a finalizer or signal handler that pauses on the same thread cannot deadlock)
_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collector pass inside the block (on any thread); use it for bounded work that makes objects (a batch's
    rows, a table read), never around a whole delivery, nor around a call that may wait (a statement that waits
    on another transaction's lock): the pause holds for every thread of the process."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
