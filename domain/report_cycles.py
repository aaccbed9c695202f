"""The report cycle of one period (stream `report-<plan>-<period>`): reports requested from every task's lead,
a wait until the period's compile day, then the compiled report, stored so that it can be given again as it
was. Pure: standard library, pydantic and `domain` only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .common import Actor, DomainError, Event, EventRegistry, Text, envelope, require
from .deadlines import DeadlineState
from .repairs import REPAIR_EVENTS
from .reporting import PeriodReport

CASE_KIND = "report_cycle"
BASIS = "Kế hoạch, mục III.2, III.3 (định kỳ 6 tháng, 1 năm tổng hợp báo cáo)"


class Command(Text):
    reason: str | None = None


class OpenCycle(Command):
    type: Literal["open"] = "open"
    case_id: str
    plan_id: str
    period: str
    task_case_ids: list[str]
    due_on: date
    compile_on: date


class RecordRequests(Command):
    type: Literal["record_requests"] = "record_requests"
    requested: list[str]
    skipped: dict[str, str] = Field(default_factory=dict)


class Compile(Command):
    type: Literal["compile"] = "compile"
    report: PeriodReport


CycleCommand = Annotated[OpenCycle | RecordRequests | Compile, Field(discriminator="type")]


class ReportCycleOpened(Event):
    case_id: str
    plan_id: str
    period: str
    task_case_ids: list[str]
    due_on: date
    compile_on: date


class ReportsRequested(Event):
    requested: list[str]
    skipped: dict[str, str] = Field(default_factory=dict)


class ReportCompiled(Event):
    report: PeriodReport


REGISTRY = EventRegistry(ReportCycleOpened, ReportsRequested, ReportCompiled, *REPAIR_EVENTS)


class CycleState(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = 0
    plan_id: str
    period: str
    task_case_ids: list[str]
    due_on: date
    compile_on: date
    status: Literal["opened", "requested", "compiled"] = "opened"
    requested: int = 0
    report: PeriodReport | None = None
    deadlines: dict[str, DeadlineState] = Field(default_factory=dict)


def decide(state: CycleState | None, command: CycleCommand, actor: Actor, now: datetime) -> list[Event]:
    env = envelope(command, actor, now, BASIS)
    if isinstance(command, OpenCycle):
        require(state is None, "cycle.exists", "the cycle is already open")
        return [ReportCycleOpened(**env, case_id=command.case_id, plan_id=command.plan_id, period=command.period,
                                  task_case_ids=command.task_case_ids, due_on=command.due_on,
                                  compile_on=command.compile_on)]
    if state is None:
        raise DomainError("cycle.not_found", "the cycle is not open")
    if isinstance(command, RecordRequests):
        require(state.status == "opened", "cycle.state", f"the cycle is {state.status}")
        return [ReportsRequested(**env, requested=command.requested, skipped=command.skipped)]
    if isinstance(command, Compile):
        require(state.status != "compiled", "cycle.compiled", "the period's report is already compiled")
        return [ReportCompiled(**env, report=command.report)]
    raise DomainError("command.unknown", f"`{getattr(command, 'type', '?')}` is not a command of a report cycle")


def evolve(state: CycleState | None, event: Event) -> CycleState:
    if isinstance(event, ReportCycleOpened):
        return CycleState(case_id=event.case_id, version=1, plan_id=event.plan_id, period=event.period,
                          task_case_ids=event.task_case_ids, due_on=event.due_on, compile_on=event.compile_on)
    if state is None:
        raise ValueError(f"{type(event).__name__} before ReportCycleOpened")
    changes: dict[str, Any] = {"version": state.version + 1}
    if isinstance(event, ReportsRequested):
        changes.update(status="requested", requested=len(event.requested))
    elif isinstance(event, ReportCompiled):
        changes.update(status="compiled", report=event.report)
    return state.model_copy(update=changes)


def fold(events: Iterable[Event], state: CycleState | None = None) -> CycleState | None:
    for event in events:
        state = evolve(state, event)
    return state


def cycle_row(state: CycleState) -> dict[str, Any]:
    summary: dict[str, Any] = {"plan_id": state.plan_id, "period": state.period, "requested": state.requested,
                               "due_on": state.due_on.isoformat(), "compile_on": state.compile_on.isoformat()}
    if state.report is not None:
        summary["missing"] = sum(1 for t in state.report.tasks if t.report == "missing")
        summary["late"] = sum(1 for t in state.report.tasks if t.report == "submitted_late")
    return {"kind": CASE_KIND, "status": state.status, "title": f"Báo cáo kỳ {state.period}",
            "source": state.plan_id, "external_ref": state.period, "summary": summary}
