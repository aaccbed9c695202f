"""The stalled scan at a province's scale: visibility and the worker's notes, against describing every running case.

    .venv/bin/python -m bench.stalled [--database-url URL] [--sizes 5000,20000] [--failing 100] [--paused 20]
                                      [--broken 10] [--rounds 3] [--requests 200] [--json out.json] [--quick]

The benchmark starts its own Temporal dev server (as `danvan up` does: a SQLite file in WAL mode, the engine's
search attributes and `ops.stalled.SERVER_DYNAMIC_CONFIG`), creates its own database `bench_<random>` on the
PostgreSQL server, migrates it, and drops both at the end, also after an error, Ctrl-C or a plain `kill`.

Setup (not timed), for the first size, then grown to each next one:
  - running case workflows `pet-<n>` with the search attributes of a case (`CaseKind`, `LeadBody`, a realistic
    mix), each with its `cases` row (COPY). A healthy one waits on a year-long timer, as an open case waits on
    its deadline; its steps ran at their first attempt long ago, so the worker noted nothing of it;
  - `--failing` of them whose step (an activity) fails at every attempt (retried 1, 2, 4, 8, 10, 10... s apart),
    noted by the worker's interceptor (`ops.steps`) as the real worker notes them;
  - `--paused` whose failing step was then paused (PauseActivity), and `--broken` whose workflow code raises at
    every workflow task (`TemporalReportedProblems`);
  - the benchmark waits until Temporal flags every paused and broken one and every failing step has failed
    twice (the policy's `min_attempts` is 3).

Timed, `--rounds` times at each size, the two scans alternating which goes first:
  - the new scan of Temporal's side (`ops.stalled.temporal_stalls`): one visibility query, one SQL query of the
    notes, a describe of each workflow those name (plus a history read for each failing workflow task);
  - today's scan (`ops.stalled.describe_all_stalls`): list every running workflow, describe each, 16 at a time
    (its `scan_limit` raised to the size, so that it sees them all);
  - each round checks that both find exactly the stalled cases set up, and counts each one's Temporal RPCs;
  - the scheduled look as it runs every minute (`ops.scan.run_scan`: the scan, the idle cases in SQL and the write
    of the stalled set), for information;
  - then `--requests` times `GET /v1/cases?stalled=true` (and `/v1/cases/counts?stalled=true`,
    `GET /v1/ops/stalled`) through the API in-process (httpx ASGI transport: auth, routing, JSON, no network),
    reading the table the look wrote.

Targets (issue 13): the new scan at least 20x faster than describing everything, its cost set by the stalled
cases and not by the healthy ones (the same RPCs at 5,000 and 20,000), and `GET /v1/cases?stalled=true` p95
under 100 ms at 20,000 running cases.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
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
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import PauseActivityRequest
from temporalio.client import Client
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.queries import CaseFilter, count_cases_sql, list_cases_sql
from api.tokens import issue_token
from bench.append_throughput import DEFAULT_URL, machine_info
from bench.listing import plan_of
from danvan.postgres import create_database, drop_database, redact, with_database
from danvan.settings import Settings
from eventstore import EventStore, migrate
from ops.scan import run_scan
from ops.stalled import ScanStats, Stalled, StallPolicy, describe_all_stalls, dev_server_args, temporal_stalls
from ops.steps import StepFailureInterceptor, StepNotes
from workflows.shared import SEARCH_ATTRIBUTES

TASK_QUEUE = "bench-stalled"
POLICY = StallPolicy()  # min_attempts 3, as the scheduled scan has it
KIND = SearchAttributeKey.for_keyword("CaseKind")
LEAD = SearchAttributeKey.for_keyword("LeadBody")
KINDS = [("complaint", 0.45), ("denunciation", 0.15), ("recommendation", 0.25), ("voter_petition", 0.10),
         ("plan_task", 0.05)]
LEADS = [("UBND_TINH", 0.3), ("SO_TAI_NGUYEN", 0.2), ("SO_XAY_DUNG", 0.15), ("SO_NOI_VU", 0.1),
         ("UBND_HUYEN:nam-sach", 0.15), ("UBND_HUYEN:kinh-mon", 0.1)]
START_CONCURRENCY = 64
SETTLE_TIMEOUT = 240.0

log = logging.getLogger("bench.stalled")


# -- the benchmark's cases ------------------------------------------------------------------------------------

@activity.defn(name="bench_step")
async def bench_step(mode: str) -> None:
    raise RuntimeError("injected fault: the archive is unreachable")


@workflow.defn(name="BenchCase", sandboxed=False)
class BenchCase:
    """A running case: healthy (waits on its deadline), or with a step failing, or with code that fails."""

    @workflow.run
    async def run(self, mode: str) -> None:
        if mode == "broken":
            raise RuntimeError("bug: the case cannot be routed")
        if mode in ("failing", "paused"):
            await workflow.execute_activity(
                bench_step, mode, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)))
        await workflow.sleep(timedelta(days=365))


def _weighted(rng: random.Random, items: Sequence[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in items], weights=[w for _, w in items])[0]


class Cases:
    """The benchmark's running cases: which are stalled and how, and the attributes of each."""

    def __init__(self, seed: int, failing: int, paused: int, broken: int) -> None:
        self.rng = random.Random(seed)
        self.count = 0
        self.modes: dict[str, str] = {}
        self.failing, self.paused, self.broken = failing, paused, broken

    def case_id(self, n: int) -> str:
        return f"pet-{n:08d}"

    def grow_to(self, size: int) -> list[tuple[str, str, str, str]]:
        """(case id, mode, kind, lead) of the cases to start to reach `size`; the stalled ones among the first."""
        stalled = ["failing"] * self.failing + ["paused"] * self.paused + ["broken"] * self.broken
        if self.count == 0:
            picks = set(self.rng.sample(range(size), len(stalled)))
            order = iter(stalled)
            self._stalled_at = {n: next(order) for n in sorted(picks)}
        new = []
        for n in range(self.count, size):
            mode = self._stalled_at.get(n, "healthy")
            case_id = self.case_id(n)
            self.modes[case_id] = mode
            new.append((case_id, mode, _weighted(self.rng, KINDS), _weighted(self.rng, LEADS)))
        self.count = size
        return new

    def expected(self) -> set[tuple[str, str]]:
        reason = {"failing": "activity_failing", "paused": "activity_paused", "broken": "workflow_task_failing"}
        return {(c, reason[m]) for c, m in self.modes.items() if m != "healthy"}


