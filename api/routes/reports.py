"""The period reports of the action plan: `GET /v1/reports/{period}` (JSON, CSV one table per file, a ZIP of
them, or XLSX with one sheet per table)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from activities.rules import load_report_calendar
from domain.reporting import Period, PeriodReport, ReportCalendar
from readside.report_output import (
    TABLES,
    TableName,
    csv_file_name,
    report_xlsx,
    report_zip,
    table_csv,
    xlsx_file_name,
)
from readside.reports import current_report, for_body

from ..auth import require
from ..deps import Store
from ..errors import error_responses, validation_error
from ..filters import MOMENT_PATTERN, PERIOD_PATTERN, Moment, PlanFilter, check_instant
from ..routing import ApiRoute
from ..tokens import Principal

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=ApiRoute)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: Reading a report: everyone who reads cases but an intake system. See `get_report` for what a body sees.
READERS = ("body", "supervisor", "operator", "admin")


def report_calendar(request: Request) -> ReportCalendar:
    """The report calendar: `app.state.report_calendar` when the app was given one, else
    `policy/report_calendar.yaml`, read on first use and kept for the life of the app."""
    calendar: ReportCalendar | None = getattr(request.app.state, "report_calendar", None)
    if calendar is None:
        calendar = load_report_calendar()
        request.app.state.report_calendar = calendar
    return calendar


@router.get(
    "/{period}",
    response_model=PeriodReport,
    summary="A period's report: plan tasks' reports by task and body, petitions by kind and district",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}},
                          "application/zip": {"schema": {"type": "string", "format": "binary"}},
                          XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
              "description": "The report (JSON); with `format=csv&table=NAME` that table as CSV (UTF-8 with BOM, "
                             "CRLF); with `format=csv` alone a ZIP of one CSV per table; with `format=xlsx` a "
                             "workbook with one sheet per table"},
        **error_responses(401, 403, 422, 503),
    },
)
async def get_report(
    request: Request,
    store: Store,
    principal: Annotated[Principal, Depends(require(*READERS))],
    period: Annotated[str, Path(max_length=20, pattern=PERIOD_PATTERN,
                                description="`2026-H1` (January to June), `2026-H2` (July to December) or "
                                            "`2026` (the year)")],
    plan: PlanFilter = None,
    as_of: Annotated[
        Moment | None,
        Query(json_schema_extra={"pattern": MOMENT_PATTERN},
              description="Count the events recorded up to this instant (ISO 8601 with its offset). Default: "
                          "the compiled report when there is one, else now"),
    ] = None,
    format: Annotated[Literal["json", "csv", "xlsx"],
                      Query(description="`json` (default), `csv` or `xlsx`")] = "json",
    table: Annotated[TableName | None,
                     Query(description="with `format=csv`: the table to give (default: all of them, in a ZIP)")] = None,
) -> PeriodReport | Response:
    """The period's figures (`domain.reporting.PeriodReport`): each plan task's report for the period (on time,
    late, missing, not requested; urged, escalated), per lead body what it owed and what came in, and the
    petitions received, accepted and resolved (on time, late) in the period, by kind and district, with totals.

    Only events recorded up to `as_of` count, so the same `as_of` gives the same figures later. Without `as_of`:
    the report the period's report cycle compiled for `plan` (stream `report-<plan>-<period>`; without `plan`,
    the one compiled report of the period when exactly one plan has one), with `compiled: true`; when none is
    compiled yet, the figures as of now.

    The report has five tables: `tasks`, `bodies`, `petitions`, `petition_totals` and `deadlines_missed`
    (`readside.report_output`). `format=csv&table=NAME`: that table as CSV, the JSON's field names as its
    header row, `report-<period>-<table>.csv`; `format=csv` without `table`: the five CSVs in one ZIP,
    `report-<period>-csv.zip`; `format=xlsx`: a workbook with a sheet saying what the report is and one sheet per
    table, Vietnamese heads, `report-<period>.xlsx`. `table` with another format: 422 naming `table`. A malformed
    period, or one the report calendar does not know: 422 naming `period`. `2026-H2` (July to December) has no
    report of its own (the year's covers it): its figures are counted all the same.

    Roles: `supervisor`, `operator`, `admin` see the whole report. `body` sees the tasks it leads and its own
    row of `bodies` (a body reads its own cases only), and the petition figures whole: they are counts by kind
    and district that name no case and no person. Not `intake`: a sending system reads only what it sent.
    """
    known = known_period(request, period)
    check_instant("as_of", as_of)
    if table is not None and format != "csv":
        raise validation_error("table", "table_needs_csv", f"table: only with format=csv (one of {', '.join(TABLES)}"
                               "); an XLSX has every table, one sheet each", table)
    report = await current_report(store.pool, known, plan_id=plan, as_of=as_of, now=datetime.now(UTC))
    if principal.role == "body" and principal.body_id is not None:
        report = for_body(report, principal.body_id)
    if format == "json":
        return report
    return report_file(report, format, table)


def report_file(report: PeriodReport, format: Literal["csv", "xlsx"], table: TableName | None) -> Response:
    """The report as a download: one table's CSV, a ZIP of every table's, or an XLSX workbook."""
    if format == "xlsx":
        body, media_type, name = report_xlsx(report), XLSX_TYPE, xlsx_file_name(report)
    elif table is not None:
        body, media_type, name = (table_csv(report, table).encode("utf-8"), "text/csv; charset=utf-8",
                                  csv_file_name(report, table))
    else:
        body, media_type, name = report_zip(report), "application/zip", f"report-{report.period}-csv.zip"
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def known_period(request: Request, period: str) -> Period:
    """The period `period` names in the report calendar; 422 naming `period` when it is malformed or unknown."""
    if not re.fullmatch(PERIOD_PATTERN, period):
        raise validation_error("period", "string_pattern_mismatch",
                               f"period {period!r}: must be YYYY-H1, YYYY-H2 or YYYY",
                               period)
    try:
        return report_calendar(request).period(period)
    except ValueError as exc:
        raise validation_error("period", "period_unknown", str(exc), period) from None
