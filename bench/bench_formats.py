"""Format identification and validation at ingest: what they add to an ingest, on M and on S.

    python -m bench.bench_formats [--size M,S] [--scale F] [--repeat R]

Each run ingests a corpus (bag, register, three verified local copies, as
``bench_ingest`` does) in a fresh child, once with no content analysis
(``analysers=[]``) and once with the format analyser (identification of
every file from its head and tail as it is bagged, then validation of what
needs it), taking turns, ``--repeat`` times each; the fastest of each is
kept.  The analyser loads the signatures inside the clock, as ``preserve
ingest`` does (from the planned table in the user's cache dir); planning the
table from FIDO's files, which the first process after an install pays, and
loading it in a fresh process are timed on their own.  Targets (issue 17): at most +15 % on M (1 MiB files) and +25 % on S
(4 KiB files).

The corpora are random bytes: identification finds no signature and names
each file by its extension, and nothing is validated (no file has a kind
``kind_for`` checks); ``bench_validation`` measures validation itself.
Not a unit test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from pathlib import Path

from bench.corpora import DEFAULT_SCALE, OUT_DIR, ensure_corpus, iter_files, read_through
from bench.homes import COLLECTION, fresh_repo
from bench.measure import run_child
from bench.profiling import profiled

TARGETS = {"M": 0.15, "S": 0.25}


def run_ingest(delivery: str, home: str, analysis: str, profile: str | None = None) -> dict:
    """Child entry: ingest ``delivery`` into a fresh home with (``formats``) or without (``off``) the analyser;
    with ``profile``, the ingest's profile (every thread) is written there."""
    from preservation.formats.analyser import FormatAnalyser
    from preservation.ingest import ingest

    repo = fresh_repo(Path(home))
    read_through(list(iter_files(Path(delivery))))
    before = _cpu()
    start = time.perf_counter()
    # the analyser loads the signatures inside the clock, as `preserve ingest` does in its process (from the
    # table cached in the user's cache dir: see the `cached` warm-up in measure)
    loaded = time.perf_counter()
    analysers = [] if analysis == "off" else [_timed(FormatAnalyser)(repo.policy.formats)]
    load_seconds = time.perf_counter() - loaded
    with profiled(Path(profile), cpu=True) if profile else contextlib.nullcontext():
        result = ingest(repo, delivery, COLLECTION, analysers=analysers)
    seconds = time.perf_counter() - start
    cpu = _cpu() - before
    repo.close()
    spent = analysers[0].cpu_seconds if analysers else 0.0
    return {"seconds": seconds, "files": result["files"], "bytes": result["bytes"], "state": result["state"],
            "signatures_load_seconds": load_seconds, "content": result.get("content", {}), "cpu_seconds": cpu,
            "analyser_cpu_seconds": spent}


def build_table() -> dict:
    """Child entry: plan FIDO's signatures from scratch (what the first process after an install pays once)."""
    from fido import CONFIG_DIR

    from preservation.formats import signature_table

    started = time.perf_counter()
    signature_table.build(CONFIG_DIR)
    return {"seconds": time.perf_counter() - started}


def load_table() -> dict:
    """Child entry: load the planned signatures as an ingest process does (from the cache; built if missing)."""
    started = time.perf_counter()
    from preservation.formats.identify import signatures

    signatures()
    return {"seconds": time.perf_counter() - started}


