"""A failing disk under one node root: ENOSPC or EIO where the filesystem adapter reads and writes.

The faults are raised by the file objects that ``storage_adapters.filesystem``
and ``storage_adapters.fanout`` open, and by the file calls of ``storage_adapters.fsverify`` (audits and
checks of new copies), exactly where the operating system would raise them, so the real
adapter translates them (StorageFull, StorageError), removes its temporary
file and reports findings as it would on a failing disk.  Files elsewhere
(staging, other nodes, restores) are untouched.

    disk = FailingDisk(node_root(repo, "inst-istic"))
    disk.fill_after(64_000)                 # ENOSPC once 64 kB more have been written
    disk.break_reads(path, after=1000)      # EIO after 1000 bytes of this file (this inode only)
    disk.install(monkeypatch)

A process the crash tests kill gets a slow disk from the environment
(:data:`SLOW_DISK_ENV`, ``ROOT:SECONDS``: every file opened under ROOT takes
that much longer), so that a short operation lasts long enough to be killed
in the middle: see :func:`install_from_environment`.
"""

from __future__ import annotations

import builtins
import errno
import os
import time
from pathlib import Path
from typing import Any

import storage_adapters.filesystem as filesystem_adapter
from storage_adapters import fanout, fsverify, localfiles

SLOW_DISK_ENV = "PRESERVE_TEST_SLOW_DISK"


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    """This file and no later one: a file written after a deletion may get the same inode number."""
    return st.st_dev, st.st_ino, st.st_ctime_ns


def _error(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class FailingDisk:
    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.write_limit: int | None = None
        self.write_errno = errno.ENOSPC
        self.written = 0
        self.failed_writes = 0
        self.failed_reads = 0
        self.open_delay = 0.0
        self._bad_inodes: dict[tuple[int, int, int], tuple[int, int]] = {}  # (dev, ino, ctime) -> (after bytes, errno)
        self._bad_prefixes: list[tuple[str, int]] = []
        self._open_fds: dict[int, _Reads] = {}

    # --- what fails ------------------------------------------------------------

    def fill_after(self, nbytes: int, code: int = errno.ENOSPC) -> None:
        """Writes fail with ``code`` once ``nbytes`` more bytes have been written under the root."""
        self.write_limit = self.written + nbytes
        self.write_errno = code

    def break_reads(self, path: Path, *, after: int = 0, code: int = errno.EIO) -> None:
        """Reading the file now at ``path`` fails after ``after`` bytes; a file written there later reads fine."""
        st = os.stat(path)
        self._bad_inodes[_identity(st)] = (after, code)

    def break_reads_under(self, directory: Path, code: int = errno.EIO) -> None:
        """Every read of every file under ``directory`` fails, including files written there later."""
        self._bad_prefixes.append((os.path.realpath(directory) + os.sep, code))

    def slow_down(self, seconds_per_open: float) -> None:
        """Every file opened under the root takes this much longer (a busy or distant disk)."""
        self.open_delay = seconds_per_open

    def heal(self) -> None:
        """The operator freed space and replaced the disk: nothing fails any more."""
        self.write_limit = None
        self._bad_inodes.clear()
        self._bad_prefixes.clear()

    # --- plumbing ----------------------------------------------------------------

    def install(self, monkeypatch) -> None:
        for module in (filesystem_adapter, fanout, localfiles):
            monkeypatch.setattr(module, "open", self.open, raising=False)
        for name in ("sys_open", "sys_read", "sys_readv", "sys_close"):
            monkeypatch.setattr(fsverify, name, getattr(self, name))

    def _faults_for(self, path: str, fd: int) -> tuple[int, int] | None:
        read_fault = self._bad_inodes.get(_identity(os.fstat(fd)))
        for prefix, code in self._bad_prefixes:
            if path.startswith(prefix):
                read_fault = (0, code)
        return read_fault

    def _under_root(self, path: str) -> bool:
        if not path.startswith(self.root + os.sep):
            return False
        if self.open_delay:
            time.sleep(self.open_delay)
        return True

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any):
        real = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 - handed to the caller, who closes it
        path = os.path.realpath(os.fsdecode(file))
        if not self._under_root(path):
            return real
        readable = "r" in mode or "+" in mode
        reads = _Reads(self, path, self._faults_for(path, real.fileno()) if readable else None)
        return _FailingFile(real, self, reads)

    # the same faults for fsverify's calls on file descriptors

    def sys_open(self, name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
        where = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else ""
        path = os.path.realpath(os.path.join(where, os.fsdecode(name)))
        if self._under_root(path):
            self._open_fds[fd] = _Reads(self, path, self._faults_for(path, fd))
        return fd

    def sys_read(self, fd: int, n: int) -> bytes:
        reads = self._open_fds.get(fd)
        if reads is None:
            return os.read(fd, n)
        return reads.done(os.read(fd, reads.before(n)))

    def sys_readv(self, fd: int, buffers: list) -> int:
        reads = self._open_fds.get(fd)
        if reads is None:
            return os.readv(fd, buffers)
        view = memoryview(buffers[0])
        n = os.readv(fd, [view[: reads.before(len(view))]])
        reads.count += n
        return n

    def sys_close(self, fd: int) -> None:
        self._open_fds.pop(fd, None)
        os.close(fd)

    def _take_write(self, wanted: int, path: str) -> int:
        if self.write_limit is None:
            return wanted
        room = self.write_limit - self.written
        if room <= 0:
            self.failed_writes += 1
            raise _error(self.write_errno, path)
        return min(room, wanted)


class _Reads:
    """What has been read of one open file, and where it is to fail."""

    def __init__(self, disk: FailingDisk, path: str, fault: tuple[int, int] | None) -> None:
        self.disk = disk
        self.path = path
        self.fault = fault
        self.count = 0

    def before(self, wanted: int) -> int:
        """How much of ``wanted`` may be read now; raises the fault once it is reached."""
        if self.fault is None:
            return wanted
        after, code = self.fault
        if self.count >= after:
            self.disk.failed_reads += 1
            raise _error(code, self.path)
        return min(wanted, after - self.count)

    def done(self, chunk: bytes) -> bytes:
        self.count += len(chunk)
        return chunk


class _FailingFile:
    """A raw file object that fails as the disk says."""

    def __init__(self, real, disk: FailingDisk, reads: _Reads) -> None:
        self._real = real
        self._disk = disk
        self._path = reads.path
        self._reads = reads

    def write(self, data) -> int:
        view = memoryview(data)
        allowed = self._disk._take_write(len(view), self._path)
        written = self._real.write(view[:allowed])
        self._disk.written += written
        return written

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 30
        return self._reads.done(self._real.read(self._reads.before(n)))

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        n = self._real.readinto(view[: self._reads.before(len(view))])
        self._reads.count += n or 0
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._real.seek(offset, whence)
        self._reads.count = position
        return position

    def fileno(self) -> int:
        return self._real.fileno()

    def close(self) -> None:
        self._real.close()

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._real.close()


def install_from_environment() -> FailingDisk | None:
    """In a process that will be killed: a slow disk as :data:`SLOW_DISK_ENV` says, for its whole life."""
    spec = os.environ.get(SLOW_DISK_ENV)
    if not spec:
        return None
    root, _, seconds = spec.rpartition(":")
    disk = FailingDisk(Path(root))
    disk.slow_down(float(seconds))
    filesystem_adapter.open = disk.open
    fsverify.sys_open, fsverify.sys_read, fsverify.sys_readv, fsverify.sys_close = (
        disk.sys_open, disk.sys_read, disk.sys_readv, disk.sys_close)
    return disk
