"""Petitions per second and commands per second through the API, against a bare Temporal workflow, and the
worker's resident memory with many open petitions; all in one run on one dev server.

    .venv/bin/python -m bench.petitions [--quick] [--json FILE] [--petitions N] [--commands M] [--concurrency C]
                                        [--repeat R] [--memory 1000,10000] [--cache-size K] [--database-url URL]

What one run does (see bench/README.md for why the comparison is fair):

* starts its own in-memory Temporal dev server (the venv's `temporal` binary, the project's search attributes),
  creates a database `bench_<random>`, migrates it, and drops it at the end (also after an error, Ctrl-C or a
  plain `kill`);
* serves the API (`api.app.create_app`) and a minimal FastAPI app for the baseline with uvicorn, over real
  HTTP on 127.0.0.1, in this process;
* runs each worker in a child process of its own (`worker.build_worker` with `max_cached_workflows=K`, and a
  worker of the bare workflow), so that each worker's CPU and resident memory can be read with psutil;
* in each of R rounds, in this order: opens N petitions (`POST /v1/petitions` then `GET /v1/cases/{id}`),
  opens N bare cases over HTTP, classifies each petition (not timed), then sends M commands to each system:
  `danvan_http` (`POST /v1/cases/{id}/commands`), `bare_http` (the minimal endpoint), `danvan_temporal`
  (`workflows.client.send_command`, no HTTP) and `bare_temporal` (the Temporal client, no HTTP);
* with a fresh danvan worker, opens petitions up to each `--memory` level and reads the worker's RSS once it
  is idle;
* verifies every stream (exactly the expected events, no duplicates), `EventStore.verify()`, the baseline's
  rows, and that every petition was readable as soon as its POST returned.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import psutil
import uvicorn
from fastapi import Body, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from danvan.postgres import create_database, drop_database, redact, with_database
from eventstore import EventStore, Pool, create_pool, migrate

with workflow.unsafe.imports_passed_through():
    from workflows.case import ACTIVITY_TIMEOUT, APPEND_RETRY

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BARE_QUEUE = "bench-bare"
SOURCE = "bench-backoffice"  # the intake token's label = the `source` of every petition sent
BODY = "UBND_TINH"
OFFICER = "bench-officer"
POOL_SIZE = 10  # every pool of the run: the API's store, each worker's, the bare app's

DANVAN_HTTP = "danvan_http"
BARE_HTTP = "bare_http"
DANVAN_TEMPORAL = "danvan_temporal"
BARE_TEMPORAL = "bare_temporal"
COMMAND_SYSTEMS = (DANVAN_HTTP, BARE_HTTP, DANVAN_TEMPORAL, BARE_TEMPORAL)
OPEN_SYSTEMS = (DANVAN_HTTP, BARE_HTTP)
PAIRS = ((DANVAN_HTTP, BARE_HTTP), (DANVAN_TEMPORAL, BARE_TEMPORAL))
TARGET = 1.25  # our cost per command <= 1.25 x the bare one
FLAT = 1.3  # RSS at the top memory level <= 1.3 x the RSS at the first level
STALL_S = 180  # a phase in which no request finishes for this long is abandoned (the run then fails)

BARE_TABLE_SQL = """
CREATE TABLE bench_bare (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      text NOT NULL,
    command_id   text NOT NULL,
    type         text NOT NULL,
    data         jsonb NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bench_bare_command_id_key UNIQUE (command_id)
);
CREATE INDEX bench_bare_case_idx ON bench_bare (case_id);
"""
BARE_INSERT_SQL = (
    "INSERT INTO bench_bare (case_id, command_id, type, data) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (command_id) DO NOTHING RETURNING position"
)


# -- the baseline: a bare workflow, one update and one activity per command ----------------------------------


class BareCommand(BaseModel):
    """What one bare update carries: the same command JSON the API receives, and an idempotency key."""

    case_id: str
    command_id: str
    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class BareResult(BaseModel):
    case_id: str
    applied: int
    position: int | None


class BareActivities:
    """One INSERT of one row per command: the least a command can do to be recorded durably."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn(name="bare_record_command")
    async def record_command(self, command: BareCommand) -> int | None:
        position: int | None = await self.pool.fetchval(
            BARE_INSERT_SQL, command.case_id, command.command_id, command.type, command.data
        )
        return position


@workflow.defn(name="BareCaseWorkflow")
class BareCaseWorkflow:
    """An open case reduced to the Temporal shape of a danvan command: one Update, whose handler runs one
    activity (with the append's timeout and retry policy) and answers. No validator, no domain, no state
    but a counter."""

    def __init__(self) -> None:
        self.applied = 0

    @workflow.run
    async def run(self, case_id: str) -> int:
        await workflow.wait_condition(lambda: False)  # open until the dev server goes away
        return self.applied

    @workflow.update
    async def execute(self, command: BareCommand) -> BareResult:
        position = await workflow.execute_activity_method(
            BareActivities.record_command, command, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY
        )
        self.applied += 1
        return BareResult(case_id=command.case_id, applied=self.applied, position=position)


# -- the worker child process ---------------------------------------------------------------------------------


def worker_main(argv: Sequence[str]) -> int:
    """Run one worker until stdin closes or SIGTERM: `danvan` (`build_worker`) or `bare`. Prints `ready`."""
    p = argparse.ArgumentParser(prog="bench.petitions worker")
    p.add_argument("--kind", choices=("danvan", "bare"), required=True)
    p.add_argument("--temporal", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--cache-size", type=int, required=True)
    args = p.parse_args(argv)
    asyncio.run(_run_worker(args))
    return 0


async def _run_worker(args: argparse.Namespace) -> None:
    from worker import build_worker, connect

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:  # the parent holds our stdin: EOF means it is gone (even after a SIGKILL)
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    client = await connect(args.temporal)
    closers: list[Callable[[], Awaitable[None]]] = []
    if args.kind == "danvan":
        store = await EventStore.open(args.database_url, min_size=1, max_size=POOL_SIZE)
        closers.append(store.close)
        w = build_worker(client, store, max_cached_workflows=args.cache_size)
    else:
        pool = await create_pool(args.database_url, min_size=1, max_size=POOL_SIZE)
        closers.append(pool.close)
        w = Worker(
            client,
            task_queue=BARE_QUEUE,
            workflows=[BareCaseWorkflow],
            activities=[BareActivities(pool).record_command],
            max_cached_workflows=args.cache_size,
            # This module is passed through: the sandbox does not re-import it for each workflow instance, as a
            # bare workflow in a small file of its own would cost next to nothing to re-import.
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules("bench")
            ),
        )
    try:
        async with w:
            print("ready", flush=True)
            await stop.wait()
    finally:
        for close in closers:
            await close()


