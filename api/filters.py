"""The filters of the list and search endpoints, declared once: type, pattern, length and enum, so that the
OpenAPI schema states each rule and a bad value is a 422 naming the parameter and the rule it breaks
(`string_pattern_mismatch`, `string_too_long`, `enum`, `greater_than_equal`, `date_range`...), before
anything is asked of PostgreSQL or Temporal.

The values then go into SQL only as `$n` parameters (`api.queries`, `ops.stalled`) and into a Temporal list
filter only through `danvan.visibility`, which refuses what it cannot quote exactly; the patterns here keep
such values out first (a body code or a case kind never holds a quote, a backslash or a control character).

| filter | rule |
|---|---|
| `kind` | one of `CASE_KINDS` |
| `status` | `STATUS_PATTERN`: lower-case letters and `_`, at most 50 |
| `body` | a body code, `domain.bodies.BODY_CODE_PATTERN` (`UBND_TINH`, `UBND_HUYEN:kinh-mon`), at most 64 |
| `district` | 1 to 100 characters of text, no control character (Vietnamese with its diacritics, compared in NFC) |
| `q` | 1 to 200 characters of text, no control character; up to `MAX_WORDS` words, each found in the text |
| `plan` | a plan id, `domain.plan.PLAN_ID_PATTERN`, at most 100 |
| `period` | `YYYY-H1`, `YYYY-H2` or `YYYY`, the year 2000 to 2100 |
| dates | ISO 8601 days from 2000-01-01 to 2100-12-31; a range's end not before its start |
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Header, Query
from pydantic import AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

from domain import front_supervision, plan_cases, plan_tasks, report_cycles
from domain.bodies import BODY_CODE_PATTERN
from domain.petitions.model import PetitionKind
from domain.plan import PLAN_ID_PATTERN

from .errors import ApiError, FieldError, validation_error


class CaseKind(StrEnum):
    """Every kind of case the `cases` projection holds (`DOMAIN_KINDS`, spelled out for the OpenAPI schema)."""

    COMPLAINT = "complaint"
    DENUNCIATION = "denunciation"
    RECOMMENDATION = "recommendation"
    VOTER_PETITION = "voter_petition"
    PLAN_TASK = "plan_task"
    PLAN = "plan"
    REPORT_CYCLE = "report_cycle"
    FRONT_SUPERVISION = "front_supervision"


#: The kinds as the domain names them; `CaseKind` must hold exactly these (`tests/unit/test_filters.py`).
DOMAIN_KINDS = frozenset({*(k.value for k in PetitionKind), plan_tasks.CASE_KIND, plan_cases.CASE_KIND,
                          report_cycles.CASE_KIND, front_supervision.CASE_KIND})
CASE_KINDS: tuple[str, ...] = tuple(k.value for k in CaseKind)

STATUS_PATTERN = r"^[a-z][a-z_]{0,49}$"
#: Text filters compared with stored text (a district): no control character (C0, DEL, C1).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
#: A report period: the first half (`2026-H1`), the second (`2026-H2`) or the year (`2026`), years 2000-2099.
PERIOD_PATTERN = r"^20\d\d(-H[12])?$"
#: The days a date filter may name.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
#: The OpenAPI's statement of those years (`FIRST_DAY` to `LAST_DAY`) for a day (`YYYY-MM-DD`) and a moment.
DAY_PATTERN = r"^(20[0-9][0-9]|2100)-[0-9][0-9]-[0-9][0-9]$"
MOMENT_PATTERN = r"^(20[0-9][0-9]|2100)-[0-9][0-9]-[0-9][0-9][Tt ]"
_DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOMENT_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ].+")


def _written(shape: re.Pattern[str], rule: str, what: str) -> BeforeValidator:
    """Only ISO 8601 text: pydantic would also read a number (`1700000000`) as a Unix timestamp."""
    def check(value: Any) -> Any:
        if isinstance(value, str) and not shape.fullmatch(value):
            raise PydanticCustomError(rule, f"Input should be {what}")
        return value
    return BeforeValidator(check)


#: A day in a query: `YYYY-MM-DD`; its range is `check_day`'s, whose refusal names both ends.
Day = Annotated[date, _written(_DAY_TEXT, "date_from_datetime_parsing", "a day written YYYY-MM-DD")]
#: A moment in a query: ISO 8601 with its offset; its range is `check_instant`'s.
Moment = Annotated[AwareDatetime, _written(_MOMENT_TEXT, "datetime_parsing",
                                           "a moment written in ISO 8601 (YYYY-MM-DDTHH:MM:SS+07:00)")]

KindFilter = Annotated[CaseKind | None, Query(description="The kind of case")]
StatusFilter = Annotated[str | None, Query(min_length=1, max_length=50, pattern=STATUS_PATTERN,
                                           description="The case's status (`received`, `accepted`, `active`...)")]
BodyCode = Annotated[str | None, Query(min_length=2, max_length=64, pattern=BODY_CODE_PATTERN,
                                       description="A body code (`UBND_TINH`, `UBND_HUYEN:kinh-mon`)")]
DistrictFilter = Annotated[str | None, Query(min_length=1, max_length=100, pattern=TEXT_PATTERN,
                                             description="The district, as written (`Nam Sách`)")]
#: A text search: its words (at most this many) must each appear in the case's text.
MAX_WORDS = 8
TextSearch = Annotated[str | None, Query(
    min_length=1, max_length=200, pattern=TEXT_PATTERN,
    description=f"Words to find in a case's subject, content, references, district and commune, each anywhere, "
                f"whatever the letter case and diacritics (`nam sach` finds `Nam Sách`); at most {MAX_WORDS} "
                "words")]
PlanFilter = Annotated[str | None, Query(min_length=1, max_length=100, pattern=PLAN_ID_PATTERN,
                                         description="A plan id: only that plan's tasks")]


def check_day(name: str, day: date | None) -> None:
    """422 naming `name` (rule `date_range`) unless `day` is between `FIRST_DAY` and `LAST_DAY`."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise validation_error(name, "date_range", f"{name} must be between {FIRST_DAY} and {LAST_DAY}", str(day))


