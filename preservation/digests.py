"""The digest algorithms `preserve` computes, by the names manifests and the catalog use.

A module of its own, below both the storage adapters and the bag code, so
that checking an algorithm name loads nothing else (the bag writer and
validator need the names, not the adapters).
"""

from __future__ import annotations

from typing import Iterable

SUPPORTED_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
"""What the repository computes and records (policies, the catalog, nodes, the bags it writes)."""

BAGIT_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
"""What bag validation verifies: every algorithm that hashlib guarantees and that has one BagIt name.

RFC 8493 section 2.4 names a manifest's algorithm by lower-casing its name in
the IANA "Hash Function Textual Names" registry and dropping every character
that is not a letter or digit: SHA-224 is ``sha224``, SHA-384 ``sha384``.
SHA-3 and BLAKE2 are left out on purpose: they are not in that registry, and
tools disagree on their names (bagit-python writes ``sha3_256``, the RFC's
rule would give ``sha3256``), so a bag using them gets BAG102 (not verified),
never a guess.
"""


def check_algorithms(algorithms: Iterable[str], supported: tuple[str, ...] = SUPPORTED_ALGORITHMS) -> tuple[str, ...]:
    """Normalise a list of algorithm names; raises ValueError for names not in ``supported``."""
    out: list[str] = []
    for name in algorithms:
        norm = name.lower().replace("-", "")
        if norm not in supported:
            raise ValueError(f"unsupported digest algorithm {name!r} (use one of {', '.join(supported)})")
        if norm not in out:
            out.append(norm)
    if not out:
        raise ValueError("at least one digest algorithm is needed")
    return tuple(out)
