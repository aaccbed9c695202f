"""A task of the action plan as a case (docs/legal-reference.md §5; docs/architecture.md, plan task): assignment,
acknowledgements, coordination, progress, six-monthly and annual reports, reviews, reassignment to successor
bodies, closure.

The plan sets no deadline for any task: every waiting period is a province policy value (`plan.*` rules of
`policy/deadlines.yaml`) and report due dates come from the report calendar, both recorded when the task is
assigned. Pure: standard library, pydantic and `domain` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from functools import singledispatch
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import coordination as co
from .attachments import Attach, AttachmentAdded, decide_attach
from .bodies import BodyError
from .calendar import CalendarRangeError, end_of_day, in_vietnam, local_date
from .common import Actor, DomainError, Event, EventRegistry, Text, envelope, require
from .coordination import (
    BodyCode,
    CoordinationRequest,
    CoordinationRequested,
    CoordinationResponded,
    RequestCoordination,
    Respond,
)
from .deadlines import (
    CaseRules,
    Deadline,
    DeadlineApproaching,
    DeadlineBreached,
    DeadlineState,
    MarkDeadline,
    UnknownDeadlineRule,
    add_deadlines,
    cancel_pending,
    compute_deadline,
    mark_deadline,
    meet_deadlines,
)
from .jsontypes import Number
from .repairs import REPAIR_EVENTS, BodyNudged, RepairRecorded
from .reporting import ReportCalendar
from .rulesets import PlanRulesRef, RecordsRules, RuleBook

CASE_KIND = "plan_task"
#: DeadlineApproaching for a report fires this many days before its due day.
REPORT_WARN_DAYS = 7
PLAN_BASIS = "Kế hoạch hành động của Ban Dân vận Tỉnh ủy thực hiện Nghị quyết Đại hội XVII, XIII về công tác dân vận"


class TaskStatus(StrEnum):
    ASSIGNED = "assigned"
    ACTIVE = "active"
    FINAL_REVIEW = "final_review"
    CLOSED = "closed"


S = TaskStatus


class TaskSpec(Text):
    """What the plan says of the task, as imported: it is recorded when the task is assigned."""

    plan_id: str = Field(min_length=1, max_length=100)
    task_id: str = Field(min_length=1, max_length=50)
    parent_task_id: str | None = None
    title_vi: str = Field(min_length=1)
    title_en: str = ""
    lead: list[str] = Field(min_length=1)
    coordinators: list[str] = Field(default_factory=list)
    cadence: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    #: The commission that issued the plan (approves closure) and the division that monitors it (reviews, urges).
    issuer: str = Field(min_length=1)
    monitor: str = Field(min_length=1)


class PlanRules(BaseModel):
    """The rules a task runs on: deadline policy, working calendar, bodies, and the report calendar."""

    model_config = ConfigDict(frozen=True)

    case: CaseRules
    reports: ReportCalendar


# -- commands -------------------------------------------------------------------------------------------


class Command(Text):
    reason: str | None = Field(default=None, max_length=2000)


class Assign(Command):
    """Internal: the first command of a task, made by its workflow when the plan is imported."""

    type: Literal["assign"] = "assign"
    case_id: str
    spec: TaskSpec
    rules: PlanRules
    #: The digests of `rules`, recorded instead of them (patch `rules-by-digest`); None: recorded in full.
    rules_ref: PlanRulesRef | None = None


class Acknowledge(Command):
    """A lead or coordinating body confirms it has taken the task on."""

    type: Literal["acknowledge"] = "acknowledge"
    body: BodyCode


class RecordProgress(Command):
    """What was done, with references to the evidence (documents, minutes, photos kept elsewhere)."""

    type: Literal["record_progress"] = "record_progress"
    body: BodyCode
    summary: str = Field(min_length=1, max_length=20000)
    evidence_refs: list[str] = Field(default_factory=list, max_length=50)


class RequestReport(Command):
    """Sent by the report cycle of a period: the lead bodies owe their report by the period's due day."""

    type: Literal["request_report"] = "request_report"
    period: str = Field(pattern=r"^\d{4}(-H1)?$")


class SubmitReport(Command):
    type: Literal["submit_report"] = "submit_report"
    period: str = Field(pattern=r"^\d{4}(-H1)?$")
    body: BodyCode
    summary: str = Field(min_length=1, max_length=50000)
    figures: dict[str, Number] = Field(default_factory=dict)
    evidence_refs: list[str] = Field(default_factory=list, max_length=50)


