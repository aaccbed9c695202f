"""Stalled cases and their repairs on a real Temporal dev server and a real PostgreSQL.

A fault is injected into the event store itself (a trigger that makes PostgreSQL refuse the case's appends), a
case's workflow is reset to an earlier point, a body is nudged and a case reassigned: each time the case's
stream stays append-only, gap-free and duplicate-free, verifies, and records the repair with its operator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.common import Actor
from eventstore import EventStore
from ops.repairs import RepairOutcome, RepairRefused, bulk_retry, nudge, plan_reset, reassign, reset, retry
from ops.stalled import StallPolicy, find_stalled, idle_stalls, inspect_case
from worker import build_worker
from workflows.client import open_petition, send_command
from workflows.petition import PetitionWorkflow

from ..faults import AppendFault
from ..workflows.support import command, folded, intake

OPERATOR = Actor(id="Nguyễn Thị Vận hành", role="operator")
REASON = "Đã sửa lỗi cơ sở dữ liệu; chạy lại bước ghi sự kiện"
FAST = StallPolicy(min_attempts=2, idle=timedelta(days=2))


@pytest_asyncio.fixture
async def client(temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str) -> AsyncIterator[Client]:
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        yield temporal_env.client


async def open_case(client: Client, task_queue: str, received_at: datetime | None = None) -> str:
    petition = intake("complaint", received_at or datetime.now(UTC))
    opened = await open_petition(client, petition, task_queue=task_queue)
    return opened.case.case_id


async def do(client: Client, case_id: str, payload: dict[str, Any], command_id: str | None = None) -> object:
    return await send_command(client, case_id, command(payload, command_id=command_id or uuid.uuid4().hex))


async def assert_clean_stream(store: EventStore, client: Client, case_id: str) -> list[str]:
    """Versions 1..n, every event id once, the chain verifies, and the workflow's state is the stream's fold."""
    stored = await store.read_stream(case_id)
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    assert len({e.event_id for e in stored}) == len(stored)
    report = await store.verify(case_id)
    assert report.ok, report
    state = await client.get_workflow_handle(case_id).query(PetitionWorkflow.state_snapshot)
    assert state == await folded(store, case_id)
    return [e.type for e in stored]


async def until(predicate, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def test_a_failing_event_store_stalls_the_case_and_retry_completes_it_with_one_event_per_step(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_id = await open_case(client, task_queue)
    fault = AppendFault(store, case_id, message="injected fault: the disk is full")
    await fault.inject()
    try:
        classify = asyncio.create_task(do(client, case_id, {"type": "classify", "lead_body": "UBND_TINH"}, "c-1"))
        stalls = await until(lambda: inspect_case(client, case_id, FAST), "the case to stall")
        (stall,) = stalls
        assert stall.reason == "activity_failing" and stall.activity_type == "append_events"
        assert "injected fault: the disk is full" in stall.detail and stall.remedies[0] == "retry"
        listed = [s for s in await find_stalled(client, store, FAST, reason="activity_failing")
                  if s.case_id == case_id]
        assert listed and listed[0].kind == "complaint"
        assert not classify.done()
        # Nudging a case whose step is failing is refused: nothing is changed.
        with pytest.raises(RepairRefused) as refused:
            await reassign(client, case_id, Actor(id="x", role="supervisor"), REASON, body="SO_NOI_VU")
        assert refused.value.rule == "repair.role"
    finally:
        await fault.remove()
    outcome = await retry(client, case_id, OPERATOR, REASON)
    assert outcome.recorded and outcome.events == ["RepairRecorded"]
    assert outcome.detail["retried"][0]["activity_type"] == "append_events"
    await classify  # the command that was stuck completes, once
    types = await assert_clean_stream(store, client, case_id)
    assert types == ["PetitionReceived", "Classified", "RepairRecorded"]
    repair = (await store.read_stream(case_id))[-1]
    assert repair.actor == "operator:Nguyễn Thị Vận hành" and repair.reason == REASON
    assert repair.data["action"] == "retry"
    assert await inspect_case(client, case_id, FAST) == []
    # Nothing is failing any more: a second retry is refused and records nothing.
    with pytest.raises(RepairRefused) as refused:
        await retry(client, case_id, OPERATOR, REASON)
    assert refused.value.rule == "repair.retry.nothing_failing"
    assert len(await store.read_stream(case_id)) == 3


async def test_a_reset_to_an_earlier_point_reruns_the_commands_without_writing_them_twice(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_id = await open_case(client, task_queue)
    await do(client, case_id, {"type": "classify", "lead_body": "UBND_TINH"}, "r-1")
    await do(client, case_id, {"type": "accept", "decision_no": "21/QĐ-UBND"}, "r-2")
    await do(client, case_id, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Phạm Thu"}, "r-3")
    before = await store.read_stream(case_id)
    history = (await client.get_workflow_handle(case_id).fetch_history()).events
    accepted_r2 = next(e.event_id for e in history
                       if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                       and e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
                       .startswith("cmd-r-2#"))
    point = max(e.event_id for e in history
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < accepted_r2)

    # Without a point and with nothing failing, a reset is refused.
    with pytest.raises(RepairRefused) as refused:
        await reset(client, store, case_id, OPERATOR, REASON)
    assert refused.value.rule == "repair.reset.nothing_failing"

    dry = await reset(client, store, case_id, OPERATOR, REASON, to_event_id=point, dry_run=True)
    assert dry.dry_run and not dry.recorded and dry.plan is not None
    assert [(u.command_type, u.command_id) for u in dry.plan.updates] == [("accept", "r-2"), ("assign", "r-3")]
    assert dry.plan.stream_version == len(before) == 4
    assert len(await store.read_stream(case_id)) == 4  # a dry run changes nothing

    done = await reset(client, store, case_id, OPERATOR, REASON, to_event_id=point)
    assert done.recorded and done.detail["new_run_id"] != done.detail["old_run_id"]
    types = await assert_clean_stream(store, client, case_id)
    assert types == ["PetitionReceived", "Classified", "AcceptanceDecided", "Assigned", "RepairRecorded"]
    after = await store.read_stream(case_id)
    assert [e.hash for e in after[:4]] == [e.hash for e in before]  # the record was only appended to
    # The new run knows the commands it re-ran: a retried command is recognised, a new one is applied.
    again = await send_command(client, case_id, command(
        {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Phạm Thu"}, command_id="r-3"))
    assert again.duplicate
    await do(client, case_id, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Lý Văn Nam"}, "r-4")
    types = await assert_clean_stream(store, client, case_id)
    assert types[-1] == "Assigned" and len(types) == 6
    # Resetting to a point that is not a completed workflow task is refused.
    with pytest.raises(RepairRefused) as refused:
        await plan_reset(client, store, case_id, to_event_id=1)
    assert refused.value.rule == "repair.reset.point"


async def test_nudge_and_reassign_are_recorded_with_the_operator_and_refused_when_they_do_not_apply(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_id = await open_case(client, task_queue)
    await do(client, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    await do(client, case_id, {"type": "accept", "decision_no": "30/QĐ-UBND"})

    nudged = await nudge(client, case_id, OPERATOR, "Quá hạn trả lời, đề nghị xử lý ngay")
    assert nudged.events == ["RepairRecorded", "BodyNudged"]
    notice = (await store.read_stream(case_id))[-1]
    assert notice.data["body"] == "UBND_TINH" and "Quá hạn trả lời" in notice.data["notice"]

    bad_bodies: list[tuple[Callable[..., Awaitable[RepairOutcome]], dict[str, str], str]] = [
        (nudge, {"body": "SO_NOI_VU"}, "repair.nudge.body"),
        (reassign, {"body": "KHONG_CO"}, "assign.body"),
    ]
    for action, kwargs, rule in bad_bodies:
        with pytest.raises(RepairRefused) as refused:
            await action(client, case_id, OPERATOR, "Lý do đủ dài để ghi nhận", **kwargs)
        assert refused.value.rule.startswith(rule), refused.value.rule
    with pytest.raises(RepairRefused) as refused:
        await nudge(client, case_id, OPERATOR, "ngắn")
    assert refused.value.rule == "repair.reason" and refused.value.status == 422
    count = len(await store.read_stream(case_id))

    moved = await reassign(client, case_id, OPERATOR, "Chuyển cho Sở Nội vụ theo chỉ đạo", body="SO_NOI_VU")
    assert moved.events == ["RepairRecorded", "Assigned"]
    stored = await store.read_stream(case_id)
    assert len(stored) == count + 2
    assert stored[-1].actor == "operator:Nguyễn Thị Vận hành" and stored[-1].data["body"] == "SO_NOI_VU"
    record = await store.get_case(case_id)
    assert record is not None and record.lead_body == "SO_NOI_VU"
    await assert_clean_stream(store, client, case_id)


async def test_an_overdue_case_nobody_acts_on_is_stalled_until_a_person_acts(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_id = await open_case(client, task_queue, received_at=datetime.now(UTC) - timedelta(days=40))

    async def overdue() -> bool:
        case = await store.get_case(case_id)
        return case is not None and case.overdue

    await until(overdue, "the acceptance deadline to be breached")
    (stall,) = await idle_stalls(store, FAST, case_ids=[case_id])
    assert stall.reason == "deadline_idle" and stall.remedies == ["nudge", "reassign"]
    assert "nobody has acted" in stall.detail
    # The machinery's own events (the breach) are not someone acting; a person's command is.
    await do(client, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    assert await idle_stalls(store, FAST, case_ids=[case_id]) == []
    later = datetime.now(UTC) + timedelta(days=3)
    (stall,) = await idle_stalls(store, FAST, case_ids=[case_id], now=later)
    assert "last acted on" in stall.detail


async def inject_fault(store: EventStore, case_ids: list[str]) -> AppendFault:
    fault = AppendFault(store, *case_ids, message="injected fault: connection to the archive lost")
    await fault.inject()
    return fault


async def test_a_paused_step_is_listed_as_paused_and_retry_unpauses_it(
    client: Client, store: EventStore, task_queue: str
) -> None:
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import PauseActivityRequest

    case_id = await open_case(client, task_queue)
    fault = await inject_fault(store, [case_id])
    try:
        sent = asyncio.create_task(do(client, case_id, {"type": "classify", "lead_body": "UBND_TINH"}, "p-1"))
        (stall,) = await until(lambda: inspect_case(client, case_id, FAST), "the step to fail")
        await client.workflow_service.pause_activity(PauseActivityRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id),
            identity="ops-test", id=stall.activity_id, reason="chờ khôi phục kho lưu trữ"))

        async def paused() -> list[Any]:
            return [s for s in await inspect_case(client, case_id, FAST) if s.reason == "activity_paused"]

        (stall,) = await until(paused, "the step to show as paused")
        assert "chờ khôi phục kho lưu trữ" in stall.detail and stall.remedies == ["retry"]
    finally:
        await fault.remove()
    outcome = await retry(client, case_id, OPERATOR, REASON)
    assert outcome.recorded and outcome.detail["retried"][0]["paused"] is True
    await sent
    assert await assert_clean_stream(store, client, case_id) == ["PetitionReceived", "Classified", "RepairRecorded"]


async def test_bulk_retry_retries_every_failing_case_of_the_filter_and_reports_each(
    client: Client, store: EventStore, task_queue: str
) -> None:
    cases = [await open_case(client, task_queue) for _ in range(3)]
    fault = await inject_fault(store, cases)
    try:
        sent = [asyncio.create_task(do(client, c, {"type": "classify", "lead_body": "UBND_TINH"})) for c in cases]

        async def all_failing() -> bool:
            return all([await inspect_case(client, c, FAST) for c in cases])

        await until(all_failing, "the three cases to stall")
        dry = await bulk_retry(client, store, OPERATOR, REASON, policy=FAST, kind="complaint", dry_run=True)
        assert set(cases) <= {i.case_id for i in dry.items if i.outcome == "would_retry"}
        # Retried while the fault is still there: removed first, a case's own next attempt could succeed before
        # the bulk retry lists it, and it would rightly not be retried. Its reset attempt then fails once more,
        # and the next one (a second later: the backoff starts again) finds the fault gone.
        report = await bulk_retry(client, store, OPERATOR, REASON, policy=FAST, kind="complaint", per_second=20)
    finally:
        await fault.remove()
    mine = [i for i in report.items if i.case_id in cases]
    assert [i.outcome for i in mine] == ["retried"] * 3, report
    await asyncio.gather(*sent)
    for case_id in cases:
        await until(lambda c=case_id: _has_repair(store, c), "the repair to be recorded")
        assert await assert_clean_stream(store, client, case_id) == [
            "PetitionReceived", "Classified", "RepairRecorded"]


async def _has_repair(store: EventStore, case_id: str) -> bool:
    return any(e.type == "RepairRecorded" for e in await store.read_stream(case_id))


async def test_a_reset_to_before_the_case_opened_is_recorded_once_the_new_run_has_opened_it(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_id = await open_case(client, task_queue)
    await do(client, case_id, {"type": "classify", "lead_body": "UBND_TINH"}, "o-1")
    history = (await client.get_workflow_handle(case_id).fetch_history()).events
    first = min(e.event_id for e in history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    done = await reset(client, store, case_id, OPERATOR, REASON, to_event_id=first)
    assert done.recorded, done.detail
    assert await assert_clean_stream(store, client, case_id) == ["PetitionReceived", "Classified", "RepairRecorded"]
