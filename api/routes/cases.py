"""Reading cases: the current state, the list with filters, and the event history with its integrity."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from eventstore import CaseRecord

from ..auth import check_case_access, may_access_case, require
from ..deps import Store
from ..errors import ApiError, error_responses, validation_error
from ..queries import CaseCursor, CaseFilter, list_cases
from ..tokens import Principal

router = APIRouter(prefix="/v1/cases", tags=["cases"])

CaseId = Annotated[str, Path(min_length=1, max_length=200, description="The case id (= its workflow id)")]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


class CasePage(BaseModel):
    """One page of cases, newest first; pass `next_cursor` as `cursor` for the next page (null at the end)."""

    items: list[CaseRecord]
    next_cursor: str | None


class HistoryEvent(BaseModel):
    """One domain event as recorded, with its link in the stream's hash chain."""

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


class Integrity(BaseModel):
    """Whether the stream's hash chain verifies; if not, the first version that does not and why."""

    ok: bool
    first_bad_version: int | None = None
    problem: str | None = None


class History(BaseModel):
    case_id: str
    version: int
    integrity: Integrity
    events: list[HistoryEvent]


@router.get(
    "/{case_id}",
    response_model=CaseRecord,
    summary="A case's current state",
    responses=error_responses(401, 403, 404, 422),
)
async def get_case(
    case_id: CaseId,
    store: Store,
    principal: Annotated[Principal, Depends(require("intake", "body", "supervisor", "operator", "admin"))],
) -> CaseRecord:
    """The case's row of the `cases` projection.

    Roles: `supervisor`, `operator`, `admin` read every case; `body` the cases it leads or coordinates;
    `intake` the cases its system sent (`source` = the token's label).
    """
    case = await store.get_case(case_id)
    if case is None:
        raise ApiError(404, "not_found", f"no case {case_id!r}")
    check_case_access(principal, case)
    return case


@router.get(
    "/{case_id}/history",
    response_model=History,
    summary="A case's events in order, and whether their hash chain verifies",
    responses=error_responses(401, 403, 404, 422),
)
async def get_history(
    case_id: CaseId,
    store: Store,
    principal: Annotated[Principal, Depends(require("body", "supervisor", "operator", "admin"))],
) -> History:
    """Every domain event of the case's stream, version 1 first, with `hash` and `prev_hash` (the hash of
    the event before; 64 zeros for version 1), and `integrity` from walking the chain.

    Roles: `supervisor`, `operator`, `admin`; `body` for its own cases. Not `intake`.
    """
    case = await store.get_case(case_id)
    if principal.role == "body":
        # A body sees a history only through a case row that names it; without one it cannot be shown
        # to be the body's, so it is refused (404 if there is nothing at all).
        if case is not None:
            check_case_access(principal, case)
        elif await store.stream_version(case_id) > 0:
            raise ApiError(403, "forbidden", f"case {case_id} is not a case of body {principal.body_id!r}")
    events = await store.read_stream(case_id)
    if not events:
        raise ApiError(404, "not_found", f"no events for case {case_id!r}")
    report = await store.verify(case_id)
    return History(
        case_id=case_id,
        version=events[-1].version,
        integrity=Integrity(ok=report.ok, first_bad_version=report.first_bad_version, problem=report.problem),
        events=[HistoryEvent.model_validate(e.model_dump()) for e in events],
    )


@router.get(
    "",
    response_model=CasePage,
    summary="Cases, filtered and paged",
    responses=error_responses(401, 403, 422),
)
async def get_cases(
    store: Store,
    principal: Annotated[Principal, Depends(require("body", "supervisor", "operator", "admin"))],
    kind: Text = None,
    status: Text = None,
    body: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Lead body or a coordinating body")
    ] = None,
    district: Text = None,
    overdue: bool | None = None,
    received_from: Annotated[date | None, Query(description="First local day (UTC+7), included")] = None,
    received_to: Annotated[date | None, Query(description="Last local day (UTC+7), included")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000, description="`next_cursor` of the previous page")] = None,
) -> CasePage:
    """Cases newest first, `limit` at a time. A `body` token sees only its own body's cases: the `body`
    filter is set to its body (asking for another body is 403). Roles: `body`, `supervisor`, `operator`,
    `admin`.
    """
    if principal.role == "body":
        if body is not None and body != principal.body_id:
            raise ApiError(403, "forbidden", f"a token of body {principal.body_id!r} may only list that body's cases")
        body = principal.body_id
    if received_from is not None and received_to is not None and received_to < received_from:
        raise validation_error(
            "received_to", "date_range", "received_to must not be before received_from", str(received_to)
        )
    after = None
    if cursor is not None:
        try:
            after = CaseCursor.decode(cursor)
        except ValueError as exc:
            raise validation_error("cursor", "cursor_invalid", str(exc), cursor) from None
    filters = CaseFilter(
        kind=kind,
        status=status,
        body=body,
        district=district,
        overdue=overdue,
        received_from=received_from,
        received_to=received_to,
    )
    items, next_cursor = await list_cases(store.pool, filters, limit=limit, after=after)
    # Belt and braces: the SQL filter already scopes a body's list; never let a stray row through.
    items = [case for case in items if may_access_case(principal, case)]
    return CasePage(items=items, next_cursor=next_cursor.encode() if next_cursor else None)
