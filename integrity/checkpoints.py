"""Signed checkpoints of every stream head, kept outside PostgreSQL.

A checkpoint is one line of an append-only log (`DANVAN_CHECKPOINT_LOG`, JSON per line): its sequence number,
time, tree size, the Merkle root over every stream head (`integrity.merkle`), the SHA-256 of the previous line,
the name and SHA-256 of its leaves file, and the fingerprint of the key that signed it, with an Ed25519
signature over those fields (`integrity.proofcheck.signed_bytes`). The leaves file, beside the log, lists the
heads in leaf order, one a line: `VERSION HEAD_HASH "STREAM_ID"` (the id as a JSON string), so `verify` and a
proof can be made without the database's word for what the heads were.

Whoever can write to PostgreSQL can rewrite a chain and its head; they cannot sign. So each checkpoint is
taken only when the heads still agree with the previous one: a stream that vanished, went back, or whose
event at the checkpointed version has another hash since, stops the checkpoint (`TamperDetected`), instead of
the next signature covering the change. `danvan verify` then compares the database with the latest one.

The signing key is a file (`DANVAN_CHECKPOINT_KEY`, mode 0600, PEM PKCS#8), made once, never in the database;
its public key is written beside it (`.pub`) for inspectors and witnesses.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import merkle
from .proofcheck import (
    CHECKPOINT_FORMAT,
    PROOF_FORMAT,
    ProofError,
    fingerprint,
    load_public_key,
    signed_bytes,
    verify_checkpoint,
)

GENESIS = "0" * 64
LEAVES_KEPT = 3  # leaves files kept besides the latest checkpoint's (older ones are not needed by `verify`)


class CheckpointError(Exception):
    """The checkpoint log or its leaves cannot be trusted or read; the message says which and why."""


class TamperDetected(CheckpointError):
    """The database's heads contradict the previous signed checkpoint: no new checkpoint is signed."""

    def __init__(self, problems: list[tuple[str, int, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{s} at version {v}: {p}" for s, v, p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} stream(s) contradict the last checkpoint: {shown}{more}")


class Leaf(NamedTuple):
    """One stream head. A tuple: a checkpoint of 10^6 streams makes 10^6 of them."""

    stream_id: str
    version: int
    head_hash: str  # hex


@dataclass(frozen=True)
class Checkpoint:
    """One verified line of the log, and the line's own bytes (what the next line's `prev` hashes)."""

    fields: dict[str, Any]
    line: bytes

    @property
    def seq(self) -> int:
        return int(self.fields["seq"])

    @property
    def root(self) -> str:
        return str(self.fields["root"])

    @property
    def tree_size(self) -> int:
        return int(self.fields["tree_size"])

    @property
    def time(self) -> str:
        return str(self.fields["time"])


# -- the key -------------------------------------------------------------------------------------------


def public_key_file(key_file: Path) -> Path:
    return key_file.with_name(key_file.name.removesuffix(".key") + ".pub")


def load_or_create_key(key_file: Path) -> Ed25519PrivateKey:
    """The signing key, made on first use (mode 0600); its public key (PEM) is kept beside it."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(key_file)  # made by a concurrent start
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        raise CheckpointError(f"{key_file}: mode {mode:o}, must be 0600 (readable by its owner only)")
    try:
        loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except ValueError as exc:
        raise CheckpointError(f"{key_file}: not a PEM private key ({exc})") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise CheckpointError(f"{key_file}: not an Ed25519 key")
    export_public_key(loaded, public_key_file(key_file))
    return loaded


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def export_public_key(key: Ed25519PrivateKey, path: Path) -> None:
    pem = public_pem(key.public_key())
    if not path.exists() or path.read_bytes() != pem:
        path.write_bytes(pem)


# -- leaves ----------------------------------------------------------------------------------------------


def sort_leaves(heads: Sequence[Leaf]) -> list[Leaf]:
    """Leaf order: by stream id, code point by code point (which is also UTF-8 byte order)."""
    return sorted(heads, key=lambda leaf: leaf.stream_id)


def leaf_hashes(leaves: Sequence[Leaf]) -> list[bytes]:
    """`merkle.leaf_hash(merkle.leaf_bytes(...))` of every leaf, written out in one loop (a million of them)."""
    sha, pack, fromhex = hashlib.sha256, struct.Struct(">I").pack, bytes.fromhex
    out = []
    for stream_id, version, head in leaves:
        name = stream_id.encode()
        if len(head) != 64:
            raise ValueError(f"{stream_id}: a head hash is 32 bytes")
        out.append(sha(b"\x00" + pack(len(name)) + name + version.to_bytes(8, "big") + fromhex(head)).digest())
    return out


def leaves_text(leaves: Sequence[Leaf]) -> bytes:
    """One line a leaf: `VERSION HASH "STREAM_ID"`, the id a JSON string (UTF-8: a line break or a quote in
    an id is escaped, so a line is a leaf)."""
    dumps, escape = json.dumps, _JSON_ESCAPED.search
    return "".join(
        f"{v} {h} {dumps(s, ensure_ascii=False)}\n" if escape(s) else f'{v} {h} "{s}"\n' for s, v, h in leaves
    ).encode()


# What `json.dumps(..., ensure_ascii=False)` escapes in a string; an id without any is written as it is.
_JSON_ESCAPED = re.compile('[\x00-\x1f"\\\\]')


def parse_leaves(text: bytes, source: Path) -> list[Leaf]:
    out = []
    loads = json.loads
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, line in enumerate(lines, start=1):
        try:
            version, head, name = line.split(b" ", 2)
            if len(head) != 64 or name[:1] != b'"' or name[-1:] != b'"':
                raise ValueError
            # An id with nothing escaped (nearly all) is the text between the quotes.
            stream_id = name[1:-1].decode() if b"\\" not in name else loads(name)
            if not isinstance(stream_id, str):
                raise ValueError
            out.append(Leaf(stream_id, int(version), head.decode()))
        except ValueError:
            raise CheckpointError(f"{source}, line {n}: not `VERSION HASH \"STREAM_ID\"`") from None
    return out


# -- the log ---------------------------------------------------------------------------------------------


class CheckpointLog:
    """The append-only log of signed checkpoints and the leaves files beside it."""

    def __init__(self, path: Path, key_file: Path) -> None:
        self.path = path
        self.key_file = key_file
        self.leaves_dir = path.parent / (path.name + ".leaves")

    def public_key(self) -> Ed25519PublicKey:
        """The public key checkpoints are checked with: the exported `.pub` (what a witness would hold)."""
        pub = public_key_file(self.key_file)
        if not pub.exists():
            if not self.key_file.exists():
                raise CheckpointError(f"no public key at {pub}: no checkpoint has been taken yet")
            load_or_create_key(self.key_file)
        try:
            return load_public_key(pub.read_bytes())
        except ProofError as exc:
            raise CheckpointError(f"{pub}: {exc}") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (a `danvan checkpoint` by hand beside the regular one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self, known: Sequence[Checkpoint] = (), known_bytes: int = 0) -> list[Checkpoint]:
        """Every checkpoint, each checked: signed by the key, chained to the line before, numbered in order.
        Raises `CheckpointError` naming the first line that is not. `known` (with `known_bytes`, the length of
        the log they were read from) are lines verified before: when the log still begins with exactly those
        bytes, only the lines after them are verified."""
        if not self.path.exists():
            return []
        key = self.public_key()
        data = self.path.read_bytes()
        out: list[Checkpoint] = []
        start = 0
        if known and len(data) >= known_bytes and data[known_bytes - 1 : known_bytes] == b"\n":
            again = b"".join(c.line + b"\n" for c in known)
            if len(again) == known_bytes and data.startswith(again):
                out, start = list(known), known_bytes
        prev = hashlib.sha256(out[-1].line).hexdigest() if out else GENESIS
        first_line = data.count(b"\n", 0, start) + 1
        for n, line in enumerate(data[start:].split(b"\n"), start=first_line):
            if not line:
                continue
            try:
                fields = json.loads(line)
                if not isinstance(fields, dict):
                    raise ValueError("not an object")
                verify_checkpoint(fields, key)
            except (ValueError, ProofError) as exc:
                raise CheckpointError(f"{self.path}, line {n}: {exc}") from None
            if fields["prev"] != prev:
                raise CheckpointError(f"{self.path}, line {n}: not chained to the line before (prev differs)")
            if fields["seq"] != len(out) + 1:
                raise CheckpointError(f"{self.path}, line {n}: sequence {fields['seq']}, expected {len(out) + 1}")
            out.append(Checkpoint(fields, line))
            prev = hashlib.sha256(line).hexdigest()
        return out

    def latest(self) -> Checkpoint | None:
        entries = self.read()
        return entries[-1] if entries else None

    def leaves(self, checkpoint: Checkpoint, *, check_root: bool = False) -> list[Leaf]:
        """The leaves of `checkpoint`, checked against its signed SHA-256 (which makes them the leaves that
        were signed); with `check_root`, the Merkle root is rebuilt from them too."""
        path = self.leaves_dir / str(checkpoint.fields["leaves"])
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"checkpoint {checkpoint.seq}: its leaves cannot be read ({exc})") from None
        if hashlib.sha256(text).hexdigest() != checkpoint.fields["leaves_sha256"]:
            raise CheckpointError(f"checkpoint {checkpoint.seq}: {path} was changed after it was signed")
        leaves = parse_leaves(text, path)
        if len(leaves) != checkpoint.tree_size or (
                check_root and merkle.root(leaf_hashes(leaves)).hex() != checkpoint.root):
            raise CheckpointError(f"checkpoint {checkpoint.seq}: {path} does not make the signed root")
        return leaves

    def append(self, leaves: Sequence[Leaf], *, now: datetime | None = None) -> Checkpoint:
        """Sign and append a checkpoint of `leaves` (in leaf order). The leaves file is written (and synced)
        before the line that names it; a root equal to the last one reuses its file."""
        key = load_or_create_key(self.key_file)
        with self._locked():
            entries = self.read()
            last = entries[-1] if entries else None
            root = merkle.root(leaf_hashes(leaves)).hex()
            text = leaves_text(leaves)
            digest = hashlib.sha256(text).hexdigest()
            if last is not None and last.root == root and last.fields["leaves_sha256"] == digest:
                name = str(last.fields["leaves"])
            else:
                name = f"{len(entries) + 1:08d}-{root[:16]}.leaves"
                self.leaves_dir.mkdir(parents=True, exist_ok=True)
                _write_synced(self.leaves_dir / name, text)
            when = (now or datetime.now(UTC)).astimezone(UTC)
            fields: dict[str, Any] = {
                "format": CHECKPOINT_FORMAT,
                "seq": len(entries) + 1,
                "time": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                "tree_size": len(leaves),
                "root": root,
                "prev": hashlib.sha256(last.line).hexdigest() if last else GENESIS,
                "leaves": name,
                "leaves_sha256": digest,
                "key": fingerprint(key.public_key()),
            }
            fields["signature"] = base64.b64encode(key.sign(signed_bytes(fields))).decode()
            line = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
            with open(self.path, "ab") as f:
                f.write(line + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self._prune([*entries, Checkpoint(fields, line)])
            return Checkpoint(fields, line)

    def _prune(self, entries: Sequence[Checkpoint]) -> None:
        keep = {str(c.fields["leaves"]) for c in entries[-LEAVES_KEPT:]}
        for path in self.leaves_dir.glob("*.leaves"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def proof(self, stream_id: str) -> dict[str, Any]:
        """The inclusion proof of `stream_id`'s head in the latest checkpoint (`integrity.proofcheck`)."""
        checkpoint = self.latest()
        if checkpoint is None:
            raise CheckpointError(f"no checkpoint in {self.path}: run `danvan checkpoint` first")
        leaves = self.leaves(checkpoint)
        index = next((i for i, leaf in enumerate(leaves) if leaf.stream_id == stream_id), None)
        if index is None:
            raise CheckpointError(f"{stream_id} is not in checkpoint {checkpoint.seq} of {checkpoint.time}")
        root, path = merkle.root_and_path(leaf_hashes(leaves), index)
        if root.hex() != checkpoint.root:
            raise CheckpointError(f"checkpoint {checkpoint.seq}: its leaves do not make the signed root")
        leaf = leaves[index]
        return {
            "format": PROOF_FORMAT,
            "leaf": {"stream_id": leaf.stream_id, "version": leaf.version, "head_hash": leaf.head_hash},
            "index": index,
            "audit_path": [h.hex() for h in path],
            "checkpoint": checkpoint.fields,
            "public_key_fingerprint": fingerprint(self.public_key()),
        }


def _write_synced(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def compare_heads(previous: Sequence[Leaf], current: dict[str, tuple[int, str]]) -> tuple[
        list[tuple[str, int, str]], list[Leaf]]:
    """Compare the heads now with the previous checkpoint's leaves: the streams that contradict it (removed,
    gone back to an earlier version, or another hash at the same version), and the leaves of the streams that
    moved on, whose event at the checkpointed version must still carry the checkpointed hash."""
    problems: list[tuple[str, int, str]] = []
    moved: list[Leaf] = []
    for leaf in previous:
        head = current.get(leaf.stream_id)
        if head is None:
            problems.append((leaf.stream_id, 1, f"removed: the stream was at version {leaf.version} when signed"))
        elif head[0] < leaf.version:
            problems.append((leaf.stream_id, head[0] + 1,
                             f"truncated: the head went back from version {leaf.version} to {head[0]}"))
        elif head[0] == leaf.version:
            if head[1] != leaf.head_hash:
                problems.append((leaf.stream_id, leaf.version,
                                 f"rewritten: the hash of version {leaf.version} is not the signed one"))
        else:
            moved.append(leaf)
    return problems, moved
