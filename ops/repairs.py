"""Operators' repairs: act on Temporal where the machinery is stuck, then record the repair in the case's
stream through the case workflow's `repair` Update (the workflow stays the stream's only writer).

* `retry`: a failing step is retried now (ResetActivity: its attempts start again, its backoff is skipped);
  a paused step is unpaused with its attempts reset.
* `reset`: the case's workflow is reset to its last good point (the last completed workflow task before its
  code started failing, or the point an operator names: a Temporal event id, or the case's event after which
  to resume, by the number `danvan history` prints) so that a fixed worker runs it from there. The
  commands accepted after that point are re-run by the new run; their events are in the stream already, so the
  run adopts them instead of appending them again (`workflows.case.CaseMachine.catch_up`). A dry run shows the
  point and what will be re-run, and changes nothing.
* `nudge`: a reminder to the bodies that owe the case an answer (`BodyNudged`).
* `reassign`: the case is given to another body, through its own domain's command.

Every repair needs a reason, names its operator (from the login), and is refused with a rule when it does not
apply. The record is an Update: once Temporal has accepted it, it is durable and is written as soon as the
case's current step (the one being repaired, perhaps) has finished.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    ResetActivityRequest,
    ResetWorkflowExecutionRequest,
    UnpauseActivityRequest,
)
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from danvan.codec import opened
from danvan.waits import rpc_timeout
from domain import idempotency
from domain.common import Actor
from domain.idempotency import update_id
from domain.repairs import REPAIR_ROLES, RecordRepair, RepairAction
from eventstore import EventStore
from workflows.case import RepairRequest, RepairResult

from .stalled import DEFAULT_POLICY, StallPolicy, describe, find_stalled

#: How Temporal names the history event a non-deterministic change no longer produces.
NAMED_EVENT = re.compile(r"HistoryEvent\(id: (\d+)")
#: How long a repair waits for its record to be written before answering "accepted, not yet recorded".
RECORD_WAIT = 10.0
IDENTITY = "danvan-ops"
#: How many times a reset's record is tried while the reset run is still opening its case (0.5 s apart).
RECORD_ATTEMPTS = 20


class RepairRefused(Exception):
    """A repair that does not apply: `rule` names the rule, the message says why. Nothing was changed."""

    def __init__(self, rule: str, message: str, *, status: int = 409) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message
        self.status = status


class ReplayedUpdate(BaseModel):
    """A command accepted after the reset point: the new run decides it again (and adopts its stored events)."""

    update_id: str
    name: str
    command_type: str | None = None
    command_id: str | None = None
    accepted_at: datetime | None = None


class ResetPlan(BaseModel):
    """What a reset does: the point it returns to and what the new run will re-run from there."""

    run_id: str
    reset_to_event_id: int
    reset_to_time: datetime | None
    events_after: int = Field(description="history events after the point, which the new run replaces")
    updates: list[ReplayedUpdate]
    signals: list[str]
    stream_version: int | None = Field(description="the stream's version now; the reset appends nothing again")
    failing: str | None = Field(default=None, description="why the run was failing, if it was")
    after_version: int | None = Field(default=None, description="the case's event the point follows, when the "
                                      "point was named by it")


class RepairOutcome(BaseModel):
    case_id: str
    action: RepairAction
    dry_run: bool = False
    recorded: bool = Field(description="the RepairRecorded event is in the stream (else: accepted and pending, or "
                           "for a reset that was done, refused: then `detail.record_refused` says why)")
    version: int | None = None
    events: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)
    plan: ResetPlan | None = None


def _check_operator(actor: Actor, reason: str) -> None:
    if actor.role not in REPAIR_ROLES:
        raise RepairRefused("repair.role", f"only an operator may repair a case (not {actor.role})", status=403)
    try:
        RecordRepair(action="retry", reason=reason)  # the reason's rules, checked before anything is done
    except ValidationError as exc:
        raise RepairRefused("repair.reason", exc.errors()[0]["msg"], status=422) from exc


async def _running(client: Client, case_id: str) -> Any:
    desc = await describe(client, case_id)
    if desc is None:
        raise RepairRefused("repair.not_found", f"there is no case workflow {case_id}", status=404)
    if desc.workflow_execution_info.status != 1:
        raise RepairRefused("repair.not_running", f"case {case_id} is not running: there is nothing to repair")
    return desc


def _refusal(exc: WorkflowUpdateFailedError) -> RepairRefused:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        status = 422 if cause.type == idempotency.RULE else 409
        return RepairRefused(cause.type or "repair.refused", cause.message, status=status)
    return RepairRefused("repair.refused", str(cause or exc))


async def record(client: Client, case_id: str, action: RepairAction, actor: Actor, reason: str, *,
                 body: str | None = None, detail: dict[str, Any] | None = None, command_id: str | None = None,
                 wait: float = RECORD_WAIT) -> RepairOutcome:
    """Send the `repair` Update; answer once it is recorded, or once it is accepted if that takes longer than
    `wait` seconds (the case is busy with the step being repaired; the record follows when the step ends)."""
    command_id = command_id or f"repair-{uuid.uuid4()}"
    request = RepairRequest(command=RecordRepair(action=action, reason=reason, body=body, detail=detail or {}),
                            actor=actor, command_id=command_id)
    handle = client.get_workflow_handle(case_id)
    try:
        update: WorkflowUpdateHandle[RepairResult] = await handle.start_update(
            "repair", request, id=update_id("", command_id, request.command, actor),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=RepairResult, rpc_timeout=rpc_timeout())
        result = await asyncio.wait_for(update.result(rpc_timeout=rpc_timeout()), wait) if wait > 0 else None
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from exc
    except TimeoutError:
        result = None
    if result is None:
        return RepairOutcome(case_id=case_id, action=action, recorded=False, detail=detail or {})
    return RepairOutcome(case_id=case_id, action=action, recorded=True, version=result.version,
                         events=result.events, detail=detail or {})


def _refuse_if_code_failing(desc: Any, case_id: str) -> None:
    if desc.HasField("pending_workflow_task") and desc.pending_workflow_task.attempt >= 2:
        raise RepairRefused("repair.workflow_task_failing",
                            f"the workflow code of {case_id} keeps failing: deploy the fix, then reset the case")


async def retry(client: Client, case_id: str, actor: Actor, reason: str, *, command_id: str | None = None,
                wait: float = RECORD_WAIT, note: dict[str, Any] | None = None) -> RepairOutcome:
    """Retry now every step of the case that is failing (attempt 2 or more) or paused. `note` is added to the
    record's detail (a job's: who requested and approved it)."""
    _check_operator(actor, reason)
    desc = await _running(client, case_id)
    _refuse_if_code_failing(desc, case_id)
    execution = WorkflowExecution(workflow_id=case_id, run_id=desc.workflow_execution_info.execution.run_id)
    retried: list[dict[str, Any]] = []
    for a in desc.pending_activities:
        if not a.paused and a.attempt < 2:
            continue
        if a.paused:
            await client.workflow_service.unpause_activity(UnpauseActivityRequest(
                namespace=client.namespace, execution=execution, identity=f"{IDENTITY}:{actor.label}",
                id=a.activity_id, reset_attempts=True, reset_heartbeat=True), timeout=rpc_timeout())
        else:
            await client.workflow_service.reset_activity(ResetActivityRequest(
                namespace=client.namespace, execution=execution, identity=f"{IDENTITY}:{actor.label}",
                id=a.activity_id, reset_heartbeat=True), timeout=rpc_timeout())
        retried.append({"activity_id": a.activity_id, "activity_type": a.activity_type.name,
                        "attempts": a.attempt, "paused": a.paused,
                        "last_failure": a.last_failure.message if a.HasField("last_failure") else None})
    if not retried:
        raise RepairRefused("repair.retry.nothing_failing",
                            f"no step of {case_id} is failing or paused: there is nothing to retry")
    return await record(client, case_id, "retry", actor, reason, detail={"retried": retried, **(note or {})},
                        command_id=command_id, wait=wait)


def _update_of(event: HistoryEvent, client: Client) -> ReplayedUpdate:
    attrs = event.workflow_execution_update_accepted_event_attributes
    request = attrs.accepted_request
    command_type = command_id = None
    if request.input.args.payloads:
        try:
            (body,) = client.data_converter.payload_converter.from_payloads(
                [opened(client.data_converter, request.input.args.payloads[0])], [dict[str, Any]])
            command = body.get("command") or {}
            command_type = command.get("type") if isinstance(command, dict) else None
            command_id = body.get("command_id")
        except Exception:  # an input this version cannot read: show the update without its command
            pass
    return ReplayedUpdate(update_id=request.meta.update_id, name=request.input.name, command_type=command_type,
                          command_id=command_id, accepted_at=event.event_time.ToDatetime().astimezone())


def _decoded(client: Client, payloads: Any) -> dict[str, Any] | None:
    """The first payload of an activity's input or result, as a dict; None when it cannot be read."""
    if not payloads:
        return None
    try:
        (value,) = client.data_converter.payload_converter.from_payloads(
            [opened(client.data_converter, payloads[0])], [dict[str, Any]])
    except Exception:  # a payload this version cannot read
        return None
    return value if isinstance(value, dict) else None


