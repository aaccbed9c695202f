"""Report periods: `2026-H1` and `2026` as `policy/report_calendar.yaml` has them, and `2026-H2`, the second half,
made from them: counted like the others, with no report of its own requested."""

from __future__ import annotations

from datetime import date

import pytest

from activities.rules import load_report_calendar
from domain.reporting import ReportCalendar

CALENDAR = load_report_calendar()


def test_the_second_half_runs_from_after_the_first_to_the_end_of_the_year_due_with_the_year() -> None:
    first, second, year = (CALENDAR.period(p) for p in ("2026-H1", "2026-H2", "2026"))
    assert (second.id, second.kind) == ("2026-H2", "H2")
    assert (second.starts_on, second.ends_on) == (date(2026, 7, 1), date(2026, 12, 31))
    assert second.starts_on == date.fromordinal(first.ends_on.toordinal() + 1) and second.ends_on == year.ends_on
    assert second.due_on == year.due_on and second.title_vi == "Số liệu 6 tháng cuối năm"


def test_no_report_of_its_own_is_requested_for_the_second_half() -> None:
    due = [p.id for p in CALENDAR.periods_between(date(2026, 1, 1), date(2027, 12, 31))]
    assert due == ["2026-H1", "2026", "2027-H1", "2027"]


@pytest.mark.parametrize("period", ["2026-H3", "2026-h2", "2026-H", "26-H2"])
def test_other_halves_are_refused_naming_the_forms(period: str) -> None:
    with pytest.raises(ValueError, match="must be YYYY-H1, YYYY-H2 or YYYY"):
        CALENDAR.period(period)


def test_a_calendar_without_both_h1_and_year_has_no_second_half() -> None:
    only_years = ReportCalendar.model_validate({
        **CALENDAR.model_dump(), "periods": {"year": CALENDAR.periods["year"].model_dump()}})
    with pytest.raises(ValueError, match="needs both H1 and year"):
        only_years.period("2026-H2")
