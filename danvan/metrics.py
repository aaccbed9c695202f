"""danvan's own metrics, kept by `prometheus-client` in its process-wide registry.

- `danvan_http_requests_total{method,route,status}` and `danvan_http_request_duration_seconds{method,route}`:
  every HTTP request of the API, by route template (`/v1/cases/{case_id}`, never the raw path, so the number of
  series stays bounded), measured by `api.metrics.RequestMetrics`.
- `danvan_eventstore_append_duration_seconds{outcome}` and `danvan_eventstore_append_conflicts_total`: every
  append of this process's event store (`eventstore.hooks`), once `observe_appends` has been called.
- `danvan_webhook_deliveries_total{outcome,status_class}` and `danvan_webhook_delivery_duration_seconds{outcome}`:
  every webhook delivery attempt made in this process (`activities.delivery_hooks`), likewise.

The API serves this registry at `/metrics` together with the case gauges it reads from PostgreSQL at each
scrape (`api.metrics`). The worker adds the same append series to the Temporal SDK's own metrics on the
worker's metrics port (`danvan.telemetry`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from activities import delivery_hooks
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
#: Seconds: a webhook request is bounded by `DANVAN_WEBHOOK_TIMEOUT` (10 s by default, 60 at most).
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WEBHOOK_DELIVERIES = Counter(
    "danvan_webhook_deliveries", "Webhook delivery attempts, by outcome (delivered: a 2xx answer; failed) and "
    "status class (2xx... 5xx, none: no answer)", ["outcome", "status_class"]
)
WEBHOOK_LATENCY = Histogram(
    "danvan_webhook_delivery_duration_seconds", "Time of one webhook delivery attempt, by outcome", ["outcome"],
    buckets=WEBHOOK_BUCKETS,
)
APPEND_CONFLICTS = Counter(
    "danvan_eventstore_append_conflicts", "Appends refused because the stream was at another version"
)


def record_append(seconds: float, events: int, outcome: hooks.AppendOutcome) -> None:
    APPEND_LATENCY.labels(outcome).observe(seconds)
    if outcome == "conflict":
        APPEND_CONFLICTS.inc()


def record_delivery(seconds: float, status_code: int | None) -> None:
    outcome, status_class = delivery_hooks.labels(status_code)
    WEBHOOK_DELIVERIES.labels(outcome, status_class).inc()
    WEBHOOK_LATENCY.labels(outcome).observe(seconds)


def observe_appends() -> None:
    """Count this process's appends and webhook deliveries in the registry (once per process: calling it again
    changes nothing)."""
    hooks.observe_appends(record_append)
    delivery_hooks.observe_deliveries(record_delivery)
