"""Reads a supervisor makes: list pages, dashboard counts and a long case history, each against plain SQL.

    .venv/bin/python -m bench.listing [--database-url URL] [--cases 100000] [--events 1000000]
                                      [--iterations 200] [--json out.json] [--quick]

The benchmark creates its own database `bench_<random>` on the server, migrates it with
`eventstore.migrate`, seeds it, and drops it at the end, also after an error, Ctrl-C or a plain `kill`.

Seeding (not timed):
  - one case with 1,000 events, appended through `EventStore.append` in batches of 100, so its hash chain is
    real and `verify` passes;
  - `--cases - 1` more cases with their `cases` rows (COPY), realistic mixes of kind, status, lead and
    coordinating bodies, district, overdue flags and received dates over three years;
  - their events (`--events - 1000` in all, 1 to about 20 per case) and stream heads, written by one
    `INSERT … SELECT … generate_series` in SQL. These events carry placeholder hashes: the chain of these
    streams does not verify, which does not matter for timing reads (nothing here verifies them).
  - then VACUUM ANALYZE, as a database in steady state would be.

Timed after a warm-up, the API's code and its baselines interleaved (alternating which goes first):
  - every single-filter page of `GET /v1/cases` through `api.queries.list_cases`: kind, status, body and
    district (the most and the least common value of each), overdue (true, false), no filter, and five
    received-date ranges (the last 30 days; a month a year ago; a month 2.5 years ago; until 2 years ago; 2
    years ago to a week ago); each as a first page and a deep page (a cursor 5,000 rows in, or halfway);
    baseline: the plain SELECT … ORDER BY created_at DESC, case_id DESC LIMIT 51 through asyncpg, rows left
    as records. `--iterations` runs each;
  - the dashboard counts through `api.queries.count_cases` (one statement), unfiltered and with each of
    those filters; baselines: the same statement through asyncpg, and the plain way (one GROUP BY query per
    dimension plus a total: five round trips). Half as many runs (they cost tens of milliseconds);
  - the 1,000-event history through `EventStore.read_stream`; baseline: the same SELECT through asyncpg.
    `--iterations` runs;
  - for information (half as many runs): other ways to read that history; `read_verified` (what
    `GET /v1/cases/{id}/history` reads: the rows once, their chain checked) against `read_stream` + `verify`;
    and four requests through the HTTP API in-process (httpx ASGI transport: auth, routing, JSON; no network).
The plan of each API statement (EXPLAIN) is printed with the figures.

Targets: p95 under 100 ms for every page and every count, under 20 ms for the history read.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import logging
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from pydantic import TypeAdapter

from api.app import create_app
from api.queries import (
    LOCAL_TZ,
    CaseCursor,
    CaseFilter,
    count_cases,
    count_cases_sql,
    fence_received_range,
    list_cases,
    list_cases_sql,
)
from api.tokens import issue_token
from bench.append_throughput import DEFAULT_URL, machine_info
from danvan.postgres import create_database, drop_database, redact, with_database
from danvan.settings import Settings
from eventstore import CaseRow, EventStore, NewEvent, Pool, RecordedEvent, migrate

PAGE = 50
HISTORY_EVENTS = 1000
PAGE_TARGET_MS = 100.0
COUNT_TARGET_MS = 100.0
HISTORY_TARGET_MS = 20.0

# -- the data ----------------------------------------------------------------------------------------------

DISTRICTS = [  # the 12 district-level units of the province, most populous first, weights roughly by population
    ("Hải Dương", 14), ("Chí Linh", 11), ("Kinh Môn", 10), ("Cẩm Giàng", 9), ("Nam Sách", 8), ("Gia Lộc", 8),
    ("Tứ Kỳ", 8), ("Thanh Hà", 8), ("Kim Thành", 7), ("Ninh Giang", 6), ("Bình Giang", 5), ("Thanh Miện", 4),
]
LEAD_BODIES = [  # petitions go mostly to the people's committees; plan tasks to Party and Front bodies
    ("UBND_TINH", 28), ("UBND_HUYEN", 22), ("THANH_TRA_TINH", 8), ("SO_TAI_NGUYEN", 8), ("UBND_CAP_DUOI", 6),
    ("BAN_TCD", 5), ("UBMTTQ_TINH", 4), ("THANH_TRA_HUYEN", 4), ("HDND_TINH", 3), ("CA_TINH", 3),
    ("SO_NOI_VU", 2), ("BTGDV_TU", 2), ("HND", 1), ("HLHPN", 1), ("TINH_DOAN", 0.6), ("HCCB", 0.4),
    ("LDLD", 0.3), ("CQ_TON_GIAO", 0.2),
]
COORDINATORS = ["UBMTTQ_TINH", "SO_TAI_NGUYEN", "THANH_TRA_TINH", "CA_TINH", "SO_NOI_VU", "UBMTTQ_HUYEN", "HND"]
KINDS = [("complaint", 44), ("recommendation", 28), ("denunciation", 12), ("voter_petition", 11), ("plan_task", 5)]
PETITION_STATUSES = [
    ("archived", 34), ("closed", 15), ("accepted", 11), ("verifying", 6), ("received", 6), ("decided", 5),
    ("notified", 5), ("classified", 4), ("implementing", 3), ("forwarded", 3), ("dialogue", 2), ("rejected", 2),
    ("redirected", 1.5), ("not_processed", 1.5), ("terminated", 0.5), ("split", 0.5),
]
TASK_STATUSES = [("in_progress", 60), ("reporting", 25), ("closed", 15)]
ENDED = {"archived", "closed", "rejected", "redirected", "not_processed", "terminated", "split"}
SUBJECTS = [
    "Khiếu nại về bồi thường, hỗ trợ khi thu hồi đất nông nghiệp",
    "Tố cáo cán bộ xã có dấu hiệu vi phạm trong quản lý đất công",
    "Kiến nghị sửa chữa tuyến đường liên xã xuống cấp",
    "Phản ánh ô nhiễm môi trường từ cơ sở chăn nuôi",
    "Kiến nghị cử tri về chế độ chính sách người có công",
    "Triển khai Nghị quyết về công tác dân vận trong tình hình mới",
]
EVENT_TYPES = ["PetitionReceived", "Classified", "AcceptanceDecided", "Assigned", "CoordinationRequested",
               "CoordinationResponded", "VerificationRecorded", "DialogueRecorded", "Decided", "Notified",
               "ImplementationRecorded", "Closed", "Archived", "DeadlineApproached", "DeadlineMissed"]


def _weighted(rng: random.Random, items: Sequence[tuple[str, float]]) -> str:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def event_counts(rng: random.Random, cases: int, events: int) -> list[int]:
    """Events per case (the 1,000-event case excluded): 1 to about 20, summing exactly to `events`."""
    mean = events / cases
    counts = [max(1, round(rng.triangular(1, 2 * mean, mean * 0.7))) for _ in range(cases)]
    diff = events - sum(counts)
    while diff != 0:
        i = rng.randrange(cases)
        if diff > 0:
            counts[i] += 1
            diff -= 1
        elif counts[i] > 1:
            counts[i] -= 1
            diff += 1
    return counts


def case_records(rng: random.Random, counts: Sequence[int], now: datetime) -> list[tuple[Any, ...]]:
    """The `cases` rows, in COPY column order (see `CASE_COPY_COLUMNS`)."""
    span = timedelta(days=3 * 365)
    rows = []
    for i, n in enumerate(counts):
        kind = _weighted(rng, KINDS)
        status = _weighted(rng, TASK_STATUSES if kind == "plan_task" else PETITION_STATUSES)
        lead = None if rng.random() < 0.02 else _weighted(rng, LEAD_BODIES)
        bodies = sorted({lead, *rng.sample(COORDINATORS, rng.choice((0, 0, 1, 1, 2)))} - {None})
        district = None if rng.random() < 0.03 else _weighted(rng, DISTRICTS)
        # More petitions recently than three years ago.
        received = now - span * (1 - rng.random() ** 0.8)
        created = min(received + timedelta(hours=rng.uniform(0, 72)), now)
        open_case = status not in ENDED
        overdue = rng.random() < (0.22 if open_case else 0.03)
        due = received + timedelta(days=rng.choice((10, 30, 45, 60))) if open_case else None
        title = SUBJECTS[i % len(SUBJECTS)]
        summary = {
            "case_id": f"pet-{i:08d}", "kind": kind, "status": status, "lead_body": lead, "bodies": bodies,
            "officer": "Cán bộ Nguyễn Văn Hoà" if lead else None, "instance": 1,
            "deadlines": [{"key": f"{kind}.resolution", "due_at": (due or received).isoformat(),
                           "legal_basis": "Luật Khiếu nại 2011, Điều 28", "pending": open_case}],
            "petitioner_ref": f"sealed-{i:024x}" if kind == "denunciation" else None,
        }
        rows.append((f"pet-{i:08d}", kind, status, title, lead, bodies, district, "Xã An Lâm", "cong-dvc",
                     f"REF-{i:08d}", received, due, overdue, n, json.dumps(summary, ensure_ascii=False), created,
                     created))
    return rows


CASE_COPY_COLUMNS = ["case_id", "kind", "status", "title", "lead_body", "bodies", "district", "commune", "source",
                     "external_ref", "received_at", "due_at", "overdue", "version", "summary", "created_at",
                     "updated_at"]

#: Every seeded case's events and stream head from its `cases` row: `version` events of realistic size.
EVENTS_SQL = """
INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at, recorded_at, actor, reason,
                    legal_basis, data, metadata, prev_hash, hash)
