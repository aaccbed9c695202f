"""A case's timeline: its domain events (what was decided) merged with Temporal's history (what the
machinery did), for `GET /v1/cases/{id}/history?include=process` and `danvan history CASE_ID --process`.

The conversion is pure: `process_entries` turns one run's history protobufs into `ProcessEntry`s,
`pending_entries` adds what a running case is doing right now (an activity being retried, a workflow task
failing), and `merge` interleaves them with the domain events by time. `fetch_process` is the only I/O.

No payload ever leaves this module: not an activity's input or result, not an Update's arguments, not a
signal's input, not a failure's details or stack trace. A denouncer's data must not leak this way, and
payloads are large. What is kept is names, ids, attempts, times, failure messages (truncated) and causes.

What Temporal does not record, and so no timeline can show:
- an Update refused by its validator (the 409 answers of `POST /v1/cases/{id}/commands`) never enters the
  workflow's history;
- the failed attempts of an activity that is retried are not events either: the `ActivityTaskStarted` event,
  written when the activity finally completes or fails, carries the attempt number and the last failure; while
  it is still retrying, `pending_entries` shows the attempt and the last failure from the workflow's
  description;
- a failing workflow task is recorded once; its later attempts show only as a pending workflow task.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import (
    EventType,
    PendingActivityState,
    RetryState,
    StartChildWorkflowExecutionFailedCause,
    TimeoutType,
    WorkflowExecutionStatus,
    WorkflowTaskFailedCause,
)
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from danvan.waits import rpc_timeout
from eventstore import RecordedEvent

#: A failure message is cut here: the reason fits, a driver's dump of a statement does not.
MAX_FAILURE_CHARS = 500
#: Runs followed back through continue-as-new; beyond this the oldest are left out (and a note says so).
MAX_RUNS = 50

E = EventType
#: Bookkeeping that says nothing a supervisor needs: workflow task scheduling, search attribute and memo
#: upserts (they mirror the domain state), markers (patches; their details are payloads).
SKIPPED: frozenset[int] = frozenset({
    E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
    E.EVENT_TYPE_MARKER_RECORDED,
})

NOTE_REJECTED_UPDATES = (
    "Commands refused by a case's rules (409 answers) are refused by the Update's validator and never enter "
    "Temporal's history, so they are not in this timeline."
)
NOTE_ATTEMPTS = (
    "A retried activity's failed attempts are not separate events: the entry where it started carries the "
    "attempt number and the failure before it, and an activity still retrying is shown as pending."
)


class DomainEntry(BaseModel):
    """A domain event in the timeline (the whole event, with its hashes, is in the history's `events`)."""

    kind: Literal["domain"] = "domain"
    #: When it was stored (the database's clock): the append activity's commit, the place it belongs in the process.
    at: datetime
    occurred_at: datetime
    #: The date the written act bears (`dated`), for the events that record one; the act may have been signed
    #: days before `occurred_at`, when it was recorded.
    dated: date | None = None
    version: int
    type: str
    actor: str | None
    reason: str | None
    legal_basis: str | None


class ProcessEntry(BaseModel):
    """One thing the machinery did (a Temporal history event), or is doing (`event` starting with `Pending`)."""

    kind: Literal["process"] = "process"
    #: The Temporal server's time of the event.
    at: datetime
    run_id: str
    #: The event's id in its run's history; null for a pending entry.
    event_id: int | None = None
    #: The Temporal event type, e.g. `ActivityTaskFailed`, `TimerFired`, `WorkflowExecutionUpdateAccepted`.
    event: str
    summary: str
    activity: str | None = None
    activity_id: str | None = None
    attempt: int | None = None
    failure: str | None = None
    failure_type: str | None = None
    retry_state: str | None = None
    timer_id: str | None = None
    fire_after_seconds: float | None = None
    update: str | None = None
    update_id: str | None = None
    workflow_id: str | None = None
    workflow_type: str | None = None
    cause: str | None = None
    identity: str | None = None


TimelineEntry = Annotated[DomainEntry | ProcessEntry, Field(discriminator="kind")]


class RunInfo(BaseModel):
    """One run of the case's workflow (a new run follows each continue-as-new)."""

    run_id: str
    workflow_type: str
    started_at: datetime
    #: `running`, or how the run ended: `continued_as_new`, `completed`, `failed`, `terminated`, ...
    status: str
    events: int


class ProcessHistory(BaseModel):
    """What Temporal holds about a case: its runs, oldest first, and their entries in order."""

    found: bool
    runs: list[RunInfo] = Field(default_factory=list)
    entries: list[ProcessEntry] = Field(default_factory=list)
    #: False when older runs could not be read (retention passed, or more than `MAX_RUNS`).
    complete: bool = True
    notes: list[str] = Field(default_factory=list)


# -- pure conversion ---------------------------------------------------------------------------------


def event_name(event_type: int) -> str:
    """`EVENT_TYPE_ACTIVITY_TASK_FAILED` -> `ActivityTaskFailed`."""
    name = E.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]
    return "".join(part.capitalize() for part in name.split("_"))