class ReviewReport(Command):
    """The monitoring division reviews a submitted report: accepted, or returned to be completed."""

    type: Literal["review_report"] = "review_report"
    period: str = Field(pattern=r"^\d{4}(-H1)?$")
    verdict: Literal["accepted", "returned"]
    notes: str = Field(default="", max_length=20000)


class Urge(Command):
    """Đôn đốc: a written reminder about an overdue report (the system also urges when the due day passes)."""

    type: Literal["urge"] = "urge"
    period: str = Field(pattern=r"^\d{4}(-H1)?$")
    doc_no: str = Field(min_length=1, max_length=100)


class InterimReview(Command):
    """Sơ kết."""

    type: Literal["interim_review"] = "interim_review"
    summary: str = Field(min_length=1, max_length=50000)


class FinalReview(Command):
    """Tổng kết, at the end of the term."""

    type: Literal["final_review"] = "final_review"
    summary: str = Field(min_length=1, max_length=50000)


class Close(Command):
    """Closure, approved by the commission that issued the plan."""

    type: Literal["close"] = "close"
    approval_no: str = Field(min_length=1, max_length=100)


class Reassign(Command):
    """A body is replaced (the 2025 reorganisation): its part of the task passes to another body."""

    type: Literal["reassign"] = "reassign"
    from_body: BodyCode
    to_body: BodyCode


class SubmitSubplan(Command):
    """III.2: a lower-level commission submits its own implementing plan."""

    type: Literal["submit_subplan"] = "submit_subplan"
    body: BodyCode
    doc_ref: str = Field(min_length=1, max_length=200)



PlanTaskCommand = Annotated[
    Assign | Acknowledge | RequestCoordination | Respond | RecordProgress | RequestReport | SubmitReport
    | ReviewReport | Urge | InterimReview | FinalReview | Close | Reassign | SubmitSubplan | MarkDeadline | Attach,
    Field(discriminator="type"),
]
INTERNAL = frozenset({"assign", "deadline"})
COMMAND_TYPES = [
    "acknowledge", "request_coordination", "respond", "record_progress", "request_report", "submit_report",
    "review_report", "urge", "interim_review", "final_review", "close", "reassign", "submit_subplan", "attach",
]


class TaskCommandRequest(Text):
    command: PlanTaskCommand
    actor: Actor
    command_id: str | None = Field(default=None, max_length=200)


# -- events ---------------------------------------------------------------------------------------------


class TaskAssigned(RecordsRules):
    """A task is assigned, with the rules it runs on: by `rules_ref` since the patch `rules-by-digest`, in full
    in the tasks assigned before."""

    case_id: str
    spec: TaskSpec
    rules: PlanRules | None = None
    rules_ref: PlanRulesRef | None = None
    deadlines: list[Deadline]

    def resolved(self, book: RuleBook) -> TaskAssigned:
        assert self.rules_ref is not None
        reports = book.model(self.rules_ref.reports)
        assert isinstance(reports, ReportCalendar)
        return self.model_copy(update={"rules": PlanRules(case=book.case_rules(self.rules_ref.case),
                                                          reports=reports)})

    def plan_rules(self) -> PlanRules:
        rules: PlanRules = self.held_rules()
        return rules


class TaskAcknowledged(Event):
    body: str


class AcknowledgementEscalated(Event):
    body: str
    to_body: str


class ProgressRecorded(Event):
    body: str
    summary: str
    evidence_refs: list[str] = Field(default_factory=list)


class ReportRequested(Event):
    period: str
    from_bodies: list[str]
    deadline: Deadline


class ReportSubmitted(Event):
    period: str
    body: str
    summary: str
    figures: dict[str, float] = Field(default_factory=dict)
    evidence_refs: list[str] = Field(default_factory=list)
    on_time: bool


class ReportReviewed(Event):
    period: str
    verdict: str
    notes: str = ""


class ReportUrged(Event):
    period: str
    doc_no: str | None = None
    automatic: bool = False
    deadline: Deadline | None = None


class ReportEscalated(Event):
    period: str
    to_body: str


class InterimReviewed(Event):
    summary: str


class FinalReviewed(Event):
    summary: str


class TaskClosed(Event):
    approval_no: str


