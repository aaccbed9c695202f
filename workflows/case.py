"""The machinery every case workflow shares: decide, append, then evolve; durable deadline timers; repeated
commands recognised; continue-as-new with the state.

A case workflow subclasses `CaseMachine` and supplies its domain (`decide`, `fold`), its projection row, its
search attributes and the command a timer issues. The single-writer rule holds because only the workflow
appends to its stream, always with the version it holds as the expected one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.eventstore import AppendEventsInput, EventStoreActivities
    from domain.common import Actor, DomainError, Event
    from domain.deadlines import DeadlineState
    from eventstore.models import CaseRow, NewEvent

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
#: Since this patch a command that leaves the deadlines and search attributes as they were adds nothing to the
#: history but its update and append: the deadline timer keeps running (it was cancelled and started again
#: after every command) and only attributes whose value changed are upserted (all six were, every time).
#: Runs recorded before it replay on the old path.
QUIET_COMMANDS = "quiet-commands"

Stage = Literal["approaching", "breached"]


class CaseState(Protocol):
    """What the machinery reads of a case's state."""

    @property
    def version(self) -> int: ...

    @property
    def deadlines(self) -> dict[str, DeadlineState]: ...


S = TypeVar("S", bound=CaseState)


def refusal(exc: DomainError) -> ApplicationError:
    """A refused command as Temporal carries it: its `type` is the rule, its message says why."""
    return ApplicationError(exc.message, exc.rule, type=exc.rule, non_retryable=True)


class CaseMachine(Generic[S]):
    """Mixin of a case workflow. Subclasses call `setup` in `@workflow.init` and define the hooks below."""

    state: S | None
    seen: dict[str, int]
    lock: asyncio.Lock
    woken: bool
    history_limit: int

    # -- hooks ----------------------------------------------------------------------------------------

    def decide(self, state: S | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        raise NotImplementedError

    def fold(self, events: Sequence[Event], state: S | None) -> S:
        raise NotImplementedError

    def stream_id(self, state: S) -> str:
        raise NotImplementedError

    def projection(self, state: S) -> CaseRow:
        raise NotImplementedError

    def search_attributes(self, state: S) -> list[SearchAttributeUpdate[Any]]:
        raise NotImplementedError

    def deadline_command(self, key: str, stage: Stage) -> Any:
        raise NotImplementedError

    def finished(self) -> bool:
        """True once the case has nothing more to wait for."""
        raise NotImplementedError

    async def after_append(self, events: list[Event]) -> None:
        """Side effects an event calls for (starting linked cases...). Ids must be fixed for replay."""

    # -- machinery ------------------------------------------------------------------------------------

    def setup(self, state: S | None, seen: dict[str, int], history_limit: int = MAX_HISTORY_EVENTS) -> None:
        self.state = state
        self.seen = dict(seen)
        self.lock = asyncio.Lock()
        self.woken = False
        self.history_limit = history_limit

    async def apply(self, command: Any, actor: Actor, command_id: str | None) -> list[Event]:
        """Decide, append (with the projection, in one transaction), then move the state. Hold `self.lock`."""
        events = self.decide(self.state, command, actor, workflow.now())
        if not events:
            return []
        new_state = self.fold(events, self.state)
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
                stream_id=self.stream_id(new_state), expected_version=self.state.version if self.state else 0,
                events=stored, case=self.projection(new_state),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=APPEND_RETRY,
        )
        self.state = new_state
        if command_id:
            self.seen[command_id] = new_state.version
            if len(self.seen) > SEEN_COMMANDS_KEPT:
                self.seen.pop(next(iter(self.seen)))
        self.upsert_search_attributes(new_state)
        await self.after_append(events)
        self.woken = True
        return events

    def upsert_search_attributes(self, state: S) -> None:
        """Keep the case's search attributes current, writing only those whose value changed."""
        updates = self.search_attributes(state)
        if workflow.patched(QUIET_COMMANDS):
            current = workflow.info().typed_search_attributes
            updates = [u for u in updates if current.get(u.key) != u.value]
            if not updates:
                return
        workflow.upsert_search_attributes(updates)

    async def handle(self, command: Any, actor: Actor, command_id: str | None) -> tuple[list[Event], bool]:
        """An Update's body: (events, duplicate). A repeated `command_id` changes nothing."""
        async with self.lock:
            if command_id and command_id in self.seen:
                return [], True
            try:
                return await self.apply(command, actor, command_id), False
            except DomainError as exc:  # the state moved between validation and handling
                raise refusal(exc) from exc

    def validate(self, command: Any, actor: Actor, command_id: str | None, *, internal: frozenset[str],
                 opening: str) -> None:
        """An Update's validator: refuse, before anything enters the history, what the domain refuses."""
        if self.state is None:
            raise ApplicationError("the case is still being opened; retry in a moment", type=opening)
        if command.type in internal:
            raise ApplicationError(f"`{command.type}` is issued by the case itself", type="command.internal")
        if command_id and command_id in self.seen:
            return
        try:
            self.decide(self.state, command, actor, workflow.now())
        except DomainError as exc:
            raise refusal(exc) from exc

    def timer_moments(self) -> list[tuple[datetime, str, Stage]]:
        """When each pending deadline warns and is missed (a miss is any instant after `due_at`)."""
        assert self.state is not None
        moments: list[tuple[datetime, str, Stage]] = []
        for key, d in self.state.deadlines.items():
            if not d.pending:
                continue
            if not d.approached:
                moments.append((d.deadline.warn_at, key, "approaching"))
            if not d.breached:
                moments.append((d.deadline.due_at + timedelta(seconds=1), key, "breached"))
        return sorted(moments)

    async def fire_due_timers(self, actor: Actor) -> None:
        now = workflow.now()
        for at, key, stage in self.timer_moments():
            if at <= now and not self.finished():
                async with self.lock:
                    await self.apply(self.deadline_command(key, stage), actor, None)

    async def wait_until_finished(self, actor: Actor, continue_input: Callable[[], Any]) -> None:
        """Sleep until the next timer or command, fire what came due, until the case is finished;
        continue as new (with `continue_input()`) when the history grows long."""
        quiet = workflow.patched(QUIET_COMMANDS)
        timer: asyncio.Task[None] | None = None
        timer_at: datetime | None = None

        def woken_or_due() -> bool:
            return self.woken or (timer is not None and timer.done())

        while not self.finished():
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > self.history_limit:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(continue_input())
            moments = self.timer_moments()
            self.woken = False
            if quiet:
                # One durable timer for the next moment, replaced only when that moment changes or has passed.
                at = moments[0][0] if moments else None
                if timer is None or timer.done() or at != timer_at:
                    if timer is not None and not timer.done():
                        timer.cancel()
                    timer, timer_at = None, at
                    if at is not None:
                        seconds = max((at - workflow.now()).total_seconds(), 1.0)
                        timer = asyncio.create_task(workflow.sleep(seconds))
                await workflow.wait_condition(woken_or_due)
            else:
                timeout = max(moments[0][0] - workflow.now(), timedelta(seconds=1)) if moments else None
                try:
                    await workflow.wait_condition(lambda: self.woken, timeout=timeout)
                except TimeoutError:
                    pass
            await self.fire_due_timers(actor)
        await workflow.wait_condition(workflow.all_handlers_finished)
