"""Finding stalled cases: what Temporal says of the running case workflows it flags, and what the record says of
the overdue ones.

A case is stalled when
* `activity_failing`: a step (activity) keeps failing: it is at its `min_attempts`-th attempt or later;
* `activity_paused`: a step was paused (by an operator or by the server);
* `workflow_task_failing`: the workflow's own code keeps failing (a bug, or a change that is not
  deterministic): its pending workflow task is at its second attempt or later;
* `deadline_idle`: a deadline has passed and no person has acted on the case for `idle`.

Temporal's side (`temporal_stalls`) costs what the stalled cases cost, not what the healthy ones do:
1. one visibility query (`danvan.visibility.FLAGGED`, a page per 1,000 found) lists the running workflows
   Temporal flags: `TemporalReportedProblems` (the workflow task failed or timed out
   `SERVER_DYNAMIC_CONFIG`'s number of times in a row) or `TemporalPauseInfo` (a step is paused). The bundled
   dev server (temporal CLI 1.9.1, server 1.32.0) supports both in list queries; `danvan up` and the tests'
   server set the first's threshold to 2 (another server should be given the same dynamic config);
2. Temporal flags nothing for a step that keeps failing, so the worker notes those itself (`ops.steps`: a
   retried step writes a row, a step that succeeds at its first attempt writes nothing), and one SQL query reads
   the steps that failed `min_attempts - 1` times or more;
3. only the workflows those two name are described (DescribeWorkflowExecution, 16 at a time; plus one history
   read for a failing workflow task's message). The description decides, by the rules above; the notes of
   steps Temporal no longer holds pending are deleted.
`describe_all_stalls` is the scan as it was: every running workflow described (at most `scan_limit`). It stays
for `danvan stalled --describe-all` and as the benchmark's baseline (`bench/stalled.py`).

The record's side is one SQL query over the `cases` projection and the events. Each finding names the remedy
that fits (`ops.repairs`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryReverseRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.converter import decode_search_attributes
from temporalio.service import RPCError, RPCStatusCode

from danvan import visibility
from danvan.waits import rpc_timeout
from eventstore import EventStore

from .steps import RetryingStep, StepNotes

StallReason = Literal["activity_failing", "activity_paused", "workflow_task_failing", "deadline_idle",
                      "subscription_failing", "checkpoint_late"]
Remedy = Literal["retry", "reset", "nudge", "reassign", "replay", "pause", "checkpoint"]
#: What a finding is about: a case, a webhook subscription (`ops.subjects`), or the checkpoints' signer.
Subject = Literal["case", "subscription", "checkpoint"]
#: The reasons of the findings that are not about a case, and their subjects.
SUBJECT_OF: dict[str, Subject] = {"subscription_failing": "subscription", "checkpoint_late": "checkpoint"}

#: The remedies that fit each reason, the first one first.
REMEDIES: dict[str, list[Remedy]] = {
    "activity_failing": ["retry", "reset"],
    "activity_paused": ["retry"],
    "workflow_task_failing": ["reset"],
    "deadline_idle": ["nudge", "reassign"],
    # A subscription that gave up: try its event again now, deliver from another cursor, or stop it.
    "subscription_failing": ["retry", "replay", "pause"],
    # No checkpoint signed in time: ask the signer for one now.
    "checkpoint_late": ["checkpoint"],
}
#: The kinds of case an operator may give to another body (their workflows carry a reassignment out): a
#: petition and a plan task. Others (a Front supervision, a report cycle) are never offered the remedy.
REASSIGNABLE_KINDS = frozenset({"complaint", "denunciation", "recommendation", "voter_petition", "plan_task"})


def remedies_for(reason: str, kind: str | None) -> list[Remedy]:
    """The remedies that fit `reason` on a case of `kind`."""
    return [r for r in REMEDIES[reason] if r != "reassign" or kind in REASSIGNABLE_KINDS]


#: Actors whose events are the machinery's, not a person's action.
SYSTEM_ACTORS = "system:%"


@dataclass(frozen=True)
class StallPolicy:
    """When a case counts as stalled. `scan_limit` bounds how many workflows one look describes."""

    min_attempts: int = 3
    idle: timedelta = timedelta(days=2)
    scan_limit: int = 2_000
    concurrency: int = 16


DEFAULT_POLICY = StallPolicy()

#: The dynamic config the scan wants of the Temporal server: `TemporalReportedProblems` is set after this many
#: workflow task failures (or timeouts) in a row, so a workflow whose code fails is listed from its third
#: attempt, about 10 s after its first failure on the dev server. Without it the server's default (5) lists it
#: from its sixth attempt, about a minute later (measured on the bundled dev server); 0 turns it off, and the
#: scan would then never list such a workflow.
SERVER_DYNAMIC_CONFIG: dict[str, int] = {"system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute": 2}


def dev_server_args() -> list[str]:
    """`--dynamic-config-value` arguments of `temporal server start-dev` for `SERVER_DYNAMIC_CONFIG`."""
    return [arg for key, value in SERVER_DYNAMIC_CONFIG.items() for arg in ("--dynamic-config-value", f"{key}={value}")]


@dataclass
class ScanStats:
    """What one look at Temporal cost: its RPCs by kind, and which workflows it described."""

    list_calls: int = 0
    describe_calls: int = 0
    history_calls: int = 0
    #: Workflows visibility flagged, and steps the worker noted (`ops.steps`), that the look described.
    flagged: int = 0
    noted: int = 0
    #: Notes of steps Temporal no longer holds pending, deleted by the look.
    forgotten: int = 0
    #: Seconds spent in the visibility list calls (the rest of a look is its describes, in parallel).
    list_seconds: float = 0.0
    described: set[str] = field(default_factory=set)

    @property
    def rpcs(self) -> int:
        return self.list_calls + self.describe_calls + self.history_calls

class RepairNote(BaseModel):
    """A repair recorded in the case's stream while a finding was open (its `RepairRecorded` event)."""

    action: str
    actor: str | None = None
    reason: str | None = None
    recorded_at: datetime
    #: The event's version in the case's stream (None: a remedy of a subscription or of the checkpoints, kept in
    #: `ops_remedies`).
    version: int | None = None