def point_after_version(client: Client, case_id: str, events: list[HistoryEvent], version: int) -> HistoryEvent:
    """The completed workflow task right after the append that stored the case's event `version` (the number
    `danvan history` prints) in this run's history: a reset there keeps the case as it was once that event was
    stored and re-runs what followed. `RepairRefused` (`repair.reset.point`, 422) when this run did not store it."""
    stored: dict[int, tuple[int, int]] = {}  # scheduled event id -> (first, last) version it appends
    runs: list[tuple[int, int]] = []
    after: int | None = None
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "append_events":
                request = _decoded(client, attrs.input.payloads)
                if request is not None and isinstance(request.get("events"), list):
                    first = int(request.get("expected_version", 0)) + 1
                    stored[e.event_id] = (first, first + len(request["events"]) - 1)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and after is None:
            span = stored.get(e.activity_task_completed_event_attributes.scheduled_event_id)
            if span is not None:
                runs.append(span)
                if span[0] <= version <= span[1]:
                    after = e.event_id
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and after is not None:
            return e
    if after is not None:
        raise RepairRefused("repair.reset.point", f"no workflow task of {case_id} completed after event {version} "
                            "was stored: reset without naming an event, to return to the last good point",
                            status=422)
    held = f"it stored events {runs[0][0]} to {runs[-1][1]}" if runs else "it stored no event yet"
    raise RepairRefused("repair.reset.point", f"event {version} of {case_id} was not stored by its current run "
                        f"({held}; a case continued as new starts a new run)", status=422)


