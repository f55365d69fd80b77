"""Format identification and validation at ingest: what they add to an ingest, on M and on S.

    python -m bench.bench_formats [--size M,S] [--scale F] [--repeat R] [--settle-wait S] [--validated N]

Each run ingests a corpus (bag, register, three verified local copies, as
``bench_ingest`` does) in a fresh child, with no content analysis
(``analysers=[]``, *off*) or with the format analyser (*on*: identification
of every file from its head and tail as it is bagged, then validation of
what needs it).  The two take turns in the order off, on, on, off, off, on …
(``--repeat`` runs each), so a drift of the machine over the bench falls on
both sides alike.  Before every run the parent deletes the previous run's
home, syncs, and waits until the disk has been idle for a second
(:mod:`bench.disk`), and with ``--after-delete S`` until S seconds have
passed since the deletes: on this ext4 without a journal, every file created
skips the inodes deleted in the last 60 to 360 s, so a run after 40,000
deletes (the previous run's, or other sessions') spends up to 20 s more of
kernel CPU.  The kernel CPU of each run is listed apart.  Every run is reported (wall clock, CPU of the ingest process and
of its validating processes, how long the disk took to settle, the others'
share of the cores); the overhead is given fastest against fastest, median
against median and turn by turn.

The analyser loads the signatures inside the clock, as ``preserve ingest``
does (from the planned table in the user's cache dir); planning the table
from FIDO's files, which the first process after an install pays, and
loading it in a fresh process are timed on their own.  Targets (issue 17):
at most +15 % on M (1 MiB files) and +25 % on S (4 KiB files).

The corpora are random bytes: identification finds no signature and names
each file by its extension, and nothing is validated (no file has a kind
``kind_for`` checks).  So that the peak memory of a validating process is
reported too, one more ingest (formats on) takes a delivery of files that
are validated (``--validated`` of each of ``bench_validation``'s small sets:
PDFs, JATS, PNGs, EPUBs) and reports what its validating processes did and
their peak resident set against the policy's limit; ``bench_validation``
measures validation itself.  Not a unit test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench.corpora import DEFAULT_SCALE, OUT_DIR, ensure_corpus, human_size, iter_files, read_through
from bench.disk import MAX_WAIT, add_options, remove_and_settle
from bench.homes import COLLECTION, fresh_repo
from bench.measure import Measured, run_child
from bench.profiling import profiled

TARGETS = {"M": 0.15, "S": 0.25}
MODES = ("off", "formats")
VALIDATED_SETS = ("pdf 3 pages", "jats 8 KiB", "png 64 KiB", "epub 40 KiB")
"""``bench_validation``'s sets whose files make the validated delivery (small files: many answers per second)."""


def run_ingest(delivery: str, home: str, analysis: str, profile: str | None = None) -> dict:
    """Child entry: ingest ``delivery`` into a fresh home with (``formats``) or without (``off``) the analyser;
    with ``profile``, the ingest's profile (every thread) is written there."""
    from preservation.formats.analyser import FormatAnalyser
    from preservation.ingest import ingest

    repo = fresh_repo(Path(home))
    read_through(list(iter_files(Path(delivery))))
    before = _cpu()
    children_before = _cpu(resource.RUSAGE_CHILDREN)
    kernel_before = _kernel()
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
    kernel = _kernel() - kernel_before
    validators = _cpu(resource.RUSAGE_CHILDREN) - children_before
    memory_limit = repo.policy.formats.memory_limit_mib << 20
    repo.close()
    spent = analysers[0].cpu_seconds if analysers else 0.0
    return {"seconds": seconds, "files": result["files"], "bytes": result["bytes"], "state": result["state"],
            "signatures_load_seconds": load_seconds, "content": result.get("content", {}), "cpu_seconds": cpu,
            "validators_cpu_seconds": validators, "kernel_cpu_seconds": kernel, "analyser_cpu_seconds": spent,
            "memory_limit_bytes": memory_limit}


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