class TaskReassigned(Event):
    from_body: str
    to_body: str
    roles: list[str]
    #: Obligations passed on (old deadline key -> new key) and obligations dropped (the old body's districts),
    #: decided when the event was recorded. None on events recorded before these were kept.
    moved: dict[str, str] | None = None
    cancelled: list[str] | None = None


class SubplanSubmitted(Event):
    body: str
    doc_ref: str
    on_time: bool




REGISTRY = EventRegistry(
    TaskAssigned, TaskAcknowledged, AcknowledgementEscalated, CoordinationRequested, CoordinationResponded,
    ProgressRecorded, ReportRequested, ReportSubmitted, ReportReviewed, ReportUrged, ReportEscalated,
    InterimReviewed, FinalReviewed, TaskClosed, TaskReassigned, SubplanSubmitted, DeadlineApproaching,
    DeadlineBreached, AttachmentAdded, *REPAIR_EVENTS,
)


# -- state ----------------------------------------------------------------------------------------------


class ReportEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    period: str
    due_on: str
    requested_at: datetime
    from_bodies: list[str]
    submitted_at: datetime | None = None
    submitted_by: str | None = None
    on_time: bool | None = None
    summary: str | None = None
    urged: int = 0
    escalated: bool = False
    verdict: str | None = None