async def plan_reset(client: Client, store: EventStore | None, case_id: str, *,
                     to_event_id: int | None = None, after_version: int | None = None) -> ResetPlan:
    """Where a reset of the case would return to, and what it would re-run. Changes nothing. The point is the
    last good one, or the completed workflow task `to_event_id` (a Temporal history event id), or the one right
    after the case's event `after_version` was stored (`point_after_version`)."""
    if to_event_id is not None and after_version is not None:
        raise ValueError("name the point by to_event_id or by after_version, not both")
    desc = await _running(client, case_id)
    run_id = desc.workflow_execution_info.execution.run_id
    history = await client.get_workflow_handle(case_id, run_id=run_id).fetch_history(rpc_timeout=rpc_timeout())
    events = list(history.events)
    completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    failing = None
    if desc.HasField("pending_workflow_task") and desc.pending_workflow_task.attempt >= 2:
        failures = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        failing = failures[-1].workflow_task_failed_event_attributes.failure.message if failures else "failing"
    if after_version is not None:
        point = point_after_version(client, case_id, events, after_version)
    elif to_event_id is None:
        if failing is None:
            raise RepairRefused("repair.reset.nothing_failing",
                                f"the workflow code of {case_id} is not failing: name the event to reset to")
        # A non-deterministic change names the first history event the fixed code does not produce: re-run
        # the workflow task that wrote it. Otherwise re-run the last task that completed.
        named = NAMED_EVENT.search(failing)
        good = [e for e in completed if not named or e.event_id < int(named.group(1))]
        if not good:
            raise RepairRefused("repair.reset.no_good_point", f"{case_id} has no completed workflow task to return to")
        point = good[-1]
    else:
        matches = [e for e in completed if e.event_id == to_event_id]
        if not matches:
            raise RepairRefused("repair.reset.point",
                                f"event {to_event_id} of {case_id} is not a completed workflow task "
                                f"(these are: {', '.join(str(e.event_id) for e in completed[-10:])}...)")
        point = matches[0]
    after = [e for e in events if e.event_id > point.event_id]
    updates = [_update_of(e, client) for e in after
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in after
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    version = None
    if store is not None:
        stored = await store.read_stream(case_id)
        version = stored[-1].version if stored else 0
    return ResetPlan(run_id=run_id, reset_to_event_id=point.event_id, after_version=after_version,
                     reset_to_time=point.event_time.ToDatetime().astimezone(), events_after=len(after),
                     updates=updates, signals=signals, stream_version=version, failing=failing)


async def reset(client: Client, store: EventStore | None, case_id: str, actor: Actor, reason: str, *,
                to_event_id: int | None = None, after_version: int | None = None, dry_run: bool = False,
                command_id: str | None = None, wait: float = RECORD_WAIT,
                note: dict[str, Any] | None = None) -> RepairOutcome:
    """Reset the case's workflow to its last good point (or `to_event_id`, or right after the case's event
    `after_version`: see `plan_reset`) and record it; `dry_run` only plans."""
    _check_operator(actor, reason)
    plan = await plan_reset(client, store, case_id, to_event_id=to_event_id, after_version=after_version)
    if dry_run:
        return RepairOutcome(case_id=case_id, action="reset", dry_run=True, recorded=False, plan=plan)
    command_id = command_id or f"repair-{uuid.uuid4()}"
    try:
        response = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=case_id, run_id=plan.run_id),
            reason=f"{actor.label}: {reason}"[:1000], workflow_task_finish_event_id=plan.reset_to_event_id,
            request_id=command_id, identity=f"{IDENTITY}:{actor.label}"), timeout=rpc_timeout())
    except RPCError as exc:
        if exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            raise RepairRefused("repair.reset.refused", exc.message) from exc
        raise
    detail = {"reset_to_event_id": plan.reset_to_event_id, "old_run_id": plan.run_id,
              "new_run_id": response.run_id, "rerun_updates": len(plan.updates),
              **({"after_version": after_version} if after_version is not None else {}),
              **({"failing": plan.failing[:500]} if plan.failing else {}), **(note or {})}
    # The reset is done: from here on nothing may claim that nothing changed. The new run may still be opening
    # the case (a reset to before its first event): the record waits for it.
    for attempt in range(RECORD_ATTEMPTS):
        try:
            outcome = await record(client, case_id, "reset", actor, reason, detail=detail, command_id=command_id,
                                   wait=wait)
            return outcome.model_copy(update={"plan": plan})
        except RepairRefused as exc:
            if exc.rule != "case.opening" or attempt == RECORD_ATTEMPTS - 1:
                refused = f"{exc.rule}: {exc.message}"
                break
            await asyncio.sleep(0.5)
    return RepairOutcome(case_id=case_id, action="reset", recorded=False, plan=plan,
                         detail={**detail, "record_refused": refused})


