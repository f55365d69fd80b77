"""Putting test files out of the page cache, for checks of what a cold read does."""

from __future__ import annotations

import os
from pathlib import Path

from preservation.pagecache import resident_bytes

from .services import service_missing

SETTLE_ATTEMPTS = 20


def make_cold(paths: list[Path]) -> None:
    """Sync each file and drop its pages; where some stay (a read-ahead still in flight holds its pages locked,
    and dropping skips locked pages: asking with RWF_NOWAIT starts one), read the file to wait for it and drop
    again, until mincore finds none.  Where mincore cannot be asked, the drop is all that is done.

    A file system whose pages never go (tmpfs, which may do direct I/O too) is a missing service: the test is
    skipped, or fails on CI (:func:`tests.services.service_missing`)."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            os.fsync(f.fileno())
            for _ in range(SETTLE_ATTEMPTS):
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                if not resident_bytes(str(path)):
                    break
                f.seek(0)
                while f.read(1 << 20):  # waits for the pages being read in
                    pass
            else:
                service_missing(f"a file system whose cached pages can be dropped ({path.name} stays cached: tmpfs?)")
