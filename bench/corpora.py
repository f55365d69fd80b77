"""Seeded, generated corpora of three shapes, shrunk by a scale factor.

========  ==========================  =======================================
size      full size                   what ``scale`` shrinks
========  ==========================  =======================================
``L``     4 files of 512 MiB          the size of each file (few big files)
``M``     2,000 files of 1 MiB        the number of files
``S``     100,000 files of 4 KiB      the number of files
========  ==========================  =======================================

A corpus is a delivery directory (``<root>/<name>/delivery``) laid out as a
publisher would send it: volumes of at most 1,000 files.  File contents are
SHAKE-128 streams of (seed, file, chunk), so every byte is reproducible, no
two files are alike and nothing compresses.  A JSON stamp beside the
directory records what was generated; a corpus whose stamp matches is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

BENCH_DIR = Path(__file__).resolve().parent
CORPORA_DIR = BENCH_DIR / "corpora"
OUT_DIR = BENCH_DIR / "out"

SEED = 8493
KIB = 1024
MIB = 1024 * KIB
CHUNK = 4 * MIB
FILES_PER_VOLUME = 1000


@dataclass(frozen=True)
class Shape:
    files: int
    file_size: int
    scales: str  # "files" or "size"


SHAPES = {
    "L": Shape(files=4, file_size=512 * MIB, scales="size"),
    "M": Shape(files=2000, file_size=1 * MIB, scales="files"),
    "S": Shape(files=100_000, file_size=4 * KIB, scales="files"),
}

# Chosen so that the whole `make bench` takes a few minutes on two cores;
# `--scale 1` gives the full sizes above.
DEFAULT_SCALE = {"L": 0.25, "M": 0.25, "S": 0.1}


@dataclass(frozen=True)
class Corpus:
    size: str
    scale: float
    files: int
    file_size: int
    seed: int
    path: str

    @property
    def delivery(self) -> Path:
        return Path(self.path)

    @property
    def total_bytes(self) -> int:
        return self.files * self.file_size

    @property
    def label(self) -> str:
        return f"{self.size} ({self.files:,} × {human_size(self.file_size)})"

    def file_paths(self) -> list[str]:
        return list(iter_files(self.delivery))


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def shape_for(size: str, scale: float) -> tuple[int, int]:
    """(files, file_size) of ``size`` shrunk by ``scale``; raises ValueError for an unknown size."""
    if size not in SHAPES:
        raise ValueError(f"unknown corpus size {size!r} (use {', '.join(SHAPES)})")
    if not 0 < scale <= 1:
        raise ValueError(f"the scale must be in (0, 1], not {scale}")
    shape = SHAPES[size]
    if shape.scales == "files":
        return max(1, round(shape.files * scale)), shape.file_size
    return shape.files, max(CHUNK, round(shape.file_size * scale / CHUNK) * CHUNK)


def _relative_path(index: int) -> str:
    return f"vol-{index // FILES_PER_VOLUME:04d}/item-{index:06d}.bin"


def _write_file(path: Path, seed: int, index: int, size: int) -> None:
    with open(path, "wb") as f:
        written, chunk_no = 0, 0
        while written < size:
            n = min(CHUNK, size - written)
            f.write(hashlib.shake_128(f"{seed}:{index}:{chunk_no}".encode()).digest(n))
            written += n
            chunk_no += 1


def ensure_corpus(size: str, scale: float, root: Path = CORPORA_DIR, seed: int = SEED) -> Corpus:
    """The corpus for (size, scale), generated unless an identical one is there already."""
    files, file_size = shape_for(size, scale)
    name = f"{size}-{files}x{file_size}-seed{seed}"
    base = root / name
    corpus = Corpus(size=size, scale=scale, files=files, file_size=file_size, seed=seed, path=str(base / "delivery"))
    stamp = root / f"{name}.json"
    wanted = {k: v for k, v in asdict(corpus).items() if k not in ("path", "scale")}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted and corpus.delivery.is_dir():
        return corpus
    stamp.unlink(missing_ok=True)
    shutil.rmtree(base, ignore_errors=True)
    partial = root / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for index in range(files):
        path = partial / "delivery" / _relative_path(index)
        if index % FILES_PER_VOLUME == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(path, seed, index, file_size)
    os.replace(partial, base)
    stamp.write_text(json.dumps(wanted, indent=1) + "\n")
    return corpus


def iter_files(directory: Path) -> Iterator[str]:
    """Every regular file under ``directory``, in sorted order."""
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def read_through(paths: list[str], buffer_size: int = CHUNK) -> int:
    """Read every file once (so each contender starts with the same warm page cache)."""
    buf = bytearray(buffer_size)
    total = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                total += n
    return total
