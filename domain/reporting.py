"""Report periods of the action plan (`2026-H1`, `2026-H2`, `2026`) and when their reports fall due.

The plan asks for six-monthly and annual reports and gives no dates; `policy/report_calendar.yaml` holds them.
Its six-monthly report is the first half's (sơ kết 6 tháng đầu năm); the second half is reported within the year's
(tổng kết năm), so no report of its own is requested. Its figures can still be asked for: `2026-H2` runs from the
day after the first half ends to the end of the year, and is due with the year's report.
Pure: standard library and pydantic only.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .calendar import end_of_day

_MONTH_DAY = re.compile(r"^(\d\d)-(\d\d)$")
_PERIOD = re.compile(r"^(\d{4})(?:-(H[12]))?$")
#: The second half-year: figures only, its report being the year's (see the module).
SECOND_HALF_TITLE_VI = "Số liệu 6 tháng cuối năm"
SECOND_HALF_TITLE_EN = "Second half of the year (July to December)"


def _month_day(year: int, text: str) -> date:
    match = _MONTH_DAY.match(text)
    if not match:
        raise ValueError(f"{text!r}: must be MM-DD")
    return date(year, int(match.group(1)), int(match.group(2)))


class PeriodRule(BaseModel):
    """One kind of period: what it covers in a year and the day its report is due."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title_vi: str
    title_en: str
    starts: str
    ends: str
    due: str

    @field_validator("starts", "ends", "due")
    @classmethod
    def _valid(cls, value: str) -> str:
        _month_day(2024, value)  # a leap year, so 02-29 is accepted
        return value


class Period(BaseModel):
    """A report period: `2026-H1` (the first half of 2026), `2026-H2` (the second half) or `2026` (the year)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    starts_on: date
    ends_on: date
    due_on: date
    title_vi: str
    title_en: str

    @property
    def due_at(self) -> datetime:
        return end_of_day(self.due_on)


class ReportCalendar(BaseModel):
    """When each period's report is due, requested and compiled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    periods: dict[str, PeriodRule]
    request_before_days: int = Field(ge=0, le=180)
    compile_after_days: int = Field(ge=0, le=90)

    @field_validator("periods")
    @classmethod
    def _known(cls, value: dict[str, PeriodRule]) -> dict[str, PeriodRule]:
        unknown = set(value) - {"H1", "year"}
        if unknown or not value:
            raise ValueError(f"periods must be H1 and/or year, not {sorted(unknown) or 'none'}")
        return value

    def period(self, period_id: str) -> Period:
        """The period named `2026-H1`, `2026-H2` or `2026`; a malformed or unconfigured one is a ValueError naming
        it. `H2` is made from the H1 and year rules (see the module)."""
        match = _PERIOD.match(period_id)
        if not match:
            raise ValueError(f"period {period_id!r}: must be YYYY-H1, YYYY-H2 or YYYY")
        year, half = int(match.group(1)), match.group(2)
        if half == "H2":
            return self._second_half(period_id, year)
        kind = "H1" if half else "year"
        rule = self.periods.get(kind)
        if rule is None:
            raise ValueError(f"period {period_id!r}: the report calendar has no {kind} reports")
        return Period(
            id=period_id, kind=kind, starts_on=_month_day(year, rule.starts), ends_on=_month_day(year, rule.ends),
            due_on=_month_day(year, rule.due), title_vi=rule.title_vi, title_en=rule.title_en,
        )

    def _second_half(self, period_id: str, year: int) -> Period:
        first, whole = self.periods.get("H1"), self.periods.get("year")
        if first is None or whole is None:
            raise ValueError(f"period {period_id!r}: the second half is what the year adds to its first half; the "
                             "report calendar needs both H1 and year reports for it")
        starts_on = _month_day(year, first.ends) + timedelta(days=1)
        ends_on = _month_day(year, whole.ends)
        if starts_on > ends_on:
            raise ValueError(f"period {period_id!r}: the first half ends with the year; there is no second half")
        return Period(id=period_id, kind="H2", starts_on=starts_on, ends_on=ends_on, due_on=_month_day(year, whole.due),
                      title_vi=SECOND_HALF_TITLE_VI, title_en=SECOND_HALF_TITLE_EN)

    def periods_between(self, first: date, last: date) -> list[Period]:
        """Every period whose report falls due in [first, last], in order of due date (H2 has no report of its
        own: it is not among them)."""
        found = []
        for year in range(first.year, last.year + 1):
            for kind in ("H1", "year"):
                if kind in self.periods:
                    period = self.period(f"{year}-H1" if kind == "H1" else str(year))
                    if first <= period.due_on <= last:
                        found.append(period)
        return sorted(found, key=lambda p: p.due_on)

    def request_on(self, period: Period) -> date:
        return period.due_on - timedelta(days=self.request_before_days)

    def compile_on(self, period: Period) -> date:
        return period.due_on + timedelta(days=self.compile_after_days)


# -- the figures of a period's report ---------------------------------------------------------------------


class PetitionFigures(BaseModel):
    """Petitions of one kind and district in a period: received, accepted, resolved on time or late."""

    model_config = ConfigDict(frozen=True)

    kind: str
    district: str | None = None
    received: int = 0
    accepted: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    resolved_late: int = 0


class DeadlineFigures(BaseModel):
    """Deadlines of petitions of one kind missed in a period, by rule: the `DeadlineBreached` events that occurred
    in it (a coordinating body's sub-deadline counts under `coordination`)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    rule: str
    missed: int = 0


class TaskReportFigures(BaseModel):
    """One plan task's report for the period."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    task_id: str
    title_vi: str
    lead: list[str]
    report: Literal["submitted_on_time", "submitted_late", "missing", "not_requested"]
    due_on: date | None = None
    submitted_at: datetime | None = None
    submitted_by: str | None = None
    urged: int = 0
    escalated: bool = False


class BodyFigures(BaseModel):
    """What one lead body owed for the period and what came in."""

    model_config = ConfigDict(frozen=True)

    body: str
    tasks: int = 0
    submitted_on_time: int = 0
    submitted_late: int = 0
    missing: int = 0


class PeriodReport(BaseModel):
    """The report of a period as `GET /v1/reports/{period}` returns it. Figures count only events recorded
    up to `as_of`, so the same request gives the same figures later; a compiled report is stored as an event."""

    period: str
    title_vi: str
    starts_on: date
    ends_on: date
    due_on: date
    plan_id: str | None = None
    as_of: datetime
    compiled: bool = False
    tasks: list[TaskReportFigures] = Field(default_factory=list)
    bodies: list[BodyFigures] = Field(default_factory=list)
    petitions: list[PetitionFigures] = Field(default_factory=list)
    petition_totals: list[PetitionFigures] = Field(default_factory=list)
    #: Deadlines missed in the period by kind and rule (absent from reports compiled before it was counted).
    deadlines_missed: list[DeadlineFigures] = Field(default_factory=list)
