"""`verify` against Temporal's own record of each case, on the dev server: real petitions, appended by their
workflows; then attacks on what came after the last checkpoint, which the checkpoint cannot see and the
workflow's history can. Payloads go through the client's data converter: with an encrypting codec too."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest_asyncio
from cryptography.fernet import Fernet
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec
from temporalio.testing import WorkflowEnvironment

from eventstore import EventStore, NewEvent
from integrity.checkpoints import CheckpointLog
from integrity.commands import merge
from integrity.database import take_checkpoint, verify_against_checkpoint
from integrity.temporal import check_streams
from tests.conftest import migrated_database, secret_env
from worker import build_worker
from workflows.client import open_petition, send_command

from ..workflows.support import command, intake
from .support import edit_and_rechain, truncate_and_rewind

ROOT = Path(__file__).resolve().parent.parent.parent


class FernetCodec(PayloadCodec):
    """Encrypts every payload, as a deployment that keeps case data unreadable to Temporal's operators would."""

    def __init__(self) -> None:
        self.fernet = Fernet(Fernet.generate_key())

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": b"binary/fernet"}, data=self.fernet.encrypt(p.SerializeToString()))
                for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            inner = Payload()
            inner.ParseFromString(self.fernet.decrypt(p.data))
            out.append(inner)
        return out


@pytest_asyncio.fixture
async def own_store(new_database: Callable[[], Awaitable[str]]) -> AsyncIterator[EventStore]:
    store = await EventStore.open(await migrated_database(new_database), max_size=6)
    yield store
    await store.close()


async def open_cases(client: Client, store: EventStore, task_queue: str, n: int) -> list[str]:
    cases = []
    for _ in range(n):
        opened = await open_petition(client, intake("complaint", datetime.now(UTC)), task_queue=task_queue)
        cases.append(opened.case.case_id)
        await send_command(client, opened.case.case_id, command({"type": "classify", "lead_body": "UBND_TINH"},
                                                                command_id=uuid.uuid4().hex))
    return cases


async def accept(client: Client, case_id: str) -> None:
    await send_command(client, case_id, command({"type": "accept", "decision_no": "12/QĐ"},
                                                command_id=uuid.uuid4().hex))


async def test_attacks_after_the_last_checkpoint_are_named_from_temporals_record(
    temporal_env: WorkflowEnvironment, own_store: EventStore, task_queue: str, tmp_path: Path
) -> None:
    client, store = temporal_env.client, own_store
    log = CheckpointLog(tmp_path / "checkpoints.log", tmp_path / "checkpoint.key")
    async with build_worker(client, store, task_queue=task_queue):
        truncated, edited, inserted, untouched = await open_cases(client, store, task_queue, 4)
        await take_checkpoint(store, log)
        for case_id in (truncated, edited, inserted, untouched):
            await accept(client, case_id)
    signed = {leaf.stream_id: leaf.version for leaf in log.leaves(log.read()[-1])}
    versions = {c: await store.stream_version(c) for c in signed}
    assert all(versions[c] > signed[c] for c in signed)  # every case moved on after the checkpoint

    await truncate_and_rewind(store, truncated, signed[truncated])  # back to exactly what was signed
    await edit_and_rechain(store, edited, versions[edited], {"decision_no": "99/QĐ"})
    await store.append(inserted, versions[inserted], [NewEvent(
        event_id=uuid.uuid4(), type="PetitionAccepted", occurred_at=datetime.now(UTC), data={"forged": True})])

    report, _ = await verify_against_checkpoint(store, log)
    assert report.ok  # the chains and the checkpoint see nothing: all of it came after the checkpoint

    env = {**os.environ, **secret_env(), "DATABASE_URL": store.pool.dsn, "DANVAN_HOME": str(tmp_path / "home"),
           "TEMPORAL_ADDRESS": client.service_client.config.target_host,
           "DANVAN_CHECKPOINT_LOG": str(log.path), "DANVAN_CHECKPOINT_KEY": str(log.key_file)}
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "danvan.cli", "verify"], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    lines = {line.split()[1]: line for line in run.stdout.splitlines() if line.startswith("BROKEN")}
    assert set(lines) == {truncated, edited, inserted}
    assert f"at version {signed[truncated] + 1} [temporal]: truncated" in lines[truncated]
    assert f"at version {versions[edited]} [temporal]: edited" in lines[edited]
    assert f"at version {versions[inserted] + 1} [temporal]: inserted" in lines[inserted]
    assert "note: Temporal: 4 stream(s) compared" in run.stdout


async def test_encrypted_payloads_are_read_through_the_clients_own_converter(
    temporal_env: WorkflowEnvironment, own_store: EventStore, task_queue: str, tmp_path: Path
) -> None:
    plain = temporal_env.client
    config = plain.config()
    config["data_converter"] = dataclasses.replace(pydantic_data_converter, payload_codec=FernetCodec())
    client = Client(**config)
    store = own_store
    log = CheckpointLog(tmp_path / "checkpoints.log", tmp_path / "checkpoint.key")
    async with build_worker(client, store, task_queue=task_queue):
        [case_id] = await open_cases(client, store, task_queue, 1)
        await take_checkpoint(store, log)
        await accept(client, case_id)
    history = await plain.get_workflow_handle(case_id).fetch_history()
    scheduled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled and all(p.metadata["encoding"] == b"binary/fernet"
                             for e in scheduled for p in e.activity_task_scheduled_event_attributes.input.payloads)

    found = await check_streams(client, store, [case_id])
    assert (found.checked, found.broken, found.unknown) == (1, [], [])
    last = await store.stream_version(case_id)
    await edit_and_rechain(store, case_id, last, {"decision_no": "99/QĐ"})
    found = await check_streams(client, store, [case_id, "never-started"])
    assert [(b.stream_id, b.first_bad_version, b.kind) for b in found.broken] == [(case_id, last, "temporal")]
    assert found.unknown == ["never-started"]
    report, _ = await verify_against_checkpoint(store, log)
    merged = merge(report, found.broken)
    assert not merged.ok and merged.first_bad_stream == case_id and merged.first_bad_version == last
