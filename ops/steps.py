"""The worker's own record of the steps (activities) it sees failing, for the stalled scan (`ops.stalled`).

Temporal's visibility says which workflows have a workflow task that keeps failing (`TemporalReportedProblems`)
and which have a paused activity (`TemporalPauseInfo`), but nothing of an activity that keeps failing: that is
only in each workflow's DescribeWorkflowExecution. So that the scan need not describe every running workflow to
find those, the worker notes them as it runs them, in the `step_failures` table (migration 0013):

* an attempt that raises writes (or updates) the row of its step, with the attempts failed so far and the
  error's message, unless the error says it is final (a non-retryable `ApplicationError`, or a type its retry
  policy does not retry): Temporal does not retry those, so they do not stall the case;
* an attempt after the first (`activity.info().attempt > 1`) writes the row when it starts, so a step whose
  attempts time out (the worker died, or the step hung past its timeout) is noted too, without a message;
* a retried attempt that succeeds deletes the row.

A step that succeeds at its first attempt, which is every step of a healthy case, touches nothing. The scan
reads the rows of steps that failed at least `min_attempts - 1` times (their next attempt is the
`min_attempts`-th), describes only those workflows, and deletes the rows of steps Temporal no longer holds
pending (retried by an operator and done, the run reset, or the case gone).

What it does not see: a step that never reaches a worker (no worker polls its task queue) writes nothing
here; the case is then not stalled by this definition but the worker is down, which the worker's own health
shows. A worker that cannot write to PostgreSQL at all cannot note its failing steps either (it logs each
note it could not write); the scan, which writes its findings to the same database, then cannot run either,
and its last look's time (`GET /v1/ops/stalled`) says how old the findings are. `danvan stalled --describe-all`
still describes every running case workflow, for such a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from eventstore import EventStore

log = logging.getLogger("danvan.ops.steps")

#: How long noting a step may take: the note must never hold up the step's own answer for long.
NOTE_TIMEOUT = 2.0
#: The longest failure message kept (Temporal keeps the whole of it in the step's pending state).
MESSAGE_MAX = 1_000

FAILED_SQL = """
INSERT INTO step_failures (workflow_id, run_id, activity_id, activity_type, failed_attempts, last_failure)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (workflow_id, run_id, activity_id) DO UPDATE
   SET failed_attempts = EXCLUDED.failed_attempts,
       last_failure = coalesce(EXCLUDED.last_failure, step_failures.last_failure),
       activity_type = EXCLUDED.activity_type,
       last_failed_at = now()
"""
SUCCEEDED_SQL = "DELETE FROM step_failures WHERE workflow_id = $1 AND run_id = $2 AND activity_id = $3"
RETRYING_SQL = """
SELECT workflow_id, run_id, activity_id, activity_type, failed_attempts, last_failure, first_failed_at
  FROM step_failures
 WHERE failed_attempts >= $1
 ORDER BY first_failed_at, workflow_id
 LIMIT $2
"""
FORGET_SQL = """
DELETE FROM step_failures s
 USING unnest($1::text[], $2::text[], $3::text[]) AS k (workflow_id, run_id, activity_id)
 WHERE s.workflow_id = k.workflow_id AND s.run_id = k.run_id AND s.activity_id = k.activity_id
"""


@dataclass(frozen=True)
class RetryingStep:
    """A step the worker saw failing: its workflow, run and activity, and how often it failed."""

    workflow_id: str
    run_id: str
    activity_id: str
    activity_type: str
    failed_attempts: int
    last_failure: str | None
    first_failed_at: datetime | None = None


def final(exc: BaseException, info: activity.Info) -> bool:
    """Whether Temporal will not retry the step after `exc` (so it cannot stall the case by retrying)."""
    if isinstance(exc, (CancelledError, asyncio.CancelledError)):
        return True
    if isinstance(exc, ApplicationError):
        if exc.non_retryable:
            return True
        policy = info.retry_policy
        if policy is not None and exc.type and exc.type in (policy.non_retryable_error_types or ()):
            return True
    policy = info.retry_policy
    return policy is not None and policy.maximum_attempts > 0 and info.attempt >= policy.maximum_attempts


class StepNotes:
    """Writes and reads `step_failures` (see the module's docstring)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def _execute(self, sql: str, *args: Any) -> None:
        try:
            await self.store.pool.execute(sql, *args, timeout=NOTE_TIMEOUT)
        except Exception as exc:  # the step's own outcome matters more than its note
            log.warning("could not note step %s of %s: %s", args[2], args[0], exc)

    async def failed(self, info: activity.Info, failed_attempts: int, message: str | None) -> None:
        await self._execute(FAILED_SQL, info.workflow_id or "", info.workflow_run_id or "", info.activity_id,
                            info.activity_type, failed_attempts, message[:MESSAGE_MAX] if message else None)

    async def succeeded(self, info: activity.Info) -> None:
        await self._execute(SUCCEEDED_SQL, info.workflow_id or "", info.workflow_run_id or "", info.activity_id)

    async def retrying(self, min_failed: int, limit: int) -> list[RetryingStep]:
        """The steps that failed at least `min_failed` times, the longest failing first (at most `limit`)."""
        rows = await self.store.pool.fetch(RETRYING_SQL, min_failed, limit)
        return [RetryingStep(r["workflow_id"], r["run_id"], r["activity_id"], r["activity_type"],
                             r["failed_attempts"], r["last_failure"], r["first_failed_at"]) for r in rows]

    async def forget(self, steps: Iterable[RetryingStep]) -> int:
        """Delete the rows of `steps` (Temporal no longer holds them pending); how many were deleted."""
        keys = list(steps)
        if not keys:
            return 0
        status = await self.store.pool.execute(FORGET_SQL, [k.workflow_id for k in keys], [k.run_id for k in keys],
                                               [k.activity_id for k in keys])
        return int(status.split()[-1])


class StepFailureInterceptor(Interceptor):
    """The worker's interceptor that notes failing steps in `step_failures` (`worker.build_worker` installs it)."""

    def __init__(self, store: EventStore) -> None:
        self.notes = StepNotes(store)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NotingInbound(next, self.notes)


class _NotingInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, notes: StepNotes) -> None:
        super().__init__(next)
        self.notes = notes

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.is_local or not info.workflow_id:
            return await super().execute_activity(input)
        if info.attempt > 1:  # the attempts before this one failed or timed out
            await self.notes.failed(info, info.attempt - 1, None)
        try:
            result = await super().execute_activity(input)
        except BaseException as exc:
            if final(exc, info):
                if info.attempt > 1:
                    await self.notes.succeeded(info)  # over: Temporal will not retry it
            else:
                await self.notes.failed(info, info.attempt, str(exc) or type(exc).__name__)
            raise
        if info.attempt > 1:
            await self.notes.succeeded(info)
        return result
