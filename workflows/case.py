"""The machinery every case workflow shares: decide, append, then evolve; durable deadline timers; repeated
commands recognised, and a key reused for another request refused (`domain.idempotency`: the digests of the
request applied under each key are kept in its events' metadata and in `seen_digests`); continue-as-new with
the state.

A case workflow subclasses `CaseMachine` and supplies its domain (`decide`, `fold`), its projection row, its
search attributes and the command a timer issues. The single-writer rule holds because only the workflow
appends to its stream, always with the version it holds as the expected one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.eventstore import (
        EVENT_ID_CONFLICT,
        FINAL_ERRORS,
        INVALID_EVENT,
        STREAM_CONFLICT,
        AppendEventsInput,
        EventStoreActivities,
        ReadStreamInput,
    )
    from activities.rules import RULE_BOOK
    from domain.attachments import Attach
    from domain.common import Actor, DomainError, Event, EventRegistry, require
    from domain.deadlines import DeadlineState, timer_moments
    from domain.idempotency import SeenCommand, fingerprint, from_metadata, key_reused
    from domain.idempotency import metadata as keyed_metadata
    from domain.repairs import RecordRepair, decide_repair
    from domain.rulesets import with_rules
    from domain.text import faults
    from eventstore.models import CaseRow, NewEvent, RecordedEvent

#: Appends are retried until the database answers: an accepted command is never dropped.
APPEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=list(FINAL_ERRORS),
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

#: Since this patch an Update that comes with a key the case applied to another request (another command or
#: another sender, `domain.idempotency`) is refused by its handler, when it passed the validator because the
#: first request under the key was not applied yet (two sent at once). Before it, it answered as a duplicate.
KEY_REUSE = "idempotency-key-reuse"

#: Since this patch a workflow whose append finds its stream ahead of it (it was reset to an earlier point, and
#: the events of the commands it re-runs are stored already) reads the stored events, adopts them, and decides
#: the command again on the state they make: the stream stays append-only and nothing is applied twice.
CATCH_UP = "catch-up-on-conflict"

#: Since this patch a case takes `attach` (a file the API stored, `domain.attachments`) and records
#: `AttachmentAdded`. No history recorded before it holds one, so none decides differently; the marker, written
#: when a run first applies a file, shows in Temporal's history which runs took files.
ATTACHMENTS = "attachments"

Stage = Literal["approaching", "breached"]


class RepairRequest(BaseModel):
    """An operator's repair as the `repair` Update carries it; `actor` comes from the operator's login."""

    command: RecordRepair
    actor: Actor
    command_id: str | None = Field(default=None, max_length=200)


class RepairResult(BaseModel):
    case_id: str
    version: int
    events: list[str] = Field(default_factory=list)
    duplicate: bool = False


def _stream_conflict(exc: ActivityError) -> bool:
    cause = exc.cause
    # After a reset the run may even make the stored events' ids again (with other times): a conflict too.
    return isinstance(cause, ApplicationError) and cause.type in (STREAM_CONFLICT, EVENT_ID_CONFLICT)


class CaseState(Protocol):
    """What the machinery reads of a case's state."""

    @property
    def version(self) -> int: ...

    @property
    def deadlines(self) -> dict[str, DeadlineState]: ...


S = TypeVar("S", bound=CaseState)
R = TypeVar("R")


#: The rule of a command the case could not take for what it holds (text its store refuses, a value its rules
#: cannot handle): refused like any other, the case going on as it was.
INVALID = "command.invalid"
#: Errors of an activity that say the input is at fault, not the moment: the command is refused, not retried.
INPUT_ERRORS = frozenset({INVALID_EVENT, "calendar.out_of_range"})


