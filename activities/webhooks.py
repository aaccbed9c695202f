"""Delivering webhooks: the activities of `workflows.subscription`.

`deliver_batch` reads the next events of the feed for a subscription, held to its owner's scope and its filter
as `GET /v1/events` holds them (`api.feed.read_page`), and POSTs them to its URL one event per request, strictly
in feed order, one at a time: so a later event of a case is never delivered before an earlier one. It stops at
the first event the receiver does not accept (anything but a 2xx answer in time) and hands back how far it got;
the workflow waits and sends that event again (its backoff, up to the policy's `retry_for`). Every attempt is
recorded in `deliveries`. It reads page after page for up to `busy` seconds; when there is nothing more to deliver,
it waits for the feed to move (`api.feed.FeedWatcher`: one poll of the feed's head every 100 ms for all the
subscriptions of the worker that wait) and goes on, and hands back after `wait` seconds without a new event. So
a subscription that keeps up costs its workflow one activity a `wait`, not one an event.

A request carries the Standard Webhooks headers: `webhook-id` (the event's id, the same on every attempt, so a
receiver drops a repeat), `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`
(`api.subscriptions.sign`). Its body is the event as the feed shows it, with the feed cursor just after it
(`POST /v1/subscriptions/{id}/replay?from=` takes it):

    {"type": "AcceptanceDecided", "timestamp": "<occurred_at>", "data": {<the feed's event>, "cursor": "f1..."}}

The activity records every attempt with the event's place and its own name (workflow run and activity id),
so an attempt that is retried (a worker lost mid-batch) goes on just after the last event it had delivered
instead of sending the batch again: at most the request under way when the worker was lost is sent twice, one
after the other. About once a second it heartbeats, adds what it delivered to the subscription's row, and reads
the row's `revision`, which it also reads before each page: when the subscription was changed (paused,
deleted, another URL or filter) it stops there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
from pydantic import BaseModel
from temporalio import activity

from activities import delivery_hooks
from activities.webhook_types import BatchInput, BatchResult, Failure, MarkFailing, Progress, WebhookPolicy
from api.feed import CursorCodec, FeedFilter, FeedWatcher, read_page, record_reads, scope_of, shown
from api.outbound import OutboundPolicy, webhook_client
from api.subscriptions import SecretBox, SubscriptionRow, get_subscription, owner_active, sign
from eventstore import EventStore, EventStoreError, FeedCursor, RecordedEvent
from eventstore.store import translate_errors

#: At most this many bytes of a receiver's answer are read (the body is not kept: only its status counts).
MAX_ANSWER = 64 * 1024
#: How often a waiting batch looks at its subscription (paused, deleted, changed?) and heartbeats (seconds).
LOOK_EVERY = 1.0


class _Attempt(BaseModel):
    status_code: int | None = None
    error: str | None = None
    started_at: datetime
    latency_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def webhook_body(event: RecordedEvent, cursor: str) -> bytes:
    """The body of the request that delivers `event` (the feed's JSON of it, and the cursor after it)."""
    from api.routes.events import _row  # the feed's own JSON of an event, so both say the same

    row = _row(event)  # its times at +07:00, as every answer of the API writes them
    return orjson.dumps({"type": event.type, "timestamp": row["occurred_at"], "data": {**row, "cursor": cursor}})


class WebhookActivities:
    """Holds the store, the keys derived from the installation's secret, and which hosts may be called; built
    once in `worker.py`."""

    def __init__(self, store: EventStore, secret: bytes, outbound: OutboundPolicy) -> None:
        self.store = store
        self.box = SecretBox(secret)
        self.cursors = CursorCodec(secret)
        self.outbound = outbound
        self.watcher = FeedWatcher(store.pool)

    @activity.defn(name="deliver_webhooks")
    async def deliver_batch(self, request: BatchInput) -> BatchResult:
        info = activity.info()
        batch = _Batch(self, request, f"{info.workflow_run_id}/{info.activity_id}")
        if info.heartbeat_details:  # a retried attempt: its last heartbeat says how far the one before got
            progress = Progress.model_validate(info.heartbeat_details[0])
            batch.cursor, batch.delivered = progress.cursor, progress.delivered
        if info.attempt > 1:  # heartbeats are seconds apart; the deliveries say exactly where it got
            batch.cursor = max(batch.cursor, await self._delivered_by(request.subscription_id, batch.me), key=_key)
        try:
            return await batch.run()
        finally:
            with contextlib.suppress(Exception):
                await batch.flush()

    async def _delivered_by(self, subscription_id: str, me: str) -> FeedCursor:
        """The place of the last event the activity `me` delivered (the start when none)."""
        with translate_errors():
            row = await self.store.pool.fetchrow(
                "SELECT feed_tx, feed_position FROM deliveries WHERE subscription_id = $1 AND delivered_by = $2 "
                "AND status_code BETWEEN 200 AND 299 ORDER BY id DESC LIMIT 1", subscription_id, me)
        return FeedCursor(transaction_id=row["feed_tx"], position=row["feed_position"]) if row else FeedCursor()

    async def _send(self, http: httpx.AsyncClient, row: SubscriptionRow, secret: str, event: RecordedEvent,
                    cursor: str, policy: WebhookPolicy) -> _Attempt:
        body = webhook_body(event, cursor)
        msg_id = str(event.event_id)
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(secret, msg_id, timestamp, body)}
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(policy.request_timeout + 1.0):  # httpx bounds each phase; this, the whole
                async with http.stream("POST", row.url, content=body, headers=headers) as answer:
                    status = answer.status_code
                    read = 0
                    async for chunk in answer.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_ANSWER:
                            break
            if status is not None and 300 <= status < 400:
                error = f"redirect to {answer.headers.get('location', '?')!r} not followed"
        except (TimeoutError, httpx.TimeoutException):
            error = f"no answer within {policy.request_timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        seconds = time.perf_counter() - clock
        delivery_hooks.delivered(seconds, status)
        return _Attempt(status_code=status, error=error, started_at=started_at, latency_ms=round(seconds * 1000, 3))

    async def _record(self, row: SubscriptionRow, event: RecordedEvent, attempt: int, outcome: _Attempt,
                      place: FeedCursor, by: str) -> bool:
        """Record an attempt; False when the subscription is gone."""
        try:
            with translate_errors():
                found = await self.store.pool.fetchval(
                    "INSERT INTO deliveries (subscription_id, event_id, case_id, event_type, attempt, status_code, "
                    "error, started_at, latency_ms, feed_tx, feed_position, delivered_by) "
                    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 "
                    "WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = $1) RETURNING true",
                    row.id, event.event_id, event.stream_id, event.type, attempt, outcome.status_code,
                    outcome.error, outcome.started_at, outcome.latency_ms, place.transaction_id, place.position, by,
                )
        except EventStoreError as exc:
            if isinstance(exc.__cause__, asyncpg.ForeignKeyViolationError):  # deleted meanwhile
                return False
            raise
        return bool(found)

    async def _progress(self, subscription_id: str, delivered: int, place: FeedCursor | None
                        ) -> tuple[int, str] | None:
        """Add `delivered` events up to `place` to the row's progress (nothing written when none); the row's
        revision and status, or None when it is gone."""
        with translate_errors():
            if delivered == 0 or place is None:
                found = await self.store.pool.fetchrow(
                    "SELECT revision, status FROM subscriptions WHERE id = $1", subscription_id)
            else:
                found = await self.store.pool.fetchrow(
                    "UPDATE subscriptions SET delivered_count = delivered_count + $2, delivered_tx = $3, "
                    "delivered_position = $4, delivered_at = now() WHERE id = $1 RETURNING revision, status",
                    subscription_id, delivered, place.transaction_id, place.position)
        return (int(found["revision"]), str(found["status"])) if found is not None else None

    async def _set_failing(self, subscription_id: str, reason: str) -> bool:
        with translate_errors():
            changed = await self.store.pool.fetchval(
                "UPDATE subscriptions SET status = 'failing', status_reason = $2, status_changed_at = now(), "
                "revision = revision + 1, updated_at = now() WHERE id = $1 AND status = 'active' RETURNING true",
                subscription_id, reason[:2000],
            )
        return bool(changed)

    @activity.defn(name="mark_subscription_failing")
    async def mark_failing(self, request: MarkFailing) -> bool:
        """Mark an active subscription failing, saying why (a paused one stays paused); whether it was."""
        return await self._set_failing(request.subscription_id, request.reason)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.watcher.close()


