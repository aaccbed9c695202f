"""Reading cases: the current state, the list with filters and its counts, the event history with its
integrity (and, on request, Temporal's process history merged in), who read a denunciation, and the
petitioner's identity for those cleared to read it.

Read audit: every answer about a case under the denunciation regime (`api.identities.under_denunciation_regime`)
from `GET /v1/cases/{id}` and `GET /v1/cases/{id}/history` is recorded in `case_reads` before it is sent,
whoever asks; every read of a petitioner's identity is recorded in `identity_reads`. The case list and
the counts are not recorded: their rows carry no identity and no content beyond the subject line, and a
dashboard polling them would bury the real reads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, TypeAdapter
from temporalio.service import RPCError

from danvan import waits
from domain.bodies import BODY_CODE_PATTERN
from domain.calendar import VN_TZ
from eventstore import CaseRecord, EventStore
from integrity.lookup import read_signed

from .. import export
from ..auth import check_case_access, may_access_case, require
from ..deps import Heads, Store, Temporal
from ..errors import ApiError, error_responses, validation_error
from ..filters import (
    DAY_PATTERN,
    FIRST_DAY,
    LAST_DAY,
    Day,
    DistrictFilter,
    KindFilter,
    StatusFilter,
    TextSearch,
    check_range,
)
from ..identities import (
    IDENTITY_FIELDS,
    IDENTITY_ROLES,
    IdentityErased,
    IdentityVault,
    list_identity_reads,
    may_unseal,
    shown_events,
    under_denunciation_regime,
)
from ..queries import (
    CaseCursor,
    CaseFilter,
    CaseRead,
    GroupCount,
    count_cases,
    list_case_reads,
    list_cases,
    record_case_read,
)
from ..routing import ApiRoute
from ..temporal import TemporalUnavailableError
from ..timeline import RunInfo, TimelineEntry, domain_entries, fetch_process, merge
from ..tokens import Principal

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=ApiRoute)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CaseId = Annotated[str, Path(min_length=1, max_length=200, description="The case id (= its workflow id)")]


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


_HISTORY_EVENTS = TypeAdapter(list[HistoryEvent])


class Integrity(BaseModel):
    """Whether the stream's hash chain verifies; if not, the first version that does not and why."""

    ok: bool
    first_bad_version: int | None = None
    problem: str | None = None


class ProcessInfo(BaseModel):
    """What Temporal holds about the case: its runs (one per continue-as-new), oldest first."""

    found: bool
    complete: bool
    runs: list[RunInfo]
    notes: list[str]


class History(BaseModel):
    """The case's events; with `include=process`, also `timeline` (the events and the process merged by
    time) and `process` (the runs it comes from)."""

    case_id: str
    version: int
    integrity: Integrity
    events: list[HistoryEvent]
    timeline: list[TimelineEntry] | None = None
    process: ProcessInfo | None = None


class CaseCountsAnswer(BaseModel):
    """Counts of the cases matching the filters: in all, overdue, and by status, kind, lead body and district.

    Each group is `{value, count, overdue}`, largest first; `value` null means the column is empty (no lead
    body yet, no district given)."""

    total: int
    overdue: int
    by_status: list[GroupCount]
    by_kind: list[GroupCount]
    by_lead_body: list[GroupCount]
    by_district: list[GroupCount]


class IdentityReadOut(BaseModel):
    """One recorded read of the petitioner's identity."""

    id: int
    reader: str
    role: str | None
    body: str | None
    token_id: str | None
    purpose: str | None
    read_at: datetime


class CaseReads(BaseModel):
    """Who read a case: `reads` (the case page and its history; denunciations only), newest first, paged
    with `next_before`; `identity_reads` (every read of the petitioner's identity, with its purpose)."""

    case_id: str
    reads: list[CaseRead]
    next_before: int | None
    identity_reads: list[IdentityReadOut]


class SealedIdentity(BaseModel):
    """The petitioner's identity in clear. This read has been recorded, with its purpose."""

    case_id: str
    ref: str
    name: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    id_number: str | None = None
    recorded: bool = True


