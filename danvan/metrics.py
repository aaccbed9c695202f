"""danvan's own metrics, kept by `prometheus-client` in its process-wide registry.

- `danvan_http_requests_total{method,route,status}` and `danvan_http_request_duration_seconds{method,route}`:
  every HTTP request of the API, by route template (`/v1/cases/{case_id}`, never the raw path, so the number of
  series stays bounded), measured by `api.metrics.RequestMetrics`.
- `danvan_eventstore_append_duration_seconds{outcome}` and `danvan_eventstore_append_conflicts_total`: every
  append of this process's event store (`eventstore.hooks`), once `observe_appends` has been called.

The API serves this registry at `/metrics` together with the case gauges it reads from PostgreSQL at each
scrape (`api.metrics`). The worker adds the same append series to the Temporal SDK's own metrics on the
worker's metrics port (`danvan.telemetry`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from eventstore import hooks

#: Seconds: an API request is bounded by `DANVAN_REQUEST_TIMEOUT` (5 s by default).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds: an append is one statement, about a millisecond on a healthy database.
APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "danvan_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "danvan_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
    ["method", "route"], buckets=REQUEST_BUCKETS,
)
APPEND_LATENCY = Histogram(
    "danvan_eventstore_append_duration_seconds", "Time of one event-store append, by outcome "
    "(appended, duplicate, conflict, error)", ["outcome"], buckets=APPEND_BUCKETS,
)
APPEND_CONFLICTS = Counter(
    "danvan_eventstore_append_conflicts", "Appends refused because the stream was at another version"
)


def record_append(seconds: float, events: int, outcome: hooks.AppendOutcome) -> None:
    APPEND_LATENCY.labels(outcome).observe(seconds)
    if outcome == "conflict":
        APPEND_CONFLICTS.inc()


def observe_appends() -> None:
    """Count this process's appends in the registry (once per process: calling it again changes nothing)."""
    hooks.observe_appends(record_append)
