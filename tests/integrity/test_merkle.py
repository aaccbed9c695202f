"""The checkpoint's Merkle tree against RFC 6962's own recursive definition, and its audit paths."""

from __future__ import annotations

import hashlib

import pytest

from integrity import merkle


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 6962, section 2.1, written as the RFC defines it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962, section 2.1.1: the sibling nearest the leaf first."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


def data(n: int) -> list[bytes]:
    return [merkle.leaf_bytes(f"case-{i}", i + 1, hashlib.sha256(str(i).encode()).digest()) for i in range(n)]


@pytest.mark.parametrize("n", [*range(0, 34), 100, 257])
def test_the_root_is_rfc_6962s(n: int) -> None:
    leaves = data(n)
    assert merkle.root([merkle.leaf_hash(x) for x in leaves]) == reference_root(leaves)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 31, 33])
def test_every_audit_path_is_rfc_6962s_and_leads_to_the_root(n: int) -> None:
    leaves = data(n)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    root = reference_root(leaves)
    for m in range(n):
        got, path = merkle.root_and_path(hashes, m)
        assert got == root
        assert path == reference_path(m, leaves)
        assert merkle.root_from_path(hashes[m], m, n, path) == root
        if n > 1:  # another index, another leaf, a path cut short: not the root (the size is signed)
            assert merkle.root_from_path(hashes[m], (m + 1) % n, n, path) != root
            assert merkle.root_from_path(merkle.leaf_hash(b"x"), m, n, path) != root
            assert merkle.root_from_path(hashes[m], m, n, path[:-1]) != root


def test_a_leaf_outside_the_tree_has_no_path() -> None:
    with pytest.raises(IndexError):
        merkle.root_and_path([merkle.leaf_hash(b"a")], 1)


def test_a_leaf_cannot_pass_for_a_node() -> None:
    """The two prefixes: the node over two leaves is not the leaf hash of their concatenation."""
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.node_hash(a, b) != merkle.leaf_hash(a + b)


def test_a_leaf_reads_one_way_only() -> None:
    h = bytes(32)
    assert merkle.leaf_bytes("ab", 1, h) != merkle.leaf_bytes("a", 1, h)
    assert merkle.leaf_bytes("Nguyễn", 1, h).startswith(len("Nguyễn".encode()).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.leaf_bytes("a", 1, b"short")
