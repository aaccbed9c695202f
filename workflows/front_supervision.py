"""`FrontSupervisionWorkflow`: the Front's supervision of one petition case (domain.md §4, §8.3).

Started by `PetitionWorkflow` as an abandoned child (id `<case_id>-front`) on a breach, on a petition the Front
forwarded, or when a Front officer asks. Like the petition, it is the single writer of its stream (stream id =
workflow id): every command is an Update whose validator runs the pure `decide`; accepted commands append their
events and the `cases` projection through the event-store activity, and only then move the state. Its waiting
periods are durable timers: when one comes due the workflow issues itself a `deadline` command, which the
decider may answer with an automatic escalation.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.eventstore import AppendEventsInput, EventStoreActivities
    from domain import front_supervision as fs
    from domain.common import SYSTEM, Actor, DomainError, Event
    from domain.deadlines import CaseRules, Deadline
    from eventstore.models import CaseRow, NewEvent

    from .petition import ACTIVITY_TIMEOUT, APPEND_RETRY, MAX_HISTORY_EVENTS, SEEN_COMMANDS_KEPT, refusal
    from .shared import CASE_KIND, CASE_STATUS, DUE_AT, LEAD_BODY, OVERDUE


class FrontSupervisionStart(BaseModel):
    """How a supervision starts: the watched case, why, its rules and deadline (and, for a continued run, the
    state and the command ids carried over)."""

    case_id: str
    trigger: fs.Trigger
    rules: CaseRules
    #: The petition's next due deadline when the supervision started (None: it had none pending).
    watched_due: Deadline | None = None
    case_kind: str
    #: The body resolving the petition (None: not yet known).
    resolver: str | None = None
    carried_state: fs.SupervisionState | None = None
    seen_commands: dict[str, int] = Field(default_factory=dict)


class FrontCommandResult(BaseModel):
    """The answer to one command: the supervision after it, the events it recorded, whether it was a repeat."""

    supervision: fs.SupervisionView
    events: list[str] = Field(default_factory=list)
    duplicate: bool = False


@workflow.defn
class FrontSupervisionWorkflow:
    """The Front's escalation ladder over one petition: watch, remind, urge, recommend, judge the answer,
    escalate, close."""

    @workflow.init
    def __init__(self, start: FrontSupervisionStart) -> None:
        self.start = start
        self.state: fs.SupervisionState | None = start.carried_state
        self.seen: dict[str, int] = dict(start.seen_commands)
        self.lock = asyncio.Lock()
        self.woken = False

    # -- the run --------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: FrontSupervisionStart) -> fs.SupervisionView:
        """Open the supervision, then sleep until the next deadline or command, until it is closed."""
        if self.state is None:
            command = fs.Open(
                supervision_id=workflow.info().workflow_id, case_id=start.case_id, case_kind=start.case_kind,
                resolver=start.resolver, trigger=start.trigger, rules=start.rules, watched_due=start.watched_due,
            )
            async with self.lock:
                try:
                    await self._apply(command, SYSTEM, "open")
                except DomainError as exc:  # e.g. a watched date outside the recorded calendar: fail, clearly
                    raise refusal(exc) from exc
        assert self.state is not None
        while self.state.status != fs.SupervisionStatus.CLOSED:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(start.model_copy(update={"carried_state": self.state,
                                                                  "seen_commands": self.seen}))
            timeout = self._until_next_timer()
            self.woken = False
            try:
                await workflow.wait_condition(lambda: self.woken, timeout=timeout)
            except TimeoutError:
                pass
            await self._fire_due_timers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return fs.supervision_view(self.state)

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > MAX_HISTORY_EVENTS

    def _timer_moments(self) -> list[tuple[datetime, str, str]]:
        assert self.state is not None
        moments = []
        for key, d in self.state.deadlines.items():
            if not d.pending:
                continue
            if not d.approached:
                moments.append((d.deadline.warn_at, key, "approaching"))
            if not d.breached:
                # A breach is any instant after `due_at`; one second later leaves no doubt on any clock.
                moments.append((d.deadline.due_at + timedelta(seconds=1), key, "breached"))
        return sorted(moments)

    def _until_next_timer(self) -> timedelta | None:
        moments = self._timer_moments()
        if not moments:
            return None
        return max(moments[0][0] - workflow.now(), timedelta(seconds=1))

    async def _fire_due_timers(self) -> None:
        now = workflow.now()
        for at, key, stage in self._timer_moments():
            if at <= now and self.state is not None and self.state.status != fs.SupervisionStatus.CLOSED:
                async with self.lock:
                    await self._apply(fs.MarkDeadline(key=key, stage=stage), SYSTEM, None)

    # -- applying a command ---------------------------------------------------------------------------

    async def _apply(self, command: fs.Command, actor: Actor, command_id: str | None) -> list[Event]:
        """Decide, append (with the projection, in one transaction), then move the state. Hold `self.lock`."""
        events = fs.decide(self.state, command, actor, workflow.now())
        if not events:
            return []
        new_state = fs.fold(events, self.state)
        assert new_state is not None
        metadata = {"command_id": command_id} if command_id else {}
        stored = [
            NewEvent(
                event_id=workflow.uuid4(), type=ev.event_type(), schema_version=ev.SCHEMA_VERSION,
                occurred_at=ev.occurred_at, actor=ev.actor, reason=ev.reason, legal_basis=ev.legal_basis,
                data=ev.payload(), metadata=metadata,
            )
            for ev in events
        ]
        await workflow.execute_activity_method(
            EventStoreActivities.append_events,
            AppendEventsInput(
                stream_id=new_state.supervision_id, expected_version=self.state.version if self.state else 0,
                events=stored, case=CaseRow.model_validate(fs.supervision_row(new_state)),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=APPEND_RETRY,
        )
        self.state = new_state
        if command_id:
            self.seen[command_id] = new_state.version
            if len(self.seen) > SEEN_COMMANDS_KEPT:
                self.seen.pop(next(iter(self.seen)))
        self._publish()
        self.woken = True
        return events

    def _publish(self) -> None:
        """Keep the search attributes current, so Temporal's list and Web UI filter real supervisions."""
        assert self.state is not None
        s = self.state
        due = s.next_due
        updates: list[SearchAttributeUpdate[Any]] = [
            CASE_KIND.value_set(fs.CASE_KIND), CASE_STATUS.value_set(s.status.value),
            LEAD_BODY.value_set(fs.FRONT_BODY), OVERDUE.value_set(s.overdue),
            DUE_AT.value_set(due.due_at) if due else DUE_AT.value_unset(),
        ]
        workflow.upsert_search_attributes(updates)

    def _result(self, events: list[Event], *, duplicate: bool = False) -> FrontCommandResult:
        assert self.state is not None
        return FrontCommandResult(supervision=fs.supervision_view(self.state),
                                  events=[ev.event_type() for ev in events], duplicate=duplicate)

    # -- updates and queries --------------------------------------------------------------------------

    @workflow.update
    async def execute(self, request: fs.FrontCommandRequest) -> FrontCommandResult:
        """Apply one command of the ladder. A repeated `command_id` returns the current state and changes nothing."""
        async with self.lock:
            if request.command_id and request.command_id in self.seen:
                return self._result([], duplicate=True)
            try:
                events = await self._apply(request.command, request.actor, request.command_id)
            except DomainError as exc:  # the state moved between validation and handling
                raise refusal(exc) from exc
            return self._result(events)

    @execute.validator
    def validate_execute(self, request: fs.FrontCommandRequest) -> None:
        """Refuse, before anything enters the history, a command the ladder or the state does not allow."""
        if self.state is None:
            raise ApplicationError("the supervision is still being opened; retry in a moment",
                                   type="supervision.opening")
        if request.command.type in fs.INTERNAL:
            raise ApplicationError(f"`{request.command.type}` is issued by the supervision itself",
                                   type="command.internal")
        if request.command_id and request.command_id in self.seen:
            return
        try:
            fs.decide(self.state, request.command, request.actor, workflow.now())
        except DomainError as exc:
            raise refusal(exc) from exc

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