SELECT c.case_id, v, gen_random_uuid(), ($1::text[])[1 + (v - 1) % array_length($1::text[], 1)], 1,
       c.received_at + (v * interval '2 days'), c.created_at + (v * interval '2 days'),
       CASE WHEN v = 1 THEN 'system' ELSE 'body:' || coalesce(c.lead_body, 'UBND_TINH') || ':Cán bộ Hoà' END,
       CASE WHEN v % 3 = 0 THEN 'Theo đề nghị của cơ quan phối hợp' END,
       CASE WHEN v % 2 = 1 THEN 'Luật Khiếu nại 2011, Điều 28' END,
       jsonb_build_object('note', 'Đã xác minh nội dung đơn tại thực địa, làm việc với các hộ dân liên quan',
                          'doc_no', v || '/QĐ-UBND', 'body', c.lead_body, 'n', v),
       '{}'::jsonb,
       CASE WHEN v = 1 THEN decode(repeat('00', 32), 'hex')
            ELSE sha256(convert_to(c.case_id || ':' || (v - 1), 'UTF8')) END,
       sha256(convert_to(c.case_id || ':' || v, 'UTF8'))
  FROM cases c, generate_series(1, c.version) AS v
 WHERE c.case_id LIKE 'pet-%'
"""
STREAMS_SQL = """
INSERT INTO streams (stream_id, version, last_hash)
SELECT case_id, version, sha256(convert_to(case_id || ':' || version, 'UTF8')) FROM cases WHERE case_id LIKE 'pet-%'
"""


async def seed_long_case(store: EventStore, case_id: str, now: datetime) -> None:
    """The 1,000-event case, through the event store itself (a real hash chain), 100 events per append."""
    row = CaseRow(kind="complaint", status="verifying", title=SUBJECTS[0], lead_body="UBND_TINH",
                  bodies=["UBND_TINH", "UBMTTQ_TINH"], district="Nam Sách", commune="Nam Hồng", source="cong-dvc",
                  external_ref="REF-LONG", received_at=now - timedelta(days=400), due_at=now + timedelta(days=5))
    for start in range(0, HISTORY_EVENTS, 100):
        batch = [
            NewEvent(event_id=uuid.uuid4(), type=EVENT_TYPES[(start + i) % len(EVENT_TYPES)],
                     occurred_at=now - timedelta(days=400) + timedelta(hours=start + i),
                     actor="body:UBND_TINH:Cán bộ Hoà", reason="Theo đề nghị của cơ quan phối hợp",
                     legal_basis="Luật Khiếu nại 2011, Điều 28",
                     data={"note": "Đã xác minh nội dung đơn tại thực địa, làm việc với các hộ dân liên quan",
                           "doc_no": f"{start + i}/QĐ-UBND", "n": start + i})
            for i in range(100)
        ]
        await store.append(case_id, start, batch, row)


async def seed(url: str, cases: int, events: int, seed_value: int) -> dict[str, Any]:
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    store = await EventStore.open(url, min_size=1, max_size=2)
    t0 = time.perf_counter()
    try:
        await seed_long_case(store, "case-long", now)
        counts = event_counts(rng, cases - 1, events - HISTORY_EVENTS)
        records = case_records(rng, counts, now)
        # A plain connection: asyncpg's own binary jsonb codec takes the JSON text, which COPY needs (the store's
        # pool decodes and encodes JSON in text format, which COPY's binary format cannot use).
        raw = await asyncpg.connect(url)
        try:
            await raw.copy_records_to_table("cases", records=records, columns=CASE_COPY_COLUMNS)
        finally:
            await raw.close()
        async with store.pool.acquire() as c:
            t_cases = time.perf_counter()
            await c.execute(EVENTS_SQL, EVENT_TYPES)
            await c.execute(STREAMS_SQL)
            t_events = time.perf_counter()
            await c.execute("VACUUM ANALYZE cases")
            await c.execute("VACUUM ANALYZE events")
            await c.execute("VACUUM ANALYZE streams")
            stored = await c.fetchrow(
                "SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM events) AS events, "
                "pg_size_pretty(pg_total_relation_size('cases')) AS cases_size, "
                "pg_size_pretty(pg_total_relation_size('events')) AS events_size"
            )
        report = await store.verify("case-long")
    finally:
        await store.close()
    assert stored is not None
    seeded = {
        "cases": stored["cases"], "events": stored["events"], "cases_size": stored["cases_size"],
        "events_size": stored["events_size"], "long_case_verifies": report.ok,
        "seconds": {"cases": round(t_cases - t0, 1), "events": round(t_events - t_cases, 1),
                    "total": round(time.perf_counter() - t0, 1)},
    }
    if stored["cases"] != cases or stored["events"] != events or not report.ok:
        raise RuntimeError(f"seeding went wrong: {seeded}")
    return seeded


# -- the measurements ------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One thing timed: the API's code and its baselines, each a coroutine factory."""

    group: str  # page, count, history
    label: str
    target_ms: float | None
    systems: dict[str, Callable[[], Awaitable[Any]]]
    plan: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def measure(probe: Probe, iterations: int, warmup: int) -> dict[str, dict[str, float]]:
    """Run each system `iterations` times after `warmup`, interleaved and alternating the order."""
    names = list(probe.systems)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + iterations):
        order = names if i % 2 == 0 else list(reversed(names))
        for name in order:
            start = time.perf_counter_ns()
            await probe.systems[name]()
            elapsed = (time.perf_counter_ns() - start) / 1e6
            if i >= warmup:
                samples[name].append(elapsed)
    return {n: {"p50": statistics.median(s), "p95": percentile(s, 0.95), "max": max(s), "n": len(s)}
            for n, s in samples.items()}


