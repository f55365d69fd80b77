"""A Merkle tree over the event log, hashed as in RFC 9162 (Certificate Transparency v2), section 2.1.

Pure functions: no catalog, no files.  The leaves are the events in chain
order (leaf ``i`` is the event with ``seq == i + 1``) and a leaf's content is
the 32 bytes of the event's chain hash::

    leaf hash  = SHA-256(0x00 || event hash)
    node hash  = SHA-256(0x01 || left || right)

The catalog stores the hash of every *perfect* subtree (level ``L``, index
``i`` covers leaves ``[i * 2**L, (i + 1) * 2**L)``), so the root of any tree
size and every proof need only O(log n) stored hashes: :func:`inclusion_proof`
and :func:`consistency_proof` follow RFC 9162's recursive definitions
(2.1.3.1, 2.1.4.1) over a ``lookup(level, index)`` the caller provides, and
:func:`needed_nodes` says beforehand which hashes they will ask for, so that
the caller fetches them in one query.  The verifiers (2.1.3.2, 2.1.4.2) are
what ``tools/verify_proof.py`` repeats with the standard library alone.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Iterator

HASH_SIZE = 32
Lookup = Callable[[int, int], bytes]
"""``lookup(level, index)``: the hash of the perfect subtree at that place (level 0: a leaf hash)."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(lo: int, hi: int, lookup: Lookup) -> bytes:
    """MTH(D[lo:hi]) where ``lo`` is a multiple of a power of two at least ``hi - lo`` (true of every range RFC 9162's
    recursion visits): the perfect subtrees of the binary decomposition of ``hi - lo``, largest first, folded from the right."""
    parts: list[bytes] = []
    start = lo
    size = hi - lo
    while size:
        level = size.bit_length() - 1
        parts.append(lookup(level, start >> level))
        start += 1 << level
        size -= 1 << level
    h = parts[-1]
    for p in reversed(parts[:-1]):
        h = node_hash(p, h)
    return h


def root_hash(size: int, lookup: Lookup) -> bytes:
    """MTH(D[0:size]); the hash of the empty string for an empty tree."""
    if size == 0:
        return hashlib.sha256(b"").digest()
    return _range_hash(0, size, lookup)


def inclusion_proof(index: int, size: int, lookup: Lookup) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    # walk down from the root; the siblings are appended bottom-up, so collect and reverse
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(_range_hash(lo + k, hi, lookup))
            hi = lo + k
        else:
            path.append(_range_hash(lo, lo + k, lookup))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, lookup: Lookup) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 2.1.4.1 (empty when the sizes are equal or the old tree is empty)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    path: list[bytes] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                path.append(_range_hash(lo, hi, lookup))
            break
        k = _split(n)
        if m <= k:
            path.append(_range_hash(lo + k, hi, lookup))
            hi = lo + k
        else:
            path.append(_range_hash(lo, lo + k, lookup))
            lo, m, whole = lo + k, m - k, False
    path.reverse()
    return path


def needed_nodes(compute: Callable[[Lookup], object]) -> set[tuple[int, int]]:
    """The (level, index) places ``compute`` asks ``lookup`` for (the proofs' control flow never depends on hashes)."""
    asked: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        asked.add((level, index))
        return bytes(HASH_SIZE)

    compute(record)
    return asked


def completed_nodes(index: int, leaf: bytes, left_of: Callable[[int, int], bytes]) -> Iterator[tuple[int, int, bytes]]:
    """The perfect subtrees of level >= 1 that leaf ``index`` (its leaf hash ``leaf``) completes, bottom-up.

    ``left_of(level, index)`` gives the hash of a left sibling already stored.  Leaf ``i`` completes as many
    subtrees as ``i`` has trailing one bits: on average one.
    """
    h, level, i = leaf, 0, index
    while i & 1:
        h = node_hash(left_of(level, i - 1), h)
        level += 1
        i >>= 1
        yield level, i, h


def left_siblings(index: int) -> list[tuple[int, int]]:
    """The stored left siblings :func:`completed_nodes` needs for leaf ``index``."""
    out = []
    level, i = 0, index
    while i & 1:
        out.append((level, i - 1))
        level += 1
        i >>= 1
    return out


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ---------------------------------------------------------------

def verify_inclusion(index: int, size: int, leaf: bytes, proof: Iterable[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` whose root is ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` (root ``old_root``) is a prefix of the one of ``new_size``."""
    if old_size < 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