def case_row(case_id: str, kind: str, lead: str, now: datetime, n: int) -> tuple[Any, ...]:
    received = now - timedelta(days=n % 60, hours=n % 24)
    summary = {"case_id": case_id, "kind": kind, "status": "verifying", "lead_body": lead, "bodies": [lead]}
    return (case_id, kind, "verifying", "Khiếu nại về bồi thường đất đai", lead, [lead], "Nam Sách", "Xã An Lâm",
            "cong-dvc", f"REF-{case_id}", received, received + timedelta(days=90), False, 3,
            json.dumps(summary, ensure_ascii=False), received, received)


CASE_COPY_COLUMNS = ["case_id", "kind", "status", "title", "lead_body", "bodies", "district", "commune", "source",
                     "external_ref", "received_at", "due_at", "overdue", "version", "summary", "created_at",
                     "updated_at"]


async def start_cases(client: Client, url: str, new: list[tuple[str, str, str, str]]) -> float:
    """Start the workflows and write their `cases` rows; the seconds it took."""
    t0 = time.perf_counter()
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(case_id: str, mode: str, kind: str, lead: str) -> None:
        async with gate:
            await client.start_workflow(
                BenchCase.run, mode, id=case_id, task_queue=TASK_QUEUE,
                search_attributes=TypedSearchAttributes([SearchAttributePair(KIND, kind),
                                                         SearchAttributePair(LEAD, lead)]))

    await asyncio.gather(*(one(*c) for c in new))
    now = datetime.now(UTC)
    start = int(new[0][0].removeprefix("pet-")) if new else 0
    raw = await asyncpg.connect(url)
    try:
        await raw.copy_records_to_table("cases", columns=CASE_COPY_COLUMNS, records=[
            case_row(case_id, kind, lead, now, start + i) for i, (case_id, _, kind, lead) in enumerate(new)])
        await raw.execute("VACUUM ANALYZE cases")
    finally:
        await raw.close()
    return time.perf_counter() - t0


