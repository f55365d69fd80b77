"""Byte counts for people: shown ('2.7 MB') and read ('500G', '1.5TiB')."""

from __future__ import annotations

_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40, "PI": 2**50}


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def parse_size(text: str) -> int:
    """'500G', '2T', '1.5TiB', '1000000' → bytes (decimal units, binary with 'i'); raises ValueError."""
    t = text.strip().upper().removesuffix("B")
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * _UNITS[suffix])
    return int(t)
