"""The webhook subscriptions in the console (`/console/subscriptions`, operators and admins): the list, newest
first, with each one's owner, where it delivers, its status and why it fails; and a subscription's page with every
delivery attempt, newest first (the event, the attempt's number, the HTTP status or the error when there was no
answer, when it started in Vietnam's time and how long it took). Linked from the operations page and from the
stalled queue's findings of failing subscriptions.

The remedies of what the queue holds besides cases (a failing subscription: retry, replay, pause; late
checkpoints: a checkpoint now) are sent from the queue's forms here, as `POST /v1/ops/...` does them
(`api.remedies`), with the signed-in operator and the reason recorded, under the form's nonce as the
`Idempotency-Key`; then back to the queue with the message of what was done.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from temporalio.service import RPCError

from ops.subjects import Remedy, RemedyKeyReused, shown_url

from ..deps import Store, Temporal
from ..errors import ApiError
from ..queries import LOCAL_TZ
from ..remedies import SubscriptionRemedy, request_checkpoint
from ..subscriptions import ID_PATTERN, Status, get_subscription, list_deliveries, list_subscriptions
from ..temporal import TemporalUnavailableError
from ..tokens import Principal, Role
from .i18n import language_of
from .render import NO_STORE, render, url_with
from .session import check_session_csrf, read_form, signed_in
from .stalled import InvalidField, KindFilter, LeadFilter, QueueFilters, ReasonFilter, _back, command_id_of, reason_of

log = logging.getLogger("danvan.console")

router = APIRouter()

#: Who sees the subscriptions and their deliveries: those who remedy them (`api.routes.ops`) and admins.
SUBSCRIPTION_ROLES: tuple[Role, ...] = ("operator", "admin")
Reader = Annotated[Principal, Depends(signed_in(*SUBSCRIPTION_ROLES))]
SubscriptionId = Annotated[str, Path(min_length=24, max_length=24, pattern=ID_PATTERN)]
PAGE = 50
STATUSES: tuple[Status, ...] = ("active", "paused", "failing")


def instant(moment: datetime, lang: str) -> str:
    """An attempt's start to the second, in Vietnam's time and saying so (`04/12/2026 09:30:05 +07:00`)."""
    local = moment.astimezone(LOCAL_TZ)
    return local.strftime("%d/%m/%Y %H:%M:%S" if lang == "vi" else "%Y-%m-%d %H:%M:%S") + " +07:00"


def where(url: str) -> str:
    """A URL as the console shows it: without its query (a receiver's token may be there) or user name."""
    return shown_url(url)


@router.get("/subscriptions")
async def subscriptions_page(request: Request, store: Store, principal: Reader,
                             status: Annotated[Status | None, Query()] = None,
                             before: Annotated[str | None, Query(min_length=24, max_length=24,
                                                                 pattern=ID_PATTERN)] = None) -> Response:
    rows = await list_subscriptions(store.pool, None, before, PAGE + 1, status)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(request, "subscriptions.html", {
        "rows": rows, "where": where, "status": status, "statuses": STATUSES,
        "next_url": url_with(request, "/subscriptions", status=status, before=rows[-1].id) if more else None,
    }, section="ops", headers=NO_STORE)


@router.get("/subscriptions/{subscription_id}")
async def deliveries_page(request: Request, subscription_id: SubscriptionId, store: Store, principal: Reader,
                          before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    row = await get_subscription(store.pool, subscription_id)
    if row is None:
        raise ApiError(404, "not_found", f"no subscription {subscription_id}")
    items = await list_deliveries(store.pool, subscription_id, before, PAGE + 1)
    more = len(items) > PAGE
    items = items[:PAGE]
    lang = "vi" if "vi" == language_of(request) else "en"
    return render(request, "subscription.html", {
        "sub": row, "where": where, "items": items, "instant": lambda moment: instant(moment, lang),
        "next_url": url_with(request, f"/subscriptions/{subscription_id}", before=str(items[-1].id))
        if more else None,
    }, section="ops", headers=NO_STORE)


# -- the remedies, from the stalled queue -----------------------------------------------------------------------

SubjectAction = Literal["retry", "replay", "pause", "checkpoint"]


async def _client_or_none(temporal: Temporal) -> Any:
    try:
        return await temporal.get()
    except TemporalUnavailableError:
        return None


async def _apply(action: SubjectAction, subject_id: str, store: Store, temporal: Temporal, request: Request,
                 principal: Principal, reason: str, key: str | None, form: dict[str, str]) -> Remedy:
    if action == "checkpoint":
        return await request_checkpoint(store, principal, reason, key)
    remedy = SubscriptionRemedy(store, principal, subject_id, reason, key)
    if action == "replay":
        cursor = form.get("cursor", "").strip() or None
        if cursor is not None:
            try:
                request.app.state.feed_cursors.decode(cursor)
            except ValueError:
                raise InvalidField("cursor", "cursor") from None
        return await remedy.replay(await temporal.get(), request.app.state.feed_cursors, cursor)
    return await remedy.change(action, "active" if action == "retry" else "paused", await _client_or_none(temporal))


@router.post("/stalled/subjects/{subject}/{subject_id}/{action}")
async def remedy_subject(
    request: Request,
    subject: Literal["subscription", "checkpoint"],
    subject_id: Annotated[str, Path(min_length=1, max_length=300)],
    action: SubjectAction,
    store: Store,
    temporal: Temporal,
    principal: Annotated[Principal, Depends(signed_in("operator", "admin"))],
    kind: KindFilter = None,
    lead: LeadFilter = None,
    reason: ReasonFilter = None,
) -> Response:
    """One remedy of a failing subscription or of late checkpoints, then back to the queue with its message."""
    filters = QueueFilters(kind, lead, reason)
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    if (subject == "checkpoint") != (action == "checkpoint"):
        raise ApiError(404, "not_found", f"no remedy {action} of a {subject}")
    try:
        why = reason_of(form)
        done = await _apply(action, subject_id, store, temporal, request, principal, why, command_id_of(form),
                            dict(form))
    except InvalidField as exc:
        return _back(request, filters, {"kind": "invalid", "action": action, "case_id": subject_id,
                                        "field": exc.name, "problem": exc.problem})
    except RemedyKeyReused as exc:
        return _back(request, filters, {"kind": "refused", "action": action, "case_id": subject_id,
                                        "rule": exc.rule, "message": exc.message[:500]})
    except ApiError as exc:
        return _back(request, filters, {"kind": "refused", "action": action, "case_id": subject_id,
                                        "rule": exc.code, "message": exc.message[:500]})
    except (RPCError, TemporalUnavailableError) as exc:
        log.warning("console remedy %s of %s: Temporal did not answer: %s", action, subject_id, exc)
        return _back(request, filters, {"kind": "failed", "action": action, "case_id": subject_id,
                                        "rule": "temporal.error", "message": str(exc)[:500]})
    return _back(request, filters, {"kind": "remedy", "action": action, "case_id": subject_id,
                                    "outcome": done.outcome, "pending": action == "checkpoint" and not done.done_at})