class Stalled(BaseModel):
    """One reason a case (or a subscription, or the checkpoints) is stalled, since when, and the remedies that
    fit."""

    case_id: str = Field(description="the case's id; for a subscription's finding its id (`sub_...`), for the "
                         "checkpoints' the signer's (host:log)")
    subject: Subject = "case"
    reason: StallReason
    since: datetime | None = None
    detail: str
    remedies: list[Remedy]
    kind: str | None = None
    lead_body: str | None = None
    run_id: str | None = None
    activity_id: str | None = None
    activity_type: str | None = None
    attempts: int | None = Field(default=None, description="attempts so far (a failing step or workflow task)")
    #: The facts `detail` is written from, for readers in another language (the console): the last failure's
    #: message or a pause's reason as Temporal gave them; an idle case's missed due date and last person's act.
    failure: str | None = None
    overdue_since: datetime | None = None
    last_action: datetime | None = None
    #: A failing subscription's owner and where it delivers (scheme, host, path); a late signer's interval (s).
    owner: str | None = None
    target: str | None = None
    every_seconds: int | None = None
    #: What the scheduled scan (`ops.scan`) knows of the finding: when it first and last saw it, how many of its
    #: looks saw it, and the repairs recorded in the case's stream since it first saw it. Empty in a live look.
    first_seen: datetime | None = Field(default=None, description="when the scheduled scan first saw it")
    last_seen: datetime | None = Field(default=None, description="when the scheduled scan last saw it")
    times_seen: int | None = Field(default=None, description="how many looks of the scheduled scan saw it")
    repairs: list[RepairNote] = Field(default_factory=list,
                                      description="the repairs recorded in the case's stream since it was first seen")


def _time(ts: Timestamp) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


