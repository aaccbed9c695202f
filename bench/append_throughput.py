"""Append throughput of danvan's event store against two baselines, on one PostgreSQL server, in one run.

    .venv/bin/python -m bench.append_throughput [--database-url URL] [--events N] [--events-batched M]
                                                [--repeat R] [--stream-appends K] [--json out.json] [--quick]
                                                [--no-perf]

Systems (see bench/README.md for what each measures and why the comparison is fair):

  danvan           `EventStore.append` (hash chain + `cases` projection row) on the store's pool
  raw_insert       asyncpg, one autocommitted single-row INSERT per event through `asyncpg.Pool`
  raw_insert_held  the same INSERT, each writer on a connection of its own held for the whole run (no pool)
  raw_executemany  asyncpg, `executemany` of the transaction's rows in one transaction (100 per transaction)
  eventsourcing    the eventsourcing library's `PostgresApplicationRecorder.insert_events` (psycopg 3)

Cases: 1 and 100 events per transaction, each with 1 and 8 concurrent writers. Each writer appends to its own
streams (a new stream every `--stream-appends` appends). Every measurement is preceded by a short warm-up of
the same system and a CHECKPOINT; the systems are interleaved (ABCABC…) over `--repeat` rounds and the
median events/s is reported. Where `perf` can count, each measurement also counts the instructions retired by
the client process and by the database's backends (`perf stat -e instructions`), a figure that, unlike
events/s, does not move with the speed of a shared machine. The benchmark creates a fresh database
`bench_<random>`, migrates it with `eventstore.migrate`, and drops it at the end, also on failure. After
measuring it checks that the danvan database passes `EventStore.verify()` and that every system stored exactly
the events that were appended.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from danvan.postgres import create_database, drop_database, redact, with_database
from eventstore import CaseRow, EventStore, NewEvent, migrate
from eventstore.store import init_connection

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POOL_SIZE = 8

DANVAN = "danvan"
RAW_INSERT = "raw_insert"
RAW_INSERT_HELD = "raw_insert_held"
RAW_EXECUTEMANY = "raw_executemany"
EVENTSOURCING = "eventsourcing"

RAW_TABLE_SQL = """
CREATE TABLE bench_raw (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id    text NOT NULL,
    version      integer NOT NULL,
    event_id     uuid NOT NULL,
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    data         jsonb NOT NULL,
    CONSTRAINT bench_raw_event_id_key UNIQUE (event_id),
    CONSTRAINT bench_raw_stream_version_key UNIQUE (stream_id, version)
)
"""
RAW_INSERT_SQL = (
    "INSERT INTO bench_raw (stream_id, version, event_id, type, occurred_at, data) VALUES ($1, $2, $3, $4, $5, $6)"
)

EVENT_TYPE = "PetitionNoteAdded"
ES_TOPIC = "danvan.domain.petition:PetitionNoteAdded"
STATUSES = ("received", "assigned", "in_progress", "answered")
BODIES = ["Ban Dân vận Tỉnh ủy", "UBND huyện Đồng Phú", "Thanh tra tỉnh"]


# -- the workload ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    batch: int  # events per transaction
    writers: int
    events: int  # events measured (a multiple of batch)
    systems: tuple[str, ...]


@dataclass(frozen=True)
class Tx:
    """One transaction of one writer: `count` events of stream number `stream` from version `first` on."""

    stream: int
    first: int
    count: int


def writer_plans(events: int, batch: int, writers: int, stream_appends: int) -> list[list[Tx]]:
    """Split `events` into transactions of `batch` over `writers`; a writer opens a new stream every
    `stream_appends` appends. Every writer's streams are its own."""
    total_tx = events // batch
    plans: list[list[Tx]] = []
    for w in range(writers):
        n_tx = total_tx // writers + (1 if w < total_tx % writers else 0)
        plan = []
        for i in range(n_tx):
            stream, nth = divmod(i, stream_appends)
            plan.append(Tx(stream=stream, first=nth * batch + 1, count=batch))
        plans.append(plan)
    return plans


