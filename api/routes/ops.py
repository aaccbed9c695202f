"""Operators: the stalled cases and their repairs (`ops.stalled`, `ops.repairs`).

Every repair needs a `reason`, is recorded in the case's stream as a `RepairRecorded` event whose actor is the
token's holder (never a name sent in the body), and is refused with 409 and its rule when it does not apply.
An `Idempotency-Key` makes a retried request record the repair once; the same key with another repair (another
action, reason or body) or from another operator is refused with 422 `idempotency.key_reused`
(`domain.idempotency`). The filters of `GET /v1/ops/stalled` and of the bulk retry are those of `api.filters`.

`GET /v1/ops/stalled` reads what the scheduled stalled scan last found (`ops.scan`: one query, no Temporal call),
with the time and cost of that look; given `min_attempts` or `idle_hours`, it looks now instead, with that policy
(`ops.stalled.find_stalled`). `POST /v1/ops/stalled/scan` runs a look of the scan at once. After a repair the case
is looked at again, so the stalled set shows its effect without waiting for the next look.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from temporalio.service import RPCError

from domain.bodies import BODY_CODE_PATTERN
from domain.common import Actor
from domain.idempotency import RULE as KEY_REUSED
from domain.jsontypes import INTEGER_ONLY, Boolean, Integer, Number, stripped_at_least
from domain.repairs import MIN_REASON
from ops import repairs
from ops.repairs import BulkReport, RepairOutcome, RepairRefused
from ops.scan import ScanInfo, recorded_stalls, refresh_after_repair, run_scan
from ops.stalled import DEFAULT_POLICY, Stalled, StallPolicy, StallReason, find_stalled
from ops.subjects import Remedy, RemedyKeyReused

from ..auth import require
from ..deps import Store, Temporal
from ..errors import ApiError, error_responses
from ..filters import CaseKind, IdempotencyKey, KindFilter, key_reused
from ..remedies import SubscriptionRemedy, request_checkpoint
from ..routing import ApiRoute
from ..subscriptions import ID_PATTERN
from ..temporal import TemporalUnavailableError
from ..tokens import Principal

router = APIRouter(prefix="/v1/ops", tags=["ops"], route_class=ApiRoute)

CaseId = Annotated[str, Path(min_length=1, max_length=200, description="The case id (= its workflow id)")]
Operator = Annotated[Principal, Depends(require("operator", "admin"))]
Reason = Annotated[str, Field(min_length=MIN_REASON, max_length=2000, pattern=stripped_at_least(MIN_REASON),
                              description=f"why (recorded): at least {MIN_REASON} characters besides the spaces "
                                          "at either end")]
DEFAULT_IDLE_HOURS = DEFAULT_POLICY.idle.total_seconds() / 3600


class StalledList(BaseModel):
    items: list[Stalled]
    policy: dict[str, float | int]
    source: Literal["scan", "live"] = Field(description="`scan`: the scheduled scan's findings as its last look "
                                            "wrote them; `live`: looked at now, with the policy asked for")
    scan: ScanInfo | None = Field(default=None, description="the scan's last look (`scan` only; none: it never ran)")


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ResetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    to_event_id: Annotated[int, Field(ge=1), INTEGER_ONLY] | None = Field(
        default=None, description="a completed workflow task's event id (default: the last good point before the "
                                  "workflow code started failing)")
    dry_run: Boolean = Field(default=False, description="only show the point and what would be re-run")


class NudgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    body: str | None = Field(default=None, min_length=2, max_length=64, pattern=BODY_CODE_PATTERN,
                             description="the body to remind (default: every body the case waits on)")


class ReassignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    body: str = Field(min_length=2, max_length=64, pattern=BODY_CODE_PATTERN, description="the body the case goes to")


class BulkRetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    kind: CaseKind | None = Field(default=None, description="only cases of this kind")
    body: str | None = Field(default=None, min_length=2, max_length=64, pattern=BODY_CODE_PATTERN,
                             description="only cases led by this body (a body code)")
    per_second: Number = Field(default=5.0, gt=0, le=50, description="at most this many cases a second")
    limit: Integer = Field(default=100, ge=1, le=1000, description="at most this many cases")
    dry_run: Boolean = False


def operator_actor(principal: Principal) -> Actor:
    return Actor(id=principal.label, role=principal.role, body=principal.body_id)


def _refused(exc: RepairRefused) -> ApiError:
    if exc.rule == KEY_REUSED:
        return key_reused(exc.message)
    return ApiError(exc.status, exc.rule, exc.message)


def unavailable(exc: RPCError) -> TemporalUnavailableError:
    return TemporalUnavailableError(f"Temporal did not answer: {exc.message}")


@router.get("/stalled", response_model=StalledList, summary="Stalled cases",
            responses=error_responses(401, 403, 422, 503))
async def stalled(
    store: Store,
    temporal: Temporal,
    principal: Annotated[Principal, Depends(require("operator", "supervisor", "admin"))],
    kind: KindFilter = None,
    body: Annotated[str | None, Query(min_length=2, max_length=64, pattern=BODY_CODE_PATTERN,
                                      description="the lead body (a body code)")] = None,
    reason: Annotated[StallReason | None, Query()] = None,
    min_attempts: Annotated[int | None, Query(ge=2, le=100, description="a step is failing from this attempt "
                                              f"(default {DEFAULT_POLICY.min_attempts}; given: looks now)")] = None,
    idle_hours: Annotated[float | None, Query(gt=0, le=24 * 365, allow_inf_nan=False,
                                              description="overdue and nobody acted for (default "
                                              f"{DEFAULT_IDLE_HOURS:g}; given: looks now)")] = None,
) -> StalledList:
    """Cases that are stuck, the longest first: a step failing (how often, the last failure), a paused step,
    the workflow's code failing, or a deadline passed with nobody acting; each with the remedies that fit, since
    when the scheduled scan sees it, how many of its looks saw it and the repairs recorded since. Read from the
    scan's last look (`scan` says when); with `min_attempts` or `idle_hours`, looked at now with that policy.
    Roles: `operator`, `supervisor`, `admin`."""
    kind_value = kind.value if kind else None
    if min_attempts is None and idle_hours is None:
        recorded = await recorded_stalls(store, kind=kind_value, body=body, reason=reason)
        return StalledList(items=recorded.items, source="scan", scan=recorded.scan, policy={
            "min_attempts": DEFAULT_POLICY.min_attempts, "idle_hours": DEFAULT_IDLE_HOURS})
    attempts = min_attempts if min_attempts is not None else DEFAULT_POLICY.min_attempts
    hours = idle_hours if idle_hours is not None else DEFAULT_IDLE_HOURS
    policy = StallPolicy(min_attempts=attempts, idle=timedelta(hours=hours))
    try:
        items = await find_stalled(await temporal.get(), store, policy, kind=kind_value, body=body, reason=reason)
    except RPCError as exc:
        raise unavailable(exc) from exc
    return StalledList(items=items, source="live", policy={"min_attempts": attempts, "idle_hours": hours})


@router.post("/stalled/scan", response_model=ScanInfo, summary="Run a look of the stalled scan now",
             responses=error_responses(401, 403, 503))
async def scan_now(store: Store, temporal: Temporal, principal: Operator) -> ScanInfo:
    """What the scheduled scan does every minute, done now: find the stalled cases and write the stalled set that
    `GET /v1/ops/stalled`, `GET /v1/cases?stalled=` and the console read. Roles: `operator`, `admin`."""
    try:
        return await run_scan(await temporal.get(), store)
    except RPCError as exc:
        raise unavailable(exc) from exc


T = TypeVar("T")


async def _repair(run: Awaitable[T]) -> T:
    """Await an operator's action, answering a refusal with its status and rule, and Temporal's silence with 503."""
    try:
        return await run
    except RepairRefused as exc:
        raise _refused(exc) from exc
    except RPCError as exc:
        raise unavailable(exc) from exc


ANSWERS = error_responses(401, 403, 404, 409, 422, 503)


@router.post("/cases/{case_id}/retry", response_model=RepairOutcome, summary="Retry a stalled case's failing steps",
             responses=ANSWERS)
async def retry(case_id: CaseId, payload: RetryBody, store: Store, temporal: Temporal, principal: Operator,
                idempotency_key: IdempotencyKey = None) -> RepairOutcome:
    """Retry now every failing or paused step of the case, and record it. `recorded` is false when the step
    is still running when the answer is sent: the record is then written as soon as it ends."""
    client = await temporal.get()
    outcome = await _repair(repairs.retry(client, case_id, operator_actor(principal), payload.reason,
                                          command_id=idempotency_key))
    await refresh_after_repair(client, store, case_id)
    return outcome


@router.post("/cases/{case_id}/reset", response_model=RepairOutcome, summary="Re-run a case from its last good point",
             responses=ANSWERS)
async def reset(case_id: CaseId, payload: ResetBody, store: Store, temporal: Temporal, principal: Operator,
                idempotency_key: IdempotencyKey = None) -> RepairOutcome:
    """After a fixed worker is deployed: reset the case's workflow to the last good point (or `to_event_id`).
    The commands accepted after it are decided again by the new run, which adopts their stored events rather
    than appending them twice. `dry_run` shows the point and the commands, and changes nothing."""
    client = await temporal.get()
    outcome = await _repair(repairs.reset(client, store, case_id, operator_actor(principal), payload.reason,
                                          to_event_id=payload.to_event_id, dry_run=payload.dry_run,
                                          command_id=idempotency_key))
    if not outcome.dry_run:
        await refresh_after_repair(client, store, case_id)
    return outcome


@router.post("/cases/{case_id}/nudge", response_model=RepairOutcome, summary="Remind the bodies a case waits on",
             responses=ANSWERS)
async def nudge(case_id: CaseId, payload: NudgeBody, store: Store, temporal: Temporal, principal: Operator,
                idempotency_key: IdempotencyKey = None) -> RepairOutcome:
    """Send a reminder to the body (default: every body) that owes the case an answer (`BodyNudged`)."""
    client = await temporal.get()
    outcome = await _repair(repairs.nudge(client, case_id, operator_actor(principal), payload.reason,
                                          body=payload.body, command_id=idempotency_key))
    await refresh_after_repair(client, store, case_id)
    return outcome


@router.post("/cases/{case_id}/reassign", response_model=RepairOutcome, summary="Give a case to another body",
             responses=ANSWERS)
async def reassign(case_id: CaseId, payload: ReassignBody, store: Store, temporal: Temporal, principal: Operator,
                   idempotency_key: IdempotencyKey = None) -> RepairOutcome:
    """Give the case to another body, through its own kind's command, and record the repair."""
    client = await temporal.get()
    outcome = await _repair(repairs.reassign(client, case_id, operator_actor(principal), payload.reason,
                                             body=payload.body, command_id=idempotency_key))
    await refresh_after_repair(client, store, case_id)
    return outcome


