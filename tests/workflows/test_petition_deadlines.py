"""Petition workflows on Temporal's time-skipping server: statutory periods that last weeks, in seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.calendar import VN_TZ, local_date
from domain.common import Actor
from eventstore import EventStore
from worker import build_worker
from workflows.client import CommandRefused, send_command
from workflows.petition import CommandResult, PetitionStart, PetitionWorkflow

from .support import OFFICER, case_view, command, folded, intake


@pytest_asyncio.fixture
async def time_skipping_env(own_time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping_env


@pytest_asyncio.fixture
async def running(time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str) -> AsyncIterator[Worker]:
    worker = build_worker(time_skipping_env.client, store, task_queue=task_queue)
    async with worker:
        yield worker


async def start(env: WorkflowEnvironment, task_queue: str, kind: str, **overrides: object) -> WorkflowHandle[Any, Any]:
    now = await env.get_current_time()
    petition = intake(kind, now, **overrides)
    case_id = f"pet-ts-{petition.external_ref}"
    handle = await env.client.start_workflow(
        PetitionWorkflow.run, PetitionStart(intake=petition), id=case_id, task_queue=task_queue
    )
    return handle


async def until_open(client: Client, handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the case's first event is stored (a query before the first workflow task may fail)."""
    for _ in range(200):
        try:
            if await handle.query(PetitionWorkflow.view) is not None:
                return
        except RPCError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the case did not open")


async def do(client: Client, case_id: str, payload: dict[str, Any], actor: Actor = OFFICER) -> CommandResult:
    return await send_command(client, case_id, command(payload, actor))


async def accepted(env: WorkflowEnvironment, task_queue: str, kind: str,
                   **classify: object) -> WorkflowHandle[Any, Any]:
    handle = await start(env, task_queue, kind)
    await until_open(env.client, handle)
    await do(env.client, handle.id, {"type": "classify", "lead_body": "UBND_TINH", **classify})
    await do(env.client, handle.id, {"type": "accept", "decision_no": "12/QĐ-UBND"})
    return handle


