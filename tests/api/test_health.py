"""Liveness and readiness probes, with and without Temporal, with and without migrations."""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable

from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.settings import Settings
from tests.conftest import free_port

from .support import Api, running


async def test_healthz_answers_ok_without_a_token(api: Api) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_without_a_token_when_everything_is_up(api: Api) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "migrations": "ok", "temporal": "ok"},
    }


async def test_readyz_is_503_naming_temporal_when_temporal_is_down(database_url: str) -> None:
    settings = Settings.from_env({"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    app = create_app(settings, database_url)  # the app starts although nothing listens there
    async with running(app) as api:
        started = time.monotonic()
        response = await api.get("/readyz")
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["checks"] == {"postgres": "ok", "migrations": "ok", "temporal": "down"}
        assert body["error"]["code"] == "not_ready" and "temporal" in body["error"]["message"]
        assert elapsed < 8, f"readyz took {elapsed:.1f} s"
        assert (await api.get("/healthz")).status_code == 200


async def test_readyz_gives_up_on_a_temporal_that_accepts_but_never_answers(database_url: str) -> None:
    with socket.socket() as silent:  # the kernel completes the TCP handshake; nobody ever speaks gRPC
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        app = create_app(Settings.from_env({"TEMPORAL_ADDRESS": address}), database_url, temporal_timeout=1.0)
        async with running(app) as api:
            started = time.monotonic()
            response = await api.get("/readyz")
            elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["temporal"] == "down"
    assert elapsed < 5, f"readyz took {elapsed:.1f} s"


async def test_the_app_connects_to_temporal_lazily_with_the_settings_address(
    database_url: str, temporal_env: WorkflowEnvironment
) -> None:
    address = temporal_env.client.service_client.config.target_host
    app = create_app(Settings.from_env({"TEMPORAL_ADDRESS": address}), database_url)
    assert not hasattr(app.state, "temporal")  # building the app does no I/O
    async with running(app) as api:
        response = await api.get("/readyz")
        assert response.status_code == 200, response.text
        assert app.state.temporal.client is not None


async def test_readyz_is_503_naming_migrations_on_an_unmigrated_database(
    new_database: Callable[[], Awaitable[str]], api_settings: Settings, temporal_env: WorkflowEnvironment
) -> None:
    url = await new_database()
    app = create_app(api_settings, url, temporal_client=temporal_env.client)
    async with running(app) as api:
        response = await api.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"postgres": "ok", "migrations": "pending", "temporal": "ok"}


async def test_openapi_and_docs_are_served_with_the_bearer_scheme(api: Api) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert schema["info"]["title"] == "danvan"
    assert schema["info"]["description"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "ErrorBody" in schema["components"]["schemas"]
    docs = await api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