class Reassignment(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    from_body: str
    to_body: str
    roles: list[str]
    reason: str | None
    actor: str


class TaskState(BaseModel):
    """Everything decided so far about one plan task (a fold of its events)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = 0
    spec: TaskSpec
    rules: PlanRules
    status: TaskStatus = S.ASSIGNED
    lead: list[str]
    coordinators: list[str]
    acknowledged: dict[str, datetime] = Field(default_factory=dict)
    escalated: list[str] = Field(default_factory=list)
    deadlines: dict[str, DeadlineState] = Field(default_factory=dict)
    reports: dict[str, ReportEntry] = Field(default_factory=dict)
    coordination: dict[str, CoordinationRequest] = Field(default_factory=dict)
    progress_count: int = 0
    last_progress_at: datetime | None = None
    interim_reviews: int = 0
    final_reviewed_at: datetime | None = None
    reassignments: list[Reassignment] = Field(default_factory=list)
    subplans: dict[str, str] = Field(default_factory=dict)
    #: The SHA-256 of every file the task holds (`domain.attachments`), in the order they came.
    attachments: list[str] = Field(default_factory=list)

    @property
    def bodies(self) -> list[str]:
        return [*self.lead, *(b for b in self.coordinators if b not in self.lead)]

    @property
    def overdue(self) -> bool:
        return any(d.pending and d.breached for d in self.deadlines.values())

    @property
    def next_due(self) -> Deadline | None:
        pending = [d.deadline for d in self.deadlines.values() if d.pending]
        return min(pending, key=lambda d: d.due_at) if pending else None

    @property
    def phase(self) -> str:
        """The phase a person would name (docs/architecture.md, plan task): report_due, overdue_report, urged,
        report_submitted..."""
        if self.status in (S.CLOSED, S.FINAL_REVIEW):
            return self.status.value
        open_reports = [r for r in self.reports.values() if r.submitted_at is None]
        if any(r.urged for r in open_reports):
            return "urged"
        if any(self.deadlines.get(f"report.{r.period}", None) and self.deadlines[f"report.{r.period}"].breached
               for r in open_reports):
            return "overdue_report"
        if open_reports:
            return "report_due"
        if any(r.submitted_at is not None and r.verdict is None for r in self.reports.values()):
            return "report_submitted"
        return self.status.value


# -- decide ---------------------------------------------------------------------------------------------


def _policy(rules: PlanRules, key: str, start: datetime, *, as_key: str) -> Deadline:
    try:
        deadline = compute_deadline(rules.case.policy.rule(key), start, rules.case.calendar)
    except UnknownDeadlineRule as exc:
        raise DomainError("policy.missing_rule", str(exc)) from exc
    except CalendarRangeError as exc:
        raise DomainError("calendar.out_of_range", str(exc)) from exc
    return deadline.model_copy(update={"key": as_key})


def subplan_bodies(lead: list[str], rules: PlanRules) -> list[str]:
    """III.2: each lower-level commission owes its own implementing plan. A lead naming a family of district
    bodies (`BDV_HUYEN`) means every district's one (`BDV_HUYEN:nam-sach`, ...)."""
    registry = rules.case.bodies
    out: list[str] = []
    for code in lead:
        instances = registry.instances(code) if registry is not None and code in registry else []
        out.extend(body.code for body in instances) if instances else out.append(code)
    return out


def _effective(rules: PlanRules, code: str, on: datetime, rule: str) -> None:
    registry = rules.case.bodies
    if registry is None:
        return
    try:
        registry.effective(code, local_date(on))
    except BodyError as exc:
        raise DomainError(rule, str(exc)) from exc


def _leadership(state: TaskState, on: datetime) -> str:
    """Where escalations go: the issuing commission, or its successor once it is replaced."""
    registry = state.rules.case.bodies
    issuer = state.spec.issuer
    if registry is None:
        return issuer
    try:
        return registry.successor_on(issuer, local_date(on))
    except BodyError:
        return issuer


def commission(state: TaskState) -> set[str]:
    """The commission that issued the plan and the division that monitors it, with their successors: who
    reviews, urges, reassigns and closes (`domain.authority.PLAN_TASK`)."""
    bodies = {state.spec.issuer, state.spec.monitor}
    registry = state.rules.case.bodies
    if registry is not None:
        for code in list(bodies):
            body = registry.get(code) if code in registry else None
            if body is not None and body.successor:
                bodies.add(body.successor)
    return bodies


def decide(state: TaskState | None, command: PlanTaskCommand, actor: Actor, now: datetime) -> list[Event]:
    """The events a command produces on `state` at `now`, or a `DomainError` naming the rule that refuses it."""
    if isinstance(command, Assign):
        return _assign(state, command, actor, now)
    if state is None:
        raise DomainError("task.not_found", "the task has not been assigned yet")
    require(state.status != S.CLOSED, "task.closed", "the task is closed; nothing more can happen to it")
    handler = _DECIDERS.get(type(command))
    if handler is None:
        raise DomainError("command.unknown", f"`{getattr(command, 'type', '?')}` is not a command of a plan task")
    events: list[Event] = handler(state, command, actor, now)
    return events


def _assign(state: TaskState | None, cmd: Assign, actor: Actor, now: datetime) -> list[Event]:
    require(state is None, "task.exists", "the task was already assigned")
    spec = cmd.spec
    bodies = [*spec.lead, *(b for b in spec.coordinators if b not in spec.lead)]
    deadlines = [_policy(cmd.rules, "plan.acknowledgement", now, as_key=f"ack.{b}") for b in bodies]
    if "one_off_subplan" in spec.cadence:
        deadlines += [_policy(cmd.rules, "plan.subplan", now, as_key=f"subplan.{b}")
                      for b in subplan_bodies(spec.lead, cmd.rules)]
    return [TaskAssigned(**envelope(cmd, actor, now, PLAN_BASIS), case_id=cmd.case_id, spec=spec, rules=cmd.rules,
                         rules_ref=cmd.rules_ref,
                         deadlines=deadlines)]


def _acknowledge(state: TaskState, cmd: Acknowledge, actor: Actor, now: datetime) -> list[Event]:
    require(cmd.body in state.bodies, "acknowledge.not_assigned", f"{cmd.body} is not assigned to this task")
    require(cmd.body not in state.acknowledged, "acknowledge.already", f"{cmd.body} has already acknowledged")
    return [TaskAcknowledged(**envelope(cmd, actor, now, PLAN_BASIS), body=cmd.body)]


def _request_coordination(state: TaskState, cmd: RequestCoordination, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in (S.ACTIVE, S.ASSIGNED), "coordination.state", f"the task is {state.status}")
    for target in cmd.bodies:
        _effective(state.rules, target.body, now, "coordination.body")
    return [co.decide_request(state.coordination, cmd, state.rules.case.calendar, now, envelope(cmd, actor, now),
                              lead=state.lead)]


def _respond(state: TaskState, cmd: Respond, actor: Actor, now: datetime) -> list[Event]:
    event = co.decide_response(state.coordination, cmd, envelope(cmd, actor, now))
    return [event]


def _record_progress(state: TaskState, cmd: RecordProgress, actor: Actor, now: datetime) -> list[Event]:
    require(cmd.body in state.bodies, "progress.not_assigned", f"{cmd.body} is not assigned to this task")
    return [ProgressRecorded(**envelope(cmd, actor, now), body=cmd.body, summary=cmd.summary,
                             evidence_refs=list(cmd.evidence_refs))]


def _request_report(state: TaskState, cmd: RequestReport, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in (S.ASSIGNED, S.ACTIVE), "report.state", f"the task is {state.status}")
    if cmd.period in state.reports:
        return []  # the cycle asked again (a retry): nothing new
    try:
        period = state.rules.reports.period(cmd.period)
    except ValueError as exc:
        raise DomainError("report.period", str(exc)) from exc
    deadline = Deadline(
        key=f"report.{cmd.period}", started_on=local_date(now), due_on=period.due_on, due_at=period.due_at,
        warn_at=end_of_day(max(local_date(now), period.due_on - timedelta(days=REPORT_WARN_DAYS))),
        amount=(period.due_on - local_date(now)).days, unit="calendar",
        legal_basis="Kế hoạch, mục III.2, III.3 (định kỳ 6 tháng, 1 năm)", rule_ref="PLAN:III.2-3",
        statutory=False, calendar_source=f"report calendar {state.rules.reports.version}",
    )
    return [ReportRequested(**envelope(cmd, actor, now, deadline.legal_basis), period=cmd.period,
                            from_bodies=list(state.lead), deadline=deadline)]


def _submit_report(state: TaskState, cmd: SubmitReport, actor: Actor, now: datetime) -> list[Event]:
    entry = state.reports.get(cmd.period)
    require(entry is not None, "report.not_requested", f"no report was requested for {cmd.period}")
    assert entry is not None
    require(entry.submitted_at is None or entry.verdict == "returned", "report.already",
            f"the report for {cmd.period} was already submitted")
    require(cmd.body in state.lead, "report.not_lead", f"{cmd.body} does not lead this task")
    due = state.deadlines.get(f"report.{cmd.period}")
    on_time = due is None or now <= due.deadline.due_at
    return [ReportSubmitted(**envelope(cmd, actor, now, "Kế hoạch, mục III.2"), period=cmd.period, body=cmd.body,
                            summary=cmd.summary, figures=dict(cmd.figures), evidence_refs=list(cmd.evidence_refs),
                            on_time=on_time)]


def _review_report(state: TaskState, cmd: ReviewReport, actor: Actor, now: datetime) -> list[Event]:
    entry = state.reports.get(cmd.period)
    require(entry is not None and entry.submitted_at is not None, "review.not_submitted",
            f"no report for {cmd.period} has been submitted")
    return [ReportReviewed(**envelope(cmd, actor, now, "Kế hoạch, mục III.3"), period=cmd.period,
                           verdict=cmd.verdict, notes=cmd.notes)]


def _urge(state: TaskState, cmd: Urge, actor: Actor, now: datetime) -> list[Event]:
    entry = state.reports.get(cmd.period)
    require(entry is not None and entry.submitted_at is None, "urge.nothing_missing",
            f"no report for {cmd.period} is missing")
    due = state.deadlines.get(f"report.{cmd.period}")
    require(due is not None and now > due.deadline.due_at, "urge.not_due",
            f"the report for {cmd.period} is not due before the end of its due day")
    return [ReportUrged(**envelope(cmd, actor, now, "Kế hoạch, mục III.3"), period=cmd.period, doc_no=cmd.doc_no,
                        deadline=_policy(state.rules, "plan.report_urge", now, as_key=f"report.{cmd.period}.urge"))]


def _interim(state: TaskState, cmd: InterimReview, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in (S.ASSIGNED, S.ACTIVE), "interim.state", f"the task is {state.status}")
    return [InterimReviewed(**envelope(cmd, actor, now, PLAN_BASIS), summary=cmd.summary)]


def _final(state: TaskState, cmd: FinalReview, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in (S.ASSIGNED, S.ACTIVE), "final.state", f"the task is {state.status}")
    return [FinalReviewed(**envelope(cmd, actor, now, PLAN_BASIS), summary=cmd.summary)]


def _close(state: TaskState, cmd: Close, actor: Actor, now: datetime) -> list[Event]:
    require(state.status == S.FINAL_REVIEW, "close.state", "a task is closed after its final review (tổng kết)")
    return [TaskClosed(**envelope(cmd, actor, now, PLAN_BASIS), approval_no=cmd.approval_no)]


def _reassign(state: TaskState, cmd: Reassign, actor: Actor, now: datetime) -> list[Event]:
    roles = [role for role, bodies in (("lead", state.lead), ("coordinator", state.coordinators))
             if cmd.from_body in bodies]
    require(bool(roles), "reassign.not_assigned", f"{cmd.from_body} has no part in this task")
    require(cmd.to_body != cmd.from_body, "reassign.same_body", "a body cannot replace itself")
    require(bool(cmd.reason and cmd.reason.strip()), "reassign.reason", "a reassignment needs its reason")
    _effective(state.rules, cmd.to_body, now, "reassign.body")
    moved: dict[str, str] = {}
    cancelled: list[str] = []
    for key, d in state.deadlines.items():
        kind, _, body = key.partition(".")
        if not d.pending or kind not in ("ack", "subplan"):
            continue
        if body.startswith(cmd.from_body + ":"):
            cancelled.append(key)  # a district instance of a replaced family: gone with it
        elif body == cmd.from_body:
            new_key = f"{kind}.{cmd.to_body}"
            done = cmd.to_body in (state.acknowledged if kind == "ack" else state.subplans)
            pending = new_key in state.deadlines and state.deadlines[new_key].pending
            if done or pending:
                cancelled.append(key)  # the successor already did it, or already owes it
            else:
                moved[key] = new_key
    return [TaskReassigned(**envelope(cmd, actor, now, "Nghị quyết 202/2025/QH15, 203/2025/QH15 (sắp xếp tổ chức)"),
                           from_body=cmd.from_body, to_body=cmd.to_body, roles=roles, moved=moved,
                           cancelled=cancelled)]


def _submit_subplan(state: TaskState, cmd: SubmitSubplan, actor: Actor, now: datetime) -> list[Event]:
    due = state.deadlines.get(f"subplan.{cmd.body}")
    require(due is not None, "subplan.not_required", f"{cmd.body} owes no implementing plan for this task")
    require(cmd.body not in state.subplans, "subplan.already", f"{cmd.body} already submitted its plan")
    on_time = due is None or now <= due.deadline.due_at
    return [SubplanSubmitted(**envelope(cmd, actor, now, "Kế hoạch, mục III.2"), body=cmd.body,
                             doc_ref=cmd.doc_ref, on_time=on_time)]


def _mark_deadline(state: TaskState, cmd: MarkDeadline, actor: Actor, now: datetime) -> list[Event]:
    """A timer fired. A missed acknowledgement is escalated; a missed report is urged by the monitoring division,
    and escalated when the urge is ignored too."""
    d = state.deadlines.get(cmd.key)
    if d is None or not d.pending:
        return []
    env = envelope(cmd, actor, now, d.deadline.legal_basis)
    due = d.deadline.due_at.isoformat()
    if cmd.stage == "approaching":
        return [] if d.approached or d.breached else [DeadlineApproaching(**env, key=cmd.key, due_at=due)]
    if d.breached or now <= d.deadline.due_at:
        return []
    events: list[Event] = [DeadlineBreached(**env, key=cmd.key, due_at=due)]
    kind, _, rest = cmd.key.partition(".")
    if kind == "ack":
        events.append(AcknowledgementEscalated(**env, body=rest, to_body=_leadership(state, now)))
    elif kind == "report" and not rest.endswith(".urge"):
        events.append(ReportUrged(**{**env, "legal_basis": "Kế hoạch, mục III.3"}, period=rest, automatic=True,
                                  deadline=_policy(state.rules, "plan.report_urge", now, as_key=f"report.{rest}.urge")))
    elif kind == "report":
        period = rest.removesuffix(".urge")
        events.append(ReportEscalated(**env, period=period, to_body=_leadership(state, now)))
    return events


def _attach(state: TaskState, cmd: Attach, actor: Actor, now: datetime) -> list[Event]:
    return decide_attach(state.attachments, cmd, actor, now)


_DECIDERS: dict[type[Any], Any] = {
    Attach: _attach, Acknowledge: _acknowledge, RequestCoordination: _request_coordination, Respond: _respond,
    RecordProgress: _record_progress, RequestReport: _request_report, SubmitReport: _submit_report,
    ReviewReport: _review_report, Urge: _urge, InterimReview: _interim, FinalReview: _final, Close: _close,
    Reassign: _reassign, SubmitSubplan: _submit_subplan, MarkDeadline: _mark_deadline,
}


# -- evolve ---------------------------------------------------------------------------------------------


def _replace(bodies: list[str], old: str, new: str) -> list[str]:
    out = []
    for b in bodies:
        b = new if b == old else b
        if b not in out:
            out.append(b)
    return out


@singledispatch
def _apply(event: Event, s: TaskState) -> dict[str, Any]:
    raise TypeError(f"no evolve rule for {type(event).__name__}")


@_apply.register(RepairRecorded)
@_apply.register(BodyNudged)
def _(ev: Event, s: TaskState) -> dict[str, Any]:
    return {}  # an operator's repair is on the record; the case itself moves through its own events


@_apply.register
def _(ev: AttachmentAdded, s: TaskState) -> dict[str, Any]:
    return {"attachments": [*s.attachments, ev.sha256]}


@_apply.register
def _(ev: TaskAcknowledged, s: TaskState) -> dict[str, Any]:
    status = S.ACTIVE if s.status == S.ASSIGNED and ev.body in s.lead else s.status
    return {"acknowledged": {**s.acknowledged, ev.body: ev.occurred_at}, "status": status,
            "deadlines": meet_deadlines(s.deadlines, [f"ack.{ev.body}"], ev.occurred_at)}


@_apply.register
def _(ev: AcknowledgementEscalated, s: TaskState) -> dict[str, Any]:
    return {"escalated": [*s.escalated, f"ack.{ev.body}"]}


@_apply.register
def _(ev: CoordinationRequested, s: TaskState) -> dict[str, Any]:
    return co.requested(s.coordination, s.deadlines, ev)


@_apply.register
def _(ev: CoordinationResponded, s: TaskState) -> dict[str, Any]:
    return co.responded(s.coordination, s.deadlines, ev)


@_apply.register
def _(ev: ProgressRecorded, s: TaskState) -> dict[str, Any]:
    return {"progress_count": s.progress_count + 1, "last_progress_at": ev.occurred_at}


@_apply.register
def _(ev: ReportRequested, s: TaskState) -> dict[str, Any]:
    entry = ReportEntry(period=ev.period, due_on=ev.deadline.due_on.isoformat(), requested_at=ev.occurred_at,
                        from_bodies=ev.from_bodies)
    return {"reports": {**s.reports, ev.period: entry}, "deadlines": add_deadlines(s.deadlines, [ev.deadline])}


@_apply.register
def _(ev: ReportSubmitted, s: TaskState) -> dict[str, Any]:
    entry = s.reports[ev.period].model_copy(update={
        "submitted_at": ev.occurred_at, "submitted_by": ev.body, "on_time": ev.on_time, "summary": ev.summary,
        "verdict": None})
    keys = [f"report.{ev.period}", f"report.{ev.period}.urge"]
    return {"reports": {**s.reports, ev.period: entry}, "deadlines": meet_deadlines(s.deadlines, keys, ev.occurred_at)}


@_apply.register
def _(ev: ReportReviewed, s: TaskState) -> dict[str, Any]:
    entry = s.reports[ev.period].model_copy(update={"verdict": ev.verdict})
    return {"reports": {**s.reports, ev.period: entry}}


@_apply.register
def _(ev: ReportUrged, s: TaskState) -> dict[str, Any]:
    entry = s.reports[ev.period]
    deadlines = add_deadlines(s.deadlines, [ev.deadline]) if ev.deadline else s.deadlines
    return {"reports": {**s.reports, ev.period: entry.model_copy(update={"urged": entry.urged + 1})},
            "deadlines": deadlines}


@_apply.register
def _(ev: ReportEscalated, s: TaskState) -> dict[str, Any]:
    entry = s.reports[ev.period].model_copy(update={"escalated": True})
    return {"reports": {**s.reports, ev.period: entry}}


@_apply.register
def _(ev: InterimReviewed, s: TaskState) -> dict[str, Any]:
    return {"interim_reviews": s.interim_reviews + 1}


@_apply.register
def _(ev: FinalReviewed, s: TaskState) -> dict[str, Any]:
    return {"status": S.FINAL_REVIEW, "final_reviewed_at": ev.occurred_at}


@_apply.register
def _(ev: TaskClosed, s: TaskState) -> dict[str, Any]:
    return {"status": S.CLOSED, "deadlines": cancel_pending(s.deadlines)}


@_apply.register
def _(ev: TaskReassigned, s: TaskState) -> dict[str, Any]:
    """The successor takes over the body's pending obligations; the history keeps who owed what when."""
    if ev.moved is None:  # recorded before the moves were kept in the event: as it was then
        moved_keys = {key: f"{key.partition('.')[0]}.{ev.to_body}" for key, d in s.deadlines.items()
                      if d.pending and key in (f"ack.{ev.from_body}", f"subplan.{ev.from_body}")}
        cancelled_keys: list[str] = []
    else:
        moved_keys, cancelled_keys = ev.moved, ev.cancelled or []
    deadlines = cancel_pending(s.deadlines, [*moved_keys, *cancelled_keys])
    for old, new in moved_keys.items():
        d = s.deadlines[old]
        deadlines[new] = d.model_copy(update={"deadline": d.deadline.model_copy(update={"key": new})})
    reports = {p: r.model_copy(update={"from_bodies": _replace(r.from_bodies, ev.from_body, ev.to_body)})
               for p, r in s.reports.items()}
    acknowledged = dict(s.acknowledged)
    if ev.from_body in acknowledged and ev.to_body not in acknowledged:
        acknowledged[ev.to_body] = acknowledged[ev.from_body]
        deadlines = meet_deadlines(deadlines, [f"ack.{ev.to_body}"], ev.occurred_at)
    step = Reassignment(at=ev.occurred_at, from_body=ev.from_body, to_body=ev.to_body, roles=ev.roles,
                        reason=ev.reason, actor=ev.actor)
    return {"lead": _replace(s.lead, ev.from_body, ev.to_body),
            "coordinators": _replace(s.coordinators, ev.from_body, ev.to_body),
            "deadlines": deadlines, "reports": reports, "acknowledged": acknowledged,
            "reassignments": [*s.reassignments, step]}


@_apply.register
def _(ev: SubplanSubmitted, s: TaskState) -> dict[str, Any]:
    return {"subplans": {**s.subplans, ev.body: ev.doc_ref},
            "deadlines": meet_deadlines(s.deadlines, [f"subplan.{ev.body}"], ev.occurred_at)}


@_apply.register
def _(ev: DeadlineApproaching, s: TaskState) -> dict[str, Any]:
    return {"deadlines": mark_deadline(s.deadlines, ev.key, "approaching")}


@_apply.register
def _(ev: DeadlineBreached, s: TaskState) -> dict[str, Any]:
    return {"deadlines": mark_deadline(s.deadlines, ev.key, "breached")}


def evolve(state: TaskState | None, event: Event) -> TaskState:
    """The state after one more event. Every event adds one to the version."""
    if isinstance(event, TaskAssigned):
        if state is not None:
            raise ValueError("TaskAssigned can only open a task")
        return TaskState(case_id=event.case_id, version=1, spec=event.spec, rules=event.plan_rules(),
                         lead=list(event.spec.lead), coordinators=list(event.spec.coordinators),
                         deadlines=add_deadlines({}, event.deadlines))
    if state is None:
        raise ValueError(f"{type(event).__name__} before TaskAssigned")
    return state.model_copy(update={**_apply(event, state), "version": state.version + 1})


def fold(events: Iterable[Event], state: TaskState | None = None) -> TaskState | None:
    for event in events:
        state = evolve(state, event)
    return state


# -- views ----------------------------------------------------------------------------------------------


def task_row(state: TaskState) -> dict[str, Any]:
    """The `cases` read-model row of a plan task."""
    due = state.next_due
    summary = {
        "plan_id": state.spec.plan_id, "task_id": state.spec.task_id, "parent_task_id": state.spec.parent_task_id,
        "title_en": state.spec.title_en, "phase": state.phase, "lead": state.lead,
        "coordinators": state.coordinators, "acknowledged": sorted(state.acknowledged),
        "escalated": state.escalated, "progress_count": state.progress_count,
        "reports": {p: in_vietnam(r).model_dump(mode="json") for p, r in sorted(state.reports.items())},
        "subplans": state.subplans,
        "reassignments": [in_vietnam(r).model_dump(mode="json") for r in state.reassignments],
        "deadlines": [
            {"key": k, "due_on": d.deadline.due_on.isoformat(), "legal_basis": d.deadline.legal_basis,
             "statutory": d.deadline.statutory, "outcome": d.outcome, "breached": d.breached}
            for k, d in sorted(state.deadlines.items(), key=lambda kv: kv[1].deadline.due_at)
        ],
    }
    return {
        "kind": CASE_KIND, "status": state.phase, "title": state.spec.title_vi,
        "lead_body": state.lead[0] if state.lead else None, "bodies": state.bodies, "district": None,
        "commune": None, "source": state.spec.plan_id, "external_ref": state.spec.task_id,
        "received_at": None, "due_at": due.due_at if due else None, "overdue": state.overdue, "summary": summary,
    }
