"""One stream's signed head by binary search over the leaves file, and the log read again incrementally."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from integrity.checkpoints import CheckpointError, CheckpointLog, Leaf, sort_leaves
from integrity.lookup import SignedHeads, find_leaf


def test_every_leaf_is_found_and_no_other(tmp_path: Path) -> None:
    names = [f"{p}-{i}" for i in range(400) for p in ("ca", "hồ-sơ", "Đơn", "a b", 'q"u')][:1500]
    leaves = sort_leaves([Leaf(n, i + 1, hashlib.sha256(n.encode()).hexdigest()) for i, n in enumerate(names)])
    log = CheckpointLog(tmp_path / "log", tmp_path / "k.key")
    checkpoint = log.append(leaves)
    path = log.leaves_dir / checkpoint.fields["leaves"]
    for leaf in leaves:
        assert find_leaf(path, leaf.stream_id) == (leaf.version, leaf.head_hash)
    for absent in ["", "0", "ca-", "ca-10x", "zzz", "hồ-sơ", "\U0010ffff"]:
        assert find_leaf(path, absent) is None
    single = log.append(leaves[:1])
    assert find_leaf(log.leaves_dir / single.fields["leaves"], leaves[0].stream_id) == (leaves[0].version,
                                                                                       leaves[0].head_hash)
    empty = log.append([])
    assert find_leaf(log.leaves_dir / empty.fields["leaves"], "ca-1") is None


def test_the_heads_follow_new_checkpoints_and_an_edit_of_an_old_line_is_still_found(tmp_path: Path) -> None:
    log = CheckpointLog(tmp_path / "log", tmp_path / "k.key")
    heads = SignedHeads(log)
    assert heads.get("ca-1") is None  # no log yet
    log.append([Leaf("ca-1", 1, "11" * 32)])
    got = heads.get("ca-1")
    assert got is not None and (got.version, got.head_hash) == (1, "11" * 32) and got.label.startswith("checkpoint 1")
    log.append([Leaf("ca-1", 2, "22" * 32), Leaf("ca-2", 1, "33" * 32)])
    got = heads.get("ca-1")
    assert got is not None and got.version == 2 and got.label.startswith("checkpoint 2")
    assert heads.get("ca-3") is None
    lines = log.path.read_text().splitlines()
    first = json.loads(lines[0])
    first["tree_size"] = 5
    log.path.write_text(json.dumps(first, sort_keys=True, separators=(",", ":")) + "\n" + lines[1] + "\n")
    with pytest.raises(CheckpointError, match="line 1"):
        heads.get("ca-1")
