"""Versioned deliveries (issue 18): 12 monthly exports, each file stored once per node.

    python -m bench.bench_versions [--scale 0.05] [--months 12]

The corpus is the issue's: a monthly export of 10,000 files and 1 GiB
(both times ``--scale``), in which each month 2 % of the files change, 0.5 %
are removed and 1 % are added (seeded random bytes: every file written is
distinct content; unchanged files are copies of the month before, since a
delivery may not hold hard links).  Month 1 is ingested as
a package, months 2 to 12 with ``--version-of`` the month before, inline on
three filesystem nodes.  Then version 7 is restored, and version 1 (a whole
package as restored today) for comparison.

Measured: bytes stored per node against the distinct content of the 12
versions (target ≤ 1.05 × plus the tag files), bytes written per copy of
each new version against its delivery (target ≤ 4 %), each ingest's MB/s of
delivered bytes (a new version against the first ingest), and the restore
rates.  Not a unit test: nothing here asserts a time; the exit status is 1
when the storage or write target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

from bench.corpora import OUT_DIR
from preservation.collection import add_collection
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.repository import Repository
from preservation.restore import restore
from preservation.versions import lineage_versions

SEED = 18
ROOT = OUT_DIR / "versions"
NODES = [("uni-a", "university", "north"), ("cas-b", "cas", "north"), ("inst-c", "institute", "south")]
CHANGED, REMOVED, ADDED = 0.02, 0.005, 0.01
STORAGE_TARGET, WRITE_TARGET = 1.05, 0.04


def make_months(root: Path, months: int, files: int, total_bytes: int) -> tuple[list[Path], int]:
    """The monthly deliveries under ``root``, and the bytes of distinct content written into them."""
    rng = random.Random(SEED)
    mean = max(1, total_bytes // files)
    names = [f"vol{i % 40:02d}/article-{i:06d}.pdf" for i in range(files)]
    serial = files
    out = []
    distinct = 0
    for month in range(1, months + 1):
        here = root / f"month-{month:02d}"
        shutil.rmtree(here, ignore_errors=True)
        changed: set[str] = set()
        if month > 1:
            rng.shuffle(names)
            removed = int(len(names) * REMOVED)
            changed = set(names[removed:removed + int(len(names) * CHANGED)])
            names = names[removed:]
            for _ in range(int(files * ADDED)):
                names.append(f"vol{serial % 40:02d}/article-{serial:06d}.pdf")
                changed.add(names[-1])
                serial += 1
        before = out[-1] if out else None
        for name in names:
            path = here / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if before is not None and name not in changed:
                shutil.copyfile(before / name, path)
            else:
                data = rng.randbytes(max(1, int(rng.uniform(0.5, 1.5) * mean)))
                path.write_bytes(data)
                distinct += len(data)
        out.append(here)
    return out, distinct


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


def run(scale: float, months: int) -> dict:
    files, total = max(100, int(10_000 * scale)), max(1 << 20, int((1 << 30) * scale))
    shutil.rmtree(ROOT, ignore_errors=True)
    deliveries, distinct = make_months(ROOT / "deliveries", months, files, total)
    home = ROOT / "home"
    home.mkdir(parents=True)
    (home / "preserve.yaml").write_text("", encoding="utf-8")
    init_home(home)
    repo = Repository.open(home)
    try:
        for name, org, region in NODES:
            add_node(repo, name, org, region, (home / "nodes" / name).as_uri())
        add_collection(repo, "monthly", "A monthly export")
        ingests, previous = [], None
        for month, d in enumerate(deliveries, start=1):
            size = delivery_bytes(d)
            started = time.perf_counter()
            out = ingest(repo, d, "monthly", version_of=previous, analysers=[])
            seconds = time.perf_counter() - started
            assert out["state"] == "preserved", out
            written = out.get("version", {}).get("stored_bytes", size)
            ingests.append({"month": month, "delivery_bytes": size, "seconds": round(seconds, 3),
                            "mb_per_s": round(size / seconds / 1e6, 1), "payload_written_per_copy": written,
                            "written_ratio": round(written / size, 4)})
            previous = out["package_id"]
        with repo.catalog.session() as s:
            lineage = lineage_versions(s, previous)[0].lineage_id
        restores = {}
        for number in (1, min(7, months)):
            dest = ROOT / f"restored-{number}"
            shutil.rmtree(dest, ignore_errors=True)
            started = time.perf_counter()
            got = restore(repo, lineage, dest, version=number)
            seconds = time.perf_counter() - started
            restores[number] = {"bytes": got["bytes"], "seconds": round(seconds, 3),
                                "mb_per_s": round(got["bytes"] / seconds / 1e6, 1)}
            shutil.rmtree(dest)
    finally:
        repo.close()
    per_node = {name: dict(zip(("bytes", "tag_bytes"), tree_bytes(home / "nodes" / name))) for name, *_ in NODES}
    worst = max((n["bytes"] - n["tag_bytes"]) / distinct for n in per_node.values())
    later = ingests[1:]
    return {
        "scale": scale, "months": months, "files": files, "delivery_bytes": ingests[0]["delivery_bytes"],
        "distinct_bytes": distinct, "distinct_over_one_delivery": round(distinct / ingests[0]["delivery_bytes"], 3),
        "per_node": per_node, "stored_payload_over_distinct": round(worst, 4),
        "without_versions_would_store": sum(i["delivery_bytes"] for i in ingests),
        "max_written_ratio": max((i["written_ratio"] for i in later), default=0.0),
        "first_ingest_mb_per_s": ingests[0]["mb_per_s"],
        "version_ingest_mb_per_s_median": sorted(i["mb_per_s"] for i in later)[len(later) // 2] if later else None,
        "ingests": ingests, "restores": restores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="of the issue's 10,000 files and 1 GiB")
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or not 2 <= args.months <= 60:
        parser.error("--scale in (0, 1], --months 2..60")
    result = run(args.scale, args.months)
    (OUT_DIR / "versions.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    r = result
    print(f"{r['months']} versions of {r['files']} files, {r['delivery_bytes'] / 1e6:.1f} MB each; distinct content "
          f"{r['distinct_bytes'] / 1e6:.1f} MB ({r['distinct_over_one_delivery']} x one delivery)")
    for name, n in r["per_node"].items():
        print(f"  node {name}: {n['bytes'] / 1e6:.1f} MB stored ({n['tag_bytes'] / 1e6:.2f} MB tag files); "
              f"without versions {r['without_versions_would_store'] / 1e6:.1f} MB")
    print(f"  stored payload / distinct content: {r['stored_payload_over_distinct']} (target <= {STORAGE_TARGET})")
    print(f"  payload written per copy of a new version: at most {r['max_written_ratio']:.2%} of its delivery "
          f"(target <= {WRITE_TARGET:.0%})")
    print(f"  ingest: first {r['first_ingest_mb_per_s']} MB/s, a new version (median) "
          f"{r['version_ingest_mb_per_s_median']} MB/s of delivered bytes")
    for number, x in r["restores"].items():
        print(f"  restore of version {number}: {x['bytes'] / 1e6:.1f} MB in {x['seconds']} s, {x['mb_per_s']} MB/s")
    ok = r["stored_payload_over_distinct"] <= STORAGE_TARGET and r["max_written_ratio"] <= WRITE_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