def event_data(seq: int) -> dict[str, Any]:
    """About 300 bytes of JSON (UTF-8, no escapes), mostly Vietnamese text."""
    return {
        "noi_dung": "Công dân phản ánh việc thu hồi đất làm đường liên xã chưa được bồi thường thỏa đáng, "
        "đề nghị xem xét lại giá đất",
        "nguoi_gui": "Nguyễn Thị Hồng Nhung",
        "dia_chi": "Ấp 3, xã Tân Phú, huyện Đồng Phú",
        "so_van_ban": f"{seq:06d}/TCD",
        "muc_do": seq % 3 + 1,
    }


def payload_bytes() -> int:
    return len(json.dumps(event_data(1), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class Workload:
    """Turns writer plans into each system's ready-made arguments, before any clock starts."""

    def __init__(self) -> None:
        self.seq = 0
        self.base_time = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
        self.run = 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _occurred(self, seq: int) -> datetime:
        return self.base_time + timedelta(milliseconds=seq)

    def danvan(self, plans: list[list[Tx]], tag: str) -> list[list[tuple[str, list[NewEvent], CaseRow]]]:
        self.run += 1
        out = []
        for w, plan in enumerate(plans):
            txs = []
            for tx in plan:
                stream_id = f"HS-{tag}-{self.run}-w{w}-s{tx.stream}"
                events = []
                for _ in range(tx.count):
                    seq = self._next()
                    events.append(
                        NewEvent(
                            event_id=uuid.uuid4(),
                            type=EVENT_TYPE,
                            occurred_at=self._occurred(seq),
                            actor="can-bo-tiep-dan-07",
                            legal_basis="Luật Khiếu nại 2011, Điều 27",
                            data=event_data(seq),
                        )
                    )
                version = tx.first + tx.count - 1
                received = self.base_time - timedelta(days=3)
                case = CaseRow(
                    kind="complaint",
                    status=STATUSES[(version // 10) % len(STATUSES)],
                    title="Đơn khiếu nại về đất đai",
                    lead_body=BODIES[0],
                    bodies=BODIES,
                    district="Huyện Đồng Phú",
                    commune="Xã Tân Phú",
                    source="tiep-cong-dan",
                    external_ref=f"TCD-{self.run}-{w}-{tx.stream}",
                    received_at=received,
                    due_at=received + timedelta(days=30),
                    summary={"so_su_kien": version, "su_kien_cuoi": EVENT_TYPE},
                )
                txs.append((stream_id, events, case))
            out.append(txs)
        return out

    def raw(self, plans: list[list[Tx]], tag: str) -> list[list[list[tuple[Any, ...]]]]:
        self.run += 1
        out = []
        for w, plan in enumerate(plans):
            txs = []
            for tx in plan:
                stream_id = f"HS-{tag}-{self.run}-w{w}-s{tx.stream}"
                rows = []
                for i in range(tx.count):
                    seq = self._next()
                    rows.append(
                        (
                            stream_id,
                            tx.first + i,
                            uuid.uuid4(),
                            EVENT_TYPE,
                            self._occurred(seq),
                            event_data(seq),
                        )
                    )
                txs.append(rows)
            out.append(txs)
        return out

    def eventsourcing(self, plans: list[list[Tx]]) -> list[list[list[Any]]]:
        from eventsourcing.persistence import StoredEvent

        out = []
        for plan in plans:
            ids: dict[int, uuid.UUID] = {}
            txs = []
            for tx in plan:
                originator = ids.setdefault(tx.stream, uuid.uuid4())
                stored = []
                for i in range(tx.count):
                    seq = self._next()
                    state = json.dumps(event_data(seq), ensure_ascii=False, separators=(",", ":")).encode()
                    stored.append(
                        StoredEvent(
                            originator_id=originator,
                            originator_version=tx.first + i,
                            topic=ES_TOPIC,
                            state=state,
                        )
                    )
                txs.append(stored)
            out.append(txs)
        return out


# -- the systems under test ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What each system was asked to store, to check against what it did store."""

    events: dict[str, int] = field(default_factory=lambda: {DANVAN: 0, "raw": 0, EVENTSOURCING: 0})
    danvan_streams: int = 0


async def run_danvan(store: EventStore, plans: Sequence[Sequence[tuple[str, list[NewEvent], CaseRow | None]]]) -> float:
    async def writer(txs: Sequence[tuple[str, list[NewEvent], CaseRow | None]]) -> None:
        current, version = "", 0
        for stream_id, events, case in txs:
            if stream_id != current:
                current, version = stream_id, 0
            result = await store.append(stream_id, version, events, case)
            if result.duplicate or result.version != version + len(events):
                raise RuntimeError(f"unexpected append result {result!r} at {stream_id} v{version}")
            version = result.version

    start = time.perf_counter()
    await asyncio.gather(*(writer(p) for p in plans))
    return time.perf_counter() - start


async def run_raw_insert(pool: asyncpg.Pool, plans: list[list[list[tuple[Any, ...]]]]) -> float:
    async def writer(txs: list[list[tuple[Any, ...]]]) -> None:
        for rows in txs:
            for row in rows:  # one row per transaction in this case: autocommit
                await pool.execute(RAW_INSERT_SQL, *row)

    start = time.perf_counter()
    await asyncio.gather(*(writer(p) for p in plans))
    return time.perf_counter() - start


async def run_raw_insert_held(pool: asyncpg.Pool, plans: list[list[list[tuple[Any, ...]]]]) -> float:
    async def writer(conn: asyncpg.Connection, txs: list[list[tuple[Any, ...]]]) -> None:
        for rows in txs:
            for row in rows:
                await conn.execute(RAW_INSERT_SQL, *row)

    conns = [await pool.acquire() for _ in plans]  # before the clock starts
    try:
        start = time.perf_counter()
        await asyncio.gather(*(writer(c, p) for c, p in zip(conns, plans, strict=True)))
        return time.perf_counter() - start
    finally:
        for conn in conns:
            await pool.release(conn)

    start = time.perf_counter()
    await asyncio.gather(*(writer(p) for p in plans))
    return time.perf_counter() - start


async def run_raw_executemany(pool: asyncpg.Pool, plans: list[list[list[tuple[Any, ...]]]]) -> float:
    async def writer(txs: list[list[tuple[Any, ...]]]) -> None:
        for rows in txs:
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(RAW_INSERT_SQL, rows)

    start = time.perf_counter()
    await asyncio.gather(*(writer(p) for p in plans))
    return time.perf_counter() - start


def run_eventsourcing(recorder: Any, plans: list[list[list[Any]]]) -> float:
    barrier = threading.Barrier(len(plans) + 1)
    errors: list[BaseException] = []

    def writer(txs: list[list[Any]]) -> None:
        barrier.wait()
        try:
            for stored in txs:
                recorder.insert_events(stored)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,), daemon=True) for p in plans]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"eventsourcing writer failed: {errors[0]!r}") from errors[0]
    return elapsed


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then move every object alive (the prepared arguments) out of the collector's sight for the
    timed run: otherwise the full collections that the appends' own allocations trigger walk hundreds of
    thousands of prepared objects, a cost of the benchmark's set-up, not of the system measured."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class Usage:
    """Resources used between two samples: this process's CPU, the machine's busy CPU, WAL written.

    The client (this process) and PostgreSQL share the machine, so `busy_cores - client_cpu/wall` is, to a
    first approximation, what the server spent. WAL is the whole cluster's (other databases included)."""

    wall: float
    client_cpu: float
    busy_cores: float  # CPU-seconds of the whole machine (all cores), not yet divided by wall
    wal_bytes: int

    @staticmethod
    def _machine_busy() -> float:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return 0.0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @classmethod
    async def sample(cls, admin: asyncpg.Connection) -> Usage:
        lsn = await admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return cls(time.perf_counter(), time.process_time(), cls._machine_busy(), int(lsn))

    def minus(self, before: Usage) -> Usage:
        return Usage(
            self.wall - before.wall,
            self.client_cpu - before.client_cpu,
            self.busy_cores - before.busy_cores,
            self.wal_bytes - before.wal_bytes,
        )