def _enum(enum: type, value: int, prefix: str) -> str | None:
    if not value:
        return None
    try:
        name: str = enum.Name(value)  # type: ignore[attr-defined]
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FAILURE_CHARS else text[: MAX_FAILURE_CHARS - 1] + "…"


def failure_text(failure: Failure) -> tuple[str | None, str | None]:
    """(message, type) of a failure and the causes under it; never its details or stack trace."""
    messages: list[str] = []
    kind: str | None = None
    current: Failure | None = failure
    depth = 0
    while current is not None and current.ByteSize() and depth < 4:
        if current.message and current.message not in messages:
            messages.append(current.message)
        if kind is None:
            if current.HasField("application_failure_info") and current.application_failure_info.type:
                kind = current.application_failure_info.type
            elif current.HasField("timeout_failure_info"):
                kind = "timeout:" + (_enum(TimeoutType, current.timeout_failure_info.timeout_type,
                                           "TIMEOUT_TYPE_") or "unknown")
        current = current.cause if current.HasField("cause") else None
        depth += 1
    return (_cut(": ".join(messages)) if messages else None), kind


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def process_entries(run_id: str, events: Iterable[HistoryEvent]) -> list[ProcessEntry]:
    """The entries of one run's history, in event order, without payloads and without the bookkeeping of
    `SKIPPED`. An event type this code does not know still appears, by its name."""
    reader = _HistoryReader()
    out: list[ProcessEntry] = []
    for ev in events:
        if ev.event_type in SKIPPED:
            continue
        name_of_event = event_name(ev.event_type)
        read = _READERS.get(ev.event_type)
        fields = read(reader, ev) if read is not None else {"summary": _sentence(name_of_event)}
        out.append(ProcessEntry(at=_time(ev), run_id=run_id, event_id=ev.event_id, event=name_of_event, **fields))
    return out


Fields = dict[str, Any]


