"""Versioned deliveries (issue 18): 12 monthly exports, each file stored once per node.

    python -m bench.bench_versions [--scale 1] [--months 12] [--default-policy]

The corpus is the issue's: a monthly export of 10,000 files and 1 GiB
(both times ``--scale``), in which each month 2 % of the files change, 0.5 %
are removed and 1 % are added (seeded: every file written is distinct
content).  One delivery directory is changed in place from month to month
(:class:`MonthlyExport`), so generating the corpus writes only the distinct
content, untimed.  Month 1 is ingested as a package, months 2 to 12 with
``--version-of`` the month before, inline on three filesystem nodes.  Then
version 7 and version 1 (a whole package, as any package is restored) are
restored, taking turns, four times each (``--restores``).

Measured: bytes stored per node against the distinct content of the 12
versions (target ≤ 1.05 × plus the tag files); bytes that appeared on each
node with each new version against its delivery (target ≤ 4 %); each
ingest's MB/s of delivered bytes against the hashing limit (sha256 + sha512,
``bench.hashlimit``, measured on month 1 and month 12), normalised by the
passes its work needs (the delivery once, each copy what it stores: 4 for a
first ingest, as ``bench_ingest`` charges it); the restore of version 7
against version 1.  Not a unit test: nothing here asserts a time; the exit
status is 1 when a target is missed (a rate counts as missed below 0.9 of
its reference).

By default both sides ingest without content analysis (``analysers=[]``).
``--default-policy`` runs every ingest under the default policy instead:
format identification, validation (the corpus's files are named ``.pdf``
and hold no PDF, so every one is validated, and found invalid), metadata and
chunk digests.  Then a new version's unchanged files keep the identification
and validation the version before made of the same bytes (carried over, not
staged: section 4 of docs/versions.md); each ingest's line says how many files
were validated and how many carried, and the new version's ratio is compared with the first
ingest's under that same policy.

Both sides of each comparison start alike: every ingest and every restore
starts on a settled disk (synced, no write or discard in flight:
:func:`bench.disk.settle`), each ingest with its delivery in the page cache
(as the hashing limit had it), each restore with the nodes' files out of it
(a restore reads copies kept on disk) into a new directory, the last
restore's removed before the disk is settled.  The restores of versions 1
and 7 take turns in the order 1, 7, 7, 1, 1, 7 … so neither always runs
first or after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

from bench.corpora import OUT_DIR, read_through
from bench.disk import settle
from bench.measure import run_child
from preservation.collection import add_collection
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.pagecache import advise_dontneed
from preservation.repository import Repository
from preservation.restore import restore
from preservation.versions import lineage_versions

SEED = 18
ROOT = OUT_DIR / "versions"
NODES = [("uni-a", "university", "north"), ("cas-b", "cas", "north"), ("inst-c", "institute", "south")]
CHANGED, REMOVED, ADDED = 0.02, 0.005, 0.01
STORAGE_TARGET, WRITE_TARGET = 1.05, 0.04


POOL = 64 << 20  # random bytes that files are cut from


class MonthlyExport:
    """The delivery directory of one export, changed in place from month to month (generation is fast: month 1
    writes the whole export once, each later month only what changed), and the distinct bytes written so far.

    Every file written is distinct content: a header naming the file and the month, then a slice of a seeded
    random pool at a random offset.  A delivery may not hold hard links, and copying every unchanged file
    into a new directory each month would write 12 × the export for 1.33 × of distinct content.
    """

    def __init__(self, root: Path, files: int, total_bytes: int) -> None:
        self.root, self.files = root, files
        self.rng = random.Random(SEED)
        self.pool = self.rng.randbytes(POOL)
        self.mean = max(1, total_bytes // files)
        self.names = [f"vol{i % 40:02d}/article-{i:06d}.pdf" for i in range(files)]
        self.serial = files
        self.month = 0
        self.distinct = 0

    def _write(self, name: str) -> None:
        header = f"{name} month {self.month}\n".encode()
        size = max(len(header), int(self.rng.uniform(0.5, 1.5) * self.mean))
        start = self.rng.randrange(0, POOL - size)
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(header + self.pool[start:start + size - len(header)])
        self.distinct += size

    def next_month(self) -> Path:
        """Change the directory into the next month's delivery: 2 % changed, 0.5 % removed, 1 % added."""
        self.month += 1
        if self.month == 1:
            shutil.rmtree(self.root, ignore_errors=True)
            for name in self.names:
                self._write(name)
            return self.root
        self.rng.shuffle(self.names)
        removed = int(len(self.names) * REMOVED)
        for name in self.names[:removed]:
            (self.root / name).unlink()
        self.names = self.names[removed:]
        for name in self.names[:int(len(self.names) * CHANGED)]:
            self._write(name)
        for _ in range(int(self.files * ADDED)):
            self.names.append(f"vol{self.serial % 40:02d}/article-{self.serial:06d}.pdf")
            self._write(self.names[-1])
            self.serial += 1
        return self.root


