"""The periods the periods-completed patch adds, on Temporal's time-skipping server, on fixed 2027 dates.

Each case starts on Mon 4 Jan 2027 at 09:00 in Vietnam and the clock is moved to the days that matter. The days
were counted by hand on the 2027 calendar (Tết: Thu 4 to Wed 10 Feb off, with the weekend 6-7 Feb; Fri 30 Apr
and Mon 3 May off) and are the ones of tests/unit/test_completed_periods.py and docs/legal-reference.md §3.6.
Each period starts at the event that owes it, warns, is missed (the case is then overdue in the `cases`
projection) and is met by the command that does the thing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.calendar import VN_TZ
from domain.common import Actor
from eventstore import EventStore
from worker import build_worker
from workflows.client import CommandRefused, send_command
from workflows.petition import PetitionStart, PetitionWorkflow

from .support import OFFICER, case_view, command, folded, intake

INSPECTOR = Actor(id="thanh-tra-01", role="body", body="THANH_TRA_TINH")
LAND_OFFICE = Actor(id="so-tn-01", role="body", body="SO_TAI_NGUYEN")


@pytest_asyncio.fixture
async def env(own_time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping_env


@pytest_asyncio.fixture
async def running(env: WorkflowEnvironment, store: EventStore, task_queue: str) -> AsyncIterator[Worker]:
    async with build_worker(env.client, store, task_queue=task_queue) as worker:
        yield worker


def vn(day: str, hour: int = 9) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=VN_TZ).replace(hour=hour)


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    assert now < moment, f"the time-skipping server is at {now}: move the scenario's dates past it"
    await env.sleep(moment - now)


async def until_open(handle: WorkflowHandle[Any, Any]) -> None:
    for _ in range(200):
        try:
            if await handle.query(PetitionWorkflow.view) is not None:
                return
        except RPCError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the case did not open")


async def opened(env: WorkflowEnvironment, task_queue: str, kind: str, **overrides: Any) -> WorkflowHandle[Any, Any]:
    await skip_to(env, vn("2027-01-04"))
    petition = intake(kind, await env.get_current_time(), **overrides)
    handle = await env.client.start_workflow(PetitionWorkflow.run, PetitionStart(intake=petition),
                                             id=f"pet-cp-{petition.external_ref}", task_queue=task_queue)
    await until_open(handle)
    return handle


async def do(client: Client, case_id: str, payload: dict[str, Any], actor: Actor = OFFICER) -> Any:
    return await send_command(client, case_id, command(payload, actor))


async def refused(client: Client, case_id: str, payload: dict[str, Any], actor: Actor = OFFICER) -> str:
    with pytest.raises(CommandRefused) as refusal:
        await do(client, case_id, payload, actor)
    return refusal.value.rule


async def accept(client: Client, case_id: str, actor: Actor = OFFICER) -> None:
    lead = actor.body or "UBND_TINH"
    await do(client, case_id, {"type": "classify", "lead_body": lead}, actor)
    await do(client, case_id, {"type": "accept", "decision_no": "1/QĐ-TL"}, actor)


async def conclude(client: Client, case_id: str, outcome: str, actor: Actor = OFFICER) -> None:
    await do(client, case_id, {"type": "record_verification", "findings": "Kết quả xác minh tại chỗ.",
                               "demand_matches_findings": True}, actor)
    await do(client, case_id, {"type": "decide", "outcome": outcome, "decision_no": "9/QĐ-GQ",
                               "summary": "Kết luận sau xác minh."}, actor)


async def deadline(handle: WorkflowHandle[Any, Any], key: str) -> Any:
    view = await case_view(handle)
    return next(d for d in view.deadlines if d.key == key)


async def marks(store: EventStore, case_id: str, key: str) -> list[str]:
    """The timer events of `key` in the stored stream, in order."""
    return [ev.type for ev in await store.read_stream(case_id)
            if ev.type in ("DeadlineApproaching", "DeadlineBreached", "DecisionTookEffect") and ev.data["key"] == key]


async def overdue(store: EventStore, case_id: str) -> bool:
    row = await store.get_case(case_id)
    assert row is not None
    return row.overdue


async def test_a_denunciation_owes_its_suspension_notice_then_its_conclusions_delivery_and_publication(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await opened(env, task_queue, "denunciation")
    case = handle.id
    await accept(env.client, case)
    await do(env.client, case, {"type": "notify", "about": "acceptance", "recipients": ["Người tố cáo"],
                                "doc_no": "2/TB"})

    # Suspended Fri 29 Jan: the notice of the suspension is due in 5 working days, over Tết: Fri 12 Feb.
    await skip_to(env, vn("2027-01-29"))
    await do(env.client, case, {"type": "suspend", "reason": "Chờ kết quả giám định"})
    notice = await deadline(handle, "denunciation.suspension_notice")
    assert (notice.due_on, notice.legal_basis) == ("2027-02-12", "Luật Tố cáo 2018, Điều 34 khoản 4")
    await skip_to(env, vn("2027-02-11", 1))
    assert await marks(store, case, "denunciation.suspension_notice") == ["DeadlineApproaching"]
    assert not await overdue(store, case)
    await skip_to(env, vn("2027-02-13", 1))
    assert await marks(store, case, "denunciation.suspension_notice") == ["DeadlineApproaching", "DeadlineBreached"]
    assert await overdue(store, case)
    assert (await case_view(handle)).front_supervision is None
    # Mon 15 Feb: the notice is sent (late) while the case is suspended; then it resumes.
    await skip_to(env, vn("2027-02-15"))
    await do(env.client, case, {"type": "notify", "about": "suspension", "doc_no": "3/QĐ-TĐC",
                                "recipients": ["Người tố cáo", "Người bị tố cáo"]})
    assert (await deadline(handle, "denunciation.suspension_notice")).outcome == "late"
    assert not await overdue(store, case)
    await do(env.client, case, {"type": "resume", "reason": "Đã có kết quả giám định"})
    # 4 Jan + 30 + 17 days not counted (29 Jan to 15 Feb) = Sat 20 Feb -> Mon 22 Feb.
    assert (await deadline(handle, "denunciation.resolution")).due_on == "2027-02-22"

    # Concluded Tue 16 Feb: sent within 5 working days (Tue 23 Feb), published within 7 (Thu 25 Feb).
    await skip_to(env, vn("2027-02-16"))
    await conclude(env.client, case, "no_violation")
    assert (await deadline(handle, "denunciation.conclusion_delivery")).due_on == "2027-02-23"
    assert (await deadline(handle, "denunciation.publication")).due_on == "2027-02-25"
    await do(env.client, case, {"type": "notify", "about": "decision", "doc_no": "10/TB",
                                "recipients": ["Người tố cáo", "Người bị tố cáo"]})
    assert (await deadline(handle, "denunciation.conclusion_delivery")).outcome == "on_time"
    await skip_to(env, vn("2027-02-26", 1))
    assert await marks(store, case, "denunciation.publication") == ["DeadlineApproaching", "DeadlineBreached"]
    assert await overdue(store, case)
    await do(env.client, case, {"type": "notify", "about": "publication", "channel": "portal",
                                "recipients": ["Cổng thông tin điện tử tỉnh"], "doc_no": "11/TB"})
    assert (await deadline(handle, "denunciation.publication")).outcome == "late"
    assert not await overdue(store, case)
    assert (await folded(store, case)) == await handle.query(PetitionWorkflow.state_snapshot)


async def test_a_complaint_decision_takes_effect_after_30_days_and_is_carried_out_from_then(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await opened(env, task_queue, "complaint")
    case = handle.id
    await accept(env.client, case)
    await skip_to(env, vn("2027-01-05"))
    await conclude(env.client, case, "not_upheld")
    await do(env.client, case, {"type": "notify", "about": "decision", "recipients": ["Ông Bình"], "doc_no": "3/TB"})
    # Tue 5 Jan + 30 = Thu 4 Feb, in Tết -> Thu 11 Feb (Luật Khiếu nại 2011, Điều 44).
    assert (await deadline(handle, "complaint.decision_effect")).due_on == "2027-02-11"
    implement = {"type": "record_implementation", "summary": "Thi hành quyết định giải quyết khiếu nại."}
    assert await refused(env.client, case, implement) == "implementation.not_in_effect"
    await skip_to(env, vn("2027-02-07", 1))
    assert await marks(store, case, "complaint.decision_effect") == ["DeadlineApproaching"]
    await skip_to(env, vn("2027-02-12", 1))
    assert await marks(store, case, "complaint.decision_effect") == ["DeadlineApproaching", "DecisionTookEffect"]
    view = await case_view(handle)
    assert view.decision is not None and view.decision["in_effect_on"] == "2027-02-11" and not view.overdue
    assert not await overdue(store, case)
    assert await refused(env.client, case, {"type": "appeal"}) == "complaint.decision_in_effect"
    result = await do(env.client, case, implement)
    assert result.events == ["ImplementationRecorded"] and result.case.status == "implementing"


async def test_a_second_instance_decision_is_sent_within_7_days_and_the_appealed_one_never_takes_effect(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await opened(env, task_queue, "complaint")
    first = handle.id
    await accept(env.client, first)
    await conclude(env.client, first, "not_upheld")
    await do(env.client, first, {"type": "notify", "about": "decision", "recipients": ["Ông Bình"], "doc_no": "3/TB"})
    await skip_to(env, vn("2027-01-11"))
    await do(env.client, first, {"type": "appeal", "to_body": "THANH_TRA_TINH"})
    assert (await deadline(handle, "complaint.decision_effect")).outcome == "cancelled"

    second = env.client.get_workflow_handle_for(PetitionWorkflow.run, f"{first}-L2")
    await until_open(second)
    await accept(env.client, second.id, INSPECTOR)
    await skip_to(env, vn("2027-01-29"))
    await conclude(env.client, second.id, "not_upheld", INSPECTOR)
    # Fri 29 Jan + 7 = Fri 5 Feb, in Tết -> Thu 11 Feb (Luật Khiếu nại 2011, Điều 41 khoản 1).
    delivery = await deadline(second, "complaint2.decision_delivery")
    assert (delivery.due_on, delivery.unit, delivery.legal_basis) == (
        "2027-02-11", "calendar", "Luật Khiếu nại 2011, Điều 41 khoản 1")
    assert (await deadline(second, "complaint.decision_effect")).due_on == "2027-03-01"  # Sun 28 Feb -> Mon 1 Mar
    await skip_to(env, vn("2027-02-10", 1))
    assert await marks(store, second.id, "complaint2.decision_delivery") == ["DeadlineApproaching"]
    await skip_to(env, vn("2027-02-12", 1))
    assert await marks(store, second.id, "complaint2.decision_delivery") == ["DeadlineApproaching", "DeadlineBreached"]
    assert await overdue(store, second.id)
    await do(env.client, second.id, {"type": "notify", "about": "decision", "doc_no": "8/TB",
                                     "recipients": ["Ông Bình", "UBND tỉnh"]}, INSPECTOR)
    assert (await deadline(second, "complaint2.decision_delivery")).outcome == "late"
    assert not await overdue(store, second.id)
    assert await marks(store, first, "complaint.decision_effect") == []  # the appealed decision never took effect


async def test_a_repeated_denunciation_is_handled_by_the_superior_within_20_days(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await opened(env, task_queue, "denunciation")
    first = handle.id
    await accept(env.client, first)
    await skip_to(env, vn("2027-01-15"))
    await conclude(env.client, first, "no_violation")
    await skip_to(env, vn("2027-01-20"))
    result = await do(env.client, first, {"type": "appeal", "to_body": "THANH_TRA_TINH"})
    assert result.events == ["EscalatedSecondInstance"]
    second = env.client.get_workflow_handle_for(PetitionWorkflow.run, f"{first}-L2")
    await until_open(second)
    view = await case_view(second)
    assert (view.kind, view.instance) == ("denunciation", 2)
    # Received Wed 20 Jan + 20 = Tue 9 Feb, in Tết -> Thu 11 Feb (Luật Tố cáo 2018, Điều 37 khoản 2).
    repeated = await deadline(second, "denunciation.repeated")
    assert (repeated.due_on, repeated.legal_basis) == ("2027-02-11", "Luật Tố cáo 2018, Điều 37 khoản 2")
    await skip_to(env, vn("2027-02-12", 1))
    assert await marks(store, second.id, "denunciation.repeated") == ["DeadlineApproaching", "DeadlineBreached"]
    assert await overdue(store, second.id)
    assert (await case_view(second)).front_supervision == f"{second.id}-front"
    await accept(env.client, second.id, INSPECTOR)
    assert (await deadline(second, "denunciation.repeated")).outcome == "late"
    assert not await overdue(store, second.id)


async def test_a_recommendation_forwarded_by_the_reception_board_is_answered_to_it_twice(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await opened(env, task_queue, "recommendation", channel="reception_forwarded",
                          subject="Kiến nghị sửa đường liên xã", content="Ban tiếp công dân tỉnh chuyển kiến nghị.")
    case = handle.id
    # Mon 4 Jan: 7 working days -> Wed 13 Jan (Luật Tiếp công dân 2013, Điều 27 khoản 2).
    assert (await deadline(handle, "reception.forwarder_notice")).due_on == "2027-01-13"
    await accept(env.client, case)
    await skip_to(env, vn("2027-01-14", 1))
    assert await marks(store, case, "reception.forwarder_notice") == ["DeadlineApproaching", "DeadlineBreached"]
    assert await overdue(store, case)
    await do(env.client, case, {"type": "notify", "about": "forwarder", "recipients": ["Ban tiếp công dân tỉnh"],
                                "doc_no": "1/TB"})
    assert (await deadline(handle, "reception.forwarder_notice")).outcome == "late"
    assert not await overdue(store, case)
    # Answered Wed 3 Feb: the result goes on within 5 working days, over Tết: Wed 17 Feb (Điều 28 khoản 2).
    await skip_to(env, vn("2027-02-03"))
    await do(env.client, case, {"type": "decide", "outcome": "answered", "decision_no": "20/CV",
                                "summary": "Trả lời kiến nghị"})
    assert (await deadline(handle, "reception.result_notice")).due_on == "2027-02-17"
    await skip_to(env, vn("2027-02-16"))
    await do(env.client, case, {"type": "notify", "about": "forwarder", "recipients": ["Ban tiếp công dân tỉnh"],
                                "doc_no": "21/TB"})
    assert (await deadline(handle, "reception.result_notice")).outcome == "on_time"
    assert await marks(store, case, "reception.result_notice") == ["DeadlineApproaching"]


async def test_a_body_asked_to_coordinate_on_a_voters_petition_has_15_days(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    handle = await opened(env, task_queue, "voter_petition", channel="voter_meeting",
                          subject="Kiến nghị đầu tư đường huyện", content="Cử tri xã Nam Hồng kiến nghị.")
    case = handle.id
    await accept(env.client, case)
    await skip_to(env, vn("2027-01-20"))
    await do(env.client, case, {"type": "request_coordination", "subject": "Số liệu đầu tư",
                                "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state"}]})
    # Wed 20 Jan + 15 = Thu 4 Feb, in Tết -> Thu 11 Feb (Quyết định 33/2017/QĐ-TTg).
    asked = await deadline(handle, "coordination.R1.SO_TAI_NGUYEN")
    assert asked.due_on == "2027-02-11" and asked.statutory and asked.legal_basis.startswith("Quyết định 33/2017")
    await skip_to(env, vn("2027-02-09", 1))
    assert await marks(store, case, "coordination.R1.SO_TAI_NGUYEN") == ["DeadlineApproaching"]
    await skip_to(env, vn("2027-02-12", 1))
    assert await marks(store, case, "coordination.R1.SO_TAI_NGUYEN") == ["DeadlineApproaching", "DeadlineBreached"]
    assert await overdue(store, case)
    await do(env.client, case, {"type": "respond", "request_id": "R1", "body": "SO_TAI_NGUYEN",
                                "response": "Đã gửi số liệu đầu tư."}, LAND_OFFICE)
    assert (await deadline(handle, "coordination.R1.SO_TAI_NGUYEN")).outcome == "late"
    assert not await overdue(store, case)