class _HistoryReader:
    """What an entry needs from earlier events of the run: the activity, attempt, timer or update it refers to.
    One method per kind of history event; each gives the entry's fields besides its time, run, id and name."""

    def __init__(self) -> None:
        self.activities: dict[int, tuple[str, str]] = {}  # scheduled event id -> (activity type, activity id)
        self.attempts: dict[int, int] = {}  # started event id -> attempt
        self.timers: dict[int, str] = {}  # started event id -> timer id
        self.updates: dict[int, tuple[str, str]] = {}  # accepted event id -> (update name, update id)

    # -- the workflow ---------------------------------------------------------------------------------------

    def started(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_started_event_attributes
        text = f"workflow {a.workflow_type.name} started"
        if a.continued_execution_run_id:
            text += f", continuing run {a.continued_execution_run_id}"
        if a.HasField("parent_workflow_execution") and a.parent_workflow_execution.workflow_id:
            text += f", by case {a.parent_workflow_execution.workflow_id}"
        if a.attempt > 1:
            text += f" (attempt {a.attempt})"
        return {"summary": text, "workflow_type": a.workflow_type.name, "attempt": a.attempt or None,
                "identity": a.identity or None, "workflow_id": a.parent_workflow_execution.workflow_id or None}

    def continued(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_continued_as_new_event_attributes
        return {"summary": f"continued as new in run {a.new_execution_run_id}", "workflow_type": a.workflow_type.name}

    def failed(self, ev: HistoryEvent) -> Fields:
        message, kind = failure_text(ev.workflow_execution_failed_event_attributes.failure)
        return {"summary": f"workflow failed: {message or 'no message'}", "failure": message, "failure_type": kind}

    def terminated(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_terminated_event_attributes
        return {"summary": f"workflow terminated: {a.reason or 'no reason given'}",
                "cause": _cut(a.reason) if a.reason else None, "identity": a.identity or None}

    def cancel_requested(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_cancel_requested_event_attributes
        return {"summary": "cancellation requested", "cause": a.cause or None, "identity": a.identity or None}

    def task_failed(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_task_failed_event_attributes
        message, kind = failure_text(a.failure)
        cause = _enum(WorkflowTaskFailedCause, a.cause, "WORKFLOW_TASK_FAILED_CAUSE_")
        return {"summary": f"workflow task failed ({cause}): {message or 'no message'}", "cause": cause,
                "failure": message, "failure_type": kind, "identity": a.identity or None}

    def task_timed_out(self, ev: HistoryEvent) -> Fields:
        cause = _enum(TimeoutType, ev.workflow_task_timed_out_event_attributes.timeout_type, "TIMEOUT_TYPE_")
        return {"summary": f"workflow task timed out ({cause})", "cause": cause}

    def signaled(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_signaled_event_attributes
        return {"summary": f"signal {a.signal_name} received", "identity": a.identity or None}

    # -- activities -----------------------------------------------------------------------------------------

    def _activity(self, scheduled_event_id: int) -> tuple[str, str]:
        return self.activities.get(scheduled_event_id, ("?", ""))

    def activity_scheduled(self, ev: HistoryEvent) -> Fields:
        a = ev.activity_task_scheduled_event_attributes
        self.activities[ev.event_id] = (a.activity_type.name, a.activity_id)
        return {"summary": f"activity {a.activity_type.name} scheduled", "activity": a.activity_type.name,
                "activity_id": a.activity_id}

    def activity_started(self, ev: HistoryEvent) -> Fields:
        a = ev.activity_task_started_event_attributes
        name, act_id = self._activity(a.scheduled_event_id)
        self.attempts[ev.event_id] = a.attempt
        message, kind = failure_text(a.last_failure) if a.HasField("last_failure") else (None, None)
        text = f"activity {name} started, attempt {a.attempt}"
        if message:
            text += f" (the attempt before failed: {message})"
        return {"summary": text, "activity": name, "activity_id": act_id or None, "attempt": a.attempt,
                "failure": message, "failure_type": kind, "identity": a.identity or None}

    def activity_completed(self, ev: HistoryEvent) -> Fields:
        a = ev.activity_task_completed_event_attributes
        name, act_id = self._activity(a.scheduled_event_id)
        attempt = self.attempts.get(a.started_event_id)
        return {"summary": f"activity {name} completed" + (f" on attempt {attempt}" if attempt and attempt > 1 else ""),
                "activity": name, "activity_id": act_id or None, "attempt": attempt}

    def activity_failed(self, ev: HistoryEvent) -> Fields:
        a = ev.activity_task_failed_event_attributes
        return self._activity_ended(a.failure, a.scheduled_event_id, a.started_event_id, a.retry_state, "failed")

    def activity_timed_out(self, ev: HistoryEvent) -> Fields:
        a = ev.activity_task_timed_out_event_attributes
        return self._activity_ended(a.failure, a.scheduled_event_id, a.started_event_id, a.retry_state, "timed out")

    def _activity_ended(self, failure: Failure, scheduled: int, started: int, retry: int, verb: str) -> Fields:
        name, act_id = self._activity(scheduled)
        attempt = self.attempts.get(started)
        message, kind = failure_text(failure)
        state = _enum(RetryState, retry, "RETRY_STATE_")
        return {"summary": f"activity {name} {verb}" + (f" on attempt {attempt}" if attempt else "")
                + f": {message or 'no message'}" + (f" (no more retries: {state})" if state else ""),
                "activity": name, "activity_id": act_id or None, "attempt": attempt, "failure": message,
                "failure_type": kind, "retry_state": state}

    def activity_cancel_requested(self, ev: HistoryEvent) -> Fields:
        name, act_id = self._activity(ev.activity_task_cancel_requested_event_attributes.scheduled_event_id)
        return {"summary": f"activity {name}: cancellation requested", "activity": name,
                "activity_id": act_id or None}

    def activity_cancelled(self, ev: HistoryEvent) -> Fields:
        name, act_id = self._activity(ev.activity_task_canceled_event_attributes.scheduled_event_id)
        return {"summary": f"activity {name} cancelled", "activity": name, "activity_id": act_id or None}

    # -- timers ---------------------------------------------------------------------------------------------

    def timer_started(self, ev: HistoryEvent) -> Fields:
        a = ev.timer_started_event_attributes
        self.timers[ev.event_id] = a.timer_id
        seconds = a.start_to_fire_timeout.ToTimedelta().total_seconds()
        return {"summary": f"timer {a.timer_id} started, fires in {_duration(seconds)}", "timer_id": a.timer_id,
                "fire_after_seconds": seconds}

    def timer_fired(self, ev: HistoryEvent) -> Fields:
        timer_id = ev.timer_fired_event_attributes.timer_id
        return {"summary": f"timer {timer_id} fired", "timer_id": timer_id}

    def timer_cancelled(self, ev: HistoryEvent) -> Fields:
        timer_id = ev.timer_canceled_event_attributes.timer_id
        return {"summary": f"timer {timer_id} cancelled (the case woke up before it)", "timer_id": timer_id}

    # -- updates --------------------------------------------------------------------------------------------

    def update_admitted(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_update_admitted_event_attributes
        return {"summary": f"update {a.request.input.name} admitted", "update": a.request.input.name,
                "update_id": a.request.meta.update_id or None}

    def update_accepted(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_update_accepted_event_attributes
        name, update_id = a.accepted_request.input.name, a.accepted_request.meta.update_id
        self.updates[ev.event_id] = (name, update_id)
        return {"summary": f"update {name} accepted (its validator passed)", "update": name,
                "update_id": update_id or None, "identity": a.accepted_request.meta.identity or None}

    def update_rejected(self, ev: HistoryEvent) -> Fields:  # written by no server so far; kept if one does
        a = ev.workflow_execution_update_rejected_event_attributes
        message, kind = failure_text(a.failure)
        name = a.rejected_request.input.name
        return {"summary": f"update {name} rejected: {message or 'no message'}", "update": name,
                "update_id": a.rejected_request.meta.update_id or None, "failure": message, "failure_type": kind}

    def update_completed(self, ev: HistoryEvent) -> Fields:
        a = ev.workflow_execution_update_completed_event_attributes
        name, _ = self.updates.get(a.accepted_event_id, ("?", ""))
        if not a.outcome.HasField("failure"):
            return {"summary": f"update {name} completed", "update": name, "update_id": a.meta.update_id or None}
        message, kind = failure_text(a.outcome.failure)
        return {"summary": f"update {name} failed: {message or 'no message'}", "update": name,
                "update_id": a.meta.update_id or None, "failure": message, "failure_type": kind}

    # -- linked cases (child workflows) ---------------------------------------------------------------------

    def child_initiated(self, ev: HistoryEvent) -> Fields:
        a = ev.start_child_workflow_execution_initiated_event_attributes
        return {"summary": f"starting linked case {a.workflow_id} ({a.workflow_type.name})",
                "workflow_id": a.workflow_id, "workflow_type": a.workflow_type.name}

    def child_start_failed(self, ev: HistoryEvent) -> Fields:
        a = ev.start_child_workflow_execution_failed_event_attributes
        cause = _enum(StartChildWorkflowExecutionFailedCause, a.cause, "START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_")
        return {"summary": f"linked case {a.workflow_id} could not start ({cause})", "workflow_id": a.workflow_id,
                "workflow_type": a.workflow_type.name, "cause": cause}

    def child_started(self, ev: HistoryEvent) -> Fields:
        a = ev.child_workflow_execution_started_event_attributes
        return {"summary": f"linked case {a.workflow_execution.workflow_id} started",
                "workflow_id": a.workflow_execution.workflow_id, "workflow_type": a.workflow_type.name}

    def child_failed(self, ev: HistoryEvent) -> Fields:
        a = ev.child_workflow_execution_failed_event_attributes
        message, kind = failure_text(a.failure)
        return {"summary": f"linked case {a.workflow_execution.workflow_id} failed: {message or 'no message'}",
                "workflow_id": a.workflow_execution.workflow_id, "workflow_type": a.workflow_type.name,
                "failure": message, "failure_type": kind}

    def child_ended(self, ev: HistoryEvent) -> Fields:
        attributes, verb = _CHILD_ENDS[ev.event_type]
        a = getattr(ev, attributes)
        return {"summary": f"linked case {a.workflow_execution.workflow_id} {verb}",
                "workflow_id": a.workflow_execution.workflow_id, "workflow_type": a.workflow_type.name}


def _said(summary: str) -> Callable[[_HistoryReader, HistoryEvent], Fields]:
    """A reader for an event whose entry is one fixed sentence."""
    return lambda _reader, _ev: {"summary": summary}


_CHILD_ENDS: dict[int, tuple[str, str]] = {
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: ("child_workflow_execution_completed_event_attributes",
                                                      "completed"),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: ("child_workflow_execution_canceled_event_attributes",
                                                     "cancelled"),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: ("child_workflow_execution_timed_out_event_attributes",
                                                      "timed out"),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: ("child_workflow_execution_terminated_event_attributes",
                                                       "terminated"),
}


_R = _HistoryReader
_READERS: dict[int, Callable[[_HistoryReader, HistoryEvent], Fields]] = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: _R.started,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: _R.continued,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: _said("workflow completed"),
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: _R.failed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: _said("workflow timed out"),
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: _R.terminated,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: _R.cancel_requested,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: _said("workflow cancelled"),
    E.EVENT_TYPE_WORKFLOW_TASK_FAILED: _R.task_failed,
    E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: _R.task_timed_out,
    E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: _R.activity_scheduled,
    E.EVENT_TYPE_ACTIVITY_TASK_STARTED: _R.activity_started,
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: _R.activity_completed,
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: _R.activity_failed,
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: _R.activity_timed_out,
    E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED: _R.activity_cancel_requested,
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: _R.activity_cancelled,
    E.EVENT_TYPE_TIMER_STARTED: _R.timer_started,
    E.EVENT_TYPE_TIMER_FIRED: _R.timer_fired,
    E.EVENT_TYPE_TIMER_CANCELED: _R.timer_cancelled,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED: _R.update_admitted,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: _R.update_accepted,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED: _R.update_rejected,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: _R.update_completed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: _R.signaled,
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: _R.child_initiated,
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: _R.child_start_failed,
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: _R.child_started,
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: _R.child_failed,
    **dict.fromkeys(_CHILD_ENDS, _R.child_ended),
}


def _sentence(camel: str) -> str:
    """`WorkflowExecutionOptionsUpdated` -> `workflow execution options updated`."""
    words: list[str] = []
    for ch in camel:
        if ch.isupper() and words:
            words.append(" ")
        words.append(ch.lower())
    return "".join(words)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def pending_entries(description: DescribeWorkflowExecutionResponse) -> list[ProcessEntry]:
    """What a running case is doing now: activities not finished (with their attempt and last failure) and a
    workflow task that keeps failing. Nothing for a closed case."""
    info = description.workflow_execution_info
    if info.status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
        return []
    run_id = info.execution.run_id
    out: list[ProcessEntry] = []
    for p in description.pending_activities:
        moments = [t for t in (p.last_attempt_complete_time, p.last_started_time, p.scheduled_time) if t.seconds]
        at = moments[0].ToDatetime(tzinfo=UTC) if moments else info.start_time.ToDatetime(tzinfo=UTC)
        message, kind = failure_text(p.last_failure) if p.HasField("last_failure") else (None, None)
        state = _enum(PendingActivityState, p.state, "PENDING_ACTIVITY_STATE_")
        text = f"activity {p.activity_type.name} pending ({state}), attempt {p.attempt}"
        if p.maximum_attempts:
            text += f" of {p.maximum_attempts}"
        if message:
            text += f"; last failure: {message}"
        if p.next_attempt_schedule_time.seconds:
            text += f"; next attempt at {p.next_attempt_schedule_time.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M:%S} UTC"
        if p.paused:
            text += " (paused)"
        out.append(ProcessEntry(at=at, run_id=run_id, event="PendingActivity", summary=text,
                                activity=p.activity_type.name, activity_id=p.activity_id or None,
                                attempt=p.attempt, failure=message, failure_type=kind,
                                identity=p.last_worker_identity or None))
    if description.HasField("pending_workflow_task") and description.pending_workflow_task.attempt > 1:
        wt = description.pending_workflow_task
        moment = wt.started_time if wt.started_time.seconds else wt.scheduled_time
        out.append(ProcessEntry(at=moment.ToDatetime(tzinfo=UTC), run_id=run_id, event="PendingWorkflowTask",
                                summary=f"workflow task failing: attempt {wt.attempt}", attempt=wt.attempt))
    return out


_CLOSES: dict[int, str] = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}


def run_info(run_id: str, events: Sequence[HistoryEvent], *, running: bool) -> RunInfo:
    """A run's type, start and how it ended (`running`, `continued_as_new`, `completed`, ...), from its history."""
    first = events[0] if events else HistoryEvent()
    status = "running" if running else "closed"
    if events and events[-1].event_type in _CLOSES:
        status = _CLOSES[events[-1].event_type]
    return RunInfo(run_id=run_id, workflow_type=first.workflow_execution_started_event_attributes.workflow_type.name,
                   started_at=_time(first), status=status, events=len(events))


def domain_entries(events: Sequence[RecordedEvent]) -> list[DomainEntry]:
    return [
        DomainEntry(at=e.recorded_at, occurred_at=e.occurred_at, dated=e.data.get("dated"), version=e.version,
                    type=e.type, actor=e.actor, reason=e.reason, legal_basis=e.legal_basis)
        for e in events
    ]


def merge(domain: Sequence[DomainEntry], process: Sequence[ProcessEntry]) -> list[DomainEntry | ProcessEntry]:
    """One timeline ordered by time. Each side keeps its own order (domain events by version, process entries
    by run and event id), so a skew between the database's and Temporal's clocks can move a domain event
    among the process entries around it but never reorder either side."""
    ordered_process = sorted(process, key=lambda p: p.at)  # stable: pending entries go where their time says
    sides: tuple[Sequence[DomainEntry | ProcessEntry], ...] = (domain, ordered_process)
    return list(heapq.merge(*sides, key=_at))


def _at(entry: DomainEntry | ProcessEntry) -> datetime:
    return entry.at


# -- I/O ---------------------------------------------------------------------------------------------


async def fetch_process(
    client: Client, case_id: str, *, max_runs: int = MAX_RUNS, page_size: int | None = None
) -> ProcessHistory:
    """Every run of the case's workflow (workflow id = case id), oldest first, following each run's
    `continued_execution_run_id` back from the newest, and the entries of their histories.

    Raises the SDK's `RPCError` when Temporal does not answer (callers decide what that means); a case
    Temporal does not know gives `found=False`. `page_size` None: the server's own page size.
    """
    try:
        description = (await client.get_workflow_handle(case_id).describe(rpc_timeout=rpc_timeout())).raw_description
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return ProcessHistory(found=False, complete=False, notes=[
                f"Temporal has no workflow {case_id}: it never ran there, or its history is past retention."])
        raise
    latest = description.workflow_execution_info.execution.run_id
    running = description.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    runs: list[tuple[str, list[HistoryEvent]]] = []
    notes = [NOTE_REJECTED_UPDATES, NOTE_ATTEMPTS]
    complete = True
    run_id: str | None = latest
    seen: set[str] = set()
    while run_id and run_id not in seen:
        if len(runs) >= max_runs:
            complete = False
            notes.append(f"Only the newest {max_runs} runs are shown; older runs were left out.")
            break
        seen.add(run_id)
        handle = client.get_workflow_handle(case_id, run_id=run_id)
        try:
            events = [ev async for ev in handle.fetch_history_events(page_size=page_size, rpc_timeout=rpc_timeout())]
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            complete = False
            notes.append(f"Run {run_id} and any before it are no longer in Temporal (past retention).")
            break
        runs.append((run_id, events))
        first = events[0] if events else None
        run_id = (first.workflow_execution_started_event_attributes.continued_execution_run_id
                  if first is not None and first.HasField("workflow_execution_started_event_attributes") else None)
    runs.reverse()
    entries = [entry for rid, events in runs for entry in process_entries(rid, events)]
    entries += pending_entries(description)
    infos = [run_info(rid, events, running=running and rid == latest) for rid, events in runs]
    return ProcessHistory(found=True, runs=infos, entries=entries, complete=complete, notes=notes)
