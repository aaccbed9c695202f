"""`SubscriptionWorkflow`: delivers one webhook subscription (workflow id `subscription-<subscription id>`).

The workflow holds the subscription's place in the feed (its cursor) and runs one batch after another
(`activities.webhooks.deliver_batch`, named
`deliver_webhooks`): each delivers the next events strictly in feed order, one request at a
time, and hands back how far it got. So a worker crash, an API restart or a receiver down for hours loses
nothing: the cursor is in the workflow's state, and only moves past an event the receiver accepted.

An event the receiver does not accept is sent again after a wait that doubles from `backoff_first` up to
`backoff_max`; when it has been tried for `retry_for` (3 days by default) the subscription is marked failing
and nothing more is sent until an operator or its owner resumes it (`PATCH status=active`: the event is tried
again at once, for another `retry_for`) or replays it from another cursor.

What the workflow is told:
- `look_again` (a signal, after every change the API stores: paused, resumed, another URL or filter, deleted):
  the next batch starts now and reads the subscription as it is;
- `replay` (an update): the cursor moves there; a failing subscription is tried again.
A paused or failing subscription looks at its row again every `recheck` seconds even if nobody says so, so a
change stored while Temporal was unreachable is seen. It continues as new every `continue_after` batches, the
cursor, the failing event's attempts and the counts in its input.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.webhook_types import BatchInput, BatchResult, Failure, MarkFailing, WebhookPolicy
    from eventstore.models import FeedCursor

#: A batch that fails (the database down, the worker lost) is tried again until it goes: nothing is skipped.
BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30))


def subscription_workflow_id(subscription_id: str) -> str:
    return f"subscription-{subscription_id}"


class HeadFailure(BaseModel):
    """The event the receiver has not accepted yet: how often it was tried, since when, and the last outcome."""

    event_id: str
    attempts: int
    since: datetime
    last: str


class SubscriptionStart(BaseModel):
    subscription_id: str
    cursor: FeedCursor = FeedCursor()
    policy: WebhookPolicy = WebhookPolicy()
    waiting: Literal["paused", "failing"] | None = None
    head: HeadFailure | None = None
    delivered: int = 0


class SubscriptionProgress(BaseModel):
    """What the workflow holds: its cursor, whether it waits (paused or failing), the event it is retrying."""

    subscription_id: str
    cursor: FeedCursor
    waiting: Literal["paused", "failing"] | None
    head: HeadFailure | None
    delivered: int
    batches: int


@workflow.defn
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, start: SubscriptionStart) -> None:
        self.subscription_id = start.subscription_id
        self.cursor = start.cursor
        self.policy = start.policy
        self.waiting = start.waiting
        self.head = start.head
        self.delivered = start.delivered
        self.batches = 0
        self.poked = False
        self.replay_to: FeedCursor | None = None

    @workflow.signal
    def look_again(self) -> None:
        """The subscription was changed: read it again now."""
        self.poked = True

    @workflow.update
    def replay(self, cursor: FeedCursor) -> None:
        """Deliver again from `cursor` (the events after it), whatever was delivered."""
        self.replay_to = cursor

    @workflow.query
    def progress(self) -> SubscriptionProgress:
        return SubscriptionProgress(subscription_id=self.subscription_id, cursor=self.cursor, waiting=self.waiting,
                                    head=self.head, delivered=self.delivered, batches=self.batches)

    @workflow.run
    async def run(self, start: SubscriptionStart) -> SubscriptionProgress:
        while True:
            self._take_replay()
            if self.waiting is not None:
                await self._pause(timedelta(seconds=self.policy.recheck))
                self._take_replay()
                if self.waiting == "failing" and self.head is not None:
                    # Resumed: the event it gave up on is tried again, for another `retry_for`.
                    self.head = self.head.model_copy(update={"since": workflow.now()})
            result = await self._batch()
            self.batches += 1
            if result is not None:
                if result.state == "gone":
                    return self.progress()
                await self._apply(result)
            info = workflow.info()
            if self.batches >= self.policy.continue_after or info.is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._take_replay()
                workflow.continue_as_new(SubscriptionStart(
                    subscription_id=self.subscription_id, cursor=self.cursor, policy=self.policy,
                    waiting=self.waiting, head=self.head, delivered=self.delivered))

    def _take_replay(self) -> None:
        if self.replay_to is not None:
            self.cursor, self.replay_to, self.head = self.replay_to, None, None

    async def _pause(self, timeout: timedelta) -> None:
        """Wait `timeout`, or less when told to look again or to replay."""
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self.poked or self.replay_to is not None, timeout=timeout)
        self.poked = False

    async def _batch(self) -> BatchResult | None:
        """One batch; None when a replay stopped it before it could say how far it got."""
        policy = self.policy
        request = BatchInput(subscription_id=self.subscription_id, cursor=self.cursor, policy=policy,
                             head_event_id=self.head.event_id if self.head else None,
                             head_attempt=self.head.attempts + 1 if self.head else 1)
        self.poked = False  # the batch reads the subscription as it is now
        handle = workflow.start_activity(
            "deliver_webhooks", request, result_type=BatchResult,
            start_to_close_timeout=timedelta(seconds=policy.wait + policy.busy + policy.request_timeout + 60),
            heartbeat_timeout=timedelta(seconds=policy.request_timeout + 20),
            retry_policy=BATCH_RETRY,
            # Never two batches at once: a replay waits for the one under way to stop (it stops within a
            # second, seeing the subscription's revision move).
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: handle.done() or self.replay_to is not None)
        if not handle.done():
            handle.cancel()
        try:
            result: BatchResult = await handle
            return result
        except ActivityError:
            return None

    async def _apply(self, result: BatchResult) -> None:
        replayed = self.replay_to is not None
        if not replayed:
            self.cursor = result.cursor
        self.delivered += result.delivered
        if result.state in ("paused", "failing"):
            self.waiting = result.state
            return
        self.waiting = None
        if replayed:
            return
        if result.failure is None:
            if result.delivered:  # the event it was retrying went first
                self.head = None
            return
        await self._failed(result.failure)

    async def _failed(self, failure: Failure) -> None:
        now = workflow.now()
        if self.head is None or self.head.event_id != failure.event_id:
            self.head = HeadFailure(event_id=failure.event_id, attempts=failure.attempt, since=now,
                                    last=failure.describe())
        else:
            self.head = self.head.model_copy(update={"attempts": failure.attempt, "last": failure.describe()})
        tried_for = now - self.head.since
        policy = self.policy
        if tried_for >= timedelta(seconds=policy.retry_for):
            reason = (f"gave up after {self.head.attempts} attempts over {_span(tried_for)}: {self.head.last}")
            await workflow.execute_activity(
                "mark_subscription_failing", MarkFailing(subscription_id=self.subscription_id, reason=reason),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=BATCH_RETRY, result_type=bool,
            )
            self.waiting = "failing"
            return
        backoff = min(policy.backoff_first * 2 ** min(self.head.attempts - 1, 40), policy.backoff_max)
        left = policy.retry_for - tried_for.total_seconds()
        await self._pause(timedelta(seconds=max(0.001, min(backoff, left))))


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds} s"