class Instructions:
    """Instructions retired during a measurement, by `perf stat`, in this process (the client) and in the
    database's client backends (the server side of whichever system runs; the others' connections are idle).
    Unlike seconds, a count does not move with the machine's speed or with what else runs on it: the same code
    on the same data counts within about 1% from run to run, where events/s can move by a third on a shared
    machine. Absent (None) where `perf` cannot count (not installed, or not allowed)."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.procs = [self._start([os.getpid()]), self._start(pids)]

    @staticmethod
    def _start(pids: Sequence[int]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["perf", "stat", "-e", "instructions", "-x", ",", "-p", ",".join(map(str, pids))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def available() -> bool:
        try:
            out = subprocess.run(
                ["perf", "stat", "-e", "instructions", "-x", ",", "true"], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return out.returncode == 0 and _count(out.stderr) is not None

    async def stop(self) -> tuple[int, int] | None:
        counts = []
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
            _, err = await asyncio.to_thread(proc.communicate)
            counts.append(_count(err))
        client, server = counts
        return None if client is None or server is None else (client, server)


def _count(perf_output: str) -> int | None:
    for line in reversed(perf_output.strip().splitlines()):
        first = line.split(",", 1)[0]
        if first.isdigit():
            return int(first)
    return None


async def _no_reset(conn: asyncpg.Connection) -> None:
    """The raw writers change no session state: asyncpg's reset query on release would be a wasted round trip."""


