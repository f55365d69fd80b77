"""The validating process: one long-lived child of :class:`~preservation.formats.validation.Validator`.

It runs the format checks on the files its parent names, one at a time,
under limits it sets on itself once its libraries are loaded:

* ``RLIMIT_AS``: its address space, so an allocation beyond the memory limit
  fails (``MemoryError``, answered as outcome ``limit``, after which the
  process retires, its heap no longer trusted);
* ``RLIMIT_CPU``: before each file, the CPU seconds used so far plus the time
  limit, so a check spinning in C is ended by the kernel (``SIGXCPU``) even if
  the parent's wall clock had not already killed it;
* ``RLIMIT_FSIZE`` 0 and ``RLIMIT_CORE`` 0: it writes no file and leaves no
  core dump.

The protocol is JSON lines (never pickle: a child subverted by a hostile
file must not be able to run code in its parent).  The parent's first line
carries ``sys_path``, ``modules`` (extra check modules to import, which
register more kinds), ``memory`` (bytes), ``time`` (seconds) and
``pixels``; the child answers ``{"ready": true, "rss": …}``.  Then each
request ``{"id", "path", "kind"}`` gets one answer: a
:meth:`~preservation.formats.checks.base.Report.answer` plus ``id``,
``rss`` (the process's peak resident set so far, bytes) and ``retire``.
Anything a library prints goes to /dev/null: the answers have a file
descriptor of their own.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import signal
import stat
import sys
import time
from typing import Any, BinaryIO

from preservation import codes
from preservation.formats.checks import epub, image, markup, pdf  # noqa: F401 - they register their kinds
from preservation.formats.checks.base import CHECKS, Report


class _NotRegular(OSError):
    pass


def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes.

    VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across exec, so a
    process started by a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading when it is a regular file; raises OSError otherwise.

    Never follows a symbolic link in the last component and never blocks on
    a FIFO (opened non-blocking, refused as not regular).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(f"not a regular file (mode {stat.filemode(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def validate(path: str, kind: str) -> tuple[Report, bool]:
    """The report on one file, and whether this process must retire after it."""
    report = Report(kind)
    check = CHECKS.get(kind)
    if check is None:
        report.failed(codes.VALIDATION_FAILED, f"no check for kind {kind!r}")
        return report, False
    try:
        stream = open_regular(path)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        report.failed(codes.VALIDATION_UNREADABLE, getattr(e, "strerror", None) or str(e))
        return report, False
    stopped_by = None
    try:
        with stream:
            check(stream, report)
    except MemoryError:
        stopped_by = "the check needed more memory than the limit allows"
    except RecursionError:
        stopped_by = "the check recursed beyond the stack limit"
    except Exception as e:  # noqa: BLE001 - one file's surprise must not end the process
        report.failed(codes.VALIDATION_FAILED, f"{type(e).__name__}: {e}")
    if stopped_by is None:
        return report, False
    # answered only here, once the exception and the frames holding what the check allocated are gone
    report = Report(kind)
    report.stopped(codes.VALIDATION_MEMORY_LIMIT, stopped_by)
    return report, True


def _set_limits(memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _send(fd: int, answer: dict[str, Any]) -> None:
    data = json.dumps(answer, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"
    while data:
        data = data[os.write(fd, data):]


def serve(hello: dict[str, Any]) -> None:
    """Answer requests on stdin until it closes (called by the parent's bootstrap with its first line)."""
    # an operator's Ctrl-C is for the parent, which ends its processes itself (a check interrupted here
    # would be reported as a crash of the file)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for module in hello.get("modules", ()):
        importlib.import_module(module)
    sys.dont_write_bytecode = True  # under RLIMIT_FSIZE 0 nothing is written, and nothing need try
    image.prepare(int(hello["pixels"]))
    time_limit = float(hello["time"])
    _set_limits(int(hello["memory"]))
    # stderr told the parent why a start failed; from now on nothing a library says reaches it
    os.dup2(devnull, 2)
    os.close(devnull)
    _send(answers, {"ready": True, "rss": peak_rss(), "pid": os.getpid()})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        _limit_cpu(time_limit)
        started = time.perf_counter()
        report, retire = validate(request["path"], request["kind"])
        answer = report.answer()
        answer.update(id=request["id"], rss=peak_rss(), seconds=round(time.perf_counter() - started, 6),
                      retire=retire)
        _send(answers, answer)
        if retire:
            return
