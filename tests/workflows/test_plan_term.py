"""A whole five-year term of a plan on the time-skipping server: ten report cycles, one report missed and urged,
an acknowledgement ignored and escalated, a body replaced by its successor mid-term, histories kept bounded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.plan_loader import parse_plan
from activities.rules import POLICY_DIR, load_bodies, load_report_calendar
from domain import plan_tasks as pt
from domain.common import Actor
from domain.plan_cases import cycle_case_id, plan_case_id, task_case_id
from eventstore import EventStore
from tests.workflows.support import task_view
from worker import build_worker
from workflows.plan_client import import_plan, plan_progress
from workflows.plan_task import PlanTaskWorkflow

pytestmark = pytest.mark.slow


def registry_with_a_body_replaced_on(tmp: Path, replaced_on: date) -> Path:
    """The shipped bodies plus a department dissolved mid-term into its successor."""
    text = (POLICY_DIR / "bodies.yaml").read_text(encoding="utf-8")
    extra = f"""
  - code: SO_CU
    name_vi: "Sở Văn hóa, Thể thao và Du lịch"
    name_en: "Department of Culture, Sports and Tourism"
    side: state
    level: province
    parent: UBND_TINH
    valid_to: {replaced_on.isoformat()}
    successor: SO_MOI
  - code: SO_MOI
    name_vi: "Sở Văn hóa và Thể thao"
    name_en: "Department of Culture and Sports"
    side: state
    level: province
    parent: UBND_TINH
    valid_from: {replaced_on.isoformat()}
    predecessors: [SO_CU]
