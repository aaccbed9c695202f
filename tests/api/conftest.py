"""Fixtures of the API tests: one app for the session, on the real PostgreSQL and Temporal dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.outbound import OutboundPolicy
from danvan.settings import Settings
from eventstore import EventStore
from worker import build_worker

from .support import Api, running


@pytest.fixture(scope="session")
def api_settings(temporal_env: WorkflowEnvironment) -> Settings:
    address = temporal_env.client.service_client.config.target_host
    # Webhooks may go to the tests' own receivers on this machine.
    return Settings.from_env({"TEMPORAL_ADDRESS": address, "DANVAN_DB_POOL_MAX": "4",
                              "DANVAN_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"})


@pytest_asyncio.fixture(scope="session")
async def case_worker(temporal_env: WorkflowEnvironment, store: EventStore, api_settings: Settings
                      ) -> AsyncIterator[None]:
    """A worker on the production task queue of the dev server, so the API's cases (and webhooks) run for real."""
    async with build_worker(temporal_env.client, store, outbound=OutboundPolicy.from_settings(api_settings)):
        yield


@pytest_asyncio.fixture(scope="session")
async def api(
    api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment, store: EventStore,
    case_worker: None,
) -> AsyncIterator[Api]:
    """The app, its lifespan entered, with a client. The token cache is on, with a short TTL."""
    app = create_app(api_settings, database_url, temporal_client=temporal_env.client, token_cache_ttl=0.5)
    async with running(app) as client:
        yield client
