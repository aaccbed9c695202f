"""`FrontSupervisionWorkflow` on Temporal's time-skipping server and a real PostgreSQL: the Front's waiting
periods (days and weeks) pass in seconds, and the ladder's record in the event store stays the truth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy
from domain import front_supervision as fs
from domain.calendar import end_of_day, local_date
from domain.common import Actor
from domain.deadlines import CaseRules, compute_deadline
from eventstore import EventStore
from worker import build_worker, project_converter
from workflows.front_supervision import FrontCommandResult, FrontSupervisionStart, FrontSupervisionWorkflow

FRONT_OFFICER = Actor(id="ttmt-01", role="body", body="UBMTTQ_TINH")
RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2025, 2027, load_calendar_overrides()))


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 15) -> None:
    """Wait (in real time; the test server's clock stands still meanwhile) until `check` holds."""
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def stream_types(store: EventStore, stream_id: str) -> list[str]:
    return [e.type for e in await store.read_stream(stream_id)]


async def folded(store: EventStore, stream_id: str) -> fs.SupervisionState | None:
    """The supervision rebuilt from the PostgreSQL stream alone."""
    return fs.fold(
        fs.REGISTRY.parse(e.type, occurred_at=e.occurred_at, actor=e.actor, reason=e.reason,
                          legal_basis=e.legal_basis, data=e.data)
        for e in await store.read_stream(stream_id)
    )


async def execute(
    handle: WorkflowHandle[Any, Any], command: fs.FrontCommand, command_id: str | None = None
) -> FrontCommandResult:
    request = fs.FrontCommandRequest.model_validate(
        {"command": command, "actor": FRONT_OFFICER, "command_id": command_id or uuid.uuid4().hex}
    )
    return await handle.execute_update(FrontSupervisionWorkflow.execute, request)


async def test_an_unanswered_recommendation_escalates_itself_and_the_record_matches_the_workflow(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    env = time_skipping_env
    today = local_date(await env.get_current_time())
    # The petition's resolution period ended yesterday (a complaint accepted 31 days ago, its end moved to
    # yesterday so the test does not depend on where weekends and holidays fall).
    accepted = compute_deadline(RULES.policy.rule("complaint.resolution"), today - timedelta(days=31), RULES.calendar)
    yesterday = today - timedelta(days=1)
    watched = accepted.model_copy(update={"due_on": yesterday, "due_at": end_of_day(yesterday),
                                          "warn_at": end_of_day(yesterday - timedelta(days=5))})
    case_id = f"pet-fs-{uuid.uuid4().hex[:10]}"
    supervision_id = f"{case_id}-front"

    async with build_worker(env.client, store, task_queue=task_queue, workflows=[FrontSupervisionWorkflow]):
        handle = await env.client.start_workflow(
            FrontSupervisionWorkflow.run,
            FrontSupervisionStart(case_id=case_id, trigger="breach", rules=RULES, watched_due=watched,
                                  case_kind="complaint", resolver="UBND_TINH"),
            id=supervision_id, task_queue=task_queue,
        )

        async def opened() -> bool:
            return await handle.query(FrontSupervisionWorkflow.view) is not None

        await eventually(opened, "the supervision to open")
        view = await handle.query(FrontSupervisionWorkflow.view)
        assert view is not None and view.status == "watching" and view.lead_body == "UBMTTQ_TINH"
        urge_due = next(d for d in view.deadlines if d.key == fs.URGE_AFTER_BREACH)
        # Counted from the day of the breach (today), in working days.
        assert urge_due.started_on == today.isoformat() and urge_due.unit == "working" and urge_due.amount == 5
        assert "DeadlineBreached" not in await stream_types(store, supervision_id)

        # Five working days are at most 5 + 2 weekends + a Tết week away: 20 days pass every one of them.
        await env.sleep(timedelta(days=20))

        async def urge_breached() -> bool:
            return any(e.type == "DeadlineBreached" and e.data["key"] == fs.URGE_AFTER_BREACH
                       for e in await store.read_stream(supervision_id))

        await eventually(urge_breached, "the urge period to be breached")
        view = await handle.query(FrontSupervisionWorkflow.view)
        assert view is not None and view.overdue
        record = await store.get_case(supervision_id)
        assert record is not None and record.kind == "front_supervision" and record.overdue
        assert record.bodies == ["UBMTTQ_TINH", "UBND_TINH"]

        # A command the ladder does not allow is refused before it enters the history.
        version = await store.stream_version(supervision_id)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await execute(handle, fs.AcceptResponse())
        assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "accept.no_response"
        assert await store.stream_version(supervision_id) == version

        result = await execute(handle, fs.Urge(doc_no="15/MTTQ-BTT"), "urge-1")
        assert result.supervision.status == "urged" and result.events == ["FrontUrged"]
        again = await execute(handle, fs.Urge(doc_no="15/MTTQ-BTT"), "urge-1")
        assert again.duplicate  # a retried command changes nothing
        result = await execute(handle, fs.SendRecommendation(to_body="UBND_TINH", doc_no="22/KN-MTTQ"))
        assert result.supervision.status == "recommendation_sent"
        # On a complaint the law sets the answer's period (Luật Khiếu nại 2011, Điều 66 khoản 2), not the policy.
        answer_due = next(d for d in result.supervision.deadlines
                          if d.key == "complaint.front_recommendation_answer")
        assert answer_due.amount == 7 and answer_due.unit == "calendar"
        assert not any(d.key == fs.RECOMMENDATION_RESPONSE for d in result.supervision.deadlines)

        # No answer: seven days (moved at most a few days off a holiday) pass, and the system escalates.
        await env.sleep(timedelta(days=20))

        async def escalated() -> bool:
            v = await handle.query(FrontSupervisionWorkflow.view)
            return v is not None and v.status == "escalated"

        await eventually(escalated, "the automatic escalation")
        events = await store.read_stream(supervision_id)
        escalation = next(e for e in events if e.type == "FrontEscalated")
        assert escalation.actor == "system:danvan"
        assert escalation.data["automatic"] is True and escalation.data["target"] == "party_committee"
        assert escalation.data["after_deadline"] == answer_due.key
        assert [e.type for e in events][-2:] == ["DeadlineBreached", "FrontEscalated"]
        record = await store.get_case(supervision_id)
        assert record is not None and record.status == "escalated" and not record.overdue
        assert record.summary["escalation"]["to_body"] == "TINH_UY"

        # The stream is intact, and the workflow's view is exactly the fold of what was stored.
        assert (await store.verify(supervision_id)).ok
        state = await folded(store, supervision_id)
        assert state is not None
        assert await handle.query(FrontSupervisionWorkflow.state_snapshot) == state
        assert await handle.query(FrontSupervisionWorkflow.view) == fs.supervision_view(state)

        result = await execute(handle, fs.Close())
        assert result.supervision.status == "closed"
        final = await handle.result()
        assert final.status == "closed" and final.version == len(await store.read_stream(supervision_id))

    # Replaying the recorded history with today's code makes the same decisions.
    await Replayer(workflows=[FrontSupervisionWorkflow], data_converter=project_converter()).replay_workflow(
        await handle.fetch_history()
    )
