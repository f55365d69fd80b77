"""What each package's events file and signed evidence on the nodes add to an ingest (issues 19.11, 20.5).

    python -m bench.bench_node_records [--packages 200] [--files 5] [--size 4096] [--rounds 3]

``--packages`` small deliveries (``--files`` files of ``--size`` bytes each) are ingested one after the
other into a fresh home with three filesystem nodes, in child processes of their own, taking turns:

* ``reference``: the package record as it was before (collection, policy, version: one JSON write per
  copy), no events file, no evidence, no flush after the copies verify;
* ``events``: the record and the events file at each copy write, and the flush after the copies verify,
  no signature (a home without a checkpoint key);
* ``evidence``: all of it: the events files and the record signed by the coordinator's key (this release).

Wall clock and CPU (user + system) of the ingest loop, best of ``--rounds``.  Not a unit test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import time
from pathlib import Path

from bench.corpora import OUT_DIR

WORK = OUT_DIR / "node_records"
VARIANTS = ("reference", "events", "evidence")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _deliveries(packages: int, files: int, size: int) -> list[Path]:
    root = WORK / "deliveries"
    shutil.rmtree(root, ignore_errors=True)
    out = []
    for p in range(packages):
        d = root / f"delivery-{p:05d}"
        d.mkdir(parents=True)
        for f in range(files):
            (d / f"article-{f:03d}.xml").write_bytes(f"<a n='{p}.{f}'/>".encode().ljust(size, b" "))
        out.append(d)
    return out


def _reference_record(repo, dest, package_id) -> None:
    """The record before issue 19.11/20.5: what the catalog knows of the package, one JSON write."""
    from preservation.catalog.models import Package
    from preservation.layout import PackageLayout

    with repo.catalog.session() as s:
        p = s.get(Package, package_id)
        c = p.collection
        record = {"package_id": p.id, "name": p.name, "source_kind": p.source_kind, "policy": p.policy,
                  "created_at": p.created_at.isoformat(), "collection": {
                      "key": c.key, "title": c.title, "publisher": c.publisher, "licence": c.licence,
                      "access_mode": c.access_mode}}
    PackageLayout(package_id).write_record(dest, record)


class _ReferenceRecord:
    """What local_copy wrote beside each copy before: the record alone."""

    def __init__(self, repo, package_id) -> None:
        self.repo, self.package_id = repo, package_id

    def write_to(self, dest) -> None:
        _reference_record(self.repo, dest, self.package_id)


def _ingest_all(variant: str, deliveries: list[str], out) -> None:
    from bench.homes import COLLECTION, fresh_repo
    from preservation import ingest as ingest_module
    from preservation import local_copy, node_records, replication
    from preservation.ingest import ingest

    if variant == "reference":
        replication.write_package_record = _reference_record
        local_copy.package_record = _ReferenceRecord
        ingest_module.flush_events = lambda *a, **k: []
    elif variant == "events":
        node_records.evidence_signer = lambda settings: None
    repo = fresh_repo(WORK / f"home-{variant}")
    cpu, wall = _cpu(), time.perf_counter()
    states = set()
    for d in deliveries:
        states.add(ingest(repo, Path(d), COLLECTION)["state"])
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    repo.close()
    out.put({"variant": variant, "packages": len(deliveries), "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
             "states": sorted(states)})


def _split(deliveries: list[str], out) -> None:
    """One ``evidence`` run that also sums the time spent making and writing the records and events files
    (node_records.package_record, PackageRecord.write_to, the ingest's flush_events): their share of the
    same run's ingest time, which the machine's load affects alike."""
    from bench.homes import COLLECTION, fresh_repo
    from preservation import ingest as ingest_module
    from preservation import local_copy, node_records
    from preservation.ingest import ingest

    spent = {"wall": 0.0, "cpu": 0.0}

    def timed(fn):
        def run(*a, **k):
            w, c = time.perf_counter(), _cpu()
            try:
                return fn(*a, **k)
            finally:
                spent["wall"] += time.perf_counter() - w
                spent["cpu"] += _cpu() - c
        return run

    local_copy.package_record = timed(node_records.package_record)
    node_records.PackageRecord.write_to = timed(node_records.PackageRecord.write_to)
    ingest_module.flush_events = timed(node_records.flush_events)
    repo = fresh_repo(WORK / "home-split")
    cpu, wall = _cpu(), time.perf_counter()
    for d in deliveries:
        ingest(repo, Path(d), COLLECTION)
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    repo.close()
    out.put({"packages": len(deliveries), "ingest_wall_s": round(wall, 3), "ingest_cpu_s": round(cpu, 3),
             "records_wall_s": round(spent["wall"], 3), "records_cpu_s": round(spent["cpu"], 3),
             "records_share_wall": round(spent["wall"] / wall, 3), "records_share_cpu": round(spent["cpu"] / cpu, 3)})


def _child(fn, *args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--split", action="store_true",
                    help="only the evidence variant, timing the records' share of its own ingest")
    args = ap.parse_args(argv)
    deliveries = [str(d) for d in _deliveries(args.packages, args.files, args.size)]
    if args.split:
        for _ in range(args.rounds):
            print(json.dumps(_child(_split, deliveries)), flush=True)
        return 0
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
        for v in order:
            runs[v].append(_child(_ingest_all, v, deliveries))
            print(json.dumps(runs[v][-1]), flush=True)
    best = {v: min(runs[v], key=lambda x: x["wall_s"]) for v in VARIANTS}
    ref = best["reference"]
    summary = {
        "packages": args.packages, "files_per_package": args.files, "file_bytes": args.size, "rounds": args.rounds,
        "best": best,
        "ms_per_package": {v: round(1000 * best[v]["wall_s"] / args.packages, 2) for v in VARIANTS},
        "extra_wall_vs_reference": {v: round(best[v]["wall_s"] / ref["wall_s"] - 1, 3) for v in VARIANTS[1:]},
        "extra_cpu_vs_reference": {v: round(best[v]["cpu_s"] / ref["cpu_s"] - 1, 3) for v in VARIANTS[1:]},
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
