"""Counting days on the Vietnamese calendar (docs/legal-reference.md §1), on the `holidays` package's real data.

The holiday dates asserted here were read from `holidays` 0.109 and match the government's announced days off
for 2025 and 2026; the 2027 Tết dates are the package's own computation from the lunar calendar.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.rules import build_calendar
from domain.calendar import VN_TZ, CalendarRangeError, WorkingCalendar, end_of_day, local_date

CAL = build_calendar(2025, 2028)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- which days are worked ---


def test_hung_kings_day_2026_falls_on_sunday_and_is_observed_on_monday() -> None:
    assert not CAL.is_working_day(date(2026, 4, 26))
    assert not CAL.is_working_day(date(2026, 4, 27))
    assert CAL.is_working_day(date(2026, 4, 28))


def test_saturday_22_august_2026_is_worked_in_exchange_for_monday_31_august() -> None:
    assert CAL.is_working_day(date(2026, 8, 22))
    assert not CAL.is_working_day(date(2026, 8, 31))
    assert not CAL.is_working_day(date(2026, 9, 1))
    assert not CAL.is_working_day(date(2026, 9, 2))
    assert CAL.is_working_day(date(2026, 9, 3))


def test_national_day_2025_gives_monday_and_tuesday_off() -> None:
    assert not CAL.is_working_day(date(2025, 9, 1))
    assert not CAL.is_working_day(date(2025, 9, 2))
    assert CAL.is_working_day(date(2025, 9, 3))


def test_tet_2025_is_off_from_monday_27_january_to_sunday_2_february() -> None:
    assert CAL.is_working_day(date(2025, 1, 24))
    assert not any(CAL.is_working_day(d) for d in days(date(2025, 1, 25), date(2025, 2, 2)))
    assert CAL.is_working_day(date(2025, 2, 3))


def test_tet_2026_is_off_from_saturday_14_to_sunday_22_february() -> None:
    assert CAL.is_working_day(date(2026, 2, 13))
    assert not any(CAL.is_working_day(d) for d in days(date(2026, 2, 14), date(2026, 2, 22)))
    assert CAL.is_working_day(date(2026, 2, 23))


def test_tet_2027_is_off_from_thursday_4_to_wednesday_10_february() -> None:
    assert CAL.is_working_day(date(2027, 2, 3))
    assert not any(CAL.is_working_day(d) for d in days(date(2027, 2, 4), date(2027, 2, 10)))
    assert CAL.is_working_day(date(2027, 2, 11))


def test_saturday_26_april_2025_is_worked_for_friday_2_may() -> None:
    assert CAL.is_working_day(date(2025, 4, 26))
    assert not CAL.is_working_day(date(2025, 5, 2))


def test_ordinary_weekends_are_off_and_ordinary_weekdays_worked() -> None:
    assert not CAL.is_working_day(date(2025, 3, 8))
    assert not CAL.is_working_day(date(2025, 3, 9))
    assert CAL.is_working_day(date(2025, 3, 10))


def test_the_snapshot_agrees_with_the_package_on_every_day() -> None:
    package = holidays.country_holidays("VN", years=range(2025, 2029))
    for d in days(date(2025, 1, 1), date(2028, 12, 31)):
        assert CAL.is_working_day(d) == package.is_working_day(d), d


def test_next_working_day_is_the_day_itself_when_worked() -> None:
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 13)
    assert CAL.next_working_day(date(2026, 2, 14)) == date(2026, 2, 23)


# --- counting periods ---


def test_the_day_of_the_event_is_not_counted() -> None:
    friday = date(2025, 3, 14)
    assert CAL.add_days(friday, 1, "working") == date(2025, 3, 17)
    assert CAL.add_days(date(2025, 3, 10), 1, "calendar") == date(2025, 3, 11)


def test_a_calendar_period_ending_on_a_saturday_ends_on_monday() -> None:
    assert CAL.add_days(date(2025, 3, 5), 10, "calendar") == date(2025, 3, 17)  # 15 March is a Saturday


def test_a_calendar_period_ending_on_the_last_day_of_tet_ends_on_the_first_working_day_after() -> None:
    assert CAL.add_days(date(2026, 2, 10), 10, "calendar") == date(2026, 2, 23)  # 20 Feb: last Tết weekday
    assert CAL.add_days(date(2026, 2, 12), 10, "calendar") == date(2026, 2, 23)  # 22 Feb: Sunday closing Tết


def test_a_calendar_period_ending_on_a_worked_saturday_ends_that_saturday() -> None:
    assert CAL.add_days(date(2026, 7, 23), 30, "calendar") == date(2026, 8, 22)


def test_a_working_day_period_spanning_tet_skips_all_of_it() -> None:
    # Friday 13 Feb 2026, then nine days off (14-22 Feb).
    assert CAL.add_days(date(2026, 2, 13), 1, "working") == date(2026, 2, 23)
    # Thursday 12 Feb: Fri 13 (1), Mon 23 (2) .. Thu 26 (5).
    assert CAL.add_days(date(2026, 2, 12), 5, "working") == date(2026, 2, 26)
    assert CAL.working_days_between(date(2026, 2, 12), date(2026, 2, 26)) == 5


def test_a_working_day_period_crossing_a_worked_saturday_counts_it() -> None:
    # Thursday 20 Aug 2026: Fri 21, Sat 22 (worked), Mon 24.
    assert CAL.add_days(date(2026, 8, 20), 3, "working") == date(2026, 8, 24)
    # Thursday 24 Apr 2025: Fri 25, Sat 26 (worked), Mon 28, Tue 29, then 30 Apr - 4 May off.
    assert CAL.add_days(date(2025, 4, 24), 5, "working") == date(2025, 5, 5)


def test_a_period_may_start_on_a_day_off() -> None:
    saturday = date(2025, 3, 8)
    assert CAL.add_days(saturday, 1, "working") == date(2025, 3, 10)
    assert CAL.add_days(saturday, 2, "calendar") == date(2025, 3, 10)


def test_a_zero_period_ends_on_the_first_working_day_on_or_after_the_start() -> None:
    assert CAL.add_days(date(2025, 3, 8), 0, "calendar") == date(2025, 3, 10)
    assert CAL.add_days(date(2025, 3, 7), 0, "working") == date(2025, 3, 7)


def test_a_negative_period_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add_days(date(2025, 3, 7), -1, "calendar")


# --- range ---


def test_a_date_outside_the_calendar_years_is_an_error_naming_the_date_and_the_range() -> None:
    cal = build_calendar(2026, 2026)
    with pytest.raises(CalendarRangeError, match=r"2025-12-31 .*2026-01-01 to 2026-12-31"):
        cal.is_working_day(date(2025, 12, 31))
    with pytest.raises(CalendarRangeError, match="2027-01-04"):
        cal.add_days(date(2026, 12, 15), 20, "calendar")
    with pytest.raises(CalendarRangeError):
        cal.add_days(date(2026, 12, 24), 10, "working")


def test_a_datetime_is_not_taken_for_a_date() -> None:
    with pytest.raises(TypeError, match="local_date"):
        CAL.is_working_day(datetime(2026, 1, 5, 9, tzinfo=VN_TZ))


# --- time zone ---


def test_end_of_day_is_the_last_microsecond_in_vietnam() -> None:
    eod = end_of_day(date(2026, 2, 23))
    assert eod.isoformat() == "2026-02-23T23:59:59.999999+07:00"
    assert eod.astimezone(UTC) == datetime(2026, 2, 23, 16, 59, 59, 999999, tzinfo=UTC)


def test_local_date_uses_vietnam_time() -> None:
    assert local_date(datetime(2026, 2, 22, 17, 30, tzinfo=UTC)) == date(2026, 2, 23)
    assert local_date(datetime(2026, 2, 22, 16, 59, tzinfo=UTC)) == date(2026, 2, 22)
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 2, 22, 12, 0))


# --- the snapshot as recorded data ---


def test_a_calendar_survives_a_json_round_trip() -> None:
    text = CAL.model_dump_json()
    assert WorkingCalendar.model_validate_json(text) == CAL
    assert '"2026-08-22"' in text


def test_the_json_lists_dates_sorted() -> None:
    dumped = CAL.model_dump(mode="json")
    assert dumped["days_off"] == sorted(dumped["days_off"])
    assert dumped["working_days"] == ["2025-04-26", "2026-08-22"]


def test_a_calendar_refuses_non_canonical_days() -> None:
    with pytest.raises(ValueError, match="must be a weekday"):
        WorkingCalendar(first_year=2026, last_year=2026, days_off=frozenset({date(2026, 4, 26)}), source="t")
    with pytest.raises(ValueError, match="must be a weekend day"):
        WorkingCalendar(first_year=2026, last_year=2026, working_days=frozenset({date(2026, 4, 27)}), source="t")
    with pytest.raises(ValueError, match="outside"):
        WorkingCalendar(first_year=2026, last_year=2026, days_off=frozenset({date(2027, 1, 1)}), source="t")


# --- properties over 2025-2027 ---

starts = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
amounts = st.integers(min_value=1, max_value=90)


@settings(max_examples=300, deadline=None)
@given(start=starts, amount=amounts)
def test_a_calendar_period_ends_on_the_first_working_day_on_or_after_start_plus_amount(
    start: date, amount: int
) -> None:
    due = CAL.add_days(start, amount, "calendar")
    nominal = start + timedelta(days=amount)
    assert due > start
    assert CAL.is_working_day(due)
    assert due >= nominal
    assert not any(CAL.is_working_day(d) for d in days(nominal, due - timedelta(days=1)))


@settings(max_examples=300, deadline=None)
@given(start=starts, amount=amounts)
def test_a_working_period_holds_exactly_amount_working_days_after_the_start(start: date, amount: int) -> None:
    due = CAL.add_days(start, amount, "working")
    assert due > start
    assert CAL.is_working_day(due)
    assert sum(CAL.is_working_day(d) for d in days(start + timedelta(days=1), due)) == amount


_PACKAGE = holidays.country_holidays("VN", years=range(2025, 2029))


@settings(max_examples=200, deadline=None)
@given(start=starts, amount=amounts)
def test_a_working_period_agrees_with_the_package_count(start: date, amount: int) -> None:
    assert CAL.add_days(start, amount, "working") == _PACKAGE.get_nth_working_day(start, amount)
