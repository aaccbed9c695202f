"""Bounded waits: a request is answered within `DANVAN_REQUEST_TIMEOUT`, with 503 naming what did not answer.

Temporal frozen and PostgreSQL killed while cases are driven is `tests/integration/test_bounded_waits.py`; here the
bounds one at a time: a statement stuck behind a lock, a Temporal that accepts connections and never speaks, and
the request deadline itself (its own ASGI app, so that what it waits on is known exactly).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.deadline import RequestDeadline
from danvan import waits
from danvan.settings import Settings
from tests.conftest import migrated_database, secret_env

from .support import petition, running, token

BOUND = 1.0
MARGIN = 2.0  # generous: the machine is shared


async def test_a_statement_stuck_behind_a_lock_is_a_503_naming_postgresql_within_the_bound(
    new_database: Callable[[], Awaitable[str]], temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = await migrated_database(new_database)
    settings = Settings.from_env({"TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
                                  "DANVAN_REQUEST_TIMEOUT": str(BOUND), "DANVAN_HOME": str(tmp_path),
                                  **secret_env()})
    app = create_app(settings, url, temporal_client=temporal_env.client, token_cache_ttl=0)
    async with running(app) as api:
        supervisor = await token(app.state.store, "supervisor")
        assert (await api.get("/v1/cases", supervisor)).status_code == 200
        holder = await asyncpg.connect(url)
        try:
            await holder.execute("BEGIN")
            await holder.execute("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")  # every sign-in waits
            started = time.monotonic()
            answers = await asyncio.gather(*(api.get("/v1/cases", supervisor) for _ in range(6)))
            elapsed = time.monotonic() - started
        finally:
            await holder.close()
        assert elapsed < BOUND + MARGIN, f"answered in {elapsed:.1f} s"
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "unavailable"
            assert "PostgreSQL" in answer.json()["error"]["message"]
        # The lock gone, the same pool serves again: the interrupted connections were not handed out.
        assert (await api.get("/v1/cases", supervisor)).status_code == 200
        assert app.state.store.pool.get_size() <= settings.db_pool_max


async def test_a_temporal_that_never_answers_is_a_503_naming_temporal_within_the_bound(
    database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # the kernel completes the TCP handshake; nobody ever speaks gRPC
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        settings = Settings.from_env({"TEMPORAL_ADDRESS": f"127.0.0.1:{silent.getsockname()[1]}",
                                      "DANVAN_REQUEST_TIMEOUT": str(BOUND), "DANVAN_HOME": str(tmp_path),
                                  **secret_env()})
        app = create_app(settings, database_url)
        async with running(app) as api:
            admin = await token(app.state.store, "admin")
            started = time.monotonic()
            answer = await api.post("/v1/petitions", admin, json=petition("bounded-test"))
            ready = await api.get("/readyz")
            elapsed = time.monotonic() - started
    assert elapsed < 2 * BOUND + MARGIN, f"answered in {elapsed:.1f} s"
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable" and "Temporal" in answer.json()["error"]["message"]
    assert ready.status_code == 503 and ready.json()["checks"]["temporal"] == "down"


# -- the request deadline on its own ------------------------------------------------------------------------------


def _app(wait: Callable[[], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, object], receive: object, send: Callable[[dict[str, object]], Awaitable[None]]
                  ) -> None:
        await wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    return app


async def _call(app: Callable[..., Awaitable[None]], path: str = "/v1/cases") -> tuple[httpx.Response, float]:
    bounded = RequestDeadline(app, timeout=0.3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bounded), base_url="http://t") as http:
        started = time.monotonic()
        response = await http.get(path)
        return response, time.monotonic() - started


async def test_the_deadline_names_postgresql_when_the_request_waits_on_it() -> None:
    async def in_the_pool() -> None:
        record = waits.current.get()
        assert record is not None
        record.postgres += 1
        try:
            await asyncio.sleep(30)
        finally:
            record.postgres -= 1  # unwinding counts out: the name was taken when the deadline fired

    response, elapsed = await _call(_app(in_the_pool))
    assert response.status_code == 503 and elapsed < 0.3 + MARGIN
    assert response.json() == {"error": {"code": "unavailable",
                                         "message": "no answer from PostgreSQL within 0.3 s; try again shortly"}}
    assert response.headers["retry-after"] == "1"


async def test_the_deadline_names_temporal_otherwise_and_keeps_a_commands_note() -> None:
    async def sent() -> None:
        waits.note("the command may or may not have been applied: send it again with the same Idempotency-Key")
        await asyncio.sleep(30)

    response, _ = await _call(_app(sent))
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message.startswith("no answer from Temporal within 0.3 s") and "same Idempotency-Key" in message


async def test_the_deadline_holds_when_a_library_turns_the_cancellation_into_an_error() -> None:
    async def swallowed() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RuntimeError("the call was cancelled") from None  # what the Temporal SDK does with an RPC

    response, _ = await _call(_app(swallowed))
    assert response.status_code == 503 and "Temporal" in response.json()["error"]["message"]


async def test_an_answer_in_time_passes_and_a_console_page_gets_html() -> None:
    async def quick() -> None:
        await asyncio.sleep(0)

    response, _ = await _call(_app(quick))
    assert response.status_code == 200 and response.text == "late"

    async def slow() -> None:
        await asyncio.sleep(30)

    page, _ = await _call(_app(slow), "/console/cases")
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "Vui lòng thử lại" in page.text
