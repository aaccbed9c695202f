"""Dated acts on Temporal's time-skipping server: the periods a back-dated act starts run from its date, and one
already over when the act is recorded is breached at once, the case going on as usual."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.calendar import local_date
from eventstore import EventStore
from worker import build_worker
from workflows.client import send_command
from workflows.petition import PetitionStart, PetitionWorkflow

from .support import case_view, command, folded, intake


@pytest_asyncio.fixture
async def time_skipping_env(own_time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping_env


@pytest_asyncio.fixture
async def running(time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str) -> AsyncIterator[Worker]:
    async with build_worker(time_skipping_env.client, store, task_queue=task_queue) as worker:
        yield worker


async def received(env: WorkflowEnvironment, task_queue: str, kind: str, days_ago: int) -> str:
    now = await env.get_current_time()
    petition = intake(kind, now - timedelta(days=days_ago))
    case_id = f"pet-dated-{petition.external_ref}"
    handle = await env.client.start_workflow(PetitionWorkflow.run, PetitionStart(intake=petition), id=case_id,
                                             task_queue=task_queue)
    for _ in range(200):
        if await handle.query(PetitionWorkflow.view) is not None:
            break
        await asyncio.sleep(0.05)
    await send_command(env.client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"}))
    return case_id


async def types_of(store: EventStore, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for e in await store.read_stream(case_id)]


async def test_a_back_dated_acceptance_counts_from_its_date_and_breaches_at_once_what_is_over(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    case_id = await received(env, task_queue, "complaint", days_ago=50)
    today = local_date(await env.get_current_time())
    signed = today - timedelta(days=40)
    result = await send_command(env.client, case_id, command(
        {"type": "accept", "decision_no": "7/QĐ-UBND", "dated": signed.isoformat()}))
    resolution = next(d for d in result.case.deadlines if d.key == "complaint.resolution")
    assert date.fromisoformat(resolution.started_on) == signed
    assert date.fromisoformat(resolution.due_on) < today  # 30 days from 40 days ago: already over
    # The timer of a due time already past fires at once: the breach is recorded without waiting.
    for _ in range(100):
        breaches = [d for t, d in await types_of(store, case_id) if t == "DeadlineBreached"]
        if any(d["key"] == "complaint.resolution" for d in breaches):
            break
        await env.sleep(timedelta(seconds=2))
    else:
        raise AssertionError("the resolution period already over was not breached")
    view = await case_view(env.client.get_workflow_handle(case_id))
    assert view.overdue
    # The case goes on: its decision, dated today, is late; its notice period runs from it.
    await send_command(env.client, case_id, command(
        {"type": "record_verification", "findings": "Đã xác minh.", "demand_matches_findings": True}))
    result = await send_command(env.client, case_id, command(
        {"type": "decide", "outcome": "upheld", "decision_no": "9/QĐ-UBND", "summary": "Chấp nhận."}))
    resolution = next(d for d in result.case.deadlines if d.key == "complaint.resolution")
    assert resolution.outcome == "late"
    accepted = next(d for t, d in await types_of(store, case_id) if t == "AcceptanceDecided")
    assert accepted["dated"] == signed.isoformat()
    handle = env.client.get_workflow_handle(case_id)
    assert (await folded(store, case_id)) == await handle.query(PetitionWorkflow.state_snapshot)


async def test_a_notice_signed_on_its_last_day_and_recorded_after_its_breach_is_on_time(
    time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, running: Worker
) -> None:
    env = time_skipping_env
    case_id = await received(env, task_queue, "complaint", days_ago=0)
    await send_command(env.client, case_id, command({"type": "accept", "decision_no": "7/QĐ-UBND"}))
    await send_command(env.client, case_id, command(
        {"type": "record_verification", "findings": "Đã xác minh.", "demand_matches_findings": True}))
    result = await send_command(env.client, case_id, command(
        {"type": "decide", "outcome": "upheld", "decision_no": "9/QĐ-UBND", "summary": "Chấp nhận."}))
    delivery = next(d for d in result.case.deadlines if d.key == "complaint.decision_delivery")
    await env.sleep(timedelta(days=10))  # past the 3 working days: the timer breaches it
    view = await case_view(env.client.get_workflow_handle(case_id))
    assert next(d for d in view.deadlines if d.key == "complaint.decision_delivery").breached
    result = await send_command(env.client, case_id, command(
        {"type": "notify", "about": "decision", "recipients": ["Trần Văn Bình"], "doc_no": "3/TB",
         "dated": delivery.due_on}))
    met = next(d for d in result.case.deadlines if d.key == "complaint.decision_delivery")
    assert (met.outcome, met.met_on) == ("on_time", delivery.due_on)
