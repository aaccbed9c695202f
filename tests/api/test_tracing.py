"""One command, one trace: the HTTP request, the Update it sends, the workflow handling it, the activity that
appends its events and the SQL statement that stores them share one trace id, collected by an in-memory
exporter. The test has a Temporal dev server of its own, so its traced worker is the only one on the queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.settings import Settings
from danvan.tracing import api_telemetry, enable_tracing, temporal_interceptors
from eventstore import EventStore
from tests.conftest import binary, free_port
from worker import build_worker, project_converter
from workflows.shared import SEARCH_ATTRIBUTES

from .support import Api, petition, running, token, unique, unique_body


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    disable = enable_tracing(provider)
    try:
        yield exporter
    finally:
        disable()
        provider.shutdown()


@pytest_asyncio.fixture
async def traced_api(spans: InMemorySpanExporter, database_url: str, store: EventStore) -> AsyncIterator[Api]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), ip="127.0.0.1", port=free_port(), ui=False,
        data_converter=project_converter(),
        dev_server_extra_args=[arg for name, kind in SEARCH_ATTRIBUTES.items()
                               for arg in ("--search-attribute", f"{name}={kind}")] + ["--log-level", "warn"],
    )
    try:
        # The client as `worker.connect` makes it when traces are on: the tracing interceptor, for the API's
        # calls and for the worker built on it.
        config = env.client.config()
        config["interceptors"] = temporal_interceptors()
        client = Client(**config)
        settings = Settings.from_env({"TEMPORAL_ADDRESS": client.service_client.config.target_host,
                                      "DANVAN_DB_POOL_MAX": "4"})
        async with build_worker(client, store):
            app = create_app(settings, database_url, temporal_client=client, token_cache_ttl=0.5)
            async with running(app) as api:
                yield api
    finally:
        await env.shutdown()


def in_trace(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_command_is_one_trace_from_http_through_the_update_and_activity_to_sql(
    traced_api: Api, store: EventStore, spans: InMemorySpanExporter
) -> None:
    source, body = unique("trace-intake"), unique_body("T")
    intake = await token(store, "intake", label=source)
    staff = await token(store, "body", body)
    opened = await traced_api.post("/v1/petitions", intake, json=petition(source, receiving_body=body))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    spans.clear()

    command = {"type": "assign", "body": "UBND_TINH", "officer": unique("officer")}
    sent = await traced_api.post(f"/v1/cases/{case_id}/commands", staff, json=command)
    assert sent.status_code == 200, sent.text

    finished = list(spans.get_finished_spans())
    http = [s for s in finished if s.kind is SpanKind.SERVER and s.attributes and "http.route" in s.attributes]
    assert [s.name for s in http] == ["POST /v1/cases/{case_id}/commands"]
    assert http[0].attributes is not None and http[0].attributes["http.route"] == "/v1/cases/{case_id}/commands"
    assert http[0].attributes["http.response.status_code"] == 200
    trace_id = http[0].context.trace_id
    trace = in_trace(finished, trace_id)
    names = [s.name for s in trace]
    by_id = {s.context.span_id: s for s in trace}

    update = [s for s in trace if s.name.startswith("StartWorkflowUpdate:")]
    assert update, names
    assert http[0].name in ancestors(update[0], by_id)
    assert any(n.startswith("HandleUpdate:") for n in names), names
    activity = [s for s in trace if s.name == "RunActivity:append_events"]
    assert activity, names
    sql = [s for s in trace if s.attributes is not None and s.attributes.get("db.system") == "postgresql"]
    appends = [s for s in sql if "danvan_append" in str((s.attributes or {}).get("db.statement", ""))]
    assert appends, [s.name for s in sql]
    # The append's statement under the activity, under the Update, under the HTTP request: one trace.
    chain = ancestors(appends[0], by_id)
    assert "RunActivity:append_events" in chain
    assert any(n.startswith("StartWorkflowUpdate:") for n in chain), chain
    assert chain[-1] == http[0].name
    # The API's own statements (the case it reads before sending) are in the request's trace too.
    assert any(http[0].name in ancestors(s, by_id) and s not in appends for s in sql)
    # Never the raw path or the case's id in a span's name, nor a statement's parameters (petitioners' data).
    assert not any(case_id in s.name for s in trace)
    assert not any(key.startswith("db.statement.parameters") for s in sql for key in (s.attributes or {}))


def test_traces_are_off_unless_enabled() -> None:
    assert temporal_interceptors() == []
    assert api_telemetry()["tracing"] is False
