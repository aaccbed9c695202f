"""Vietnamese working days and the civil-code rules for counting periods (docs/legal-reference.md §1).

Pure: no clock, no I/O, no third-party calendar. A `WorkingCalendar` is a snapshot built once outside the
workflow (see `activities.rules.build_calendar`) and recorded in event data, so that replaying a workflow
never recomputes a deadline from a newer holiday table. It therefore knows only the years it was built for:
asking about any other date is an error, never a guess.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, model_validator

#: Vietnam keeps UTC+7 all year (no daylight saving time).
VN_TZ = timezone(timedelta(hours=7), "ICT")

#: `calendar`: solar days (the default of the Civil Code); `working`: "ngày làm việc", only working days.
DayUnit = Literal["calendar", "working"]

_SATURDAY = 5
_END_OF_DAY = time(23, 59, 59, 999999)


#: The years a case's dates may lie in by default, and the widest range that may be set: the `holidays` package
#: knows Vietnam's lunar holidays for 1901-2100, and a case's deadlines may run two years past its receipt.
CASE_YEARS = (2000, 2098)
SUPPORTED_YEARS = (1901, 2098)


class CalendarRangeError(ValueError):
    """A date lies outside the years a calendar snapshot covers."""

    def __init__(self, day: date, first_year: int, last_year: int) -> None:
        self.day = day
        self.first_year = first_year
        self.last_year = last_year
        super().__init__(
            f"{day.isoformat()} is outside the working calendar, which covers {first_year}-01-01 to "
            f"{last_year}-12-31 only; build a calendar for a wider range of years"
        )


def is_weekend(d: date) -> bool:
    """Saturday or Sunday: state bodies work Monday to Friday (docs/legal-reference.md §1)."""
    return d.weekday() >= _SATURDAY


def end_of_day(d: date) -> datetime:
    """The last instant of day `d` in Vietnam: a period "ends at the end of its last day" (BLDS 2015 Art 148)."""
    return datetime.combine(d, _END_OF_DAY, tzinfo=VN_TZ)


def local_date(dt: datetime) -> date:
    """The Vietnamese calendar date of an aware instant. A naive datetime is refused: its zone is unknown."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()}: pass an aware datetime (UTC or ICT)")
    return dt.astimezone(VN_TZ).date()


class WorkingCalendar(BaseModel):
    """Which days state bodies work, for the whole years `first_year`..`last_year`.

    A day is a working day when it is Monday to Friday and not in `days_off`, or when it is a weekend day listed
    in `working_days` (a Saturday worked in exchange for a bridging day off). Both sets are kept minimal and
    canonical (weekdays only in `days_off`, weekend days only in `working_days`), so that two snapshots of the
    same calendar are equal and serialise to the same JSON.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_year: int
    last_year: int
    #: Weekdays that are not worked: public holidays, observed days, substituted days off, province extras.
    days_off: frozenset[date] = frozenset()
    #: Weekend days that are worked in exchange for a day off.
    working_days: frozenset[date] = frozenset()
    #: What built this snapshot (package version, override file), for the audit trail.
    source: str

    @model_validator(mode="after")
    def _check(self) -> WorkingCalendar:
        if not 1900 <= self.first_year <= self.last_year <= 9998:
            raise ValueError(f"bad year range {self.first_year}..{self.last_year}")
        for name, days, weekend in (("days_off", self.days_off, False), ("working_days", self.working_days, True)):
            for d in sorted(days):
                if not self.first_year <= d.year <= self.last_year:
                    raise ValueError(f"{name}: {d.isoformat()} is outside {self.first_year}..{self.last_year}")
                if is_weekend(d) != weekend:
                    kind = "a weekend day" if weekend else "a weekday (Monday to Friday)"
                    raise ValueError(f"{name}: {d.isoformat()} ({d:%A}) must be {kind}")
        return self

    @field_serializer("days_off", "working_days")
    def _sorted(self, days: frozenset[date]) -> list[date]:
        # A frozenset's order depends on the hash seed; recorded event data must not.
        return sorted(days)

    def covers(self, d: date) -> bool:
        """Whether `d` lies in the years this calendar knows."""
        return self.first_year <= d.year <= self.last_year

    def _require(self, d: date) -> None:
        if isinstance(d, datetime):
            raise TypeError(f"expected a date, got the datetime {d.isoformat()}: convert it with local_date()")
        if not self.covers(d):
            raise CalendarRangeError(d, self.first_year, self.last_year)

    def is_working_day(self, d: date) -> bool:
        """Whether state bodies work on `d`."""
        self._require(d)
        if is_weekend(d):
            return d in self.working_days
        return d not in self.days_off

    def next_working_day(self, d: date) -> date:
        """`d` itself if it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def add_days(self, start: date, amount: int, unit: DayUnit) -> date:
        """The last day of a period of `amount` days that starts with the event on `start`.

        The day of the event is not counted (BLDS 2015 Art 147).
        `calendar`: the period ends on `start + amount`; if that is a day off (weekend or holiday) it ends on the
        next working day instead (Art 148). A Saturday worked in exchange is a working day, so a period may end
        on it.
        `working`: the period ends on the `amount`-th working day after `start` (whatever `start` itself is).
        `amount` 0 gives the first working day on or after `start`.
        """
        if amount < 0:
            raise ValueError(f"a period cannot have a negative length ({amount} days)")
        self._require(start)
        if unit == "calendar":
            end = start + timedelta(days=amount)
            self._require(end)
            return self.next_working_day(end)
        if unit == "working":
            d = start
            for _ in range(amount):
                d = self.next_working_day(d + timedelta(days=1))
            return d if amount else self.next_working_day(start)
        raise ValueError(f"unknown unit {unit!r}: expected 'calendar' or 'working'")

    def working_days_between(self, after: date, until: date) -> int:
        """How many working days lie in the half-open interval (`after`, `until`]."""
        count = 0
        d = after + timedelta(days=1)
        while d <= until:
            count += self.is_working_day(d)
            d += timedelta(days=1)
        return count


def in_vietnam(value: Any) -> Any:
    """`value` with every aware `datetime` in it (in models, lists, tuples, dicts) at +07:00: the same instants,
    written as the deadlines are, so that nothing shown mixes `Z` with `+07:00`. Text is never touched."""
    if isinstance(value, datetime):
        return value.astimezone(VN_TZ) if value.tzinfo is not None else value
    if isinstance(value, BaseModel):
        changed = {}
        for name in type(value).model_fields:
            item = getattr(value, name, None)
            moved = in_vietnam(item)
            if moved is not item:
                changed[name] = moved
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, list | tuple):
        items = [in_vietnam(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        moved_items = {k: in_vietnam(v) for k, v in value.items()}
        if all(moved_items[k] is v for k, v in value.items()):
            return value
        return moved_items
    return value
