"""With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a process's spans reach the collector over OTLP HTTP/protobuf: a
collector of the test's own on the loopback receives them, decoded with OpenTelemetry's own protobuf types.
In a child process, since the global tracer provider is set once per process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import ROOT

CHILD = """
from opentelemetry import trace
from danvan.settings import Settings
from danvan.tracing import configure_tracing, temporal_interceptors, api_telemetry

provider = configure_tracing(Settings.from_env(), "danvan-test")
assert provider is not None and temporal_interceptors() and api_telemetry()["tracing"]
with trace.get_tracer("test").start_as_current_span("hồ sơ thử"):
    pass
provider.force_flush()
"""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(collector: tuple[str, list[tuple[str, bytes]]]) -> None:
    url, received = collector
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_SERVICE_NAME="danvan-otlp-test")
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert [path for path, _ in received] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(received[0][1])
    resource = request.resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "danvan-otlp-test"
    names = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert names == ["hồ sơ thử"]
