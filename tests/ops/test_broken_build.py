"""A build with a non-deterministic change reaches production: its cases' workflow code then fails on the fixed
build too (the history it wrote no longer replays). The operator sees why, the case is reset to its last good
point, and the fixed build re-runs the commands from there without writing any event twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.common import Event
from eventstore import EventStore
from ops.repairs import RepairRefused, nudge, plan_reset, reset
from ops.stalled import StallPolicy, inspect_case
from worker import build_worker
from workflows import ALL_WORKFLOWS
from workflows.client import open_petition, send_command
from workflows.petition import PetitionStart, PetitionWorkflow

from ..workflows.support import command, folded, intake
from .test_repairs import OPERATOR, until

REASON = "Bản sửa lỗi đã triển khai; chạy lại hồ sơ từ điểm tốt cuối cùng"


@workflow.defn(name="PetitionWorkflow", sandboxed=False)
class PetitionWorkflowBadBuild(PetitionWorkflow):
    """The bad build: after an assignment it also starts a timer the real code never starts."""

    @workflow.init
    def __init__(self, start: PetitionStart) -> None:
        super().__init__(start)

    @workflow.run
    async def run(self, start: PetitionStart) -> Any:
        return await super().run(start)

    async def after_append(self, events: list[Event]) -> None:
        await super().after_append(events)
        if any(ev.event_type() == "Assigned" for ev in events):
            asyncio.get_running_loop().create_task(workflow.sleep(86_400))  # the change: a new timer


def bad_build(client: Client, store: EventStore, task_queue: str) -> Any:
    others: Sequence[type[Any]] = [w for w in ALL_WORKFLOWS if w is not PetitionWorkflow]
    return build_worker(client, store, task_queue=task_queue, workflows=[PetitionWorkflowBadBuild, *others],
                        max_cached_workflows=0)


async def test_a_case_broken_by_a_bad_build_is_reset_to_its_last_good_point_and_completes(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    client = temporal_env.client
    async with bad_build(client, store, task_queue):
        opened = await open_petition(client, intake("complaint", datetime.now(UTC)), task_queue=task_queue)
        case_id = opened.case.case_id
        await send_command(client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"}, command_id="b-1"))
        await send_command(client, case_id, command({"type": "accept", "decision_no": "9/QĐ"}, command_id="b-2"))
        await send_command(client, case_id, command(
            {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Vũ Hải"}, command_id="b-3"))
    stored_before = await store.read_stream(case_id)
    assert [e.type for e in stored_before][-1] == "Assigned"

    async with build_worker(client, store, task_queue=task_queue, max_cached_workflows=0):  # the fixed build
        pending = asyncio.create_task(send_command(client, case_id, command(
            {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Đào Nguyên"}, command_id="b-4")))

        async def failing() -> list[Any]:
            return [s for s in await inspect_case(client, case_id, StallPolicy())
                    if s.reason == "workflow_task_failing"]

        (stall,) = await until(failing, "the fixed build to fail on the bad build's history")
        assert stall.remedies == ["reset"] and "ondetermin" in stall.detail, stall.detail
        try:
            await nudge(client, case_id, OPERATOR, REASON)
            raise AssertionError("a nudge must be refused while the workflow code fails")
        except RepairRefused as exc:
            assert exc.rule == "repair.workflow_task_failing"

        plan = await plan_reset(client, store, case_id)
        # The point is the workflow task that wrote the timer: the fixed build runs that task again.
        history = (await client.get_workflow_handle(case_id, run_id=plan.run_id).fetch_history()).events
        timer = max(e.event_id for e in history if e.HasField("timer_started_event_attributes"))
        completed = [e.event_id for e in history if e.HasField("workflow_task_completed_event_attributes")]
        assert plan.reset_to_event_id == max(c for c in completed if c < timer), plan
        assert plan.failing and "Nondeterminism" in plan.failing
        outcome = await reset(client, store, case_id, OPERATOR, REASON)
        assert outcome.plan is not None and outcome.plan.reset_to_event_id == plan.reset_to_event_id
        # The command that was waiting when the case was reset is retried by its client, with its id.
        try:
            await asyncio.wait_for(pending, 30)
        except Exception:  # the reset ended the run it was waiting on: the client sends it again
            pass
        retried = await send_command(client, case_id, command(
            {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Đào Nguyên"}, command_id="b-4"))
        assert retried.case.officer == "Cán bộ Đào Nguyên"
        await until(lambda: _recorded(store, case_id), "the reset to be recorded")

        stored = await store.read_stream(case_id)
        assert [e.hash for e in stored[: len(stored_before)]] == [e.hash for e in stored_before]
        types = [e.type for e in stored[len(stored_before):]]
        assert sorted(types) == ["Assigned", "RepairRecorded"], types
        assert [e.version for e in stored] == list(range(1, len(stored) + 1))
        assert len({e.event_id for e in stored}) == len(stored)
        assert (await store.verify(case_id)).ok
        state = await client.get_workflow_handle(case_id).query(PetitionWorkflow.state_snapshot)
        assert state == await folded(store, case_id)
        assert await inspect_case(client, case_id, StallPolicy()) == []


async def _recorded(store: EventStore, case_id: str) -> bool:
    return any(e.type == "RepairRecorded" for e in await store.read_stream(case_id))


