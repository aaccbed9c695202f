"""The plan itself as a case (stream `plan-<id>`): its imports, its report cycles, the bodies it replaced.

Importing a plan records it with its digest and starts one task case per task; importing the same plan again
changes nothing, and an edited plan is refused (with what differs) unless the import says to apply the changes.
The report cycles of the term are the plan's own clock: each period's cycle is due on the day its reports are
requested (`policy/report_calendar.yaml`). Pure: standard library, pydantic and `domain` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import singledispatch
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .calendar import end_of_day, local_date
from .common import Actor, DomainError, Event, EventRegistry, Text, envelope, require
from .deadlines import Deadline, DeadlineState, MarkDeadline, add_deadlines, mark_deadline, meet_deadlines
from .plan import PlanDiff, PlanDocument, PlanTask
from .plan_tasks import TaskSpec
from .repairs import REPAIR_EVENTS, BodyNudged, RepairRecorded
from .reporting import ReportCalendar

CASE_KIND = "plan"
PLAN_BASIS = "Kế hoạch, mục III (tổ chức thực hiện)"


def plan_case_id(plan_id: str) -> str:
    return f"plan-{plan_id}"


def task_case_id(plan_id: str, task_id: str) -> str:
    """The case id of a plan task: a business key, so importing the same plan twice starts nothing new."""
    return f"task-{plan_id}-{task_id}"


def cycle_case_id(plan_id: str, period: str) -> str:
    return f"report-{plan_id}-{period}"


def monitor_of(document: PlanDocument) -> str:
    """The division that monitors the plan and compiles its reports: the lead of standing duty III.3 (or of
    the reporting line to the issuer), else the issuer itself."""
    for task in document.standing_duties:
        if task.id == "III.3" and task.lead:
            return task.lead[0].code
    return document.issuer


def task_spec(document: PlanDocument, task: PlanTask) -> TaskSpec:
    """What a task case records of its task in the plan."""
    return TaskSpec(
        plan_id=document.id, task_id=task.id, parent_task_id=task.parent, title_vi=task.title_vi,
        title_en=task.title_en, lead=[b.code for b in task.lead] or [document.issuer],
        coordinators=[b.code for b in task.coordinators], cadence=list(task.cadence), links=list(task.links),
        issuer=document.issuer, monitor=monitor_of(document),
    )


# -- commands -------------------------------------------------------------------------------------------


class Command(Text):
    reason: str | None = Field(default=None, max_length=2000)


class ImportPlan(Command):
    """Import a plan document (the first time, or again)."""

    type: Literal["import"] = "import"
    case_id: str
    document: PlanDocument
    apply_changes: bool = False
    reports: ReportCalendar | None = None


class RecordReplacements(Command):
    """Internal: bodies of the plan's tasks that no longer exist were replaced by their successors."""

    type: Literal["record_replacements"] = "record_replacements"
    on: date
    replacements: list[dict[str, str]]



PlanCommand = Annotated[ImportPlan | RecordReplacements | MarkDeadline, Field(discriminator="type")]
INTERNAL = frozenset({"record_replacements", "deadline"})


# -- events ---------------------------------------------------------------------------------------------


class PlanImported(Event):
    case_id: str
    plan_id: str
    digest: str
    document: PlanDocument
    reports: ReportCalendar
    task_case_ids: list[str]
    cycles: list[Deadline]


class PlanAmended(Event):
    digest: str
    document: PlanDocument
    diff: PlanDiff
    added_case_ids: list[str]


class ReportCycleStarted(Event):
    period: str
    cycle_id: str


class BodiesReplaced(Event):
    on: date
    replacements: list[dict[str, str]]


REGISTRY = EventRegistry(PlanImported, PlanAmended, ReportCycleStarted, BodiesReplaced, *REPAIR_EVENTS)


# -- state ----------------------------------------------------------------------------------------------