@router.post("/retry", response_model=BulkReport, summary="Retry every stalled case matching a filter",
             responses=error_responses(401, 403, 422, 503))
async def bulk_retry(payload: BulkRetryBody, store: Store, temporal: Temporal, principal: Operator) -> BulkReport:
    """Retry the failing or paused steps of every case matching `kind` and `body`, at most `per_second` cases
    a second and `limit` cases, and report what was done with each (`dry_run`: only which would be)."""
    client = await temporal.get()
    report = await _repair(repairs.bulk_retry(client, store, operator_actor(principal), payload.reason,
                                              kind=payload.kind.value if payload.kind else None, body=payload.body,
                                              per_second=payload.per_second,
                                              limit=payload.limit, dry_run=payload.dry_run))
    for item in report.items:
        if item.outcome == "retried":
            await refresh_after_repair(client, store, item.case_id)
    return report


# -- what the queue holds besides cases: subscriptions and checkpoints (`api.remedies`) --------------------

SubscriptionId = Annotated[str, Path(min_length=24, max_length=24, pattern=ID_PATTERN,
                                     description="The subscription's id (`sub_...`)")]


class RemedyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ReplayRemedyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    cursor: str | None = Field(default=None, min_length=1, max_length=64, description="a feed cursor (a "
                               "`next_cursor` of `GET /v1/events`, or a delivered event's `cursor`): the events "
                               "after it are delivered. None: from the start of the feed")


