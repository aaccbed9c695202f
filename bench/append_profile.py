"""Where the time of `danvan_append` goes: timings of variants of the append, on a throw-away database.

    .venv/bin/python -m bench.append_profile [--database-url URL] [--events N] [--events-batched M]
                                             [--repeat R] [--json out.json] [--cases 1x8,100x8]

Nothing here changes the project's schema: the variants are copies of the installed `danvan_append`,
edited in memory and created under other names in the benchmark's own database (`bench_<random>`, dropped
at the end). Variants, each timed like `bench.append_throughput` (warm-up, CHECKPOINT, interleaved rounds,
median; here every measurement starts from empty tables), with the client's CPU, the whole machine's
busy CPU and the WAL written per event:

  danvan              EventStore.append(stream, expected, events, case): what the benchmark measures
  danvan_no_reset     as danvan, on a pool whose connections skip asyncpg's reset query on release
  danvan_no_case      EventStore.append(..., case=None): no `cases` projection row
  fn_direct           danvan_append called directly with the canonical texts and the case JSON made before
                      the clock: the same server work without the client's canonicalisation and pydantic
  fn_no_hash          as fn_direct, the function without the sha256 (prev_hash/hash still stored)
  fn_no_hash_no_case  as fn_no_hash, with a NULL case
  fn_events_only      a copy that only inserts the events (hash chain kept; no streams row, no case)
  fn_set_insert       a copy that computes the chain in the loop and inserts all events with ONE
                      INSERT … SELECT FROM unnest (100-event cases only): a candidate change
  events_insert       plain INSERT(s) into the `events` table itself with client-made hashes, no function
  raw                 the baseline (raw_insert / raw_executemany of bench.append_throughput)
  raw_no_reset        raw_insert on the pool without the reset query (1-event cases)
  danvan_bare_cases   EventStore.append without the secondary indexes of `cases` (dropped for that
                      measurement only)

Then a server-only loop: one statement calls each function variant a few thousand times in a transaction
that is rolled back (no client, no network, no commit): the server's own CPU per call. At the end one
1-event and one 100-event append are run under auto_explain (nested statements, analyze) and the time of
each statement inside the function is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from bench.append_throughput import (
    DEFAULT_URL,
    POOL_SIZE,
    RAW_TABLE_SQL,
    Usage,
    Workload,
    _interrupt,
    create_database,
    drop_database,
    frozen_heap,
    machine_info,
    run_danvan,
    run_raw_executemany,
    run_raw_insert,
    writer_plans,
)
from danvan.postgres import redact, with_database
from eventstore import CaseRow, EventStore, NewEvent, canonical, create_pool, migrate
from eventstore.models import GENESIS_HASH

CALL = "SELECT out_version, out_duplicate FROM {fn}($1, $2, $3, $4)"

EVENTS_INSERT_SQL = (
    "INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at, actor, reason, "
    "legal_basis, data, metadata, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)

HASH_LINE = "v_hash := sha256(v_prev || convert_to(v_text, 'UTF8'));"


def _cut(source: str, start: str, end: str) -> tuple[str, str, str]:
    """Split `source` around the text from `start` up to (not including) `end`; fail loudly if absent."""
    i = source.find(start)
    j = source.find(end, i + 1)
    if i < 0 or j < 0:
        raise RuntimeError(f"danvan_append changed: cannot find {start!r} … {end!r}; update bench/append_profile")
    return source[:i], source[i:j], source[j:]


def variant_functions(source: str) -> dict[str, str]:
    """CREATE statements of the variants, made from `pg_get_functiondef(danvan_append)`."""
    head = "CREATE OR REPLACE FUNCTION public.danvan_append("
    if head not in source or HASH_LINE not in source:
        raise RuntimeError("danvan_append changed; update bench/append_profile")
    out: dict[str, str] = {}
    out["bench_append_no_hash"] = source.replace(head, "CREATE FUNCTION bench_append_no_hash(").replace(
        HASH_LINE, "v_hash := v_prev;"
    )

    # Events only: drop the streams bookkeeping and the case upsert, keep the version check out (fresh
    # streams only, each writer its own) and the chain in a local variable.
    before, _, rest = _cut(source, "    IF p_expected = 0 THEN", "    FOREACH v_text IN ARRAY p_events LOOP")
    _, loop, tail = _cut(
        rest, "    FOREACH v_text IN ARRAY p_events LOOP", "    RETURN QUERY SELECT p_expected + v_n, false;"
    )
    loop = loop.split("    UPDATE streams")[0]
    out["bench_append_events_only"] = (
        before.replace(head, "CREATE FUNCTION bench_append_events_only(")
        + "    v_hash := coalesce((SELECT e.hash FROM events e WHERE e.stream_id = p_stream_id\n"
        + "                         AND e.version = p_expected), decode(repeat('00', 32), 'hex'));\n"
        + loop
        + tail
    )

    # Set-based insert: the loop only checks and chains, one INSERT … SELECT writes every event.
    pre, loop, post = _cut(source, "    FOREACH v_text IN ARRAY p_events LOOP", "    UPDATE streams SET")
    insert_at = loop.index("        INSERT INTO events")
    end_loop = loop.index("    END LOOP;")
    new_loop = (
        loop[:insert_at]
        + "        v_docs := v_docs || v_doc;\n"
        + "        v_prevs := v_prevs || v_prev;\n"
        + "        v_hashes := v_hashes || v_hash;\n"
        + loop[end_loop:]
        + "    INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at,\n"
        + "                        actor, reason, legal_basis, data, metadata, prev_hash, hash)\n"
        + "    SELECT p_stream_id, p_expected + x.i::integer, (x.d ->> 'event_id')::uuid, x.d ->> 'type',\n"
        + "           (x.d ->> 'schema_version')::integer, (x.d ->> 'occurred_at')::timestamptz,\n"
        + "           x.d ->> 'actor', x.d ->> 'reason', x.d ->> 'legal_basis', x.d -> 'data',\n"
        + "           x.d -> 'metadata', x.p, x.h\n"
        + "      FROM unnest(v_docs, v_prevs, v_hashes) WITH ORDINALITY AS x(d, p, h, i);\n\n"
    )
    decl = "    r           cases%ROWTYPE;"
    if decl not in pre:
        raise RuntimeError("danvan_append changed (declarations); update bench/append_profile")
    pre = pre.replace(
        decl,
        decl + "\n    v_docs      jsonb[] := '{}';\n    v_prevs     bytea[] := '{}';\n    v_hashes    bytea[] := '{}';",
    )
    out["bench_append_set_insert"] = (pre + new_loop + post).replace(head, "CREATE FUNCTION bench_append_set_insert(")
    return out


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """The event store pool's codecs (json/jsonb as Python values, UTF-8 unescaped)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=lambda v: json.dumps(v, ensure_ascii=False), decoder=json.loads, schema="pg_catalog"
        )


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip `RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()` on release."""


class Profile:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.workload = Workload()
        self.admin: asyncpg.Connection | None = None
        self.store: EventStore | None = None
        self.pool: asyncpg.Pool | None = None
        self.quiet_pool: asyncpg.Pool | None = None
        self.quiet_store: EventStore | None = None

    async def open(self) -> None:
        self.admin = await asyncpg.connect(self.url)
        await migrate(self.admin)
        await self.admin.execute(RAW_TABLE_SQL)
        source = await self.admin.fetchval("SELECT pg_get_functiondef('danvan_append'::regproc)")
        for sql in variant_functions(source).values():
            await self.admin.execute(sql)
        self.store = await EventStore.open(self.url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        self.pool = await create_pool(self.url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        # The same pool without asyncpg's reset query on release (one round trip less per pool call).
        self.quiet_pool = await asyncpg.create_pool(
            self.url, min_size=POOL_SIZE, max_size=POOL_SIZE, init=_json_codecs, reset=_no_reset
        )
        self.quiet_store = EventStore(self.quiet_pool)

    async def close(self) -> None:
        for thing in (self.store, self.pool, self.quiet_pool, self.admin):
            if thing is not None:
                await thing.close()

    # -- the variants ------------------------------------------------------------------------------------

    def _direct(self, plans: Any, tag: str, fn: str, with_case: bool) -> Callable[[], Awaitable[float]]:
        assert self.pool is not None
        pool = self.pool
        sql = CALL.format(fn=fn)
        calls = []
        for txs in self.workload.danvan(plans, tag):
            out, current, version = [], "", 0
            for stream_id, events, case in txs:
                if stream_id != current:
                    current, version = stream_id, 0
                texts = [canonical.canonical_text(stream_id, version + i, e) for i, e in enumerate(events, 1)]
                case_json = canonical.nfc(case.model_dump(mode="json")) if with_case else None
                out.append((stream_id, version, texts, case_json))
                version += len(events)
            calls.append(out)

        async def run() -> float:
            async def writer(txs: list[tuple[str, int, list[str], Any]]) -> None:
                for args in txs:
                    await pool.fetchrow(sql, *args)

            start = time.perf_counter()
            await asyncio.gather(*(writer(t) for t in calls))
            return time.perf_counter() - start

        return run

    def _events_insert(self, plans: Any, tag: str, batch: int) -> Callable[[], Awaitable[float]]:
        assert self.pool is not None
        pool = self.pool
        writers = []
        for txs in self.workload.danvan(plans, tag):
            out, current, version, prev = [], "", 0, GENESIS_HASH
            for stream_id, events, _ in txs:
                if stream_id != current:
                    current, version, prev = stream_id, 0, GENESIS_HASH
                rows = []
                for e in events:
                    version += 1
                    h = canonical.chain_hash(prev, canonical.canonical_text(stream_id, version, e))
                    rows.append(
                        (stream_id, version, e.event_id, e.type, e.schema_version, e.occurred_at, e.actor,
                         e.reason, e.legal_basis, e.data, e.metadata, bytes.fromhex(prev), bytes.fromhex(h))
                    )  # fmt: skip
                    prev = h
                out.append(rows)
            writers.append(out)

        async def run() -> float:
            async def writer(txs: list[list[tuple[Any, ...]]]) -> None:
                for rows in txs:
                    if batch == 1:
                        await pool.execute(EVENTS_INSERT_SQL, *rows[0])
                    else:
                        async with pool.acquire() as conn, conn.transaction():
                            await conn.executemany(EVENTS_INSERT_SQL, rows)

            start = time.perf_counter()
            await asyncio.gather(*(writer(t) for t in writers))
            return time.perf_counter() - start

        return run

    def prepare(self, variant: str, plans: Any, tag: str, batch: int) -> Callable[[], Awaitable[float]]:
        assert self.store is not None and self.pool is not None
        store, pool = self.store, self.pool
        if variant in ("danvan", "danvan_bare_cases"):
            d = self.workload.danvan(plans, tag)
            return lambda: run_danvan(store, d)
        if variant == "danvan_no_reset":
            assert self.quiet_store is not None
            quiet_store, d = self.quiet_store, self.workload.danvan(plans, tag)
            return lambda: run_danvan(quiet_store, d)
        if variant == "raw_no_reset":
            assert self.quiet_pool is not None
            quiet, r = self.quiet_pool, self.workload.raw(plans, tag)
            return lambda: run_raw_insert(quiet, r)
        if variant == "danvan_no_case":
            no_case: list[list[tuple[str, list[NewEvent], CaseRow | None]]] = [
                [(s, e, None) for s, e, _ in txs] for txs in self.workload.danvan(plans, tag)
            ]
            return lambda: run_danvan(store, no_case)
        if variant == "fn_direct":
            return self._direct(plans, tag, "danvan_append", True)
        if variant == "fn_no_hash":
            return self._direct(plans, tag, "bench_append_no_hash", True)
        if variant == "fn_no_hash_no_case":
            return self._direct(plans, tag, "bench_append_no_hash", False)
        if variant == "fn_events_only":
            return self._direct(plans, tag, "bench_append_events_only", False)
        if variant == "fn_set_insert":
            return self._direct(plans, tag, "bench_append_set_insert", True)
        if variant == "events_insert":
            return self._events_insert(plans, tag, batch)
        if variant == "raw":
            r = self.workload.raw(plans, tag)
            return lambda: (run_raw_insert if batch == 1 else run_raw_executemany)(pool, r)
        raise ValueError(variant)

    async def measure(self, key: str, variant: str, events: int, batch: int, writers: int) -> dict[str, Any]:
        assert self.admin is not None
        warm = max(batch * writers, (events // 20) // batch * batch)
        # Every variant starts from empty tables, so that none pays for the rows of the variants before it.
        await self.admin.execute("TRUNCATE events, streams, cases, bench_raw")
        definitions = []
        if variant == "danvan_bare_cases":  # dropped for this measurement only, made again after it
            rows = await self.admin.fetch(
                "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition "
                "FROM pg_index i WHERE i.indrelid = 'cases'::regclass AND NOT i.indisprimary"
            )
            definitions = [r["definition"] for r in rows]
            for r in rows:
                await self.admin.execute(f"DROP INDEX {r['name']}")
        try:
            return await self._measure(key, variant, events, batch, writers, warm)
        finally:
            for definition in definitions:
                await self.admin.execute(definition)

    async def _measure(
        self, key: str, variant: str, events: int, batch: int, writers: int, warm: int
    ) -> dict[str, Any]:
        assert self.admin is not None
        sa = self.args.stream_appends
        await self.prepare(variant, writer_plans(warm, batch, writers, sa), f"{key}-{variant}-wu", batch)()
        run = self.prepare(variant, writer_plans(events, batch, writers, sa), f"{key}-{variant}", batch)
        await self.admin.execute("CHECKPOINT")
        with frozen_heap():
            before = await Usage.sample(self.admin)
            seconds = await run()
            used = (await Usage.sample(self.admin)).minus(before)
        wall = max(used.wall, 1e-9)
        row = {
            "case": key,
            "variant": variant,
            "events_per_s": events / seconds,
            "client_cpu_us_per_event": used.client_cpu / events * 1e6,
            "machine_cpu_us_per_event": used.busy_cores / events * 1e6,
            "machine_busy_cores": used.busy_cores / wall,
            "wal_bytes_per_event": used.wal_bytes / events,
        }
        print(
            f"  {key:<6} {variant:<20} {row['events_per_s']:>9,.0f} ev/s  client CPU "
            f"{row['client_cpu_us_per_event']:>5.0f} µs/ev  machine CPU {row['machine_cpu_us_per_event']:>5.0f} "
            f"µs/ev ({row['machine_busy_cores']:.2f} cores)  WAL {row['wal_bytes_per_event']:>5.0f} B/ev"
        )
        return row

    async def table_stats(self) -> dict[str, Any]:
        assert self.admin is not None
        await asyncio.sleep(1)  # let the statistics collector catch up
        rows = await self.admin.fetch(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname IN ('events', 'streams', 'cases', 'bench_raw') ORDER BY relname"
        )
        return {r["relname"]: dict(r) for r in rows}

    async def server_loop(self, calls: int, rounds: int) -> dict[str, Any]:
        """Server CPU per call without client, network or commit: one statement calls a function `calls`
        times (LATERAL, in order; a new stream every `--stream-appends` calls, as in the timed runs) inside
        one transaction that is rolled back. Median of `rounds`."""
        assert self.admin is not None
        conn = self.admin
        query = (
            "SELECT count(*) FROM unnest($1::text[], $5::int[], $3::text[]) WITH ORDINALITY AS s(id, v, c, k), "
            "LATERAL {fn}(s.id, s.v, ($2::text[])[(s.k - 1) * {n} + 1 : s.k * {n}], "
            "CASE WHEN $4 THEN s.c::jsonb END)"
        )
        variants = [
            ("danvan_append", "danvan_append", True),
            ("danvan_append, case NULL", "danvan_append", False),
            ("no hash", "bench_append_no_hash", True),
            ("events only (no streams, no case)", "bench_append_events_only", False),
            ("set insert", "bench_append_set_insert", True),
        ]
        out: dict[str, Any] = {}
        for n in (1, 100):
            k = calls if n == 1 else max(1, calls // 50)
            times: dict[str, list[float]] = defaultdict(list)
            for _ in range(rounds):
                for label, fn, with_case in variants:
                    plans = writer_plans(k * n, n, 1, self.args.stream_appends)
                    txs = self.workload.danvan(plans, f"loop{n}")[0]
                    ids, versions, texts, cases = [], [], [], []
                    current, version = "", 0
                    for stream_id, events, case in txs:
                        if stream_id != current:
                            current, version = stream_id, 0
                        ids.append(stream_id)
                        versions.append(version)
                        texts += [canonical.canonical_text(stream_id, version + i, e) for i, e in enumerate(events, 1)]
                        cases.append(json.dumps(canonical.nfc(case.model_dump(mode="json")), ensure_ascii=False))
                        version += len(events)
                    tr = conn.transaction()
                    await tr.start()
                    try:
                        start = time.perf_counter()
                        await conn.fetchval(query.format(fn=fn, n=n), ids, texts, cases, with_case, versions)
                        times[label].append((time.perf_counter() - start) / k * 1e6)
                    finally:
                        await tr.rollback()
            out[f"{n}_event"] = {label: statistics.median(v) for label, v in times.items()}
            print(f"\nserver only, {n}-event calls ({k} calls per round, median of {rounds}):")
            for label, us in out[f"{n}_event"].items():
                print(f"  {label:<36} {us:>8.1f} µs/call {us / n:>7.1f} µs/event")
        return out

    async def explain(self) -> dict[str, Any]:
        """Run one 1-event and one 100-event append under auto_explain and sum each statement's time."""
        assert self.admin is not None
        conn = await asyncpg.connect(self.url)
        messages: list[str] = []
        conn.add_log_listener(lambda _c, msg: messages.append(str(msg.message)))
        out: dict[str, Any] = {}
        try:
            await conn.execute("LOAD 'auto_explain'")
            await conn.execute(
                "SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; "
                "SET auto_explain.log_nested_statements = on; SET auto_explain.log_timing = on; "
                "SET auto_explain.log_format = json; SET client_min_messages = log"
            )
            for n in (1, 100):
                for attempt in range(2):  # the first call plans every statement; report the second
                    messages.clear()
                    txs = self.workload.danvan(writer_plans(n, n, 1, 1), f"explain{n}-{attempt}")[0]
                    stream_id, events, case = txs[0]
                    texts = [canonical.canonical_text(stream_id, i, e) for i, e in enumerate(events, 1)]
                    case_json = json.dumps(canonical.nfc(case.model_dump(mode="json")), ensure_ascii=False)
                    start = time.perf_counter()
                    await conn.fetchrow(
                        "SELECT * FROM danvan_append($1, 0, $2, $3::text::jsonb)", stream_id, texts, case_json
                    )
                    total_ms = (time.perf_counter() - start) * 1000
                per_statement: dict[str, list[float]] = defaultdict(list)
                for m in messages:
                    match = re.match(r"duration: ([\d.]+) ms\s+plan:\s*(.*)", m, re.S)
                    if not match:
                        continue
                    try:
                        plan = json.loads(match.group(2))
                        text = plan.get("Query Text", "")
                    except ValueError:
                        text = match.group(2)
                    key = " ".join(text.split())[:90]
                    per_statement[key].append(float(match.group(1)))
                out[f"{n}_event"] = {
                    "round_trip_ms": total_ms,
                    "statements": [
                        {"statement": k, "calls": len(v), "total_ms": sum(v)}
                        for k, v in sorted(per_statement.items(), key=lambda kv: -sum(kv[1]))
                    ],
                }
                print(f"\nauto_explain, one {n}-event append (second call; round trip {total_ms:.2f} ms):")
                for s in out[f"{n}_event"]["statements"][:12]:
                    print(f"  {s['total_ms']:>8.3f} ms  {s['calls']:>4}x  {s['statement']}")
        finally:
            await conn.close()
        return out


