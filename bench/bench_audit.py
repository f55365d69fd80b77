"""Audit of one copy against the hashing limit of the policy's audit digest, warm and cold.

The copy is the one the ingest benchmark left on node ``uni-pku`` (ingested
here, untimed, when that benchmark did not run).  Checker processes for
small files are started before the clock, as the limit's pool is.  The limit digests the same
files with sha256 only — the policy's routine audit digest — on all cores.

Warm: every run after a read that puts the files in the page cache, as the limit's runs are.

Cold (issue 22 point 1), as an audit meets a disk: the page cache is dropped
(``sync; echo 3 > /proc/sys/vm/drop_caches``, root only; the output says so
when it cannot) before each run of the audit and of the device's read limit,
a parallel ``cat`` of the same files (the fastest of several reader counts);
the reference is the slower of that and the (warm) hashing limit, both
measured in the same run.  ``Cached:`` of /proc/meminfo is read before and
after each cold audit: an audit must leave the page cache no more than
64 MiB larger however much it reads.  How busy each cold run kept the disk
holding the files is read from /proc/diskstats: requests in flight on
average, the share of the time with any in flight, the average request
(this virtual disk reads faster the more requests it has at once).

    python -m bench.bench_audit [--size M] [--scale 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

from sqlalchemy import select

from bench import bench_ingest
from bench.child import own_peak_rss
from bench.corpora import Corpus, iter_files, read_through
from bench.disk import drop_caches as drop_clean_caches
from bench.measure import REPEAT, run_child
from bench.results import Comparison, Contender
from preservation.audit import audit_replica
from preservation.catalog.models import REPLICA_VERIFIED, Node, Replica
from preservation.home import init_home
from preservation.pagecache import resident_bytes
from preservation.repository import Repository
from storage_adapters import StorageAdapter, fsverify

NODE = "uni-pku"
TARGET = 0.8
CACHE_GROWTH_LIMIT = 64 * 1024 * 1024
CAT_READERS = (4, 16)  # parallel `cat` processes the device limit tries; it keeps the fastest
DISKSTATS = "/proc/diskstats"


def drop_caches() -> str | None:
    """Write back and drop the page cache (clean pages, dentries, inodes); None when done, else why not."""
    refused = drop_clean_caches()
    return f"{refused}: these runs are NOT cold" if refused else None


def cached_bytes() -> int | None:
    """``Cached:`` of /proc/meminfo in bytes (None where there is no /proc/meminfo)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("Cached:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def device_of(path: str) -> str | None:
    """The block device holding ``path``, as /proc/diskstats names it (None where that cannot be told)."""
    try:
        st = os.stat(path)
        with open(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/uevent", encoding="ascii") as f:
            for line in f:
                if line.startswith("DEVNAME="):
                    return line.strip().split("=", 1)[1]
    except OSError:
        return None
    return None


def disk_counters(device: str | None, diskstats: str | None = None) -> tuple[int, int, int, int] | None:
    """``device``'s reads completed, sectors read, milliseconds spent reading (each read's time in flight,
    summed) and milliseconds with any I/O in flight, from /proc/diskstats (or the ``diskstats`` text given)."""
    if device is None:
        return None
    if diskstats is None:
        try:
            with open(DISKSTATS, encoding="ascii") as f:
                diskstats = f.read()
        except OSError:
            return None
    for line in diskstats.splitlines():
        fields = line.split()
        if len(fields) >= 14 and fields[2] == device:
            return int(fields[3]), int(fields[5]), int(fields[6]), int(fields[12])
    return None


def disk_activity(before: tuple | None, after: tuple | None, seconds: float) -> dict | None:
    """What the device did between two :func:`disk_counters` over ``seconds`` of wall time: requests read,
    their average size, reads in flight on average (queue depth: time spent reading / wall time) and the
    share of the time with any I/O in flight (other processes' writes count there too).  A cold read of
    mid-size files is as fast as the disk is kept busy with requests."""
    if before is None or after is None or seconds <= 0:
        return None
    reads, sectors, reading_ms, busy_ms = (b - a for a, b in zip(before, after))
    return {"reads": reads, "request_kib": round(sectors * 512 / 1024 / reads, 1) if reads else 0.0,
            "in_flight": round(reading_ms / (seconds * 1000), 2),
            "busy": round(min(1.0, busy_ms / (seconds * 1000)), 3)}


def _disk_note(name: str, activity: dict | None) -> str:
    if activity is None:
        return f"{name}: disk activity unknown"
    return (f"{name}: {activity['in_flight']:.1f} reads in flight on average, disk busy "
            f"{activity['busy']:.0%} of the time, {activity['request_kib']:.0f} KiB a request")


def cat_limit(paths: list[str], repeats: int = 2) -> dict:
    """Child entry: the device's read limit, a parallel ``cat`` of ``paths`` after dropping the cache.

    ``xargs -P N cat`` with N of ``CAT_READERS``, each ``repeats`` times; the fastest.
    """
    listing = "\0".join(paths).encode()
    times: dict[str, float] = {}
    disk: dict[str, dict | None] = {}
    device = device_of(paths[0]) if paths else None
    refused = None
    for readers in CAT_READERS:
        per_call = max(1, len(paths) // (readers * 8))
        best = float("inf")
        for _ in range(repeats):
            refused = drop_caches() or refused
            counters = disk_counters(device)
            start = time.perf_counter()
            subprocess.run(["xargs", "-0", "-P", str(readers), "-n", str(per_call), "cat"], input=listing,
                           stdout=subprocess.DEVNULL, check=True)
            seconds = time.perf_counter() - start
            if seconds < best:
                best, disk[f"cat ×{readers}"] = seconds, disk_activity(counters, disk_counters(device), seconds)
        times[f"cat ×{readers}"] = best
    winner = min(times, key=times.__getitem__)
    return {"seconds": times[winner], "strategy": winner, "strategies": times, "files": len(paths),
            "bytes": sum(os.path.getsize(p) for p in paths), "cold": refused is None, "refused": refused,
            "disk": disk[winner]}


def _replica_on(repo: Repository, node: str) -> tuple[int, str] | None:
    with repo.catalog.session() as s:
        row = s.execute(
            select(Replica.id, Replica.package_id).join(Node)
            .where(Node.name == node, Replica.state == REPLICA_VERIFIED).order_by(Replica.id.desc())
        ).first()
    return (row[0], row[1]) if row else None


def replica_paths(home: Path, node: str, package_id: str) -> list[str]:
    return list(iter_files(home / "nodes" / node / package_id))


@contextlib.contextmanager
def _through_agent(root: Path) -> Iterator[StorageAdapter]:
    """A node agent over ``root`` (uvicorn in a thread of this process, a throw-away key), and its client."""
    import socket
    import threading

    from preservation.node_agent import AgentConfig, build_server, create_app
    from storage_adapters import adapter_class

    key = os.urandom(24).hex()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(adapter_class(root.as_uri())(root.as_uri()), AgentConfig(keys={"bench": key.encode()}))
    server = build_server(app, "127.0.0.1", port, log_level="warning", access_log=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    uri = f"node+http://127.0.0.1:{port}"
    client = adapter_class(uri)(uri, key_id="bench", key=key)
    try:
        yield client
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=15)


def run_agent(home: str, node: str, repeat: int = 1) -> dict:
    """Child entry: the read of an audit (``fixity.check_replica``) of the copy on ``node`` through a node
    agent in front of its directory, files checked by the agent (``POST /v1/verify``), page cache dropped
    before each run; ``cache_growth`` and ``left_cached`` as in :func:`run_ours`."""
    from preservation.fixity import check_replica

    repo = Repository.open(home)
    found = _replica_on(repo, node)
    if found is None:
        raise RuntimeError(f"no verified copy on {node} in {home}")
    package_id = found[1]
    paths = replica_paths(Path(home), node, package_id)
    runs, growth, left = [], [], []
    refused = None
    device = device_of(paths[0]) if paths else None
    disk = []
    with _through_agent(Path(home) / "nodes" / node) as agent:
        for _ in range(1 + max(1, repeat)):
            refused = drop_caches() or refused
            before = cached_bytes()
            counters = disk_counters(device)
            start = time.perf_counter()
            outcome = check_replica(repo.catalog, agent, package_id, (repo.policy.audit.digest,),
                                    workers=repo.settings.workers)
            runs.append(time.perf_counter() - start)
            disk.append(disk_activity(counters, disk_counters(device), runs[-1]))
            after = cached_bytes()
            if before is not None and after is not None:
                growth.append(after - before)
            left.append(sum(resident_bytes(p) or 0 for p in paths))
            if not outcome.ok:
                raise RuntimeError(f"the audit found problems: {outcome.findings.to_list()[:5]}")
    repo.close()
    return {"seconds": min(runs[1:]), "runs": [round(r, 4) for r in runs[1:]], "files": outcome.files_checked,
            "bytes": outcome.bytes_read_on_node, "cold": refused is None, "refused": refused,
            "cache_growth": max(growth) if growth else None, "left_cached": max(left),
            "disk": _of_fastest(runs, disk)}


def _of_fastest(runs: list[float], disk: list) -> dict | None:
    """The disk activity of the fastest kept run (the first run is not kept)."""
    if len(disk) < 2:
        return None
    return disk[1:][runs[1:].index(min(runs[1:]))]


def run_ours(home: str, node: str, repeat: int = 1, cold: bool = False) -> dict:
    """Child entry: audit the verified copy on ``node`` in full ``repeat`` times; the fastest.

    Like the limit, which keeps the best of several runs in one process (each
    after a read that warms the page cache): what a scheduler worker that
    audits copy after copy sees.  A first run (queries compiled, policy loaded)
    comes before them and is reported apart (``cold_seconds``).  With ``cold``
    each run starts with the page cache dropped instead of warmed, and the
    growth of ``Cached:`` over each run is reported (``cache_growth``: the largest).
    """
    repo = Repository.open(home)
    found = _replica_on(repo, node)
    if found is None:
        raise RuntimeError(f"no verified copy on {node} in {home}")
    replica_id, package_id = found
    # the checker processes are started before the clock, as the limit's pool is: a scheduler
    # worker starts them once and keeps them (unused for big files, which threads hash)
    fsverify.warm_pool(repo.settings.workers)
    runs = []
    growth: list[int] = []
    left: list[int] = []
    refused = None
    paths = replica_paths(Path(home), node, package_id)
    device = device_of(paths[0]) if paths else None
    disk = []
    for _ in range(1 + max(1, repeat)):  # the first run (queries compiled, policy loaded) is not kept
        if cold:
            refused = drop_caches() or refused
        else:
            read_through(replica_paths(Path(home), node, package_id))
        before = cached_bytes()
        counters = disk_counters(device)
        start = time.perf_counter()
        outcome = audit_replica(repo, replica_id, agent="bench")
        runs.append(time.perf_counter() - start)
        disk.append(disk_activity(counters, disk_counters(device), runs[-1]))
        after = cached_bytes()
        if before is not None and after is not None:
            growth.append(after - before)
        if cold:
            left.append(sum(resident_bytes(p) or 0 for p in paths))
        if not outcome.ok:
            raise RuntimeError(f"the audit found problems: {outcome.fixity.findings.to_list()[:5]}")
    digest = repo.policy.audit.digest
    repo.close()
    return {"seconds": min(runs[1:]), "cold_seconds": round(runs[0], 4), "runs": [round(r, 4) for r in runs[1:]],
            "files": outcome.fixity.files_checked, "bytes": outcome.fixity.bytes_read_on_node, "digest": digest,
            "peak_rss_workers": max((own_peak_rss(pid) for pid in fsverify.worker_pids()), default=0),
            "cold": cold and refused is None, "refused": refused,
            "cache_growth": max(growth) if growth else None, "cache_growth_runs": growth,
            "left_cached": max(left) if left else None, "disk": _of_fastest(runs, disk) if cold else None}


def _ingested(corpus: Corpus, home: Path | None = None) -> tuple[Path, str]:
    """The home holding an ingested copy of ``corpus`` (ingesting it now if needed) and the package id."""
    home = home or bench_ingest.home_for(corpus)
    if (home / "catalog.sqlite").exists():
        init_home(home)  # a catalog kept from an earlier run is brought to the current schema
        with Repository.open(home) as repo:
            found = _replica_on(repo, NODE)
        if found is not None:
            return home, found[1]
    setup = run_child("bench.bench_ingest:run_ours", delivery=str(corpus.delivery), home=str(home))
    return home, setup.result["package_id"]


def compare(corpus: Corpus, home: Path | None = None) -> list[Comparison]:
    """The warm audit against the hashing limit, and the cold audit against the slower of the device's
    read limit (cold) and the hashing limit, all measured in this run."""
    if home is None:
        home, package_id = _ingested(corpus)
    else:
        home, package_id = _ingested(corpus, home)
    with Repository.open(home) as repo:
        digest = repo.policy.audit.digest
    paths = replica_paths(home, NODE, package_id)
    limit = run_child("bench.hashlimit:measure", paths=paths, algorithms=[digest])
    ours = run_child("bench.bench_audit:run_ours", home=str(home), node=NODE, repeat=REPEAT.times)
    hashing = Contender.from_measured("hashing limit", limit, detail=f"{digest}, {limit.result['strategy']}")
    warm = Comparison(
        benchmark="audit", corpus=corpus.label,
        ours=Contender.from_measured("preserve audit (one copy)", ours, detail=digest),
        reference=hashing, target=TARGET,
    )
    device = run_child("bench.bench_audit:cat_limit", paths=paths, repeats=max(1, REPEAT.times - 1))
    cold = run_child("bench.bench_audit:run_ours", home=str(home), node=NODE, repeat=REPEAT.times, cold=True)
    reading = Contender.from_measured("device read limit", device,
                                      detail=f"{device.result['strategy']}, cold")
    agent = run_child("bench.bench_audit:run_agent", home=str(home), node=NODE, repeat=REPEAT.times)
    reference = max((reading, hashing), key=lambda c: c.seconds)  # the lower of the two limits
    out = [warm]
    for label, measured in (("audit cold", cold), ("audit cold, node agent", agent)):
        growth, left = measured.result["cache_growth"], measured.result["left_cached"]
        shown = "unknown" if growth is None else f"{growth / 2**20:+.0f} MiB"
        notes = [f"device limit {reading.seconds:.3f} s ({reading.detail}), hashing limit {hashing.seconds:.3f} s; "
                 f"Cached: grew by at most {shown} over an audit, of which the audited files "
                 f"{(left or 0) / 2**20:.0f} MiB (limit {CACHE_GROWTH_LIMIT // 2**20} MiB; Cached: also counts "
                 "what other processes read and write meanwhile)"]
        notes.append(_disk_note("the audit's fastest run", measured.result.get("disk")) + "; "
                     + _disk_note(f"the device limit ({reading.detail})", device.result.get("disk")))
        notes += sorted({device.result["refused"], measured.result["refused"]} - {None})
        name = "preserve audit (one copy), cold" + (", through a node agent" if "agent" in label else "")
        out.append(Comparison(
            benchmark=label, corpus=corpus.label,
            ours=Contender.from_measured(name, measured, detail=f"{digest}, files left cached "
                                         f"{(left or 0) / 2**20:.0f} MiB"),
            reference=reference, target=TARGET, note="; ".join(notes),
        ))
    return out


def main(argv: list[str] | None = None) -> int:
    """The audit benchmark alone, on its own home (``bench/out/audit-home-<size>``, kept between runs)."""
    from bench.corpora import DEFAULT_SCALE, OUT_DIR, ensure_corpus
    from bench.report import comparison_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("L", "M", "S"), default="M")
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=REPEAT.times)
    args = parser.parse_args(argv)
    REPEAT.times = max(1, args.repeat)
    corpus = ensure_corpus(args.size, args.scale if args.scale is not None else DEFAULT_SCALE[args.size])
    load = os.getloadavg()
    comparisons = compare(corpus, OUT_DIR / f"audit-home-{args.size}")
    for c in comparisons:
        print(f"### {c.benchmark}\n")
        print("\n".join(comparison_table([c], "audit", "limit")))
        print()
    after = os.getloadavg()
    print(f"<!-- load average {load[0]:.1f} before, {after[0]:.1f} after; runs: "
          f"{ {c.benchmark: c.ours.runs for c in comparisons} } -->")
    return 0 if all(c.met for c in comparisons) else 1


if __name__ == "__main__":
    raise SystemExit(main())
