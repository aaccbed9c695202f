"""The plan-task decider on real rules: sub-plans owed by every district, reports, urges, reassignment."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from activities.rules import PlanRulesRequest, RulesActivities
from domain import plan_tasks as pt
from domain.authority import PLAN_TASK, authorize, for_command, task_facts
from domain.common import SYSTEM, Actor, DomainError
from domain.deadlines import MarkDeadline

RULES = asyncio.run(RulesActivities().load_plan_rules(PlanRulesRequest(start_on=date(2026, 1, 5),
                                                                       until=date(2030, 12, 31))))
T0 = datetime(2026, 1, 5, 2, tzinfo=UTC)
COMMISSION = Actor(id="bdv", role="body", body="BTGDV_TU")
LEAD = Actor(id="ubnd", role="body", body="UBND_TINH")


def assigned(**spec: object) -> pt.TaskState:
    data = {"plan_id": "P", "task_id": "II.2.1", "title_vi": "Công tác dân vận của chính quyền", "lead": ["UBND_TINH"],
            "coordinators": ["UBMTTQ_TINH"], "cadence": ["semiannual", "annual"], "issuer": "BTGDV_TU",
            "monitor": "BTGDV_TU", **spec}
    state = pt.fold(pt.decide(None, pt.Assign(case_id="task-P-II.2.1", spec=pt.TaskSpec.model_validate(data),
                                               rules=RULES), SYSTEM, T0))
    assert state is not None
    return state


def apply(state: pt.TaskState, command: pt.PlanTaskCommand, actor: Actor = LEAD, at: datetime = T0) -> pt.TaskState:
    folded = pt.fold(pt.decide(state, command, actor, at), state)
    assert folded is not None
    return folded


def test_every_district_commission_owes_its_own_implementing_plan() -> None:
    state = assigned(task_id="III.2", lead=["BDV_HUYEN"], coordinators=[], cadence=["one_off_subplan", "annual"])
    owed = sorted(k for k in state.deadlines if k.startswith("subplan."))
    assert len(owed) == 12 and "subplan.BDV_HUYEN:nam-sach" in owed
    district = Actor(id="ns", role="body", body="BDV_HUYEN:nam-sach")
    state = apply(state, pt.SubmitSubplan(body="BDV_HUYEN:nam-sach", doc_ref="KH-01/BDVHU"), district)
    assert state.subplans == {"BDV_HUYEN:nam-sach": "KH-01/BDVHU"}
    assert state.deadlines["subplan.BDV_HUYEN:nam-sach"].outcome == "on_time"


def test_a_report_submitted_after_its_due_day_is_late_and_one_missed_is_urged_then_escalated() -> None:
    state = apply(assigned(), pt.RequestReport(period="2026-H1"), SYSTEM)
    due = state.deadlines["report.2026-H1"].deadline
    assert due.due_on == date(2026, 6, 15) and state.phase == "report_due"
    after = due.due_at + timedelta(seconds=1)
    events = pt.decide(state, MarkDeadline(key="report.2026-H1", stage="breached"), SYSTEM, after)
    assert [type(e).__name__ for e in events] == ["DeadlineBreached", "ReportUrged"]
    urged = pt.fold(events, state)
    assert urged is not None and urged.phase == "urged"
    state = urged
    urge = state.deadlines["report.2026-H1.urge"].deadline
    events = pt.decide(state, MarkDeadline(key="report.2026-H1.urge", stage="breached"), SYSTEM,
                       urge.due_at + timedelta(seconds=1))
    assert [type(e).__name__ for e in events] == ["DeadlineBreached", "ReportEscalated"]
    assert isinstance(events[1], pt.ReportEscalated) and events[1].to_body == "BTGDV_TU"
    escalated = pt.fold(events, state)
    assert escalated is not None
    state = escalated
    state = apply(state, pt.SubmitReport(period="2026-H1", body="UBND_TINH", summary="Báo cáo"), LEAD,
                  urge.due_at + timedelta(days=1))
    assert state.reports["2026-H1"].on_time is False and state.phase == "report_submitted"


def test_only_the_lead_reports_and_only_the_commission_reviews_urges_reassigns_and_closes() -> None:
    state = apply(assigned(), pt.RequestReport(period="2026"), SYSTEM)
    front = Actor(id="mttq", role="body", body="UBMTTQ_TINH")
    with pytest.raises(DomainError) as refused:
        pt.decide(state, pt.SubmitReport(period="2026", body="UBMTTQ_TINH", summary="x"), front, T0)
    assert refused.value.rule == "report.not_lead"
    final = pt.FinalReview(summary="x")
    with pytest.raises(DomainError) as refused:
        authorize(PLAN_TASK, final.type, LEAD, for_command(PLAN_TASK, final, task_facts(state)))
    assert refused.value.rule == "authority.final_review"
    assert "commission" in refused.value.message and "lead body" in refused.value.message
    authorize(PLAN_TASK, final.type, COMMISSION, for_command(PLAN_TASK, final, task_facts(state)))
    with pytest.raises(DomainError) as refused:
        pt.decide(state, pt.Close(approval_no="1"), COMMISSION, T0)
    assert refused.value.rule == "close.state"  # not before the final review


def test_a_reassignment_moves_the_bodys_pending_obligations_to_its_successor() -> None:
    state = assigned(coordinators=["SO_NOI_VU"])
    assert state.deadlines["ack.SO_NOI_VU"].pending
    state = apply(state, pt.Reassign(from_body="SO_NOI_VU", to_body="THANH_TRA_TINH", reason="Sắp xếp bộ máy"),
                  COMMISSION)
    assert state.coordinators == ["THANH_TRA_TINH"]
    assert state.deadlines["ack.SO_NOI_VU"].outcome == "cancelled"
    assert state.deadlines["ack.THANH_TRA_TINH"].pending
    assert [(r.from_body, r.to_body) for r in state.reassignments] == [("SO_NOI_VU", "THANH_TRA_TINH")]
    with pytest.raises(DomainError) as refused:
        pt.decide(state, pt.Reassign(from_body="THANH_TRA_TINH", to_body="BDV_TU", reason="x"), COMMISSION, T0)
    assert refused.value.rule == "reassign.body"  # dissolved in 2025: its successor is named
