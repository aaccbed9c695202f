"""Crash test of a repair job: a nudge of 200 cases, approved by a second operator, with the worker process killed
by SIGKILL while the job's activity is repairing a case whose append is caught in PostgreSQL; a new worker takes
over. The job must resume where it was and end with every case repaired exactly once (one RepairRecorded and one
BodyNudged under the job's key for the case), each outcome recorded once, and the counts right.

Real Temporal dev server, real PostgreSQL, the real `danvan worker` command as a separate OS process, as in
`test_worker_crash.py`, whose worker fixtures this test shares.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from danvan.settings import Settings
from domain.common import Actor
from eventstore import EventStore
from ops.job_types import JobDecision, JobSpec, case_key, job_id_from, needs_approval, workflow_id
from ops.jobs import get_job, insert_job, job_cases
from workflows.client import open_petition, send_command
from workflows.repair_job import RepairJobWorkflow
from workflows.repair_job_client import JobRefused, decide, start_job

from ..workflows.support import command, intake
from .test_worker_crash import (  # noqa: F401  (the fixtures)
    AppendHold,
    WorkerProcesses,
    crash_database,
    crash_store,
    worker_env,
    workers,
)

pytestmark = pytest.mark.slow

CASES = 200
#: The case whose append is held in PostgreSQL when the worker is killed.
HELD = 60
RATE = 20.0
REQUESTER = Actor(id="Trực vận hành Hoàng Minh", role="operator")
APPROVER = Actor(id="Trực vận hành Lê Thu", role="operator")
REASON = "Nhắc các cơ quan chậm trả lời trong đợt rà soát cuối năm"


async def open_cases(client: Client, task_queue: str) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with gate:
            opened = await open_petition(client, intake("complaint", datetime.now(UTC),
                                                        external_ref=f"job-crash-{uuid.uuid4().hex[:8]}-{i}"),
                                         task_queue=task_queue)
            case_id = opened.case.case_id
            await send_command(client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"},
                                                        command_id=f"classify-{i}"))
            return str(case_id)

    return list(await asyncio.gather(*(one(i) for i in range(CASES))))


async def until(predicate, what: str, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_job_whose_worker_is_killed_resumes_and_repairs_every_case_exactly_once(
    temporal_env: WorkflowEnvironment, crash_database: str, crash_store: EventStore,  # noqa: F811
    workers: WorkerProcesses,  # noqa: F811
) -> None:
    client, store = temporal_env.client, crash_store
    first = workers.start()
    await workers.wait_ready(first)
    case_ids = await open_cases(client, workers.task_queue)

    threshold = Settings.from_env({}).job_approval_threshold
    spec = JobSpec(job_id=job_id_from(uuid.uuid4().bytes), action="nudge", reason=REASON, rate=RATE,
                   case_ids=case_ids, requester=REQUESTER, requested_at=datetime.now(UTC),
                   needs_approval=needs_approval("nudge", CASES, threshold), target={"case_ids": case_ids},
                   request_digest="crash-test")
    assert spec.needs_approval, f"{CASES} cases are over the threshold ({threshold})"
    await start_job(client, spec, task_queue=workers.task_queue)
    await insert_job(store.pool, spec)
    handle = client.get_workflow_handle_for(RepairJobWorkflow.run, workflow_id(spec.job_id))
    with pytest.raises(JobRefused) as refused:
        await decide(client, spec.job_id, "approve", JobDecision(actor=REQUESTER, reason="Tôi tự duyệt đợt này"))
    assert refused.value.rule == "job.self_approval"
    assert (await handle.query(RepairJobWorkflow.progress)).state == "awaiting_approval"

    hold = AppendHold(crash_database)
    await hold.lock([case_ids[HELD]])
    try:
        await decide(client, spec.job_id, "approve", JobDecision(actor=APPROVER, reason="Đã kiểm tra danh sách"))

        async def held_case_under_way() -> bool:
            row = await store.pool.fetchrow("SELECT attempts, outcome FROM repair_job_cases WHERE job_id = $1 "
                                            "AND position = $2", spec.job_id, HELD)
            return row is not None and row["attempts"] >= 1 and row["outcome"] == "pending"

        await until(held_case_under_way, f"the job to reach case {HELD}", 120)
        blocked = await hold.blocked_appends(store, want=1, timeout=5)
        done_at_kill = await store.pool.fetchval("SELECT done FROM repair_jobs WHERE job_id = $1", spec.job_id)
        workers.kill(first)
    finally:
        await hold.release()  # the dead worker's session goes on with its append
    assert first.returncode == -signal.SIGKILL
    assert blocked == 1, "the held case's append was not waiting in PostgreSQL when the worker was killed"
    killed_at = time.monotonic()
    second = workers.start()
    await workers.wait_ready(second)
    async with asyncio.timeout(240):
        final = await handle.result()
    took = time.monotonic() - killed_at

    assert final.state == "completed", final
    assert (final.next, final.counts.done, final.counts.refused, final.counts.failed) == (CASES, CASES, 0, 0)
    job = await get_job(store.pool, spec.job_id)
    assert job is not None and (job.state, job.done, job.refused, job.failed, job.pending) == (
        "completed", CASES, 0, 0, 0)
    rows = await job_cases(store.pool, spec.job_id, limit=CASES)
    assert [r.case_id for r in rows[:CASES]] == case_ids
    assert {r.outcome for r in rows[:CASES]} == {"done"}
    assert rows[HELD].attempts >= 2, "the held case's repair was not tried again after the kill"

    problems = []
    for position, case_id in enumerate(case_ids):
        events = await store.read_stream(case_id)
        keyed = Counter(e.type for e in events if e.metadata.get("command_id") == case_key(spec.job_id, position))
        if keyed != Counter({"RepairRecorded": 1, "BodyNudged": 1}):
            problems.append(f"{case_id}: {dict(keyed)}")
        repairs = [e for e in events if e.type == "RepairRecorded"]
        if len(repairs) != 1 or repairs[0].data["detail"].get("approved_by") != APPROVER.label:
            problems.append(f"{case_id}: repairs {[r.data for r in repairs]}")
        if [e.version for e in events] != list(range(1, len(events) + 1)):
            problems.append(f"{case_id}: versions {[e.version for e in events]}")
    assert not problems, "\n".join(problems[:10])
    after = sorted((r.finished_at - r.started_at).total_seconds() for r in rows[HELD + 1:CASES]
                   if r.finished_at and r.started_at)
    spans = f"each case after it took {after[len(after) // 2]:.2f} s (median), {after[-1]:.2f} s at most"
    runs = 0
    async for _ in client.list_workflows(f"WorkflowId = '{workflow_id(spec.job_id)}'"):
        runs += 1
    print(f"\njob crash: killed with {done_at_kill}/{CASES} cases done and case {HELD}'s append held in "
          f"PostgreSQL; the job completed {took:.1f} s after the kill, in {runs} run(s), held case tried "
          f"{rows[HELD].attempts} times; {spans}; every case repaired once")
