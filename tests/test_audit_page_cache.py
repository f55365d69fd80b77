"""An audit does not evict the host's working set (issue 22 point 1): however much it reads, the page cache ends
no more than 64 MiB larger, on a filesystem node and through a node agent (its check endpoint, POST /v1/verify).

The files are put out of the page cache first (written, synced, dropped with POSIX_FADV_DONTNEED, no root
needed), then checked the way an audit reads them (``verify_many``, what ``fixity.check_replica`` calls).  What
is asserted: the bytes of those files still cached afterwards (mincore), after every audit, and the growth of
``Cached:`` in /proc/meminfo, which other processes on the host also move (a test run on the next core writes
files): the smallest growth of up to five audits of the cold files must be under the limit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from preservation.pagecache import resident_bytes
from storage_adapters.filesystem import FilesystemAdapter

from .node_agent.agents import ThreadedAgent
from .services import service_missing

MIB = 1024 * 1024
LIMIT = 64 * MIB
PREFIX = "pkg/"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="no /proc/meminfo on this system")


def _cached() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("Cached:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("/proc/meminfo has no Cached: line")


ATTEMPTS = 5  # other processes writing files meanwhile grow Cached: too; the audit is judged by its best


def _drop(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _audited_growth(adapter, rows, paths) -> int:
    """Audit the cold files up to ATTEMPTS times; each time none of them may stay cached.  The smallest growth
    of Cached: seen (the first under the limit ends it)."""
    smallest = None
    for _ in range(ATTEMPTS):
        _drop(paths)
        before = _cached()
        assert _audit(adapter, rows) == len(rows)
        grown = _cached() - before
        still = sum(resident_bytes(str(p)) or 0 for p in paths)
        assert still < LIMIT, f"{still // MIB} MiB of the audited files stayed in the page cache"
        smallest = grown if smallest is None else min(smallest, grown)
        if smallest < LIMIT:
            break
    return smallest


def _cold_package(root: Path, files: int, size: int) -> tuple[list[tuple[str, int, tuple[str]]], list[Path]]:
    """``files`` files of ``size`` bytes under ``root``/pkg, out of the page cache; their audit rows."""
    block = os.urandom(size)
    rows, paths = [], []
    for i in range(files):
        data = i.to_bytes(8, "big") + block[8:]
        path = root / "pkg" / "data" / f"v{i // 50}" / f"f{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        rows.append((f"data/v{i // 50}/f{i:04d}.bin", len(data), (hashlib.sha256(data).hexdigest(),)))
        paths.append(path)
    held = sum(resident_bytes(str(p)) or 0 for p in paths)
    if held > LIMIT // 4:
        service_missing(f"a disk-backed file system under the test directory ({held // MIB} MiB stay cached: tmpfs?)")
    return rows, paths


def _audit(adapter, rows) -> int:
    checked = 0
    for batch in adapter.verify_many(PREFIX, iter(rows), ("sha256",), workers=2):
        assert not batch.problems, batch.problems[:3]
        checked += batch.checked
    return checked


@pytest.mark.parametrize("shape", [(100, 2 * MIB), (3200, 64 * 1024)], ids=["200 MiB of 2 MiB files",
                                                                        "200 MiB of 64 KiB files"])
def test_an_audit_of_a_filesystem_node_leaves_the_page_cache_as_it_found_it(tmp_path, shape):
    rows, paths = _cold_package(tmp_path / "root", *shape)
    adapter = FilesystemAdapter((tmp_path / "root").as_uri())
    grown = _audited_growth(adapter, rows, paths)
    assert grown < LIMIT, f"the page cache grew by {grown // MIB} MiB over an audit of 200 MiB"


def test_an_audit_through_a_node_agent_leaves_its_page_cache_as_it_found_it(tmp_path):
    rows, paths = _cold_package(tmp_path / "root", 100, 2 * MIB)
    agent = ThreadedAgent(tmp_path / "root").start()
    node = agent.adapter(retries=1, backoff=0.01)
    try:
        grown = _audited_growth(node, rows, paths)
    finally:
        node.close()
        agent.stop()
    assert grown < LIMIT, f"the page cache grew by {grown // MIB} MiB over an audit of 200 MiB through the agent"
