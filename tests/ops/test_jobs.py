"""Repair jobs on a real Temporal dev server and a real PostgreSQL: a job works through its fixed list of cases,
records each outcome once, waits for a second operator's approval when it needs one, and can be paused, resumed,
cancelled or rejected; every decision is recorded with who and why."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.common import Actor
from eventstore import EventStore
from ops.job_types import CaseTask, JobDecision, JobSpec, case_key, job_id_from, workflow_id
from ops.jobs import get_job, insert_job, job_actions, job_cases, repair_case
from worker import build_worker
from workflows.client import open_petition, send_command
from workflows.repair_job import RepairJobWorkflow
from workflows.repair_job_client import JobRefused, decide, start_job

from ..workflows.support import command, intake

REQUESTER = Actor(id="Nguyễn Thị Vận hành", role="operator")
APPROVER = Actor(id="Trần Văn Duyệt", role="operator")
REASON = "Nhắc các cơ quan chậm trả lời trong đợt rà soát"


@pytest_asyncio.fixture
async def client(temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str) -> AsyncIterator[Client]:
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        yield temporal_env.client


async def open_cases(client: Client, task_queue: str, n: int) -> list[str]:
    """`n` complaints classified to UBND_TINH, which they then owe."""
    ids = []
    for _ in range(n):
        opened = await open_petition(client, intake("complaint", datetime.now(UTC)), task_queue=task_queue)
        case_id = opened.case.case_id
        await send_command(client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"},
                                                    command_id=uuid.uuid4().hex))
        ids.append(case_id)
    return ids


def spec_of(case_ids: list[str], *, action: str = "nudge", needs_approval: bool = False, rate: float = 50.0,
            requester: Actor = REQUESTER) -> JobSpec:
    return JobSpec(job_id=job_id_from(secrets.token_bytes(16)), action=action, reason=REASON, rate=rate,
                   case_ids=case_ids, requester=requester, requested_at=datetime.now(UTC),
                   needs_approval=needs_approval, target={"case_ids": case_ids}, request_digest="test")


async def start(client: Client, store: EventStore, spec: JobSpec, task_queue: str) -> None:
    await start_job(client, spec, task_queue=task_queue)
    await insert_job(store.pool, spec)


async def repairs_of(store: EventStore, case_id: str, job_id: str) -> list[dict[str, Any]]:
    return [e.data for e in await store.read_stream(case_id)
            if e.type == "RepairRecorded" and e.data["detail"].get("job") == job_id]


async def until(predicate, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_a_job_repairs_each_case_of_its_list_once_and_records_every_outcome(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_ids = [*await open_cases(client, task_queue, 3), "pet-no-such-case"]
    spec = spec_of(case_ids)
    await start(client, store, spec, task_queue)
    progress = await client.get_workflow_handle_for(RepairJobWorkflow.run, workflow_id(spec.job_id)).result()
    assert progress.state == "completed" and progress.next == 4
    assert (progress.counts.done, progress.counts.refused, progress.counts.failed) == (3, 1, 0)

    job = await get_job(store.pool, spec.job_id)
    assert job is not None and job.state == "completed" and (job.done, job.refused, job.pending) == (3, 1, 0)
    assert job.finished_at is not None
    rows = await job_cases(store.pool, spec.job_id)
    assert [r.case_id for r in rows] == case_ids
    assert [r.outcome for r in rows] == ["done", "done", "done", "refused"]
    assert rows[3].rule == "repair.not_found" and rows[3].error
    for position, case_id in enumerate(case_ids[:3]):
        (recorded,) = await repairs_of(store, case_id, spec.job_id)
        assert recorded["action"] == "nudge" and recorded["detail"]["requested_by"] == REQUESTER.label
        stored = [e for e in await store.read_stream(case_id) if e.type == "RepairRecorded"]
        assert stored[0].actor == REQUESTER.label and stored[0].reason == REASON
        assert stored[0].metadata["command_id"] == case_key(spec.job_id, position)
    assert [a.action for a in await job_actions(store.pool, spec.job_id)] == ["request", "complete"]


async def test_the_same_case_of_a_job_run_again_is_not_repaired_twice(
    client: Client, store: EventStore, task_queue: str
) -> None:
    (case_id,) = await open_cases(client, task_queue, 1)
    spec = spec_of([case_id], needs_approval=True)
    await insert_job(store.pool, spec)  # no workflow: the activity's code is called as a retried attempt would be
    task = CaseTask(job_id=spec.job_id, position=0, case_id=case_id, action="nudge", reason=REASON,
                    requester=REQUESTER, note={"job": spec.job_id})
    first = await repair_case(client, store, task, last_attempt=False)
    again = await repair_case(client, store, task, last_attempt=False)
    assert first.result.outcome == again.result.outcome == "done"
    assert again.detail == {"recorded_before": True} and again.result.version == first.result.version
    assert len(await repairs_of(store, case_id, spec.job_id)) == 1
    types = [e.type for e in await store.read_stream(case_id)]
    assert types.count("BodyNudged") == 1


async def test_a_job_over_the_threshold_waits_for_a_second_operator_who_is_not_its_requester(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_ids = await open_cases(client, task_queue, 2)
    spec = spec_of(case_ids, needs_approval=True)
    await start(client, store, spec, task_queue)
    handle = client.get_workflow_handle_for(RepairJobWorkflow.run, workflow_id(spec.job_id))
    assert (await handle.query(RepairJobWorkflow.progress)).state == "awaiting_approval"

    for actor, rule in [(REQUESTER, "job.self_approval"), (Actor(id="x", role="supervisor"), "job.role")]:
        with pytest.raises(JobRefused) as refused:
            await decide(client, spec.job_id, "approve", JobDecision(actor=actor, reason="Đồng ý cho chạy đợt này"))
        assert refused.value.rule == rule
    with pytest.raises(JobRefused) as refused:
        await decide(client, spec.job_id, "pause", JobDecision(actor=APPROVER, reason="Tạm dừng để kiểm tra"))
    assert refused.value.rule == "job.state"
    assert not await repairs_of(store, case_ids[0], spec.job_id)  # nothing ran before the approval

    approval = "Đã kiểm tra danh sách, đồng ý"
    progress = await decide(client, spec.job_id, "approve", JobDecision(actor=APPROVER, reason=approval))
    assert progress.state == "running" and progress.approval and progress.approval.by == APPROVER.label
    assert (await handle.result()).state == "completed"
    (recorded,) = await repairs_of(store, case_ids[1], spec.job_id)
    assert recorded["detail"]["approved_by"] == APPROVER.label
    assert recorded["detail"]["approval_reason"] == approval
    job = await get_job(store.pool, spec.job_id)
    assert job is not None and job.decided_by == APPROVER.label and job.decision_reason == approval
    actions = await job_actions(store.pool, spec.job_id)
    assert [(a.action, a.actor) for a in actions] == [("request", REQUESTER.label), ("approve", APPROVER.label),
                                                      ("complete", "system:danvan")]

    rejected = spec_of(case_ids, needs_approval=True)
    await start(client, store, rejected, task_queue)
    progress = await decide(client, rejected.job_id, "reject", JobDecision(actor=APPROVER, reason="Danh sách chưa "
                                                                          "đúng, lập lại"))
    assert progress.state == "rejected"
    assert (await client.get_workflow_handle_for(RepairJobWorkflow.run, workflow_id(rejected.job_id)).result()
            ).state == "rejected"
    job = await get_job(store.pool, rejected.job_id)
    assert job is not None and job.state == "rejected" and job.pending == 2 and job.finished_at is not None
    assert not await repairs_of(store, case_ids[0], rejected.job_id)


async def test_a_job_is_paused_resumed_and_cancelled_between_two_cases(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_ids = await open_cases(client, task_queue, 4)
    spec = spec_of(case_ids, rate=0.5)  # one case every 2 s
    await start(client, store, spec, task_queue)
    handle = client.get_workflow_handle_for(RepairJobWorkflow.run, workflow_id(spec.job_id))

    async def first_done() -> bool:
        return (await handle.query(RepairJobWorkflow.progress)).next >= 1

    await until(first_done, "the first case")
    paused = await decide(client, spec.job_id, "pause", JobDecision(actor=REQUESTER, reason="Tạm dừng để kiểm tra"))
    assert paused.state == "paused"
    await asyncio.sleep(3)
    assert (await handle.query(RepairJobWorkflow.progress)).next == paused.next
    assert (await get_job(store.pool, spec.job_id)).state == "paused"  # type: ignore[union-attr]
    await decide(client, spec.job_id, "resume", JobDecision(actor=APPROVER, reason="Đã kiểm tra, chạy tiếp"))

    async def moved() -> bool:
        return (await handle.query(RepairJobWorkflow.progress)).next > paused.next

    await until(moved, "the job to go on")
    await decide(client, spec.job_id, "cancel", JobDecision(actor=APPROVER, reason="Dừng hẳn, phần còn lại để sau"))
    final = await handle.result()
    assert final.state == "cancelled" and final.next < 4
    job = await get_job(store.pool, spec.job_id)
    assert job is not None and job.state == "cancelled" and job.done == final.counts.done
    assert job.pending == 4 - final.next
    assert [a.action for a in await job_actions(store.pool, spec.job_id)] == [
        "request", "pause", "resume", "cancel", "complete"]
    with pytest.raises(JobRefused) as refused:
        await decide(client, spec.job_id, "resume", JobDecision(actor=APPROVER, reason="Chạy lại phần còn lại"))
    assert refused.value.rule == "job.state"


async def test_a_retry_an_earlier_attempt_carried_out_without_recording_it_is_recorded_once(
    client: Client, store: EventStore, task_queue: str
) -> None:
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import ResetActivityRequest

    from ops.jobs import START_CASE
    from ops.stalled import StallPolicy, inspect_case

    from ..faults import AppendFault

    (case_id,) = await open_cases(client, task_queue, 1)
    fault = AppendFault(store, case_id)
    await fault.inject()
    stuck = asyncio.create_task(send_command(client, case_id, command(
        {"type": "accept", "decision_no": "9/QĐ-UBND"}, command_id=uuid.uuid4().hex)))
    policy = StallPolicy(min_attempts=2)
    (stall,) = await until(lambda: inspect_case(client, case_id, policy), "the case to stall")
    spec = spec_of([case_id], action="retry")
    await insert_job(store.pool, spec)
    # An earlier attempt of the job's activity: it started on the case and retried its step, then its worker
    # was lost before the repair was recorded.
    await store.pool.fetchrow(START_CASE, spec.job_id, 0)
    await fault.remove()
    run_id = (await client.get_workflow_handle(case_id).describe()).run_id
    await client.workflow_service.reset_activity(ResetActivityRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id, run_id=run_id),
        id=stall.activity_id, identity="the lost attempt"))
    await stuck  # the step went through: nothing is failing any more
    task = CaseTask(job_id=spec.job_id, position=0, case_id=case_id, action="retry", reason=REASON,
                    requester=REQUESTER, note={"job": spec.job_id})
    run = await repair_case(client, store, task, last_attempt=False)
    assert run.result.outcome == "done" and run.detail.get("acted_by_an_earlier_attempt") is True
    (recorded,) = await repairs_of(store, case_id, spec.job_id)
    assert recorded["action"] == "retry"
    # A job that never acted on the case is told the truth: there is nothing to retry.
    fresh = spec_of([case_id], action="retry")
    await insert_job(store.pool, fresh)
    refused = await repair_case(client, store, task.model_copy(update={"job_id": fresh.job_id}), last_attempt=False)
    assert refused.result.outcome == "refused" and refused.result.rule == "repair.retry.nothing_failing"
    assert len([e for e in await store.read_stream(case_id) if e.type == "RepairRecorded"]) == 1
