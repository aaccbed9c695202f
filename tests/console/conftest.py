"""Fixtures of the console tests: the API tests' app and settings (real PostgreSQL, real Temporal dev server),
reused as they are, with a worker on the production task queue, and a few tokens."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment

import worker
from eventstore import EventStore

# The API tests' fixtures, so the console runs in exactly the app the API tests use.
from ..api.conftest import api, api_settings  # noqa: F401
from ..api.support import Api, token, unique
from .support import Tokens


@pytest_asyncio.fixture(scope="session")
async def case_worker(temporal_env: WorkflowEnvironment, store: EventStore) -> AsyncIterator[None]:
    """A worker on the production task queue, so the cases the console shows run for real.

    It has a client of its own: the SDK allows one worker per client and task queue, and when the API tests run
    in the same session their worker already holds the environment's client. Two workers polling one queue is
    the production shape anyway (`docker compose up --scale worker=3`).
    """
    client = await worker.connect(temporal_env.client.service_client.config.target_host,
                                  temporal_env.client.namespace)
    async with worker.build_worker(client, store):
        yield


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("console-backoffice")
    return Tokens(
        source=source,
        intake=await token(store, "intake", label=source),
        lead=await token(store, "body", "UBND_TINH", label="chuyên viên UBND tỉnh"),
        other_body=await token(store, "body", "SO_TAI_NGUYEN", label="chuyên viên Sở Tài nguyên"),
        stranger=await token(store, "body", "UBND_HUYEN", label="chuyên viên cơ quan khác"),
        supervisor=await token(store, "supervisor", label="giám sát viên Ban Dân vận"),
        operator=await token(store, "operator", label="vận hành"),
        admin=await token(store, "admin", label="quản trị"),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="module")
async def base_url(api: Api) -> AsyncIterator[str]:  # noqa: F811 (the `api` fixture)
    """The test app served over real HTTP on a free loopback port (its lifespan is already running), for the
    browser tests (`tests/console/browsing.py`)."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(), name="console-test-server")
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (`tests/console/browsing.py`)."""
    from playwright.async_api import async_playwright

    from .browsing import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