def tree_bytes(root: Path, skip: str = ".preserve") -> tuple[int, int]:
    """(all bytes, tag-file bytes) stored under a node root, its own records and temporary files aside."""
    total = tags = 0
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith(skip):
            continue
        size = p.stat().st_size
        total += size
        if "/data/" not in rel:
            tags += size
    return total, tags


def delivery_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def _payload_on_nodes(home: Path) -> dict[str, tuple[int, int]]:
    return {name: tree_bytes(home / "nodes" / name) for name, *_ in NODES}


def evict(tree: Path) -> None:
    """Drop the (clean) pages of every file under ``tree`` from the page cache."""
    for top, _, names in os.walk(tree):
        for name in names:
            try:
                fd = os.open(os.path.join(top, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                advise_dontneed(fd)
            finally:
                os.close(fd)


def turns(numbers: tuple[int, int], each: int) -> list[int]:
    """Restores of two versions taking turns, each pair in the other order than the one before: a b b a a b …"""
    order: list[int] = []
    for i in range(each):
        order += list(numbers) if i % 2 == 0 else list(reversed(numbers))
    return order


def _restore(repo, lineage: str, number: int, run: int) -> dict:
    """One timed restore into a new directory, from nodes whose files are not in the page cache, on a settled disk."""
    work = repo.settings.home.parent
    for old in work.glob("restored-*"):
        shutil.rmtree(old)
    dest = work / f"restored-{number}-{run}"
    evict(repo.settings.home / "nodes")
    settled = settle(work)
    load = os.getloadavg()[0]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    got = restore(repo, lineage, dest, version=number)
    seconds = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {"bytes": got["bytes"], "seconds": round(seconds, 3), "mb_per_s": round(got["bytes"] / seconds / 1e6, 1),
            "cpu_s": round(used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime, 2), "load": round(load, 1),
            "settled": settled.settled}


def _analysed(out: dict) -> dict:
    """How many files the ingest validated, and how many kept the validation of the version before."""
    formats = out.get("content", {}).get("formats", {})
    carried = formats.get("validation_carried", {}).get("files", 0)
    return {"validated": sum(formats.get("validated", {}).values()) - carried, "carried": carried}


def run(scale: float, months: int, restores_each: int = 4, root: Path = ROOT, default_policy: bool = False) -> dict:
    files, total = max(100, int(10_000 * scale)), max(1 << 20, int((1 << 30) * scale))
    shutil.rmtree(root, ignore_errors=True)
    export = MonthlyExport(root / "delivery", files, total)
    home = root / "home"
    home.mkdir(parents=True)
    (home / "preserve.yaml").write_text("", encoding="utf-8")
    init_home(home)
    repo = Repository.open(home)
    limits = []
    try:
        for name, org, region in NODES:
            add_node(repo, name, org, region, (home / "nodes" / name).as_uri())
        add_collection(repo, "monthly", "A monthly export")
        ingests, previous = [], None
        for month in range(1, months + 1):
            started = time.perf_counter()
            d = export.next_month()
            generated = time.perf_counter() - started
            paths = [str(p) for p in sorted(d.rglob("*")) if p.is_file()]
            size = sum(os.path.getsize(p) for p in paths)
            if month in (1, months):  # the hashing limit (sha256 + sha512) of this machine now, on this delivery
                limit = run_child("bench.hashlimit:measure", paths=paths, algorithms=["sha256", "sha512"])
                limits.append({"month": month, "mb_per_s": round(limit.result["bytes"] / limit.seconds / 1e6, 1),
                               "strategy": limit.result["strategy"]})
            before = _payload_on_nodes(home)
            settled = settle(root)
            read_through(paths)  # the delivery in the page cache, as the limit had it
            load = os.getloadavg()[0]
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            out = ingest(repo, d, "monthly", version_of=previous, analysers=None if default_policy else [])
            seconds = time.perf_counter() - started
            used = resource.getrusage(resource.RUSAGE_SELF)
            assert out["state"] == "preserved", out
            after = _payload_on_nodes(home)
            # what each copy really wrote: bytes that appeared under its node root, tag files apart
            written = max(a[0] - b[0] for a, b in zip(after.values(), before.values()))
            payload = max((a[0] - a[1]) - (b[0] - b[1]) for a, b in zip(after.values(), before.values()))
            ingests.append({"month": month, "files": len(paths), "delivery_bytes": size,
                            "generated_s": round(generated, 2), "seconds": round(seconds, 3),
                            "cpu_s": round(used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime, 2),
                            "load": round(load, 1), "settled": settled.settled,
                            "mb_per_s": round(size / seconds / 1e6, 1),
                            "written_per_copy": written, "payload_written_per_copy": payload,
                            "written_ratio": round(written / size, 4),
                            "reported_stored_bytes": out.get("version", {}).get("stored_bytes", size),
                            **(_analysed(out) if default_policy else {})})
            previous = out["package_id"]
        with repo.catalog.session() as s:
            lineage = lineage_versions(s, previous)[0].lineage_id
        seventh = min(7, months)
        runs: dict[int, list[dict]] = {1: [], seventh: []}
        for i, number in enumerate(turns((1, seventh), restores_each)):  # so that both see the same machine
            runs[number].append(_restore(repo, lineage, number, i))
        restores = {n: max(r, key=lambda x: x["mb_per_s"]) | {"runs_mb_per_s": [x["mb_per_s"] for x in r],
                                                               "runs_cpu_s": [x["cpu_s"] for x in r]}
                    for n, r in runs.items()}
    finally:
        repo.close()
        for old in root.glob("restored-*"):
            shutil.rmtree(old)
    distinct = export.distinct
    per_node = {name: dict(zip(("bytes", "tag_bytes"), tree_bytes(home / "nodes" / name))) for name, *_ in NODES}
    worst = max((n["bytes"] - n["tag_bytes"]) / distinct for n in per_node.values())
    limit_mb_s = sum(x["mb_per_s"] for x in limits) / len(limits)
    for i in ingests:
        # hashing passes the work needs: the delivery once, then each copy writes and re-reads what it stores
        # (a first ingest: 1 + 3 = 4 passes, as bench_ingest charges the limit)
        passes = 1 + len(NODES) * i["payload_written_per_copy"] / i["delivery_bytes"]
        i["limit_ratio"] = round(passes * i["mb_per_s"] / limit_mb_s, 3)
    later = ingests[1:]
    median = lambda xs: sorted(xs)[len(xs) // 2] if xs else None  # noqa: E731
    return {
        "scale": scale, "months": months, "files": files,
        "analysis": "the default policy's (validation on)" if default_policy else "none (analysers=[])",
        "delivery_bytes": ingests[0]["delivery_bytes"],
        "distinct_bytes": distinct, "distinct_over_one_delivery": round(distinct / ingests[0]["delivery_bytes"], 3),
        "per_node": per_node, "stored_payload_over_distinct": round(worst, 4),
        "without_versions_would_store": sum(i["delivery_bytes"] for i in ingests),
        "max_written_ratio": max((i["written_ratio"] for i in later), default=0.0),
        "hash_limit": limits, "first_ingest_mb_per_s": ingests[0]["mb_per_s"],
        "first_limit_ratio": ingests[0]["limit_ratio"],
        "version_ingest_mb_per_s_median": median([i["mb_per_s"] for i in later]),
        "version_limit_ratio_median": median([i["limit_ratio"] for i in later]),
        "restore_ratio": round(restores[seventh]["mb_per_s"] / restores[1]["mb_per_s"], 3),
        "ingests": ingests, "restores": restores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="of the issue's 10,000 files and 1 GiB")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--restores", type=int, default=4, help="restores of each of the two versions, taking turns")
    parser.add_argument("--out", type=Path, default=ROOT, help="work directory (emptied first)")
    parser.add_argument("--default-policy", action="store_true",
                        help="ingest with the default policy's analysis (format validation on), not without any")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or not 2 <= args.months <= 60:
        parser.error("--scale in (0, 1], --months 2..60")
    result = run(args.scale, args.months, args.restores, args.out, args.default_policy)
    (args.out / "versions.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    r = result
    print(f"{r['months']} versions of {r['files']} files, {r['delivery_bytes'] / 1e6:.1f} MB each; distinct content "
          f"{r['distinct_bytes'] / 1e6:.1f} MB ({r['distinct_over_one_delivery']} x one delivery); analysis: "
          f"{r['analysis']}")
    if args.default_policy:
        for i in r["ingests"]:
            print(f"  month {i['month']}: {i['seconds']} s, {i['mb_per_s']} MB/s ({i['limit_ratio']} of the limit, "
                  f"normalised); files validated {i['validated']}, validation carried over {i['carried']}")
    for name, n in r["per_node"].items():
        print(f"  node {name}: {n['bytes'] / 1e6:.1f} MB stored ({n['tag_bytes'] / 1e6:.2f} MB tag files); "
              f"without versions {r['without_versions_would_store'] / 1e6:.1f} MB")
    print(f"  stored payload / distinct content: {r['stored_payload_over_distinct']} (target <= {STORAGE_TARGET})")
    print(f"  written per copy of a new version (payload and tag files, measured on the nodes): at most "
          f"{r['max_written_ratio']:.2%} of its delivery (target <= {WRITE_TARGET:.0%})")
    print(f"  hashing limit (sha256 + sha512): " + ", ".join(f"month {x['month']} {x['mb_per_s']} MB/s"
                                                           for x in r["hash_limit"]))
    print(f"  ingest: first {r['first_ingest_mb_per_s']} MB/s ({r['first_limit_ratio']} of the limit, normalised), "
          f"a new version (median) {r['version_ingest_mb_per_s_median']} MB/s "
          f"({r['version_limit_ratio_median']} of the limit, normalised) of delivered bytes")
    for number, x in r["restores"].items():
        print(f"  restore of version {number}: {x['bytes'] / 1e6:.1f} MB in {x['seconds']} s, {x['mb_per_s']} MB/s "
              f"(runs: {x['runs_mb_per_s']} MB/s, CPU {x['runs_cpu_s']} s)")
    print(f"  restore of version 7 / restore of version 1 (a whole package): {r['restore_ratio']}")
    ok = (r["stored_payload_over_distinct"] <= STORAGE_TARGET and r["max_written_ratio"] <= WRITE_TARGET
          and r["version_limit_ratio_median"] >= 0.9 * r["first_limit_ratio"] and r["restore_ratio"] >= 0.9)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
