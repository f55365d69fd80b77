"""KBART import and export at scale: a publisher's list of 100,000 rows, a library's file of as many, an export.

    python -m bench.bench_kbart [--rows N] [--backends sqlite,postgresql] [--steps ...] [--repeat R]

Generates (seeded, under ``bench/out/kbart``) a KBART Phase II title list
of ``--rows`` rows: Chinese and English titles, valid print and online ISSNs
(check digits computed), publisher title ids, coverage dates and volumes;
one title in five has two coverage ranges.  For each back end, in a fresh
repository: ``import_title_list`` (checked row by row, one transaction,
bulk inserts), then a library's own file of the same rows through
``import_library_file``, then ``coverage.export(expected=True)`` of the
collection.  Each step runs in a fresh child process so that its peak
resident set (VmHWM) is its own; on PostgreSQL the CPU time of the server
process that did the work is reported too (the server runs on this
machine in the bench), a figure other work on the machine disturbs less
than the wall clock; ``--repeat`` runs each step that many
times, each in a fresh repository for the title list, and reports every run
(the fastest decides the target).  Target (issue 16): the title list
imported in < 10 s.

Not a unit test: nothing here asserts a time; the exit status is 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import time
from pathlib import Path

from bench.corpora import OUT_DIR
from preservation.identifiers import issn_check_digit

SEED = 16
ROOT = OUT_DIR / "kbart"
TARGET_SECONDS = 10.0
STEPS = ("title list", "library file", "export")
COLUMNS = (
    "publication_title", "print_identifier", "online_identifier", "date_first_issue_online", "num_first_vol_online",
    "num_first_issue_online", "date_last_issue_online", "num_last_vol_online", "num_last_issue_online", "title_url",
    "first_author", "title_id", "embargo_info", "coverage_depth", "notes", "publisher_name", "publication_type",
    "date_monograph_published_print", "date_monograph_published_online", "monograph_volume", "monograph_edition",
    "first_editor", "parent_publication_title_id", "preceding_publication_title_id", "access_type",
)
WORDS = ["物理", "化学", "学报", "研究", "科学", "工程", "医学", "技术", "进展", "通报", "Journal", "Acta",
         "Letters", "Review", "Chinese", "Advances"]


def _issn(n: int) -> str:
    digits = f"{n:07d}"
    return f"{digits[:4]}-{digits[4:]}{issn_check_digit(digits)}"


def generate(path: Path, rows: int) -> None:
    """A KBART file of ``rows`` rows, written line by line."""
    rng = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(COLUMNS) + "\n")
        written = 0
        title = 0
        while written < rows:
            title += 1
            name = "".join(rng.choice(WORDS) for _ in range(3)) + f" {title}"
            print_issn, online_issn = _issn(1_000_000 + 2 * title), _issn(1_000_001 + 2 * title)
            ranges = 2 if title % 5 == 0 else 1
            start = rng.randint(1950, 2010)
            for part in range(ranges):
                if written >= rows:
                    break
                first = start + part * 8
                last = first + rng.randint(1, 7)
                fields = dict(publication_title=name, print_identifier=print_issn, online_identifier=online_issn,
                              date_first_issue_online=f"{first}-{rng.randint(1, 12):02d}",
                              num_first_vol_online=str(first - 1940), num_first_issue_online="1",
                              date_last_issue_online=f"{last}-12-31", num_last_vol_online=str(last - 1940),
                              num_last_issue_online="12", title_url=f"https://journals.example.cn/t{title}",
                              title_id=f"t{title}", coverage_depth="fulltext", publisher_name="科学出版社",
                              publication_type="serial", access_type="P")
                out.write("\t".join(fields.get(c, "") for c in COLUMNS) + "\n")
                written += 1


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _step(home: str, step: str, path: str, queue) -> None:
    from preservation import coverage, kbart
    from preservation.repository import Repository

    repo = Repository.open(home)
    try:
        backend = _backend_pid(repo)
        server_cpu = _process_cpu(backend) if backend else None
        started, cpu = time.perf_counter(), time.process_time()
        if step == "title list":
            result = kbart.import_title_list(repo, path, "bench")
        elif step == "library file":
            result = kbart.import_library_file(repo, path, "BENCH")
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as out:
                result = coverage.export(repo, out, collection_key="bench", expected=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if backend and _backend_pid(repo) == backend:  # the one pooled connection did the work
            server_cpu = _process_cpu(backend) - server_cpu
        else:
            server_cpu = None
    finally:
        repo.close()
    result.pop("warnings", None)
    queue.put({"seconds": seconds, "cpu_seconds": cpu, "server_cpu_seconds": server_cpu, "peak_rss": _peak_rss(),
               "result": result})


def _backend_pid(repo) -> int | None:
    """The PostgreSQL server process of the repository's pooled connection (None on SQLite)."""
    if repo.catalog.dialect != "postgresql":
        return None
    from sqlalchemy import text
    with repo.catalog.engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (the database server runs here in the bench)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_step(home: Path, step: str, path: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_step, args=(str(home), step, str(path), queue))
    child.start()
    outcome = queue.get()
    child.join()
    return outcome


