"""`ReportCycleWorkflow`: one period's reports (workflow id `report-<plan>-<period>`).

Started by `PlanWorkflow` on the day a period's reports are requested: it asks every task's lead for the report
(each task then follows its own due day, reminder, urge and escalation), sleeps until the compile day, then
compiles what came in and what is late, with the petition figures of the period, and stores the compiled
report as an event, so `GET /v1/reports/{period}` gives the same figures later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseCommandActivities, RequestReportsInput
    from activities.reports import CompileReportRequest, ReportActivities
    from domain import report_cycles as rc
    from domain.calendar import end_of_day
    from domain.common import SYSTEM, Actor, Event, EventRegistry
    from eventstore.models import CaseRow

    from .case import ACTIVITY_TIMEOUT, APPEND_RETRY, CaseMachine, Stage
    from .shared import CASE_KIND, CASE_STATUS


class ReportCycleStart(BaseModel):
    plan_id: str
    period: str
    task_case_ids: list[str]
    due_on: date
    compile_on: date


@workflow.defn
class ReportCycleWorkflow(CaseMachine[rc.CycleState]):
    """Request the period's reports, wait, compile, store."""

    @workflow.init
    def __init__(self, start: ReportCycleStart) -> None:
        self.setup(None, {})

    @workflow.run
    async def run(self, start: ReportCycleStart) -> rc.CycleState:
        async with self.lock:
            await self.apply(rc.OpenCycle(case_id=workflow.info().workflow_id, plan_id=start.plan_id,
                                          period=start.period, task_case_ids=start.task_case_ids,
                                          due_on=start.due_on, compile_on=start.compile_on), SYSTEM, None)
        requested = await workflow.execute_activity_method(
            CaseCommandActivities.request_reports,
            RequestReportsInput(period=start.period, task_case_ids=start.task_case_ids),
            start_to_close_timeout=timedelta(minutes=10), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=APPEND_RETRY,
        )
        async with self.lock:
            await self.apply(rc.RecordRequests(requested=requested.requested, skipped=requested.skipped),
                             SYSTEM, None)
        wait = end_of_day(start.compile_on) - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)
        report = await workflow.execute_activity_method(
            ReportActivities.compile_report,
            CompileReportRequest(period=start.period, plan_id=start.plan_id, as_of=workflow.now()),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
        )
        async with self.lock:
            await self.apply(rc.Compile(report=report.model_copy(update={"compiled": True})), SYSTEM, None)
        assert self.state is not None
        return self.state

    def decide(self, state: rc.CycleState | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        return rc.decide(state, command, actor, now)

    def fold(self, events: Sequence[Event], state: rc.CycleState | None) -> rc.CycleState:
        folded = rc.fold(events, state)
        assert folded is not None
        return folded

    def stream_id(self, state: rc.CycleState) -> str:
        return state.case_id

    def projection(self, state: rc.CycleState) -> CaseRow:
        return CaseRow.model_validate(rc.cycle_row(state))

    def registry(self) -> EventRegistry:
        return rc.REGISTRY

    def deadline_command(self, key: str, stage: Stage) -> Any:
        raise NotImplementedError("a report cycle keeps no deadlines of its own")

    def finished(self) -> bool:
        return self.state is not None and self.state.status == "compiled"

    def search_attributes(self, state: rc.CycleState) -> list[SearchAttributeUpdate[Any]]:
        return [CASE_KIND.value_set(rc.CASE_KIND), CASE_STATUS.value_set(state.status)]

    @workflow.query
    def state_snapshot(self) -> rc.CycleState | None:
        return self.state