async def _remedy(run: Awaitable[Remedy]) -> Remedy:
    try:
        return await run
    except RemedyKeyReused as exc:
        raise key_reused(exc.message) from exc


SUBJECT_ANSWERS = error_responses(401, 403, 404, 409, 422, 503)


@router.post("/subscriptions/{subscription_id}/retry", response_model=Remedy, responses=SUBJECT_ANSWERS,
             summary="Try a failing subscription's event again now")
async def retry_subscription(subscription_id: SubscriptionId, payload: RemedyBody, store: Store, temporal: Temporal,
                             principal: Operator, idempotency_key: IdempotencyKey = None) -> Remedy:
    """A failing (or paused) subscription is active again, and its workflow tries the event it gave up on at
    once, for another `retry_for`; recorded with the operator and the reason. 409 `subscription.not_stopped`
    on an active one. Roles: `operator`, `admin`."""
    client = await _client_or_none(temporal)
    remedy = SubscriptionRemedy(store, principal, subscription_id, payload.reason, idempotency_key)
    return await _remedy(remedy.change("retry", "active", client))


@router.post("/subscriptions/{subscription_id}/pause", response_model=Remedy, responses=SUBJECT_ANSWERS,
             summary="Pause a subscription")
async def pause_subscription(subscription_id: SubscriptionId, payload: RemedyBody, store: Store, temporal: Temporal,
                             principal: Operator, idempotency_key: IdempotencyKey = None) -> Remedy:
    """Nothing more is delivered until the subscription is resumed; recorded with the operator and the reason.
    409 `subscription.paused` on a paused one. Roles: `operator`, `admin`."""
    client = await _client_or_none(temporal)
    remedy = SubscriptionRemedy(store, principal, subscription_id, payload.reason, idempotency_key)
    return await _remedy(remedy.change("pause", "paused", client))


