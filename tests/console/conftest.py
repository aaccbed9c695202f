"""Fixtures of the console tests: the API tests' app and settings (real PostgreSQL, real Temporal dev server),
reused as they are, with a worker on the production task queue, and a few tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

import worker
from eventstore import EventStore

# The API tests' fixtures, so the console runs in exactly the app the API tests use.
from ..api.conftest import api, api_settings  # noqa: F401
from ..api.support import token, unique
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
