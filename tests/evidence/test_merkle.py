"""The Merkle tree's hashes and proofs against RFC 9162 written out recursively, for every size 1..130 and every pair."""

from __future__ import annotations

import hashlib

import pytest

from preservation import merkle

MAX = 130


def _ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _ref_mth(leaves[:k]) + _ref_mth(leaves[k:])).digest()


def _ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return _ref_path(m, leaves[:k]) + [_ref_mth(leaves[k:])]
    return _ref_path(m - k, leaves[k:]) + [_ref_mth(leaves[:k])]


def _ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [_ref_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return _ref_subproof(m, leaves[:k], whole) + [_ref_mth(leaves[k:])]
    return _ref_subproof(m - k, leaves[k:], False) + [_ref_mth(leaves[:k])]


LEAVES = [hashlib.sha256(str(i).encode()).digest() for i in range(MAX)]


def _store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect subtree, built the way the catalog builds it: leaf by leaf with completed_nodes."""
    nodes: dict[tuple[int, int], bytes] = {}
    for i, leaf in enumerate(leaves):
        lh = merkle.leaf_hash(leaf)
        nodes[(0, i)] = lh
        for level, index, h in merkle.completed_nodes(i, lh, lambda lv, ix: nodes[(lv, ix)]):
            nodes[(level, index)] = h
    return nodes


NODES = _store(LEAVES)


def lookup(level: int, index: int) -> bytes:
    return NODES[(level, index)]


def test_hashes_match_rfc_9162_empty_and_known_prefixes():
    assert merkle.root_hash(0, lookup).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()


def test_roots_match_the_reference_for_every_size():
    for n in range(1, MAX + 1):
        assert merkle.root_hash(n, lookup) == _ref_mth(LEAVES[:n]), n


def test_inclusion_proofs_match_the_reference_and_verify():
    for n in range(1, MAX + 1):
        root = _ref_mth(LEAVES[:n])
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, lookup)
            assert proof == _ref_path(m, LEAVES[:n]), (m, n)
            assert merkle.verify_inclusion(m, n, merkle.leaf_hash(LEAVES[m]), proof, root)
            other = LEAVES[(m + 1) % n] if n > 1 else b"x"
            assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(other), proof, root)


def test_consistency_proofs_match_the_reference_and_verify():
    roots = [_ref_mth(LEAVES[:n]) for n in range(MAX + 1)]
    for n in range(1, MAX + 1):
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, lookup)
            assert proof == _ref_subproof(m, LEAVES[:n], True), (m, n)
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if m < n:
                assert not merkle.verify_consistency(m, n, roots[m - 1] if m > 1 else b"\0" * 32, roots[n], proof)
                assert not merkle.verify_consistency(m, n, roots[m], roots[n - 1], proof)


def test_a_tampered_proof_fails():
    n, m = 100, 37
    root = merkle.root_hash(n, lookup)
    proof = merkle.inclusion_proof(m, n, lookup)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(LEAVES[m]), bad, root)
    assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(LEAVES[m]), proof[:-1], root)
    assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(LEAVES[m]), proof + [root], root)
    cproof = merkle.consistency_proof(60, n, lookup)
    assert not merkle.verify_consistency(60, n, merkle.root_hash(60, lookup), root, cproof[:-1])


def test_proofs_need_only_logarithmically_many_stored_hashes():
    n = 1_000_003
    asked = merkle.needed_nodes(lambda lk: merkle.inclusion_proof(0, n, lk))
    assert len(asked) <= 2 * n.bit_length()
    asked = merkle.needed_nodes(lambda lk: merkle.consistency_proof(999_999, n, lk))
    assert len(asked) <= 2 * n.bit_length()


@pytest.mark.parametrize("bad", [(-1, 5), (5, 5), (0, 0)])
def test_no_proof_for_a_leaf_outside_the_tree(bad):
    with pytest.raises(ValueError):
        merkle.inclusion_proof(*bad, lookup)
    assert not merkle.verify_inclusion(bad[0], bad[1], b"\0" * 32, [], b"\0" * 32)


def test_no_consistency_proof_backwards():
    with pytest.raises(ValueError):
        merkle.consistency_proof(6, 5, lookup)
    assert not merkle.verify_consistency(6, 5, b"", b"", [])


# The eight leaves and tree heads of the Certificate Transparency test data (RFC 6962 and RFC 9162 hash alike).
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_certificate_transparency_test_vectors():
    nodes = _store(CT_LEAVES)
    for n in range(1, 9):
        assert merkle.root_hash(n, lambda lv, ix: nodes[(lv, ix)]).hex() == CT_ROOTS[n - 1]
