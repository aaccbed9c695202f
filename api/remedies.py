"""The operators' remedies of what the stalled queue holds besides cases: a failing subscription and late
checkpoints (`ops.subjects`). The API's routes (`api.routes.ops`) and the console's forms both call these.

Each remedy is recorded in `ops_remedies` with the operator (the token's holder, never a name in the request)
and the reason, under the request's `Idempotency-Key`: a retry with the same key and the same request answers
what was recorded (`duplicate`) and does nothing again; the same key with another request, or from another
operator, is refused (`RemedyKeyReused`). After it, the subject is looked at again, so the queue shows the
remedy's effect at once.

* `retry` a subscription that stopped (failing, or paused): it is active again, and its workflow tries the
  event it gave up on at once (as `PATCH status=active`). Refused on an active one: nothing is stopped.
* `replay` from a cursor (none: the start of the feed): the workflow's cursor moves there, a failing one is
  active again (as `POST /v1/subscriptions/{id}/replay`). Needs Temporal.
* `pause`: nothing more is delivered until it is resumed. Refused on a paused one.
* `checkpoint`: a request to the checkpoint signer, which looks for requests every second and signs one at
  once; the answer waits for it a few seconds at most (`done_at` and `outcome` once it is done).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio.service import RPCError

from danvan import waits
from eventstore import EventStore, FeedCursor
from ops.scan import refresh_subject
from ops.stalled import Subject
from ops.subjects import Remedy, get_remedy, record_remedy, remedy_under_key
from workflows.subscription_client import SubscriptionNotRunning, look_again, replay

from .errors import ApiError
from .feed import CursorCodec
from .subscriptions import SubscriptionChange, change_subscription, get_subscription, resume_after_replay
from .temporal import TemporalUnavailableError
from .tokens import Principal

log = logging.getLogger("danvan.api")

#: The longest a `checkpoint` remedy waits for the signer to carry it out before answering (seconds).
CHECKPOINT_WAIT = 3.0
#: The subject id of the checkpoint remedies: every signer of the installation answers them.
CHECKPOINTS = "checkpoints"


async def _tell(client: Any, subscription_id: str) -> None:
    try:
        await look_again(client, subscription_id)
    except RPCError as exc:
        log.warning("subscription %s: the remedy is stored; its workflow will see it at its next look (%s)",
                    subscription_id, exc)


async def _refresh(store: EventStore, subject: Subject, subject_id: str) -> None:
    try:
        await refresh_subject(store, subject, subject_id)
    except Exception as exc:
        log.warning("could not look again at %s after its remedy: %s", subject_id, exc)


class SubscriptionRemedy:
    """One operator's remedy of one subscription, under one key."""

    def __init__(self, store: EventStore, principal: Principal, subscription_id: str, reason: str,
                 key: str | None) -> None:
        self.store, self.principal, self.subscription_id = store, principal, subscription_id
        self.reason, self.key = reason, key

    async def _earlier(self, action: str, detail: dict[str, Any]) -> Remedy | None:
        return await remedy_under_key(self.store.pool, "subscription", self.subscription_id, self.key, action,
                                      self.reason, detail, self.principal.label, self.principal.role)

    async def _status(self) -> str:
        row = await get_subscription(self.store.pool, self.subscription_id)
        if row is None:
            raise ApiError(404, "not_found", f"no subscription {self.subscription_id}")
        return row.status

    async def _record(self, action: str, request: dict[str, Any], seen: dict[str, Any] | None = None) -> Remedy:
        done = await record_remedy(self.store.pool, "subscription", self.subscription_id, self.key, action,
                                   self.reason, request, self.principal.label, self.principal.role, seen)
        await _refresh(self.store, "subscription", self.subscription_id)
        return done

    async def change(self, action: str, status: str, client: Any) -> Remedy:
        """`retry` (status active) or `pause` (status paused)."""
        if (earlier := await self._earlier(action, {})) is not None:
            return earlier
        now = await self._status()
        if action == "retry" and now == "active":
            raise ApiError(409, "subscription.not_stopped", f"subscription {self.subscription_id} is active: "
                           "nothing to retry")
        if action == "pause" and now == "paused":
            raise ApiError(409, "subscription.paused", f"subscription {self.subscription_id} is paused already")
        change = SubscriptionChange.model_validate({"status": status})
        await change_subscription(self.store.pool, self.subscription_id, change, self.principal)
        if client is not None:
            await _tell(client, self.subscription_id)
        return await self._record(action, {}, {"status_before": now})

    async def replay(self, client: Any, codec: CursorCodec, cursor_text: str | None) -> Remedy:
        detail = {"from": cursor_text}
        if (earlier := await self._earlier("replay", detail)) is not None:
            return earlier
        await self._status()
        cursor = codec.decode(cursor_text) if cursor_text is not None else FeedCursor()
        try:
            await replay(client, self.subscription_id, cursor)
        except SubscriptionNotRunning:
            raise ApiError(409, "subscription.not_running", f"subscription {self.subscription_id} has no running "
                           "delivery workflow") from None
        except RPCError as exc:
            raise TemporalUnavailableError(f"the replay did not reach the workflow: {exc.message}") from exc
        await resume_after_replay(self.store.pool, self.subscription_id)
        await _tell(client, self.subscription_id)
        return await self._record("replay", detail)


async def request_checkpoint(store: EventStore, principal: Principal, reason: str, key: str | None,
                             wait: float = CHECKPOINT_WAIT) -> Remedy:
    """Ask the checkpoint signer for a checkpoint now, and wait for it a little (bounded by the request's time
    left): the answer says whether it was signed (`outcome`) or is still pending."""
    pool = store.pool
    earlier = await remedy_under_key(pool, "checkpoint", CHECKPOINTS, key, "checkpoint", reason, {},
                                     principal.label, principal.role)
    remedy = earlier or await record_remedy(pool, "checkpoint", CHECKPOINTS, key, "checkpoint", reason, {},
                                            principal.label, principal.role)
    left = waits.time_left(wait)
    bound = min(wait, max(0.0, (left if left is not None else wait) - 0.5))
    loop = asyncio.get_running_loop()
    until = loop.time() + bound
    while remedy.done_at is None and loop.time() < until:
        await asyncio.sleep(0.1)
        again = await get_remedy(pool, remedy.id)
        if again is not None:
            remedy = again.model_copy(update={"duplicate": remedy.duplicate})
    if remedy.done_at is not None:
        rows = await pool.fetch("SELECT case_id FROM stalled_findings WHERE subject = 'checkpoint' "
                                "AND cleared_at IS NULL")
        for r in rows:  # each signer found late is looked at again: the one that signed is late no more
            await _refresh(store, "checkpoint", r["case_id"])
    return remedy