def _drop(home: Path, backend: str) -> None:
    """Remove a run's repository (and its PostgreSQL schema: the test database would keep every run's)."""
    if backend == "postgresql":
        from tests.fixtures import _drop_schema
        url = (home / "preserve.yaml").read_text(encoding="utf-8")
        _drop_schema(url.split("search_path%3D", 1)[1].split("'", 1)[0])
    shutil.rmtree(home, ignore_errors=True)


def _home(backend: str) -> Path:
    from preservation.access.accounts import add_library
    from preservation.collection import add_collection
    from preservation.home import init_home
    from preservation.repository import Repository

    home = ROOT / f"home-{backend}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = ""
    if backend == "postgresql":
        from tests.fixtures import _postgres_url
        url, _schema = _postgres_url()
        config = f"catalog_url: '{url}'\n"
    (home / "preserve.yaml").write_text(config, encoding="utf-8")
    init_home(home)
    with Repository.open(home) as repo:
        add_collection(repo, "bench", "Bench 期刊库")
        add_library(repo, "BENCH", "Bench 图书馆")
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"some of {', '.join(STEPS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step (default 1)")
    args = parser.parse_args(argv)
    steps = args.steps.split(",")
    if not set(steps) <= set(STEPS) or args.repeat < 1:
        parser.error(f"--steps takes {', '.join(STEPS)}; --repeat at least 1")
    source = ROOT / f"titles-{args.rows}.tsv"
    if not source.exists():
        generate(source, args.rows)
    size = source.stat().st_size
    print(f"{args.rows:,} rows, {size / 1e6:.1f} MB: {source.relative_to(Path.cwd()) if source.is_relative_to(Path.cwd()) else source.name}")
    results = []
    missed = False
    paths = {"title list": source, "library file": source, "export": ROOT / "export.tsv"}
    for backend in args.backends.split(","):
        fastest = None
        for run in range(args.repeat):
            home = _home(backend)
            if "title list" not in steps:  # the other steps read what a title list made
                _run_step(home, "title list", source)
            for step in steps:
                outcome = _run_step(home, step, paths[step])
                rate = args.rows / outcome["seconds"]
                if step == "title list":
                    fastest = min(fastest or outcome["seconds"], outcome["seconds"])
                server = outcome["server_cpu_seconds"]
                server = f", server {server:6.2f} s" if server is not None else ""
                print(f"  {backend:<10} {step:<13} {outcome['seconds']:7.2f} s (CPU {outcome['cpu_seconds']:6.2f} s{server})  "
                      f"{rate:9,.0f} rows/s  peak RSS {outcome['peak_rss'] / 2**20:5.0f} MiB  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                results.append({"backend": backend, "step": step, "run": run + 1, **outcome})
            _drop(home, backend)
        if fastest is not None:
            met = fastest < TARGET_SECONDS
            missed |= not met
            print(f"  {backend:<10} title list fastest {fastest:.2f} s: target < {TARGET_SECONDS:.0f} s "
                  f"{'met' if met else 'MISSED'}")
    (ROOT / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