async def raw_asyncpg_pool(url: str) -> asyncpg.Pool:
    """The raw baselines' pool: asyncpg's own, with the store's JSON codecs, at its cheapest (no reset query on
    release)."""
    pool = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, init=init_connection, reset=_no_reset)
    assert pool is not None
    return pool


class Bench:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.workload = Workload()
        self.tally = Tally()
        self.store: EventStore | None = None
        self.raw_pool: asyncpg.Pool | None = None
        self.admin: asyncpg.Connection | None = None
        self.es_datastore: Any = None
        self.es_recorder: Any = None
        self.checkpoint_ok = True
        self.count_instructions = False

    async def open(self) -> None:
        self.admin = await asyncpg.connect(self.url)
        applied = await migrate(self.admin)
        print(f"migrated: {', '.join(applied)}")
        await self.admin.execute(RAW_TABLE_SQL)
        self.store = await EventStore.open(self.url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        self.raw_pool = await raw_asyncpg_pool(self.url)
        await asyncio.to_thread(self._open_eventsourcing)
        self.count_instructions = not self.args.no_perf and await asyncio.to_thread(Instructions.available)
        print(f"instructions counted by perf: {'yes' if self.count_instructions else 'no'}")

    def _open_eventsourcing(self) -> None:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        parts = urlsplit(self.url)
        self.es_datastore = PostgresDatastore(
            dbname=unquote(parts.path.lstrip("/")),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            pool_size=POOL_SIZE,
        )
        self.es_recorder = PostgresApplicationRecorder(self.es_datastore)
        self.es_recorder.create_table()
        self.es_datastore.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        if self.es_datastore is not None:
            await asyncio.to_thread(self.es_datastore.close)
        if self.store is not None:
            await self.store.close()
        if self.raw_pool is not None:
            await self.raw_pool.close()
        if self.admin is not None:
            await self.admin.close()

    async def checkpoint(self) -> None:
        assert self.admin is not None
        if not self.checkpoint_ok:
            return
        try:
            await self.admin.execute("CHECKPOINT")
        except asyncpg.PostgresError as exc:
            self.checkpoint_ok = False
            print(f"warning: CHECKPOINT not allowed ({exc}); measuring without it", file=sys.stderr)

    def prepare(self, system: str, plans: list[list[Tx]], tag: str) -> Callable[[], Awaitable[float]]:
        """Build the system's arguments (not timed); return the run, which times only the appends."""
        n_events = sum(tx.count for plan in plans for tx in plan)
        if system == DANVAN:
            assert self.store is not None
            store = self.store
            d = self.workload.danvan(plans, tag)
            self.tally.events[DANVAN] += n_events
            self.tally.danvan_streams += len({s for p in d for s, _, _ in p})
            return lambda: run_danvan(store, d)
        if system in (RAW_INSERT, RAW_INSERT_HELD, RAW_EXECUTEMANY):
            assert self.raw_pool is not None
            pool = self.raw_pool
            r = self.workload.raw(plans, tag)
            self.tally.events["raw"] += n_events
            runner = {
                RAW_INSERT: run_raw_insert,
                RAW_INSERT_HELD: run_raw_insert_held,
                RAW_EXECUTEMANY: run_raw_executemany,
            }[system]
            return lambda: runner(pool, r)
        if system == EVENTSOURCING:
            e = self.workload.eventsourcing(plans)
            self.tally.events[EVENTSOURCING] += n_events
            return lambda: asyncio.to_thread(run_eventsourcing, self.es_recorder, e)
        raise ValueError(system)

    async def measure(self, case: Case, system: str, repeat: int, *, count: bool = False) -> dict[str, Any]:
        assert self.admin is not None
        stream_appends = self.args.stream_appends
        warm = max(case.batch * case.writers, (case.events // 20) // case.batch * case.batch)
        warm_plans = writer_plans(warm, case.batch, case.writers, stream_appends)
        await self.prepare(system, warm_plans, f"{case.key}-wu")()
        plans = writer_plans(case.events, case.batch, case.writers, stream_appends)
        n_events = sum(tx.count for plan in plans for tx in plan)
        run = self.prepare(system, plans, case.key)
        await self.checkpoint()
        counter = None
        if count:
            backends = await self.admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            counter = Instructions([r["pid"] for r in backends])
            await asyncio.sleep(0.2)  # perf attaches
        with frozen_heap():
            before = await Usage.sample(self.admin)
            seconds = await run()
            used = (await Usage.sample(self.admin)).minus(before)
        counts = await counter.stop() if counter is not None else None
        eps = n_events / seconds
        instructions = {}
        if counts is not None:
            instructions = {
                "client_kinstr_per_event": counts[0] / n_events / 1000,
                "server_kinstr_per_event": counts[1] / n_events / 1000,
            }
        print(
            f"  {case.label:<28} {system:<16} {'counted' if count else f'round {repeat + 1}'}: {eps:>10,.0f} events/s "
            f"({seconds:.2f} s; "
            f"client CPU {used.client_cpu / n_events * 1e6:.0f} µs/event, machine busy "
            f"{used.busy_cores / max(used.wall, 1e-9):.2f} of {os.cpu_count()} cores, "
            f"WAL {used.wal_bytes / n_events:.0f} B/event"
            + (
                f"; instructions: client {instructions['client_kinstr_per_event']:.0f}k, "
                f"server {instructions['server_kinstr_per_event']:.0f}k /event)"
                if instructions
                else ")"
            )
        )
        return {
            "case": case.key,
            "system": system,
            "repeat": repeat + 1,
            "events": n_events,
            "transactions": n_events // case.batch,
            "seconds": seconds,
            "events_per_s": eps,
            "client_cpu_us_per_event": used.client_cpu / n_events * 1e6,
            "machine_busy_cores": used.busy_cores / max(used.wall, 1e-9),
            "wal_bytes_per_event": used.wal_bytes / n_events,
            **instructions,
        }

    async def verify(self) -> dict[str, Any]:
        assert self.store is not None and self.admin is not None
        report = await self.store.verify()
        conn = self.admin
        danvan_events = await conn.fetchval("SELECT count(*) FROM events")
        danvan_streams = await conn.fetchval("SELECT count(*) FROM streams")
        head_total = await conn.fetchval("SELECT coalesce(sum(version), 0) FROM streams")
        cases = await conn.fetchval("SELECT count(*) FROM cases")
        cases_behind = await conn.fetchval(
            "SELECT count(*) FROM streams s LEFT JOIN cases c ON c.case_id = s.stream_id "
            "WHERE c.version IS DISTINCT FROM s.version"
        )
        raw_events = await conn.fetchval("SELECT count(*) FROM bench_raw")
        es_events = await conn.fetchval(
            f"SELECT count(*) FROM {self.es_recorder.events_table_name}"  # the library's default table name
        )
        t = self.tally
        checks = {
            "danvan verify() ok": report.ok,
            "danvan verify() checked every event": report.events_checked == t.events[DANVAN],
            "danvan events stored == appended": danvan_events == t.events[DANVAN],
            "danvan streams == streams written": danvan_streams == t.danvan_streams,
            "danvan stream heads sum to the events": head_total == t.events[DANVAN],
            "danvan one cases row per stream, at its version": cases == danvan_streams and cases_behind == 0,
            "raw events stored == appended": raw_events == t.events["raw"],
            "eventsourcing events stored == appended": es_events == t.events[EVENTSOURCING],
        }
        return {
            "ok": all(checks.values()),
            "checks": checks,
            "appended": dict(t.events),
            "stored": {DANVAN: danvan_events, "raw": raw_events, EVENTSOURCING: es_events},
            "danvan_streams": danvan_streams,
            "verify_report": report.model_dump(),
        }


# -- reporting ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    case: str
    system: str
    baseline: str
    target: float | None  # None: for information


def ratios_for(cases: Sequence[Case]) -> list[Ratio]:
    targets = {
        ("1x8", RAW_INSERT): 0.6,
        # With the hash chain, the projection row and the integrity checks, against an INSERT that pays no pool.
        ("1x8", RAW_INSERT_HELD): 0.55,
        ("1x8", EVENTSOURCING): 3.0,
        ("100x1", RAW_EXECUTEMANY): 0.5,
        ("100x8", RAW_EXECUTEMANY): 0.5,
    }
    out = []
    for case in cases:
        for baseline in case.systems:
            if baseline != DANVAN:
                out.append(Ratio(case.key, DANVAN, baseline, targets.get((case.key, baseline))))
    return out


def machine_info(server_version: str, settings: dict[str, str], load_at_start: Sequence[float] = ()) -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        nproc = os.cpu_count() or 0
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": nproc,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": server_version,
        "server_settings": settings,
        # The machine may be shared (other sessions' tests): the load average says how quiet it was.
        "loadavg_at_start": list(load_at_start),
        "loadavg_at_end": list(os.getloadavg()),
    }


def summarize(results: list[dict[str, Any]], case: str, system: str) -> dict[str, float]:
    """Median (the figure), spread and resource use over the rounds of one system in one case."""
    mine = [r for r in results if r["case"] == case and r["system"] == system]
    eps = [r["events_per_s"] for r in mine]
    return {
        "events_per_s": statistics.median(eps),
        "min": min(eps),
        "max": max(eps),
        "client_cpu_us_per_event": statistics.median(r["client_cpu_us_per_event"] for r in mine),
        "machine_busy_cores": statistics.median(r["machine_busy_cores"] for r in mine),
        "wal_bytes_per_event": statistics.median(r["wal_bytes_per_event"] for r in mine),
    }


def instruction_ratio(baseline: dict[str, float], system: dict[str, float]) -> float | None:
    keys = ("client_kinstr_per_event", "server_kinstr_per_event")
    if not all(k in baseline and k in system for k in keys):
        return None
    return sum(baseline[k] for k in keys) / sum(system[k] for k in keys)


def print_table(
    cases: Sequence[Case], summary: dict[tuple[str, str], dict[str, float]], ratios: list[dict[str, Any]]
) -> None:
    print()
    print(
        f"{'case':<26} {'system':<16} {'events/s (median)':>17} {'min-max of rounds':>19} "
        f"{'client µs/ev':>12} {'busy cores':>10} {'WAL B/ev':>9} {'instructions/ev: client':>24} {'server':>7}"
    )
    print("-" * 148)
    for case in cases:
        for system in case.systems:
            m = summary[(case.key, system)]
            spread = f"{m['min']:,.0f}-{m['max']:,.0f}"
            print(
                f"{case.label:<26} {system:<16} {m['events_per_s']:>17,.0f} {spread:>19} "
                f"{m['client_cpu_us_per_event']:>12.0f} {m['machine_busy_cores']:>10.2f} "
                f"{m['wal_bytes_per_event']:>9.0f}"
                + (
                    f" {m['client_kinstr_per_event']:>23,.0f}k {m['server_kinstr_per_event']:>6,.0f}k"
                    if "server_kinstr_per_event" in m
                    else ""
                )
            )
    print()
    print(
        f"{'case':<26} {'ratio of the medians':<28} {'value':>7}  {'target':<17} per round: median (min-max)"
        "   in instructions"
    )
    print("-" * 130)
    for r in ratios:
        target = "(information)" if r["target"] is None else f">= {r['target']:<4} {'MET' if r['met'] else 'NOT MET'}"
        rounds = f"{r['per_round_median']:.2f} ({min(r['per_round']):.2f}-{max(r['per_round']):.2f})"
        counted = f"{r['instructions']:>17.2f}" if r.get("instructions") is not None else ""
        print(f"{r['case_label']:<26} {r['name']:<28} {r['value']:>7.2f}  {target:<17} {rounds:<24}{counted}")
    print(
        "(in instructions: the baseline's instructions per event, client and server, over the system's: the ratio"
        " with the CPU as the only limit, and free of the machine's changing speed)"
    )
    print()


# -- main ------------------------------------------------------------------------------------------


def build_cases(events: int, events_batched: int) -> list[Case]:
    single = (DANVAN, RAW_INSERT, RAW_INSERT_HELD, EVENTSOURCING)
    batched = (DANVAN, RAW_EXECUTEMANY, EVENTSOURCING)
    events_batched = max(100, events_batched // 100 * 100)
    return [
        Case("1x1", "1 event/tx, 1 writer", 1, 1, events, single),
        Case("1x8", "1 event/tx, 8 writers", 1, 8, events, single),
        Case("100x1", "100 events/tx, 1 writer", 100, 1, events_batched, batched),
        Case("100x8", "100 events/tx, 8 writers", 100, 8, events_batched, batched),
    ]


async def bench(url: str, args: argparse.Namespace, cases: list[Case]) -> dict[str, Any]:
    b = Bench(url, args)
    load_at_start = os.getloadavg()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_at_start)}")
    try:
        await b.open()
        assert b.admin is not None
        server_version = await b.admin.fetchval("SELECT version()")
        settings = {
            r["name"]: r["value"]
            for r in await b.admin.fetch(
                "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1::text[])",
                ["synchronous_commit", "fsync", "shared_buffers", "wal_level", "max_wal_size", "commit_delay"],
            )
        }
        print(f"payload: {payload_bytes()} bytes of JSON data per event; pool size {POOL_SIZE}")
        results: list[dict[str, Any]] = []
        counted: list[dict[str, Any]] = []
        for case in cases:
            print(f"{case.label}: {case.events} events per measurement")
            for repeat in range(args.repeat):
                for system in case.systems:  # interleaved: A B C A B C …
                    results.append(await b.measure(case, system, repeat))
            # One more run of each system with perf attached, for the instructions only: perf costs time at
            # every context switch, which is one round trip per event on both sides, so it would weigh more
            # on the faster side of a ratio. The events/s figures come from the rounds above, without it.
            if b.count_instructions:
                for system in case.systems:
                    counted.append(await b.measure(case, system, args.repeat, count=True))
        verification = await b.verify()
    finally:
        await b.close()

    summary = {(c.key, s): summarize(results, c.key, s) for c in cases for s in c.systems}
    for m in counted:
        summary[(m["case"], m["system"])].update(
            {k: m[k] for k in ("client_kinstr_per_event", "server_kinstr_per_event") if k in m}
        )
    medians = {k: v["events_per_s"] for k, v in summary.items()}
    labels = {c.key: c.label for c in cases}
    ratios = []
    for r in ratios_for(cases):
        value = medians[(r.case, r.system)] / medians[(r.case, r.baseline)]
        # The same ratio within each round (the two measured minutes apart at most), a check against drift.
        by_round = {(m["system"], m["repeat"]): m["events_per_s"] for m in results if m["case"] == r.case}
        per_round = [by_round[(r.system, i)] / by_round[(r.baseline, i)] for i in range(1, args.repeat + 1)]
        ratios.append(
            {
                "case": r.case,
                "case_label": labels[r.case],
                "name": f"{r.system} / {r.baseline}",
                "value": value,
                "per_round": per_round,
                "per_round_median": statistics.median(per_round),
                "target": r.target,
                "met": None if r.target is None else value >= r.target,
                "instructions": instruction_ratio(summary[(r.case, r.baseline)], summary[(r.case, r.system)]),
            }
        )
    print_table(cases, summary, ratios)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("verification:")
    for name, ok in verification["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return {
        "command": " ".join([os.path.basename(sys.executable), "-m", "bench.append_throughput", *sys.argv[1:]]),
        "machine": machine_info(server_version, settings, load_at_start),
        "config": {
            "events_single": args.events,
            "events_batched": cases[-1].events,
            "repeat": args.repeat,
            "stream_appends": args.stream_appends,
            "pool_size": POOL_SIZE,
            "payload_bytes": payload_bytes(),
            "checkpoint_before_each_measurement": b.checkpoint_ok,
        },
        "cases": [
            {"key": c.key, "label": c.label, "batch": c.batch, "writers": c.writers, "events": c.events} for c in cases
        ],
        "medians": [{"case": c, "system": s, **v} for (c, s), v in summary.items()],
        "ratios": ratios,
        "measurements": results,
        "counted_runs": counted,
        "verification": verification,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.append_throughput", description=__doc__.split("\n")[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help="server to benchmark on; a fresh database is created there and dropped (default: $DATABASE_URL, "
        f"else {DEFAULT_URL})",
    )
    p.add_argument("--events", type=int, default=None, help="events per measurement, 1-event cases (4000)")
    p.add_argument(
        "--events-batched",
        type=int,
        default=None,
        help="events per measurement, 100-event cases (5 x --events)",
    )
    p.add_argument("--repeat", type=int, default=None, help="rounds per case, median reported (5)")
    p.add_argument("--stream-appends", type=int, default=50, help="appends per stream before a new one (50)")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--quick", action="store_true", help="small counts and 1 round: a check that it runs")
    p.add_argument("--no-perf", action="store_true", help="do not count instructions with `perf stat`")
    args = p.parse_args(argv)
    if args.events is None:
        args.events = 400 if args.quick else 4000
    if args.events_batched is None:
        args.events_batched = 5 * args.events
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.events < 8 or args.events_batched < 800 or args.repeat < 1 or args.stream_appends < 1:
        p.error("need --events >= 8, --events-batched >= 800, --repeat >= 1, --stream-appends >= 1")
    return args


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` (SIGTERM) unwinds like Ctrl-C, so that the database is still dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    cases = build_cases(args.events, args.events_batched)
    name = f"bench_{secrets.token_hex(4)}"
    bench_url = with_database(args.database_url, name)
    print(f"server {redact(args.database_url)}; database {name}")
    asyncio.run(create_database(args.database_url, name))
    try:
        out = asyncio.run(bench(bench_url, args, cases))
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
    if not out["verification"]["ok"]:
        print("verification FAILED: the figures above are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