#: Whole-history fetches from Temporal give up after this long (seconds), or a share of the request's time left
#: when that is shorter, and answer 503.
PROCESS_TIMEOUT = 15.0


def vault_of(request: Request) -> IdentityVault:
    vault: IdentityVault = request.app.state.vault
    return vault


async def vault_dependency(request: Request) -> IdentityVault:
    """`vault_of` as a dependency (async: FastAPI runs a plain def dependency in a thread pool)."""
    return vault_of(request)


async def audit_read(store: EventStore, case: CaseRecord | None, principal: Principal, what: str) -> None:
    """Record a read of a case under the denunciation regime (`case_reads`): a denunciation, or a case that
    ever was one or shares its petitioner with one (`under_denunciation_regime`); other cases are not audited."""
    if case is not None and await under_denunciation_regime(store.pool, case):
        await record_case_read(store.pool, case.case_id, reader=principal.label, token_id=principal.id,
                               role=principal.role, body=principal.body_id, what=what)


BodyFilter = Annotated[str | None, Query(min_length=2, max_length=64, pattern=BODY_CODE_PATTERN,
                                         description="Lead body or a coordinating body (a body code)")]
FromDay = Annotated[Day | None, Query(description=f"First local day (UTC+7), included; {FIRST_DAY} to {LAST_DAY}",
                                      json_schema_extra={"pattern": DAY_PATTERN})]
ToDay = Annotated[Day | None, Query(description=f"Last local day (UTC+7), included; not before `received_from`, "
                                               f"{FIRST_DAY} to {LAST_DAY}",
                                    json_schema_extra={"pattern": DAY_PATTERN})]
ListRoles = Annotated[Principal, Depends(require("body", "supervisor", "operator", "admin"))]


@dataclass
class CaseQuery:
    """The filters of `GET /v1/cases` and `GET /v1/cases/counts`, as query parameters."""

    kind: KindFilter = None
    status: StatusFilter = None
    body: BodyFilter = None
    district: DistrictFilter = None
    q: TextSearch = None
    overdue: bool | None = None
    received_from: FromDay = None
    received_to: ToDay = None
    sort: Annotated[Literal["-created_at", "due_at", "-received_at", "received_at"], Query(
        description="The list's order (not the counts'): `-created_at` newest first (the default), `due_at` the "
                    "soonest next due date first (no running deadline last), `-received_at` the latest received "
                    "first (no receipt, such as a plan task's, last), `received_at` the earliest first (no "
                    "receipt first)")] = "-created_at"
    stalled: Annotated[bool | None, Query(description="only the cases `GET /v1/ops/stalled` lists (true), or "
                                          "only the others (false), as the scheduled stalled scan last saw them "
                                          "(every minute by default)")] = None

    def filters(self, principal: Principal, action: str) -> CaseFilter:
        """The filters to apply; a `body` token is held to the cases it may read (`api.auth.may_access_case`),
        within which `body` filters as for anyone."""
        reader = principal.body_id if principal.role == "body" else None
        check_range("received_from", self.received_from, "received_to", self.received_to)
        return CaseFilter(kind=self.kind.value if self.kind else None, status=self.status, body=self.body,
                          district=self.district, text=self.q, overdue=self.overdue,
                          received_from=self.received_from, received_to=self.received_to, reader=reader)


Filters = Annotated[CaseQuery, Depends()]


def stalled_scope(filters: CaseFilter, query: CaseQuery) -> CaseFilter:
    """`filters` held to the stalled cases (or to the others) when the query asks: the open findings of the
    scheduled stalled scan (`ops.scan`), read in the list's own query."""
    return filters if query.stalled is None else replace(filters, stalled=query.stalled)


@router.get(
    "/export",
    summary="The filtered case list as a CSV or XLSX file",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX: {}}, "description": "the file"},
               **error_responses(401, 403, 413, 422, 503)},
)
async def export_cases(
    store: Store,
    principal: ListRoles,
    query: Filters,
    format: Annotated[Literal["csv", "xlsx"], Query(description="`csv` (UTF-8 with a BOM) or `xlsx`")] = "csv",
    lang: Annotated[Literal["vi", "en"], Query(description="the language of the column heads")] = "vi",
) -> Response:
    """Every case the filters of `GET /v1/cases` select, in its order, as one file (at most 20,000 rows: a
    larger selection is 413, to be narrowed by its filters). Times in Vietnam's time. A `body` token exports
    only its own body's cases. Roles: `body`, `supervisor`, `operator`, `admin`."""
    return await export_response(store, principal, query, format, lang)


