"""Test-only kinds that misbehave as a hostile file can make a parser misbehave.

A validating process imports this module when a test's Validator names it in
``check_modules``; the kinds exist nowhere else.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from typing import BinaryIO

from preservation import codes
from preservation.formats.checks.base import Report, register


def _path(stream: BinaryIO) -> str:
    return os.readlink(f"/proc/self/fd/{stream.fileno()}")


@register("sleep")
def sleep_forever(stream: BinaryIO, report: Report) -> None:
    time.sleep(3600)


@register("nap")
def answer_after_a_nap(stream: BinaryIO, report: Report) -> None:
    time.sleep(0.3)


@register("spin")
def spin_on_the_cpu(stream: BinaryIO, report: Report) -> None:
    """Spin, under a CPU limit of one more second than used (the kernel's SIGXCPU, not the wall clock, ends it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))
    while True:
        pass


@register("hog")
def allocate_without_end(stream: BinaryIO, report: Report) -> None:
    hoard = []
    while True:
        hoard.append(bytearray(16 << 20))


@register("abort")
def crash(stream: BinaryIO, report: Report) -> None:
    os.abort()


@register("exit")
def leave(stream: BinaryIO, report: Report) -> None:
    os._exit(3)


@register("await_kill")
def announce_and_wait(stream: BinaryIO, report: Report) -> None:
    """Say it has started (an empty file beside the one it checks: no byte is written), then wait to be killed."""
    open(_path(stream) + ".started", "x").close()
    time.sleep(3600)


@register("liar")
def answer_an_unknown_code(stream: BinaryIO, report: Report) -> None:
    report.findings.append(("ZZZ999", "a code no registry knows"))


@register("shouty")
def answer_hostile_text(stream: BinaryIO, report: Report) -> None:
    print("stray output on stdout must not break the protocol")
    sys.stderr.write("nor on stderr\n")
    report.note(codes.VALIDATION_FAILED, "\x01\x1b[31m\u202e" + "x" * 5000)
    report.details["nested"] = {"deep": {"deeper": {"deepest": "\x00"}}}
    report.details["huge"] = 2**80


@register("self_kill")
def die_by_sigkill(stream: BinaryIO, report: Report) -> None:
    os.kill(os.getpid(), signal.SIGKILL)