async def describe(client: Client, case_id: str, stats: ScanStats | None = None
                   ) -> DescribeWorkflowExecutionResponse | None:
    """Temporal's description of the case's current run (None if there is no such workflow)."""
    if stats is not None:
        stats.describe_calls += 1
        stats.described.add(case_id)
    try:
        return await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id)), timeout=rpc_timeout())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def last_workflow_task_failure(client: Client, case_id: str, run_id: str, stats: ScanStats | None = None
                                     ) -> str:
    """The message of the run's latest workflow task failure (read from the end of its history)."""
    if stats is not None:
        stats.history_calls += 1
    request = GetWorkflowExecutionHistoryReverseRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id, run_id=run_id),
        maximum_page_size=50)
    response = await client.workflow_service.get_workflow_execution_history_reverse(request, timeout=rpc_timeout())
    for event in response.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            return attrs.failure.message or EventType.Name(event.event_type)
    return "the workflow task keeps failing"


async def inspect_case(client: Client, case_id: str, policy: StallPolicy = DEFAULT_POLICY,
                       stats: ScanStats | None = None) -> list[Stalled]:
    """What Temporal shows to be stuck in one case (empty when it runs normally or is not running)."""
    return await stalls_of(client, case_id, await describe(client, case_id, stats), policy, stats)


def running(desc: DescribeWorkflowExecutionResponse | None) -> bool:
    return desc is not None and desc.workflow_execution_info.status == 1  # 1 = RUNNING


def case_attributes(desc: DescribeWorkflowExecutionResponse) -> tuple[str | None, str | None]:
    """The case's kind and lead body, from the search attributes of its description."""
    attrs = decode_search_attributes(desc.workflow_execution_info.search_attributes)
    kind, body = attrs.get("CaseKind") or [None], attrs.get("LeadBody") or [None]
    return (str(kind[0]) if kind[0] else None), (str(body[0]) if body[0] else None)


async def stalls_of(client: Client, case_id: str, desc: DescribeWorkflowExecutionResponse | None,
                    policy: StallPolicy, stats: ScanStats | None = None) -> list[Stalled]:
    """What the description `desc` of a case shows to be stuck (empty when it runs normally or is not running);
    the case's kind and lead body come from its search attributes."""
    if desc is None or not running(desc):
        return []
    kind, body = case_attributes(desc)
    info = desc.workflow_execution_info
    run_id = info.execution.run_id
    found: list[Stalled] = []
    for a in desc.pending_activities:
        failure = a.last_failure.message if a.HasField("last_failure") else ""
        common = {"case_id": case_id, "run_id": run_id, "activity_id": a.activity_id,
                  "activity_type": a.activity_type.name, "attempts": a.attempt, "kind": kind, "lead_body": body}
        if a.paused:
            since = _time(a.pause_info.pause_time) if a.HasField("pause_info") else None
            why = a.pause_info.manual.reason if a.HasField("pause_info") and a.pause_info.HasField("manual") else ""
            found.append(Stalled(**common, reason="activity_paused", since=since or _time(a.scheduled_time),
                                 detail=f"step {a.activity_type.name} is paused" + (f": {why}" if why else ""),
                                 remedies=REMEDIES["activity_paused"], failure=why or None))
        elif a.attempt >= policy.min_attempts:
            found.append(Stalled(**common, reason="activity_failing", since=_time(a.scheduled_time),
                                 detail=f"step {a.activity_type.name} failed {a.attempt - 1} times"
                                        + (f"; last failure: {failure}" if failure else ""),
                                 remedies=REMEDIES["activity_failing"], failure=failure or None))
    if desc.HasField("pending_workflow_task") and desc.pending_workflow_task.attempt >= 2:
        task = desc.pending_workflow_task
        message = await last_workflow_task_failure(client, case_id, run_id, stats)
        found.append(Stalled(case_id=case_id, run_id=run_id, kind=kind, lead_body=body, reason="workflow_task_failing",
                             since=_time(task.original_scheduled_time) or _time(task.scheduled_time),
                             attempts=task.attempt, detail=f"the case's workflow code keeps failing: {message}",
                             remedies=REMEDIES["workflow_task_failing"], failure=message or None))
    return found


