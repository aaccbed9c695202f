"""The event feed: `GET /v1/events` (every case, in commit order, scoped to the token) and
`GET /v1/cases/{id}/events` (one case, by version). The rules are in `api.feed`."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from activities.rules import load_bodies
from danvan import waits
from domain.calendar import VN_TZ
from eventstore import FeedCursor, RecordedEvent

from ..auth import check_case_access, require
from ..deps import AppSettings, Store
from ..errors import ApiError, error_responses, validation_error
from ..feed import EVENT_TYPES, CursorCodec, FeedFilter, FeedWatcher, Page, read_page, record_reads, scope_of, shown
from ..filters import CaseKind
from ..routing import ApiRoute
from ..tokens import Principal
from .cases import audit_read

router = APIRouter(tags=["events"], route_class=ApiRoute)

#: At most this many values of one filter in a request.
MAX_FILTER_VALUES = 50
#: Time kept back from the request's deadline when waiting, for the read and the answer (seconds).
ANSWER_MARGIN = 0.5
#: How long a page may go on reading windows that hold nothing for the filter before answering (seconds).
SCAN_BUDGET = 0.5


class FeedEvent(BaseModel):
    """One event as the case's history shows it, with its case and its link in the case's hash chain."""

    case_id: str
    version: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str | None
    reason: str | None
    legal_basis: str | None
    data: dict[str, Any]
    hash: str
    prev_hash: str
    event_id: UUID
    schema_version: int


class FeedPage(BaseModel):
    """Events in commit order after `after`. Pass `next_cursor` as `after` for the next page: it is opaque and
    stable, so a consumer that stores it and restarts gets every later event exactly once. `caught_up`: nothing
    more matches as of this read (false: ask again at once; the page may be short, or even empty, when the
    filter matched little of the part of the feed read)."""

    events: list[FeedEvent]
    next_cursor: str
    caught_up: bool


class CaseEventsPage(BaseModel):
    """A case's events after `after_version`, in version order; `next_after_version` for the next page, and
    `at_end` when there are no more now."""

    case_id: str
    events: list[FeedEvent]
    next_after_version: int
    at_end: bool


@lru_cache(maxsize=1)
def known_bodies() -> frozenset[str]:
    """Every body code of `policy/bodies.yaml`, district instances included."""
    registry = load_bodies()
    return frozenset(registry.codes())


def _values(name: str, values: list[str] | None, known: frozenset[str], rule: str) -> tuple[str, ...] | None:
    if not values:
        return None
    if len(values) > MAX_FILTER_VALUES:
        raise validation_error(name, "too_long", f"at most {MAX_FILTER_VALUES} values of {name}", len(values))
    for value in values:
        if value not in known:
            raise validation_error(name, rule, f"{name} {value!r} is not a known {name.replace('_', ' ')}", value)
    return tuple(dict.fromkeys(values))


def _row(event: RecordedEvent) -> dict[str, Any]:
    return {"case_id": event.stream_id, "version": event.version, "type": event.type,
            "occurred_at": event.occurred_at.astimezone(VN_TZ), "recorded_at": event.recorded_at.astimezone(VN_TZ),
            "actor": event.actor,
            "reason": event.reason, "legal_basis": event.legal_basis, "data": event.data, "hash": event.hash,
            "prev_hash": event.prev_hash, "event_id": str(event.event_id), "schema_version": event.schema_version}


def _json(document: dict[str, Any]) -> Response:
    """The answer as JSON, written once (orjson: UTF-8 as is, times in RFC 3339 at +07:00 like every other
    answer, `api.times`); the response models above document its shape."""
    return Response(orjson.dumps(document), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone away."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _ClientGone(Exception):
    pass


async def _wait(request: Request, watcher: FeedWatcher, cursor: FeedCursor, timeout: float) -> bool:
    """Wait for the feed to move past `cursor` (True), at most `timeout` seconds (False); `_ClientGone` when the
    client disconnects first."""
    waiting = asyncio.ensure_future(watcher.wait_past(cursor, timeout))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, gone):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if waiting in done:
        return waiting.result()
    raise _ClientGone


Kinds = Annotated[list[CaseKind] | None, Query(alias="kind", description="Only events of cases of these kinds "
                                               "(repeat the parameter for several)")]
Types = Annotated[list[str] | None, Query(alias="type", description="Only events of these types (`PetitionReceived`, "
                                          "`Assigned`...; repeat for several)")]
Bodies = Annotated[list[str] | None, Query(alias="body", description="Only events of cases these bodies lead or "
                                           "coordinate (body codes; repeat for several)")]


@router.get(
    "/v1/events",
    response_model=FeedPage,
    summary="The event feed: every event after a cursor, in commit order, scoped to the token",
    responses=error_responses(401, 403, 422, 503),
)
async def get_events(
    request: Request,
    store: Store,
    settings: AppSettings,
    principal: Annotated[Principal, Depends(require("intake", "body", "supervisor", "operator", "admin"))],
    after: Annotated[str | None, Query(max_length=64, description="The `next_cursor` of the page before; none: "
                                       "from the first event")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[float, Query(ge=0, description="Seconds to wait for a new event when there is none yet "
                                 "(long poll); the answer comes as soon as one is committed")] = 0,
    kinds: Kinds = None,
    types: Types = None,
    bodies: Bodies = None,
) -> Response:
    """The store's global feed: ordered by commit (a transaction that committed late is delivered after those
    before it, never skipped), with no gap and no repeat from a stored cursor. Each event carries its case id,
    version, type, times, actor, data and hash, the data as the case's history shows it (a petitioner is a
    sealed ref).

    Scope: `supervisor`, `operator`, `admin` read every event; `body` the events of the cases it may read (those
    it leads or coordinates, or has another tie to); `intake` those of the cases its system sent. Filters
    narrow that. A read of a case under the denunciation regime is recorded (`GET /v1/cases/{id}/reads`,
    `what` = `feed`).

    `wait`: at most `DANVAN_FEED_WAIT_MAX` seconds (30 by default) and never beyond the request's deadline
    (`DANVAN_REQUEST_TIMEOUT`); an empty page with `caught_up` true when nothing came.
    """
    codec: CursorCodec = request.app.state.feed_cursors
    watcher: FeedWatcher = request.app.state.feed_watcher
    if wait > settings.feed_wait_max:
        raise validation_error("wait", "less_than_equal", f"wait must be at most {settings.feed_wait_max:g} s "
                               "(DANVAN_FEED_WAIT_MAX)", wait)
    try:
        cursor = codec.decode(after) if after is not None else FeedCursor()
    except ValueError as exc:
        raise validation_error("after", "cursor_invalid", f"after: {exc}; pass a `next_cursor` of this feed",
                               after) from None
    filters = FeedFilter(
        kinds=_values("kind", [k.value for k in kinds or ()], frozenset(CaseKind), "enum"),
        types=_values("type", types, EVENT_TYPES, "unknown_event_type"),
        bodies=_values("body", bodies, known_bodies(), "unknown_body"),
        **scope_of(principal),
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    left = waits.time_left(None)
    wait_for = min(wait, max(0.0, left - ANSWER_MARGIN)) if left is not None else wait
    try:
        page = await read_page(store.pool, cursor, limit, filters)
        while not page.events:
            now = loop.time()
            if not page.caught_up:
                if now - started >= max(SCAN_BUDGET, wait_for):
                    break  # the feed is long and the filter matched nothing of it yet: say so, and go on next time
            else:
                remaining = wait_for - (now - started)
                if remaining <= 0 or not await _wait(request, watcher, page.cursor, remaining):
                    break
            page = await read_page(store.pool, page.cursor, limit, filters)
    except _ClientGone:
        return Response(status_code=204)  # nobody reads this
    events = shown(page.events)
    await record_reads(store.pool, events, principal, "feed")
    return _answer(codec, page, events)


def _answer(codec: CursorCodec, page: Page, events: list[RecordedEvent]) -> Response:
    return _json({"events": [_row(e) for e in events], "next_cursor": codec.encode(page.cursor),
                  "caught_up": page.caught_up})


CaseId = Annotated[str, Path(min_length=1, max_length=200, description="The case id (= its workflow id)")]


@router.get(
    "/v1/cases/{case_id}/events",
    response_model=CaseEventsPage,
    tags=["cases"],
    summary="A case's events after a version, in order",
    responses=error_responses(401, 403, 404, 422),
)
async def get_case_events(
    case_id: CaseId,
    store: Store,
    principal: Annotated[Principal, Depends(require("body", "supervisor", "operator", "admin"))],
    after_version: Annotated[int, Query(ge=0, le=2**31 - 1, description="The last version already read; 0: "
                                        "from the first event")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The case's events with a version above `after_version`, at most `limit`, shown as in its history.
    Roles as for `GET /v1/cases/{id}/history`: `supervisor`, `operator`, `admin`; `body` for the cases it may
    read. A read of a case under the denunciation regime is recorded (`what` = `events`)."""
    case = await store.get_case(case_id)
    if principal.role == "body":
        if case is not None:
            check_case_access(principal, case)
        elif await store.stream_version(case_id) > 0:
            raise ApiError(403, "forbidden", f"case {case_id} is not a case of body {principal.body_id!r}")
    events = await store.read_stream(case_id, from_version=after_version + 1, limit=limit + 1)
    if not events and await store.stream_version(case_id) == 0:
        raise ApiError(404, "not_found", f"no events for case {case_id!r}")
    more = len(events) > limit
    events = shown(events[:limit])
    await audit_read(store, case, principal, "events")
    return _json({"case_id": case_id, "events": [_row(e) for e in events],
                  "next_after_version": events[-1].version if events else after_version, "at_end": not more})
