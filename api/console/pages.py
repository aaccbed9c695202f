"""The console's pages: sign in and out, the case list with its counts, a case, plan progress, period reports.
(The stalled-cases queue and its repairs are in `api.console.stalled`.)

Each page reads through the same code as the matching API endpoint (`api.queries`, `CaseQuery`, the event
store, `api.timeline`, `readside.reports`) and applies the same rules (`api.auth` scoping, `api.identities`
clearance), so the console can show nothing the token could not read through the API.

Read audit: a denunciation's case page is recorded in `case_reads` before it is sent, like `GET /v1/cases/{id}`
and its history: the reader's label, role, body and token id, with `what` = `console` (or `console+process`
when the page merges Temporal's process history). Revealing the denouncer's identity is a POST with a stated
purpose, recorded in `identity_reads` by `IdentityVault.unseal`, exactly as `GET /v1/cases/{id}/petitioner`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from temporalio.service import RPCError

from activities.rules import known_rules
from danvan import waits
from domain.plan import PLAN_ID_PATTERN
from domain.reporting import PeriodReport
from eventstore import EventStore
from integrity.lookup import read_signed
from readside.report_output import report_xlsx, report_zip, xlsx_file_name
from readside.reports import current_report, for_body

from ..attachments import list_attachments
from ..auth import check_case_access, may_access_case
from ..deps import AppSettings, Store, Temporal
from ..errors import ApiError, validation_error
from ..filters import FIRST_DAY, PERIOD_PATTERN, check_instant
from ..identities import (
    IDENTITY_ROLES,
    PETITION_KINDS,
    IdentityErased,
    may_unseal,
    shown_events,
    under_denunciation_regime,
)
from ..queries import LOCAL_TZ, CaseFilter, count_cases
from ..routes.attachments import file_response
from ..routes.cases import PROCESS_TIMEOUT, Filters, audit_read, export_response, list_page, vault_of
from ..routes.reports import known_period, report_calendar
from ..temporal import TemporalConnection, TemporalUnavailableError
from ..timeline import DomainEntry, ProcessEntry, domain_entries, fetch_process, merge
from ..tokens import Principal
from .actions import Attempt, case_forms, command_flash
from .flash import clear_flash, take_flash
from .i18n import LABELS, Translator, language_of
from .nav import QUEUE_ROLES, READERS
from .render import NO_STORE, render
from .session import (
    LOGIN_COOKIE,
    ConsoleError,
    check_login_csrf,
    check_session_csrf,
    clear_login_nonce,
    clear_session,
    end_request_session,
    login_csrf,
    new_login_nonce,
    principal_of_token,
    read_form,
    root_of,
    set_login_nonce,
    signed_in,
    start_session,
)
from .stalled import FlashView, case_stalls
from .views import (
    MAX_PLAN_TASKS,
    all_cases,
    board_rows,
    deadline_rows,
    plan_views,
    reference,
    timeline_rows,
    today_local,
)

log = logging.getLogger("danvan.console")
router = APIRouter()

Reader = Annotated[Principal, Depends(signed_in(*READERS))]
CaseId = Annotated[str, Path(min_length=1, max_length=200)]
#: Cases on one page of the list.
PAGE_SIZE = 25
#: The statuses offered by the list's filter (every status of every kind of case).
STATUSES = tuple(LABELS["status"])
KINDS = tuple(LABELS["kind"])


def _home(request: Request) -> str:
    return root_of(request) + "/cases"


def safe_next(request: Request, value: str | None) -> str | None:
    """`value` if it is a page of this console to go back to after signing in; anything else (another site, a
    scheme, a path climbing out of the console, control characters, the sign-in page itself) is dropped."""
    root = root_of(request)
    if not value or not value.startswith(root + "/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or ".." in value.partition("?")[0]:
        return None
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", value) or value.startswith((root + "/login", root + "/logout")):
        return None
    return value


# -- sign in, sign out -----------------------------------------------------------------------------------------


def _login_page(request: Request, *, status: int = 200, error: str | None = None, notice: str | None = None,
                next_path: str | None = None) -> Response:
    """The sign-in form, with the CSRF token of a login nonce (the one the browser holds, or a new one)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or new_login_nonce()
    response = render(request, "login.html", {
        "form_csrf": login_csrf(request, nonce), "error": error, "notice": notice, "next_path": next_path,
    }, status=status, principal=None, headers=NO_STORE)
    set_login_nonce(response, request, nonce)
    return response