CASES = {"1x1": (1, 1), "1x8": (1, 8), "100x1": (100, 1), "100x8": (100, 8)}
VARIANTS_1 = (
    "danvan",
    "danvan_no_reset",
    "danvan_no_case",
    "danvan_bare_cases",
    "fn_direct",
    "fn_no_hash",
    "fn_no_hash_no_case",
    "fn_events_only",
    "events_insert",
    "raw",
    "raw_no_reset",
)
VARIANTS_100 = (
    "danvan",
    "danvan_no_case",
    "danvan_bare_cases",
    "fn_direct",
    "fn_no_hash",
    "fn_no_hash_no_case",
    "fn_events_only",
    "fn_set_insert",
    "events_insert",
    "raw",
)


async def profile(url: str, args: argparse.Namespace) -> dict[str, Any]:
    p = Profile(url, args)
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    try:
        await p.open()
        assert p.admin is not None
        keys = [k.strip() for k in args.cases.split(",") if k.strip()]

        async def phase(variants_for: Callable[[int], Sequence[str]]) -> None:
            for key in keys:
                batch, writers = CASES[key]
                events = args.events if batch == 1 else args.events_batched
                print(f"{key}: {events} events per measurement")
                for _ in range(args.repeat):
                    for variant in variants_for(batch):
                        rows.append(await p.measure(key, variant, events, batch, writers))

        await phase(lambda b: VARIANTS_1 if b == 1 else VARIANTS_100)
        out["table_stats"] = await p.table_stats()
        out["server_loop"] = await p.server_loop(args.loop_calls, args.loop_rounds)
        out["explain"] = await p.explain()
        server_version = await p.admin.fetchval("SELECT version()")
    finally:
        await p.close()

    medians: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for key in {r["case"] for r in rows}:
        for variant in {r["variant"] for r in rows if r["case"] == key}:
            mine = [r for r in rows if r["case"] == key and r["variant"] == variant]
            medians[key][variant] = {
                m: statistics.median(r[m] for r in mine)
                for m in (
                    "events_per_s",
                    "client_cpu_us_per_event",
                    "machine_cpu_us_per_event",
                    "machine_busy_cores",
                    "wal_bytes_per_event",
                )
            }
    print()
    print(f"{'case':<6} {'variant':<20} {'ev/s':>9} {'vs raw':>7} {'client µs/ev':>13} {'machine µs/ev':>14} "
          f"{'cores':>6} {'WAL B/ev':>9}")  # fmt: skip
    for key in keys:
        raw = medians[key]["raw"]["events_per_s"]
        order = ["danvan", "danvan_no_reset", *VARIANTS_100[1:], "raw_no_reset"]
        for variant in sorted(medians[key], key=order.index):
            m = medians[key][variant]
            print(
                f"{key:<6} {variant:<20} {m['events_per_s']:>9,.0f} {m['events_per_s'] / raw:>7.2f} "
                f"{m['client_cpu_us_per_event']:>13.0f} {m['machine_cpu_us_per_event']:>14.0f} "
                f"{m['machine_busy_cores']:>6.2f} {m['wal_bytes_per_event']:>9.0f}"
            )
    print("\ntable statistics (whole run):")
    for name, st in out["table_stats"].items():
        print(f"  {name:<10} inserted {st['n_tup_ins']:>7}  updated {st['n_tup_upd']:>7}  HOT {st['n_tup_hot_upd']:>7}")
    return {
        "machine": machine_info(server_version, {}),
        "config": vars(args),
        "medians": medians,
        "measurements": rows,
        **out,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.append_profile", description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    p.add_argument("--events", type=int, default=4000)
    p.add_argument("--events-batched", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--stream-appends", type=int, default=50)
    p.add_argument("--cases", default="1x8,100x8", help="comma-separated of 1x1, 1x8, 100x1, 100x8")
    p.add_argument("--loop-calls", type=int, default=2000, help="calls per round of the server-only loop")
    p.add_argument("--loop-rounds", type=int, default=5)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # unwind like Ctrl-C, so that the database is still dropped
    name = f"bench_{secrets.token_hex(4)}"
    print(f"server {redact(args.database_url)}; database {name}")
    asyncio.run(create_database(args.database_url, name))
    try:
        out = asyncio.run(profile(with_database(args.database_url, name), args))
    finally:
        asyncio.run(drop_database(args.database_url, name))
        print(f"dropped database {name}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
