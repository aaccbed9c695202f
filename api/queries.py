"""Read queries the API needs beyond `EventStore`'s own, over the `cases` projection.

Every user value goes in as an asyncpg parameter; the SQL text is assembled only from fixed fragments.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import asyncpg

from eventstore import CaseRecord
from eventstore.store import translate_errors

#: The province's civil time (Vietnam, UTC+7, no daylight saving): a received date range is in local days.
LOCAL_TZ = timezone(timedelta(hours=7), "ICT")

_CASE_COLUMNS = (
    "case_id, kind, status, title, lead_body, bodies, district, commune, source, external_ref, "
    "received_at, due_at, overdue, version, summary, created_at, updated_at"
)


def _nfc(value: str | None) -> str | None:
    """Stored text is NFC (see `eventstore.canonical`), so filter values are compared in NFC too."""
    return unicodedata.normalize("NFC", value) if value is not None else None


@dataclass(frozen=True)
class CaseFilter:
    """Filters of `GET /v1/cases`; None means no filter."""

    kind: str | None = None
    status: str | None = None
    body: str | None = None
    district: str | None = None
    overdue: bool | None = None
    received_from: date | None = None
    received_to: date | None = None


@dataclass(frozen=True)
class CaseCursor:
    """A place in the case list. The list is ordered newest first by (created_at, case_id), both of which
    never change once a case exists, so paging is stable while cases are being updated; the case id breaks
    ties between cases created at the same instant."""

    created_at: datetime
    case_id: str

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "id": self.case_id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> CaseCursor:
        """The cursor a previous page returned; ValueError when it is not one."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            doc = json.loads(raw.decode("utf-8"))
            created_at = datetime.fromisoformat(doc["t"])
            case_id = doc["id"]
        except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise ValueError("not a cursor returned by this endpoint") from None
        if not isinstance(case_id, str) or created_at.tzinfo is None:
            raise ValueError("not a cursor returned by this endpoint")
        return cls(created_at=created_at, case_id=case_id)


def local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ)


def _case(row: Any) -> CaseRecord:
    return CaseRecord.model_validate(dict(row))


async def list_cases(
    pool: asyncpg.Pool, filters: CaseFilter, *, limit: int, after: CaseCursor | None = None
) -> tuple[list[CaseRecord], CaseCursor | None]:
    """One page of cases matching `filters`, newest first, and the cursor of the next page (None at the end).

    `body` matches the lead body or any coordinating body; received dates are local (UTC+7) days, both
    ends included.
    """
    where: list[str] = []
    args: list[Any] = []

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.kind is not None:
        where.append(f"kind = {param(_nfc(filters.kind))}")
    if filters.status is not None:
        where.append(f"status = {param(_nfc(filters.status))}")
    if filters.body is not None:
        p = param(_nfc(filters.body))
        where.append(f"(lead_body = {p} OR bodies @> ARRAY[{p}::text])")
    if filters.district is not None:
        where.append(f"district = {param(_nfc(filters.district))}")
    if filters.overdue is not None:
        where.append(f"overdue = {param(filters.overdue)}")
    if filters.received_from is not None:
        where.append(f"received_at >= {param(local_day_start(filters.received_from))}")
    if filters.received_to is not None:
        where.append(f"received_at < {param(local_day_start(filters.received_to + timedelta(days=1)))}")
    if after is not None:
        where.append(f"(created_at, case_id) < ({param(after.created_at)}, {param(after.case_id)})")
    sql = f"SELECT {_CASE_COLUMNS} FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    # One row more than asked says whether there is a next page.
    sql += f" ORDER BY created_at DESC, case_id DESC LIMIT {param(limit + 1)}"
    with translate_errors():
        rows = await pool.fetch(sql, *args)
    cases = [_case(r) for r in rows[:limit]]
    next_cursor = CaseCursor(created_at=cases[-1].created_at, case_id=cases[-1].case_id) if len(rows) > limit else None
    return cases, next_cursor
