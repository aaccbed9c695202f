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

from domain.authority import BODY_TIES
from eventstore import CaseRecord, Pool
from eventstore.store import translate_errors

from .filters import MAX_WORDS

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
    #: Words each found in the case's text, letter case and diacritics aside (`case_search`, migration 0011).
    text: str | None = None
    #: Only the cases this body may read (`api.auth.may_access_case`): a `body` token's scope.
    reader: str | None = None
    #: Only these cases (`in_ids`) or all but these (`not_in_ids`).
    in_ids: tuple[str, ...] | None = None
    not_in_ids: tuple[str, ...] | None = None
    #: Only the cases the scheduled stalled scan holds stalled (true), or only the others (false): its open
    #: findings (`stalled_findings`, `ops.scan`), in the same statement.
    stalled: bool | None = None
    #: Only the cases the scan holds stalled for one of these reasons (`ops.stalled.StallReason`).
    stall_reasons: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Sort:
    """An order of the case list: the key's SQL (the expression of its index, migrations 0003 and 0012), its
    direction, and how a row's key is read back for the cursor."""

    key: str
    descending: bool
    column: str
    #: The key of a row whose column is empty (the sentinel of `key`).
    none: str


#: The orders of the case list. The default, newest first, pages on (created_at, case_id), which never change
#: once a case exists; the others on a key that may change while paging (a case's next due date moves when a
#: deadline is met): such a case may then be seen twice or not at all, never the others.
SORTS: dict[str, Sort] = {
    "-created_at": Sort("created_at", True, "created_at", ""),
    "due_at": Sort("coalesce(due_at, 'infinity'::timestamptz)", False, "due_at", "infinity"),
    "-received_at": Sort("coalesce(received_at, '-infinity'::timestamptz)", True, "received_at", "-infinity"),
    "received_at": Sort("coalesce(received_at, '-infinity'::timestamptz)", False, "received_at", "-infinity"),
}
DEFAULT_SORT = "-created_at"


@dataclass(frozen=True)
class CaseCursor:
    """A place in the case list, in one of its orders (`SORTS`): the last row's key and id (the id breaks ties
    between cases with the same key). The newest-first order's key is the creation time."""

    created_at: datetime
    case_id: str
    sort: str = DEFAULT_SORT
    #: The key of the last row in another order than the default: an ISO instant, or the sentinel of "none".
    key: str | None = None

    def encode(self) -> str:
        doc: dict[str, str] = {"t": self.created_at.isoformat(), "id": self.case_id}
        if self.sort != DEFAULT_SORT:
            doc.update(s=self.sort, k=self.key or "")
        raw = json.dumps(doc, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: str = DEFAULT_SORT) -> CaseCursor:
        """The cursor a previous page of the list in order `sort` returned; ValueError when it is not one."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            doc = json.loads(raw.decode("utf-8"))
            created_at = datetime.fromisoformat(doc["t"])
            case_id = doc["id"]
            given = doc.get("s", DEFAULT_SORT)
            key = doc.get("k")
        except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            raise ValueError("not a cursor returned by this endpoint") from None
        if not isinstance(case_id, str) or created_at.tzinfo is None:
            raise ValueError("not a cursor returned by this endpoint")
        if given != sort:
            raise ValueError(f"this cursor pages the list sorted by {given}, not by {sort}")
        if sort != DEFAULT_SORT:
            order = SORTS[sort]
            if not isinstance(key, str) or (key != order.none and not _instant(key)):
                raise ValueError("not a cursor returned by this endpoint")
        return cls(created_at=created_at, case_id=case_id, sort=sort, key=key)

    @classmethod
    def after(cls, case: CaseRecord, sort: str) -> CaseCursor:
        """The cursor of the page after `case`, its last row."""
        if sort == DEFAULT_SORT:
            return cls(created_at=case.created_at, case_id=case.case_id)
        order = SORTS[sort]
        value = getattr(case, order.column)
        return cls(created_at=case.created_at, case_id=case.case_id, sort=sort,
                   key=value.isoformat() if isinstance(value, datetime) else order.none)


def _instant(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ)


def _case(row: Any) -> CaseRecord:
    return CaseRecord.model_validate(dict(row))


class _Params:
    """Positional parameters of one statement: `add` returns the placeholder of a new value."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _readable_by(p: str) -> str:
    """The SQL of `api.auth.may_access_case` for a body, the parameter `p`: lead, `bodies`, or a tie in the
    row's authority facts (`domain.authority.BODY_TIES`; the keys are the module's constants, never input)."""
    ties = [f"summary->'authority'->>'{key}' = {p}" if key == "receiving" else f"summary->'authority'->'{key}' ? {p}"
            for key in BODY_TIES.values()]
    return "(" + " OR ".join([f"lead_body = {p}", f"bodies @> ARRAY[{p}::text]", *ties]) + ")"