async def test_a_complaint_not_decided_in_30_days_breaches_and_starts_front_supervision(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    handle = await accepted(env, task_queue, "complaint")
    view = await case_view(handle)
    resolution = next(d for d in view.deadlines if d.key == "complaint.resolution")
    assert resolution.amount == 30 and resolution.unit == "calendar"
    assert resolution.legal_basis.startswith("Luật Khiếu nại")
    await env.sleep(timedelta(days=47))
    view = await case_view(handle)
    resolution = next(d for d in view.deadlines if d.key == "complaint.resolution")
    assert resolution.breached and resolution.approached and view.overdue
    assert view.front_supervision == f"{handle.id}-front"
    types = [e.type for e in await store.read_stream(handle.id)]
    assert types.count("DeadlineBreached") >= 1 and "FrontSupervisionStarted" in types
    assert types.index("DeadlineApproaching") < types.index("DeadlineBreached")
    assert (await folded(store, handle.id)) == await handle.query(PetitionWorkflow.state_snapshot)
    assert (await store.verify(handle.id)).ok


async def test_a_complex_complaint_gets_45_days(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await accepted(time_skipping_env, task_queue, "complaint", complex=True)
    view = await case_view(handle)
    resolution = next(d for d in view.deadlines if d.key == "complaint.resolution")
    assert (resolution.amount, resolution.variant) == (45, "complex")


async def test_a_denunciations_third_extension_is_refused(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    handle = await accepted(env, task_queue, "denunciation", especially_complex=True,
                            reason="vụ việc đặc biệt phức tạp: nhiều nội dung, nhiều địa điểm")
    today = local_date(await env.get_current_time()).isoformat()
    for n in (1, 2):
        await send_command(env.client, handle.id, command({
            "type": "extend", "decision_no": f"{n}/QĐ-GH", "decision_date": today, "reason": "vụ việc phức tạp"}))
    version = (await case_view(handle)).version
    with pytest.raises(CommandRefused) as refused:
        await send_command(env.client, handle.id, command({
            "type": "extend", "decision_no": "3/QĐ-GH", "decision_date": today, "reason": "vụ việc phức tạp"}))
    assert refused.value.rule == "denunciation.extension_limit"
    view = await case_view(handle)
    resolution = next(d for d in view.deadlines if d.key == "denunciation.resolution")
    assert resolution.extensions == 2 and view.version == version
    assert await store.stream_version(handle.id) == version


async def test_a_withdrawn_denunciation_with_signs_of_violation_continues(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    handle = await accepted(env, task_queue, "denunciation")
    result = await send_command(env.client, handle.id, command({
        "type": "withdraw", "signs_of_violation": True, "reason": "người tố cáo xin rút đơn"}))
    assert result.events == ["Withdrawn"]
    assert result.case.status == "accepted" and result.case.withdrawn
    result = await send_command(env.client, handle.id, command({
        "type": "record_verification", "findings": "Có dấu hiệu vi phạm trong việc cấp phép."}))
    assert result.case.status == "verifying"


async def test_a_second_instance_appeal_starts_its_own_45_day_clock(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    handle = await accepted(env, task_queue, "complaint")
    await do(env.client, handle.id, {"type": "record_verification", "findings": "Đúng quy định",
                                     "demand_matches_findings": True})
    await do(env.client, handle.id, {"type": "decide", "outcome": "not_upheld", "decision_no": "20/QĐ-GQKN",
                                     "summary": "Giữ nguyên quyết định thu hồi đất"})
    result = await do(env.client, handle.id, {"type": "appeal", "to_body": "THANH_TRA_TINH"})
    second_id = f"{handle.id}-L2"
    assert second_id in result.case.linked_cases
    second = env.client.get_workflow_handle_for(PetitionWorkflow.run, second_id)
    await until_open(env.client, second)
    view = await case_view(second)
    assert view.instance == 2 and view.parent_case_id == handle.id
    # The second instance is received by the body it was appealed to, which handles it.
    inspector = Actor(id="thanh-tra-01", role="body", body="THANH_TRA_TINH")
    await do(env.client, second_id, {"type": "classify", "lead_body": "THANH_TRA_TINH"}, inspector)
    result = await do(env.client, second_id, {"type": "accept", "decision_no": "5/QĐ-TL"}, inspector)
    resolution = next(d for d in result.case.deadlines if d.key == "complaint2.resolution")
    assert resolution.amount == 45


async def test_a_long_case_continues_as_new_keeping_its_state_and_its_pending_timers(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    petition = intake("recommendation", now)
    handle = await env.client.start_workflow(
        PetitionWorkflow.run, PetitionStart(intake=petition, history_limit=60),
        id=f"pet-can-{petition.external_ref}", task_queue=task_queue,
    )
    await until_open(env.client, handle)
    await do(env.client, handle.id, {"type": "classify", "lead_body": "UBND_TINH"})
    await do(env.client, handle.id, {"type": "accept", "decision_no": "7/QĐ"})
    for n in range(30):
        await send_command(env.client, handle.id, command(
            {"type": "assign", "body": "UBND_TINH", "officer": f"Cán bộ số {n}"}, command_id=f"assign-{n}"))
    first_run = handle.first_execution_run_id or handle.result_run_id
    first = await env.client.get_workflow_handle(handle.id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW, "the case never continued as new"
    current = await env.client.get_workflow_handle(handle.id).fetch_history()
    assert len(current.events) < 200  # the current run's history stays bounded
    # A command id seen before the hand-over is still recognised after it.
    again = await send_command(env.client, handle.id, command(
        {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ số 3"}, command_id="assign-3"))
    assert again.duplicate
    # And so is the request it named: the same id with another command is refused after the hand-over too.
    with pytest.raises(CommandRefused) as reused:
        await send_command(env.client, handle.id, command(
            {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ khác"}, command_id="assign-3"))
    assert reused.value.rule == "idempotency.key_reused"
    view = await case_view(handle)
    assert view.version == 3 + 30 and view.officer == "Cán bộ số 29"
    # The resolution deadline set before the hand-overs still fires after them.
    await env.sleep(timedelta(days=45))
    view = await case_view(handle)
    assert next(d for d in view.deadlines if d.key == "recommendation.resolution").breached
    stored = await store.read_stream(handle.id)
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    assert (await folded(store, handle.id)) == await handle.query(PetitionWorkflow.state_snapshot)


async def test_a_command_that_moves_no_deadline_leaves_the_timer_running_and_upserts_nothing_unchanged(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    """Since the `quiet-commands` patch: a command adds its update and its append to the history, nothing more
    (no timer cancelled and started again, no search attributes written with the values they had), and the
    deadline timer that kept running still fires on time."""
    env = time_skipping_env
    handle = await accepted(env, task_queue, "complaint")
    await do(env.client, handle.id, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Lê Thị Hà"})
    before = len((await handle.fetch_history()).events)
    for n in range(4):
        await do(env.client, handle.id, {"type": "assign", "body": "UBND_TINH", "officer": f"Cán bộ Trần Văn {n}"})
    new = [e.WhichOneof("attributes") for e in (await handle.fetch_history()).events[before:]]
    quiet = {"timer_started_event_attributes", "timer_canceled_event_attributes",
             "upsert_workflow_search_attributes_event_attributes"}
    assert not quiet & set(new), new
    assert new.count("activity_task_completed_event_attributes") == 4
    assert new.count("workflow_execution_update_completed_event_attributes") == 4
    # The resolution timer armed before these commands is the one that fires.
    await env.sleep(timedelta(days=20))
    await env.sleep(timedelta(days=20))
    view = await case_view(handle)
    assert next(d for d in view.deadlines if d.key == "complaint.resolution").breached
    stored = await store.read_stream(handle.id)
    assert [e.type for e in stored].count("DeadlineBreached") == 1


# -- the legal periods on fixed dates: the clock is moved to 2027 and the dates were counted by hand --------

#: Mon 4 Jan 2027, 09:00 in Vietnam. Tết 2027: Thu 4 to Wed 10 Feb are days off (with the weekend 6-7 Feb).
FIXED_START = datetime(2027, 1, 4, 9, 0, tzinfo=VN_TZ)


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    assert now < moment, f"the time-skipping server starts at {now}: move the scenario's dates past it"
    await env.sleep(moment - now)


def vn(day: str, hour: int = 9) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=VN_TZ).replace(hour=hour)


async def view_of(handle: WorkflowHandle[Any, Any]) -> object:
    return await case_view(handle)


async def test_a_suspended_denunciation_does_not_breach_and_breaches_on_the_recomputed_day(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    await skip_to(env, FIXED_START)
    handle = await accepted(env, task_queue, "denunciation")
    await do(env.client, handle.id, {"type": "notify", "about": "acceptance", "recipients": ["Người tố cáo"],
                                     "doc_no": "2/TB"})
    view = await case_view(handle)
    resolution = next(d for d in view.deadlines if d.key == "denunciation.resolution")
    assert resolution.due_on == "2027-02-03"  # Mon 4 Jan + 30 = Wed 3 Feb
    # An ordinary case is not extended (Luật Tố cáo 2018, Điều 30).
    with pytest.raises(CommandRefused) as refused:
        await do(env.client, handle.id, {"type": "extend", "decision_no": "1/QĐ-GH", "decision_date": "2027-01-04",
                                         "reason": "phức tạp"})
    assert refused.value.rule == "denunciation.extension_not_allowed" and "Điều 30" in refused.value.message

    # Suspended Mon 1 Feb (5 Jan..1 Feb counted: 28 days, 2 remain); its old due date passes in Tết.
    await skip_to(env, vn("2027-02-01"))
    await do(env.client, handle.id, {"type": "suspend", "reason": "Chờ kết quả giám định"})
    # The suspension decision is sent to the parties (Điều 34 khoản 4): nothing else runs while it is suspended.
    await do(env.client, handle.id, {"type": "notify", "about": "suspension", "doc_no": "3/QĐ-TĐC",
                                     "recipients": ["Người tố cáo", "Người bị tố cáo"]})
    await skip_to(env, vn("2027-02-11"))
    view = await case_view(handle)
    types = [e.type for e in await store.read_stream(handle.id)]
    assert "DeadlineBreached" not in types and not view.overdue and view.front_supervision is None
    assert view.suspended and view.next_due_at is None

    # Resumed Thu 11 Feb: 12, 13 Feb -> Sat 13 Feb -> Mon 15 Feb (4 Jan + 30 + 10 days not counted).
    result = await do(env.client, handle.id, {"type": "resume", "reason": "Đã có kết quả giám định"})
    assert result.events == ["Resumed"]
    [resumed] = [e for e in await store.read_stream(handle.id) if e.type == "Resumed"]
    assert [(d["key"], d["due_on"]) for d in resumed.data["deadlines"]] == [("denunciation.resolution", "2027-02-15")]
    assert resumed.legal_basis == "Luật Tố cáo 2018, Điều 34 khoản 2"

    await skip_to(env, vn("2027-02-15", 23))
    assert not (await case_view(handle)).overdue
    await skip_to(env, vn("2027-02-16", 1))
    view = await case_view(handle)
    resolution = next(d for d in view.deadlines if d.key == "denunciation.resolution")
    assert resolution.breached and resolution.due_on == "2027-02-15" and view.overdue
    assert view.front_supervision == f"{handle.id}-front"
    assert (await folded(store, handle.id)) == await handle.query(PetitionWorkflow.state_snapshot)


async def test_an_especially_complex_denunciation_is_extended_twice_from_acceptance(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    await skip_to(env, FIXED_START)
    handle = await accepted(env, task_queue, "denunciation", especially_complex=True,
                            reason="Nhiều người tố cáo về nhiều nội dung")
    await do(env.client, handle.id, {"type": "notify", "about": "acceptance", "recipients": ["Người tố cáo"],
                                     "doc_no": "2/TB"})

    async def due() -> str:
        view = await case_view(handle)
        return next(d.due_on for d in view.deadlines if d.key == "denunciation.resolution")

    with pytest.raises(CommandRefused) as refused:
        await do(env.client, handle.id, {"type": "extend", "decision_no": "1/QĐ-GH", "decision_date": "2027-01-05",
                                         "reason": "phức tạp"})
    assert refused.value.rule == "extend.decision_date_future"
    await do(env.client, handle.id, {"type": "extend", "decision_no": "1/QĐ-GH", "decision_date": "2027-01-04",
                                     "reason": "phức tạp"})
    assert await due() == "2027-03-05"  # 4 Jan + 60 = Fri 5 Mar
    await do(env.client, handle.id, {"type": "extend", "decision_no": "2/QĐ-GH", "decision_date": "2027-01-04",
                                     "reason": "đặc biệt phức tạp"})
    assert await due() == "2027-04-05"  # 4 Jan + 90 = Sun 4 Apr -> Mon 5 Apr
    with pytest.raises(CommandRefused) as refused:
        await do(env.client, handle.id, {"type": "extend", "decision_no": "3/QĐ-GH", "decision_date": "2027-01-04",
                                         "reason": "thêm"})
    assert refused.value.rule == "denunciation.extension_limit"
    # It breaches after the extended end, not after the first one.
    await skip_to(env, vn("2027-03-08"))
    assert not (await case_view(handle)).overdue
    await skip_to(env, vn("2027-04-06", 1))
    assert (await case_view(handle)).overdue
