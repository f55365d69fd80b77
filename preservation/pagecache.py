"""Page-cache advice shared by the bag writer and the filesystem store.

A preservation copy is written to be kept, not read again soon: once its
bytes are safe, its pages should make room for others.  On Linux
``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages without waiting
and drops clean ones, so calling it right after writing starts the flush,
and calling it again after the flush drops what was written.
"""

from __future__ import annotations

import os
from contextlib import suppress

FADVISE = getattr(os, "posix_fadvise", None)
"""Not on every platform (macOS has none): the advice is then skipped."""


def advise_dontneed(fd: int, offset: int = 0, end: int | None = None) -> None:
    """POSIX_FADV_DONTNEED for bytes [offset, end) (to the end of the file when ``end`` is None);
    advice only, so it never fails."""
    if FADVISE is None or (end is not None and end <= offset):
        return
    with suppress(OSError):  # a filesystem that refuses it still holds every byte
        FADVISE(fd, offset, 0 if end is None else end - offset, os.POSIX_FADV_DONTNEED)