def visibility_query(kind: str | None = None, body: str | None = None) -> str:
    """The Temporal list query of the running cases matching the filter, made by `danvan.visibility` (a
    value it cannot put in a query safely is `UnsafeValue`, a ValueError; the API's patterns refuse such
    values with 422 before they get here)."""
    return visibility.query(ExecutionStatus="Running", CaseKind=kind, LeadBody=body)


#: Workflows a page of ListWorkflowExecutions returns.
PAGE_SIZE = 1_000


async def listed(client: Client, query: str, limit: int, stats: ScanStats | None = None
                 ) -> dict[str, tuple[str | None, str | None]]:
    """The workflows visibility lists for `query` (at most `limit`): id -> (case kind, lead body)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    token = b""
    while len(out) < limit:
        began = time.perf_counter()
        page = await client.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(
            namespace=client.namespace, page_size=min(PAGE_SIZE, limit - len(out)), query=query,
            next_page_token=token), timeout=rpc_timeout())
        if stats is not None:
            stats.list_calls += 1
            stats.list_seconds += time.perf_counter() - began
        for wf in page.executions:
            attrs = decode_search_attributes(wf.search_attributes)
            kind, body = attrs.get("CaseKind") or [None], attrs.get("LeadBody") or [None]
            out[wf.execution.workflow_id] = (str(kind[0]) if kind[0] else None, str(body[0]) if body[0] else None)
        token = page.next_page_token
        if not token:
            break
    return out


def _matches(found: Stalled, kind: str | None, body: str | None) -> bool:
    return (kind is None or found.kind == kind) and (body is None or found.lead_body == body)


async def temporal_stalls(client: Client, policy: StallPolicy, *, notes: StepNotes | None = None,
                          kind: str | None = None, body: str | None = None,
                          stats: ScanStats | None = None) -> list[Stalled]:
    """What Temporal shows to be stuck, describing only the workflows its visibility flags and those whose
    steps the worker noted failing (`notes`; without them only the flagged ones: see the module's docstring)."""
    stats = stats if stats is not None else ScanStats()
    flagged = await listed(client, visibility.flagged(ExecutionStatus="Running", CaseKind=kind, LeadBody=body),
                           policy.scan_limit, stats)
    steps = await notes.retrying(policy.min_attempts - 1, policy.scan_limit) if notes is not None else []
    by_case: dict[str, list[RetryingStep]] = {}
    for step in steps:
        by_case.setdefault(step.workflow_id, []).append(step)
    stats.flagged, stats.noted = len(flagged), len(by_case)
    gate = asyncio.Semaphore(policy.concurrency)
    gone: list[RetryingStep] = []

    async def one(case_id: str) -> list[Stalled]:
        async with gate:
            desc = await describe(client, case_id, stats)
            found = await stalls_of(client, case_id, desc, policy, stats)
        run_id = desc.workflow_execution_info.execution.run_id if desc is not None and running(desc) else None
        pending = {a.activity_id for a in desc.pending_activities} if desc is not None and run_id else set()
        mine = by_case.get(case_id, [])
        gone.extend(s for s in mine if s.run_id != run_id or s.activity_id not in pending)
        # A failing step's pending state says when its next attempt is due, not when it started failing: the
        # worker's note says that.
        first = {s.activity_id: s.first_failed_at for s in mine if s.run_id == run_id and s.first_failed_at}
        found = [f.model_copy(update={"since": min(first[f.activity_id], f.since or first[f.activity_id])})
                 if f.reason == "activity_failing" and f.activity_id in first else f for f in found]
        return [s for s in found if _matches(s, kind, body)]

    results = await asyncio.gather(*(one(c) for c in dict.fromkeys([*flagged, *by_case])))
    if notes is not None and gone:
        stats.forgotten = await notes.forget(gone)
    return [s for found in results for s in found]


async def describe_all_stalls(client: Client, policy: StallPolicy, *, kind: str | None = None,
                              body: str | None = None, stats: ScanStats | None = None) -> list[Stalled]:
    """The scan as it was: describe every running case workflow matching the filter (at most `scan_limit`),
    a few at a time. Its cost grows with the running cases, healthy or not."""
    stats = stats if stats is not None else ScanStats()
    running_ids = await listed(client, visibility_query(kind, body), policy.scan_limit, stats)
    gate = asyncio.Semaphore(policy.concurrency)

    async def one(case_id: str) -> list[Stalled]:
        async with gate:
            return await inspect_case(client, case_id, policy, stats)

    results = await asyncio.gather(*(one(c) for c in running_ids))
    return [s for found in results for s in found]


IDLE_SQL = """
SELECT c.case_id, c.kind, c.lead_body, c.due_at, a.last_action
  FROM cases c
 CROSS JOIN LATERAL (SELECT max(e.recorded_at) AS last_action FROM events e
                      WHERE e.stream_id = c.case_id AND (e.actor IS NULL OR e.actor NOT LIKE $2)) a
 WHERE c.overdue
   AND ($3::text IS NULL OR c.kind = $3)
   AND ($4::text IS NULL OR c.lead_body = $4 OR $4 = ANY (c.bodies))
   AND ($5::text[] IS NULL OR c.case_id = ANY ($5))
   AND greatest(c.due_at, a.last_action) < $1
 ORDER BY c.due_at
"""


async def idle_stalls(store: EventStore, policy: StallPolicy, *, now: datetime | None = None,
                      kind: str | None = None, body: str | None = None,
                      case_ids: Iterable[str] | None = None) -> list[Stalled]:
    """Overdue cases on which no person has acted for `policy.idle` (counted from the later of the deadline
    and the last person's event)."""
    now = now or datetime.now(UTC)
    ids = list(case_ids) if case_ids is not None else None
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(IDLE_SQL, now - policy.idle, SYSTEM_ACTORS, kind, body, ids)
    out = []
    for r in rows:
        since = max(t for t in (r["due_at"], r["last_action"]) if t is not None)
        acted = f"last acted on {r['last_action']:%Y-%m-%d %H:%M} UTC" if r["last_action"] else "nobody has acted"
        out.append(Stalled(case_id=r["case_id"], kind=r["kind"], lead_body=r["lead_body"], reason="deadline_idle",
                           since=since, remedies=remedies_for("deadline_idle", r["kind"]),
                           detail=(f"overdue since {r['due_at']:%Y-%m-%d} and {acted}" if r["due_at"] is not None
                                   else f"overdue and {acted}"),
                           overdue_since=r["due_at"], last_action=r["last_action"]))
    return out


async def find_stalled(client: Client, store: EventStore, policy: StallPolicy = DEFAULT_POLICY, *,
                       kind: str | None = None, body: str | None = None, reason: str | None = None,
                       now: datetime | None = None, describe_all: bool = False,
                       stats: ScanStats | None = None) -> list[Stalled]:
    """Every stalled case matching the filter, the longest stalled first (`describe_all`: describing every
    running workflow, as the scan did before visibility flagged them)."""
    found: list[Stalled] = []
    if reason in (None, "activity_failing", "activity_paused", "workflow_task_failing"):
        if describe_all:
            found += await describe_all_stalls(client, policy, kind=kind, body=body, stats=stats)
        else:
            found += await temporal_stalls(client, policy, notes=StepNotes(store), kind=kind, body=body, stats=stats)
    if reason in (None, "deadline_idle"):
        found += await idle_stalls(store, policy, now=now, kind=kind, body=body)
    if kind is None and body is None and reason in (None, *SUBJECT_OF):
        from .subjects import subject_stalls  # subscriptions and checkpoints have no kind or lead body

        found += await subject_stalls(store, now=now)
    if reason is not None:
        found = [s for s in found if s.reason == reason]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda s: (s.since or far, s.case_id))
