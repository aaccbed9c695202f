"""Finding stalled cases: what Temporal says of each running case workflow, and what the record says of the
overdue ones.

A case is stalled when
* `activity_failing`: a step (activity) keeps failing: it is at its `min_attempts`-th attempt or later;
* `activity_paused`: a step was paused (by an operator or by the server);
* `workflow_task_failing`: the workflow's own code keeps failing (a bug, or a change that is not
  deterministic): its pending workflow task is at its second attempt or later;
* `deadline_idle`: a deadline has passed and no person has acted on the case for `idle`.

Temporal's side is read with DescribeWorkflowExecution (pending activities and workflow task), over the
running workflows that Temporal's visibility lists for the filter. The record's side is one SQL query over
the `cases` projection and the events. Each finding names the remedy that fits (`ops.repairs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
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
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from danvan import visibility
from danvan.waits import rpc_timeout
from eventstore import EventStore

StallReason = Literal["activity_failing", "activity_paused", "workflow_task_failing", "deadline_idle"]
Remedy = Literal["retry", "reset", "nudge", "reassign"]

#: The remedies that fit each reason, the first one first.
REMEDIES: dict[str, list[Remedy]] = {
    "activity_failing": ["retry", "reset"],
    "activity_paused": ["retry"],
    "workflow_task_failing": ["reset"],
    "deadline_idle": ["nudge", "reassign"],
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
    """When a case counts as stalled. `scan_limit` bounds how many running workflows one look describes."""

    min_attempts: int = 3
    idle: timedelta = timedelta(days=2)
    scan_limit: int = 2_000
    concurrency: int = 16


DEFAULT_POLICY = StallPolicy()

class Stalled(BaseModel):
    """One reason a case is stalled, since when, and the remedies that fit."""

    case_id: str
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


def _time(ts: Timestamp) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


async def describe(client: Client, case_id: str) -> DescribeWorkflowExecutionResponse | None:
    """Temporal's description of the case's current run (None if there is no such workflow)."""
    try:
        return await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id)), timeout=rpc_timeout())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def last_workflow_task_failure(client: Client, case_id: str, run_id: str) -> str:
    """The message of the run's latest workflow task failure (read from the end of its history)."""
    request = GetWorkflowExecutionHistoryReverseRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id, run_id=run_id),
        maximum_page_size=50)
    response = await client.workflow_service.get_workflow_execution_history_reverse(request, timeout=rpc_timeout())
    for event in response.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            return attrs.failure.message or EventType.Name(event.event_type)
    return "the workflow task keeps failing"


async def inspect_case(client: Client, case_id: str, policy: StallPolicy = DEFAULT_POLICY) -> list[Stalled]:
    """What Temporal shows to be stuck in one case (empty when it runs normally or is not running)."""
    desc = await describe(client, case_id)
    if desc is None or desc.workflow_execution_info.status != 1:  # 1 = RUNNING
        return []
    info = desc.workflow_execution_info
    run_id = info.execution.run_id
    found: list[Stalled] = []
    for a in desc.pending_activities:
        failure = a.last_failure.message if a.HasField("last_failure") else ""
        common = {"case_id": case_id, "run_id": run_id, "activity_id": a.activity_id,
                  "activity_type": a.activity_type.name, "attempts": a.attempt}
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
        message = await last_workflow_task_failure(client, case_id, run_id)
        found.append(Stalled(case_id=case_id, run_id=run_id, reason="workflow_task_failing",
                             since=_time(task.original_scheduled_time) or _time(task.scheduled_time),
                             attempts=task.attempt, detail=f"the case's workflow code keeps failing: {message}",
                             remedies=REMEDIES["workflow_task_failing"], failure=message or None))
    return found


def visibility_query(kind: str | None = None, body: str | None = None) -> str:
    """The Temporal list query of the running cases matching the filter, made by `danvan.visibility` (a
    value it cannot put in a query safely is `UnsafeValue`, a ValueError; the API's patterns refuse such
    values with 422 before they get here)."""
    return visibility.query(ExecutionStatus="Running", CaseKind=kind, LeadBody=body)


async def _running(client: Client, query: str, limit: int) -> list[tuple[str, str | None, str | None]]:
    out: list[tuple[str, str | None, str | None]] = []
    async for wf in client.list_workflows(query, limit=limit, rpc_timeout=rpc_timeout()):
        sa = wf.search_attributes
        kind = sa.get("CaseKind", [None])[0]
        body = sa.get("LeadBody", [None])[0]
        out.append((wf.id, str(kind) if kind else None, str(body) if body else None))
    return out


async def temporal_stalls(client: Client, policy: StallPolicy, *, kind: str | None = None,
                          body: str | None = None) -> list[Stalled]:
    """Describe every running case workflow matching the filter (at most `scan_limit`), a few at a time."""
    running = await _running(client, visibility_query(kind, body), policy.scan_limit)
    gate = asyncio.Semaphore(policy.concurrency)

    async def one(case_id: str, k: str | None, b: str | None) -> list[Stalled]:
        async with gate:
            found = await inspect_case(client, case_id, policy)
        return [s.model_copy(update={"kind": k, "lead_body": b}) for s in found]

    results = await asyncio.gather(*(one(*r) for r in running))
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
                           detail=f"overdue since {r['due_at']:%Y-%m-%d} and {acted}",
                           overdue_since=r["due_at"], last_action=r["last_action"]))
    return out


async def find_stalled(client: Client, store: EventStore, policy: StallPolicy = DEFAULT_POLICY, *,
                       kind: str | None = None, body: str | None = None, reason: str | None = None,
                       now: datetime | None = None) -> list[Stalled]:
    """Every stalled case matching the filter, the longest stalled first."""
    found: list[Stalled] = []
    if reason in (None, "activity_failing", "activity_paused", "workflow_task_failing"):
        found += await temporal_stalls(client, policy, kind=kind, body=body)
    if reason in (None, "deadline_idle"):
        found += await idle_stalls(store, policy, now=now, kind=kind, body=body)
    if reason is not None:
        found = [s for s in found if s.reason == reason]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda s: (s.since or far, s.case_id))
