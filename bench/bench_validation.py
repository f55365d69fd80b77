"""Format validation: what each validated file costs, and how much memory a validating process needs.

    python -m bench.bench_validation [--files N] [--workers W] [--repeat R]

Generates (seeded, under ``bench/out/validation``) files of the kinds ingest
validates, small and large: PDFs of 3 pages (about 2 KB) and of 1 MiB (an
incompressible image on each of 8 pages), JATS articles of 8 KiB and of
1 MiB, PNGs of 64 KiB and 1 MiB, EPUBs of 40 KiB.  Each set goes through one
:class:`~preservation.formats.validation.Validator` (``--workers``
processes, started and ready before the clock, as an ingest worker keeps
them), fastest of ``--repeat`` runs.  Reported per set: wall-clock time per
file, files/s, MB/s, the peak resident set of a validating process (VmHWM,
the largest over all of them) and its resident set once it has loaded its
libraries.  Starting a process is timed on its own.

Not a unit test: nothing here asserts a time.  No file of the ingest
benchmark's corpora (random bytes) is validated at all: identification
finds no format there, and ``kind_for`` gives no check.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
import sys
import time
import zipfile
from pathlib import Path

import pikepdf
from PIL import Image

from bench.corpora import OUT_DIR, human_size
from preservation.formats.validation import Validator

SEED = 17
ROOT = OUT_DIR / "validation"
MEMORY_LIMIT = 1 << 30
TIME_LIMIT = 30.0


def _noise(n: int, salt: str) -> bytes:
    return hashlib.shake_128(f"{SEED}:{salt}".encode()).digest(n)


def _pdf(path: Path, pages: int, image_bytes: int, salt: str) -> None:
    pdf = pikepdf.new()
    for number in range(pages):
        pdf.add_blank_page()
        page = pdf.pages[-1]
        text = " ".join(f"({salt} page {number} line {line}) Tj T*" for line in range(40))
        page.Contents = pdf.make_stream(f"BT /F1 10 Tf 72 760 Td 12 TL {text} ET".encode())
        if image_bytes:
            side = int((image_bytes // pages) ** 0.5)
            image = pikepdf.Stream(pdf, _noise(side * side, f"{salt}:{number}"))
            image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
            image.Width = image.Height = side
            image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
            page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    pdf.save(path)


def _jats(path: Path, size: int, salt: str) -> None:
    paragraph = "<p>" + " ".join(f"word{n}" for n in range(60)) + "</p>\n"
    body = paragraph * max(1, size // len(paragraph))
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<article article-type="research-article"><front>
<journal-meta><journal-title-group><journal-title>Bench {salt}</journal-title></journal-title-group>
<issn>0378-5955</issn></journal-meta>
<article-meta><article-id pub-id-type="doi">10.1234/bench.{_noise(8, salt).hex()}</article-id>
<pub-date><year>2024</year></pub-date><volume>1</volume><issue>2</issue></article-meta></front>
<body>{body}</body></article>
""", encoding="utf-8")


def _png(path: Path, size: int, salt: str) -> None:
    side = int((size / 3) ** 0.5)
    Image.frombytes("RGB", (side, side), _noise(side * side * 3, salt)).save(path, format="PNG", compress_level=1)


def _epub(path: Path, salt: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                         '<rootfiles><rootfile full-path="content.opf"/></rootfiles></container>',
                         compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("content.opf", "<package/>", compress_type=zipfile.ZIP_DEFLATED)
        for chapter in range(10):
            archive.writestr(f"c{chapter}.xhtml", _noise(4000, f"{salt}:{chapter}").hex(),
                             compress_type=zipfile.ZIP_DEFLATED)
    path.write_bytes(buffer.getvalue())


SETS = {
    # name: (kind, builder(path, salt))
    "pdf 3 pages": ("pdf", lambda p, s: _pdf(p, 3, 0, s)),
    "pdf 1 MiB": ("pdf", lambda p, s: _pdf(p, 8, 1 << 20, s)),
    "jats 8 KiB": ("xml", lambda p, s: _jats(p, 8 << 10, s)),
    "jats 1 MiB": ("xml", lambda p, s: _jats(p, 1 << 20, s)),
    "png 64 KiB": ("image", lambda p, s: _png(p, 64 << 10, s)),
    "png 1 MiB": ("image", lambda p, s: _png(p, 1 << 20, s)),
    "epub 40 KiB": ("epub", lambda p, s: _epub(p, s)),
}


def build(name: str, files: int) -> tuple[str, list[Path]]:
    kind, builder = SETS[name]
    directory = ROOT / name.replace(" ", "-")
    stamp = directory / f".built-{files}"
    paths = [directory / f"{n:05d}.{kind}" for n in range(files)]
    if not stamp.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        rng = random.Random(SEED)
        for path in paths:
            builder(path, f"{name}:{path.name}:{rng.random()}")
        stamp.touch()
    return kind, paths


def measure(name: str, files: int, workers: int, repeat: int) -> dict:
    kind, paths = build(name, files)
    total_bytes = sum(p.stat().st_size for p in paths)
    with Validator(TIME_LIMIT, MEMORY_LIMIT, workers=workers) as validator:
        # start and warm every process before the clock: an ingest worker keeps its processes
        list(validator.validate_many((n, paths[n % len(paths)], kind) for n in range(workers * 2)))
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            outcomes = [v.outcome for _, v in validator.validate_many((n, p, kind) for n, p in enumerate(paths))]
            runs.append(time.perf_counter() - start)
            if set(outcomes) != {"valid"}:
                raise RuntimeError(f"{name}: outcomes {sorted(set(outcomes))}")
        stats = validator.stats()
    seconds = min(runs)
    return {"set": name, "files": files, "bytes": total_bytes, "seconds": seconds,
            "ms_per_file": 1000 * seconds / files, "files_per_s": files / seconds,
            "mb_per_s": total_bytes / seconds / 1e6, "peak_rss": stats["peak_rss_bytes"],
            "idle_rss": stats["idle_rss_bytes"]}


def startup(workers: int, sample: Path) -> float:
    """Seconds from a new Validator to the first answer of each of its processes."""
    start = time.perf_counter()
    with Validator(TIME_LIMIT, MEMORY_LIMIT, workers=workers) as validator:
        list(validator.validate_many((n, sample, "pdf") for n in range(workers)))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_validation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="files per set (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="validating processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per set, the fastest kept (default 3)")
    parser.add_argument("--only", default=",".join(SETS), help="sets to run, comma-separated")
    args = parser.parse_args(argv)
    if args.files < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--files, --workers and --repeat must be at least 1")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        parser.error(f"unknown sets {unknown}; choose from {', '.join(SETS)}")
    print(f"{args.files} files per set, {args.workers} validating processes, fastest of {args.repeat}; "
          f"limits {TIME_LIMIT:g} s and {human_size(MEMORY_LIMIT)} per process")
    print(f"{'set':<14}{'size':>10}{'ms/file':>10}{'files/s':>10}{'MB/s':>8}{'peak RSS':>11}{'idle RSS':>11}")
    for name in names:
        r = measure(name, args.files, args.workers, args.repeat)
        print(f"{name:<14}{human_size(r['bytes'] // r['files']):>10}{r['ms_per_file']:>10.2f}"
              f"{r['files_per_s']:>10.0f}{r['mb_per_s']:>8.1f}{human_size(r['peak_rss']):>11}"
              f"{human_size(r['idle_rss']):>11}")
    sample = ROOT / "startup.pdf"
    _pdf(sample, 1, 0, "startup")
    print(f"starting {args.workers} processes and a first answer from each: "
          f"{startup(args.workers, sample):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
