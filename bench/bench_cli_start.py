"""How long `preserve` takes to start and answer: --help, status on 1,000 packages, node list (issue 22 point 3).

    python -m bench.bench_cli_start [--runs N] [--packages N]

Each command runs ``--runs`` times (default 10) as a new process, the way an
operator types it (the ``preserve`` console script of this interpreter); the
median is reported, beside the median of ``python -c pass`` measured in the
same run, taking turns, as the reference (the interpreter's own start).  The
CPU time each process used (user + system, from ``wait4``) is reported too: on
a loaded machine it says what start-up costs when the wall clock cannot.
Target: each command under 0.3 s.

The home holds ``--packages`` packages (default 1,000): one delivery is
ingested for real (three verified copies), and its catalog rows (package,
files, replicas, file records) are copied under new package ids, which builds
the catalog in seconds instead of ingesting 1,000 deliveries.  Python's
bytecode cache is allowed for the runs (``PYTHONDONTWRITEBYTECODE`` is
removed from their environment and one warm-up run of each command writes
it), as an installed ``preserve`` has it.  Not a unit test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.corpora import OUT_DIR
from bench.measure import REPO_ROOT

TARGET_SECONDS = 0.3


def build_home(home: Path, packages: int) -> None:
    """A home with ``packages`` packages: one ingested, the rest copies of its catalog rows."""
    from sqlalchemy import insert, select

    from bench.homes import COLLECTION, fresh_repo
    from preservation.catalog.format_models import FileFormat
    from preservation.catalog.models import Package, PackageFile, Replica
    from preservation.ingest import ingest

    repo = fresh_repo(home)
    delivery = home.parent / "cli-start-delivery"
    shutil.rmtree(delivery, ignore_errors=True)
    (delivery / "articles").mkdir(parents=True)
    for i in range(5):
        (delivery / "articles" / f"article-{i}.xml").write_text(f"<article><title>{i}</title></article>\n")
    try:
        original = ingest(repo, str(delivery), COLLECTION)["package_id"]
        per_package = [(Package.__table__, "id"), (PackageFile.__table__, "package_id"), (Replica.__table__, "package_id"),
                       (FileFormat.__table__, "package_id")]
        new_ids = [str(uuid.uuid4()) for _ in range(packages - 1)]
        with repo.catalog.engine.begin() as conn:
            rows = {table.name: [dict(r) for r in conn.execute(select(table).where(table.c[key] == original)).mappings()]
                    for table, key in per_package}
            for table, key in per_package:
                serial = ["id"] if key != "id" and "id" in table.c else []  # a row number the database gives
                copies = []
                for new_id in new_ids:
                    for row in rows[table.name]:
                        copy = {k: v for k, v in row.items() if k not in serial}
                        copy[key] = new_id
                        copies.append(copy)
                if copies:
                    conn.execute(insert(table), copies)
    finally:
        repo.close()


def _preserve() -> list[str]:
    script = Path(sys.executable).with_name("preserve")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from preservation.cli.main import main; main()"]


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds from start to exit, and the CPU seconds (user + system) the process used."""
    start = time.perf_counter()
    with subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        error = process.stderr.read() if process.stderr else b""
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {error.decode(errors='replace')[-500:]}")
    return seconds, usage.ru_utime + usage.ru_stime


def measure(runs: int, packages: int) -> dict:
    home = OUT_DIR / "homes" / "cli-start"
    built = time.perf_counter()
    build_home(home, packages)
    build_seconds = time.perf_counter() - built
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PRESERVE_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)  # this tree
    preserve = _preserve()
    contenders = {
        "python -c pass (reference)": [sys.executable, "-c", "pass"],
        "preserve --help": [*preserve, "--help"],
        f"preserve status ({packages:,} packages)": [*preserve, "status"],
        "preserve node list": [*preserve, "node", "list"],
    }
    for argv in contenders.values():  # warm-up: the bytecode cache, the page cache
        _time(argv, env)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    load = os.getloadavg()
    for _ in range(runs):
        for name, argv in contenders.items():  # taking turns: the machine's noise falls on all alike
            wall, used = _time(argv, env)
            times[name].append(wall)
            cpu[name].append(used)
    return {"times": times, "cpu": cpu, "build_seconds": build_seconds, "load": load, "load_after": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--packages", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.packages < 1:
        parser.error("--runs and --packages must be at least 1")
    m = measure(args.runs, args.packages)
    reference = statistics.median(next(iter(m["times"].values())))
    missed = False
    cpu_reference = statistics.median(next(iter(m["cpu"].values())))
    print("| command | median | fastest / slowest | × `python -c pass` | CPU (median) | × CPU of `pass` | target |")
    print("|---|---|---|---|---|---|---|")
    for i, (name, seconds) in enumerate(m["times"].items()):
        cpu = statistics.median(m["cpu"][name])
        median = statistics.median(seconds)
        if i == 0:
            verdict = "—"
        else:
            met = median < TARGET_SECONDS
            missed |= not met
            verdict = f"< {TARGET_SECONDS} s: {'met' if met else 'MISSED'}"
        print(f"| {name} | {median:.3f} s | {min(seconds):.3f} / {max(seconds):.3f} s | {median / reference:.1f} "
              f"| {cpu:.3f} s | {cpu / cpu_reference:.1f} | {verdict} |")
    load = ", ".join(f"{x:.1f}" for x in m["load"])
    after = ", ".join(f"{x:.1f}" for x in m["load_after"])
    print(f"<!-- {args.runs} runs each; home built in {m['build_seconds']:.1f} s; load average {load} before the runs,"
          f" {after} after -->", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