def _cpu(*who: int) -> float:
    """CPU seconds (user + kernel) of this process and of its reaped children (validating processes), or of
    ``who`` alone."""
    usages = [resource.getrusage(w) for w in who or (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usages)


def measure_loading(repeat: int) -> dict:
    """Seconds to plan the signatures from scratch (once per install) and to load them from the cache (per process)."""
    build = min(run_child("bench.bench_formats:build_table").result["seconds"] for _ in range(repeat))
    run_child("bench.bench_formats:load_table")  # the cache is written if it was missing
    load = min(run_child("bench.bench_formats:load_table").result["seconds"] for _ in range(repeat))
    return {"build": build, "load": load}


def _kernel() -> float:
    """Kernel CPU seconds of this process and of its reaped children."""
    return sum(resource.getrusage(w).ru_stime for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def turns(repeat: int) -> list[str]:
    """The order of the runs: off, on, on, off, off, on … (``repeat`` of each), so that a drift over the
    bench (a disk still busy, neighbours' load rising) weighs on both sides alike."""
    pairs = [MODES if turn % 2 == 0 else MODES[::-1] for turn in range(repeat)]
    return [mode for pair in pairs for mode in pair]


def measure(size: str, scale: float, repeat: int, settle_wait: float = MAX_WAIT, after_delete: float = 0.0,
            keep_homes: bool = False) -> dict:
    corpus = ensure_corpus(size, scale)
    run_child("bench.bench_formats:load_table")  # the planned table in the cache, as after any first use
    homes = OUT_DIR / "homes"
    home = homes / f"formats-{size}"
    kept: list[Path] = []
    runs: dict[str, list[Measured]] = {mode: [] for mode in MODES}
    every: list[tuple[str, Measured]] = []
    for mode in turns(repeat):
        if keep_homes:
            # each run in a home of its own, all deleted at the end: no run creates its files right after
            # another run's tree was deleted (ext4 without a journal skips recently deleted inodes one by one)
            home = homes / f"formats-{size}-{len(every)}"
            kept.append(home)
        # the previous run's tree deleted and its discards done before the clock, not under it
        settled = remove_and_settle([] if keep_homes else [home], homes, max_wait=settle_wait,
                                    recently_deleted=after_delete)
        measured = run_child("bench.bench_formats:run_ingest", delivery=str(corpus.delivery),
                             home=str(home), analysis=mode)
        measured.result["settle"] = {"seconds": settled.seconds, "settled": settled.settled}
        runs[mode].append(measured)
        every.append((mode, measured))
        print(f"# {size} run {len(every)} ({mode}): {measured.seconds:.3f} s, CPU {measured.result['cpu_seconds']:.2f} s "
              f"(kernel {measured.result['kernel_cpu_seconds']:.2f} s), "
              f"disk settled in {settled.seconds:.1f} s{'' if settled.settled else ' (still busy)'}", file=sys.stderr)
    for tree in kept or [home]:
        shutil.rmtree(tree, ignore_errors=True)
    fastest = {k: min(v, key=lambda m: m.seconds) for k, v in runs.items()}
    off, on = fastest["off"].seconds, fastest["formats"].seconds
    median = {k: statistics.median(m.seconds for m in v) for k, v in runs.items()}
    cpu = {k: [m.result["cpu_seconds"] for m in v] for k, v in runs.items()}
    cpu_off, cpu_on = min(cpu["off"]), min(cpu["formats"])
    analyser = min(m.result["analyser_cpu_seconds"] for m in runs["formats"])
    # turn by turn: each "on" run against the "off" run next to it in the same pair
    pairwise = [b.seconds / a.seconds - 1 for a, b in zip(runs["off"], runs["formats"])]
    pairwise_cpu = [b / a - 1 for a, b in zip(cpu["off"], cpu["formats"])]
    return {"corpus": corpus.label, "off": off, "on": on, "overhead": on / off - 1, "target": TARGETS.get(size),
            "median_off": median["off"], "median_on": median["formats"],
            "median_overhead": median["formats"] / median["off"] - 1,
            "pairwise": pairwise, "pairwise_cpu": pairwise_cpu,
            "cpu_off": cpu_off, "cpu_on": cpu_on, "cpu_overhead": cpu_on / cpu_off - 1,
            "median_cpu_overhead": statistics.median(cpu["formats"]) / statistics.median(cpu["off"]) - 1,
            "analyser": analyser, "analyser_share": analyser / cpu_off,
            "files": fastest["formats"].result["files"], "peak_off": max(m.peak_rss for m in runs["off"]),
            "peak_on": max(m.peak_rss for m in runs["formats"]),
            "load": fastest["formats"].result["signatures_load_seconds"],
            "identified": fastest["formats"].result["content"].get("formats", {}).get("by_basis", {}),
            "others": max(m.others for _, m in every), "every": every}


def run_lines(size: str, every: list[tuple[str, Measured]]) -> list[str]:
    """One line per run, in the order they ran."""
    lines = []
    for n, (mode, m) in enumerate(every, 1):
        settle = m.result["settle"]
        r = m.result
        lines.append(f"| {size} | {n} | {'formats on' if mode == 'formats' else 'no analysis'} | {m.seconds:.3f} s "
                     f"| {r['cpu_seconds']:.2f} s | {r['kernel_cpu_seconds']:.2f} s | {r['validators_cpu_seconds']:.2f} s "
                     f"| {settle['seconds']:.1f} s{'' if settle['settled'] else ' (still busy)'} "
                     f"| {m.peak_rss >> 20} MiB | {m.others:.0%} |")
    return lines


def build_validated(files: int) -> Path:
    """A delivery of ``files`` files of each of :data:`VALIDATED_SETS` (copies of ``bench_validation``'s: a delivery refuses hard links)."""
    from bench import bench_validation

    delivery = OUT_DIR / f"formats-validated-{files}" / "delivery"
    shutil.rmtree(delivery.parent, ignore_errors=True)
    for name in VALIDATED_SETS:
        _, paths = bench_validation.build(name, files)
        directory = delivery / name.replace(" ", "-")
        directory.mkdir(parents=True)
        for path in paths:
            shutil.copyfile(path, directory / path.name)
    return delivery


def measure_validated(files: int, settle_wait: float = MAX_WAIT) -> dict:
    """One ingest (formats on) of a delivery whose files are validated: what the validating processes did."""
    delivery = build_validated(files)
    home = OUT_DIR / "homes" / "formats-validated"
    settled = remove_and_settle([home], home.parent, max_wait=settle_wait)
    measured = run_child("bench.bench_formats:run_ingest", delivery=str(delivery), home=str(home), analysis="formats")
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(delivery.parent, ignore_errors=True)
    formats = measured.result["content"].get("formats", {})
    return {"files": measured.result["files"], "bytes": measured.result["bytes"], "seconds": measured.seconds,
            "validated": formats.get("validated", {}), "peak": formats.get("validation_peak_rss_bytes", 0),
            "limit": measured.result["memory_limit_bytes"], "cpu": measured.result["cpu_seconds"],
            "validators_cpu": measured.result["validators_cpu_seconds"], "settled": settled.settled,
            "others": measured.others}


def profile(size: str, scale: float) -> list[Path]:
    """Profile one ingest of the corpus in each mode; returns the two reports' paths (diff them)."""
    corpus = ensure_corpus(size, scale)
    run_child("bench.bench_formats:load_table")
    reports = []
    home = OUT_DIR / "homes" / f"formats-{size}"
    for analysis in MODES:
        report = OUT_DIR / f"profile-formats-{size}-{analysis}.txt"
        remove_and_settle([home], home.parent)
        run_child("bench.bench_formats:run_ingest", delivery=str(corpus.delivery),
                  home=str(home), analysis=analysis, profile=str(report))
        reports.append(report)
    shutil.rmtree(home, ignore_errors=True)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="M,S", help="corpora, comma-separated (M, S)")
    parser.add_argument("--scale", type=float, default=None, help="shrink factor (default: the suite's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    add_options(parser)
    parser.add_argument("--keep-homes", action="store_true",
                        help="give each run a home of its own and delete them all at the end (no run starts right "
                             "after another's tree was deleted)")
    parser.add_argument("--validated", type=int, default=25,
                        help="files of each validated set in the validated delivery (0: none; default 25)")
    parser.add_argument("--profile", action="store_true",
                        help="profile one ingest of each corpus with and without the analyser instead of timing")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.validated < 0:
        parser.error("--repeat must be at least 1 and --validated at least 0")
    sizes = [s.strip() for s in args.size.split(",") if s.strip()]
    if args.profile:
        for size in sizes:
            for report in profile(size, args.scale if args.scale is not None else DEFAULT_SCALE[size]):
                print(report)
        return 0
    missed = False
    rows, every = [], []
    for size in sizes:
        m = measure(size, args.scale if args.scale is not None else DEFAULT_SCALE[size], args.repeat,
                    args.settle_wait, args.after_delete, args.keep_homes)
        target = m["target"]
        met = target is None or m["overhead"] <= target
        missed |= not met
        verdict = "—" if target is None else f"≤ {target:.0%}: {'met' if met else 'MISSED'}"
        basis = ", ".join(f"{k} {v:,}" for k, v in sorted(m["identified"].items()))
        turn_by_turn = ", ".join(f"{p:+.0%}" for p in m["pairwise"])
        rows.append(f"| {m['corpus']} | {m['off']:.3f} s | {m['on']:.3f} s | {m['overhead']:+.1%} | {verdict} "
                    f"| {m['median_overhead']:+.1%} | {turn_by_turn} "
                    f"| {m['cpu_off']:.2f} / {m['cpu_on']:.2f} s | {m['cpu_overhead']:+.1%} "
                    f"({m['median_cpu_overhead']:+.1%}) "
                    f"| {m['analyser']:.2f} s ({1e6 * m['analyser'] / m['files']:.0f} µs; {m['analyser_share']:.1%}) "
                    f"| {m['peak_off'] >> 20} / {m['peak_on'] >> 20} MiB | {basis} | {m['others']:.0%} |")
        every += run_lines(size, m["every"])
        print(f"<!-- {size}: signatures loaded in {m['load']:.2f} s inside the clock -->", file=sys.stderr)
    print("| corpus | ingest, no analysis | ingest, formats on | overhead (fastest) | target | overhead (median) "
          "| turn by turn | CPU off / on (least) | CPU overhead (median) | analyser's own CPU (per file; / CPU off) "
          "| peak RSS off / on | basis of identification | others' CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    order = ("each in a home of its own, kept until the end, once the disk was idle" if args.keep_homes else
             f"each after its predecessor's tree was deleted, {args.after_delete:g} s had passed and the disk was idle")
    print(f"\nEvery run, in the order they ran ({order}):\n")
    print("| corpus | run | analysis | wall clock | CPU (ingest + validators) | of which kernel | of which validators "
          "| disk settled in | peak RSS | others' CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(every))
    if args.validated:
        v = measure_validated(args.validated, args.settle_wait)
        outcomes = ", ".join(f"{k} {n:,}" for k, n in sorted(v["validated"].items())) or "none"
        print(f"\nValidated delivery ({v['files']:,} files, {human_size(v['bytes'])}: {args.validated} of each of "
              f"{', '.join(VALIDATED_SETS)}), formats on: {v['seconds']:.2f} s, CPU {v['cpu']:.2f} s of which "
              f"validating processes {v['validators_cpu']:.2f} s; validated: {outcomes}; peak resident set of a "
              f"validating process {human_size(v['peak'])} (limit {human_size(v['limit'])} each); "
              f"others' CPU {v['others']:.0%}.")
    loading = measure_loading(args.repeat)
    print(f"\nSignatures: planned from FIDO's files in {loading['build']:.2f} s (once per signature install, then "
          f"cached); loaded from the cache in {loading['load']:.2f} s per process (interpreter start and imports "
          f"included), fastest of {args.repeat}.")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