async def nudge(client: Client, case_id: str, actor: Actor, reason: str, *, body: str | None = None,
                command_id: str | None = None, wait: float = RECORD_WAIT,
                note: dict[str, Any] | None = None) -> RepairOutcome:
    """Remind the body (default: every body) that owes the case an answer."""
    _check_operator(actor, reason)
    _refuse_if_code_failing(await _running(client, case_id), case_id)
    return await record(client, case_id, "nudge", actor, reason, body=body, command_id=command_id, wait=wait,
                        detail=note)


async def reassign(client: Client, case_id: str, actor: Actor, reason: str, *, body: str,
                   command_id: str | None = None, wait: float = RECORD_WAIT,
                   note: dict[str, Any] | None = None) -> RepairOutcome:
    """Give the case to another body."""
    _check_operator(actor, reason)
    _refuse_if_code_failing(await _running(client, case_id), case_id)
    return await record(client, case_id, "reassign", actor, reason, body=body, command_id=command_id, wait=wait,
                        detail=note)


class BulkItem(BaseModel):
    case_id: str
    outcome: str = Field(description="retried, refused or failed")
    rule: str | None = None
    detail: str | None = None


class BulkReport(BaseModel):
    matched: int
    retried: int
    refused: int
    failed: int
    items: list[BulkItem]


async def bulk_retry(client: Client, store: EventStore, actor: Actor, reason: str, *,
                     policy: StallPolicy = DEFAULT_POLICY, kind: str | None = None, body: str | None = None,
                     per_second: float = 5.0, limit: int = 100, dry_run: bool = False) -> BulkReport:
    """Retry every case whose step is failing or paused (matching the filter), at most `per_second` a second
    and `limit` cases, and report what was done with each. The records are written as each step ends."""
    _check_operator(actor, reason)
    stalled = [s for s in await find_stalled(client, store, policy, kind=kind, body=body)
               if s.reason in ("activity_failing", "activity_paused")]
    case_ids = list(dict.fromkeys(s.case_id for s in stalled))[:limit]
    items: list[BulkItem] = []
    for n, case_id in enumerate(case_ids):
        if dry_run:
            items.append(BulkItem(case_id=case_id, outcome="would_retry"))
            continue
        if n:
            await asyncio.sleep(1.0 / per_second)
        try:
            await retry(client, case_id, actor, reason, wait=0)
            items.append(BulkItem(case_id=case_id, outcome="retried"))
        except RepairRefused as exc:
            items.append(BulkItem(case_id=case_id, outcome="refused", rule=exc.rule, detail=exc.message))
        except RPCError as exc:
            items.append(BulkItem(case_id=case_id, outcome="failed", detail=exc.message))
    count = {o: sum(1 for i in items if i.outcome == o) for o in ("retried", "refused", "failed")}
    return BulkReport(matched=len(case_ids), items=items, **count)