def search_words(text: str, limit: int = MAX_WORDS) -> list[str]:
    """The words of a text search, in NFC, the same word once, at most `limit` (the first ones)."""
    return list(dict.fromkeys(unicodedata.normalize("NFC", text).split()))[:limit]


def _where(filters: CaseFilter, params: _Params) -> list[str]:
    """The conditions of `filters`, each value a parameter. `body` matches the lead body or any coordinating
    body; received dates are local (UTC+7) days, both ends included."""
    return [*_who_and_what(filters, params), *_text_and_dates(filters, params), *_ids_and_stalls(filters, params)]


def _who_and_what(filters: CaseFilter, params: _Params) -> list[str]:
    where: list[str] = []
    if filters.kind is not None:
        where.append(f"kind = {params.add(_nfc(filters.kind))}")
    if filters.status is not None:
        where.append(f"status = {params.add(_nfc(filters.status))}")
    if filters.body is not None:
        p = params.add(_nfc(filters.body))
        where.append(f"(lead_body = {p} OR bodies @> ARRAY[{p}::text])")
    if filters.reader is not None:
        where.append(_readable_by(params.add(_nfc(filters.reader))))
    if filters.district is not None:
        where.append(f"district = {params.add(_nfc(filters.district))}")
    if filters.overdue is not None:
        where.append(f"overdue = {params.add(filters.overdue)}")
    return where


def _text_and_dates(filters: CaseFilter, params: _Params) -> list[str]:
    where: list[str] = []
    if filters.text is not None and (words := search_words(filters.text)):
        found = " AND ".join(f"s.folded LIKE danvan_contains({params.add(w)})" for w in words)
        where.append(f"case_id IN (SELECT s.case_id FROM case_search s WHERE {found})")
    if filters.received_from is not None:
        where.append(f"received_at >= {params.add(local_day_start(filters.received_from))}")
    if filters.received_to is not None:
        where.append(f"received_at < {params.add(local_day_start(filters.received_to + timedelta(days=1)))}")
    return where


def _ids_and_stalls(filters: CaseFilter, params: _Params) -> list[str]:
    where: list[str] = []
    if filters.in_ids is not None:
        where.append(f"case_id = ANY({params.add(list(filters.in_ids))}::text[])")
    if filters.not_in_ids:
        where.append(f"NOT (case_id = ANY({params.add(list(filters.not_in_ids))}::text[]))")
    if filters.stalled is not None:
        found = ("case_id IN (SELECT f.case_id FROM stalled_findings f WHERE f.cleared_at IS NULL "
                 "AND f.subject = 'case')")
        where.append(found if filters.stalled else f"NOT ({found})")
    if filters.stall_reasons:
        reasons = params.add(list(filters.stall_reasons))
        where.append("case_id IN (SELECT f.case_id FROM stalled_findings f WHERE f.cleared_at IS NULL "
                     f"AND f.reason = ANY({reasons}::text[]))")
    return where


async def matching_case_ids(pool: Pool, filters: CaseFilter, *, limit: int) -> list[str]:
    """The ids of the cases matching `filters`, oldest first, `limit + 1` at most (a repair job's target set)."""
    params = _Params()
    where = _where(filters, params)
    sql = "SELECT case_id FROM cases" + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY created_at, case_id LIMIT {params.add(limit + 1)}"
    with translate_errors():
        rows = await pool.fetch(sql, *params.values)
    return [r["case_id"] for r in rows]


async def existing_case_ids(pool: Pool, case_ids: list[str]) -> set[str]:
    """Which of `case_ids` the `cases` projection holds."""
    with translate_errors():
        rows = await pool.fetch("SELECT case_id FROM cases WHERE case_id = ANY($1::text[])", case_ids)
    return {r["case_id"] for r in rows}