# -- child processes, servers, measuring ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv_binary(name: str) -> str:
    import shutil

    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: `make test` installs the dev dependencies")
    return found


#: Every child process this run started, by pid, so that a last-resort cleanup can stop exactly these.
STARTED: set[int] = set()


class WorkerProcess:
    """A worker in a child process of its own session (Ctrl-C in the terminal reaches only the benchmark,
    which then stops its children itself)."""

    def __init__(self, kind: str, proc: asyncio.subprocess.Process) -> None:
        self.kind = kind
        self.proc = proc
        self.ps = psutil.Process(proc.pid)

    @classmethod
    async def start(cls, kind: str, temporal: str, database_url: str, cache_size: int) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from bench.petitions import worker_main; sys.exit(worker_main(sys.argv[1:]))",
            "--kind",
            kind,
            "--temporal",
            temporal,
            "--database-url",
            database_url,
            "--cache-size",
            str(cache_size),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            start_new_session=True,
        )
        STARTED.add(proc.pid)
        w = cls(kind, proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
        except BaseException:
            await w.stop()
            raise
        if line.strip() != b"ready":
            await w.stop()
            raise RuntimeError(f"the {kind} worker did not start (exit code {proc.returncode})")
        return w

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        STARTED.discard(self.proc.pid)


class QuietServer(uvicorn.Server):
    """uvicorn in this process, leaving the signals to the benchmark (uvicorn would otherwise take SIGINT and
    SIGTERM for itself and re-raise them only after it stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` over HTTP on a free port of 127.0.0.1 (lifespan included); yields its base URL."""
    port = free_port()
    server = QuietServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the HTTP server stopped at start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Usage:
    """CPU seconds (user + system) of each process that serves a request, and the machine's busy time."""

    wall: float
    cpu: dict[str, float]
    machine_busy: float

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    @classmethod
    def sample(cls, procs: dict[str, psutil.Process], database: str) -> Usage:
        cpu = {name: cls._cpu(p) for name, p in procs.items()}
        # The PostgreSQL backends connected to the benchmark's database (their pools live through the run).
        pg = 0.0
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if cmd.startswith("postgres:") and f" {database} " in cmd:
                pg += cls._cpu(p)
        cpu["postgres"] = pg
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        return cls(time.perf_counter(), cpu, busy)

    def minus(self, before: Usage) -> Usage:
        return Usage(
            self.wall - before.wall,
            {k: v - before.cpu.get(k, 0.0) for k, v in self.cpu.items()},
            self.machine_busy - before.machine_busy,
        )


# -- the workload ----------------------------------------------------------------------------------------------

DISTRICTS = [("Nam Sách", "Nam Hồng"), ("Kinh Môn", "Hiệp Sơn"), ("Thanh Hà", "Thanh Lang"), ("Gia Lộc", "Gia Tân")]
NAMES = ["Nguyễn Thị Lan", "Trần Văn Bình", "Lê Thị Hồng Nhung", "Phạm Văn Đức", "Vũ Thị Thu Hà"]


def petition_body(ref: str, n: int) -> dict[str, Any]:
    """A complaint as a back-office system sends it: Vietnamese text, a unique `external_ref`."""
    district, commune = DISTRICTS[n % len(DISTRICTS)]
    return {
        "source": SOURCE,
        "external_ref": ref,
        "kind": "complaint",
        "channel": "post",
        "received_at": datetime.now(UTC).isoformat(),
        "petitioner": {"name": NAMES[n % len(NAMES)], "address": f"Thôn {n % 9 + 1}, xã {commune}, huyện {district}"},
        "subject": "Khiếu nại về bồi thường, hỗ trợ khi Nhà nước thu hồi đất nông nghiệp",
        "content": (
            "Gia đình tôi bị thu hồi 1.200 m² đất trồng lúa để làm đường liên xã nhưng mức bồi thường thấp hơn "
            f"giá đất cụ thể do UBND tỉnh ban hành. Đề nghị xem xét lại phương án bồi thường số {n:05d}/PA."
        ),
        "district": district,
        "commune": commune,
        "receiving_body": BODY,
    }


CLASSIFY = {"type": "classify", "lead_body": BODY, "subject_category": "đất đai"}


def assign(seq: int) -> dict[str, Any]:
    """Always valid on an open case: the same body, an officer not holding the case yet."""
    return {"type": "assign", "body": BODY, "officer": f"Cán bộ Đỗ Minh Tuấn {seq:06d}"}


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


@dataclass
class Tally:
    """What the clients saw, for the verification: per case, the commands applied."""

    petitions: list[str] = field(default_factory=list)
    classified: set[str] = field(default_factory=set)
    assigned: Counter[str] = field(default_factory=Counter)
    sent_keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> case, danvan commands
    #: The body of each command sent over HTTP, by key: resent as it was (a key names one request).
    http_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    bare_rows: int = 0
    readable_misses: int = 0
    errors: list[str] = field(default_factory=list)


async def drive(  # noqa: C901  (a benchmark's driver, read top to bottom)
    items: Sequence[Any],
    concurrency: int,
    op: Callable[[Any], Awaitable[None]],
    errors: list[str],
    progress: str | None = None,
) -> tuple[float, list[float], int]:
    """Run `op` over `items` with `concurrency` clients; (seconds, latencies of the successes, failures)."""
    it = iter(items)
    latencies: list[float] = []
    failed = 0
    done = 0

    async def client() -> None:
        nonlocal failed, done
        for item in it:
            t0 = time.perf_counter()
            try:
                await op(item)
            except Exception as exc:  # counted and reported; the run goes on
                failed += 1
                if len(errors) < 20:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            else:
                latencies.append(time.perf_counter() - t0)
            done += 1

    async def watch() -> None:
        """Print progress every 10 s (if asked); give up when nothing has finished for STALL_S seconds."""
        last, t_last, t_moved, seen = 0, time.perf_counter(), time.perf_counter(), 0
        while True:
            await asyncio.sleep(5)
            now = time.perf_counter()
            if done != seen:
                seen, t_moved = done, now
            elif now - t_moved > STALL_S:
                raise RuntimeError(f"stalled: nothing finished for {STALL_S} s ({done:,}/{len(items):,} done)")
            if progress and now - t_last >= 10:
                print(f"    {progress}: {done:,}/{len(items):,} ({(done - last) / (now - t_last):.1f}/s)", flush=True)
                last, t_last = done, now

    start = time.perf_counter()
    clients = asyncio.gather(*(client() for _ in range(concurrency)))
    clients.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, also when interrupted
    watcher = asyncio.ensure_future(watch())
    try:
        waiting: set[asyncio.Future[Any]] = {clients, watcher}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if watcher.done():
            clients.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clients
            watcher.result()  # raises the stall
        await clients
    finally:
        watcher.cancel()
        clients.cancel()
    return time.perf_counter() - start, latencies, failed


class HttpError(Exception):
    pass


def expect(r: httpx.Response, *codes: int) -> Any:
    if r.status_code not in codes:
        raise HttpError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")
    return r.json()


def bare_app(client: Client, database_url: str) -> FastAPI:
    """The baseline's HTTP side: the least an endpoint can do (parse JSON, one Temporal call, answer JSON).
    No token, no lookup before the update."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(database_url, min_size=1, max_size=POOL_SIZE)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare/cases", status_code=201)
    async def open_case(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        case_id = f"bare-{body['external_ref']}"
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            "BareCaseWorkflow",
            case_id,
            id=case_id,
            task_queue=BARE_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        result: BareResult = await client.execute_update_with_start_workflow(
            "execute",
            BareCommand(case_id=case_id, command_id=f"open-{case_id}", type="open", data=body),
            start_workflow_operation=start,
            result_type=BareResult,
        )
        return result.model_dump()

    @app.get("/bare/cases/{case_id}")
    async def read_case(case_id: str, request: Request) -> Any:
        n = await request.app.state.pool.fetchval("SELECT count(*) FROM bench_bare WHERE case_id = $1", case_id)
        if not n:
            return JSONResponse({"error": "not found"}, status_code=404)
        return {"case_id": case_id, "commands": n}

    @app.post("/bare/cases/{case_id}/commands")
    async def command(
        case_id: str, body: Annotated[dict[str, Any], Body()], idempotency_key: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        key = idempotency_key or uuid.uuid4().hex
        result: BareResult = await client.get_workflow_handle(case_id).execute_update(
            "execute",
            BareCommand(case_id=case_id, command_id=key, type=str(body.get("type")), data=body),
            id=f"cmd-{key}",
            result_type=BareResult,
        )
        return result.model_dump()

    return app


# -- the benchmark ------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, url: str, database: str) -> None:
        self.args = args
        self.url = url
        self.database = database
        self.tally = Tally()
        self.seq = 0
        self.store: EventStore | None = None
        self.env: Any = None
        self.client: Client | None = None
        self.temporal = ""
        self.workers: dict[str, WorkerProcess] = {}
        self.http: httpx.AsyncClient | None = None
        self.api_url = ""
        self.bare_url = ""
        self.token = ""
        self.officer_token = ""
        self.devserver: psutil.Process | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def web(self) -> httpx.AsyncClient:
        assert self.http is not None, "the HTTP client is made once the servers run"
        return self.http

    # -- set up ------------------------------------------------------------------------------------------

    async def start_temporal(self) -> None:
        from temporalio.testing import WorkflowEnvironment

        from worker import project_converter
        from workflows.shared import SEARCH_ATTRIBUTES

        port = free_port()
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=venv_binary("temporal"),
            ip="127.0.0.1",
            port=port,
            ui=False,
            # The project's converter (payloads encrypted), as every worker of this run uses `worker.connect`.
            data_converter=project_converter(),
            dev_server_extra_args=[
                arg for name, kind in SEARCH_ATTRIBUTES.items() for arg in ("--search-attribute", f"{name}={kind}")
            ]
            + ["--log-level", "warn"],
        )
        self.client = self.env.client
        self.temporal = f"127.0.0.1:{port}"
        known = set(self.workers_pids())
        servers = [p for p in psutil.Process().children(recursive=True) if p.pid not in known]
        STARTED.update(p.pid for p in servers)
        self.devserver = servers[0] if len(servers) == 1 else None

    def workers_pids(self) -> list[int]:
        return [w.pid for w in self.workers.values()]

    async def start_worker(self, kind: str) -> WorkerProcess:
        w = await WorkerProcess.start(kind, self.temporal, self.url, self.args.cache_size)
        self.workers[kind] = w
        return w

    async def stop_worker(self, kind: str) -> None:
        w = self.workers.pop(kind, None)
        if w is not None:
            await w.stop()

    def procs(self) -> dict[str, psutil.Process]:
        out = {"bench": psutil.Process()}
        for kind, w in self.workers.items():
            out[f"worker_{kind}"] = w.ps
        if self.devserver is not None:
            out["devserver"] = self.devserver
        return out

    def usage(self) -> Usage:
        return Usage.sample(self.procs(), self.database)

    # -- phases ------------------------------------------------------------------------------------------

    async def open_petitions(self, n: int, progress: str | None = None) -> tuple[list[str], dict[str, Any]]:
        """n `POST /v1/petitions`, each done when `GET /v1/cases/{id}` answers 200."""
        assert self.http is not None
        opened: list[str] = []
        headers = {"Authorization": f"Bearer {self.token}"}
        items = [(f"BENCH-{uuid.uuid4().hex[:16]}", self.next_seq()) for _ in range(n)]

        async def op(item: tuple[str, int]) -> None:
            r = await self.web.post("/v1/petitions", json=petition_body(*item), headers=headers)
            case_id = expect(r, 201)["case_id"]
            for attempt in range(500):
                got = await self.web.get(f"/v1/cases/{case_id}", headers=headers)
                if got.status_code == 200:
                    break
                if attempt == 0:
                    self.tally.readable_misses += 1
                await asyncio.sleep(0.01)
            else:
                raise HttpError(f"case {case_id} not readable 5 s after its POST returned")
            opened.append(case_id)
            self.tally.petitions.append(case_id)

        return opened, await self.timed("open", DANVAN_HTTP, items, op, progress)

    async def open_bare(self, n: int) -> tuple[list[str], dict[str, Any]]:
        opened: list[str] = []
        items = [(f"BENCH-{uuid.uuid4().hex[:16]}", self.next_seq()) for _ in range(n)]

        async def op(item: tuple[str, int]) -> None:
            r = await self.web.post(f"{self.bare_url}/bare/cases", json=petition_body(*item))
            case_id = expect(r, 201)["case_id"]
            got = await self.web.get(f"{self.bare_url}/bare/cases/{case_id}")
            if got.status_code != 200:
                self.tally.readable_misses += 1
                raise HttpError(f"bare case {case_id} not readable after its POST returned")
            opened.append(case_id)
            self.tally.bare_rows += 1

        return opened, await self.timed("open", BARE_HTTP, items, op)

    async def prepare(self, petitions: list[str], bare: list[str]) -> None:
        """Not timed: classify each petition once (so that `assign` runs on a classified case), and give each
        bare case one command too, so that both sides start the timed commands with two updates behind them."""
        headers = {"Authorization": f"Bearer {self.officer_token}"}

        async def classify(case_id: str) -> None:
            r = await self.web.post(
                f"/v1/cases/{case_id}/commands",
                json=CLASSIFY,
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            expect(r, 200)
            self.tally.classified.add(case_id)

        async def bare_one(case_id: str) -> None:
            r = await self.web.post(
                f"{self.bare_url}/bare/cases/{case_id}/commands",
                json=CLASSIFY,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            expect(r, 200)
            self.tally.bare_rows += 1

        await drive(petitions, self.args.concurrency, classify, self.tally.errors)
        await drive(bare, self.args.concurrency, bare_one, self.tally.errors)

    async def commands(self, system: str, cases: list[str], m: int) -> dict[str, Any]:
        """m commands, command i to case i mod len(cases), each with a fresh idempotency key."""
        from domain.common import Actor
        from domain.petitions.commands import Assign, CommandRequest
        from workflows.client import send_command

        assert self.client is not None
        items = [(cases[i % len(cases)], uuid.uuid4().hex, assign(self.next_seq())) for i in range(m)]
        headers = {"Authorization": f"Bearer {self.officer_token}"}
        actor = Actor(id=OFFICER, role="body", body=BODY)
        client = self.client
        http = self.http
        assert http is not None

        async def danvan_http(item: tuple[str, str, dict[str, Any]]) -> None:
            case_id, key, body = item
            self.tally.sent_keys[key] = case_id
            self.tally.http_bodies[key] = body
            r = await http.post(f"/v1/cases/{case_id}/commands", json=body, headers={**headers, "Idempotency-Key": key})
            answer = expect(r, 200)
            if answer["events"] != ["Assigned"] or answer["duplicate"]:
                raise HttpError(f"unexpected answer {answer['events']} duplicate={answer['duplicate']}")
            self.tally.assigned[case_id] += 1

        async def danvan_temporal(item: tuple[str, str, dict[str, Any]]) -> None:
            case_id, key, body = item
            self.tally.sent_keys[key] = case_id
            request = CommandRequest(command=Assign.model_validate(body), actor=actor, command_id=key)
            result = await send_command(client, case_id, request)
            if result.events != ["Assigned"] or result.duplicate:
                raise HttpError(f"unexpected result {result.events} duplicate={result.duplicate}")
            self.tally.assigned[case_id] += 1

        async def bare_http(item: tuple[str, str, dict[str, Any]]) -> None:
            case_id, key, body = item
            r = await http.post(
                f"{self.bare_url}/bare/cases/{case_id}/commands", json=body, headers={"Idempotency-Key": key}
            )
            expect(r, 200)
            self.tally.bare_rows += 1

        async def bare_temporal(item: tuple[str, str, dict[str, Any]]) -> None:
            case_id, key, body = item
            await client.get_workflow_handle(case_id).execute_update(
                "execute",
                BareCommand(case_id=case_id, command_id=key, type=body["type"], data=body),
                id=f"cmd-{key}",
                result_type=BareResult,
            )
            self.tally.bare_rows += 1

        ops = {
            DANVAN_HTTP: danvan_http,
            DANVAN_TEMPORAL: danvan_temporal,
            BARE_HTTP: bare_http,
            BARE_TEMPORAL: bare_temporal,
        }
        return await self.timed("command", system, items, ops[system])

    async def timed(
        self,
        what: str,
        system: str,
        items: Sequence[Any],
        op: Callable[[Any], Awaitable[None]],
        progress: str | None = None,
    ) -> dict[str, Any]:
        errors: list[str] = []
        before = self.usage()
        seconds, latencies, failed = await drive(items, self.args.concurrency, op, errors, progress)
        used = self.usage().minus(before)
        self.tally.errors.extend(errors)
        n = len(latencies)
        per_op = {k: v / max(n, 1) * 1000 for k, v in used.cpu.items()}  # CPU ms per operation
        return {
            "what": what,
            "system": system,
            "ops": n,
            "failed": failed,
            "seconds": seconds,
            "per_s": n / seconds if seconds else 0.0,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p95_ms": percentile(latencies, 0.95) * 1000,
            "cpu_ms_per_op": per_op,
            "all_cpu_ms_per_op": sum(per_op.values()),
            "machine_busy_cores": used.machine_busy / max(used.wall, 1e-9),
        }

    # -- memory --------------------------------------------------------------------------------------------

    async def steady_rss(self, w: WorkerProcess) -> dict[str, Any]:
        """Wait until the worker is idle (under 2% of a core for 2 s running), then take 5 readings 1 s apart."""
        t0 = time.perf_counter()
        quiet = 0
        while quiet < 2 and time.perf_counter() - t0 < 60:
            c0 = Usage._cpu(w.ps)
            await asyncio.sleep(1.0)
            quiet = quiet + 1 if Usage._cpu(w.ps) - c0 < 0.02 else 0
        readings = []
        for _ in range(5):
            readings.append(w.rss())
            await asyncio.sleep(1.0)
        server_rss = self.devserver.memory_info().rss if self.devserver else None
        return {
            "rss_bytes": statistics.median(readings),
            "readings": readings,
            "waited_for_idle_s": time.perf_counter() - t0 - 5,
            "devserver_rss_bytes": server_rss,
        }

    async def memory(self, levels: Sequence[int]) -> dict[str, Any]:
        """A fresh danvan worker (cache K); open petitions up to each level; its RSS once idle at each."""
        await self.stop_worker("bare")
        await self.stop_worker("danvan")
        w = await self.start_worker("danvan")
        print(f"memory: a fresh danvan worker (pid {w.pid}, max_cached_workflows={self.args.cache_size})")
        out: list[dict[str, Any]] = []
        idle = await self.steady_rss(w)
        out.append({"level": 0, **idle})
        print(f"  0 petitions: worker RSS {idle['rss_bytes'] / 2**20:.1f} MiB")
        total = 0
        t_start = time.perf_counter()
        for level in levels:
            _, m = await self.open_petitions(level - total, progress=f"opening petitions {total:,} -> {level:,}")
            total = level
            reading = await self.steady_rss(w)
            out.append({"level": level, "open": m, **reading})
            print(
                f"  {level:,} petitions: worker RSS {reading['rss_bytes'] / 2**20:.1f} MiB "
                f"(readings {', '.join(f'{r / 2**20:.1f}' for r in reading['readings'])}); opened at "
                f"{m['per_s']:.1f}/s, p50 {m['p50_ms']:.0f} ms, p95 {m['p95_ms']:.0f} ms, failed {m['failed']}",
                flush=True,
            )
        first, last = out[1]["rss_bytes"], out[-1]["rss_bytes"]
        ratio = last / first
        return {
            "cache_size": self.args.cache_size,
            "levels": out,
            "ratio_last_to_first": ratio,
            "flat_limit": FLAT,
            "flat": ratio <= FLAT,
            "cache_full_at_first_level": self.args.cache_size < levels[0],
            "seconds": time.perf_counter() - t_start,
        }

    # -- where the difference goes ------------------------------------------------------------------------

    async def anatomy(self, petition: str, bare: str) -> dict[str, Any]:
        """Sizes of what one command carries on each side, Temporal history events per command, and the
        time of the pure domain steps a danvan command runs in the worker (measured here, same CPU)."""
        from temporalio.api.enums.v1 import EventType

        from activities.eventstore import AppendEventsInput
        from domain.common import Actor
        from domain.petitions.commands import Assign, CommandRequest
        from domain.petitions.decider import decide, fold
        from domain.petitions.views import case_row, case_view
        from eventstore.models import CaseRow, NewEvent
        from workflows.client import send_command
        from workflows.petition import CommandResult, PetitionWorkflow

        assert self.client is not None
        client = self.client
        conv = pydantic_data_converter.payload_converter

        def size(obj: Any) -> int:
            return sum(p.ByteSize() for p in conv.to_payloads([obj]))

        async def history(case_id: str) -> tuple[int, int]:
            h = await client.get_workflow_handle(case_id).fetch_history()
            return len(h.events), sum(e.ByteSize() for e in h.events)

        # History events and bytes added per command, on an idle system, 5 commands each side.
        actor = Actor(id=OFFICER, role="body", body=BODY)
        k = 5

        async def ours() -> None:
            key = uuid.uuid4().hex
            await send_command(
                client,
                petition,
                CommandRequest(command=Assign.model_validate(assign(self.next_seq())), actor=actor, command_id=key),
            )
            self.tally.sent_keys[key] = petition
            self.tally.assigned[petition] += 1

        async def theirs() -> None:
            key = uuid.uuid4().hex
            await client.get_workflow_handle(bare).execute_update(
                "execute",
                BareCommand(case_id=bare, command_id=key, type="assign", data=assign(self.next_seq())),
                id=f"cmd-{key}",
                result_type=BareResult,
            )
            self.tally.bare_rows += 1

        async def opening(case_id: str) -> int:
            """History bytes of a case's opening: every event up to the first Update's completion."""
            h = await client.get_workflow_handle(case_id).fetch_history()
            done = next(i for i, e in enumerate(h.events)
                        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
            return sum(e.ByteSize() for e in h.events[: done + 1])

        opening_bytes = {"danvan": await opening(petition), "bare": await opening(bare)}
        assert self.store is not None
        first_event = await self.store.pool.fetchval(
            "SELECT length(data::text) FROM events WHERE stream_id = $1 AND version = 1", petition)

        per_command: dict[str, tuple[tuple[int, int], tuple[int, int], list[str]]] = {}
        for side, case_id, send in (("danvan", petition, ours), ("bare", bare, theirs)):
            h0 = await history(case_id)
            for _ in range(k - 1):
                await send()
            before_last = await client.get_workflow_handle(case_id).fetch_history()
            await send()
            last = await client.get_workflow_handle(case_id).fetch_history()
            h1 = (len(last.events), sum(e.ByteSize() for e in last.events))
            types = [
                EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in last.events[len(before_last.events) :]
            ]
            per_command[side] = (h0, h1, types)
        p0, p1, _ = per_command["danvan"]
        b0, b1, _ = per_command["bare"]

        state = await client.get_workflow_handle(petition).query(PetitionWorkflow.state_snapshot)
        assert state is not None
        command = Assign.model_validate(assign(self.next_seq()))
        now = datetime.now(UTC)

        def timeit(fn: Callable[[], Any], n: int = 300) -> float:
            fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - t0) / n * 1e6

        events = decide(state, command, actor, now)
        new_state = fold(events, state)
        assert new_state is not None
        stored = [
            NewEvent(
                event_id=uuid.uuid4(),
                type=ev.event_type(),
                schema_version=ev.SCHEMA_VERSION,
                occurred_at=ev.occurred_at,
                actor=ev.actor,
                reason=ev.reason,
                legal_basis=ev.legal_basis,
                data=ev.payload(),
                metadata={"command_id": "x" * 32},
            )
            for ev in events
        ]
        append_input = AppendEventsInput(
            stream_id=petition,
            expected_version=state.version,
            events=stored,
            case=CaseRow.model_validate(case_row(new_state)),
        )
        request = CommandRequest(command=command, actor=actor, command_id="x" * 32)
        result = CommandResult(case=case_view(new_state), events=["Assigned"])
        bare_cmd = BareCommand(case_id=bare, command_id="x" * 32, type="assign", data=assign(1))
        return {
            "opening_history_bytes": opening_bytes,
            "first_event_chars": first_event,
            "history_events_per_command": {"danvan": (p1[0] - p0[0]) / k, "bare": (b1[0] - b0[0]) / k},
            "history_bytes_per_command": {"danvan": (p1[1] - p0[1]) / k, "bare": (b1[1] - b0[1]) / k},
            "history_of_one_command": {"danvan": per_command["danvan"][2], "bare": per_command["bare"][2]},
            "payload_bytes": {
                "danvan_update_input": size(request),
                "danvan_update_result": size(result),
                "danvan_activity_input": size(append_input),
                "bare_update_input": size(bare_cmd),
                "bare_update_result": size(BareResult(case_id=bare, applied=3, position=123)),
                "bare_activity_input": size(bare_cmd),
                "petition_state": size(state),
            },
            "domain_us": {
                "decide (validator and handler each run it)": timeit(lambda: decide(state, command, actor, now)),
                "fold": timeit(lambda: fold(events, state)),
                "projection CaseRow": timeit(lambda: CaseRow.model_validate(case_row(new_state))),
                "case_view (the update's answer)": timeit(lambda: case_view(new_state)),
                "encode update input + activity input + result": timeit(
                    lambda: (conv.to_payloads([request]), conv.to_payloads([append_input]), conv.to_payloads([result]))
                ),
                "decode the same": timeit(
                    lambda: (
                        conv.from_payloads(conv.to_payloads([request]), [CommandRequest]),
                        conv.from_payloads(conv.to_payloads([append_input]), [AppendEventsInput]),
                        conv.from_payloads(conv.to_payloads([result]), [CommandResult]),
                    ),
                    100,
                ),
            },
        }

    # -- verification -------------------------------------------------------------------------------------

    async def replay_keys(self, n: int = 10) -> dict[str, Any]:
        """Send n commands again with their original Idempotency-Key: each must answer `duplicate` (or the
        same answer) and add nothing."""
        headers = {"Authorization": f"Bearer {self.officer_token}"}
        ok = 0
        keys = [(key, self.tally.sent_keys[key]) for key in list(self.tally.http_bodies)[:n]]
        for key, case_id in keys:
            # The same request under the same key (another body under it is refused: the key names one request):
            # the answer comes from Temporal's record of update `cmd-<key>` (the first answer again) or from the
            # case's seen commands (`duplicate`). Either way the stream must not grow, which `verify` checks.
            r = await self.web.post(
                f"/v1/cases/{case_id}/commands",
                json=self.tally.http_bodies[key],
                headers={**headers, "Idempotency-Key": key},
            )
            if r.status_code == 200 and (r.json()["duplicate"] or r.json()["events"] == ["Assigned"]):
                ok += 1
        return {"replayed": len(keys), "answered_without_applying": ok}

    async def verify(self, replay: dict[str, Any]) -> dict[str, Any]:
        assert self.store is not None
        t = self.tally
        report = await self.store.verify()
        pool = self.store.pool
        rows = await pool.fetch(
            "SELECT stream_id, array_agg(type ORDER BY version) AS types, count(*) AS n, "
            "count(metadata->>'command_id') AS with_id, count(DISTINCT metadata->>'command_id') AS distinct_ids "
            "FROM events GROUP BY stream_id"
        )
        streams = {r["stream_id"]: r for r in rows}
        wrong: list[str] = []
        for case_id in t.petitions:
            expected = (
                ["PetitionReceived"]
                + (["Classified"] if case_id in t.classified else [])
                + ["Assigned"] * t.assigned[case_id]
            )
            got = streams.get(case_id)
            if got is None or list(got["types"]) != expected or got["with_id"] != got["distinct_ids"]:
                wrong.append(case_id)
        total_events = sum(r["n"] for r in rows)
        expected_events = len(t.petitions) + len(t.classified) + sum(t.assigned.values())
        # The opening event of every case carries the workflow's own fixed id `receive`; every other command
        # id is an Idempotency-Key, and each must be recorded once in the whole store.
        dup_ids = await pool.fetchval(
            "SELECT count(*) FROM (SELECT metadata->>'command_id' FROM events WHERE metadata ? 'command_id' "
            "AND type <> 'PetitionReceived' GROUP BY 1 HAVING count(*) > 1) d"
        )
        cases_behind = await pool.fetchval(
            "SELECT count(*) FROM streams s LEFT JOIN cases c ON c.case_id = s.stream_id "
            "WHERE c.version IS DISTINCT FROM s.version"
        )
        bare_rows = await pool.fetchval("SELECT count(*) FROM bench_bare")
        checks = {
            "every petition's stream has exactly its expected events, in order": not wrong,
            "no stream but the petitions'": set(streams) == set(t.petitions),
            "events stored == events expected": total_events == expected_events,
            "no Idempotency-Key recorded twice": dup_ids == 0,
            "EventStore.verify() ok over every event": report.ok and report.events_checked == total_events,
            "one cases row per stream, at its version": cases_behind == 0,
            "bare rows stored == bare commands answered": bare_rows == t.bare_rows,
            "every petition readable as soon as its POST returned": t.readable_misses == 0,
            "replayed Idempotency-Keys applied nothing": replay["answered_without_applying"] == replay["replayed"],
            "no request failed": not t.errors,
        }
        return {
            "ok": all(checks.values()),
            "checks": checks,
            "petitions": len(t.petitions),
            "events": total_events,
            "expected_events": expected_events,
            "wrong_streams": wrong[:20],
            "bare_rows": bare_rows,
            "readable_misses": t.readable_misses,
            "errors": t.errors[:20],
            "replay": replay,
            "verify_report": report.model_dump(),
        }


def summarize(results: list[dict[str, Any]], what: str, system: str) -> dict[str, Any]:
    mine = [r for r in results if r["what"] == what and r["system"] == system]
    per_s = [r["per_s"] for r in mine]
    keys = mine[0]["cpu_ms_per_op"].keys()
    return {
        "per_s": statistics.median(per_s),
        "min": min(per_s),
        "max": max(per_s),
        "p50_ms": statistics.median(r["p50_ms"] for r in mine),
        "p95_ms": statistics.median(r["p95_ms"] for r in mine),
        "cpu_ms_per_op": {k: statistics.median(r["cpu_ms_per_op"][k] for r in mine) for k in keys},
        "all_cpu_ms_per_op": statistics.median(r["all_cpu_ms_per_op"] for r in mine),
        "machine_busy_cores": statistics.median(r["machine_busy_cores"] for r in mine),
        "failed": sum(r["failed"] for r in mine),
    }


def worker_cpu(m: dict[str, Any], system: str) -> float:
    return float(m["cpu_ms_per_op"].get("worker_danvan" if system.startswith("danvan") else "worker_bare", 0.0))


def print_tables(summary: dict[tuple[str, str], dict[str, Any]], ratios: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'measurement':<28} {'per s':>8} {'min-max':>13} {'p50 ms':>7} {'p95 ms':>7} {'worker':>7} "
        f"{'bench':>6} {'server':>7} {'pg':>6} {'all':>6} {'busy':>5}"
    )
    print(
        f"{'':<28} {'(median)':>8} {'of rounds':>13} {'':>7} {'':>7} {'--- CPU ms per operation ---':>37} {'cores':>5}"
    )
    print("-" * 112)
    for (what, system), m in summary.items():
        c = m["cpu_ms_per_op"]
        label = f"{'open petition' if what == 'open' else 'command'}: {system}"
        print(
            f"{label:<28} {m['per_s']:>8.1f} {m['min']:>6.1f}-{m['max']:<6.1f} {m['p50_ms']:>7.1f} {m['p95_ms']:>7.1f} "
            f"{worker_cpu(m, system):>7.2f} {c.get('bench', 0):>6.2f} {c.get('devserver', 0):>7.2f} "
            f"{c.get('postgres', 0):>6.2f} {m['all_cpu_ms_per_op']:>6.2f} {m['machine_busy_cores']:>5.2f}"
        )
    print()
    print(
        f"{'ratio (ours / bare)':<34} {'cost/cmd':>8}  {'target':<16} {'per round':<20} {'worker CPU/cmd':>14} "
        f"{'all CPU/cmd':>11}"
    )
    print("-" * 112)
    for r in ratios:
        target = f"<= {TARGET} {'MET' if r['met'] else 'NOT MET'}"
        rounds = ", ".join(f"{x:.2f}" for x in r["per_round"])
        print(
            f"{r['name']:<34} {r['cost_ratio']:>8.2f}  {target:<16} {rounds:<20} {r['worker_cpu_ratio']:>14.2f} "
            f"{r['all_cpu_ratio']:>11.2f}"
        )
    print()


def machine() -> dict[str, Any]:
    from bench.append_throughput import machine_info

    info = machine_info("", {})
    info.pop("postgresql", None)
    info.pop("server_settings", None)
    info["loadavg_at_start"] = list(LOAD_AT_START)
    info["started"] = STARTED_AT
    info["temporalio"] = importlib.metadata.version("temporalio")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        version = subprocess.run([venv_binary("temporal"), "--version"], capture_output=True, text=True, timeout=30)
        info["temporal_cli"] = version.stdout.strip()
    return info


LOAD_AT_START = os.getloadavg()
STARTED_AT = datetime.now(UTC).isoformat(timespec="seconds")


async def bench(args: argparse.Namespace, url: str, database: str) -> dict[str, Any]:  # noqa: C901  (a benchmark's driver, read top to bottom)
    from api.app import create_app
    from api.tokens import issue_token
    from danvan.settings import Settings

    b = Bench(args, url, database)
    t_run = time.perf_counter()
    results: list[dict[str, Any]] = []
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            await conn.execute(BARE_TABLE_SQL)
            pg_version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        b.store = await EventStore.open(url, min_size=1, max_size=4)
        b.token = await issue_token(b.store.pool, "intake", None, SOURCE)
        # Commands come from the receiving (and lead) body's officer: the intake system may not classify or assign.
        b.officer_token = await issue_token(b.store.pool, "body", BODY, OFFICER)
        print("starting the Temporal dev server and the two workers ...", flush=True)
        await b.start_temporal()
        assert b.client is not None
        await b.start_worker("danvan")
        await b.start_worker("bare")
        with tempfile.TemporaryDirectory(prefix="bench-petitions-") as home:
            settings = Settings.from_env(
                {
                    "DANVAN_HOME": home,
                    "TEMPORAL_ADDRESS": b.temporal,
                    "DATABASE_URL": url,
                    "DANVAN_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "DANVAN_DB_POOL_MAX": str(POOL_SIZE),
                }
            )
            app = create_app(settings, url, temporal_client=b.client)
            limits = httpx.Limits(max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2)
            async with (
                serving(app) as api_url,
                serving(bare_app(b.client, url)) as bare_url,
                httpx.AsyncClient(base_url=api_url, limits=limits, timeout=120) as http,
            ):
                b.http, b.api_url, b.bare_url = http, api_url, bare_url
                print(
                    f"dev server {b.temporal} (pid {b.devserver.pid if b.devserver else '?'}); API {api_url}; "
                    f"baseline {bare_url}; workers: danvan pid {b.workers['danvan'].pid}, bare pid "
                    f"{b.workers['bare'].pid}; cache {args.cache_size}; {args.concurrency} concurrent clients",
                    flush=True,
                )
                # Warm-up: a few of each, so that imports, pools and sticky queues are in place.
                warm_p, _ = await b.open_petitions(max(args.concurrency, 8))
                warm_b, _ = await b.open_bare(max(args.concurrency, 8))
                await b.prepare(warm_p, warm_b)
                for system in COMMAND_SYSTEMS:
                    await b.commands(system, warm_p if system.startswith("danvan") else warm_b, 2 * args.concurrency)

                for rnd in range(1, args.repeat + 1):
                    print(f"round {rnd}/{args.repeat}", flush=True)
                    petitions, m = await b.open_petitions(args.petitions)
                    results.append({"round": rnd, **m})
                    print(
                        f"  open petition: {DANVAN_HTTP:<16} {m['per_s']:8.1f}/s  p50 {m['p50_ms']:6.1f} ms  "
                        f"p95 {m['p95_ms']:6.1f} ms  failed {m['failed']}",
                        flush=True,
                    )
                    bares, m = await b.open_bare(args.petitions)
                    results.append({"round": rnd, **m})
                    print(
                        f"  open petition: {BARE_HTTP:<16} {m['per_s']:8.1f}/s  p50 {m['p50_ms']:6.1f} ms  "
                        f"p95 {m['p95_ms']:6.1f} ms  failed {m['failed']}",
                        flush=True,
                    )
                    await b.prepare(petitions, bares)
                    # Interleaved, and reversed every other round (ours, bare, ours, bare; then bare, ours, bare,
                    # ours): the first commands after a round's new petitions are opened cost more (the cases'
                    # first commands), and a fixed order would charge that to whichever system always went first.
                    order = COMMAND_SYSTEMS if rnd % 2 == 1 else list(reversed(COMMAND_SYSTEMS))
                    for system in order:
                        m = await b.commands(system, petitions if system.startswith("danvan") else bares, args.commands)
                        results.append({"round": rnd, **m})
                        print(
                            f"  command:       {system:<16} {m['per_s']:8.1f}/s  p50 {m['p50_ms']:6.1f} ms  "
                            f"p95 {m['p95_ms']:6.1f} ms  worker CPU {worker_cpu(m, system):.2f} ms/cmd  "
                            f"failed {m['failed']}",
                            flush=True,
                        )
                    rss = {kind: w.rss() for kind, w in b.workers.items()}
                    results.append({"round": rnd, "what": "rss", "system": "workers", "rss_bytes": rss})
                    print(
                        "  worker RSS after the round: "
                        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items()),
                        flush=True,
                    )
                print("anatomy of one command ...", flush=True)
                anatomy = await b.anatomy(petitions[0], bares[0])
                memory = await b.memory(args.memory)
                replay = await b.replay_keys()
        await b.stop_worker("danvan")
        await b.stop_worker("bare")
        verification = await b.verify(replay)
    finally:
        for kind in list(b.workers):
            with contextlib.suppress(Exception):
                await b.stop_worker(kind)
        if b.env is not None:
            with contextlib.suppress(Exception):
                await b.env.shutdown()
            if b.devserver is not None:
                STARTED.discard(b.devserver.pid)
        if b.store is not None:
            await b.store.close()

    summary = {
        (w, s): summarize(results, w, s)
        for w, systems in (("open", OPEN_SYSTEMS), ("command", COMMAND_SYSTEMS))
        for s in systems
    }
    ratios = []
    for ours, bare in PAIRS:
        o, z = summary[("command", ours)], summary[("command", bare)]
        by_round = {(r["system"], r["round"]): r["per_s"] for r in results if r["what"] == "command"}
        per_round = [by_round[(bare, i)] / by_round[(ours, i)] for i in range(1, args.repeat + 1)]
        cost_ratio = z["per_s"] / o["per_s"]  # cost = 1 / throughput
        ratios.append(
            {
                "name": f"command: {ours} / {bare}",
                "ours": ours,
                "bare": bare,
                "cost_ratio": cost_ratio,
                "per_round": per_round,
                "target": TARGET,
                "met": cost_ratio <= TARGET,
                "worker_cpu_ratio": worker_cpu(o, ours) / max(worker_cpu(z, bare), 1e-9),
                "all_cpu_ratio": o["all_cpu_ms_per_op"] / max(z["all_cpu_ms_per_op"], 1e-9),
                "cpu_ms_per_command_difference": {
                    k: o["cpu_ms_per_op"].get(k, 0.0) - z["cpu_ms_per_op"].get(k, 0.0)
                    for k in ("bench", "devserver", "postgres")
                }
                | {"worker": worker_cpu(o, ours) - worker_cpu(z, bare)},
            }
        )
    o_open, z_open = summary[("open", DANVAN_HTTP)], summary[("open", BARE_HTTP)]
    print_tables(summary, ratios)
    print(
        f"open petition cost / bare open cost: {z_open['per_s'] / o_open['per_s']:.2f} (information: a petition "
        "opens with two activities, the rules and the append, and an update-with-start)"
    )
    print("anatomy of one command:")
    print(
        f"  history events per command: danvan {anatomy['history_events_per_command']['danvan']:.1f}, "
        f"bare {anatomy['history_events_per_command']['bare']:.1f}; history bytes per command: danvan "
        f"{anatomy['history_bytes_per_command']['danvan']:,.0f}, "
        f"bare {anatomy['history_bytes_per_command']['bare']:,.0f}"
    )
    for side in ("danvan", "bare"):
        print(f"  history of one {side} command: {' '.join(anatomy['history_of_one_command'][side])}")
    print("  payload bytes: " + ", ".join(f"{k} {v:,}" for k, v in anatomy["payload_bytes"].items()))
    print(f"  opening a case: history bytes danvan {anatomy['opening_history_bytes']['danvan']:,}, bare "
          f"{anatomy['opening_history_bytes']['bare']:,}; the petition's first event "
          f"{anatomy['first_event_chars']:,} characters (length(data::text))")
    print("  domain steps (µs, this process): " + ", ".join(f"{k} {v:,.0f}" for k, v in anatomy["domain_us"].items()))
    print("memory (danvan worker RSS, median of 5 readings once idle):")
    for lv in memory["levels"]:
        server = f"; dev server RSS {lv['devserver_rss_bytes'] / 2**20:,.0f} MiB" if lv["devserver_rss_bytes"] else ""
        print(f"  {lv['level']:>7,} petitions: {lv['rss_bytes'] / 2**20:7.1f} MiB{server}")
    print(
        f"  ratio {memory['levels'][-1]['level']:,} / {memory['levels'][1]['level']:,}: "
        f"{memory['ratio_last_to_first']:.2f} (flat <= {FLAT}: {'MET' if memory['flat'] else 'NOT MET'}; cache "
        f"{memory['cache_size']}, full at the first level: {memory['cache_full_at_first_level']})"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("verification:")
    for name, ok in verification["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    for err in verification["errors"][:5]:
        print(f"  error: {err}")
    duration = time.perf_counter() - t_run
    print(f"run took {duration / 60:.1f} min")
    return {
        "command": " ".join([os.path.basename(sys.executable), "-m", "bench.petitions", *sys.argv[1:]]),
        "machine": machine() | {"postgresql": pg_version},
        "config": {
            "petitions_per_round": args.petitions,
            "commands_per_system_per_round": args.commands,
            "concurrency": args.concurrency,
            "repeat": args.repeat,
            "cache_size": args.cache_size,
            "memory_levels": list(args.memory),
            "pool_size": POOL_SIZE,
            "http": "uvicorn in the benchmark process, httpx.AsyncClient over 127.0.0.1",
        },
        "medians": [{"what": w, "system": s, **v} for (w, s), v in summary.items()],
        "ratios": ratios,
        "open_cost_ratio": z_open["per_s"] / o_open["per_s"],
        "anatomy": anatomy,
        "memory": memory,
        "measurements": results,
        "verification": verification,
        "seconds": duration,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.petitions", description=__doc__.split("\n")[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help=f"server to benchmark on; a fresh database is made there and dropped ({DEFAULT_URL})",
    )
    p.add_argument("--petitions", type=int, help="petitions opened per round, and the cases the commands go to (200)")
    p.add_argument("--commands", type=int, help="commands per system per round (800)")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent clients (16)")
    p.add_argument("--repeat", type=int, help="rounds, median reported (2)")
    p.add_argument("--memory", help="petitions open at each RSS reading, comma-separated (1000,10000)")
    p.add_argument("--cache-size", type=int, help="the workers' max_cached_workflows (500)")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--quick", action="store_true", help="small counts and 1 round: a check that it runs")
    args = p.parse_args(argv)
    q = args.quick
    args.petitions = args.petitions or (40 if q else 200)
    args.commands = args.commands or (200 if q else 800)
    args.repeat = args.repeat or (1 if q else 2)
    args.cache_size = args.cache_size or (100 if q else 500)
    args.memory = [int(x) for x in (args.memory or ("200,1000" if q else "1000,10000")).split(",")]
    if args.petitions < 1 or args.commands < 1 or args.concurrency < 1 or args.repeat < 1 or args.cache_size < 1:
        p.error("--petitions, --commands, --concurrency, --repeat and --cache-size must be >= 1")
    if len(args.memory) < 2 or args.memory != sorted(set(args.memory)) or args.memory[0] < 1:
        p.error("--memory takes at least two increasing levels, e.g. 1000,10000")
    return args


def kill_leftovers() -> None:
    """Last resort after an interrupted run: stop the processes this run started (by pid), and theirs."""
    for pid in list(STARTED):
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            for c in p.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    c.kill()
            p.terminate()
            try:
                p.wait(5)
            except psutil.TimeoutExpired:
                p.kill()
        STARTED.discard(pid)


async def main_async(args: argparse.Namespace, url: str, database: str) -> dict[str, Any]:
    # A plain `kill` (SIGTERM) cancels the run like Ctrl-C, so that every `finally` below runs.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await bench(args, url, database)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    name = f"bench_{secrets.token_hex(4)}"
    url = with_database(args.database_url, name)
    print(
        f"server {redact(args.database_url)}; database {name}; load average "
        f"{' '.join(f'{x:.2f}' for x in LOAD_AT_START)}",
        flush=True,
    )
    asyncio.run(create_database(args.database_url, name))
    out: dict[str, Any] | None = None
    try:
        out = asyncio.run(main_async(args, url, name))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
    finally:
        kill_leftovers()
        try:
            asyncio.run(drop_database(args.database_url, name))
            print(f"dropped database {name}")
        except Exception as exc:  # keep the original error, if any, in front
            print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        left = psutil.Process().children(recursive=True)
        print(f"child processes left: {len(left)}" + (f" ({[p.pid for p in left]})" if left else ""))
    if out is None:
        return 130
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
