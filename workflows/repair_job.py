"""`RepairJobWorkflow`: one bulk repair (workflow id `repair-job-<job id>`), `ops.jobs`.

The job's cases are in its input, fixed when it was made; the workflow works through them in order, one
`repair_job_case` activity each, at most `rate` a second (timers, so the rate holds on replay and across a
worker's crash: see `Pace`), and counts each outcome. A job that needs a second operator's approval waits for it
first. Its decisions are Updates, each with its operator and reason, each refused by its validator when it does
not apply (so a refusal never enters the history): `approve` and `reject` while it awaits approval (never by its
requester), `pause` while it runs, `resume` while paused, `cancel` until it ends. Each is written into the job's
row and its actions (`record_repair_job_action`) before the Update answers. A cancelled job stops after the case
under way; a paused one before the next. It continues as new every `continue_after` cases (100), its place, counts and
approval in its input.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ops.job_types import (
        ROLE_RULE,
        SELF_APPROVAL,
        STATE_RULE,
        ActionRecord,
        Approval,
        CaseResult,
        CaseTask,
        JobActionName,
        JobDecision,
        JobProgress,
        JobStart,
        JobState,
    )

#: A case's repair is tried again while its Temporal calls or the database fail (the activity counts the case as
#: failed after its fifth failing Temporal call); a worker lost mid-case is noticed by the missing heartbeat.
CASE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30))
CASE_TIMEOUT = timedelta(minutes=2)
CASE_HEARTBEAT = timedelta(seconds=10)
RECORD_TIMEOUT = timedelta(seconds=30)


#: The shortest wait between two cases. Temporal fires a timer no sooner than about a second (the dev server's
#: timers of 50 ms take a second), so a job faster than a case a second goes on without waiting until it is a
#: second or more ahead of its rate, then waits until it is back on it.
MIN_WAIT = timedelta(seconds=1)


class Pace:
    """A job's rate from `since`: the n-th case after it starts no sooner than `since + n / rate`, give or take
    the second a timer needs (so over any span, at most `rate` cases a second and `rate` more)."""

    def __init__(self, since: datetime, rate: float) -> None:
        self.since = since
        self.rate = rate
        self.done = 0

    def ahead(self, now: datetime) -> timedelta | None:
        """Count a case done; how long to wait before the next (None: go on now)."""
        self.done += 1
        wait = self.since + timedelta(seconds=self.done / self.rate) - now
        return wait if wait >= MIN_WAIT else None


@workflow.defn
class RepairJobWorkflow:
    @workflow.init
    def __init__(self, start: JobStart) -> None:
        self.spec = start.spec
        self.state: JobState = start.state
        self.next = start.next
        self.counts = start.counts
        self.seq = start.seq
        self.approval = start.approval
        self.opened = start.opened
        self.continue_after = start.continue_after
        self.poked = False

    # -- decisions --------------------------------------------------------------------------------------------

    def _check(self, decision: JobDecision, *states: JobState) -> None:
        if not decision.may_decide:
            raise ApplicationError(f"only an operator may decide on a job (not {decision.actor.role})",
                                   type=ROLE_RULE, non_retryable=True)
        if self.state not in states:
            raise ApplicationError(f"job {self.spec.job_id} is {self.state}: this needs a job that is "
                                   f"{' or '.join(states)}", type=STATE_RULE, non_retryable=True)

    @workflow.update
    async def approve(self, decision: JobDecision) -> JobProgress:
        self.approval = Approval(by=decision.actor.label, reason=decision.reason, at=workflow.now())
        return await self._decide("approve", decision, "running", decided=True, started=True)

    @approve.validator
    def _approve(self, decision: JobDecision) -> None:
        self._check(decision, "awaiting_approval")
        if decision.actor.id == self.spec.requester.id:
            raise ApplicationError(f"{decision.actor.label} requested job {self.spec.job_id}: a second operator "
                                   "must approve it", type=SELF_APPROVAL, non_retryable=True)

    @workflow.update
    async def reject(self, decision: JobDecision) -> JobProgress:
        return await self._decide("reject", decision, "rejected", decided=True, finished=True)

    @reject.validator
    def _reject(self, decision: JobDecision) -> None:
        self._check(decision, "awaiting_approval")

    @workflow.update
    async def pause(self, decision: JobDecision) -> JobProgress:
        return await self._decide("pause", decision, "paused")

    @pause.validator
    def _pause(self, decision: JobDecision) -> None:
        self._check(decision, "running")

    @workflow.update
    async def resume(self, decision: JobDecision) -> JobProgress:
        return await self._decide("resume", decision, "running")

    @resume.validator
    def _resume(self, decision: JobDecision) -> None:
        self._check(decision, "paused")

    @workflow.update
    async def cancel(self, decision: JobDecision) -> JobProgress:
        return await self._decide("cancel", decision, "cancelled")

    @cancel.validator
    def _cancel(self, decision: JobDecision) -> None:
        self._check(decision, "awaiting_approval", "running", "paused")

    @workflow.query
    def progress(self) -> JobProgress:
        return JobProgress(job_id=self.spec.job_id, state=self.state, total=len(self.spec.case_ids),
                           next=self.next, counts=self.counts, approval=self.approval)

    async def _decide(self, action: JobActionName, decision: JobDecision, state: JobState, *,
                      decided: bool = False, started: bool = False, finished: bool = False) -> JobProgress:
        self.state = state
        self.poked = True
        await self._record(action, decision.actor.label, decision.reason, decided=decided, started=started,
                           finished=finished)
        return self.progress()

    async def _record(self, action: JobActionName, actor: str, reason: str | None, *, decided: bool = False,
                      started: bool = False, finished: bool = False) -> None:
        self.seq += 1
        record = ActionRecord(job_id=self.spec.job_id, seq=self.seq, action=action, actor=actor, reason=reason,
                              at=workflow.now(), state=self.state, decided=decided, started=started,
                              finished=finished)
        await workflow.execute_activity("record_repair_job_action", record, start_to_close_timeout=RECORD_TIMEOUT,
                                        retry_policy=CASE_RETRY)

    # -- the run ----------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: JobStart) -> JobProgress:
        if not self.opened:
            await workflow.execute_activity("open_repair_job", self.spec, start_to_close_timeout=RECORD_TIMEOUT,
                                            retry_policy=CASE_RETRY, result_type=bool)
            self.opened = True
        await workflow.wait_condition(lambda: self.state != "awaiting_approval")
        done_in_run = 0
        pace = Pace(workflow.now(), self.spec.rate)
        while self.next < len(self.spec.case_ids):
            if self.state == "paused":
                await workflow.wait_condition(lambda: self.state != "paused")
                pace = Pace(workflow.now(), self.spec.rate)  # the rate counts from the resumption
            if self.state != "running":
                break
            await self._repair_next()
            done_in_run += 1
            if self.next >= len(self.spec.case_ids):
                break
            if done_in_run >= self.continue_after or workflow.info().is_continue_as_new_suggested():
                await self._continue()
            ahead = pace.ahead(workflow.now())
            if ahead is not None:
                await self._wait(ahead)
        if self.state in ("running", "paused"):
            self.state = "completed"
        if self.state != "rejected":
            await self._record("complete", "system:danvan", None, finished=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def _repair_next(self) -> None:
        position = self.next
        task = CaseTask(job_id=self.spec.job_id, position=position, case_id=self.spec.case_ids[position],
                        action=self.spec.action, body=self.spec.body, reason=self.spec.reason,
                        requester=self.spec.requester, note=self._note())
        result = await workflow.execute_activity(
            "repair_job_case", task, result_type=CaseResult, start_to_close_timeout=CASE_TIMEOUT,
            heartbeat_timeout=CASE_HEARTBEAT, retry_policy=CASE_RETRY)
        self.counts = self.counts.add(result.outcome)
        self.next = position + 1

    def _note(self) -> dict[str, str]:
        note = {"job": self.spec.job_id, "requested_by": self.spec.requester.label}
        if self.approval is not None:
            note |= {"approved_by": self.approval.by, "approval_reason": self.approval.reason}
        return note

    async def _wait(self, timeout: timedelta) -> None:
        """The wait between two cases: over sooner when a decision comes (a pause or a cancellation)."""
        self.poked = False
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self.poked, timeout=timeout)

    async def _continue(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(JobStart(spec=self.spec, state=self.state, next=self.next, counts=self.counts,
                                          seq=self.seq, approval=self.approval, opened=True,
                                          continue_after=self.continue_after))
