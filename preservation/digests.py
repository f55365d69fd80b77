"""The digest algorithms `preserve` computes, by the names manifests and the catalog use.

A module of its own, below both the storage adapters and the bag code, so
that checking an algorithm name loads nothing else (the bag writer and
validator need the names, not the adapters).
"""

from __future__ import annotations

from typing import Iterable

SUPPORTED_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Normalise a list of algorithm names; raises ValueError for unknown ones."""
    out: list[str] = []
    for name in algorithms:
        norm = name.lower().replace("-", "")
        if norm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {name!r} (use one of {', '.join(SUPPORTED_ALGORITHMS)})")
        if norm not in out:
            out.append(norm)
    if not out:
        raise ValueError("at least one digest algorithm is needed")
    return tuple(out)
