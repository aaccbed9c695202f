"""`FrontSupervisionWorkflow`: the Front's supervision of one petition case (docs/legal-reference.md §4;
docs/architecture.md, Front supervision).

Started by `PetitionWorkflow` as an abandoned child (id `<case_id>-front`) on a breach, on a petition the Front
forwarded, or when a Front officer asks. Like the petition, it is the single writer of its stream (stream id =
workflow id): every command is an Update whose validator runs the pure `decide`; accepted commands append their
events and the `cases` projection through the event-store activity, and only then move the state. Its waiting
periods are durable timers: when one comes due the workflow issues itself a `deadline` command, which the
decider may answer with an automatic escalation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RawValue, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from domain import front_supervision as fs
    from domain.common import SYSTEM, Actor, DomainError, Event, EventRegistry
    from domain.deadlines import CaseRules, Deadline, MarkDeadline
    from domain.idempotency import SeenCommand
    from domain.rulesets import RulesRef
    from eventstore.models import CaseRow

    from .case import CaseMachine, Stage, named_request, refusal
    from .rulebook import resolve
    from .shared import CASE_KIND, CASE_STATUS, DUE_AT, LEAD_BODY, OVERDUE


class FrontSupervisionStart(BaseModel):
    """How a supervision starts: the watched case, why, its rules and deadline (and, for a continued run, the
    state and the command ids carried over)."""

    case_id: str
    trigger: fs.Trigger
    #: The watched case's rules in full (as supervisions started before `rules-by-digest` have them), or by ref.
    rules: CaseRules | None = None
    rules_ref: RulesRef | None = None
    #: The petition's next due deadline when the supervision started (None: it had none pending).
    watched_due: Deadline | None = None
    case_kind: str
    #: The body resolving the petition (None: not yet known).
    resolver: str | None = None
    carried_state: fs.SupervisionState | None = None
    seen_commands: dict[str, int] = Field(default_factory=dict)
    #: The digests of the request applied under each key (`domain.idempotency`), carried with `seen_commands`.
    seen_digests: dict[str, SeenCommand] = Field(default_factory=dict)


class FrontCommandResult(BaseModel):
    """The answer to one command: the supervision after it, the events it recorded, whether it was a repeat."""

    supervision: fs.SupervisionView
    events: list[str] = Field(default_factory=list)
    duplicate: bool = False


@workflow.defn
class FrontSupervisionWorkflow(CaseMachine[fs.SupervisionState]):
    """The Front's escalation ladder over one petition: watch, remind, urge, recommend, judge the answer,
    escalate, close."""

    @workflow.init
    def __init__(self, start: FrontSupervisionStart) -> None:
        self.start = start
        self.setup(start.carried_state, start.seen_commands, seen_digests=start.seen_digests)

    # -- the run --------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: FrontSupervisionStart) -> fs.SupervisionView:
        """Open the supervision, then sleep until the next deadline or command, until it is closed."""
        if self.state is None:
            rules = start.rules
            if rules is None:
                assert start.rules_ref is not None, "a supervision starts with its case's rules or their ref"
                rules = await resolve(start.rules_ref)
            command = fs.Open(
                supervision_id=workflow.info().workflow_id, case_id=start.case_id, case_kind=start.case_kind,
                resolver=start.resolver, trigger=start.trigger, rules=rules, rules_ref=start.rules_ref,
                watched_due=start.watched_due,
            )
            async with self.lock:
                try:
                    await self.apply(command, SYSTEM, "open")
                except DomainError as exc:  # e.g. a watched date outside the recorded calendar: fail, clearly
                    raise refusal(exc) from exc
        await self.wait_until_finished(
            SYSTEM, lambda: start.model_copy(update={"carried_state": self.state, "seen_commands": self.seen,
                                          "seen_digests": self.seen_digests})
        )
        assert self.state is not None
        return fs.supervision_view(self.state)

    # -- the domain, for the machinery ----------------------------------------------------------------

    def decide(self, state: fs.SupervisionState | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        return fs.decide(state, command, actor, now)

    def fold(self, events: Sequence[Event], state: fs.SupervisionState | None) -> fs.SupervisionState:
        folded = fs.fold(events, state)
        assert folded is not None
        return folded

    def stream_id(self, state: fs.SupervisionState) -> str:
        return state.supervision_id

    def projection(self, state: fs.SupervisionState) -> CaseRow:
        return CaseRow.model_validate(fs.supervision_row(state))

    def registry(self) -> EventRegistry:
        return fs.REGISTRY

    def owing_bodies(self, state: fs.SupervisionState) -> list[str]:
        return [state.resolver] if state.resolver else []

    def deadline_command(self, key: str, stage: Stage) -> MarkDeadline:
        return MarkDeadline(key=key, stage=stage)

    def finished(self) -> bool:
        return self.state is not None and self.state.status == fs.SupervisionStatus.CLOSED

    def search_attributes(self, state: fs.SupervisionState) -> list[SearchAttributeUpdate[Any]]:
        """Kept current, so Temporal's list and Web UI filter real supervisions."""
        due = state.next_due
        return [
            CASE_KIND.value_set(fs.CASE_KIND), CASE_STATUS.value_set(state.status.value),
            LEAD_BODY.value_set(fs.FRONT_BODY), OVERDUE.value_set(state.overdue),
            DUE_AT.value_set(due.due_at) if due else DUE_AT.value_unset(),
        ]

    def _result(self, events: list[Event], *, duplicate: bool = False) -> FrontCommandResult:
        assert self.state is not None
        return FrontCommandResult(supervision=fs.supervision_view(self.state),
                                  events=[ev.event_type() for ev in events], duplicate=duplicate)

    # -- updates and queries --------------------------------------------------------------------------

    @workflow.update
    async def execute(self, request: fs.FrontCommandRequest) -> FrontCommandResult:
        """Apply one command of the ladder. A repeated `command_id` returns the current state and changes nothing."""
        return await self.apply_request(request)

    async def apply_request(self, request: fs.FrontCommandRequest) -> FrontCommandResult:
        """The body of `execute` and of `command`."""
        events, duplicate = await self.handle(request.command, request.actor, request.command_id)
        return self._result(events, duplicate=duplicate)

    @execute.validator
    def validate_execute(self, request: fs.FrontCommandRequest) -> None:
        """Refuse, before anything enters the history, a command the ladder or the state does not allow."""
        self.validate(request.command, request.actor, request.command_id, internal=fs.INTERNAL,
                      opening="supervision.opening")

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> FrontCommandResult:
        """One command sent as an Update named after it (`classify`, `accept`...), so that Temporal's Web UI and
        the process history show what each step was; the same as `execute`, which older clients send."""
        return await self.apply_request(named_request(name, args, fs.FrontCommandRequest))

    @command.validator
    def validate_command(self, name: str, args: Sequence[RawValue]) -> None:
        self.validate_execute(named_request(name, args, fs.FrontCommandRequest))

    @workflow.query
    def view(self) -> fs.SupervisionView | None:
        """The supervision as the API shows it (None while it is being opened)."""
        return fs.supervision_view(self.state) if self.state is not None else None

    @workflow.query
    def state_snapshot(self) -> fs.SupervisionState | None:
        """The whole state, for tests and operators (it equals the fold of the stream's events)."""
        return self.state


def supervision_search_attributes() -> TypedSearchAttributes:
    """The attributes a supervision starts with, so it is listed before its first event is written."""
    return TypedSearchAttributes([
        SearchAttributePair(CASE_KIND, fs.CASE_KIND),
        SearchAttributePair(CASE_STATUS, fs.SupervisionStatus.WATCHING.value),
        SearchAttributePair(LEAD_BODY, fs.FRONT_BODY),
    ])