async def pause_steps(client: Client, cases: Cases) -> None:
    """Pause the step of every `paused` case once it has failed (its activity exists)."""
    waiting = [c for c, m in cases.modes.items() if m == "paused"]
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while waiting:
        left = []
        for case_id in waiting:
            desc = await client.get_workflow_handle(case_id).describe()
            steps = desc.raw_description.pending_activities
            if not steps or steps[0].attempt < 2:
                left.append(case_id)
                continue
            await client.workflow_service.pause_activity(PauseActivityRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id), identity="bench",
                id=steps[0].activity_id, reason="chờ khôi phục kho lưu trữ"))
        waiting = left
        if waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(waiting)} paused cases never failed")
            await asyncio.sleep(1)


async def settle(client: Client, notes: StepNotes, cases: Cases) -> float:
    """Wait until Temporal flags every paused and broken case and every failing step failed twice."""
    t0 = time.perf_counter()
    flagged_wanted = cases.paused + cases.broken
    while True:
        flagged = (await client.count_workflows(
            "ExecutionStatus = 'Running' AND (TemporalReportedProblems IN ('category=WorkflowTaskFailed', "
            "'category=WorkflowTaskTimedOut') OR TemporalPauseInfo IS NOT NULL)")).count
        noted = {s.workflow_id for s in await notes.retrying(POLICY.min_attempts - 1, 100_000)}
        failing = sum(1 for c, m in cases.modes.items() if m == "failing" and c in noted)
        if flagged >= flagged_wanted and failing >= cases.failing:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > SETTLE_TIMEOUT:
            raise RuntimeError(f"not settled: {flagged}/{flagged_wanted} flagged, {failing}/{cases.failing} noted")
        await asyncio.sleep(1)


# -- the measurements ---------------------------------------------------------------------------------------

def _found(found: list[Stalled]) -> set[tuple[str, str]]:
    return {(s.case_id, s.reason) for s in found}


async def one_scan(client: Client, notes: StepNotes, which: str, size: int) -> tuple[float, ScanStats, set[Any]]:
    stats = ScanStats()
    t0 = time.perf_counter()
    if which == "visibility":
        found = await temporal_stalls(client, POLICY, notes=notes, stats=stats)
    else:
        found = await describe_all_stalls(client, StallPolicy(scan_limit=size + 1_000), stats=stats)
    return time.perf_counter() - t0, stats, _found(found)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


#: The installation's secret of the benchmark's API (one for the run: the database records the first one used).
SECRET = base64.b64encode(os.urandom(32)).decode()