async def export_response(store: EventStore, principal: Principal, query: CaseQuery,
                          format: Literal["csv", "xlsx"], lang: Literal["vi", "en"]) -> Response:
    """The export of `GET /v1/cases/export` (and of the console's list)."""
    filters = stalled_scope(query.filters(principal, "list"), query)
    selected: list[CaseRecord] = []
    after: CaseCursor | None = None
    while True:
        page, after = await list_cases(store.pool, filters, limit=1000, after=after, sort=query.sort)
        selected += [case for case in page if may_access_case(principal, case)]
        if len(selected) > export.MAX_ROWS:
            raise ApiError(413, "too_large", f"more than {export.MAX_ROWS} cases match: narrow the filters")
        if after is None:
            break
    stamp = datetime.now(VN_TZ).strftime("%Y%m%d-%H%M")
    if format == "xlsx":
        return Response(export.as_xlsx(selected, lang), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="danvan-cases-{stamp}.xlsx"'})
    return Response(export.as_csv(selected, lang), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="danvan-cases-{stamp}.csv"'})


@router.get(
    "/counts",
    response_model=CaseCountsAnswer,
    summary="Counts of cases for a dashboard: by status, kind, lead body, district; overdue and total",
    responses=error_responses(401, 403, 422),
)
async def get_case_counts(store: Store, principal: ListRoles, query: Filters) -> CaseCountsAnswer:
    """The filters are those of `GET /v1/cases`; one query answers every count. A `body` token counts only
    its own body's cases (lead or coordinating; asking for another body is 403). Roles: `body`,
    `supervisor`, `operator`, `admin`.
    """
    filters = stalled_scope(query.filters(principal, "count"), query)
    counts = await count_cases(store.pool, filters)
    return CaseCountsAnswer(total=counts.total, overdue=counts.overdue, by_status=counts.by_status,
                            by_kind=counts.by_kind, by_lead_body=counts.by_lead_body, by_district=counts.by_district)


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
    `intake` the cases its system sent (`source` = the token's label). A read of a denunciation is recorded
    (`GET /v1/cases/{id}/reads`).
    """
    case = await store.get_case(case_id)
    if case is None:
        raise ApiError(404, "not_found", f"no case {case_id!r}")
    check_case_access(principal, case)
    await audit_read(store, case, principal, "case")
    return case


@router.get(
    "/{case_id}/history",
    response_model=History,
    summary="A case's events in order, and whether their hash chain verifies; optionally the process too",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def get_history(
    case_id: CaseId,
    store: Store,
    temporal: Temporal,
    heads: Heads,
    principal: Annotated[Principal, Depends(require("body", "supervisor", "operator", "admin"))],
    include: Annotated[
        Literal["process"] | None,
        Query(description="`process`: merge Temporal's history of the case (every run) into a `timeline`"),
    ] = None,
) -> History:
    """Every domain event of the case's stream, version 1 first, with `hash` and `prev_hash` (the hash of
    the event before; 64 zeros for version 1), and `integrity` from walking the chain and holding it to the
    head the latest signed checkpoint holds for the case (a chain recomputed after an edit, or cut back with
    its head, does not verify; a case removed from the database is a 404 that says so).

    With `include=process`, `timeline` interleaves the domain events (what was decided, by whom, why, on
    which legal basis) with what the machinery did, from Temporal's history of every run of the case:
    workflow started and continued as new, updates accepted and completed, activities scheduled, started
    (with their attempt and the failure before it), completed, failed; timers started, fired, cancelled;
    linked cases started; workflow tasks failed with their cause; and what is pending now. No argument,
    result or other payload is shown. Commands refused by the case's rules are refused before they enter
    Temporal's history, so they are not in it (`process.notes` says so). 503 when Temporal does not answer.

    Roles: `supervisor`, `operator`, `admin`; `body` for its own cases. Not `intake`. A read of a
    denunciation's history is recorded.
    """
    case = await store.get_case(case_id)
    if principal.role == "body":
        # A body sees a history only through a case row that names it; without one it cannot be shown
        # to be the body's, so it is refused (404 if there is nothing at all).
        if case is not None:
            check_case_access(principal, case)
        elif await store.stream_version(case_id) > 0:
            raise ApiError(403, "forbidden", f"case {case_id} is not a case of body {principal.body_id!r}")
    events, report, signed = await read_signed(store, heads, case_id)
    if not events:
        removed = f": removed, {signed.label} holds it at version {signed.version}" if signed else ""
        raise ApiError(404, "not_found", f"no events for case {case_id!r}{removed}")
    events = shown_events(events)  # an identity recorded in clear before sealing is never shown
    history = History(
        case_id=case_id,
        version=events[-1].version,
        integrity=Integrity(ok=report.ok, first_bad_version=report.first_bad_version, problem=report.problem),
        # Straight from the events' attributes, the whole list in one call: 2 ms for 1,000 events, against 5 ms
        # for a dump and a validation per event.
        events=_HISTORY_EVENTS.validate_python(events, from_attributes=True),
    )
    if include == "process":
        client = await temporal.get()
        try:
            async with asyncio.timeout(waits.time_left(PROCESS_TIMEOUT)):
                process = await fetch_process(client, case_id)
        except (RPCError, TimeoutError) as exc:
            raise TemporalUnavailableError(f"cannot read the history of {case_id} from Temporal: {exc}") from exc
        history.timeline = list(merge(domain_entries(events), process.entries))
        history.process = ProcessInfo(found=process.found, complete=process.complete, runs=process.runs,
                                      notes=process.notes)
    await audit_read(store, case, principal, "history+process" if include == "process" else "history")
    return history


@router.get(
    "/{case_id}/reads",
    response_model=CaseReads,
    summary="Who read a case (denunciation regime) and who read its petitioner's identity",
    responses=error_responses(401, 403, 404, 422),
)
async def get_case_reads(
    case_id: CaseId,
    store: Store,
    principal: Annotated[Principal, Depends(require("supervisor", "admin"))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="`next_before` of the previous page")] = None,
) -> CaseReads:
    """The recorded reads of the case, newest first: every answer of `GET /v1/cases/{id}` and
    `GET /v1/cases/{id}/history` about a case under the denunciation regime (`what`: `case`, `history`,
    `history+process`), with the reader's token label, role, body and token id; and every read of the
    petitioner's identity with its purpose. Cases never under the denunciation regime are not audited, so their
    `reads` are empty. Reading this list is not itself recorded. Roles: `supervisor`, `admin`.
    """
    reads, next_before = await list_case_reads(store.pool, case_id, limit=limit, before=before)
    if not reads and before is None and await store.get_case(case_id) is None:
        raise ApiError(404, "not_found", f"no case {case_id!r}")
    identity = await list_identity_reads(store.pool, case_id) if before is None else []
    return CaseReads(
        case_id=case_id, reads=reads, next_before=next_before,
        identity_reads=[IdentityReadOut(id=r.id, reader=r.reader, role=r.role, body=r.body, token_id=r.token_id,
                                        purpose=r.purpose, read_at=r.read_at) for r in identity],
    )


@router.get(
    "/{case_id}/petitioner",
    response_model=SealedIdentity,
    summary="The petitioner's identity in clear, for those cleared to read it; every read recorded",
    responses=error_responses(401, 403, 404, 410, 422),
)
async def get_petitioner(
    case_id: CaseId,
    response: Response,
    store: Store,
    vault: Annotated[IdentityVault, Depends(vault_dependency)],
    principal: Annotated[Principal, Depends(require(*IDENTITY_ROLES))],
    purpose: Annotated[
        str, Query(min_length=5, max_length=500, description="Why the identity is needed; recorded with the read")
    ],
) -> SealedIdentity:
    """The identity the petitioner gave, unsealed: the only answer of the API that holds it.

    Cleared, whatever the kind (`api.identities.may_unseal`): the body that leads the case (the one resolving
    it: it must notify the petitioner, may hold a dialogue with them and must protect a denouncer) and
    `supervisor`. Refused (403, nothing revealed): every other body, coordinating bodies included, and the
    roles `intake`, `operator`, `admin`. `purpose` is required; the read is recorded in `identity_reads` with
    the reader, role, body, token and purpose before the identity is decrypted, and is listed by
    `GET /v1/cases/{id}/reads`. A petition received before every petitioner was sealed answers with the
    identity its first event holds (`ref`: `in-event`), read and recorded the same way. 404 when the case
    keeps no identity; 410 when it was erased (the answer says when and why).
    """
    case = await store.get_case(case_id)
    if case is None:
        raise ApiError(404, "not_found", f"no case {case_id!r}")
    if not may_unseal(principal, case):
        who = f"body {principal.body_id!r}" if principal.role == "body" else f"a {principal.role!r} token"
        raise ApiError(403, "forbidden", f"{who} is not cleared to read the petitioner's identity of case "
                       f"{case_id}: only the lead body handling it and supervisors are")
    ref = await vault.ref_of_case(case_id, case.summary.get("petitioner_ref"))
    try:
        identity = await vault.unseal(ref, principal.label, purpose, case_id=case_id, role=principal.role,
                                      body=principal.body_id, token_id=principal.id) if ref else None
    except IdentityErased as exc:
        when = f" on {exc.erasure.erased_at.isoformat()} ({exc.erasure.reason})" if exc.erasure else ""
        raise ApiError(410, "identity.erased",
                       f"the petitioner's identity of case {case_id} was erased{when}") from None
    if ref is None:  # received before every petitioner was sealed: the identity is in its first event
        identity = await vault.recorded_in_clear(
            next(iter(await store.read_stream(case_id, limit=1)), None), principal.label, purpose,
            case_id=case_id, role=principal.role, body=principal.body_id, token_id=principal.id)
    if identity is None:
        raise ApiError(404, "not_sealed", f"no sealed identity is kept for case {case_id}")
    response.headers["Cache-Control"] = "no-store"
    fields = {k: identity.get(k) for k in IDENTITY_FIELDS}
    return SealedIdentity(case_id=case_id, ref=ref or "in-event", **fields)


@router.get(
    "",
    response_model=CasePage,
    summary="Cases, filtered and paged",
    responses=error_responses(401, 403, 422),
)
async def get_cases(
    store: Store,
    principal: ListRoles,
    query: Filters,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000, description="`next_cursor` of the previous page")] = None,
) -> CasePage:
    """Cases newest first (or in the order `sort` names), `limit` at a time. A `body` token sees only its own
    body's cases: the `body` filter is set to its body (asking for another body is 403). Roles: `body`,
    `supervisor`, `operator`, `admin`. Listing is not recorded in the read audit: the rows carry no identity.
    """
    items, next_cursor, _ = await list_page(store, principal, query, limit=limit, cursor=cursor)
    return CasePage(items=items, next_cursor=next_cursor.encode() if next_cursor else None)


async def list_page(store: EventStore, principal: Principal, query: CaseQuery, *,
                    limit: int, cursor: str | None) -> tuple[list[CaseRecord], CaseCursor | None, CaseFilter]:
    """One page of the case list for `principal` (the API's list and the console's): the cases, the cursor of
    the next page, and the filters applied (a body held to its own cases)."""
    filters = stalled_scope(query.filters(principal, "list"), query)
    after = None
    if cursor is not None:
        try:
            after = CaseCursor.decode(cursor, query.sort)
        except ValueError as exc:
            raise validation_error("cursor", "cursor_invalid", str(exc), cursor) from None
    items, next_cursor = await list_cases(store.pool, filters, limit=limit, after=after, sort=query.sort)
    # Belt and braces: the SQL filter already scopes a body's list; never let a stray row through.
    return [case for case in items if may_access_case(principal, case)], next_cursor, filters