async def plan_of(pool: Pool, sql: str, args: Sequence[Any]) -> str:
    """The plan's node types, outermost first, e.g. `Limit > Index Scan (cases_created_order_idx)`."""
    doc = await pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    doc = json.loads(doc) if isinstance(doc, str) else doc
    parts: list[str] = []
    node = doc[0]["Plan"]
    while node is not None:
        name = node["Node Type"]
        if node.get("Index Name"):
            name += f" ({node['Index Name']})"
        parts.append(name)
        children = node.get("Plans") or []
        if len(children) > 1:
            parts.append("[" + ", ".join(c["Node Type"] + (f" ({c['Index Name']})" if c.get("Index Name") else "")
                                         for c in children) + "]")
            break
        node = children[0] if children else None
    return " > ".join(parts)


async def filter_values(pool: Pool) -> list[tuple[str, CaseFilter]]:
    """A common and a rare value of each filter, as found in the seeded data."""

    async def ranked(column: str) -> list[str]:
        rows = await pool.fetch(
            f"SELECT {column} AS v, count(*) FROM cases WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
        )
        return [r["v"] for r in rows]

    kinds, statuses, bodies, districts = [await ranked(c) for c in ("kind", "status", "lead_body", "district")]
    today = datetime.now(LOCAL_TZ).date()
    month_ago = today - timedelta(days=30)
    year_ago = date(today.year - 1, today.month, 1)
    return [
        ("no filter", CaseFilter()),
        (f"kind={kinds[0]}", CaseFilter(kind=kinds[0])),
        (f"kind={kinds[-1]}", CaseFilter(kind=kinds[-1])),
        (f"status={statuses[0]}", CaseFilter(status=statuses[0])),
        (f"status={statuses[-1]}", CaseFilter(status=statuses[-1])),
        (f"body={bodies[0]}", CaseFilter(body=bodies[0])),
        (f"body={bodies[-1]}", CaseFilter(body=bodies[-1])),
        (f"district={districts[0]}", CaseFilter(district=districts[0])),
        (f"district={districts[-1]}", CaseFilter(district=districts[-1])),
        ("overdue=true", CaseFilter(overdue=True)),
        ("overdue=false", CaseFilter(overdue=False)),
        ("received last 30 days", CaseFilter(received_from=month_ago, received_to=today)),
        ("received one month a year ago", CaseFilter(received_from=year_ago,
                                                     received_to=year_ago + timedelta(days=30))),
        ("received one month 2.5 years ago", CaseFilter(received_from=today - timedelta(days=935),
                                                        received_to=today - timedelta(days=905))),
        ("received until 2 years ago", CaseFilter(received_to=today - timedelta(days=730))),
        ("received 2 years ago to a week ago", CaseFilter(received_from=today - timedelta(days=730),
                                                          received_to=today - timedelta(days=7))),
    ]


