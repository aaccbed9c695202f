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

The activity heartbeats after each event with how far it got, and records it with the delivery, so an attempt
that is retried (a worker lost mid-batch) goes on just after the last event accepted instead of sending the
batch again: at most the request under way when the worker was lost is sent twice, one after the other. It
stops early when the subscription changes (its `revision`: paused, deleted, another URL or filter), which it
checks with every delivery it records and every second while waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import httpx
import orjson
from pydantic import BaseModel
from temporalio import activity

from activities.webhook_types import BatchInput, BatchResult, Failure, MarkFailing, Progress, WebhookPolicy
from api.feed import CursorCodec, FeedFilter, FeedWatcher, read_page, record_reads, scope_of, shown
from api.outbound import OutboundPolicy, webhook_client
from api.subscriptions import SecretBox, SubscriptionRow, get_subscription, owner_active, sign
from eventstore import EventStore, FeedCursor, RecordedEvent
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

    return orjson.dumps({"type": event.type, "timestamp": event.occurred_at,
                         "data": {**_row(event), "cursor": cursor}}, option=orjson.OPT_UTC_Z)


class WebhookActivities:
    """Holds the store, the keys derived from the installation's secret, and which hosts may be called; built
    once in `worker.py`."""

    def __init__(self, store: EventStore, secret: bytes, outbound: OutboundPolicy) -> None:
        self.store = store
        self.box = SecretBox(secret)
        self.cursors = CursorCodec(secret)
        self.outbound = outbound
        self.watcher = FeedWatcher(store.pool)

    async def _look(self, subscription_id: str) -> tuple[int, str] | None:
        """The subscription's revision and status now; None when it was deleted."""
        with translate_errors():
            row = await self.store.pool.fetchrow("SELECT revision, status FROM subscriptions WHERE id = $1",
                                                 subscription_id)
        return (int(row["revision"]), str(row["status"])) if row is not None else None

    @activity.defn(name="deliver_webhooks")
    async def deliver_batch(self, request: BatchInput) -> BatchResult:
        info = activity.info()
        me = f"{info.workflow_run_id}/{info.activity_id}"
        cursor, delivered = request.cursor, 0
        if info.heartbeat_details:  # a retried attempt: its last heartbeat says how far the one before got
            progress = Progress.model_validate(info.heartbeat_details[0])
            cursor, delivered = progress.cursor, progress.delivered
        row = await get_subscription(self.store.pool, request.subscription_id)
        if row is None:
            return BatchResult(cursor=cursor, delivered=delivered, state="gone")
        if row.delivered_by == me and row.delivered_cursor is not None and info.attempt > 1:
            # Heartbeats are sent a few seconds apart; the row says exactly which event it delivered last.
            cursor = max(cursor, row.delivered_cursor, key=lambda c: (c.transaction_id, c.position))
        if row.status != "active":
            return BatchResult(cursor=cursor, delivered=delivered, state=row.status)
        policy = request.policy
        filters = FeedFilter(kinds=tuple(row.kinds) if row.kinds else None,
                             types=tuple(row.types) if row.types else None,
                             bodies=tuple(row.bodies) if row.bodies else None, **scope_of(row.owner))
        loop = asyncio.get_running_loop()
        started = idle_since = loop.time()
        secret = self.box.open(row.id, row.secret_nonce, row.secret_sealed)
        async with webhook_client(self.outbound, timeout=policy.request_timeout, max_connections=1) as http:
            while True:
                page = await read_page(self.store.pool, cursor, policy.batch, filters)
                if not page.events:  # nothing yet: wait for the feed to move, up to `wait` seconds
                    cursor = page.cursor
                    activity.heartbeat(Progress(cursor=cursor, delivered=delivered))
                    if not page.caught_up:  # a filtered read that matched nothing in its window: read on
                        if loop.time() - started > policy.busy:
                            return BatchResult(cursor=cursor, delivered=delivered)
                        continue
                    left = idle_since + policy.wait - loop.time()
                    if left <= 0 or loop.time() - started > policy.busy + policy.wait:
                        return BatchResult(cursor=cursor, delivered=delivered, caught_up=True)
                    await self.watcher.wait_past(cursor, min(left, LOOK_EVERY))
                    now = await self._look(row.id)
                    if now is None:
                        return BatchResult(cursor=cursor, delivered=delivered, state="gone")
                    if now[0] != row.revision:
                        return BatchResult(cursor=cursor, delivered=delivered, state=now[1])
                    continue

                if not await owner_active(self.store.pool, row):  # looked at before every page it is shown
                    await self._set_failing(row.id, f"the owner ({row.owner_role} {row.owner_label!r}) has no active "
                                            "token left: nothing is delivered until it has one and the subscription "
                                            "is resumed")
                    return BatchResult(cursor=cursor, delivered=delivered, state="failing")
                events = shown(page.events)
                await record_reads(self.store.pool, events, row.owner, "webhook")
                for event in events:
                    place = FeedCursor(transaction_id=event.transaction_id, position=event.position)
                    attempt = request.head_attempt if str(event.event_id) == request.head_event_id else 1
                    outcome = await self._send(http, row, secret, event, self.cursors.encode(place), policy)
                    now = await self._record(row, event, attempt, outcome, place, me)
                    if now is None:
                        return BatchResult(cursor=cursor, delivered=delivered, state="gone")
                    if not outcome.ok:
                        return BatchResult(cursor=cursor, delivered=delivered, failure=Failure(
                            event_id=str(event.event_id), case_id=event.stream_id, attempt=attempt,
                            status_code=outcome.status_code, error=outcome.error))
                    cursor, delivered = place, delivered + 1
                    activity.heartbeat(Progress(cursor=cursor, delivered=delivered))
                    if now[0] != row.revision:
                        return BatchResult(cursor=cursor, delivered=delivered, state=now[1])
                    if loop.time() - started > policy.busy:
                        return BatchResult(cursor=cursor, delivered=delivered)
                # Every event of the page went: on after the page (past the end of its window when it was filtered).
                cursor = page.cursor
                activity.heartbeat(Progress(cursor=cursor, delivered=delivered))
                idle_since = loop.time()

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
        return _Attempt(status_code=status, error=error, started_at=started_at,
                        latency_ms=round((time.perf_counter() - clock) * 1000, 3))

    async def _record(self, row: SubscriptionRow, event: RecordedEvent, attempt: int, outcome: _Attempt,
                      place: FeedCursor, by: str) -> tuple[int, str] | None:
        """Record an attempt (and, when it was accepted, the subscription's progress); the subscription's revision
        and status now, or None when it is gone."""
        with translate_errors():
            found = await self.store.pool.fetchrow(
                "WITH s AS (UPDATE subscriptions SET "
                "  delivered_count = delivered_count + CASE WHEN $2 THEN 1 ELSE 0 END, "
                "  delivered_tx = CASE WHEN $2 THEN $3 ELSE delivered_tx END, "
                "  delivered_position = CASE WHEN $2 THEN $4 ELSE delivered_position END, "
                "  delivered_at = CASE WHEN $2 THEN now() ELSE delivered_at END, "
                "  delivered_by = CASE WHEN $2 THEN $13 ELSE delivered_by END "
                "  WHERE id = $1 RETURNING revision, status), "
                "d AS (INSERT INTO deliveries (subscription_id, event_id, case_id, event_type, attempt, status_code, "
                "  error, started_at, latency_ms) SELECT $1, $5, $6, $7, $8, $9, $10, $11, $12 FROM s) "
                "SELECT revision, status FROM s",
                row.id, outcome.ok, place.transaction_id, place.position, event.event_id, event.stream_id,
                event.type, attempt, outcome.status_code, outcome.error, outcome.started_at, outcome.latency_ms, by,
            )
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