@router.get("/", include_in_schema=False)
async def home(request: Request) -> RedirectResponse:
    """The console's front door: the case list (which sends a visitor who is not signed in to sign in)."""
    return RedirectResponse(_home(request), status_code=303)


@router.get("/login")
async def login_form(
    request: Request,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    ended: bool = False,
    out: bool = False,
) -> Response:
    """The sign-in form. `ended`: the session's token stopped working; `out`: the user has just signed out."""
    notice = "login.session_ended" if ended else "login.signed_out" if out else None
    if notice is None and next:
        notice = "login.needed"
    return _login_page(request, notice=notice, next_path=safe_next(request, next))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token by the API's rules; start a server-side session (its id in the cookie) and go to the page
    asked for."""
    form = await read_form(request)
    next_path = safe_next(request, form.get("next"))
    if not check_login_csrf(request, form.get("csrf")):
        return _login_page(request, status=403, error="login.expired_form", next_path=next_path)
    token = form.get("token", "").strip()
    if not token:
        return _login_page(request, status=422, error="login.empty", next_path=next_path)
    principal = await principal_of_token(request, token)
    if principal is None:
        return _login_page(request, status=401, error="login.invalid", next_path=next_path)
    response = RedirectResponse(next_path or _home(request), status_code=303)
    await start_session(response, request, token)
    clear_login_nonce(response, request)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session on the server and forget its cookie (the token itself stays valid: revoking it is
    `danvan token` / the API's job, and ends every session of the token)."""
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    await end_request_session(request)
    response = RedirectResponse(root_of(request) + "/login?out=1", status_code=303)
    clear_session(response, request)
    return response


# -- the case list ---------------------------------------------------------------------------------------------


#: The groups each count table shows (the largest first); the others are summed in one row, so the page stays short.
MAX_COUNT_GROUPS = 8


def typed_day(name: str, text: str | None) -> date | None:
    """A day typed as dd/mm/yyyy, as a clerk writes it whatever the browser's language (empty: none); 422 naming
    the field otherwise."""
    if text is None or not text.strip():
        return None
    found = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*", text)
    try:
        if found is None:
            raise ValueError
        return date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
    except ValueError:
        raise validation_error(name, "day_format", f"{name} must be a day written dd/mm/yyyy", text) from None


def _export_url(request: Request, format: str) -> str:
    """The export of the list as filtered and sorted on this page (all its pages)."""
    kept = {k: v for k, v in request.query_params.items() if k not in {"cursor", "limit", "lang", "format"}}
    return root_of(request) + "/cases/export?" + urlencode({**kept, "format": format})