@contextlib.asynccontextmanager
async def http_api(url: str, temporal_address: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API app on the benchmark's database, in-process, with a supervisor token."""
    logging.getLogger("danvan.api").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as home:
        key = SECRET
        settings = Settings.from_env({"DANVAN_HOME": home, "DANVAN_SECRET_KEY": key,
                                      "TEMPORAL_ADDRESS": temporal_address, "DANVAN_DB_POOL_MAX": "4"})
        app = create_app(settings, url)
        async with app.router.lifespan_context(app):
            tok = await issue_token(app.state.store.pool, "supervisor", None, "bench.stalled")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.stalled") as http:
                yield http, tok


async def http_reads(http: httpx.AsyncClient, tok: str, requests: int, expected: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {tok}"}
    out: dict[str, Any] = {}
    for name, path in [("GET /v1/cases?stalled=true", "/v1/cases?stalled=true&limit=50"),
                       ("GET /v1/cases?stalled=true&kind=complaint", "/v1/cases?stalled=true&kind=complaint&limit=50"),
                       ("GET /v1/cases/counts?stalled=true", "/v1/cases/counts?stalled=true"),
                       ("GET /v1/ops/stalled", "/v1/ops/stalled")]:
        times = []
        for i in range(requests + 10):
            t0 = time.perf_counter()
            r = await http.get(path, headers=auth)
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
            if i >= 10:  # warm-up
                times.append(dt)
        body = r.json()
        if name == "GET /v1/cases/counts?stalled=true" and body["total"] != expected:
            raise RuntimeError(f"counts say {body['total']} stalled cases, not {expected}")
        if name == "GET /v1/ops/stalled" and len({s["case_id"] for s in body["items"]}) != expected:
            raise RuntimeError(f"/v1/ops/stalled lists {len(body['items'])} findings")
        out[name] = {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(percentile(times, 0.95), 2),
                     "max_ms": round(max(times), 2), "n": len(times)}
    return out


async def measure(client: Client, store: EventStore, url: str, cases: Cases, size: int, rounds: int,
                  requests: int) -> dict[str, Any]:
    notes = StepNotes(store)
    expected = cases.expected()
    runs: dict[str, list[dict[str, Any]]] = {"visibility": [], "describe_all": []}
    for r in range(rounds):
        order = ["visibility", "describe_all"] if r % 2 == 0 else ["describe_all", "visibility"]
        for which in order:
            seconds, stats, found = await one_scan(client, notes, which, size)
            if found != expected:
                raise RuntimeError(f"{which} at {size}: found {len(found)} findings, expected {len(expected)} "
                                   f"(missing {sorted(expected - found)[:5]}, extra {sorted(found - expected)[:5]})")
            runs[which].append({"seconds": round(seconds, 4), "list_seconds": round(stats.list_seconds, 4),
                                "rpcs": stats.rpcs, "list_calls": stats.list_calls,
                                "describe_calls": stats.describe_calls, "history_calls": stats.history_calls,
                                "described": len(stats.described)})
            print(f"  {size:>6,} cases, round {r + 1}, {which:<12} {seconds * 1000:>9.1f} ms  {stats.rpcs:>6,} RPCs "
                  f"({stats.list_calls} list in {stats.list_seconds * 1000:.0f} ms, {stats.describe_calls:,} describe, "
                  f"{stats.history_calls} history)")
    looks = []
    for _ in range(rounds):
        info = await run_scan(client, store, POLICY)
        looks.append({"duration_ms": info.duration_ms, "rpcs": info.rpcs, "found": info.found})
    stalled_cases = len({c for c, _ in expected})
    async with http_api(url, client.service_client.config.target_host) as (http, tok):
        reads = await http_reads(http, tok, requests, stalled_cases)
    plans = {}
    for name, (sql, params) in [("list", list_cases_sql(CaseFilter(stalled=True), limit=51)),
                                ("counts", count_cases_sql(CaseFilter(stalled=True)))]:
        plans[name] = await plan_of(store.pool, sql, params)
        print(f"  plan of the {name} with stalled=true: {plans[name]}")
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in runs.items()}
    rpcs = {k: statistics.median(x["rpcs"] for x in v) for k, v in runs.items()}
    return {
        "running_cases": size, "stalled_findings": len(expected), "runs": runs,
        "median_seconds": {k: round(v, 4) for k, v in med.items()},
        "median_rpcs": rpcs,
        "median_list_seconds": {k: round(statistics.median(x["list_seconds"] for x in v), 4) for k, v in runs.items()},
        "speedup": round(med["describe_all"] / med["visibility"], 1),
        "rpc_ratio": round(rpcs["describe_all"] / rpcs["visibility"], 1),
        "scheduled_look": looks, "http": reads, "plans": plans,
    }


# -- the run ---------------------------------------------------------------------------------------------------

async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        pg_version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    load = list(os.getloadavg())
    store = await EventStore.open(url, min_size=1, max_size=8)
    with tempfile.TemporaryDirectory() as tmp:
        # The failing steps and workflow tasks are the point: the SDK's warnings about them are not printed.
        quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
        env = await WorkflowEnvironment.start_local(
            runtime=quiet, dev_server_existing_path=os.path.join(os.path.dirname(sys.executable), "temporal"),
            ip="127.0.0.1", ui=False, dev_server_database_filename=os.path.join(tmp, "temporal.db"),
            dev_server_extra_args=[arg for name, kind in SEARCH_ATTRIBUTES.items()
                                   for arg in ("--search-attribute", f"{name}={kind}")]
            + ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
            + dev_server_args() + ["--log-level", "error"])
        try:
            client = env.client
            cases = Cases(args.seed, args.failing, args.paused, args.broken)
            results = []
            async with Worker(client, task_queue=TASK_QUEUE, workflows=[BenchCase], activities=[bench_step],
                              interceptors=[StepFailureInterceptor(store)], max_cached_workflows=200):
                for size in args.sizes:
                    new = cases.grow_to(size)
                    started = await start_cases(client, url, new)
                    print(f"{size:,} running cases: started {len(new):,} in {started:.0f} s")
                    if any(m == "paused" for _, m, _, _ in new):
                        await pause_steps(client, cases)
                    settled = await settle(client, StepNotes(store), cases)
                    print(f"  Temporal flags them and the failing steps are noted ({settled:.0f} s more)")
                    results.append(await measure(client, store, url, cases, size, args.rounds, args.requests))
        finally:
            await env.shutdown()
            await store.close()
    out = {"machine": machine_info(pg_version, {}, load), "args": {k: v for k, v in vars(args).items()
                                                                    if k != "database_url"},
           "temporal": "temporal CLI 1.9.1 (server 1.32.0), SQLite file in WAL mode", "results": results}
    print_results(results)
    return out


def print_results(results: list[dict[str, Any]]) -> None:
    print()
    print("| running cases | stalled findings | new scan | its RPCs | describe everything | its RPCs | faster | "
          "fewer RPCs | GET /v1/cases?stalled=true p50 / p95 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        med, rpcs = r["median_seconds"], r["median_rpcs"]
        http = r["http"]["GET /v1/cases?stalled=true"]
        print(f"| {r['running_cases']:,} | {r['stalled_findings']} | {med['visibility'] * 1000:.0f} ms | "
              f"{rpcs['visibility']:,.0f} | {med['describe_all'] * 1000:,.0f} ms | {rpcs['describe_all']:,.0f} | "
              f"{r['speedup']}x | {r['rpc_ratio']}x | {http['p50_ms']} / {http['p95_ms']} ms |")
    print()
    for r in results:
        looks = ", ".join(f"{x['duration_ms']:.0f} ms" for x in r["scheduled_look"])
        print(f"{r['running_cases']:,}: the scheduled look (scan + idle SQL + write): {looks}")
        for name, x in r["http"].items():
            print(f"  {name}: p50 {x['p50_ms']} ms, p95 {x['p95_ms']} ms, max {x['max_ms']} ms ({x['n']} requests)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.stalled", description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
                   help=f"server to benchmark on; a fresh database is created there and dropped (default: "
                   f"$DATABASE_URL, else {DEFAULT_URL})")
    p.add_argument("--sizes", default=None, help="running cases, comma-separated, ascending (5000,20000)")
    p.add_argument("--failing", type=int, default=100, help="cases whose step keeps failing (100)")
    p.add_argument("--paused", type=int, default=20, help="cases whose failing step is paused (20)")
    p.add_argument("--broken", type=int, default=10, help="cases whose workflow code keeps failing (10)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds of each scan at each size (3)")
    p.add_argument("--requests", type=int, default=None, help="timed requests of each API read (200)")
    p.add_argument("--seed", type=int, default=20261204, help="random seed of the data")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--quick", action="store_true", help="500 and 1,000 cases, 1 round, 20 requests: a check")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in (args.sizes or ("500,1000" if args.quick else "5000,20000")).split(",")]
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.requests = args.requests or (20 if args.quick else 200)
    stalled = args.failing + args.paused + args.broken
    if args.sizes != sorted(args.sizes) or args.sizes[0] < stalled + 1:
        p.error(f"--sizes must ascend, the first above the {stalled} stalled cases")
    return args


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a plain `kill` unwinds like Ctrl-C: the database is dropped
    logging.basicConfig(level=logging.WARNING)
    for name in ("temporalio", "danvan.ops.steps"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
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
