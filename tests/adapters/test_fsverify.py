"""The local checker: every kind of damage named, in this process and in worker processes.

The same files are checked three ways — threads here, checker processes, and
the generic digest-then-compare path every back end inherits — and the three
must agree, problem for problem.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import signal
import time
from types import SimpleNamespace

import pytest

import storage_adapters.filesystem as filesystem
from preservation.pagecache import first_page_resident, resident_bytes
from storage_adapters import fsverify
from storage_adapters.base import (
    VERIFY_DIGEST,
    VERIFY_MISSING,
    VERIFY_NOT_REGULAR,
    VERIFY_SIZE,
    VERIFY_UNREADABLE,
    StorageAdapter,
)
from storage_adapters.filesystem import FilesystemAdapter

from ..coldfiles import make_cold
from ..corruption import flip_bit, replace_with_socket
from ..services import service_missing

PREFIX = "pkg/"
BIG = 5 * 1024 * 1024 + 17  # over fsverify's one-read size: read in steps


def _digests(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest()


@pytest.fixture
def damaged(tmp_path):
    """A store with good files and one of each kind of damage; the expected rows and problems."""
    adapter = FilesystemAdapter((tmp_path / "root").as_uri())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"not yours")
    base = tmp_path / "root" / "pkg"
    rows, problems = [], {}

    def put(path: str, data: bytes) -> bytes:
        target = base / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        rows.append((path, len(data), _digests(data)))
        return data

    for i in range(40):
        put(f"data/卷{i % 3}/文件-{i:03d}.pdf", os.urandom(100 + i * 37))
    put("data/big/整卷.tar", os.urandom(BIG))
    put("data/empty.txt", b"")
    put("manifest-sha256.txt", b"abc  data/x\n")

    put("data/changed.bin", os.urandom(4096))
    flip_bit(base / "data/changed.bin", offset=1000)
    problems["data/changed.bin"] = VERIFY_DIGEST
    put("data/big/changed.tar", os.urandom(BIG))
    flip_bit(base / "data/big/changed.tar", offset=BIG - 1)
    problems["data/big/changed.tar"] = VERIFY_DIGEST
    put("data/grown.bin", b"x" * 300)
    (base / "data/grown.bin").write_bytes(b"x" * 301)
    problems["data/grown.bin"] = VERIFY_SIZE
    put("data/big/grown.tar", b"y" * BIG)
    with open(base / "data/big/grown.tar", "ab") as f:
        f.write(b"y")
    problems["data/big/grown.tar"] = VERIFY_SIZE
    put("data/shrunk.bin", b"z" * 300)
    (base / "data/shrunk.bin").write_bytes(b"z" * 299)
    problems["data/shrunk.bin"] = VERIFY_SIZE
    put("data/gone.bin", b"gone")
    (base / "data/gone.bin").unlink()
    problems["data/gone.bin"] = VERIFY_MISSING
    rows.append(("data/no-such-dir/file.bin", 5, _digests(b"never")))
    problems["data/no-such-dir/file.bin"] = VERIFY_MISSING
    put("data/link.bin", b"not yours")
    (base / "data/link.bin").unlink()
    os.symlink(outside / "secret.bin", base / "data/link.bin")
    problems["data/link.bin"] = VERIFY_NOT_REGULAR
    os.symlink(outside, base / "data/out")
    rows.append(("data/out/secret.bin", 9, _digests(b"not yours")))
    problems["data/out/secret.bin"] = VERIFY_UNREADABLE  # the linked directory leads outside: refused
    rows.append(("data/fifo", 4, _digests(b"fifo")))
    os.mkfifo(base / "data/fifo")
    problems["data/fifo"] = VERIFY_NOT_REGULAR  # never waited on, never taken for a file
    rows.append(("data/empty-fifo", 0, _digests(b"")))
    os.mkfifo(base / "data/empty-fifo")
    problems["data/empty-fifo"] = VERIFY_NOT_REGULAR  # would read as the empty file it stands for
    put("data/socket", b"sock")
    replace_with_socket(base / "data/socket")
    problems["data/socket"] = VERIFY_NOT_REGULAR
    rows.append(("data/a-directory", 4, _digests(b"dir!")))
    (base / "data/a-directory").mkdir()
    problems["data/a-directory"] = VERIFY_MISSING
    rows.append(("data/..", 4, _digests(b"up!!")))
    problems["data/.."] = VERIFY_UNREADABLE
    # a path that would climb into another package of the same store: refused, not resolved
    (tmp_path / "root" / "other").mkdir()
    (tmp_path / "root" / "other" / "f.bin").write_bytes(b"theirs")
    rows.append(("data/../../other/f.bin", 6, _digests(b"theirs")))
    problems["data/../../other/f.bin"] = VERIFY_UNREADABLE
    rows.append(("data//x.bin", 1, _digests(b"x")))
    problems["data//x.bin"] = VERIFY_UNREADABLE
    rows.sort()
    return adapter, rows, problems


def _check(adapter, rows, algorithms, workers=2):
    by_path = {}
    checked = bytes_read = 0
    for batch in adapter.verify_many(PREFIX, iter(rows), algorithms, workers=workers):
        checked += batch.checked
        bytes_read += batch.bytes_read
        for p in batch.problems:
            assert p.path not in by_path, f"{p.path} reported twice"
            by_path[p.path] = p
    return checked, bytes_read, by_path


def _by_algorithm(rows, algorithms):
    index = {"sha256": 0, "sha512": 1}
    return [(path, size, tuple(d[index[a]] for a in algorithms)) for path, size, d in rows]


@pytest.fixture(params=["threads", "processes"])
def mode(request, monkeypatch):
    if request.param == "processes":
        monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 1)
        monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 1)
        monkeypatch.setattr(filesystem, "_VERIFY_FILES", 3)
    else:
        monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 10**9)
        monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 10**9)
    return request.param


@pytest.fixture(params=["warm", "reading ahead", "reading directly"])
def ahead(request, monkeypatch):
    """Files in the page cache, or a batch taken for cold: files opened and asked for ahead of their turn,
    or every file under the one-read size read past the page cache by reader threads (where the file
    system does direct I/O; in this process: checker processes ask the disk themselves)."""
    if request.param != "warm":
        monkeypatch.setattr(fsverify, "first_page_uncached", lambda fd: True)
    if request.param == "reading ahead":
        monkeypatch.setattr(fsverify, "DIRECT_MIN", 2**62)  # none read directly
        monkeypatch.setattr(fsverify, "PREFETCH_BYTES", 4096)  # a window of a few small files, the big ones alone
    direct_reads = []
    if request.param == "reading directly":
        monkeypatch.setattr(fsverify, "DIRECT_MIN", 1)
        monkeypatch.setattr(fsverify, "DIRECT_AHEAD", 3)  # handed on and collected all along a batch

        def readv(fd, buffers, real=fsverify.sys_readv):
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
                direct_reads.append(fd)
            return real(fd, buffers)

        monkeypatch.setattr(fsverify, "sys_readv", readv)
    return SimpleNamespace(name=request.param, direct_reads=direct_reads)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.mark.parametrize("algorithms", [("sha256",), ("sha256", "sha512"), ("sha512",)])
def test_every_kind_of_damage_is_named_once_and_nothing_else(damaged, mode, ahead, algorithms):
    adapter, rows, expected = damaged
    fds_before = _open_fds()
    rows = _by_algorithm(rows, algorithms)
    checked, bytes_read, found = _check(adapter, rows, algorithms)
    assert {path: p.kind for path, p in found.items()} == expected
    assert checked == len(rows) - len(expected) + 2  # the two changed files were read in full
    sizes = dict((path, size) for path, size, _ in rows)
    assert bytes_read >= sum(size for path, size in sizes.items() if path not in expected)
    changed = found["data/changed.bin"]
    assert changed.algorithm == algorithms[0] and changed.expected == rows[[r[0] for r in rows].index(
        "data/changed.bin")][2][0] and changed.actual != changed.expected
    assert (found["data/grown.bin"].actual, found["data/grown.bin"].expected) == (301, 300)
    assert (found["data/shrunk.bin"].actual, found["data/shrunk.bin"].expected) == (299, 300)
    assert (found["data/big/grown.tar"].actual, found["data/big/grown.tar"].expected) == (BIG + 1, BIG)
    assert found["data/link.bin"].error.code == "E310"  # refused: a link, not a file
    assert found["data/fifo"].error.code == found["data/empty-fifo"].error.code == "E310"
    assert found["data/socket"].error.code == "E310"
    assert found["data/out/secret.bin"].error.code == "E301"  # refused: leads outside
    assert found["data/gone.bin"].error.code == "E302"  # not found
    if mode == "threads":
        assert _open_fds() <= fds_before  # the files opened ahead (or handed to the readers) are all closed
        assert bool(ahead.direct_reads) == (ahead.name == "reading directly")


def test_asking_whether_a_file_is_cached_reads_none_of_it(tmp_path):
    """The question is put to mincore, which reads nothing: a cold file stays cold however often it is asked
    (a read that may not wait started a read-ahead, and a fast disk answered it before the kernel looked
    again, so a cold batch was taken as cached); a file read since is cached; a FIFO or an empty file cannot
    be asked."""
    path = tmp_path / "cold.bin"
    path.write_bytes(os.urandom(1 << 20))
    make_cold([path])
    with open(path, "rb", buffering=0) as f:
        if first_page_resident(f.fileno()) is None:
            service_missing("a file system under the test directory that says what it caches (mincore)")
        assert [fsverify.first_page_uncached(f.fileno()) for _ in range(5)] == [True] * 5
        assert resident_bytes(str(path)) == 0
        f.read(1)
        assert fsverify.first_page_uncached(f.fileno()) is False
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert first_page_resident(fd) is None and fsverify.first_page_uncached(fd) is False
    finally:
        os.close(fd)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with open(empty, "rb") as f:  # a map past its end would say "not cached": nothing to ask
        assert first_page_resident(f.fileno()) is None and fsverify.first_page_uncached(f.fileno()) is False


def _probe_as_another_user(path) -> tuple[object, bool]:
    """``first_page_resident`` and ``first_page_uncached`` of ``path`` as a user who neither owns nor may write it:
    nobody (65534) in a forked child, on the file this process opened, when this runs as root; else this user on
    a file root owns."""
    with open(path, "rb") as f:
        if os.geteuid() != 0:
            return first_page_resident(f.fileno()), fsverify.first_page_uncached(f.fileno())
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            try:
                os.close(read)
                os.setgid(65534)
                os.setuid(65534)
                answer = (first_page_resident(f.fileno()), fsverify.first_page_uncached(f.fileno()))
                os.write(write, repr(answer).encode())
            finally:
                os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    assert answer, "the child could not probe the file"
    return eval(answer)  # (None | bool, bool), written just above  # noqa: S307


def test_mincore_is_not_asked_about_a_file_the_caller_neither_owns_nor_may_write(tmp_path):
    """Since Linux 5.0 mincore says every page of such a file is cached (it would tell others what the owner
    reads): a cold batch was taken as cached, with no read-ahead, no direct reads and no pages dropped.  The
    probe does not ask it then; the read that may not wait answers instead."""
    if os.geteuid() == 0:
        path = tmp_path / "root-owned.bin"
        path.write_bytes(os.urandom(1 << 20))
        path.chmod(0o644)
        make_cold([path])
    else:
        path = next((p for p in ("/etc/passwd", "/etc/hostname", "/etc/os-release")
                     if os.path.isfile(p) and os.stat(p).st_uid != os.geteuid() and not os.access(p, os.W_OK)), None)
        if path is None:
            service_missing("a readable file of another user that this one may not write (/etc/passwd)")
        with open(path, "rb") as f:  # its owner may ask, and learns it is cold
            assert first_page_resident(f.fileno()) is False
    resident, _ = _probe_as_another_user(path)  # (the read asked instead may bring the page in: it is not timed)
    assert resident is None


def test_a_cold_batch_reads_ahead_and_leaves_the_cache_as_it_found_it(tmp_path):
    """Files out of the page cache: the checker sees the batch is cold, asks for files ahead of their turn,
    and drops every page it read, so none of the files stays cached."""
    root = tmp_path / "root"
    rows = []
    for i in range(24):
        data = os.urandom(fsverify.DIRECT_MIN // 4 + i)  # under the size read past the page cache
        path = root / "pkg" / "data" / f"f{i:02d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append((f"data/f{i:02d}.bin", len(data), (hashlib.sha256(data).hexdigest(),)))
    paths = [root / "pkg" / r[0] for r in rows]
    make_cold(paths)
    with open(paths[0], "rb") as f:
        if not fsverify.first_page_uncached(f.fileno()):
            service_missing("a disk-backed file system under the test directory that says what it caches (mincore)")
    asked = []
    real = fsverify.advise_willneed
    fsverify.advise_willneed = lambda fd, start, end: (asked.append((start, end)), real(fd, start, end))
    try:
        matched, bytes_read, problems, _ = fsverify.verify_batch(os.path.realpath(root), "pkg/", rows, ("sha256",))
    finally:
        fsverify.advise_willneed = real
    assert (matched, problems) == (len(rows), []) and bytes_read == sum(r[1] for r in rows)
    # every file after the first two (the first tells that the batch is cold, the second is then due)
    assert sorted(end for start, end in asked if start == 0) == [r[1] for r in rows[2:]]
    assert sum(resident_bytes(str(p)) for p in paths) == 0


def test_the_three_ways_agree(damaged, monkeypatch):
    adapter, rows, _ = damaged
    algorithms = ("sha256", "sha512")
    monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 10**9)
    monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 10**9)
    here = _check(adapter, rows, algorithms)
    monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 1)
    monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 1)
    monkeypatch.setattr(filesystem, "_VERIFY_FILES", 2)
    there = _check(adapter, rows, algorithms)
    generic = _check_generic(adapter, rows, algorithms)

    def summary(outcome):
        checked, _, found = outcome
        return checked, {path: (p.kind, p.algorithm, p.actual, p.expected) for path, p in found.items()}

    assert summary(here) == summary(there)
    assert {path: kind for path, (kind, *_rest) in summary(here)[1].items()} == \
        {path: kind for path, (kind, *_rest) in summary(generic)[1].items()}


def _check_generic(adapter, rows, algorithms):
    by_path = {}
    checked = bytes_read = 0
    for batch in StorageAdapter._verify_many(adapter, PREFIX, iter(rows), algorithms, 2):
        checked += batch.checked
        bytes_read += batch.bytes_read
        by_path.update((p.path, p) for p in batch.problems)
    return checked, bytes_read, by_path


def test_algorithms_must_be_given_by_canonical_name(damaged):
    adapter, rows, _ = damaged
    with pytest.raises(ValueError, match="canonical"):
        list(adapter.verify_many(PREFIX, rows, ("SHA-256",)))
    with pytest.raises(ValueError):
        list(adapter.verify_many(PREFIX, rows, ("crc32",)))
    with pytest.raises(ValueError, match="ending in '/'"):
        list(adapter.verify_many("pkg", rows, ("sha256",)))


def _small_batches_to_processes(monkeypatch) -> None:
    monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 1)
    monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 1)
    monkeypatch.setattr(filesystem, "_VERIFY_FILES", 2)


def test_a_killed_checker_process_leaves_no_file_unchecked(damaged, monkeypatch):
    adapter, rows, expected = damaged
    rows = _by_algorithm(rows, ("sha256",))
    _small_batches_to_processes(monkeypatch)
    fsverify.warm_pool(2)
    [victim, *_] = fsverify.worker_pids()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _dead(victim) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _dead(victim)
    discarded = []
    monkeypatch.setattr(fsverify, "discard_pool", lambda real=fsverify.discard_pool: discarded.append(real()))
    checked, _, found = _check(adapter, rows, ("sha256",))
    assert discarded  # the broken pool was noticed and dropped
    assert {path: p.kind for path, p in found.items()} == expected
    assert checked == len(rows) - len(expected) + 2
    # and the next check starts a fresh pool
    checked_again, _, _ = _check(adapter, rows, ("sha256",))
    assert checked_again == checked
    assert fsverify.worker_pids() and victim not in fsverify.worker_pids()


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not hasattr(os, "O_NOATIME"), reason="O_NOATIME is Linux only")
def test_files_we_do_not_own_are_read_without_the_no_access_time_flag(damaged, monkeypatch):
    adapter, rows, expected = damaged
    rows = _by_algorithm(rows, ("sha256",))
    monkeypatch.setattr(filesystem, "_PROCESS_MIN_BATCHES", 10**9)
    monkeypatch.setattr(filesystem, "_PROCESS_START_BATCHES", 10**9)
    refused = []

    def not_the_owner(name, flags, mode=0o777, *, dir_fd=None):
        if flags & os.O_NOATIME:  # what the kernel says to a reader who does not own the file
            refused.append(name)
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), name)
        return os.open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(fsverify, "sys_open", not_the_owner)
    checked, _, found = _check(adapter, rows, ("sha256",), workers=1)
    assert {path: p.kind for path, p in found.items()} == expected
    assert checked == len(rows) - len(expected) + 2
    assert len(refused) == 1  # asked once, then every other file is opened without it


def test_checker_processes_end_when_their_owner_is_killed(tmp_path):
    """A scheduler worker killed mid-audit (SIGKILL, out of memory) leaves no checker behind."""
    import subprocess
    import sys

    code = ("from storage_adapters import fsverify; import time; fsverify.warm_pool(2); "
            "print(*fsverify.worker_pids(), flush=True); time.sleep(120)")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(workers) == 2 and not any(_dead(pid) for pid in workers)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 10
        while not all(_dead(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_dead(pid) for pid in workers)
    finally:
        owner.kill()
        owner.wait()


def test_checker_processes_never_run_the_main_script_again(tmp_path):
    """multiprocessing would import an unguarded caller's script in every worker; ours do not."""
    import subprocess
    import sys

    runs = tmp_path / "runs.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import os\n"
        "from storage_adapters import fsverify\n"
        f"with open({str(runs)!r}, 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n"
        "fsverify.warm_pool(2)\n"
        "print(*fsverify.worker_pids())\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 2  # two checker processes ran
    assert len(runs.read_text().split()) == 1  # and the script ran once, in its own process


def test_an_audit_whose_pool_is_dropped_by_another_finishes_here(damaged, monkeypatch):
    """Two audits in one scheduler process share the pool; one dropping it (its worker died)
    must not cost the other a single file."""
    adapter, rows, expected = damaged
    rows = _by_algorithm(rows, ("sha256",))
    _small_batches_to_processes(monkeypatch)
    fsverify.warm_pool(2)
    stream = adapter.verify_many(PREFIX, iter(rows), ("sha256",), workers=2)
    batches = [next(stream)]  # batches are in flight in the pool now
    fsverify.discard_pool()  # what the other audit does when it loses a worker
    batches += list(stream)
    found = {p.path: p.kind for b in batches for p in b.problems}
    assert found == expected
    assert sum(b.checked for b in batches) == len(rows) - len(expected) + 2
