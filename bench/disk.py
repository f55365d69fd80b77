"""A settled disk before a timed run: earlier runs' trees deleted, their writes and discards out of the way.

Runs of one bench grew 7.9 -> 22.9 -> 27.4 s one after another, whatever they
measured, and the growth is kernel CPU time of the run itself (3 to 20 s on
10,000 files of 4 KiB, five runs in a row), not waiting.  A profile
(``perf record``) puts most of it in ext4's inode allocator: this VM's root
is ext4 *without a journal*, and there ``find_inode_bit`` skips every free
inode deleted less than 60 s ago (``recently_deleted``, RECENTCY_MIN in
``fs/ext4/ialloc.c``), or less than 360 s ago while its inode-table block is
dirty, which a new file in the same block makes it; each one skipped costs a
buffer-cache look-up.  Creating 10,000 files here right after 30,000 deletes,
and again 62 s later, spent 3.7 and 4.0 s of kernel CPU, 77 % of it in
those functions, on a machine where other sessions delete trees too.  The
file system is also mounted with online ``discard``: deletes queue discards
that the device works through for seconds.

So :func:`remove_and_settle` deletes the earlier trees and syncs, and
:func:`settle` waits until the block device holding the path has had nothing
in flight and completed no write and no discard for :data:`QUIET_FOR`
seconds (``/proc/diskstats``), and, when asked, until ``recently_deleted``
seconds have passed since the deletes (up to 360 s to be sure: the benches
leave it to their caller, as it multiplies their time), or, with
``forget_deleted`` (root), drops the clean caches instead: ``recently_deleted``
only counts an inode whose inode-table block is still in the buffer cache.  What is left shows as
kernel CPU, which the benches report apart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

DISKSTATS = "/proc/diskstats"
DROP_CACHES = "/proc/sys/vm/drop_caches"
QUIET_FOR = 1.0
"""Seconds with no write, no discard and nothing in flight that count as settled."""
MAX_WAIT = 120.0
POLL = 0.1
RECENTLY_DELETED = 362.0
"""Seconds after which ext4 without a journal skips a deleted inode no more, even one whose inode-table block is
dirty (RECENTCY_MIN + RECENTCY_DIRTY, 360 s, and the second its ``time_before32`` test rounds to)."""


@dataclass(frozen=True)
class Activity:
    """One device's counters (``Documentation/admin-guide/iostats.rst``)."""

    writes: int
    in_flight: int
    discards: int


@dataclass(frozen=True)
class Settled:
    seconds: float
    """From the start of the sync to the end of the quiet spell (or to giving up)."""
    settled: bool
    """False when the device was still busy after ``max_wait`` seconds (other processes writing)."""


def device_activity(path: str | os.PathLike[str], stats: str = DISKSTATS) -> Activity | None:
    """The counters of the block device holding ``path`` (summed over every device when it has none, e.g. an
    overlay); None where ``/proc/diskstats`` cannot be read."""
    st_dev = os.stat(path).st_dev
    major, minor = os.major(st_dev), os.minor(st_dev)
    try:
        with open(stats, encoding="ascii") as f:
            rows = [line.split() for line in f]
    except OSError:
        return None
    rows = [r for r in rows if len(r) >= 14]
    mine = [r for r in rows if int(r[0]) == major and int(r[1]) == minor] or rows
    return Activity(writes=sum(int(r[7]) for r in mine), in_flight=sum(int(r[11]) for r in mine),
                    discards=sum(int(r[14]) if len(r) >= 18 else 0 for r in mine))


def settle(path: str | os.PathLike[str], quiet_for: float = QUIET_FOR, max_wait: float = MAX_WAIT,
           stats: str = DISKSTATS, not_before: float = 0.0) -> Settled:
    """``os.sync()``, then wait until the device holding ``path`` has been idle for ``quiet_for`` seconds
    (nothing in flight, no write or discard completed) and ``time.monotonic()`` has reached ``not_before``;
    at most ``max_wait`` seconds in all."""
    started = time.monotonic()
    os.sync()
    last = device_activity(path, stats)
    if last is None:
        return Settled(time.monotonic() - started, False)
    quiet_since = time.monotonic()
    while True:
        time.sleep(POLL)
        now = time.monotonic()
        current = device_activity(path, stats)
        if current is None or current.in_flight or current.writes != last.writes or current.discards != last.discards:
            quiet_since = now
        elif now - quiet_since >= quiet_for and now >= not_before:
            return Settled(now - started, True)
        if now - started >= max_wait:
            return Settled(now - started, False)
        last = current


def drop_caches(target: str | None = None) -> str | None:
    """Write back and drop the clean caches (page cache, dentries, inodes); None when done, else why not."""
    os.sync()
    try:
        with open(target or DROP_CACHES, "w", encoding="ascii") as f:
            f.write("3\n")
    except OSError as e:
        return f"cannot drop the page cache ({e.strerror}; root only)"
    return None


def remove_and_settle(trees: list[Path], settle_on: Path, max_wait: float = MAX_WAIT,
                      recently_deleted: float = 0.0, forget_deleted: bool = False) -> Settled:
    """Delete ``trees`` (earlier runs' homes), then :func:`settle` the disk holding ``settle_on``, no sooner than
    ``recently_deleted`` seconds after the last delete when something was deleted.

    ``forget_deleted``: once something was deleted, drop the clean caches (:func:`drop_caches`, root only), so
    that ext4 no longer skips the deleted inodes at once: ``recently_deleted`` only counts an inode whose
    inode-table block is still in the buffer cache.  Creating 10,000 files right after 30,000 deletes took 2.4 s
    of kernel CPU here, after a second round 4.4 s, and 0.5 s after the deletes and a drop (0.6 s on an unused
    disk).  The run must then read what it needs into the page cache again.
    """
    deleted = False
    for tree in trees:
        if os.path.lexists(tree):
            shutil.rmtree(tree, ignore_errors=True)
            deleted = True
    settle_on.mkdir(parents=True, exist_ok=True)
    if deleted and forget_deleted:
        refused = drop_caches()
        if refused:
            raise OSError(f"{refused}: the deleted inodes cannot be forgotten (run as root, or without it)")
    not_before = time.monotonic() + recently_deleted if deleted else 0.0
    return settle(settle_on, max_wait=max(max_wait, recently_deleted + QUIET_FOR), not_before=not_before)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of a bench whose runs each start on a settled disk: ``--settle-wait`` and ``--after-delete``."""
    parser.add_argument("--settle-wait", type=float, default=MAX_WAIT,
                        help=f"at most this many seconds for the disk to settle before a run (default {MAX_WAIT:g})")
    parser.add_argument("--after-delete", type=float, default=0.0,
                        help="seconds to wait after deleting the previous run's tree (ext4 without a journal skips "
                             "inodes deleted in the last 60-360 s; default 0)")
