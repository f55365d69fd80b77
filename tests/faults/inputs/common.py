"""What the input corpus builders share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

Builder = Callable[[Path, Path], Path]
"""``build(case_dir, sentinel) -> path to ingest``."""

ESCAPES = range(1, 9)  # how many "../" an escaping path climbs: enough to reach the sentinel from anywhere


def escaping_names(sentinel: Path, stem: str) -> list[str]:
    return [f"{'../' * k}{sentinel.name}/EVIL-{stem}-{k}" for k in ESCAPES]


def write_files(root: Path, files: dict[str | bytes, bytes]) -> Path:
    """Create ``files`` (relative path, str or raw bytes -> content) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = os.path.join(os.fsencode(root), os.fsencode(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root