@router.get("/cases/export")
async def cases_export(
    request: Request,
    store: Store,
    principal: Reader,
    query: Filters,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    """The list's cases, as filtered and sorted on the page, as a CSV or XLSX file in the page's language."""
    return await export_response(store, principal, query, format, language_of(request))


@router.get("/cases")
async def cases_page(
    request: Request,
    store: Store,
    principal: Reader,
    query: Filters,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE,
    from_day: Annotated[str | None, Query(max_length=10)] = None,
    to_day: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The filters of `GET /v1/cases` (a body sees only its own cases), one page newest first, and the counts of
    `GET /v1/cases/counts` for the same filters."""
    query = dataclasses.replace(query, received_from=typed_day("from_day", from_day) or query.received_from,
                                received_to=typed_day("to_day", to_day) or query.received_to)
    items, next_cursor, filters = await list_page(store, principal, query, limit=limit, cursor=cursor)
    counts = await count_cases(store.pool, filters)
    districts = sorted(str(g.value) for g in counts.by_district if g.value)
    ref, lang = reference(request), language_of(request)
    return render(request, "cases.html", {
        "items": items, "counts": counts, "query": query, "filters": filters, "kinds": KINDS,
        "statuses": STATUSES, "districts": districts, "body_codes": ref.body_codes(),
        "bodies_by_name": sorted(((code, ref.body_name(code, lang)) for code in ref.body_codes()),
                                 key=lambda pair: pair[1].casefold()),
        "next_url": _with_cursor(request, next_cursor.encode()) if next_cursor else None,
        "first_url": _first_page(request) if cursor else None,
        "max_groups": MAX_COUNT_GROUPS,
        "export_csv": _export_url(request, "csv"), "export_xlsx": _export_url(request, "xlsx"),
    }, section="cases", headers=NO_STORE)


def _with_cursor(request: Request, cursor: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["cursor"] = cursor
    return request.url.path + "?" + urlencode(params)


def _first_page(request: Request) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    return request.url.path + ("?" + urlencode(params) if params else "")


# -- a case ----------------------------------------------------------------------------------------------------


async def _process_entries(temporal: TemporalConnection, case_id: str) -> list[ProcessEntry] | None:
    """Temporal's history of the case (every run), or None when Temporal does not answer in time."""
    try:
        client = await temporal.get()
        async with asyncio.timeout(waits.time_left(PROCESS_TIMEOUT)):
            process = await fetch_process(client, case_id)
    except (TemporalUnavailableError, RPCError, TimeoutError):
        return None
    return process.entries


async def _case_page(
    request: Request,
    case_id: str,
    store: EventStore,
    settings: AppSettings,
    temporal: TemporalConnection,
    principal: Principal,
    *,
    process: bool = False,
    identity: dict[str, str | None] | None = None,
    identity_missing: bool = False,
    identity_erased: bool = False,
    purpose_error: bool = False,
    status: int = 200,
    attempt: Attempt | None = None,
    flash: FlashView | None = None,
) -> Response:
    """Render a case: its state, deadlines, board, timeline and integrity, after recording the read; and, when
    the case is stalled now (`api.console.stalled.case_stalls`), a banner saying why, with a link to the queue
    for those who may open it."""
    case = await store.get_case(case_id)
    if case is not None:
        check_case_access(principal, case)
    elif principal.role == "body" and await store.stream_version(case_id) > 0:
        # Without a case row nothing shows the case to be the body's (the rule of the history endpoint).
        raise ConsoleError(403, "error.forbidden")
    # Held to the latest signed checkpoint, as the history endpoint is (`integrity.lookup`).
    events, integrity, _ = await read_signed(store, getattr(request.app.state, "signed_heads", None), case_id)
    if case is None and not events:
        raise ConsoleError(404, "error.no_case", case_id=case_id)
    # The commands the reader may send now, judged on the state the recorded events fold to (with the rules
    # they name by digest: a failure to read those leaves the forms to authority alone).
    try:
        await known_rules(store, events)
    except Exception as exc:
        log.warning("console: the rules of %s cannot be read: %r", case_id, exc)
    forms = case_forms(request, case, events, principal, attempt)
    events = shown_events(events)  # an identity recorded in clear before sealing is never shown
    entries: list[DomainEntry | ProcessEntry] = list(domain_entries(events))
    process_down = False
    if process:
        found = await _process_entries(temporal, case_id)
        if found is None:
            process_down = True
        else:
            entries = merge(domain_entries(events), found)
    await audit_read(store, case, principal, "console+process" if process else "console")
    files = await list_attachments(store.pool, case_id, "")
    case_url = root_of(request) + "/cases/" + quote(case_id, safe="")
    stalls = await case_stalls(temporal, store, case, case_id)

    t = Translator(language_of(request))
    ref = reference(request)
    deadlines = deadline_rows(case, t, ref, today_local()) if case is not None else []
    temporal_url = (f"{settings.temporal_ui_url}/namespaces/{quote(temporal.namespace, safe='')}"
                    f"/workflows/{quote(case_id, safe='')}")
    # The identity section follows `GET /v1/cases/{id}/petitioner`: every petition keeps one, opened for the
    # lead body and supervisors; a case that is or ever was a denunciation is shown under that regime.
    petition = case is not None and case.kind in PETITION_KINDS
    denunciation = case is not None and await under_denunciation_regime(store.pool, case)
    cleared = case is not None and petition and principal.role in IDENTITY_ROLES and may_unseal(principal, case)
    context: dict[str, Any] = {
        "case_id": case_id, "case": case, "events": events, "deadlines": deadlines,
        "board": board_rows(case, events, deadlines, t) if case is not None else [],
        "timeline": timeline_rows(entries, events, t, ref), "process": process, "process_down": process_down,
        "integrity": integrity, "temporal_url": temporal_url, "denunciation": denunciation,
        "petition": petition, "cleared": cleared, "identity_erased": identity_erased,
        "identity": identity, "identity_missing": identity_missing, "purpose_error": purpose_error,
        "case_url": case_url,
        "files": [{**f.model_dump(), "url": f"{case_url}/files/{f.sha256}"} for f in files],
        "stalls": stalls, "sees_queue": principal.role in QUEUE_ROLES, "forms": forms, "flash": flash,
        "queue_url": root_of(request) + "/stalled" + (f"?kind={quote(case.kind, safe='')}" if case else ""),
    }
    if request.method != "GET":  # the language switch of a POST answer goes back to the case page
        context["switch_lang_url"] = context["case_url"] + "?lang=" + ("en" if t.lang == "vi" else "vi")
    return render(request, "case.html", context, section="cases", status=status, headers=NO_STORE)


@router.get("/cases/{case_id}")
async def case_page(
    request: Request,
    case_id: CaseId,
    store: Store,
    settings: AppSettings,
    temporal: Temporal,
    principal: Reader,
    process: bool = False,
) -> Response:
    """A case: state, deadlines with their legal basis, the coordination board, the timeline (with `process=1`,
    merged with Temporal's process history) and the integrity of its hash chain. Roles: those of
    `GET /v1/cases/{id}/history`; a body sees its own cases only. Below the state, the forms of the commands
    the reader may send now (`api.console.actions`), and the flash message of the last one sent."""
    flash = command_flash(take_flash(request), Translator(language_of(request)))
    response = await _case_page(request, case_id, store, settings, temporal, principal, process=process,
                                flash=flash)
    clear_flash(response, request)
    return response


@router.get("/cases/{case_id}/files/{sha256}")
async def case_file(
    request: Request,
    case_id: CaseId,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    store: Store,
    principal: Reader,
) -> Response:
    """One of a case's files, opened from its page: the bytes as `GET /v1/cases/{id}/attachments/{sha256}` serves
    them, to whoever may read the case (the session's access), the read of a denunciation's file recorded."""
    case = await store.get_case(case_id)
    if case is None:
        raise ConsoleError(404, "error.no_case", case_id=case_id)
    check_case_access(principal, case)
    try:
        return await file_response(request.app.state.attachments, store, case, sha256, principal)
    except ApiError as exc:
        key = {404: "error.no_file", 410: "error.file_erased"}.get(exc.status, "error.file_unreadable")
        raise ConsoleError(exc.status, key) from exc


@router.post("/cases/{case_id}/identity")
async def reveal_identity(
    request: Request,
    case_id: CaseId,
    store: Store,
    settings: AppSettings,
    temporal: Temporal,
    principal: Annotated[Principal, Depends(signed_in(*IDENTITY_ROLES))],
) -> Response:
    """The denouncer's identity, for the lead body and supervisors only (`api.identities.may_unseal`), with a
    stated purpose; the read is recorded before anything is decrypted. The answer is the case page with the
    identity shown once (never kept by the browser)."""
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    case = await store.get_case(case_id)
    if case is None:
        raise ConsoleError(404, "error.no_case", case_id=case_id)
    check_case_access(principal, case)
    if not may_unseal(principal, case):
        raise ConsoleError(403, "identity.not_cleared")
    if case.kind not in PETITION_KINDS:
        raise ConsoleError(404, "identity.none")
    purpose = form.get("purpose", "").strip()
    if not 5 <= len(purpose) <= 500:
        return await _case_page(request, case_id, store, settings, temporal, principal, purpose_error=True,
                                status=422)
    vault = vault_of(request)
    ref = await vault.ref_of_case(case_id, case.summary.get("petitioner_ref"))
    try:
        identity = await vault.unseal(ref, principal.label, purpose, case_id=case_id, role=principal.role,
                                      body=principal.body_id, token_id=principal.id) if ref else None
    except IdentityErased:
        return await _case_page(request, case_id, store, settings, temporal, principal, identity_erased=True)
    if ref is None:  # received before every petitioner was sealed (`GET /v1/cases/{id}/petitioner`)
        identity = await vault.recorded_in_clear(
            next(iter(await store.read_stream(case_id, limit=1)), None), principal.label, purpose,
            case_id=case_id, role=principal.role, body=principal.body_id, token_id=principal.id)
    return await _case_page(request, case_id, store, settings, temporal, principal, identity=identity,
                            identity_missing=identity is None)


# -- plan progress ---------------------------------------------------------------------------------------------


@router.get("/plan")
async def plan_page(
    request: Request, store: Store, principal: Reader,
    plan: Annotated[str | None, Query(min_length=1, max_length=100, pattern=PLAN_ID_PATTERN)] = None,
) -> Response:
    """Every plan task from the `cases` projection, by task and by body (a body sees the tasks it leads or
    coordinates), under its plan's header (term, tasks expected, report cycles started); `plan`: that plan's
    only."""
    reader = principal.body_id if principal.role == "body" else None
    tasks, truncated = await all_cases(store.pool, CaseFilter(kind="plan_task", reader=reader), cap=MAX_PLAN_TASKS)
    tasks = [case for case in tasks if may_access_case(principal, case)]
    plans, _ = await all_cases(store.pool, CaseFilter(kind="plan"), cap=200)
    views = [view for view in plan_views(plans, tasks) if plan is None or view.plan_id == plan]
    return render(request, "plan.html", {
        "plans": views, "truncated": truncated, "max_tasks": MAX_PLAN_TASKS,
    }, section="plan", headers=NO_STORE)


# -- period reports --------------------------------------------------------------------------------------------


def parse_as_of(text: str | None) -> datetime | None:
    """An instant typed in the form: `30/06/2026 17:00` (or the day alone, its end), as a clerk writes it, or
    ISO 8601 (`2026-06-30T17:00`); Vietnam time unless it carries an offset. ValueError when it is not one."""
    if not text or not text.strip():
        return None
    typed = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2}))?\s*", text)
    if typed is not None:
        day, month, year, hour, minute = typed.groups()
        if hour is None:
            return datetime(int(year), int(month), int(day), 23, 59, 59, tzinfo=LOCAL_TZ)
        return datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=LOCAL_TZ)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_TZ)


