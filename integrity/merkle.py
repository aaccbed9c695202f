"""The Merkle tree of a checkpoint, hashed as Certificate Transparency hashes its log (RFC 6962, RFC 9162):

    leaf hash  = SHA-256(0x00 || leaf)        node hash = SHA-256(0x01 || left || right)

The distinct prefixes make a leaf impossible to pass off as a node (a second-preimage attack on the tree). The
tree of n leaves splits at the largest power of two below n; built level by level, that is the tree where an
odd node at the end of a level moves up unchanged, which is how `root_and_path` builds it in O(n) hashes.

A leaf is one stream head, in bytes that cannot be read two ways:

    u32 length of the stream id in UTF-8 || the stream id || u64 version || 32 bytes of the head's hash

Standard library only: `integrity.proofcheck` runs with nothing else of the system.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()  # the root of a tree with no leaf (RFC 6962, section 2.1)


def leaf_bytes(stream_id: str, version: int, head_hash: bytes) -> bytes:
    if len(head_hash) != 32:
        raise ValueError(f"a head hash is 32 bytes, not {len(head_hash)}")
    name = stream_id.encode("utf-8")
    return struct.pack(">I", len(name)) + name + struct.pack(">Q", version) + head_hash


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_and_path(leaf_hashes: Sequence[bytes], index: int | None = None) -> tuple[bytes, list[bytes]]:
    """The root, and the audit path of leaf `index` (RFC 6962's PATH: the sibling nearest the leaf first),
    built level by level: only one level is held at a time (for 10^6 leaves, 32 MB of hashes and the list)."""
    if not leaf_hashes:
        return EMPTY_ROOT, []
    if index is not None and not 0 <= index < len(leaf_hashes):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaf_hashes)}")
    level: Sequence[bytes] = leaf_hashes
    path: list[bytes] = []
    sha, one = hashlib.sha256, b"\x01"
    while len(level) > 1:
        if index is not None:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        odd = len(level) % 2
        nxt = [sha(one + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if odd:  # the last node of an odd level moves up unchanged
            nxt.append(level[-1])
        level = nxt
    return level[0], path


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    return root_and_path(leaf_hashes)[0]


def root_from_path(leaf_h: bytes, index: int, tree_size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that leaf hash `leaf_h` at `index` and `path` make (RFC 9162, section 2.1.3.2); None when the
    path cannot belong to a tree of `tree_size` (too long or too short)."""
    if not 0 <= index < tree_size:
        return None
    fn, sn, r = index, tree_size - 1, leaf_h
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None