"""
    marker = "\nbodies:\n"
    assert marker in text
    path = tmp / "bodies.yaml"
    path.write_text(text.replace(marker, marker + extra.lstrip("\n") + "\n", 1), encoding="utf-8")
    return path


async def advance(env: WorkflowEnvironment, until: date) -> None:
    """Skip time to `until`, in steps (one long skip can outlast the server's answer)."""
    while (now := (await env.get_current_time()).date()) < until:
        await env.sleep(timedelta(days=min(20, (until - now).days)))


def plan_text(plan_id: str, term_start: date, term_end: date) -> str:
    return f"""
id: {plan_id}
version: "1"
title_vi: "Kế hoạch thử nghiệm một nhiệm kỳ"
title_en: "A one-term test plan"
issuer: BTGDV_TU
signer: {{name: "Nguyễn Văn A", position_vi: "Trưởng ban", position_en: "Head"}}
term_start: {term_start.isoformat()}
term_end: {term_end.isoformat()}
source: "test"
tasks:
  - id: "II.1"
    title_vi: "Quán triệt, triển khai Nghị quyết"
    title_en: "Disseminate the resolutions"
    text_vi: "Quán triệt, triển khai Nghị quyết"
    lead: [{{code: SO_NOI_VU, basis: explicit}}]
    cadence: [semiannual, annual]
  - id: "II.2"
    title_vi: "Công tác dân vận của chính quyền"
    title_en: "Mass mobilisation by government"
    text_vi: "Công tác dân vận của chính quyền"
    lead: [{{code: UBND_TINH, basis: explicit}}]
    coordinators: [{{code: SO_CU, basis: explicit}}]
    cadence: [semiannual, annual]
standing_duties:
  - id: "III.3"
    title_vi: "Phòng Đoàn thể, các hội và Tổng hợp theo dõi, đôn đốc"
    title_en: "The division monitors and urges"
    text_vi: "Phòng Đoàn thể, các hội và Tổng hợp theo dõi, đôn đốc"
    lead: [{{code: BTGDV_TU, basis: explicit}}]
    cadence: [continuous_monitoring, semiannual, annual]
"""


async def test_a_five_year_term_runs_ten_cycles_with_a_missed_report_an_ignored_acknowledgement_and_a_successor(
    own_time_skipping_env: WorkflowEnvironment, store: EventStore, task_queue: str, tmp_path: Path
) -> None:
    env = own_time_skipping_env
    today = (await env.get_current_time()).date()
    calendar = load_report_calendar()
    periods = calendar.periods_between(today, today + timedelta(days=6 * 366))[:10]
    term_end = periods[-1].due_on + timedelta(days=1)
    replaced_on = periods[5].due_on  # mid-term
    bodies_path = registry_with_a_body_replaced_on(tmp_path, replaced_on)
    plan_id = f"KH-TERM-{uuid.uuid4().hex[:6]}"
    document = parse_plan(plan_text(plan_id, today, term_end), registry=load_bodies(bodies_path))

    async with build_worker(env.client, store, task_queue=task_queue, bodies_path=bodies_path):
        result = await import_plan(env.client, document, task_queue=task_queue, history_limit=60)
        assert result.outcome == "imported" and len(result.task_case_ids) == 3
        for _ in range(100):
            progress = await plan_progress(env.client, plan_id)
            if progress and progress.started == 3:
                break
            await asyncio.sleep(0.1)
        t1, t2 = task_case_id(plan_id, "II.1"), task_case_id(plan_id, "II.2")
        h1 = env.client.get_workflow_handle_for(PlanTaskWorkflow.run, t1)
        h2 = env.client.get_workflow_handle_for(PlanTaskWorkflow.run, t2)
        for _ in range(100):
            try:
                if await h1.query(PlanTaskWorkflow.view) and await h2.query(PlanTaskWorkflow.view):
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)

        async def send(handle: WorkflowHandle[Any, Any], command: dict[str, Any], actor: Actor) -> None:
            request = pt.TaskCommandRequest.model_validate({"command": command, "actor": actor})
            await handle.execute_update(PlanTaskWorkflow.execute, request)

        snv, ubnd = Actor(id="snv", role="body", body="SO_NOI_VU"), Actor(id="ubnd", role="body", body="UBND_TINH")
        await send(h1, {"type": "acknowledge", "body": "SO_NOI_VU"}, snv)
        await send(h2, {"type": "acknowledge", "body": "UBND_TINH"}, ubnd)  # SO_CU never acknowledges

        missed = periods[3].id
        for period in periods:
            await advance(env, calendar.request_on(period) + timedelta(days=1))
            for handle, body, actor in ((h1, "SO_NOI_VU", snv), (h2, "UBND_TINH", ubnd)):
                for _ in range(50):
                    view = await task_view(handle)
                    if period.id in view.reports:
                        break
                    await asyncio.sleep(0.1)
                assert period.id in view.reports, f"{period.id} was not requested from {handle.id}"
                if period.id == missed and handle is h1:
                    continue
                await send(handle, {"type": "submit_report", "period": period.id, "body": body,
                                    "summary": f"Báo cáo kỳ {period.id}"}, actor)
        await advance(env, calendar.compile_on(periods[-1]) + timedelta(days=2))

        plan_events = [e.type for e in await store.read_stream(plan_case_id(plan_id))]
        assert plan_events.count("ReportCycleStarted") == 10
        for period in periods:
            compiled = [e for e in await store.read_stream(cycle_case_id(plan_id, period.id))
                        if e.type == "ReportCompiled"]
            assert len(compiled) == 1, period.id
            tasks = {t["case_id"]: t["report"] for t in compiled[0].data["report"]["tasks"]}
            if period.id == missed:
                assert tasks[t1] == "missing"
            else:
                assert tasks[t1] == "submitted_on_time" and tasks[t2] == "submitted_on_time"
        t1_events = [e for e in await store.read_stream(t1)]
        urged = [e.data for e in t1_events if e.type == "ReportUrged"]
        assert [u["period"] for u in urged] == [missed] and urged[0]["automatic"]
        t2_events = await store.read_stream(t2)
        escalated = [e.data["body"] for e in t2_events if e.type == "AcknowledgementEscalated"]
        assert escalated == ["SO_CU"]
        reassigned = [(e.data["from_body"], e.data["to_body"]) for e in t2_events if e.type == "TaskReassigned"]
        assert reassigned == [("SO_CU", "SO_MOI")]
        assert "BodiesReplaced" in plan_events
        view = await task_view(h2)
        assert view.coordinators == ["SO_MOI"]
        # Histories stay bounded: with a low limit, the plan and its tasks continued as new during the term,
        # carrying their state and pending deadlines (the reports and escalations above came after hand-overs).
        for case_id in (plan_case_id(plan_id), t1, t2):
            history = await env.client.get_workflow_handle(case_id).fetch_history()
            assert history.events[-1].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, case_id
            started = history.events[0].workflow_execution_started_event_attributes
            assert started.continued_execution_run_id, f"{case_id} never continued as new"
            assert len(history.events) < 200, (case_id, len(history.events))
            assert (await store.verify(case_id)).ok
        again = await import_plan(env.client, document, task_queue=task_queue)
        assert again.outcome == "unchanged" and again.started == []
