"""`PlanWorkflow`: the action plan as a case (workflow id `plan-<plan id>`).

It is started by the plan import (update-with-start, so the first import is atomic) and lives for the plan's
term: it starts one `PlanTaskWorkflow` per task, and when a period's reports are due to be requested it starts
that period's `ReportCycleWorkflow`, after handing the part of any body that no longer exists to its successor.
Importing the same plan again changes nothing; an edited plan is refused, with what differs, unless the import
asks for the changes to be applied (new tasks are then started; changed and removed ones are reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseCommandActivities, ReplaceBodiesInput, StartCasesInput
    from activities.rules import PlanRulesRequest
    from domain import plan_cases as pc
    from domain.calendar import local_date
    from domain.common import SYSTEM, Actor, DomainError, Event, EventRegistry
    from domain.deadlines import MarkDeadline
    from domain.idempotency import SeenCommand
    from domain.plan import PlanDiff, PlanDocument
    from eventstore.models import CaseRow

    from .case import ACTIVITY_TIMEOUT, APPEND_RETRY, MAX_HISTORY_EVENTS, CaseMachine, Stage, refusal
    from .plan_task import PlanTaskStart, PlanTaskWorkflow
    from .report_cycle import ReportCycleStart, ReportCycleWorkflow
    from .rulebook import started_plan_rules
    from .shared import CASE_KIND, CASE_STATUS, DUE_AT, LEAD_BODY


#: Task cases and report cycles are started by an activity rather than as child workflows, so that they do not
#: report back into the plan's history, and the plan can continue as new while they run.
START_BY_ACTIVITY = "start-cases-by-activity"


class PlanStart(BaseModel):
    document: PlanDocument
    imported_by: Actor = SYSTEM
    carried_state: pc.PlanCaseState | None = None
    seen_commands: dict[str, int] = Field(default_factory=dict)
    #: The digests of the request applied under each key (`domain.idempotency`), carried with `seen_commands`.
    seen_digests: dict[str, SeenCommand] = Field(default_factory=dict)
    #: Passed on to the plan's task cases too (lower it in tests to exercise continue-as-new).
    history_limit: int = Field(default=MAX_HISTORY_EVENTS, ge=50)


class ImportRequest(BaseModel):
    document: PlanDocument
    apply_changes: bool = False
    actor: Actor = SYSTEM


class ImportResult(BaseModel):
    plan_id: str
    case_id: str
    outcome: str  # "imported", "unchanged" or "amended"
    digest: str
    task_case_ids: list[str]
    started: list[str] = Field(default_factory=list)
    diff: PlanDiff | None = None


class PlanProgress(BaseModel):
    plan_id: str
    tasks: int
    started: int
    cycles_started: list[str]
    cycles_pending: list[str]


@workflow.defn
class PlanWorkflow(CaseMachine[pc.PlanCaseState]):
    """An imported action plan: its task cases and the report cycles of its term."""

    @workflow.init
    def __init__(self, start: PlanStart) -> None:
        self.start = start
        self.setup(start.carried_state, start.seen_commands, start.history_limit, seen_digests=start.seen_digests)
        self.started: set[str] = set(start.carried_state.task_case_ids) if start.carried_state else set()
        self.last_result: ImportResult | None = None

    @workflow.run
    async def run(self, start: PlanStart) -> PlanProgress:
        if self.state is None:
            request = PlanRulesRequest(start_on=local_date(workflow.now()), until=start.document.term_end)
            rules, _ = await started_plan_rules(request)
            command = pc.ImportPlan(case_id=workflow.info().workflow_id, document=start.document, reports=rules.reports)
            async with self.lock:
                await self.apply(command, start.imported_by, None)
        await self.wait_until_finished(
            SYSTEM, lambda: start.model_copy(update={"carried_state": self.state, "seen_commands": self.seen,
                                          "seen_digests": self.seen_digests})
        )
        return self.progress()

    # -- the domain, for the machinery ----------------------------------------------------------------

    def decide(self, state: pc.PlanCaseState | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        return pc.decide(state, command, actor, now)

    def fold(self, events: Sequence[Event], state: pc.PlanCaseState | None) -> pc.PlanCaseState:
        folded = pc.fold(events, state)
        assert folded is not None
        return folded

    def stream_id(self, state: pc.PlanCaseState) -> str:
        return state.case_id

    def projection(self, state: pc.PlanCaseState) -> CaseRow:
        return CaseRow.model_validate(pc.plan_row(state))

    def registry(self) -> EventRegistry:
        return pc.REGISTRY

    def deadline_command(self, key: str, stage: Stage) -> MarkDeadline:
        return MarkDeadline(key=key, stage=stage)

    def finished(self) -> bool:
        return False  # a plan waits for amendments as long as it exists

    def search_attributes(self, state: pc.PlanCaseState) -> list[SearchAttributeUpdate[Any]]:
        due = state.next_due
        return [
            CASE_KIND.value_set(pc.CASE_KIND), CASE_STATUS.value_set("active"),
            LEAD_BODY.value_set(state.document.issuer),
            DUE_AT.value_set(due.due_at) if due else DUE_AT.value_unset(),
        ]

    async def after_append(self, events: list[Event]) -> None:
        assert self.state is not None
        for event in events:
            if isinstance(event, pc.PlanImported | pc.PlanAmended):
                await self._start_tasks()
            elif isinstance(event, pc.ReportCycleStarted):
                await self._start_cycle(event)

    async def _start_tasks(self) -> None:
        """Start the task cases not yet started; their ids are business keys, so none is started twice."""
        assert self.state is not None
        document = self.state.document
        starts = []
        for task in document.all_tasks():
            case_id = pc.task_case_id(document.id, task.id)
            if case_id in self.started:
                continue
            start = PlanTaskStart(spec=pc.task_spec(document, task), term_end=document.term_end,
                                  history_limit=self.history_limit)
            if not workflow.patched(START_BY_ACTIVITY):
                await workflow.start_child_workflow(
                    PlanTaskWorkflow.run, start, id=case_id, parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
                self.started.add(case_id)
                continue
            starts.append((case_id, start.model_dump(mode="json")))
        if starts:
            await workflow.execute_activity_method(
                CaseCommandActivities.start_cases, StartCasesInput(workflow_type="PlanTaskWorkflow", starts=starts),
                start_to_close_timeout=timedelta(minutes=10), heartbeat_timeout=timedelta(minutes=2),
                retry_policy=APPEND_RETRY,
            )
            self.started.update(case_id for case_id, _ in starts)

    async def _start_cycle(self, event: pc.ReportCycleStarted) -> None:
        """Hand the part of bodies that no longer exist to their successors, then start the period's cycle."""
        assert self.state is not None
        today = local_date(workflow.now())
        replaced = await workflow.execute_activity_method(
            CaseCommandActivities.replace_bodies,
            ReplaceBodiesInput(on=today, task_case_ids=self.state.task_case_ids),
            start_to_close_timeout=timedelta(minutes=10), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=APPEND_RETRY,
        )
        if replaced.replacements:
            await self.apply(pc.RecordReplacements(on=today, replacements=replaced.replacements), SYSTEM, None)
        period = self.state.reports.period(event.period)
        start = ReportCycleStart(plan_id=self.state.plan_id, period=event.period,
                                 task_case_ids=self.state.task_case_ids, due_on=period.due_on,
                                 compile_on=self.state.reports.compile_on(period))
        if not workflow.patched(START_BY_ACTIVITY):
            await workflow.start_child_workflow(ReportCycleWorkflow.run, start, id=event.cycle_id,
                                                parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            return
        await workflow.execute_activity_method(
            CaseCommandActivities.start_cases,
            StartCasesInput(workflow_type="ReportCycleWorkflow",
                            starts=[(event.cycle_id, start.model_dump(mode="json"))]),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
        )

    def progress(self) -> PlanProgress:
        assert self.state is not None
        return PlanProgress(
            plan_id=self.state.plan_id, tasks=len(self.state.task_case_ids),
            started=len(self.started & set(self.state.task_case_ids)), cycles_started=self.state.cycles_started,
            cycles_pending=sorted(k.removeprefix("cycle.") for k, d in self.state.deadlines.items() if d.pending),
        )

    # -- updates and queries --------------------------------------------------------------------------

    @workflow.update
    async def import_plan(self, request: ImportRequest) -> ImportResult:
        """Import (again) a plan: unchanged, amended when asked, or refused with what differs."""
        await workflow.wait_condition(lambda: self.state is not None)
        assert self.state is not None
        async with self.lock:
            before = set(self.started)
            command = pc.ImportPlan(case_id=self.state.case_id, document=request.document,
                                    apply_changes=request.apply_changes)
            try:
                events = await self.apply(command, request.actor, None)
            except DomainError as exc:
                raise refusal(exc) from exc
            first = self.state.version == 1 and self.last_result is None
            outcome = "imported" if first else ("amended" if events else "unchanged")
            diff = next((e.diff for e in events if isinstance(e, pc.PlanAmended)), None)
            self.last_result = ImportResult(
                plan_id=self.state.plan_id, case_id=self.state.case_id, outcome=outcome, digest=self.state.digest,
                task_case_ids=self.state.task_case_ids,
                started=sorted(self.started - before) if not first else sorted(self.started), diff=diff,
            )
            return self.last_result

    @import_plan.validator
    def validate_import(self, request: ImportRequest) -> None:
        if self.state is None:
            if request.document.digest() != self.start.document.digest():
                raise ApplicationError("the plan is being imported with other content", type="plan.changed")
            return
        try:
            pc.decide(self.state, pc.ImportPlan(case_id=self.state.case_id, document=request.document,
                                                apply_changes=request.apply_changes), request.actor, workflow.now())
        except DomainError as exc:
            raise refusal(exc) from exc

    @workflow.query
    def plan_progress(self) -> PlanProgress | None:
        return self.progress() if self.state is not None else None

    @workflow.query
    def state_snapshot(self) -> pc.PlanCaseState | None:
        return self.state
