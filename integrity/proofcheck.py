"""Check a case's inclusion proof offline, with only the commission's public key:

    python -m integrity.proofcheck PROOF.json --public-key checkpoint.pub

A proof (`danvan proof CASE_ID`) holds the case's leaf (stream id, version, head hash), its audit path, and
the signed checkpoint whose Merkle root the path leads to. The check: the key's fingerprint is the one the
checkpoint names, the Ed25519 signature over the checkpoint verifies, and the leaf with its path makes the
signed root. Exit 0 and one line on success; exit 1 and the reason on stderr otherwise.

This module and `integrity.merkle` import only the standard library and `cryptography` (nothing of the
database or Temporal), so an inspectorate can run them without access to the system. The checkpoint's signed
bytes are defined here, once, for the writer (`integrity.checkpoints`) and for this check.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from integrity import merkle

CHECKPOINT_FORMAT = "danvan-checkpoint/1"
PROOF_FORMAT = "danvan-proof/1"
SIGNED_FIELDS = ("format", "seq", "time", "tree_size", "root", "prev", "leaves", "leaves_sha256", "key")


class ProofError(ValueError):
    """A proof or checkpoint that does not verify; the message says which check failed."""


def signed_bytes(checkpoint: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers: its fields but the signature, as sorted, compact JSON."""
    missing = [f for f in SIGNED_FIELDS if f not in checkpoint]
    if missing:
        raise ProofError(f"checkpoint: missing field(s) {', '.join(missing)}")
    body = {f: checkpoint[f] for f in SIGNED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, in hex: how a checkpoint names the key that signed it."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ProofError(f"public key: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ProofError("public key: not an Ed25519 key")
    return key


def verify_checkpoint(checkpoint: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    """Raise `ProofError` unless `checkpoint` is signed by `public_key`."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ProofError(f"checkpoint: format {checkpoint.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if checkpoint.get("key") != fingerprint(public_key):
        raise ProofError("checkpoint: signed by another key (fingerprints differ)")
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
        public_key.verify(signature, signed_bytes(checkpoint))
    except (KeyError, TypeError, ValueError, InvalidSignature):
        raise ProofError(f"checkpoint {checkpoint.get('seq')}: the signature does not verify") from None


def _hex(value: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise ProofError(f"{what}: not hexadecimal") from None
    if len(raw) != 32:
        raise ProofError(f"{what}: {len(raw)} bytes, expected 32")
    return raw


def check_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> str:
    """Verify an inclusion proof; return a one-line summary, or raise `ProofError` naming the failed check."""
    if proof.get("format") != PROOF_FORMAT:
        raise ProofError(f"proof: format {proof.get('format')!r}, expected {PROOF_FORMAT!r}")
    checkpoint = proof.get("checkpoint")
    leaf = proof.get("leaf")
    if not isinstance(checkpoint, dict) or not isinstance(leaf, dict):
        raise ProofError("proof: `checkpoint` and `leaf` must be objects")
    if proof.get("public_key_fingerprint") != fingerprint(public_key):
        raise ProofError("proof: made for another public key (fingerprints differ)")
    verify_checkpoint(checkpoint, public_key)
    stream_id, version, index = leaf.get("stream_id"), leaf.get("version"), proof.get("index")
    if not isinstance(stream_id, str) or not isinstance(version, int) or not isinstance(index, int):
        raise ProofError("proof: leaf.stream_id (text), leaf.version and index (integers) are required")
    path = proof.get("audit_path")
    if not isinstance(path, list):
        raise ProofError("proof: audit_path must be a list")
    head = _hex(leaf.get("head_hash"), "leaf.head_hash")
    nodes = [_hex(p, f"audit_path[{i}]") for i, p in enumerate(path)]
    size = checkpoint["tree_size"]
    computed = merkle.root_from_path(merkle.leaf_hash(merkle.leaf_bytes(stream_id, version, head)), index, size, nodes)
    if computed is None:
        raise ProofError(f"proof: the audit path does not fit leaf {index} of a tree of {size}")
    if computed.hex() != checkpoint["root"]:
        raise ProofError("proof: the leaf and its audit path do not lead to the signed root")
    return (f"ok: {stream_id} at version {version} (head {head.hex()}) is in checkpoint {checkpoint['seq']} "
            f"of {checkpoint['time']} ({size} streams), signed by key {checkpoint['key'][:16]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integrity.proofcheck",
        description="Check a case's inclusion proof against a signed checkpoint, offline.",
    )
    parser.add_argument("proof", help="the proof file written by `danvan proof CASE_ID --output FILE`")
    parser.add_argument("--public-key", required=True, metavar="PEM", help="the commission's public key (PEM)")
    args = parser.parse_args(argv)
    try:
        public_key = load_public_key(Path(args.public_key).read_bytes())
        proof = json.loads(Path(args.proof).read_text(encoding="utf-8"))
        if not isinstance(proof, dict):
            raise ProofError("proof: not a JSON object")
        print(check_proof(proof, public_key))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"proofcheck: {exc}", file=sys.stderr)
        return 1
    except ProofError as exc:
        print(f"proofcheck: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