def list_cases_sql(
    filters: CaseFilter, *, limit: int, after: CaseCursor | None = None, fence: bool = False,
    sort: str = DEFAULT_SORT,
) -> tuple[str, list[Any]]:
    """The statement of `list_cases` and its parameters (the benchmark runs exactly this).

    `fence`: select the matching rows first, then sort them (see `fence_received_range`), instead of leaving
    the planner free to walk the newest-first index until it has found a page.
    """
    params = _Params()
    where = _where(filters, params)
    order = SORTS[sort]
    direction, beyond = ("DESC", "<") if order.descending else ("ASC", ">")
    if after is not None and sort == DEFAULT_SORT:
        where.append(f"(created_at, case_id) < ({params.add(after.created_at)}, {params.add(after.case_id)})")
    elif after is not None:
        where.append(f"({order.key}, case_id) {beyond} ({params.add(after.key)}::text::timestamptz, "
                     f"{params.add(after.case_id)})")
    inner = f"SELECT {_CASE_COLUMNS} FROM cases"
    if where:
        inner += " WHERE " + " AND ".join(where)
    # OFFSET 0 keeps the planner from pushing the ORDER BY ... LIMIT into the subquery.
    sql = f"SELECT * FROM ({inner} OFFSET 0) AS c" if fence else inner
    # One row more than asked says whether there is a next page.
    sql += f" ORDER BY {order.key} {direction}, case_id {direction} LIMIT {params.add(limit + 1)}"
    return sql, params.values


def fence_received_range(filters: CaseFilter, today: date, oldest: date | None) -> bool:
    """Whether a received-date range is better read through `cases_received_idx` and sorted than by walking the
    list's newest-first index.

    The planner assumes the matching cases are spread evenly through the newest-first order, so for a range
    in the past it walks that index from today, through every case received since the range ended, before it
    finds one (95 ms for a month two and a half years back, against 5 ms for reading the range and sorting it,
    in `bench.listing`). Cases arrive at a fairly steady rate and are created when they are received, so the
    number of days since the range ended stands for what that walk skips, and the length of the range for
    what reading it costs: read the range when it is the shorter. `oldest` is the earliest received date on
    record, for a range open at its start.
    """
    if filters.received_to is None:
        return False
    days_after = (today - filters.received_to).days
    start = filters.received_from or oldest
    if days_after <= 0 or start is None:
        return False
    return (filters.received_to - start).days < days_after


async def list_cases(
    pool: Pool, filters: CaseFilter, *, limit: int, after: CaseCursor | None = None, sort: str = DEFAULT_SORT
) -> tuple[list[CaseRecord], CaseCursor | None]:
    """One page of cases matching `filters`, newest first, and the cursor of the next page (None at the end).

    `body` matches the lead body or any coordinating body; received dates are local (UTC+7) days, both
    ends included.
    """
    fence = False
    if filters.received_to is not None and sort == DEFAULT_SORT:
        oldest = None
        if filters.received_from is None:
            with translate_errors():
                first = await pool.fetchval("SELECT min(received_at) FROM cases")
            oldest = first.astimezone(LOCAL_TZ).date() if first is not None else None
        fence = fence_received_range(filters, datetime.now(LOCAL_TZ).date(), oldest)
    sql, args = list_cases_sql(filters, limit=limit, after=after, fence=fence, sort=sort)
    with translate_errors():
        rows = await pool.fetch(sql, *args)
    cases = [_case(r) for r in rows[:limit]]
    next_cursor = CaseCursor.after(cases[-1], sort) if len(rows) > limit else None
    return cases, next_cursor


# -- counts for a dashboard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCount:
    """The cases with one value of a column (`value` null: the column is empty, e.g. no lead body yet)."""

    value: str | None
    count: int
    overdue: int


@dataclass(frozen=True)
class CaseCounts:
    total: int
    overdue: int
    by_status: list[GroupCount]
    by_kind: list[GroupCount]
    by_lead_body: list[GroupCount]
    by_district: list[GroupCount]


#: GROUPING(status, kind, lead_body, district) of each grouping set: a bit is 1 where the column is aggregated.
_GROUPS = {0b0111: "by_status", 0b1011: "by_kind", 0b1101: "by_lead_body", 0b1110: "by_district", 0b1111: "total"}


