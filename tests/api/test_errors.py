"""Every error answer has the one format, and a 422 names each bad field and the rule it breaks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.errors import ApiError
from danvan.settings import Settings
from eventstore import ConcurrencyError, EventStore, StoreUnavailableError

from .support import Api, running, token


@pytest_asyncio.fixture(scope="module")
async def admin(store: EventStore) -> str:
    return await token(store, "admin", label="errors-admin")


@pytest_asyncio.fixture(scope="module")
async def supervisor(store: EventStore) -> str:
    return await token(store, "supervisor", label="errors-supervisor")


def fields_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    return {f["field"]: f["rule"] for f in error["fields"]}


async def test_malformed_json_is_422_naming_the_body(api: Api, admin: str) -> None:
    response = await api.post(
        "/v1/tokens", admin, content=b'{"role": "admin", ', headers={"Content-Type": "application/json"}
    )
    assert fields_of(response) == {"body": "json_invalid"}


async def test_wrong_types_are_422_naming_each_field(api: Api, admin: str) -> None:
    response = await api.post("/v1/tokens", admin, json={"role": 5})
    assert fields_of(response) == {"role": "literal_error", "label": "missing"}
    messages = {f["field"]: f["message"] for f in response.json()["error"]["fields"]}
    assert "'intake'" in messages["role"] and "'admin'" in messages["role"]


async def test_a_body_token_request_without_body_id_is_422_naming_body_id(api: Api, admin: str) -> None:
    response = await api.post("/v1/tokens", admin, json={"role": "body", "label": "staff"})
    assert fields_of(response) == {"body_id": "missing"}
    response = await api.post("/v1/tokens", admin, json={"role": "admin", "body_id": "x", "label": "a"})
    assert fields_of(response) == {"body_id": "forbidden"}


async def test_an_unknown_field_is_422_naming_it(api: Api, admin: str) -> None:
    response = await api.post("/v1/tokens", admin, json={"role": "admin", "label": "a", "scope": "all"})
    assert fields_of(response) == {"scope": "extra_forbidden"}


async def test_a_body_that_is_not_an_object_is_422_naming_the_body(api: Api, admin: str) -> None:
    response = await api.post("/v1/tokens", admin, json=["admin"])
    assert set(fields_of(response)) == {"body"}


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        ({"cursor": "not-a-cursor"}, "cursor", "cursor_invalid"),
        ({"cursor": "eyJ4IjoxfQ"}, "cursor", "cursor_invalid"),  # valid base64 JSON, not a cursor
        ({"overdue": "maybe"}, "overdue", "bool_parsing"),
        ({"limit": "0"}, "limit", "greater_than_equal"),
        ({"limit": "201"}, "limit", "less_than_equal"),
        ({"received_from": "yesterday"}, "received_from", "date_from_datetime_parsing"),
        ({"received_from": "2026-03-02", "received_to": "2026-03-01"}, "received_to", "date_range"),
    ],
)
async def test_bad_list_parameters_are_422_naming_the_parameter(
    api: Api, supervisor: str, params: dict[str, str], field: str, rule: str
) -> None:
    response = await api.get("/v1/cases", supervisor, params=params)
    assert fields_of(response) == {field: rule}


async def test_an_unknown_path_is_404_in_the_error_format(api: Api) -> None:
    response = await api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_wrong_method_is_405_in_the_error_format(api: Api) -> None:
    response = await api.http.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_an_unknown_case_is_404_in_the_error_format(api: Api, supervisor: str) -> None:
    for path in ("/v1/cases/no-such-case", "/v1/cases/no-such-case/history"):
        response = await api.get(path, supervisor)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest_asyncio.fixture
async def failing(api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[Api]:
    """An app with extra routes that raise, to see what each kind of failure becomes."""
    app: FastAPI = create_app(api_settings, database_url, temporal_client=temporal_env.client)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail: password=hunter2")

    @app.get("/conflict")
    async def conflict() -> None:
        raise ConcurrencyError("case-1", 3, 4)

    @app.get("/db-down")
    async def db_down() -> None:
        raise StoreUnavailableError("connection refused to 10.0.0.5:5432")

    @app.get("/teapot")
    async def teapot() -> None:
        raise ApiError(418, "teapot", "I am a teapot")

    async with running(app, raise_app_exceptions=False) as client:
        yield client


async def test_an_unexpected_error_is_500_without_internals(failing: Api, caplog: pytest.LogCaptureFixture) -> None:
    response = await failing.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "internal error; it has been logged"}}
    assert "hunter2" not in response.text
    assert any("hunter2" in str(r.exc_info) for r in caplog.records if r.exc_info)


async def test_a_concurrency_error_is_409_conflict(failing: Api) -> None:
    response = await failing.get("/conflict")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_a_database_outage_is_503_without_internals(failing: Api) -> None:
    response = await failing.get("/db-down")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "10.0.0.5" not in response.text


async def test_a_route_raises_api_error_for_its_own_status_and_code(failing: Api) -> None:
    response = await failing.get("/teapot")
    assert response.status_code == 418
    assert response.json() == {"error": {"code": "teapot", "message": "I am a teapot"}}