@router.post("/subscriptions/{subscription_id}/replay", response_model=Remedy, responses=SUBJECT_ANSWERS,
             summary="Deliver a subscription from another cursor")
async def replay_subscription(subscription_id: SubscriptionId, payload: ReplayRemedyBody, request: Request,
                              store: Store, temporal: Temporal, principal: Operator,
                              idempotency_key: IdempotencyKey = None) -> Remedy:
    """The subscription's cursor moves to `cursor` (none: the start of the feed), skipping the event it gave up
    on or going back; a failing one is active again. Recorded with the operator and the reason. Roles:
    `operator`, `admin`."""
    codec = request.app.state.feed_cursors
    if payload.cursor is not None:
        try:
            codec.decode(payload.cursor)
        except ValueError as exc:
            raise RequestValidationError([{"type": "cursor_invalid", "loc": ("body", "cursor"),
                                           "msg": f"cursor: {exc}; pass a `next_cursor` of the feed"}]) from None
    remedy = SubscriptionRemedy(store, principal, subscription_id, payload.reason, idempotency_key)
    return await _remedy(remedy.replay(await temporal.get(), codec, payload.cursor))


@router.post("/checkpoints", response_model=Remedy, responses=error_responses(401, 403, 422),
             summary="Ask for a checkpoint now")
async def checkpoint_now(payload: RemedyBody, store: Store, principal: Operator,
                         idempotency_key: IdempotencyKey = None) -> Remedy:
    """A request, recorded with the operator and the reason, that the checkpoint signer (where the signing key
    is: `danvan checkpoint --every N`, run by `danvan up`) carries out within a second or so. The answer waits
    up to 3 s for it: `done_at` and `outcome` (`checkpoint N signed`, or why none was) once done; without them
    the request is still pending (no signer running?). Roles: `operator`, `admin`."""
    return await _remedy(request_checkpoint(store, principal, payload.reason, idempotency_key))


async def _client_or_none(temporal: Temporal) -> object | None:
    """The Temporal client, or None when Temporal does not answer: the change is stored all the same, and the
    subscription's workflow sees it at its next look."""
    try:
        return await temporal.get()
    except TemporalUnavailableError:
        return None
