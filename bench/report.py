"""The machine, the results table (``docs/benchmarks.md``) and the headline block."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from bench.corpora import BENCH_DIR
from bench.results import CatalogScale, Comparison, Skipped

MIB = 1024 * 1024
DISTURBED = 0.10  # share of the CPU taken by others above which a row is flagged


def machine() -> dict[str, str]:
    """Cores, memory, CPU, Python, OS, file system of the work area, and the date."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        fs = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", str(BENCH_DIR)], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    except OSError:
        fs = "unknown"
    return {
        "cores": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "ram": f"{ram / 1024**3:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "filesystem": fs,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f}"


def _mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"


def _s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _met(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**missed**")


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def comparison_table(items: list[Comparison], ours_label: str, reference_label: str) -> list[str]:
    normalised = any(c.normalised is not None for c in items)
    header = ["corpus", f"{ours_label} s", "files/s", "MB/s", "peak RSS",
              f"{reference_label} s", "files/s", "MB/s", "peak RSS", "ratio"]
    if normalised:
        header.append("normalised")
    header.append("target")
    rows = []
    for c in items:
        o, r = c.ours, c.reference
        row = [c.corpus, _s(o.seconds) + (f" ({o.detail})" if o.detail else ""), f"{o.files_per_s:,.0f}",
               _mb(o.bytes_per_s), _mib(o.peak_rss),
               _s(r.seconds) + (f" ({r.detail})" if r.detail else ""), f"{r.files_per_s:,.0f}", _mb(r.bytes_per_s),
               _mib(r.peak_rss), f"{c.ratio:.2f}"]
        if normalised:
            row.append(f"{c.normalised:.2f}" if c.normalised is not None else "—")
        target = "—" if c.target is None else f"≥ {c.target} {'normalised' if c.target_on == 'normalised' else ''}"
        row.append(f"{target.strip()}: {_met(c.met)}" if c.target is not None else "—")
        rows.append(row)
    notes = [f"- {c.corpus}: {c.note}" for c in items if c.note]
    notes += [f"- {c.corpus}: other processes used {c.disturbed:.0%} of the CPU during a measurement; "
              "treat the ratio with care" for c in items if c.disturbed >= DISTURBED]
    return _table(header, rows) + (["", *notes] if notes else [])


def catalog_table(items: list[CatalogScale]) -> list[str]:
    header = ["back end", "file rows", "packages", "replicas", "register s", "rows/s", "register peak RSS",
              "status s", "plan a day s", "planned", "query peak RSS", "targets"]
    rows = [[c.backend, f"{c.rows:,}", f"{c.packages:,}", f"{c.replicas:,}", _s(c.register_seconds),
             f"{c.rows / c.register_seconds:,.0f}", _mib(c.register_peak_rss), _s(c.status_seconds),
             _s(c.plan_seconds), f"{c.planned_replicas:,} copies, {c.planned_bytes / 1e12:.2f} TB",
             _mib(c.query_peak_rss), _met(c.met)] for c in items]
    rows_note = [f"- {c.backend}: planning timed with {c.plan_source}" for c in items]
    notes = [f"- {c.backend}: other processes used {c.others:.0%} of the CPU during a measurement"
             for c in items if c.others >= DISTURBED]
    return _table(header, rows) + ["", *rows_note, *notes]


def headline(comparisons: list[Comparison], catalog: list[CatalogScale]) -> list[str]:
    """The few numbers the README may quote, each with its corpus."""

    def find(benchmark: str, size: str) -> Comparison | None:
        return next((c for c in comparisons if c.benchmark == benchmark and c.corpus.startswith(size)), None)

    lines = []
    ingests = [c for c in (find("ingest", "L"), find("ingest", "M")) if c] or [
        c for c in comparisons if c.benchmark == "ingest"][:1]
    for ingest in ingests:
        lines.append(f"ingest on {ingest.corpus}: {ingest.normalised:.2f} of the hashing limit normalised "
                     f"(raw {ingest.ratio:.2f}), {_mb(ingest.ours.bytes_per_s)} MB/s with three verified copies")
    for floor in (c for c in comparisons if c.benchmark == "ingest floor" and c.corpus.startswith("S")):
        lines.append(f"ingest on {floor.corpus}: {floor.ratio:.2f} of the copy floor ({floor.ours.seconds:.1f} s "
                     f"against {floor.reference.seconds:.1f} s, {floor.ours.files_per_s:,.0f} files/s, "
                     "three verified copies)")
    for kind in ("bag create", "bag validate"):
        bag = find(kind, "S") or next((c for c in comparisons if c.benchmark == kind), None)
        if bag:
            lines.append(f"{kind} on {bag.corpus}: {bag.ratio:.1f}× bagit-python "
                         f"({bag.ours.files_per_s:,.0f} vs {bag.reference.files_per_s:,.0f} files/s)")
    audits = [c for c in comparisons if c.benchmark == "audit"]
    if audits:
        lines.append("audit of one copy: " + ", ".join(f"{c.ratio:.2f} of the sha256 limit on {c.corpus.split()[0]}"
                                                         for c in audits))
    for c in catalog:
        lines.append(f"status at {c.rows:,} file rows ({c.backend}): {c.status_seconds:.3f} s; "
                     f"planning a day of audits {c.plan_seconds:.3f} s")
    return lines


def render(
    *, command: str, info: dict[str, str], corpora: list[str], comparisons: list[Comparison],
    catalog: list[CatalogScale], skipped: list[Skipped], s3_output: str | None, profiles: list[str],
    validation_output: str | None = None, formats_output: str | None = None, extraction_output: str | None = None,
    search_output: str | None = None,
) -> str:
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` — here `" + command + "` — and overwritten by each run.",
        "Every contender runs in a child process of its own: times are measured inside it around the work",
        "only, peak memory is the largest peak resident set (VmHWM) of the child and of its worker processes,",
        "not added up. MB/s is 10⁶ bytes per second of corpus payload; a ratio is reference time / our time, so",
        "above 1 means faster than the reference. Each row says how much of the CPU other processes took",
        "while it was measured (`--quiet-wait` waits for a quiet machine first); `bench/out/results.json`",
        "also holds every child's whole CPU time. The hashing limit keeps the fastest of its strategies",
        "and repeats; our ingest and both sides of `bag create` and `bag validate` likewise run `--repeat`",
        "times (3) in fresh children (creates taking turns, each on a synced disk into a new directory) and keep",
        "the fastest, with the largest peak memory of all runs; our audit runs `--repeat`",
        "times in one child, as the limit does (every run's time is in `results.json`).",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Corpora",
        "",
        "Generated and seeded (`bench/corpora.py`), cached under `bench/corpora/`; nodes, staging and the",
        "SQLite catalog are under `bench/out/` on the same disk. Full sizes: L = 4 × 512 MiB,",
        "M = 2,000 × 1 MiB, S = 100,000 × 4 KiB; the default run shrinks them (L 0.25, M 0.25, S 0.1).",
        "Full size: `make bench BENCH_ARGS=\"--scale 1\"`.",
        "",
        *[f"- {c}" for c in corpora],
        "",
        "## Headline",
        "",
        "```",
        *headline(comparisons, catalog),
        "```",
        "",
    ]
    ingest = [c for c in comparisons if c.benchmark == "ingest"]
    if ingest:
        out += [
            "## Ingest against the hashing limit",
            "",
            "`preserve ingest`: check, bag with sha256 + sha512 computed while copying, register, write three",
            "copies on three filesystem nodes in one pass over the staging bag, 1 MiB windows at a time",
            "(kernel copies, fsync on), each window read back as it is written and before the file becomes",
            "visible: the first copy with both digests, the other two byte for byte against it; checked",
            "windows go to disk at once and leave the page cache 8 MiB later (docs/concepts.md, *How a new",
            "copy is verified*). The limit is hashlib sha256 + sha512 over the same files on all cores, the",
            "fastest of three strategies (`bench/hashlimit.py`). *Normalised* charges the limit the same",
            "hashing over 4× the bytes (the source once, each copy once); the target (≥ 0.8 normalised on L",
            "and M) is judged on that. On this kind of VM a page-cache page the guest has not used lately",
            "costs about 2 ms per MiB of kernel time and a reused one about 0.3 ms; ingest writes 4× the",
            "corpus (staging + three copies), the limit writes nothing. The detail column gives the CPU of",
            "the timed work: *user* is hashing and Python, *kernel* the copies, page cache and file system;",
            "the normalised limit is 4 × the limit's time on every core.",
            "",
            *comparison_table(ingest, "ingest", "limit"),
            "",
        ]
    floor = [c for c in comparisons if c.benchmark == "ingest floor"]
    if floor:
        out += [
            "## Ingest against the copy floor",
            "",
            "The same ingest against the plainest version of its work on the same corpus and disk, measured in",
            "the same run (`bench/bench_ingest.py`, `run_floor`): the delivery copied to a staging directory",
            "(`cp -r`), three `cp -r` of it, `sync`, and one sha256 + sha512 pass (hashlib) over the staged",
            "files. Ingest and floor take turns `--repeat` times; each side's fastest run is in the table and",
            "every turn in the note below it. The target (≥ 0.8 of the floor) is on S.",
            "",
            *comparison_table(floor, "ingest", "floor"),
            "",
        ]
    bag = [c for c in comparisons if c.benchmark.startswith("bag")]
    if bag:
        out += ["## Bag create and validate against bagit-python", "",
                "Measured by `bench/bench_bag.py`, both writers with sha256 + sha512.", ""]
        for kind in ("bag create", "bag validate"):
            rows = [c for c in bag if c.benchmark == kind]
            if rows:
                out += [f"### {kind}", "", *comparison_table(rows, "preserve", "bagit-python"), ""]
    audit = [c for c in comparisons if c.benchmark == "audit"]
    if audit:
        out += [
            "## Audit of one copy against the hashing limit",
            "",
            "`audit_replica` on one filesystem copy (a names-only listing merged with the catalog, every file",
            "re-read and compared, the event and the new state recorded) against hashlib of the policy's audit",
            "digest (sha256) over the same files on all cores. Target ≥ 0.8. Small files are checked by checker",
            "processes (`storage_adapters/fsverify.py`) while the auditing process reads the catalog and the",
            "listing and checks a batch itself whenever they are all busy; big files by threads. As the limit",
            "starts its process pool before its clock and keeps the best of several runs in one process, the",
            "checker processes are started before the clock (a scheduler worker starts them once) and the",
            "audit runs `--repeat` times in one child after one cold run (queries compiled, policy loaded;",
            "its time is `cold_seconds` in `results.json`), keeping the fastest, each after a read that warms",
            "the page cache as the limit's runs are. Peak memory is the larger of the auditing process",
            "and its largest checker process, as the limit's is the larger of its parent and a pool worker.",
            "",
            *comparison_table(audit, "audit", "limit"),
            "",
        ]
    cold_audit = [c for c in comparisons if c.benchmark.startswith("audit cold")]
    if cold_audit:
        out += [
            "## Cold audit against the device and the hashing limits",
            "",
            "`bench/bench_audit.py`: the page cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`, root",
            "only; a note says when it could not be) before each run of the audit and of the device's read limit,",
            "a parallel `cat` of the same files (`xargs -P N cat`, the fastest N of 4 and 16). The reference is",
            "the slower of that and the hashing limit above, both measured in this run; target ≥ 0.8. The node",
            "agent row is the audit's read (`fixity.check_replica`) through an agent in front of the same",
            "directory, files checked by the agent (`POST /v1/verify`). After each audit, the bytes of the",
            "audited files still in the page cache (mincore) and the growth of `Cached:` (/proc/meminfo) are",
            "read: both must stay under 64 MiB.",
            "",
            *comparison_table(cold_audit, "audit", "limit"),
            "",
        ]
    if catalog:
        out += [
            "## Catalog scale",
            "",
            "Packages of 10,000 files registered through `preservation.ingest.register` (file rows in",
            "`insert(PackageFile)` batches, three placed replicas, events and jobs, one transaction per package);",
            "then every copy verified with audits due evenly over the 90-day interval. `status` and planning",
            "are timed in a fresh process. Targets: status and planning < 2 s, peak memory < 500 MiB.",
            "",
            *catalog_table(catalog),
            "",
        ]
    if s3_output:
        out += ["## S3 throughput", "", "Output of `bench/bench_s3.py`:", "", "```", s3_output.strip(), "```", ""]
    if validation_output:
        out += ["## Format validation", "",
                "Output of `bench/bench_validation.py`: wall-clock time per validated file through two validating",
                "processes started before the clock, and the peak resident set of any validating process (each is",
                "bounded by its address-space limit). See docs/validation.md.", "",
                "```", validation_output.strip(), "```", ""]
    if formats_output:
        out += ["## Format identification at ingest", "",
                "Output of `bench/bench_formats.py`: ingest (bag, register, three verified copies) with no content",
                "analysis against ingest with the format analyser (identification of every file from its head and",
                "tail in the bagging pass, validation of what needs it), 3 runs each taking turns (off, on, on, off",
                "…), each after the previous run's tree was deleted and the disk settled; every run is listed.",
                "Targets (issue 17): at most +15 % on M, +25 % on S. The corpora are random bytes: every file is",
                "named by its extension only and none is validated; a delivery of validated files reports the peak",
                "memory of a validating process. See docs/formats.md.", "",
                formats_output.strip(), ""]
    if extraction_output:  # bench/bench_extraction.py's own section (its heading and table)
        out += [extraction_output.strip(), ""]
    if search_output:  # bench/bench_search.py's own section (its heading and table)
        out += [search_output.strip(), ""]
    if skipped:
        out += ["## Not measured", "", *[f"- {s.benchmark}: {s.reason}" for s in skipped], ""]
    if profiles:
        out += ["## Profiles", "", *[f"- `{p}`" for p in profiles], ""]
    return "\n".join(out)


def _sections(text: str) -> dict[str, str]:
    """A document's ``## `` sections by heading, each with its heading line."""
    sections: dict[str, str] = {}
    heading = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = ""
        if heading is not None:
            sections[heading] += line
    return sections


def carry_over(previous: str, rendered: str) -> str:
    """``rendered`` plus the sections of the ``previous`` document this run did not write.

    Benchmarks run on their own (KBART import, the Merkle tree, versions …)
    write their section into docs/benchmarks.md themselves; a later
    ``make bench`` keeps those sections, marked as from an earlier run, rather
    than dropping their figures.
    """
    ours = _sections(rendered)
    kept = [body for heading, body in _sections(previous).items() if heading not in ours]
    if not kept:
        return rendered
    note = "_Kept from an earlier run (a benchmark run on its own; not re-measured by this command)._\n\n"
    out = rendered.rstrip("\n") + "\n"
    for body in kept:
        head, _, rest = body.partition("\n")
        rest = rest.replace(note, "")
        out += "\n" + head + "\n\n" + note + rest.lstrip("\n").rstrip("\n") + "\n"
    return out
