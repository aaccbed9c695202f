"""A database writer's attacks on a real PostgreSQL, each one invisible to the hash chains alone and each
named by `verify` against the latest signed checkpoint; untouched streams pass. The checkpointer refuses to
sign over them too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio

from eventstore import EventStore, NewEvent
from integrity.checkpoints import CheckpointLog, TamperDetected
from integrity.database import take_checkpoint, verify_against_checkpoint
from tests.conftest import migrated_database, secret_env

from .support import edit_and_rechain, remove_stream, seed, truncate_and_rewind

ROOT = Path(__file__).resolve().parent.parent.parent
STREAMS = ["ca-a", "ca-b", "ca-c", "ca-d", "ca-đ", "ca-e"]


@pytest_asyncio.fixture
async def tamper_db(new_database: Callable[[], Awaitable[str]]) -> AsyncIterator[tuple[str, EventStore]]:
    url = await migrated_database(new_database)
    store = await EventStore.open(url, max_size=4)
    for stream in STREAMS:
        await seed(store, stream, 6)
    yield url, store
    await store.close()


@pytest.fixture
def log(tmp_path: Path) -> CheckpointLog:
    return CheckpointLog(tmp_path / "checkpoints" / "checkpoints.log", tmp_path / "checkpoint.key")


async def test_untouched_streams_pass_and_the_chains_alone_miss_every_attack(
    tamper_db: tuple[str, EventStore], log: CheckpointLog
) -> None:
    _, store = tamper_db
    await take_checkpoint(store, log)
    report, checkpoint = await verify_against_checkpoint(store, log)
    assert report.ok and report.streams_checked == len(STREAMS) and report.events_checked == 36
    assert checkpoint is not None and checkpoint.tree_size == len(STREAMS)
    await truncate_and_rewind(store, "ca-a", 4)
    await edit_and_rechain(store, "ca-b", 2, {"n": 2, "ghi chú": "đã sửa"})
    await remove_stream(store, "ca-c")
    assert (await store.verify()).ok  # what `verify` said before checkpoints: every chain is intact


async def test_each_attack_is_named_and_every_broken_stream_reported(
    tamper_db: tuple[str, EventStore], log: CheckpointLog
) -> None:
    _, store = tamper_db
    await take_checkpoint(store, log)
    await seed(store, "ca-new", 2)  # a stream that came after the checkpoint: not judged by it
    await truncate_and_rewind(store, "ca-a", 4)
    await edit_and_rechain(store, "ca-b", 2, {"n": 2, "ghi chú": "đã sửa"})
    await remove_stream(store, "ca-c")
    await store.pool.execute(  # and a plain edit, which the chain alone finds
        "UPDATE events SET data = '{\"n\": 99}' WHERE stream_id = 'ca-d' AND version = 3")
    report, _ = await verify_against_checkpoint(store, log)
    assert not report.ok
    found = {b.stream_id: (b.kind, b.first_bad_version, b.problem) for b in report.broken}
    assert set(found) == {"ca-a", "ca-b", "ca-c", "ca-d"}
    assert found["ca-a"][:2] == ("truncated", 5) and "truncated" in found["ca-a"][2]
    assert found["ca-b"][:2] == ("rewritten", 6) and "edited and the chain recomputed" in found["ca-b"][2]
    assert found["ca-c"][:2] == ("removed", 1) and "removed" in found["ca-c"][2]
    assert found["ca-d"][:2] == ("edited", 3)
    assert report.first_bad_stream == "ca-a"
    one, _ = await verify_against_checkpoint(store, log, "ca-c")
    assert not one.ok and one.broken[0].kind == "removed"
    alone, _ = await verify_against_checkpoint(store, log, "ca-e")
    assert alone.ok and alone.events_checked == 6


async def test_the_checkpointer_refuses_to_sign_over_an_attack(
    tamper_db: tuple[str, EventStore], log: CheckpointLog
) -> None:
    _, store = tamper_db
    first = (await take_checkpoint(store, log)).checkpoint
    await seed(store, "ca-new", 1)
    for v in range(6, 8):  # ca-e moves on honestly
        await store.append("ca-e", v, [NewEvent(event_id=uuid.uuid4(), type="Ghi nhận",
                                                occurred_at=datetime.now().astimezone(), data={"v": v})])
    second = (await take_checkpoint(store, log)).checkpoint
    assert second.seq == 2 and second.tree_size == len(STREAMS) + 1 and second.root != first.root
    await edit_and_rechain(store, "ca-e", 3, {"n": 3, "ghi chú": "đã sửa"})  # and then moves on
    await store.append("ca-e", 8, [NewEvent(event_id=uuid.uuid4(), type="Ghi nhận",
                                            occurred_at=datetime.now().astimezone(), data={})])
    await truncate_and_rewind(store, "ca-a", 2)
    await remove_stream(store, "ca-new")
    with pytest.raises(TamperDetected) as refused:
        await take_checkpoint(store, log)
    named = {s: p for s, _, p in refused.value.problems}
    assert set(named) == {"ca-a", "ca-e", "ca-new"}
    assert named["ca-a"].startswith("truncated") and named["ca-e"].startswith("rewritten")
    assert named["ca-new"].startswith("removed")
    assert len(log.read()) == 2  # nothing signed


def test_danvan_verify_names_every_broken_stream_and_exits_1(
    tamper_db: tuple[str, EventStore], log: CheckpointLog, tmp_path: Path
) -> None:
    url, _ = tamper_db
    env = {**os.environ, "DATABASE_URL": url, "DANVAN_HOME": str(tmp_path / "home"),
           "DANVAN_CHECKPOINT_LOG": str(log.path), "DANVAN_CHECKPOINT_KEY": str(log.key_file),
           **secret_env()}

    def danvan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "danvan.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    taken = danvan("checkpoint")
    assert taken.returncode == 0, taken.stderr
    assert "checkpoint 1: 6 stream(s)" in taken.stdout
    assert (log.key_file.stat().st_mode & 0o777) == 0o600
    ok = danvan("verify", "--no-temporal")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: 6 stream(s), 36 event(s) checked, against checkpoint 1")

    async def attack() -> None:
        attacker = await EventStore.open(url, max_size=1)
        try:
            await truncate_and_rewind(attacker, "ca-a", 1)
            await remove_stream(attacker, "ca-đ")
        finally:
            await attacker.close()

    asyncio.run(attack())  # a sync test: no loop runs in this thread
    broken = danvan("verify", "--no-temporal")
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert lines[0].startswith("BROKEN ca-a at version 2 [truncated]: truncated")
    assert lines[1].startswith("BROKEN ca-đ at version 1 [removed]: removed")
    assert "2 broken stream(s)" in lines[2]
    refused = danvan("checkpoint")
    assert refused.returncode == 1 and "contradict the last checkpoint" in refused.stderr
