"""Run the benchmark suite and write ``docs/benchmarks.md``.

    python -m bench.run [--size S,M,L] [--scale F] [--only NAME,...] [--rows N] [--profile]

Benchmarks: ingest, bag, audit, catalog, s3, validation, formats, extraction, search, streaming.  Defaults finish in a few
minutes on two cores; ``--scale 1`` runs the full corpora and ``--rows``
sets the catalog's file rows (1,000,000 by default; `--rows 10000000` for the full figure).
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import shutil
import sys
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path
from typing import Callable

from bench import bench_audit, bench_catalog, bench_ingest
from bench.corpora import DEFAULT_SCALE, OUT_DIR, SHAPES, Corpus, ensure_corpus, human_size
from bench.measure import QUIET, REPEAT, REPO_ROOT, ContenderFailed, machine_busy
from bench.report import carry_over, headline, machine, render
from bench.results import CatalogScale, Comparison, Skipped

BENCHMARKS = ("ingest", "bag", "audit", "catalog", "s3", "validation", "formats", "extraction", "search", "streaming")
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
S3_MIB = 256


def _csv(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=_csv(tuple(SHAPES)), default=["L", "M", "S"],
                        help="corpora to run (default L,M,S)")
    parser.add_argument("--scale", type=float, default=None,
                        help="shrink every corpus by this factor, 1 = full size "
                             f"(default per size: {', '.join(f'{k} {v}' for k, v in DEFAULT_SCALE.items())})")
    parser.add_argument("--only", type=_csv(BENCHMARKS), default=list(BENCHMARKS),
                        help=f"benchmarks to run (default all: {','.join(BENCHMARKS)})")
    parser.add_argument("--rows", type=int, default=bench_catalog.DEFAULT_ROWS,
                        help="file rows for the catalog benchmark (default 1,000,000; the issue's figure is 10,000,000)")
    parser.add_argument("--search-items", type=int, default=1_000_000,
                        help="items for the search benchmark (default 1,000,000)")
    parser.add_argument("--s3-mib", type=int, default=S3_MIB, help=f"size of the S3 test file (default {S3_MIB})")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one ingest of M and S (reports under bench/out/)")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each measurement wait up to this long for other processes to leave the "
                             "cores idle (default 0: measure at once; the load is reported either way)")
    parser.add_argument("--repeat", type=int, default=REPEAT.times, metavar="N",
                        help=f"run our ingest and audit N times and keep the fastest, as the hashing limit "
                             f"keeps its fastest (default {REPEAT.times})")
    parser.add_argument("--output", type=Path, default=DOCS, help="where the table goes (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.scale is not None and not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


class Suite:
    """Collects results; one failing benchmark is reported and the others still run."""

    def __init__(self) -> None:
        self.comparisons: list[Comparison] = []
        self.catalog: list[CatalogScale] = []
        self.skipped: list[Skipped] = []
        self.s3_output: str | None = None
        self.validation_output: str | None = None
        self.formats_output: str | None = None
        self.extraction_output: str | None = None
        self.search_output: str | None = None
        self.streaming_output: str | None = None
        self.profiles: list[str] = []

    def attempt(self, name: str, work: Callable[[], None]) -> None:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            work()
        except (ContenderFailed, ImportError, OSError, RuntimeError, ValueError) as e:
            traceback.print_exc()
            self.skipped.append(Skipped(name, f"failed: {e}"))
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)

    def add(self, c: Comparison) -> None:
        self.comparisons.append(c)
        normalised = f", normalised {c.normalised:.2f}" if c.normalised is not None else ""
        print(f"   {c.benchmark} {c.corpus}: ours {c.ours.seconds:.3f} s, {c.reference.name} "
              f"{c.reference.seconds:.3f} s, ratio {c.ratio:.2f}{normalised}", flush=True)


def _bag(suite: Suite, corpus: Corpus) -> None:
    from bench import bench_bag

    for c in bench_bag.compare(corpus):
        suite.add(c)


def _s3(suite: Suite, size_mib: int) -> None:
    from bench import bench_s3

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = bench_s3.main(["--size-mib", str(size_mib), "--dir", str(OUT_DIR)])
    print(buffer.getvalue(), end="")
    if code != 0:
        suite.skipped.append(Skipped("s3", f"bench_s3 exited {code}"))
    else:
        suite.s3_output = buffer.getvalue()


def _validation(suite: Suite) -> None:
    from bench import bench_validation

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        bench_validation.main([])
    print(buffer.getvalue(), end="")
    suite.validation_output = buffer.getvalue()


def _formats(suite: Suite, sizes: list[str], scale: float | None) -> None:
    from bench import bench_formats

    buffer = io.StringIO()
    argv = ["--size", ",".join(s for s in sizes if s in bench_formats.TARGETS)]
    if scale is not None:
        argv += ["--scale", str(scale)]
    with redirect_stdout(buffer):
        bench_formats.main(argv)
    print(buffer.getvalue(), end="")
    suite.formats_output = buffer.getvalue()


def _extraction(suite: Suite, scale: float | None) -> None:
    from bench import bench_extraction

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        bench_extraction.main(["--scale", str(scale if scale is not None else bench_extraction.DEFAULT_SCALE)])
    print(buffer.getvalue(), end="")
    suite.extraction_output = bench_extraction.read_section()


def _search(suite: Suite, items: int) -> None:
    from bench import bench_search

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        bench_search.main(["--items", str(items), "--no-docs"])
    print(buffer.getvalue(), end="")
    suite.search_output = bench_search.read_section()


def _streaming(suite: Suite, scale: float | None, repeat: int) -> None:
    from bench import bench_streaming

    buffer = io.StringIO()
    # at full size 4 distinct files of 1 GiB, two of the 8 downloads each: 8 would need 32 GiB while ingested
    full = ["--file-mib", "1024", "--files", "4", "--downloads", "8", "--ingest-scale", "1"]
    argv = ["--repeat", str(repeat)] + (full if scale == 1 else [])
    with redirect_stdout(buffer):
        bench_streaming.main(argv)
    print(buffer.getvalue(), end="")
    suite.streaming_output = bench_streaming.read_section()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python -m bench.run", shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    QUIET.max_wait = args.quiet_wait
    REPEAT.times = max(1, args.repeat)
    print(f"other processes are using {machine_busy():.0%} of the cores", flush=True)
    shutil.rmtree(OUT_DIR / "homes", ignore_errors=True)
    suite = Suite()
    corpora: dict[str, Corpus] = {}
    if set(args.only) & {"ingest", "bag", "audit"}:
        for size in args.size:
            scale = args.scale if args.scale is not None else DEFAULT_SCALE[size]
            start = time.perf_counter()
            corpora[size] = ensure_corpus(size, scale)
            print(f"corpus {corpora[size].label}: {human_size(corpora[size].total_bytes)} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    for size, corpus in corpora.items():
        if "ingest" in args.only:
            suite.attempt(f"ingest {size}", lambda: [suite.add(c) for c in bench_ingest.compare(corpus)])
        if "bag" in args.only:
            suite.attempt(f"bag {size}", lambda: _bag(suite, corpus))
        if "audit" in args.only:
            suite.attempt(f"audit {size}", lambda: [suite.add(c) for c in bench_audit.compare(corpus)])
        if args.profile and size in ("M", "S"):
            suite.attempt(f"profile ingest {size}",
                          lambda: suite.profiles.append(str(bench_ingest.profile(corpus).relative_to(REPO_ROOT))))
    if "catalog" in args.only:
        def catalog() -> None:
            for result in bench_catalog.compare(args.rows):
                if isinstance(result, Skipped):
                    suite.skipped.append(result)
                else:
                    suite.catalog.append(result)
                    print(f"   {result.backend}: {result.rows:,} rows registered in {result.register_seconds:.1f} s, "
                          f"status {result.status_seconds:.3f} s, plan {result.plan_seconds:.3f} s", flush=True)
        suite.attempt("catalog scale", catalog)
    if "s3" in args.only:
        suite.attempt("s3", lambda: _s3(suite, args.s3_mib))
    if "validation" in args.only:
        suite.attempt("validation", lambda: _validation(suite))
    if "formats" in args.only:
        suite.attempt("formats", lambda: _formats(suite, args.size, args.scale))
    if "extraction" in args.only:
        suite.attempt("extraction", lambda: _extraction(suite, args.scale))
    if "search" in args.only:
        suite.attempt("search", lambda: _search(suite, args.search_items))
    if "streaming" in args.only:
        suite.attempt("streaming", lambda: _streaming(suite, args.scale, args.repeat))
    shutil.rmtree(OUT_DIR / "homes", ignore_errors=True)

    info = machine()
    text = render(command=command, info=info,
                  corpora=[f"{c.label}: {human_size(c.total_bytes)}" for c in corpora.values()],
                  comparisons=suite.comparisons, catalog=suite.catalog, skipped=suite.skipped,
                  s3_output=suite.s3_output, profiles=suite.profiles,
                  validation_output=suite.validation_output, formats_output=suite.formats_output,
                  extraction_output=suite.extraction_output, search_output=suite.search_output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    previous = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(carry_over(previous, text), encoding="utf-8")
    if suite.streaming_output:  # bench/bench_streaming.py's own section, in place of an earlier run's
        from bench import bench_streaming

        bench_streaming.write_docs(suite.streaming_output, args.output)
    (OUT_DIR / "results.json").write_text(json.dumps({
        "command": command, "machine": info,
        "comparisons": [c.to_dict() for c in suite.comparisons],
        "catalog": [c.to_dict() for c in suite.catalog],
        "skipped": [s.to_dict() for s in suite.skipped],
    }, indent=1), encoding="utf-8")
    print(f"\nwrote {args.output}\n\nheadline:")
    for line in headline(suite.comparisons, suite.catalog):
        print(f"  {line}")
    for s in suite.skipped:
        print(f"  not measured: {s.benchmark}: {s.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