async def _report(request: Request, store: EventStore, principal: Principal, period: str, plan: str | None,
                  as_of: str | None) -> PeriodReport:
    """The report `GET /v1/reports/{period}` answers for the same arguments and token."""
    known = known_period(request, period)
    try:
        instant = parse_as_of(as_of)
    except ValueError:
        raise validation_error("as_of", "datetime_parsing", Translator(language_of(request))("reports.bad_as_of"),
                               as_of) from None
    check_instant("as_of", instant)
    report = await current_report(store.pool, known, plan_id=plan, as_of=instant, now=datetime.now(UTC))
    if principal.role == "body" and principal.body_id is not None:
        report = for_body(report, principal.body_id)
    return report


PeriodText = Annotated[str | None, Query(max_length=20, pattern=PERIOD_PATTERN)]
PlanText = Annotated[str | None, Query(min_length=1, max_length=100, pattern=PLAN_ID_PATTERN)]
AsOfText = Annotated[str | None, Query(max_length=40)]


@router.get("/reports")
async def reports_page(
    request: Request, store: Store, principal: Reader, period: PeriodText = None, plan: PlanText = None,
    as_of: AsOfText = None,
) -> Response:
    """A period's report (the current period by default) with a link to its CSV; a body sees its own tasks."""
    calendar = report_calendar(request)
    today = today_local()
    # Every period from the year of the first case received (at least last year's) to next year's.
    first = await store.pool.fetchval("SELECT min(received_at) FROM cases")
    since = min(today.year - 1, first.astimezone(LOCAL_TZ).year if first is not None else today.year)
    options = calendar.periods_between(date(max(since, FIRST_DAY.year), 1, 1), date(today.year + 1, 12, 31))
    if period is None:
        upcoming = [p for p in options if p.due_on >= today]
        period = (upcoming[0] if upcoming else options[-1]).id if options else str(today.year)
    report = await _report(request, store, principal, period, plan, as_of)
    params = {k: v for k, v in (("plan", plan), ("as_of", as_of)) if v}
    query = "?" + urlencode(params) if params else ""
    csv_url = f"{root_of(request)}/reports/{quote(period, safe='')}/csv" + query
    xlsx_url = f"{root_of(request)}/reports/{quote(period, safe='')}/xlsx" + query
    known = calendar.period(period)
    return render(request, "reports.html", {
        "report": report, "options": options, "period": period, "plan": plan or "", "as_of": as_of or "",
        "csv_url": csv_url, "xlsx_url": xlsx_url,
        "period_title": known.title_vi if language_of(request) == "vi" else known.title_en,
    }, section="reports", headers=NO_STORE)


@router.get("/reports/{period}/csv")
async def report_csv_file(
    request: Request, store: Store, principal: Reader,
    period: Annotated[str, Path(max_length=20)], plan: PlanText = None, as_of: AsOfText = None,
) -> Response:
    """The same report as one CSV per table in a ZIP (`readside.report_output.report_zip`), as a download."""
    report = await _report(request, store, principal, period, plan, as_of)
    return Response(report_zip(report), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="report-{report.period}-csv.zip"',
                             **NO_STORE})


@router.get("/reports/{period}/xlsx")
async def report_xlsx_file(
    request: Request, store: Store, principal: Reader,
    period: Annotated[str, Path(max_length=20)], plan: PlanText = None, as_of: AsOfText = None,
) -> Response:
    """The same report as an XLSX workbook, one sheet per table (`readside.report_output.report_xlsx`)."""
    report = await _report(request, store, principal, period, plan, as_of)
    return Response(report_xlsx(report),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{xlsx_file_name(report)}"', **NO_STORE})

