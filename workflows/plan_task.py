"""`PlanTaskWorkflow`: one task (or subtask) of the action plan, for the whole term of the plan.

Started by the plan import (workflow id = case id = `task-<plan>-<task>`). It loads the rules of the term
(deadline policy, calendar, bodies, report calendar), records the assignment, and then lives on commands and
timers: acknowledgements owed by each body (escalated when ignored), coordination, progress, the report of each
period (requested by the period's report cycle, urged by the monitoring division when missed, escalated when the
urge is ignored), reviews, reassignment to successor bodies, closure. A five-year term stays bounded: the
workflow continues as new, carrying its state and pending deadlines. The machinery is `workflows.case`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RawValue, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities.rules import PlanRulesRequest
    from domain import plan_tasks as pt
    from domain.authority import PLAN_TASK, authorize, for_command, task_facts
    from domain.calendar import local_date
    from domain.common import SYSTEM, Actor, DomainError, Event, EventRegistry
    from domain.coordination import owing
    from domain.deadlines import MarkDeadline
    from domain.idempotency import SeenCommand
    from eventstore.models import CaseRow

    from .case import MAX_HISTORY_EVENTS, CaseMachine, Stage, named_request
    from .rulebook import started_plan_rules
    from .shared import CASE_KIND, CASE_STATUS, DUE_AT, LEAD_BODY, OVERDUE


class PlanTaskStart(BaseModel):
    spec: pt.TaskSpec
    #: The end of the plan's term: the calendar recorded for the task reaches past it.
    term_end: date
    carried_state: pt.TaskState | None = None
    seen_commands: dict[str, int] = Field(default_factory=dict)
    #: The digests of the request applied under each key (`domain.idempotency`), carried with `seen_commands`.
    seen_digests: dict[str, SeenCommand] = Field(default_factory=dict)
    history_limit: int = Field(default=MAX_HISTORY_EVENTS, ge=50)


class TaskView(BaseModel):
    case_id: str
    task_id: str
    plan_id: str
    title_vi: str
    status: str
    phase: str
    version: int
    lead: list[str]
    coordinators: list[str]
    acknowledged: list[str]
    overdue: bool
    next_due_at: datetime | None
    reports: dict[str, pt.ReportEntry]
    reassignments: list[pt.Reassignment]


class TaskCommandResult(BaseModel):
    task: TaskView
    events: list[str] = Field(default_factory=list)
    duplicate: bool = False


def task_view(state: pt.TaskState) -> TaskView:
    due = state.next_due
    return TaskView(
        case_id=state.case_id, task_id=state.spec.task_id, plan_id=state.spec.plan_id, title_vi=state.spec.title_vi,
        status=state.status.value, phase=state.phase, version=state.version, lead=state.lead,
        coordinators=state.coordinators, acknowledged=sorted(state.acknowledged), overdue=state.overdue,
        next_due_at=due.due_at if due else None, reports=state.reports, reassignments=state.reassignments,
    )


@workflow.defn
class PlanTaskWorkflow(CaseMachine[pt.TaskState]):
    """A task of the commission's action plan, followed through coordination and periodic reports to closure."""

    @workflow.init
    def __init__(self, start: PlanTaskStart) -> None:
        self.start = start
        self.setup(start.carried_state, start.seen_commands, start.history_limit, seen_digests=start.seen_digests)

    @workflow.run
    async def run(self, start: PlanTaskStart) -> TaskView:
        if self.state is None:
            request = PlanRulesRequest(start_on=local_date(workflow.now()), until=start.term_end)
            rules, ref = await started_plan_rules(request)
            assign = pt.Assign(case_id=workflow.info().workflow_id, spec=start.spec, rules=rules, rules_ref=ref)
            async with self.lock:
                await self.apply(assign, SYSTEM, "assign")
        await self.wait_until_finished(
            SYSTEM, lambda: start.model_copy(update={"carried_state": self.state, "seen_commands": self.seen,
                                          "seen_digests": self.seen_digests})
        )
        assert self.state is not None
        return task_view(self.state)

    # -- the domain, for the machinery ----------------------------------------------------------------

    def decide(self, state: pt.TaskState | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        return pt.decide(state, command, actor, now)

    def fold(self, events: Sequence[Event], state: pt.TaskState | None) -> pt.TaskState:
        folded = pt.fold(events, state)
        assert folded is not None
        return folded

    def stream_id(self, state: pt.TaskState) -> str:
        return state.case_id

    def projection(self, state: pt.TaskState) -> CaseRow:
        """The `cases` row, with the facts the API checks a command's sender against before sending it."""
        row = pt.task_row(state)
        row["summary"]["authority"] = task_facts(state).model_dump(mode="json")
        return CaseRow.model_validate(row)

    def deadline_command(self, key: str, stage: Stage) -> MarkDeadline:
        return MarkDeadline(key=key, stage=stage)

    def registry(self) -> EventRegistry:
        return pt.REGISTRY

    def owing_bodies(self, state: pt.TaskState) -> list[str]:
        return state.lead + [b for b in owing(state.coordination) if b not in state.lead]

    def authorize(self, state: pt.TaskState, command: Any, actor: Actor) -> None:
        authorize(PLAN_TASK, command.type, actor, for_command(PLAN_TASK, command, task_facts(state)))

    def reassign(self, state: pt.TaskState, body: str, actor: Actor, now: datetime, reason: str) -> list[Event]:
        if len(state.lead) != 1:
            raise DomainError("repair.reassign.which", "the task has several lead bodies: reassign each body's "
                              "part with the task's own `reassign` command")
        return pt.decide(state, pt.Reassign(from_body=state.lead[0], to_body=body, reason=reason), actor, now)

    def finished(self) -> bool:
        return self.state is not None and self.state.status == pt.TaskStatus.CLOSED

    def search_attributes(self, state: pt.TaskState) -> list[SearchAttributeUpdate[Any]]:
        due = state.next_due
        return [
            CASE_KIND.value_set(pt.CASE_KIND), CASE_STATUS.value_set(state.phase), OVERDUE.value_set(state.overdue),
            LEAD_BODY.value_set(state.lead[0]) if state.lead else LEAD_BODY.value_unset(),
            DUE_AT.value_set(due.due_at) if due else DUE_AT.value_unset(),
        ]

    # -- updates and queries --------------------------------------------------------------------------

    @workflow.update
    async def execute(self, request: pt.TaskCommandRequest) -> TaskCommandResult:
        """Apply one command. A repeated `command_id` returns the current state and changes nothing."""
        return await self.apply_request(request)

    async def apply_request(self, request: pt.TaskCommandRequest) -> TaskCommandResult:
        """The body of `execute` and of `command`."""
        events, duplicate = await self.handle(request.command, request.actor, request.command_id)
        assert self.state is not None
        return TaskCommandResult(task=task_view(self.state), events=[e.event_type() for e in events],
                                 duplicate=duplicate)

    @execute.validator
    def validate_execute(self, request: pt.TaskCommandRequest) -> None:
        """Refuse, before anything enters the history, what the plan's rules or the task's state do not allow."""
        self.validate(request.command, request.actor, request.command_id, internal=pt.INTERNAL,
                      opening="task.opening")

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> TaskCommandResult:
        """One command sent as an Update named after it (`classify`, `accept`...), so that Temporal's Web UI and
        the process history show what each step was; the same as `execute`, which older clients send."""
        return await self.apply_request(named_request(name, args, pt.TaskCommandRequest))

    @command.validator
    def validate_command(self, name: str, args: Sequence[RawValue]) -> None:
        self.validate_execute(named_request(name, args, pt.TaskCommandRequest))

    @workflow.query
    def view(self) -> TaskView | None:
        return task_view(self.state) if self.state is not None else None

    @workflow.query
    def state_snapshot(self) -> pt.TaskState | None:
        return self.state