def _timed(cls: type) -> type:
    """The analyser, counting the CPU time of its own work (on whichever thread does it): identification
    when each file is closed, validation and policy in finish, the rows in register."""
    import threading

    class Timed(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.cpu_seconds = 0.0
            self._cpu_lock = threading.Lock()

        def _spend(self, started: float) -> None:
            with self._cpu_lock:
                self.cpu_seconds += time.thread_time() - started

        def _identify(self, *args):
            started = time.thread_time()
            try:
                return super()._identify(*args)
            finally:
                self._spend(started)

        def finish(self, *args):
            started = time.thread_time()
            try:
                return super().finish(*args)
            finally:
                self._spend(started)

        def register(self, *args):
            started = time.thread_time()
            try:
                return super().register(*args)
            finally:
                self._spend(started)

    return Timed


def _cpu() -> float:
    """CPU seconds (user + kernel) of this process and of its reaped children (validating processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_loading(repeat: int) -> dict:
    """Seconds to plan the signatures from scratch (once per install) and to load them from the cache (per process)."""
    build = min(run_child("bench.bench_formats:build_table").result["seconds"] for _ in range(repeat))
    run_child("bench.bench_formats:load_table")  # the cache is written if it was missing
    load = min(run_child("bench.bench_formats:load_table").result["seconds"] for _ in range(repeat))
    return {"build": build, "load": load}


def measure(size: str, scale: float, repeat: int) -> dict:
    corpus = ensure_corpus(size, scale)
    run_child("bench.bench_formats:load_table")  # the planned table in the cache, as after any first use
    home = OUT_DIR / "homes" / f"formats-{size}"
    runs: dict[str, list] = {"off": [], "formats": []}
    for _ in range(repeat):
        for analysis in ("off", "formats"):
            runs[analysis].append(run_child("bench.bench_formats:run_ingest", delivery=str(corpus.delivery),
                                            home=str(home), analysis=analysis))
    best = {k: min(v, key=lambda m: m.seconds) for k, v in runs.items()}
    off, on = best["off"].seconds, best["formats"].seconds
    cpu_off = min(m.result["cpu_seconds"] for m in runs["off"])
    cpu_on = min(m.result["cpu_seconds"] for m in runs["formats"])
    analyser = min(m.result["analyser_cpu_seconds"] for m in runs["formats"])
    return {"corpus": corpus.label, "off": off, "on": on, "overhead": on / off - 1, "target": TARGETS.get(size),
            "cpu_off": cpu_off, "cpu_on": cpu_on, "cpu_overhead": cpu_on / cpu_off - 1,
            "analyser": analyser, "analyser_share": analyser / cpu_off,
            "files": best["formats"].result["files"], "peak_off": max(m.peak_rss for m in runs["off"]),
            "peak_on": max(m.peak_rss for m in runs["formats"]),
            "load": best["formats"].result["signatures_load_seconds"],
            "identified": best["formats"].result["content"].get("formats", {}).get("by_basis", {}),
            "others": max(m.others for v in runs.values() for m in v),
            "runs": {k: [round(m.seconds, 3) for m in v] for k, v in runs.items()}}


def profile(size: str, scale: float) -> list[Path]:
    """Profile one ingest of the corpus in each mode; returns the two reports' paths (diff them)."""
    corpus = ensure_corpus(size, scale)
    run_child("bench.bench_formats:load_table")
    reports = []
    for analysis in ("off", "formats"):
        report = OUT_DIR / f"profile-formats-{size}-{analysis}.txt"
        run_child("bench.bench_formats:run_ingest", delivery=str(corpus.delivery),
                  home=str(OUT_DIR / "homes" / f"formats-{size}"), analysis=analysis, profile=str(report))
        reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="M,S", help="corpora, comma-separated (M, S)")
    parser.add_argument("--scale", type=float, default=None, help="shrink factor (default: the suite's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="profile one ingest of each corpus with and without the analyser instead of timing")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.size.split(",") if s.strip()]
    if args.profile:
        for size in sizes:
            for report in profile(size, args.scale if args.scale is not None else DEFAULT_SCALE[size]):
                print(report)
        return 0
    missed = False
    print("| corpus | ingest, no analysis | ingest, formats on | overhead | target | CPU off / on | CPU overhead "
          "| analyser's own CPU (per file; / CPU off) | peak RSS off / on | basis of identification | others' CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        m = measure(size, args.scale if args.scale is not None else DEFAULT_SCALE[size], args.repeat)
        target = m["target"]
        met = target is None or m["overhead"] <= target
        missed |= not met
        verdict = "—" if target is None else f"≤ {target:.0%}: {'met' if met else 'MISSED'}"
        basis = ", ".join(f"{k} {v:,}" for k, v in sorted(m["identified"].items()))
        print(f"| {m['corpus']} | {m['off']:.3f} s | {m['on']:.3f} s | {m['overhead']:+.1%} | {verdict} "
              f"| {m['cpu_off']:.2f} / {m['cpu_on']:.2f} s | {m['cpu_overhead']:+.1%} "
              f"| {m['analyser']:.2f} s ({1e6 * m['analyser'] / m['files']:.0f} µs; {m['analyser_share']:.1%}) "
              f"| {m['peak_off'] >> 20} / {m['peak_on'] >> 20} MiB | {basis} | {m['others']:.0%} |")
        print(f"<!-- {size}: runs {m['runs']}; signatures loaded in {m['load']:.2f} s inside the clock -->",
              file=sys.stderr)
    loading = measure_loading(args.repeat)
    print(f"\nSignatures: planned from FIDO's files in {loading['build']:.2f} s (once per signature install, then "
          f"cached); loaded from the cache in {loading['load']:.2f} s per process (interpreter start and imports "
          f"included), fastest of {args.repeat}.")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