async def deep_cursor(pool: Pool, filters: CaseFilter) -> tuple[CaseCursor | None, int]:
    """A cursor thousands of rows into the filter's list (5,000 in, or halfway when there are fewer)."""
    sql, args = list_cases_sql(filters, limit=10**9)
    total = await pool.fetchval(f"SELECT count(*) FROM ({sql}) AS s", *args)
    offset = min(5000, total // 2)
    if offset < PAGE:
        return None, total
    row = await pool.fetchrow(f"SELECT created_at, case_id FROM ({sql}) AS s OFFSET {offset} LIMIT 1", *args)
    assert row is not None
    return CaseCursor(created_at=row["created_at"], case_id=row["case_id"]), total


NAIVE_COUNTS = [
    "SELECT status, count(*), count(*) FILTER (WHERE overdue) FROM cases{w} GROUP BY status",
    "SELECT kind, count(*), count(*) FILTER (WHERE overdue) FROM cases{w} GROUP BY kind",
    "SELECT lead_body, count(*), count(*) FILTER (WHERE overdue) FROM cases{w} GROUP BY lead_body",
    "SELECT district, count(*), count(*) FILTER (WHERE overdue) FROM cases{w} GROUP BY district",
    "SELECT count(*), count(*) FILTER (WHERE overdue) FROM cases{w}",
]


async def probes(store: EventStore) -> list[Probe]:
    return [*await page_probes(store), *await count_probes(store), *await history_probes(store)]


async def page_probes(store: EventStore) -> list[Probe]:
    """A first and a deep page of each filter: the API's listing against its plain statement."""
    pool = store.pool
    out: list[Probe] = []
    today = datetime.now(LOCAL_TZ).date()
    first = await pool.fetchval("SELECT min(received_at) FROM cases")
    oldest = first.astimezone(LOCAL_TZ).date() if first is not None else None
    for label, filters in await filter_values(pool):
        cursor, total = await deep_cursor(pool, filters)
        for page, after in (("first page", None), ("deep page", cursor)):
            if page == "deep page" and after is None:
                continue
            sql, args = list_cases_sql(filters, limit=PAGE, after=after)
            fence = fence_received_range(filters, today, oldest)
            api_sql, api_args = list_cases_sql(filters, limit=PAGE, after=after, fence=fence)
            out.append(Probe(
                "page", f"{label} ({total:,} cases), {page}", PAGE_TARGET_MS,
                {"api": lambda f=filters, a=after: list_cases(pool, f, limit=PAGE, after=a),
                 "plain SQL": lambda s=sql, a=args: pool.fetch(s, *a)},
                plan=("fenced: " if fence else "") + await plan_of(pool, api_sql, api_args),
            ))
    return out


async def count_probes(store: EventStore) -> list[Probe]:
    """The counts of each filter: the API's one statement against five GROUP BYs."""
    pool = store.pool
    out: list[Probe] = []
    for label, filters in await filter_values(pool):
        sql, args = count_cases_sql(filters)
        where_sql = sql[sql.index(" FROM cases") + len(" FROM cases"):sql.index(" GROUP BY")]

        async def naive(w: str = where_sql, a: list[Any] = args) -> None:
            for q in NAIVE_COUNTS:  # every parameter of the statement is in its WHERE clause
                await pool.fetch(q.format(w=w), *a)

        out.append(Probe(
            "count", f"counts, {label}", COUNT_TARGET_MS,
            {"api": lambda f=filters: count_cases(pool, f), "plain SQL": lambda s=sql, a=args: pool.fetch(s, *a),
             "5 GROUP BYs": naive},
            plan=await plan_of(pool, sql, args),
        ))
    return out


async def history_probes(store: EventStore) -> list[Probe]:
    """The history of a long case, and for information other ways of reading it."""
    pool = store.pool
    out: list[Probe] = []
    history_sql = (
        "SELECT stream_id, version, position, tx_id::text::bigint AS transaction_id, event_id, type, schema_version, "
        "occurred_at, recorded_at, actor, reason, legal_basis, data, metadata, encode(prev_hash, 'hex') AS prev_hash, "
        "encode(hash, 'hex') AS hash FROM events WHERE stream_id = $1 ORDER BY version"
    )
    out.append(Probe(
        "history", f"history of a {HISTORY_EVENTS:,}-event case", HISTORY_TARGET_MS,
        {"api": lambda: store.read_stream("case-long"), "plain SQL": lambda: pool.fetch(history_sql, "case-long")},
        plan=await plan_of(pool, history_sql, ["case-long"]),
    ))

    # For information: the same read built as one JSON document by the server and validated by pydantic-core
    # in one call (a candidate for `read_stream` if the per-row path misses the target).
    agg_sql = (
        "SELECT coalesce(json_agg(json_build_object('stream_id', stream_id, 'version', version, 'position', position, "
        "'transaction_id', tx_id::text::bigint, 'event_id', event_id, 'type', type, 'schema_version', schema_version, "
        "'occurred_at', occurred_at, 'recorded_at', recorded_at, 'actor', actor, 'reason', reason, "
        "'legal_basis', legal_basis, 'data', data, 'metadata', metadata, 'prev_hash', encode(prev_hash, 'hex'), "
        "'hash', encode(hash, 'hex')) ORDER BY version), '[]')::text FROM events WHERE stream_id = $1"
    )
    as_list = TypeAdapter(list[RecordedEvent])

    async def read_as_json() -> list[RecordedEvent]:
        return as_list.validate_json(await pool.fetchval(agg_sql, "case-long"))

    if [e.model_dump() for e in await read_as_json()] != [e.model_dump() for e in await store.read_stream("case-long")]:
        raise RuntimeError("the json_agg read does not give the same events as read_stream")
    async def read_constructed() -> list[RecordedEvent]:
        # Rows the store wrote itself, read back with their database types: built without validation.
        return [RecordedEvent.model_construct(**dict(r)) for r in await pool.fetch(history_sql, "case-long")]

    if [e.model_dump() for e in await read_constructed()] != [e.model_dump() for e in await read_as_json()]:
        raise RuntimeError("the model_construct read does not give the same events as read_stream")
    out.append(Probe(
        "info", f"other ways to read the {HISTORY_EVENTS:,}-event case: json_agg + validate_json; model_construct",
        None,
        {"json_agg": read_as_json, "construct": read_constructed,
         "read_stream": lambda: store.read_stream("case-long")},
    ))

    async def read_then_verify() -> None:
        await store.read_stream("case-long")
        await store.verify("case-long")

    async def read_verified() -> None:
        await store.read_verified("case-long")

    out.append(Probe(
        "info", f"the history endpoint's read of the {HISTORY_EVENTS:,}-event case: read_verified (one read, "
        "checked); read_stream + verify (two reads)", None,
        {"read_verified": read_verified, "read_stream+verify": read_then_verify},
    ))
    return out


def http_probes(http: httpx.AsyncClient, tok: str) -> list[Probe]:
    """For information: the same reads through the HTTP API in-process (auth, routing, JSON), no network."""
    headers = {"Authorization": f"Bearer {tok}"}

    async def get(url: str, **params: Any) -> None:
        response = await http.get(url, headers=headers, params=params)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")

    return [
        Probe("info", "HTTP GET /v1/cases?kind=complaint (first page)", None,
              {"http": lambda: get("/v1/cases", kind="complaint")}),
        Probe("info", "HTTP GET /v1/cases/counts", None, {"http": lambda: get("/v1/cases/counts")}),
        Probe("info", "HTTP GET /v1/cases/counts?body=UBND_TINH", None,
              {"http": lambda: get("/v1/cases/counts", body="UBND_TINH")}),
        Probe("info", f"HTTP GET /v1/cases/{{id}}/history, {HISTORY_EVENTS:,} events (read, verify, JSON)", None,
              {"http": lambda: get("/v1/cases/case-long/history")}),
    ]


@contextlib.asynccontextmanager
async def http_api(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API app on the benchmark's database, in-process, with a supervisor token. Temporal is not needed
    for these reads (the app connects to it lazily; a failed attempt is only logged)."""
    logging.getLogger("danvan.api").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as home:
        key = base64.b64encode(os.urandom(32)).decode()
        settings = Settings.from_env({"DANVAN_HOME": home, "DANVAN_SECRET_KEY": key,
                                      "TEMPORAL_ADDRESS": "127.0.0.1:1", "DANVAN_DB_POOL_MAX": "4"})
        app = create_app(settings, url, temporal_timeout=0.2)
        async with app.router.lifespan_context(app):
            tok = await issue_token(app.state.store.pool, "supervisor", None, "bench.listing")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.listing") as http:
                yield http, tok


# -- report ------------------------------------------------------------------------------------------------


def print_results(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'what':<70} {'system':<12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
    print("-" * 124)
    for r in results:
        for i, (system, m) in enumerate(r["systems"].items()):
            target = ""
            if system == "api" and r["target_ms"] is not None:
                target = f"< {r['target_ms']:g} {'MET' if m['p95'] < r['target_ms'] else 'NOT MET'}"
            label = r["label"] if i == 0 else ""
            print(f"{label:<70.70} {system:<12} {m['p50']:>8.2f} {m['p95']:>8.2f} {m['max']:>8.2f}  {target}")
    print()
    print("plans (the API's statement):")
    for r in results:
        if r["plan"]:
            print(f"  {r['label']:<70.70} {r['plan']}")


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    print(f"seeding {args.cases:,} cases and {args.events:,} events …", flush=True)
    seeded = await seed(url, args.cases, args.events, args.seed)
    print(f"seeded in {seeded['seconds']['total']} s: {seeded['cases']:,} cases ({seeded['cases_size']}), "
          f"{seeded['events']:,} events ({seeded['events_size']})", flush=True)
    store = await EventStore.open(url, min_size=2, max_size=4)
    try:
        server_version = await store.pool.fetchval("SELECT version()")
        settings = {r["name"]: r["value"] for r in await store.pool.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1::text[])",
            ["shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit",
             "max_parallel_workers_per_gather"])}
        all_probes = await probes(store)
        gc.collect()
        gc.freeze()  # the seeded records are garbage already; keep full collections off the prepared objects
        results: list[dict[str, Any]] = []

        async def run(probe: Probe) -> None:
            # Counts cost tens of milliseconds and have three systems: fewer runs keep the whole under 15 min.
            iterations = {"page": args.iterations, "history": args.iterations}.get(
                probe.group, max(10, args.iterations // 2))
            stats = await measure(probe, iterations, warmup=max(3, iterations // 10))
            results.append({"group": probe.group, "label": probe.label, "target_ms": probe.target_ms,
                            "systems": stats, "plan": probe.plan})
            first = next(iter(stats.values()))
            print(f"  {probe.label:<70.70} p50 {first['p50']:7.2f} ms  p95 {first['p95']:7.2f} ms", flush=True)

        for probe in all_probes:
            await run(probe)
        async with http_api(url) as (http, tok):
            for probe in http_probes(http, tok):
                await run(probe)
    finally:
        await store.close()
    print_results(results)
    checks = {r["label"]: r["systems"]["api"]["p95"] < r["target_ms"] for r in results if r["target_ms"] is not None}
    met = sum(checks.values())
    print(f"\ntargets met: {met} of {len(checks)}")
    for label, ok in checks.items():
        if not ok:
            print(f"  NOT MET: {label}")
    return {
        "command": " ".join([os.path.basename(sys.executable), "-m", "bench.listing", *sys.argv[1:]]),
        "machine": machine_info(server_version, settings, load_at_start),
        "config": {"cases": args.cases, "events": args.events, "iterations": args.iterations, "seed": args.seed,
                   "page": PAGE},
        "seeded": seeded,
        "results": results,
        "targets_met": met,
        "targets": len(checks),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
                   help=f"server to benchmark on; a fresh database is created there and dropped (default: "
                   f"$DATABASE_URL, else {DEFAULT_URL})")
    p.add_argument("--cases", type=int, default=None, help="cases to seed (100000)")
    p.add_argument("--events", type=int, default=None, help="events to seed, the 1,000-event case included (1000000)")
    p.add_argument("--iterations", type=int, default=None, help="timed runs of each measurement (200)")
    p.add_argument("--seed", type=int, default=20261127, help="random seed of the data")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--quick", action="store_true",
                   help="5,000 cases, 50,000 events, 20 iterations: a check that it runs")
    args = p.parse_args(argv)
    args.cases = args.cases or (5_000 if args.quick else 100_000)
    args.events = args.events or (50_000 if args.quick else 1_000_000)
    args.iterations = args.iterations or (20 if args.quick else 200)
    if args.cases < 100 or args.events < HISTORY_EVENTS + args.cases - 1 or args.iterations < 5:
        p.error(f"need --cases >= 100, --events >= {HISTORY_EVENTS} + cases - 1, --iterations >= 5")
    return args


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a plain `kill` unwinds like Ctrl-C: the database is dropped
    name = f"bench_{secrets.token_hex(4)}"
    bench_url = with_database(args.database_url, name)
    print(f"server {redact(args.database_url)}; database {name}")
    asyncio.run(create_database(args.database_url, name))
    try:
        out = asyncio.run(bench(bench_url, args))
    finally:
        try:
            asyncio.run(drop_database(args.database_url, name))
            print(f"dropped database {name}")
        except Exception as exc:  # keep the original error, if any, in front
            print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=2, default=str)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