def input_refusal(exc: BaseException) -> DomainError | None:
    """The refusal an error of a case's step amounts to when the command's own content caused it, else None."""
    if isinstance(exc, DomainError):
        return exc
    cause = exc.cause if isinstance(exc, ActivityError) else None
    if isinstance(cause, ApplicationError) and cause.type in INPUT_ERRORS:
        rule = cause.type if cause.type != INVALID_EVENT else INVALID
        return DomainError(rule, f"the case cannot take this: {cause.message}")
    return None


def named_request(name: str, args: Sequence[RawValue], request_type: type[R]) -> R:
    """The request of an Update named after its command (`classify`, `accept`...): its one argument, read as
    `request_type`, whose command must be of that name. Refused (`command.name`) otherwise."""
    if len(args) != 1:
        raise ApplicationError(f"the update {name} takes one request, not {len(args)}", type="command.name",
                               non_retryable=True)
    request = workflow.payload_converter().from_payload(args[0].payload, request_type)
    if getattr(getattr(request, "command", None), "type", None) != name:
        raise ApplicationError(f"the update {name} carries another command", type="command.name",
                               non_retryable=True)
    return request


def refusal(exc: DomainError) -> ApplicationError:
    """A refused command as Temporal carries it: its `type` is the rule, its message says why."""
    return ApplicationError(exc.message, exc.rule, type=exc.rule, non_retryable=True)