class PlanCaseState(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = 0
    plan_id: str
    digest: str
    document: PlanDocument
    reports: ReportCalendar
    task_case_ids: list[str]
    deadlines: dict[str, DeadlineState] = Field(default_factory=dict)
    cycles_started: list[str] = Field(default_factory=list)
    replacements: list[dict[str, str]] = Field(default_factory=list)

    @property
    def overdue(self) -> bool:
        return False

    @property
    def next_due(self) -> Deadline | None:
        pending = [d.deadline for d in self.deadlines.values() if d.pending]
        return min(pending, key=lambda d: d.due_at) if pending else None


# -- decide ---------------------------------------------------------------------------------------------


def cycle_deadlines(document: PlanDocument, reports: ReportCalendar, today: date) -> list[Deadline]:
    """The report cycles still ahead in the plan's term: each is due when its period's reports are requested
    (at once, when that day has passed but the report is not yet due)."""
    out = []
    for period in reports.periods_between(today, document.term_end):
        start = max(reports.request_on(period), today)
        due_on = start - timedelta(days=1)
        out.append(Deadline(
            key=f"cycle.{period.id}", started_on=today, due_on=due_on, due_at=end_of_day(due_on),
            warn_at=end_of_day(due_on), amount=max((due_on - today).days, 0), unit="calendar",
            legal_basis="Kế hoạch, mục III.2, III.3 (định kỳ 6 tháng, 1 năm)", rule_ref="PLAN:III.2-3",
            statutory=False, calendar_source=f"report calendar {reports.version}",
        ))
    return out


def decide(state: PlanCaseState | None, command: PlanCommand, actor: Actor, now: datetime) -> list[Event]:
    if isinstance(command, ImportPlan):
        return _import(state, command, actor, now)
    if state is None:
        raise DomainError("plan.not_found", "the plan has not been imported")
    if isinstance(command, RecordReplacements):
        if not command.replacements:
            return []
        return [BodiesReplaced(**envelope(command, actor, now, "Nghị quyết 202/2025/QH15, 203/2025/QH15"),
                               on=command.on, replacements=command.replacements)]
    if isinstance(command, MarkDeadline):
        d = state.deadlines.get(command.key)
        if command.stage != "breached" or d is None or not d.pending or now <= d.deadline.due_at:
            return []
        period = command.key.removeprefix("cycle.")
        return [ReportCycleStarted(**envelope(command, actor, now, d.deadline.legal_basis), period=period,
                                   cycle_id=cycle_case_id(state.plan_id, period))]
    raise DomainError("command.unknown", f"`{getattr(command, 'type', '?')}` is not a command of a plan")


def _import(state: PlanCaseState | None, cmd: ImportPlan, actor: Actor, now: datetime) -> list[Event]:
    document = cmd.document
    digest = document.digest()
    if state is None:
        require(cmd.reports is not None, "plan.reports", "the report calendar is needed to import a plan")
        assert cmd.reports is not None
        ids = [task_case_id(document.id, task.id) for task in document.all_tasks()]
        return [PlanImported(**envelope(cmd, actor, now, PLAN_BASIS), case_id=cmd.case_id, plan_id=document.id,
                             digest=digest, document=document, reports=cmd.reports, task_case_ids=ids,
                             cycles=cycle_deadlines(document, cmd.reports, local_date(now)))]
    require(document.id == state.plan_id, "plan.id", f"this is plan {state.plan_id}, not {document.id}")
    if digest == state.digest:
        return []  # the same plan again: nothing to do
    diff = state.document.diff(document)
    require(cmd.apply_changes, "plan.changed",
            "this plan differs from the one imported; import it with apply_changes to apply:\n" + diff.summary())
    added = [task_case_id(document.id, task_id) for task_id in diff.added]
    return [PlanAmended(**envelope(cmd, actor, now, PLAN_BASIS), digest=digest, document=document, diff=diff,
                        added_case_ids=added)]


# -- evolve ---------------------------------------------------------------------------------------------


@singledispatch
def _apply(event: Event, s: PlanCaseState) -> dict[str, Any]:
    raise TypeError(f"no evolve rule for {type(event).__name__}")


@_apply.register(RepairRecorded)
@_apply.register(BodyNudged)
def _(ev: Event, s: PlanCaseState) -> dict[str, Any]:
    return {}  # an operator's repair is on the record; the case itself moves through its own events


@_apply.register
def _(ev: PlanAmended, s: PlanCaseState) -> dict[str, Any]:
    return {"digest": ev.digest, "document": ev.document,
            "task_case_ids": [*s.task_case_ids, *(i for i in ev.added_case_ids if i not in s.task_case_ids)]}


@_apply.register
def _(ev: ReportCycleStarted, s: PlanCaseState) -> dict[str, Any]:
    key = f"cycle.{ev.period}"
    return {"cycles_started": [*s.cycles_started, ev.period],
            "deadlines": meet_deadlines(mark_deadline(s.deadlines, key, "breached"), [key], ev.occurred_at)}


@_apply.register
def _(ev: BodiesReplaced, s: PlanCaseState) -> dict[str, Any]:
    return {"replacements": [*s.replacements, *ev.replacements]}


def evolve(state: PlanCaseState | None, event: Event) -> PlanCaseState:
    if isinstance(event, PlanImported):
        if state is not None:
            raise ValueError("PlanImported can only open a plan")
        return PlanCaseState(case_id=event.case_id, version=1, plan_id=event.plan_id, digest=event.digest,
                             document=event.document, reports=event.reports, task_case_ids=event.task_case_ids,
                             deadlines=add_deadlines({}, event.cycles))
    if state is None:
        raise ValueError(f"{type(event).__name__} before PlanImported")
    return state.model_copy(update={**_apply(event, state), "version": state.version + 1})


def fold(events: Iterable[Event], state: PlanCaseState | None = None) -> PlanCaseState | None:
    for event in events:
        state = evolve(state, event)
    return state


def plan_row(state: PlanCaseState) -> dict[str, Any]:
    due = state.next_due
    doc = state.document
    return {
        "kind": CASE_KIND, "status": "active", "title": doc.title_vi, "lead_body": doc.issuer,
        "bodies": [doc.issuer, monitor_of(doc)], "source": doc.id, "external_ref": state.digest[:16],
        "due_at": due.due_at if due else None, "overdue": False,
        "summary": {"plan_id": doc.id, "digest": state.digest, "term_start": doc.term_start.isoformat(),
                    "term_end": doc.term_end.isoformat(), "tasks": len(state.task_case_ids),
                    "cycles_started": state.cycles_started, "cycles_pending": sorted(
                        k.removeprefix("cycle.") for k, d in state.deadlines.items() if d.pending),
                    "replacements": state.replacements},
    }
