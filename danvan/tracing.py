"""OpenTelemetry traces, off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`).

One command is one trace, from the HTTP request to the SQL statement that stores its events:

- the API's HTTP server span is FastAPI's own instrumentation (FastAPI emits OpenTelemetry spans itself, named
  by route template, mounted console pages included; `api_telemetry` gives it the provider);
- the Temporal client and worker carry the trace through Temporal with the SDK's `TracingInterceptor`
  (`temporal_interceptors`, `CommandTracingInterceptor`): the Update the API sends, the workflow's handling of
  it and the activity it runs share the request's trace id. The interceptor is chosen over the SDK's newer
  plugin, still experimental, which exports a workflow's spans when they end, and a case runs for months;
- every asyncpg statement is a span (`opentelemetry-instrumentation-asyncpg`), under whatever span is current:
  the HTTP request's in the API, the activity's in the worker.

`configure_tracing` is called by the entry points (`danvan api`, `danvan worker`): with an endpoint it exports
over OTLP HTTP/protobuf in batches (the SDK's own exporter, reading the other `OTEL_EXPORTER_OTLP_*` variables
itself, headers and timeouts included) and sets the process's global provider. Tests give `enable_tracing` a
provider of their own (an in-memory exporter) and turn it off again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.contrib.opentelemetry._context import attached_context
from temporalio.worker import HandleUpdateInput, WorkflowInboundInterceptor, WorkflowInterceptorClassInput

from .settings import Settings

log = logging.getLogger("danvan.tracing")

#: The provider of this process's spans; None: tracing is off.
_provider: TracerProvider | None = None


def enable_tracing(provider: TracerProvider) -> Callable[[], None]:
    """Trace with `provider` from now on: the API apps created and the Temporal clients connected after this call,
    and every asyncpg statement. Returns what turns it off again."""
    global _provider
    _provider = provider
    # Statements only, never their parameters: those hold petitioners' data.
    instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)

    def disable() -> None:
        global _provider
        instrumentor.uninstrument()
        _provider = None

    return disable


def configure_tracing(settings: Settings, service: str) -> TracerProvider | None:
    """Export this process's traces over OTLP when `settings.otlp_traces_endpoint` is set (None otherwise).
    The process is named `OTEL_SERVICE_NAME`, else `service`; `OTEL_RESOURCE_ATTRIBUTES` adds to it."""
    if settings.otlp_traces_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)))
    trace.set_tracer_provider(provider)
    enable_tracing(provider)
    log.info("traces of %s exported over OTLP to %s", resource.attributes.get(SERVICE_NAME),
             settings.otlp_traces_endpoint)
    return provider


def tracer_provider() -> TracerProvider | None:
    return _provider


class CommandTracingInterceptor(TracingInterceptor):
    """The SDK's `TracingInterceptor`, with one change, made the way its documentation asks (a subclass): the
    spans of an Update, and those of the activities its handler runs, are in the trace of whoever sent the
    Update, linked to the case's own trace, instead of in the trace of the request that opened the case. A
    case lives for months; one command is one trace, from the HTTP request to its SQL."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the span callback the workflow side needs
        return _CommandWorkflowInbound


class _CommandWorkflowInbound(TracingWorkflowInboundInterceptor):
    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        with self._sender_context(input):
            self._completed_span(f"ValidateUpdate:{input.update}", kind=SpanKind.SERVER,
                                 link_context_carrier=self._load_workflow_context_carrier())
            WorkflowInboundInterceptor.handle_update_validator(self, input)  # the span above, not the parent's

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        with self._sender_context(input):
            self._completed_span(f"HandleUpdate:{input.update}", kind=SpanKind.SERVER,
                                 link_context_carrier=self._load_workflow_context_carrier())
            return await WorkflowInboundInterceptor.handle_update_handler(self, input)

    @contextmanager
    def _sender_context(self, input: HandleUpdateInput) -> Iterator[None]:
        """The sender's context from the Update's header (the case's own when the sender sent none)."""
        header = input.headers.get(self.header_key)
        carrier = self.payload_converter.from_payloads([header])[0] if header else self._load_workflow_context_carrier()
        context = self.text_map_propagator.extract(carrier) if carrier else Context()
        # The SDK's own helper: it detaches safely even when an evicted workflow's context is finalised elsewhere.
        with attached_context(self._set_on_context(context)):
            yield


def temporal_interceptors() -> list[Interceptor]:
    """The interceptors of a Temporal client (and of the workers built on it): the tracing one when tracing is on."""
    if _provider is None:
        return []
    return [CommandTracingInterceptor(_provider.get_tracer("danvan.temporal"))]


def api_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry settings for the API app: its HTTP server spans with this process's provider
    when tracing is on, nothing otherwise. Its metrics and log records stay off: the API's metrics are
    Prometheus' (`api.metrics`) and its logs are JSON lines."""
    if _provider is None:
        return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"tracer_provider": _provider, "tracing": True, "metrics": False, "logs": False,
            "operation_spans": False, "auto_configure": False}
