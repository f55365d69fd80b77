"""Corruption helpers: really flip, truncate, delete and add bytes on disk."""

from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path


def flip_bit(path: Path, offset: int | None = None, bit: int = 0, rng: random.Random | None = None) -> int:
    """Flip one bit of ``path`` in place; returns the byte offset changed."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path} is empty: nothing to flip")
    if offset is None:
        offset = (rng or random.Random(0)).randrange(size)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))
        f.flush()
        os.fsync(f.fileno())
    return offset


def truncate(path: Path, keep: int = 0) -> None:
    with open(path, "r+b") as f:
        f.truncate(keep)


def delete(path: Path) -> None:
    path.unlink()


def add_file(path: Path, data: bytes = b"intruder") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def replace_with_fifo(path: Path) -> None:
    """Put a named pipe (no writer) where ``path`` is: it reads as empty, or blocks a careless reader."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def replace_with_socket(path: Path) -> None:
    """Put a Unix socket where ``path`` is (bound from its directory: socket paths are short)."""
    path.unlink(missing_ok=True)
    with contextlib.chdir(path.parent), socket.socket(socket.AF_UNIX) as s:
        s.bind(path.name)


def replace_with_symlink(path: Path, target: Path) -> None:
    path.unlink(missing_ok=True)
    os.symlink(target, path)
