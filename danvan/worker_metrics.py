"""A worker's metrics on a port of its own: the Temporal SDK's runtime telemetry, and danvan's appends with it.

The SDK serves Prometheus' text format itself (`temporalio.runtime.PrometheusConfig`) at
`http://DANVAN_WORKER_METRICS_HOST:DANVAN_WORKER_METRICS_PORT/metrics`: its `temporal_*` series (workflow and
activity task latencies, polls, completions, failures, RPCs, the workflow cache), counters ending in `_total`
and durations in seconds, as Prometheus names them. danvan's own series of the worker, the appends its activities
make (`danvan_eventstore_append_duration_seconds{outcome}`, `danvan_eventstore_append_conflicts_total`, as the API
names them) and the webhook deliveries (`danvan_webhook_deliveries_total{outcome,status_class}`,
`danvan_webhook_delivery_duration_seconds{outcome}`), are recorded through the same runtime's meter, so one
scrape of the port has both.

The same runtime forwards the SDK core's own log lines to Python's logging, so they are JSON lines like the
rest (`danvan.logs`). A second worker on the same host finds the metrics port taken: it says so in its log and
runs without metrics, rather than not at all (every worker of `docker-compose.yml` has its own network, so its
own port).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from activities import delivery_hooks
from eventstore import hooks

from .metrics import APPEND_BUCKETS, WEBHOOK_BUCKETS
from .settings import Settings

log = logging.getLogger("danvan.worker")

APPEND_SECONDS = "danvan_eventstore_append_duration_seconds"
APPEND_CONFLICTS = "danvan_eventstore_append_conflicts"
WEBHOOK_SECONDS = "danvan_webhook_delivery_duration_seconds"
WEBHOOK_DELIVERIES = "danvan_webhook_deliveries"


@dataclass
class WorkerRuntime:
    """The SDK runtime of a worker's client and workers: its core's log lines forwarded to Python's logging (so
    written as JSON lines too), and its metrics served at `metrics_address` (None: not served). `close` stops
    counting this process's appends."""

    runtime: Runtime
    metrics_address: str | None
    _remove: Callable[[], None]

    def close(self) -> None:
        self._remove()


def _core_logging() -> LoggingConfig:
    """The SDK core's own warnings (and other crates' errors) through the `temporalio.core` logger."""
    return LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                         forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))


def worker_runtime(settings: Settings) -> WorkerRuntime:
    """The runtime of a worker: metrics at `settings.worker_metrics_address` unless that is off or the port is
    taken (then said in the log, and the worker runs without them)."""
    address = settings.worker_metrics_address
    if address is not None:
        config = PrometheusConfig(
            bind_address=address,
            counters_total_suffix=True,
            durations_as_seconds=True,
            histogram_bucket_overrides={APPEND_SECONDS: list(APPEND_BUCKETS), WEBHOOK_SECONDS: list(WEBHOOK_BUCKETS)},
        )
        try:
            runtime = Runtime(telemetry=TelemetryConfig(logging=_core_logging(), metrics=config))
        except ValueError as exc:  # the SDK's words for a port it cannot bind ("Address already in use")
            log.warning("worker metrics not served: cannot listen on %s: %s", address, exc)
        else:
            log.info("worker metrics at http://%s/metrics", address)
            remove_appends = hooks.observe_appends(_append_recorder(runtime))
            remove_deliveries = delivery_hooks.observe_deliveries(_delivery_recorder(runtime))

            def remove() -> None:
                remove_appends()
                remove_deliveries()

            return WorkerRuntime(runtime=runtime, metrics_address=address, _remove=remove)
    return WorkerRuntime(runtime=Runtime(telemetry=TelemetryConfig(logging=_core_logging())),
                         metrics_address=None, _remove=lambda: None)


def _append_recorder(runtime: Runtime) -> hooks.AppendObserver:
    meter = runtime.metric_meter
    latency = meter.create_histogram_float(APPEND_SECONDS, "Time of one event-store append, by outcome "
                                           "(appended, duplicate, conflict, error)", "s")
    conflicts = meter.create_counter(APPEND_CONFLICTS, "Appends refused because the stream was at another version")

    def record(seconds: float, events: int, outcome: hooks.AppendOutcome) -> None:
        latency.record(seconds, {"outcome": outcome})
        if outcome == "conflict":
            conflicts.add(1)

    return record


def _delivery_recorder(runtime: Runtime) -> delivery_hooks.DeliveryObserver:
    meter = runtime.metric_meter
    latency = meter.create_histogram_float(WEBHOOK_SECONDS, "Time of one webhook delivery attempt, by outcome", "s")
    attempts = meter.create_counter(WEBHOOK_DELIVERIES, "Webhook delivery attempts, by outcome (delivered: a 2xx "
                                    "answer; failed) and status class (2xx... 5xx, none: no answer)")

    def record(seconds: float, status_code: int | None) -> None:
        outcome, status_class = delivery_hooks.labels(status_code)
        latency.record(seconds, {"outcome": outcome})
        attempts.add(1, {"outcome": outcome, "status_class": status_class})

    return record