def count_cases_sql(filters: CaseFilter) -> tuple[str, list[Any]]:
    """The statement of `count_cases`: one round trip, five grouping sets.

    The matching cases are first counted per (status, kind, lead body, district), a few thousand groups at
    most, which PostgreSQL does in one pass in the order of `cases_counts_idx` (an index-only scan, migration
    0006); the grouping sets then run over those groups instead of over every case. Measured by
    `bench.listing`: about a third faster than grouping sets straight over the rows.
    """
    params = _Params()
    where = _where(filters, params)
    inner = "SELECT status, kind, lead_body, district, count(*) AS n, count(*) FILTER (WHERE overdue) AS o FROM cases"
    if where:
        inner += " WHERE " + " AND ".join(where)
    inner += " GROUP BY status, kind, lead_body, district"
    sql = (
        "SELECT GROUPING(status, kind, lead_body, district) AS grp, status, kind, lead_body, district, "
        "coalesce(sum(n), 0)::bigint AS n, coalesce(sum(o), 0)::bigint AS n_overdue "
        f"FROM ({inner}) AS g GROUP BY GROUPING SETS ((status), (kind), (lead_body), (district), ())"
    )
    return sql, params.values


async def count_cases(pool: Pool, filters: CaseFilter) -> CaseCounts:
    """How many cases match `filters`: in all, overdue, and by status, kind, lead body and district (each
    group with its own overdue count), largest group first."""
    sql, args = count_cases_sql(filters)
    with translate_errors():
        rows = await pool.fetch(sql, *args)
    groups: dict[str, list[GroupCount]] = {name: [] for name in _GROUPS.values()}
    column = {"by_status": "status", "by_kind": "kind", "by_lead_body": "lead_body", "by_district": "district"}
    for row in rows:
        name = _GROUPS[row["grp"]]
        value = row[column[name]] if name in column else None
        groups[name].append(GroupCount(value=value, count=row["n"], overdue=row["n_overdue"]))
    for items in groups.values():
        items.sort(key=lambda g: (-g.count, g.value is None, g.value or ""))
    total = groups["total"][0] if groups["total"] else GroupCount(None, 0, 0)
    return CaseCounts(total=total.count, overdue=total.overdue, by_status=groups["by_status"],
                      by_kind=groups["by_kind"], by_lead_body=groups["by_lead_body"],
                      by_district=groups["by_district"])


# -- who read a case ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseRead:
    id: int
    case_id: str
    reader: str
    token_id: str | None
    role: str
    body: str | None
    what: str
    read_at: datetime


async def record_case_read(
    pool: Pool, case_id: str, *, reader: str, token_id: str | None, role: str, body: str | None, what: str
) -> None:
    """Record that someone read a case (the read audit of denunciations, `case_reads`). Called before the
    answer is sent: when the record cannot be written, the read fails."""
    with translate_errors(case_id):
        await pool.execute(
            "INSERT INTO case_reads (case_id, reader, token_id, role, body, what) VALUES ($1, $2, $3, $4, $5, $6)",
            case_id, reader, token_id, role, body, what,
        )


async def list_case_reads(
    pool: Pool, case_id: str, *, limit: int, before: int | None = None
) -> tuple[list[CaseRead], int | None]:
    """The recorded reads of a case, newest first, `limit` at a time; the second value is the `before` of the
    next page (None at the end)."""
    with translate_errors(case_id):
        rows = await pool.fetch(
            "SELECT id, case_id, reader, token_id, role, body, what, read_at FROM case_reads "
            "WHERE case_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            case_id, before, limit + 1,
        )
    reads = [CaseRead(**dict(r)) for r in rows[:limit]]
    return reads, (reads[-1].id if len(rows) > limit else None)


# -- a body's work queue -----------------------------------------------------------------------------------


async def open_cases_of(pool: Pool, body: str, *, kinds: list[str], ended: list[tuple[str, str]], cap: int
                        ) -> tuple[list[CaseRecord], bool]:
    """The cases of `kinds` the body may read (`api.auth.may_access_case`) that have not ended (`ended`: the
    (kind, status) pairs in which a case of that kind is over), overdue first, then by their next due date;
    at most `cap`, and whether more were left out."""
    params = _Params()
    where = [
        _readable_by(params.add(_nfc(body))),
        f"kind = ANY({params.add(kinds)}::text[])",
        f"NOT (kind || ':' || status = ANY({params.add([f'{k}:{s}' for k, s in ended])}::text[]))",
    ]
    sql = (f"SELECT {_CASE_COLUMNS} FROM cases WHERE {' AND '.join(where)} "
           f"ORDER BY overdue DESC, due_at ASC NULLS LAST, case_id LIMIT {params.add(cap + 1)}")
    with translate_errors():
        rows = await pool.fetch(sql, *params.values)
    return [_case(r) for r in rows[:cap]], len(rows) > cap