def _key(cursor: FeedCursor) -> tuple[int, int]:
    return cursor.transaction_id, cursor.position


class _Batch:
    """One run of `deliver_batch`: where it is, what it delivered, when it last told the row and Temporal."""

    def __init__(self, hooks: WebhookActivities, request: BatchInput, me: str) -> None:
        self.hooks = hooks
        self.request = request
        self.me = me
        self.cursor = request.cursor
        self.delivered = 0
        self.unflushed = 0  # delivered and not yet added to the row's progress
        self.place: FeedCursor | None = None  # of the last event delivered
        self.loop = asyncio.get_running_loop()
        self.looked = self.loop.time()
        self.revision = 0

    def result(self, **fields: object) -> BatchResult:
        return BatchResult(cursor=self.cursor, delivered=self.delivered, **fields)

    async def flush(self) -> tuple[int, str] | None:
        """Tell the row how far it got (and read its revision and status); heartbeat with the progress."""
        now = await self.hooks._progress(self.request.subscription_id, self.unflushed, self.place)
        self.unflushed = 0
        self.looked = self.loop.time()
        activity.heartbeat(Progress(cursor=self.cursor, delivered=self.delivered))
        return now

    async def look(self) -> BatchResult | None:
        """The result to hand back when the subscription was changed or deleted (one read of its row)."""
        now = await self.hooks._progress(self.request.subscription_id, 0, None)
        if now is None:
            return self.result(state="gone")
        if now[0] != self.revision:
            return self.result(state=now[1])
        return None

    async def changed(self, every: float = LOOK_EVERY) -> BatchResult | None:
        """About once `every` seconds: the result to hand back when the subscription was changed or deleted."""
        if self.loop.time() - self.looked < every:
            return None
        now = await self.flush()
        if now is None:
            return self.result(state="gone")
        if now[0] != self.revision:
            return self.result(state=now[1])
        return None

    async def run(self) -> BatchResult:  # noqa: C901  (the delivery loop, to be split into its page and event steps)
        hooks, request, pool = self.hooks, self.request, self.hooks.store.pool
        row = await get_subscription(pool, request.subscription_id)
        if row is None:
            return self.result(state="gone")
        if row.status != "active":
            return self.result(state=row.status)
        self.revision = row.revision
        policy = request.policy
        filters = FeedFilter(kinds=tuple(row.kinds) if row.kinds else None,
                             types=tuple(row.types) if row.types else None,
                             bodies=tuple(row.bodies) if row.bodies else None, **scope_of(row.owner))
        loop = self.loop
        started = idle_since = loop.time()
        secret = hooks.box.open(row.id, row.secret_nonce, row.secret_sealed)
        async with webhook_client(hooks.outbound, timeout=policy.request_timeout, max_connections=1) as http:
            while True:
                page = await read_page(pool, self.cursor, policy.batch, filters)
                if not page.events:  # nothing yet: wait for the feed to move, up to `wait` seconds
                    self.cursor = page.cursor
                    if not page.caught_up:  # a filtered read that matched nothing in its window: read on
                        if loop.time() - started > policy.busy:
                            return self.result()
                        if (stop := await self.changed()) is not None:
                            return stop
                        continue
                    left = idle_since + policy.wait - loop.time()
                    if left <= 0 or loop.time() - started > policy.busy + policy.wait:
                        return self.result(caught_up=True)
                    await hooks.watcher.wait_past(self.cursor, min(left, LOOK_EVERY))
                    if (stop := await self.changed()) is not None:
                        return stop
                    continue

                if (stop := await self.look()) is not None:  # before every page: paused? deleted? changed?
                    return stop
                if not await owner_active(pool, row):  # looked at before every page it is shown
                    await hooks._set_failing(row.id, f"the owner ({row.owner_role} {row.owner_label!r}) has no "
                                             "active token left: nothing is delivered until it has one and the "
                                             "subscription is resumed")
                    return self.result(state="failing")
                events = shown(page.events)
                await record_reads(pool, events, row.owner, "webhook")
                for event in events:
                    place = FeedCursor(transaction_id=event.transaction_id, position=event.position)
                    attempt = request.head_attempt if str(event.event_id) == request.head_event_id else 1
                    outcome = await hooks._send(http, row, secret, event, hooks.cursors.encode(place), policy)
                    if not await hooks._record(row, event, attempt, outcome, place, self.me):
                        return self.result(state="gone")
                    if not outcome.ok:
                        return self.result(failure=Failure(
                            event_id=str(event.event_id), case_id=event.stream_id, attempt=attempt,
                            status_code=outcome.status_code, error=outcome.error))
                    self.cursor, self.place = place, place
                    self.delivered += 1
                    self.unflushed += 1
                    if (stop := await self.changed()) is not None:
                        return stop
                    if loop.time() - started > policy.busy:
                        return self.result()
                # Every event of the page went: on after the page (past the end of its window when it was filtered).
                self.cursor = page.cursor
                idle_since = loop.time()
