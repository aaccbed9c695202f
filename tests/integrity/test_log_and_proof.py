"""The checkpoint log (appended, signed, each line chained to the one before; a forged or edited line is
found) and a case's proof, checked offline in a subprocess that has only the public key, `cryptography` and
the two modules of the check."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore import EventStore
from integrity.checkpoints import CheckpointError, CheckpointLog, Leaf, public_key_file
from integrity.database import take_checkpoint
from integrity.proofcheck import fingerprint, signed_bytes
from tests.conftest import migrated_database, secret_env

from .support import edit_and_rechain, seed

ROOT = Path(__file__).resolve().parent.parent.parent


def leaves(n: int, bump: int = 0) -> list[Leaf]:
    return [Leaf(f"case-{i:03d}", i + 1 + bump, hashlib.sha256(f"{i}-{bump}".encode()).hexdigest()) for i in range(n)]


@pytest.fixture
def log(tmp_path: Path) -> CheckpointLog:
    return CheckpointLog(tmp_path / "checkpoints" / "checkpoints.log", tmp_path / "checkpoint.key")


def lines(log: CheckpointLog) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def rewrite(log: CheckpointLog, entries: list[dict[str, Any]]) -> None:
    log.path.write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in entries))


def test_each_checkpoint_is_appended_signed_and_chained(log: CheckpointLog) -> None:
    for bump in range(3):
        log.append(leaves(5, bump))
    log.append(leaves(5, 2))  # nothing moved: a new line, the same leaves file
    entries = log.read()
    assert [c.seq for c in entries] == [1, 2, 3, 4]
    assert entries[0].fields["prev"] == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.fields["prev"] == hashlib.sha256(before.line).hexdigest()
        assert after.time >= before.time
    assert entries[3].root == entries[2].root and entries[3].fields["leaves"] == entries[2].fields["leaves"]
    # Only the files of the last three checkpoints are kept (the first one's is gone).
    assert sorted(p.name for p in log.leaves_dir.glob("*.leaves")) == sorted(
        {c.fields["leaves"] for c in entries[1:]})
    assert log.leaves(entries[-1]) == leaves(5, 2)
    assert (log.key_file.stat().st_mode & 0o777) == 0o600
    assert public_key_file(log.key_file).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" not in log.path.read_bytes() and b"PRIVATE" not in public_key_file(log.key_file).read_bytes()


def test_an_edited_line_is_found(log: CheckpointLog) -> None:
    for bump in range(3):
        log.append(leaves(4, bump))
    entries = lines(log)
    entries[1]["tree_size"] = 3
    rewrite(log, entries)
    with pytest.raises(CheckpointError, match="line 2: checkpoint 2: the signature does not verify"):
        log.read()


def test_a_line_signed_by_another_key_is_found(log: CheckpointLog) -> None:
    log.append(leaves(4))
    log.append(leaves(4, 1))
    entries = lines(log)
    forger = Ed25519PrivateKey.generate()
    entries[1]["root"] = "ab" * 32
    entries[1]["signature"] = base64.b64encode(forger.sign(signed_bytes(entries[1]))).decode()
    rewrite(log, entries)  # naming the commission's key
    with pytest.raises(CheckpointError, match="line 2: checkpoint 2: the signature does not verify"):
        log.read()
    entries[1]["key"] = fingerprint(forger.public_key())  # or naming its own
    entries[1]["signature"] = base64.b64encode(forger.sign(signed_bytes(entries[1]))).decode()
    rewrite(log, entries)
    with pytest.raises(CheckpointError, match="line 2: checkpoint: signed by another key"):
        log.read()


def test_a_removed_or_reordered_line_breaks_the_chain(log: CheckpointLog) -> None:
    for bump in range(3):
        log.append(leaves(4, bump))
    entries = lines(log)
    rewrite(log, [entries[0], entries[2]])
    with pytest.raises(CheckpointError, match="line 2: not chained to the line before"):
        log.read()
    rewrite(log, [entries[1], entries[0], entries[2]])
    with pytest.raises(CheckpointError, match="line 1: not chained"):
        log.read()


def test_an_edited_leaves_file_is_found(log: CheckpointLog) -> None:
    checkpoint = log.append(leaves(4))
    path = log.leaves_dir / checkpoint.fields["leaves"]
    path.write_bytes(path.read_bytes().replace(b"1 ", b"9 ", 1))
    with pytest.raises(CheckpointError, match="changed after it was signed"):
        log.leaves(checkpoint)


def test_a_key_others_can_read_is_refused(log: CheckpointLog) -> None:
    log.append(leaves(1))
    log.key_file.chmod(0o644)
    with pytest.raises(CheckpointError, match="must be 0600"):
        log.append(leaves(1))


# -- the proof, offline ------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def proof_store(new_database: Callable[[], Awaitable[str]]) -> AsyncIterator[EventStore]:
    store = await EventStore.open(await migrated_database(new_database), max_size=2)
    for i in range(7):
        await seed(store, f"hồ-sơ-{i}", 1 + i % 3)
    yield store
    await store.close()


def offline_check(tmp_path: Path, proof: dict[str, Any], public_key: Path) -> subprocess.CompletedProcess[str]:
    """Run the check as an inspector would: a directory with only `integrity/{__init__,merkle,proofcheck}.py`,
    the proof and the public key; the interpreter told to add nothing from the environment. The child also
    asserts that nothing of the database, Temporal or the rest of the project was imported."""
    alone = tmp_path / "inspector"
    (alone / "integrity").mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py", "merkle.py", "proofcheck.py"):
        shutil.copy(ROOT / "integrity" / name, alone / "integrity" / name)
    (alone / "proof.json").write_text(json.dumps(proof, ensure_ascii=False), encoding="utf-8")
    shutil.copy(public_key, alone / "commission.pub")
    script = (
        "import runpy, sys\n"
        "sys.argv = ['proofcheck', 'proof.json', '--public-key', 'commission.pub']\n"
        "try:\n"
        "    runpy.run_module('integrity.proofcheck', run_name='__main__')\n"
        "finally:\n"
        "    bad = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                 {'asyncpg', 'temporalio', 'eventstore', 'danvan', 'pydantic', 'orjson', 'worker'})\n"
        "    assert not bad, bad\n"
        f"    assert sys.modules['integrity'].__file__.startswith({str(alone)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DANVAN", "DATABASE"))}
    return subprocess.run([sys.executable, "-E", "-s", "-c", script], cwd=alone, env=env, capture_output=True,
                          text=True, timeout=60)


async def test_a_proof_checks_offline_and_an_altered_one_does_not(
    proof_store: EventStore, log: CheckpointLog, tmp_path: Path
) -> None:
    await take_checkpoint(proof_store, log)
    proof = log.proof("hồ-sơ-4")
    assert proof["leaf"]["version"] == 2 and proof["checkpoint"]["tree_size"] == 7
    pub = public_key_file(log.key_file)
    ok = offline_check(tmp_path, proof, pub)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: hồ-sơ-4 at version 2")

    altered_head = json.loads(json.dumps(proof))
    altered_head["leaf"]["head_hash"] = hashlib.sha256(b"another head").hexdigest()
    failed = offline_check(tmp_path, altered_head, pub)
    assert failed.returncode == 1 and "do not lead to the signed root" in failed.stderr

    altered_version = json.loads(json.dumps(proof))
    altered_version["leaf"]["version"] = 1
    assert offline_check(tmp_path, altered_version, pub).returncode == 1

    altered_root = json.loads(json.dumps(proof))
    altered_root["checkpoint"]["root"] = altered_root["audit_path"][0]
    failed = offline_check(tmp_path, altered_root, pub)
    assert failed.returncode == 1 and "signature does not verify" in failed.stderr

    other_key = tmp_path / "other.pub"
    from integrity.checkpoints import public_pem

    other_key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    failed = offline_check(tmp_path, proof, other_key)
    assert failed.returncode == 1 and "another public key" in failed.stderr


def test_danvan_proof_writes_a_proof_and_refuses_a_case_that_no_longer_verifies(
    proof_store: EventStore, log: CheckpointLog, tmp_path: Path
) -> None:
    import asyncio

    url = proof_store.pool.dsn
    env = {**os.environ, "DATABASE_URL": url, "DANVAN_HOME": str(tmp_path / "home"),
           "DANVAN_CHECKPOINT_LOG": str(log.path), "DANVAN_CHECKPOINT_KEY": str(log.key_file),
           **secret_env()}

    def danvan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "danvan.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    assert danvan("checkpoint").returncode == 0
    out = tmp_path / "proof.json"
    made = danvan("proof", "hồ-sơ-2", "--output", str(out))
    assert made.returncode == 0, made.stderr
    assert "python -m integrity.proofcheck" in made.stdout
    checked = offline_check(tmp_path, json.loads(out.read_text(encoding="utf-8")), public_key_file(log.key_file))
    assert checked.returncode == 0, checked.stderr
    assert danvan("proof", "no-such-case").returncode == 1

    async def attack() -> None:
        attacker = await EventStore.open(url, max_size=1)
        try:
            await edit_and_rechain(attacker, "hồ-sơ-2", 1, {"n": 0})
        finally:
            await attacker.close()

    asyncio.run(attack())
    refused = danvan("proof", "hồ-sơ-2")
    assert refused.returncode == 1 and "does not verify" in refused.stderr
