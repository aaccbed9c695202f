"""`PetitionWorkflow`: one citizen petition, from receipt to archive, as an event-sourced Temporal workflow.

The workflow is the single writer of its case's stream (stream id = workflow id = case id). Every command is
an Update whose validator runs the pure `decide`; accepted commands append their events through the event
store activity (with the `cases` projection, in one transaction) and only then move the state. Deadlines are
durable timers: when one comes due, the workflow issues itself a `deadline` command, decided like any other.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.eventstore import AppendEventsInput, EventStoreActivities
    from activities.rules import CaseRulesRequest, RulesActivities
    from domain.calendar import local_date
    from domain.common import SYSTEM, Actor, DomainError, Event
    from domain.petitions import commands as c
    from domain.petitions import events as e
    from domain.petitions.decider import decide, evolve, intake_digest
    from domain.petitions.model import PetitionIntake, PetitionState, PetitionStatus
    from domain.petitions.views import CaseView, case_row, case_view
    from eventstore.models import CaseRow, NewEvent

    from .shared import CASE_KIND, CASE_STATUS, DISTRICT, DUE_AT, LEAD_BODY, OVERDUE

#: Appends are retried until the database answers: an accepted command is never dropped.
APPEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ConcurrencyError", "EventIdConflictError", "InvalidEventError"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
#: Continue as new well before Temporal's limits; the state and pending timers travel in the input.
MAX_HISTORY_EVENTS = 2_000
SEEN_COMMANDS_KEPT = 500


class PetitionStart(BaseModel):
    """How a petition case starts: the intake (and, for a continued run, the state carried over)."""

    intake: PetitionIntake
    instance: int = 1
    parent_case_id: str | None = None
    carried_state: PetitionState | None = None
    seen_commands: dict[str, int] = Field(default_factory=dict)
    #: Continue as new past this many history events (lower it in tests to exercise the hand-over).
    history_limit: int = Field(default=MAX_HISTORY_EVENTS, ge=50)


class ReceiveRequest(BaseModel):
    """The first Update of `POST /v1/petitions` (sent with the start): answers once the case is open."""

    intake: PetitionIntake


class CommandResult(BaseModel):
    case: CaseView
    events: list[str] = Field(default_factory=list)
    duplicate: bool = False
    created: bool = False


def refusal(exc: DomainError) -> ApplicationError:
    """A refused command as Temporal carries it: its `type` is the rule, its message says why."""
    return ApplicationError(exc.message, exc.rule, type=exc.rule, non_retryable=True)


@workflow.defn
class PetitionWorkflow:
    """A complaint, denunciation, recommendation or voters' petition, with its statutory deadlines."""

    @workflow.init
    def __init__(self, start: PetitionStart) -> None:
        self.start = start
        self.state: PetitionState | None = start.carried_state
        self.seen: dict[str, int] = dict(start.seen_commands)
        self.lock = asyncio.Lock()
        self.woken = False
        self.receive_answered = start.carried_state is not None

    # -- the run --------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: PetitionStart) -> CaseView:
        if self.state is None:
            rules = await workflow.execute_activity_method(
                RulesActivities.load_case_rules,
                CaseRulesRequest(received_on=local_date(start.intake.received_at)),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=APPEND_RETRY,
            )
            receive = c.Receive(
                case_id=workflow.info().workflow_id, intake=start.intake, instance=start.instance,
                parent_case_id=start.parent_case_id,
                rules=rules,
            )
            async with self.lock:
                await self._apply(receive, SYSTEM, "receive")
        assert self.state is not None
        while self.state.status != PetitionStatus.ARCHIVED:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    start.model_copy(update={"carried_state": self.state, "seen_commands": self.seen})
                )
            timeout = self._until_next_timer()
            self.woken = False
            try:
                await workflow.wait_condition(lambda: self.woken, timeout=timeout)
            except TimeoutError:
                pass
            await self._fire_due_timers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return case_view(self.state)

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > self.start.history_limit

    def _timer_moments(self) -> list[tuple[datetime, str, Literal["approaching", "breached"]]]:
        assert self.state is not None
        moments: list[tuple[datetime, str, Literal["approaching", "breached"]]] = []
        for key, d in self.state.deadlines.items():
            if not d.pending:
                continue
            if not d.approached:
                moments.append((d.deadline.warn_at, key, "approaching"))
            if not d.breached:
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
            if at <= now:
                async with self.lock:
                    await self._apply(c.MarkDeadline(key=key, stage=stage), SYSTEM, None)

    # -- applying a command ---------------------------------------------------------------------------

    async def _apply(self, command: Any, actor: Actor, command_id: str | None) -> list[Event]:
        """Decide, append (with the projection, in one transaction), then move the state. Hold `self.lock`."""
        events = decide(self.state, command, actor, workflow.now())
        if not events:
            return []
        new_state = self.state
        for event in events:
            new_state = evolve(new_state, event)
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
                stream_id=new_state.case_id, expected_version=self.state.version if self.state else 0,
                events=stored, case=CaseRow.model_validate(case_row(new_state)),
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
        await self._side_effects(events)
        self.woken = True
        return events

    def _publish(self) -> None:
        """Keep the search attributes current, so Temporal's list and Web UI filter real cases."""
        assert self.state is not None
        s = self.state
        updates: list[Any] = [
            CASE_KIND.value_set(s.kind.value), CASE_STATUS.value_set(s.status.value), OVERDUE.value_set(s.overdue),
        ]
        updates.append(LEAD_BODY.value_set(s.lead_body) if s.lead_body else LEAD_BODY.value_unset())
        updates.append(DISTRICT.value_set(s.intake.district) if s.intake.district else DISTRICT.value_unset())
        due = s.next_due
        updates.append(DUE_AT.value_set(due.due_at) if due else DUE_AT.value_unset())
        workflow.upsert_search_attributes(updates)

    async def _side_effects(self, events: list[Event]) -> None:
        """Start the linked cases an event calls for. Their ids are fixed, so a replay starts nothing twice."""
        assert self.state is not None
        for event in events:
            if isinstance(event, e.PetitionSplit):
                for child in event.children:
                    intake = self.state.intake.model_copy(update={
                        "kind": child["kind"], "subject": child["subject"], "content": child["content"],
                        "external_ref": f"{self.state.intake.external_ref}#{child['case_id'].rsplit('-', 1)[1]}",
                    })
                    await self._start_case(child["case_id"], PetitionStart(intake=intake,
                                                                           parent_case_id=self.state.case_id))
            elif isinstance(event, e.EscalatedSecondInstance):
                intake = self.state.intake.model_copy(update={
                    "external_ref": f"{self.state.intake.external_ref}#L2", "received_at": workflow.now(),
                    "receiving_body": event.to_body or self.state.intake.receiving_body,
                })
                await self._start_case(event.new_case_id, PetitionStart(intake=intake, instance=2,
                                                                        parent_case_id=self.state.case_id))
            elif isinstance(event, e.FrontSupervisionStarted):
                await self._start_supervision(event)

    async def _start_case(self, case_id: str, start: PetitionStart) -> None:
        await workflow.start_child_workflow(
            PetitionWorkflow.run, start, id=case_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )

    async def _start_supervision(self, event: Any) -> None:
        """Start the Front's supervision of this case (`FrontSupervisionWorkflow`, by name: no import cycle)."""
        assert self.state is not None
        due = self.state.next_due
        start = {
            "case_id": self.state.case_id, "trigger": event.trigger, "case_kind": self.state.kind.value,
            "resolver": self.state.lead_body, "rules": self.state.rules.model_dump(mode="json"),
            "watched_due": due.model_dump(mode="json") if due else None,
        }
        await workflow.start_child_workflow(
            "FrontSupervisionWorkflow", start, id=event.supervision_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )

    def _result(self, events: list[Event], *, duplicate: bool = False, created: bool = False) -> CommandResult:
        assert self.state is not None
        return CommandResult(case=case_view(self.state), events=[ev.event_type() for ev in events],
                             duplicate=duplicate, created=created)

    # -- updates and queries --------------------------------------------------------------------------

    @workflow.update
    async def execute(self, request: c.CommandRequest) -> CommandResult:
        """Apply one command. A repeated `command_id` returns the current state and changes nothing."""
        async with self.lock:
            if request.command_id and request.command_id in self.seen:
                return self._result([], duplicate=True)
            try:
                events = await self._apply(request.command, request.actor, request.command_id)
            except DomainError as exc:  # the state moved between validation and handling
                raise refusal(exc) from exc
            return self._result(events)

    @execute.validator
    def validate_execute(self, request: c.CommandRequest) -> None:
        """Refuse, before anything enters the history, a command the law or the state does not allow."""
        if self.state is None:
            raise ApplicationError("the case is still being opened; retry in a moment", type="case.opening")
        if request.command.type in c.INTERNAL:
            raise ApplicationError(f"`{request.command.type}` is issued by the case itself", type="command.internal")
        if request.command_id and request.command_id in self.seen:
            return
        try:
            decide(self.state, request.command, request.actor, workflow.now())
        except DomainError as exc:
            raise refusal(exc) from exc

    @workflow.update
    async def receive(self, request: ReceiveRequest) -> CommandResult:
        """Answer `POST /v1/petitions` once the case is open: its id and first deadlines."""
        await workflow.wait_condition(lambda: self.state is not None)
        created = not self.receive_answered
        self.receive_answered = True
        return self._result([], created=created)

    @receive.validator
    def validate_receive(self, request: ReceiveRequest) -> None:
        stored = self.state.intake_digest if self.state is not None else intake_digest(self.start.intake)
        if intake_digest(request.intake) != stored:
            raise ApplicationError(
                "this source and external_ref were already received with different content",
                type="petition.conflict",
            )

    @workflow.query
    def view(self) -> CaseView | None:
        return case_view(self.state) if self.state is not None else None

    @workflow.query
    def state_snapshot(self) -> PetitionState | None:
        """The whole state, for tests and operators (it equals the fold of the stream's events)."""
        return self.state


def search_attributes_for(kind: str) -> TypedSearchAttributes:
    """The attributes a petition starts with, so it is listed before its first event is written."""
    return TypedSearchAttributes([
        SearchAttributePair(CASE_KIND, kind), SearchAttributePair(CASE_STATUS, PetitionStatus.RECEIVED.value)
    ])
