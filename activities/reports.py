"""The activity that compiles a period's report from the event store (for `ReportCycleWorkflow`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rules import load_report_calendar
from domain.reporting import PeriodReport, ReportCalendar
from eventstore import EventStore
from readside.reports import period_report


class CompileReportRequest(BaseModel):
    """Compile the report of `period` (`2026-H1`, `2026`) of plan `plan_id` (every plan's tasks when None) from
    the events recorded up to `as_of`."""

    model_config = ConfigDict(frozen=True)

    period: str = Field(min_length=1, max_length=20)
    plan_id: str | None = None
    as_of: AwareDatetime


class ReportActivities:
    """Holds the event store's pool and the report calendar (read once, here: a bad calendar file stops the
    worker at start). Built once in `worker.py`; takes an `EventStore` or its asyncpg pool."""

    def __init__(self, store_or_pool: EventStore | Any, calendar_path: Path | str | None = None) -> None:
        self.pool = store_or_pool.pool if isinstance(store_or_pool, EventStore) else store_or_pool
        self.calendar: ReportCalendar = load_report_calendar(calendar_path)

    @activity.defn(name="compile_report")
    async def compile_report(self, request: CompileReportRequest) -> PeriodReport:
        """The period's figures as of `request.as_of` (`readside.reports.period_report`), marked `compiled`.

        Reading only, so a retry is harmless and gives the same figures (the same `as_of`). A period the report
        calendar does not know, or a malformed one, is final: a non-retryable `ApplicationError` of type
        `report.period`. A database outage is retried by Temporal.
        """
        try:
            period = self.calendar.period(request.period)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="report.period", non_retryable=True) from exc
        report = await period_report(self.pool, period, plan_id=request.plan_id, as_of=request.as_of)
        return report.model_copy(update={"compiled": True})