def check_range(start_name: str, start: date | None, end_name: str, end: date | None) -> None:
    """Each end in range, and the end not before the start (422 naming the end, rule `date_range`)."""
    check_day(start_name, start)
    check_day(end_name, end)
    if start is not None and end is not None and end < start:
        raise validation_error(end_name, "date_range", f"{end_name} must not be before {start_name}", str(end))


#: An `Idempotency-Key`: 1 to 200 printable ASCII characters (0x20-0x7E), no space at either end (a UUID, a
#: ULID, `KN-0001-accept`...). Anything else is 422 naming `idempotency-key` (rule `string_pattern_mismatch`).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,198}[\x21-\x7e])?$"
IdempotencyKey = Annotated[str | None, Header(
    min_length=1, max_length=200, pattern=IDEMPOTENCY_KEY_PATTERN,
    description="Makes a retry safe: the same key with the same request applies once and answers a repeat "
                "with what it did; the same key with another request (another command, another sender) is "
                "refused with 422 `idempotency.key_reused`. 1 to 200 printable ASCII characters.")]


def check_instant(name: str, instant: datetime | None) -> None:
    """422 naming `name` (rule `date_range`) unless `instant` falls on a day from `FIRST_DAY` to `LAST_DAY`."""
    if instant is not None and not FIRST_DAY <= instant.date() <= LAST_DAY:
        raise validation_error(name, "date_range", f"{name} must be between {FIRST_DAY} and {LAST_DAY}",
                               instant.isoformat())


def key_reused(message: str) -> ApiError:
    """The 422 of an `Idempotency-Key` already used for another request (rule `idempotency.key_reused`)."""
    return ApiError(422, "idempotency.key_reused", message,
                    fields=[FieldError(field="idempotency-key", rule="idempotency.key_reused", message=message)])
