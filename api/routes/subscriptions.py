"""Webhook subscriptions: `POST/GET/PATCH/DELETE /v1/subscriptions`, replay and the deliveries.

Who: an `admin` makes and manages every subscription, and receives every event; an `intake` system makes its
own, receives the events of the cases it sent (the feed's scope, `api.feed.scope_of`) and manages only its own
(by its label, which its tokens share). Every other role: 403.

Each subscription is delivered by its own workflow (`workflows.subscription`), started when it is made. A change
is stored first, then the workflow is told (`look_again`); while Temporal is unreachable the change is stored
all the same and the workflow sees it at its next look (within a second while delivering, within
`recheck` while paused or failing). A replay moves the workflow's cursor, so it needs Temporal (503 otherwise).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from temporalio.service import RPCError

from activities.webhook_types import WebhookPolicy
from eventstore import FeedCursor
from workflows.subscription_client import SubscriptionNotRunning, look_again, replay, start_subscription

from ..auth import require
from ..deps import AppSettings, Store, Temporal
from ..errors import ApiError, error_responses, validation_error
from ..feed import CursorCodec, feed_head
from ..filters import IdempotencyKey, key_reused
from ..outbound import OutboundPolicy, UrlRefused, check_url
from ..subscriptions import (
    ID_PATTERN,
    DeliveryPage,
    Keyed,
    KeyedRequest,
    SecretBox,
    Status,
    Subscription,
    SubscriptionChange,
    SubscriptionCreated,
    SubscriptionPage,
    SubscriptionRequest,
    SubscriptionRow,
    change_subscription,
    delete_subscription,
    get_subscription,
    insert_subscription,
    list_deliveries,
    list_subscriptions,
    new_secret,
    owns,
    resume_after_replay,
    subscription_under_key,
)
from ..temporal import TemporalUnavailableError
from ..times import VietnamTimeRoute
from ..tokens import Principal

log = logging.getLogger("danvan.api")

router = APIRouter(prefix="/v1/subscriptions", tags=["webhooks"], route_class=VietnamTimeRoute)

Owner = Annotated[Principal, Depends(require("intake", "admin"))]
SubscriptionId = Annotated[str, Path(min_length=24, max_length=24, pattern=ID_PATTERN,
                                     description="The subscription's id (`sub_...`)")]


def _cursors(request: Request) -> CursorCodec:
    codec: CursorCodec = request.app.state.feed_cursors
    return codec


def _shown(request: Request, row: SubscriptionRow) -> Subscription:
    cursor = row.delivered_cursor
    return row.shown(_cursors(request).encode(cursor) if cursor is not None else None)


def _url_refused(refused: UrlRefused) -> RequestValidationError:
    return RequestValidationError([{"type": refused.rule, "loc": ("body", "url"), "msg": refused.message}])


async def _checked_url(url: str, request: Request) -> None:
    settings = request.app.state.settings
    try:
        await check_url(url, OutboundPolicy.from_settings(settings))
    except UrlRefused as refused:
        raise _url_refused(refused) from None


async def _owned(store: Store, principal: Principal, subscription_id: str) -> SubscriptionRow:
    row = await get_subscription(store.pool, subscription_id)
    if row is None:
        raise ApiError(404, "not_found", f"no subscription {subscription_id}")
    if not owns(principal, row):
        raise ApiError(403, "forbidden", f"subscription {subscription_id} was not made by {principal.label!r}")
    return row


async def _tell(temporal: Temporal, subscription_id: str) -> None:
    """Tell the workflow to look again; when Temporal does not answer, it sees the change at its next look."""
    try:
        await look_again(await temporal.get(), subscription_id)
    except (TemporalUnavailableError, RPCError) as exc:
        log.warning("subscription %s: the change is stored; its workflow will see it at its next look (%s)",
                    subscription_id, exc)


@router.post("", status_code=201, response_model=SubscriptionCreated,
             summary="Subscribe a URL to the events of the feed (webhooks)",
             responses={**error_responses(401, 403, 422, 503),
                        200: {"model": SubscriptionCreated, "description": "A retry under the same Idempotency-Key: "
                              "the subscription it made, without its secret"}})
async def create(body: SubscriptionRequest, request: Request, response: Response, store: Store, temporal: Temporal,
                 settings: AppSettings, principal: Owner, idempotency_key: IdempotencyKey = None
                 ) -> SubscriptionCreated:
    """Deliver every event after `after` (default: from now on) that the filter lets through and the token may
    see (an intake system: the cases it sent) to `url`, one event per POST, in feed order, signed per the
    Standard Webhooks conventions (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the secret in
    this answer, which is never shown again. The URL must be http(s) and resolve to public addresses only, never
    to danvan's own services, unless its host is in `DANVAN_WEBHOOK_ALLOW_HOSTS` (422 naming the rule:
    `url_scheme`, `url_private`, `url_loopback`, `url_link_local`, `url_own_service`, `url_unresolvable`...).
    With an `Idempotency-Key`, a retry of the same request by the same owner answers 200 with the subscription
    the first made (`duplicate`, no secret); another request under the key is 422 `idempotency.key_reused`.
    Roles: `admin`, `intake`."""
    keyed = KeyedRequest.of(idempotency_key, body, principal) if idempotency_key is not None else None
    if keyed is not None and (earlier := await subscription_under_key(store.pool, keyed.key)) is not None:
        return await _again(request, response, temporal, settings, keyed, earlier)
    await _checked_url(body.url, request)
    cursor = await _start_cursor(request, store, body)
    client = await temporal.get()  # before anything is stored: no subscription without its workflow
    secret = new_secret()
    box: SecretBox = request.app.state.webhook_secrets
    row = await insert_subscription(store.pool, box, principal, body, secret, start=cursor, key=keyed)
    if row is None:  # the same key, sent at the same time, made it first
        assert keyed is not None
        earlier = await subscription_under_key(store.pool, keyed.key)
        if earlier is None:
            raise ApiError(409, "conflict", "a request under the same Idempotency-Key is under way: try again")
        return await _again(request, response, temporal, settings, keyed, earlier)
    try:
        await start_subscription(client, row.id, cursor, WebhookPolicy.from_settings(settings))
    except Exception as exc:
        await delete_subscription(store.pool, row.id)
        if isinstance(exc, RPCError):
            raise TemporalUnavailableError(f"the subscription's workflow did not start: {exc.message}") from exc
        raise
    shown = _shown(request, row)
    return SubscriptionCreated(**shown.model_dump(), secret=secret)


async def _start_cursor(request: Request, store: Store, body: SubscriptionRequest) -> FeedCursor:
    if body.after is None:
        return await feed_head(store.pool)
    try:
        return _cursors(request).decode(body.after)
    except ValueError as exc:
        raise RequestValidationError([{"type": "cursor_invalid", "loc": ("body", "after"),
                                       "msg": f"after: {exc}; pass a `next_cursor` of the feed"}]) from None


async def _again(request: Request, response: Response, temporal: Temporal, settings: AppSettings,
                 keyed: KeyedRequest, earlier: Keyed) -> SubscriptionCreated:
    """The answer to a retried create: the subscription the key made, its secret not shown again. Its workflow
    is started if the first request ended before starting it (a start of a running one changes nothing)."""
    differ = [what for what, same in (("the request", earlier.request_digest == keyed.request),
                                      ("the owner", earlier.sender_digest == keyed.sender)) if not same]
    if differ:
        raise key_reused(f"Idempotency-Key {keyed.key!r} made subscription {earlier.row.id} for another request: "
                         f"{' and '.join(differ)} differ; nothing was made")
    if earlier.start is not None:
        try:
            await start_subscription(await temporal.get(), earlier.row.id, earlier.start,
                                     WebhookPolicy.from_settings(settings))
        except (TemporalUnavailableError, RPCError) as exc:
            log.warning("subscription %s: its workflow could not be looked at (%s)", earlier.row.id, exc)
    response.status_code = 200
    return SubscriptionCreated(**_shown(request, earlier.row).model_dump(), secret=None, duplicate=True)


@router.get("", response_model=SubscriptionPage, summary="Subscriptions, newest first",
            responses=error_responses(401, 403, 422))
async def list_all(request: Request, store: Store, principal: Owner,
                   before: Annotated[str | None, Query(min_length=24, max_length=24, pattern=ID_PATTERN,
                                                       description="The `next_before` of the page before")] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   status: Annotated[Status | None, Query(description="Only those with this status (`failing`: "
                                                          "those that gave up on an event)")] = None,
                   ) -> SubscriptionPage:
    """An admin sees every subscription; an intake system its own. A failing one says why (`status_reason`); its
    remedies are `PATCH` with `status: active` (try the event again now), `replay` from a later cursor (skip it),
    or `PATCH` with `status: paused`."""
    rows = await list_subscriptions(store.pool, None if principal.role == "admin" else principal, before, limit + 1,
                                    status)
    more = len(rows) > limit
    rows = rows[:limit]
    return SubscriptionPage(items=[_shown(request, r) for r in rows], next_before=rows[-1].id if more else None)


@router.get("/{subscription_id}", response_model=Subscription, summary="One subscription",
            responses=error_responses(401, 403, 404, 422))
async def get_one(subscription_id: SubscriptionId, request: Request, store: Store, principal: Owner) -> Subscription:
    """Its URL, filter, status (with why it is failing), the number of events delivered and the cursor after the
    last of them."""
    return _shown(request, await _owned(store, principal, subscription_id))


@router.patch("/{subscription_id}", response_model=Subscription,
              summary="Pause, resume, or change a subscription's URL or filter",
              responses=error_responses(401, 403, 404, 422))
async def change(subscription_id: SubscriptionId, body: SubscriptionChange, request: Request, store: Store,
                 temporal: Temporal, principal: Owner) -> Subscription:
    """Only the fields given change. `status: paused` stops delivering (the event under way finishes);
    `status: active` resumes, and a failing subscription tries the event it gave up on again at once. A new
    filter applies from the next event read; a new URL is checked as when subscribing."""
    await _owned(store, principal, subscription_id)
    if "url" in body.model_fields_set:
        if body.url is None:
            raise validation_error("url", "missing", "url may not be removed; delete the subscription instead")
        await _checked_url(body.url, request)
    row = await change_subscription(store.pool, subscription_id, body, principal)
    if row is None:
        raise ApiError(404, "not_found", f"no subscription {subscription_id}")
    await _tell(temporal, subscription_id)
    return _shown(request, row)


@router.delete("/{subscription_id}", status_code=204, response_class=Response,
               summary="Delete a subscription and its deliveries", responses=error_responses(401, 403, 404, 422))
async def delete(subscription_id: SubscriptionId, store: Store, temporal: Temporal, principal: Owner) -> Response:
    """Nothing more is delivered (the request under way finishes); its workflow ends."""
    await _owned(store, principal, subscription_id)
    if not await delete_subscription(store.pool, subscription_id):
        raise ApiError(404, "not_found", f"no subscription {subscription_id}")
    await _tell(temporal, subscription_id)
    return Response(status_code=204)


@router.post("/{subscription_id}/replay", response_model=Subscription,
             summary="Deliver again from a cursor of the feed", responses=error_responses(401, 403, 404, 422, 503))
async def replay_from(subscription_id: SubscriptionId, request: Request, store: Store, temporal: Temporal,
                      principal: Owner,
                      from_: Annotated[str | None, Query(alias="from", max_length=64,
                                                         description="A feed cursor (a `next_cursor` of "
                                                         "`GET /v1/events`, or the `cursor` of a delivered event): "
                                                         "the events after it are delivered again. None: from "
                                                         "the first event of the feed")] = None) -> Subscription:
    """The subscription's cursor moves to `from`, and delivery goes on from there: events already delivered
    are delivered again (with the same `webhook-id`), events skipped are skipped. A failing subscription is
    active again. A paused one stays paused, at its new place."""
    await _owned(store, principal, subscription_id)
    try:
        cursor = _cursors(request).decode(from_) if from_ is not None else FeedCursor()
    except ValueError as exc:
        raise validation_error("from", "cursor_invalid", f"from: {exc}; pass a `next_cursor` of the feed",
                               from_) from None
    try:
        await replay(await temporal.get(), subscription_id, cursor)
    except SubscriptionNotRunning:
        raise ApiError(409, "subscription.not_running", f"subscription {subscription_id} has no running "
                       "delivery workflow") from None
    except RPCError as exc:
        raise TemporalUnavailableError(f"the replay did not reach the workflow: {exc.message}") from exc
    row = await resume_after_replay(store.pool, subscription_id)
    if row is None:
        raise ApiError(404, "not_found", f"no subscription {subscription_id}")
    await _tell(temporal, subscription_id)
    return _shown(request, row)


@router.get("/{subscription_id}/deliveries", response_model=DeliveryPage,
            summary="Every delivery attempt, newest first", responses=error_responses(401, 403, 404, 422))
async def deliveries(subscription_id: SubscriptionId, store: Store, principal: Owner,
                     before: Annotated[int | None, Query(ge=1, description="The `next_before` of the page "
                                                         "before")] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> DeliveryPage:
    """Each attempt: the event, its attempt number, the HTTP status of the answer or the error when there was
    none (a refused address, a timeout, a refused connection), when it started and how long it took."""
    await _owned(store, principal, subscription_id)
    items = await list_deliveries(store.pool, subscription_id, before, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return DeliveryPage(items=items, next_before=items[-1].id if more else None)