class CaseMachine(Generic[S]):
    """Mixin of a case workflow. Subclasses call `setup` in `@workflow.init` and define the hooks below."""

    state: S | None
    seen: dict[str, int]
    #: The digests of the request applied under each key of `seen` (absent for keys applied before they were kept).
    seen_digests: dict[str, SeenCommand]
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

    def registry(self) -> EventRegistry:
        """The event types of this kind of case, to read its stored events back (catching up)."""
        raise NotImplementedError

    def owing_bodies(self, state: S) -> list[str]:
        """The bodies the case is waiting on (whom a nudge reminds)."""
        return []

    def reassign(self, state: S, body: str, actor: Actor, now: datetime, reason: str) -> list[Event]:
        """The domain events that give the case to `body` (an operator's reassignment)."""
        raise DomainError("repair.reassign.kind", "this kind of case is not reassigned by an operator")

    def authorize(self, state: S, command: Any, actor: Actor) -> None:
        """Refuse (`domain.authority.Unauthorized`) a command `actor` may not send, whatever the state allows.

        Called by `validate` only, never on the handler's path: validators do not run on replay, and recorded
        histories hold commands accepted before the kind's authority table existed."""

    # -- deciding, for the machinery ------------------------------------------------------------------

    def decide_any(self, state: S | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        """`decide`, plus the repairs every kind of case shares."""
        if isinstance(command, Attach) and not workflow.unsafe.is_read_only():
            workflow.patched(ATTACHMENTS)
        if not isinstance(command, RecordRepair):
            return self.decide(state, command, actor, now)
        require(state is not None, "repair.opening", "the case is still being opened")
        assert state is not None
        events = decide_repair(self.stream_id(state), command, actor, now, owing=self.owing_bodies(state),
                               closed=self.finished())
        if command.action == "reassign":
            require(command.body is not None, "repair.reassign.body", "name the body to reassign the case to")
            assert command.body is not None
            events += self.reassign(state, command.body, actor, now, command.reason)
        return events

    # -- the Update every kind of case shares -----------------------------------------------------------

    @workflow.update
    async def repair(self, request: RepairRequest) -> RepairResult:
        """Record an operator's repair in the case's stream (and carry out a nudge or a reassignment)."""
        events, duplicate = await self.handle(request.command, request.actor, request.command_id)
        assert self.state is not None
        return RepairResult(case_id=self.stream_id(self.state), version=self.state.version,
                            events=[ev.event_type() for ev in events], duplicate=duplicate)

    @repair.validator
    def validate_repair(self, request: RepairRequest) -> None:
        self.validate(request.command, request.actor, request.command_id, internal=frozenset(),
                      opening="case.opening")

    # -- machinery ------------------------------------------------------------------------------------

    def setup(self, state: S | None, seen: dict[str, int], history_limit: int = MAX_HISTORY_EVENTS,
              seen_digests: dict[str, SeenCommand] | None = None) -> None:
        self.state = state
        self.seen = dict(seen)
        self.seen_digests = {k: v for k, v in (seen_digests or {}).items() if k in self.seen}
        self.lock = asyncio.Lock()
        self.woken = False
        self.history_limit = history_limit

    async def apply(self, command: Any, actor: Actor, command_id: str | None,
                    keyed: SeenCommand | None = None) -> list[Event]:
        """Decide, append (with the projection, in one transaction), then move the state. Hold `self.lock`.

        `keyed`: the digests of a request sent under `command_id` (an Update's), written beside it in the events'
        metadata. The commands a workflow issues itself under a fixed id (`receive`, `open`, `assign`) have none:
        their digest would cost milliseconds for a key no client sends twice."""
        events = self.decide_any(self.state, command, actor, workflow.now())
        if not events:
            return []
        return await self.store(events, command_id, keyed, retry=lambda: self.apply(command, actor, command_id, keyed))

    async def store(self, events: list[Event], command_id: str | None, keyed: SeenCommand | None,
                    retry: Callable[[], Any]) -> list[Event]:
        """Append decided `events` (with the projection, in one transaction), then move the state and the search
        attributes, and run what they call for. `retry`: decides again after catching up with a reset stream."""
        new_state = self.fold(events, self.state)
        if command_id and keyed is not None:
            metadata = keyed_metadata(command_id, keyed)
        else:
            metadata = {"command_id": command_id} if command_id else {}
        stored = [
            NewEvent(
                event_id=workflow.uuid4(), type=ev.event_type(), schema_version=ev.SCHEMA_VERSION,
                occurred_at=ev.occurred_at, actor=ev.actor, reason=ev.reason, legal_basis=ev.legal_basis,
                data=ev.payload(), metadata=metadata,
            )
            for ev in events
        ]
        try:
            await workflow.execute_activity_method(
                EventStoreActivities.append_events,
                AppendEventsInput(
                    stream_id=self.stream_id(new_state), expected_version=self.state.version if self.state else 0,
                    events=stored, case=self.projection(new_state),
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=APPEND_RETRY,
            )
        except ActivityError as exc:
            if not _stream_conflict(exc) or not workflow.patched(CATCH_UP):
                raise
            if not await self.catch_up(self.stream_id(new_state)):
                raise  # the stream holds nothing this run does not know: the conflict is not a reset's
            if command_id and command_id in self.seen:
                return []  # an earlier run of this case applied it: its events are the ones just adopted
            result: list[Event] = await retry()
            return result
        self.state = new_state
        if command_id:
            self.seen[command_id] = new_state.version
            if keyed is not None:
                self.seen_digests[command_id] = keyed
            if len(self.seen) > SEEN_COMMANDS_KEPT:
                oldest = next(iter(self.seen))
                self.seen.pop(oldest)
                self.seen_digests.pop(oldest, None)
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

    async def catch_up(self, stream_id: str) -> list[RecordedEvent]:
        """Adopt the stored events this run does not know yet (after a reset to an earlier point)."""
        known = self.state.version if self.state else 0
        result = await workflow.execute_activity_method(
            EventStoreActivities.read_stream, ReadStreamInput(stream_id=stream_id, from_version=known + 1),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
        )
        registry = self.registry()
        events = with_rules([
            registry.parse(r.type, occurred_at=r.occurred_at, actor=r.actor, reason=r.reason,
                           legal_basis=r.legal_basis, data=r.data)
            for r in result.events
        ], RULE_BOOK)  # the rules a first event names by digest, as the run resolved them
        if not events:
            return []
        self.state = self.fold(events, self.state)
        for r in result.events:
            command_id = r.metadata.get("command_id")
            if isinstance(command_id, str):
                self.seen[command_id] = r.version
                keyed = from_metadata(r.metadata)
                if keyed is not None:
                    self.seen_digests[command_id] = keyed
        workflow.logger.info("caught up with %d stored events of %s (now at version %d)",
                             len(events), stream_id, self.state.version)
        self.upsert_search_attributes(self.state)
        self.woken = True
        return result.events

    async def handle(self, command: Any, actor: Actor, command_id: str | None) -> tuple[list[Event], bool]:
        """An Update's body: (events, duplicate). A repeated `command_id` changes nothing."""
        async with self.lock:
            if command_id and command_id in self.seen:
                reused = self.key_reused(command, actor, command_id)
                if reused is not None and workflow.patched(KEY_REUSE):
                    raise refusal(reused)
                return [], True
            try:
                events = await self.apply(command, actor, command_id,
                                          fingerprint(command, actor) if command_id else None)
                # No events, yet the command is known now: an earlier run applied it (adopted on catching up).
                return events, not events and command_id is not None and command_id in self.seen
            except DomainError as exc:  # the state moved between validation and handling
                raise refusal(exc) from exc
            except ActivityError as exc:  # its events could not be stored as they are: refused, the case unchanged
                refused = input_refusal(exc)
                if refused is None:
                    raise
                raise refusal(refused) from exc

    def validate(self, command: Any, actor: Actor, command_id: str | None, *, internal: frozenset[str],
                 opening: str) -> None:
        """An Update's validator: refuse, before anything enters the history, what the domain refuses."""
        if self.state is None:
            raise ApplicationError("the case is still being opened; retry in a moment", type=opening)
        if command.type in internal:
            raise ApplicationError(f"`{command.type}` is issued by the case itself", type="command.internal")
        try:
            # A request the case applied already answers as a duplicate before its sender is judged again:
            # the command may have cost the sender the relation that allowed it (a lead reassigning away).
            if command_id and command_id in self.seen:
                reused = self.key_reused(command, actor, command_id)
                if reused is not None:
                    raise reused
                return
            for place, rule, message in faults(command):
                raise DomainError(rule, f"{'.'.join(map(str, place))}: {message}")
            if not isinstance(command, RecordRepair):  # a repair's own rule is `repair.role`
                self.authorize(self.state, command, actor)
            self.decide_any(self.state, command, actor, workflow.now())
        except DomainError as exc:
            raise refusal(exc) from exc
        except Exception as exc:
            # Whatever the command holds, the case is not broken by it: refused before it enters the history.
            workflow.logger.warning("command %s refused: the case could not decide on it: %r", command.type, exc)
            raise ApplicationError(f"the case could not decide on this {command.type} command: "
                                   f"{type(exc).__name__}", INVALID, type=INVALID, non_retryable=True) from exc

    def key_reused(self, command: Any, actor: Actor, command_id: str) -> DomainError | None:
        """The refusal of `command` from `actor` under a key the case applied to another request."""
        return key_reused(command_id, self.seen_digests.get(command_id), fingerprint(command, actor))

    def timer_moments(self) -> list[tuple[datetime, str, Stage]]:
        """When each pending deadline warns and is missed (a miss is any instant after `due_at`). A deadline
        whose clock is stopped has no timer; only runs past the patch `legal-periods` of a petition stop one."""
        assert self.state is not None
        return timer_moments(self.state.deadlines)

    async def fire_due_timers(self, actor: Actor) -> None:
        now = workflow.now()
        for at, key, stage in self.timer_moments():
            if at <= now and not self.finished():
                async with self.lock:
                    try:
                        await self.apply(self.deadline_command(key, stage), actor, None)
                    except DomainError as exc:  # caught up with a stream where this deadline was marked already
                        workflow.logger.info("deadline %s %s not marked: %s", key, stage, exc.message)

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
