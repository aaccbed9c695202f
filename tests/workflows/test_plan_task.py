"""A plan task on the time-skipping server: acknowledgements, reports missed and urged, reassignment, closure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain import plan_tasks as pt
from domain.common import Actor
from domain.plan_cases import task_case_id
from eventstore import EventStore
from tests.workflows.support import task_view
from worker import build_worker
from workflows.plan_task import PlanTaskStart, PlanTaskWorkflow, TaskCommandResult

COMMISSION = Actor(id="phong-dthth", role="body", body="PHONG_DTHTH")
LEAD = Actor(id="ubnd", role="body", body="UBND_TINH")
SPEC = dict(plan_id="KH-TEST", title_vi="Công tác dân vận của các cơ quan nhà nước và chính quyền các cấp",
            title_en="Mass mobilisation by state bodies", lead=["UBND_TINH"],
            coordinators=["UBMTTQ_TINH", "SO_NOI_VU"], cadence=["semiannual", "annual"], issuer="BDV_TU",
            monitor="PHONG_DTHTH")


@pytest_asyncio.fixture
async def env(own_time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str
              ) -> AsyncIterator[WorkflowEnvironment]:
    async with build_worker(own_time_skipping_env.client, store, task_queue=task_queue):
        yield own_time_skipping_env


async def started(env: WorkflowEnvironment, task_queue: str, task_id: str) -> WorkflowHandle[Any, Any]:
    spec = pt.TaskSpec(task_id=task_id, **SPEC)
    handle = await env.client.start_workflow(
        PlanTaskWorkflow.run, PlanTaskStart(spec=spec, term_end=date(2030, 12, 31)),
        id=task_case_id(spec.plan_id, f"{task_id}-{task_queue}"), task_queue=task_queue,
    )
    for _ in range(200):
        try:
            if await handle.query(PlanTaskWorkflow.view) is not None:
                return handle
        except RPCError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the task did not open")


async def refused(handle: WorkflowHandle[Any, Any], command: dict[str, Any], actor: Actor = LEAD) -> str:
    """The rule that refused the command (it travels as the type of the update's ApplicationError)."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send(handle, command, actor)
    assert isinstance(caught.value.cause, ApplicationError)
    return caught.value.cause.type or ""


async def send(handle: WorkflowHandle[Any, Any], command: dict[str, Any], actor: Actor = LEAD) -> TaskCommandResult:
    request = pt.TaskCommandRequest.model_validate({"command": command, "actor": actor})
    return await handle.execute_update(PlanTaskWorkflow.execute, request)


async def test_an_ignored_acknowledgement_is_escalated_to_the_commission(
    env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    handle = await started(env, task_queue, "II.2.1")
    result = await send(handle, {"type": "acknowledge", "body": "UBND_TINH"})
    assert result.task.status == "active"
    await send(handle, {"type": "acknowledge", "body": "UBMTTQ_TINH"},
               Actor(id="mttq", role="body", body="UBMTTQ_TINH"))
    await env.sleep(timedelta(days=20))
    view = await task_view(handle)
    assert view.acknowledged == ["UBMTTQ_TINH", "UBND_TINH"]
    events = [(e.type, e.data) for e in await store.read_stream(handle.id)]
    escalated = [data for kind, data in events if kind == "AcknowledgementEscalated"]
    assert [d["body"] for d in escalated] == ["SO_NOI_VU"]
    assert escalated[0]["to_body"] in ("BDV_TU", "BTGDV_TU")  # the commission, or its 2025 successor


async def test_a_missed_report_is_urged_then_escalated_and_a_late_one_is_recorded_late(
    env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    handle = await started(env, task_queue, "II.3")
    now = await env.get_current_time()
    period = str(now.year) if now.month > 6 else f"{now.year}-H1"
    await send(handle, {"type": "request_report", "period": period}, COMMISSION)
    view = await task_view(handle)
    assert view.phase == "report_due"
    due = date.fromisoformat(view.reports[period].due_on)
    await env.sleep(timedelta(days=(due - now.date()).days + 2))
    view = await task_view(handle)
    assert view.phase == "urged" and view.reports[period].urged == 1
    await env.sleep(timedelta(days=10))
    types = [e.type for e in await store.read_stream(handle.id)]
    assert types.count("ReportUrged") == 1 and "ReportEscalated" in types
    assert await refused(handle, {"type": "submit_report", "period": period, "body": "SO_NOI_VU", "summary": "x"},
                         Actor(id="snv", role="body", body="SO_NOI_VU")) == "authority.submit_report"
    result = await send(handle, {"type": "submit_report", "period": period, "body": "UBND_TINH",
                                 "summary": "Báo cáo kết quả công tác dân vận chính quyền",
                                 "figures": {"hoi_nghi": 12}})
    assert result.task.reports[period].on_time is False and result.task.phase == "report_submitted"
    await send(handle, {"type": "review_report", "period": period, "verdict": "accepted"}, COMMISSION)
    assert (await store.verify(handle.id)).ok


async def test_a_replaced_body_hands_its_part_to_its_successor_with_the_history_kept(
    env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    handle = await started(env, task_queue, "II.4.b")
    await send(handle, {"type": "acknowledge", "body": "SO_NOI_VU"}, Actor(id="snv", role="body", body="SO_NOI_VU"))
    assert await refused(handle, {"type": "reassign", "from_body": "SO_NOI_VU", "to_body": "UBND_TINH",
                                  "reason": "x"}) == "authority.reassign"
    result = await send(handle, {"type": "reassign", "from_body": "SO_NOI_VU", "to_body": "THANH_TRA_TINH",
                                 "reason": "Sắp xếp tổ chức bộ máy năm 2025"}, COMMISSION)
    assert "SO_NOI_VU" not in result.task.coordinators and "THANH_TRA_TINH" in result.task.coordinators
    assert [(r.from_body, r.to_body) for r in result.task.reassignments] == [("SO_NOI_VU", "THANH_TRA_TINH")]
    await send(handle, {"type": "final_review", "summary": "Tổng kết nhiệm kỳ"}, COMMISSION)
    closed = await send(handle, {"type": "close", "approval_no": "88-QĐ/BDVTU"}, COMMISSION)
    assert closed.task.status == "closed"
    types = [e.type for e in await store.read_stream(handle.id)]
    assert types[0] == "TaskAssigned" and "TaskReassigned" in types and types[-1] == "TaskClosed"
