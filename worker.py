"""The one place where the Temporal client, the database pool, the activities and the workflows are wired.

`danvan worker` runs `run_worker`. Every Temporal client comes from `danvan.client.connect` (re-exported here with
`project_converter`, as the tests and older callers import them), so every worker built on one uses the
project's data converter: pydantic payloads encrypted by the payload codec (`danvan.codec`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.cases import CaseCommandActivities
from activities.eventstore import EventStoreActivities
from activities.jobs import JobActivities
from activities.reports import ReportActivities
from activities.rules import RULE_BOOK, RulesActivities, keep_rule_book, load_rule_book
from activities.stalled import StalledScanActivities
from api.outbound import OutboundPolicy
from danvan.client import connect, project_converter
from danvan.keys import check_installation_secret, settings_key
from danvan.settings import Settings
from danvan.tracing import configure_tracing
from danvan.worker_metrics import worker_runtime
from domain.calendar import CASE_YEARS
from eventstore import EventStore
from ops.steps import StepFailureInterceptor
from workflows import ALL_WORKFLOWS
from workflows.shared import TASK_QUEUE
from workflows.stalled_scan import StalledScanWorkflow

__all__ = ["build_worker", "connect", "project_converter", "run_worker"]

log = logging.getLogger("danvan.worker")


def build_worker(
    client: Client,
    store: EventStore,
    *,
    task_queue: str = TASK_QUEUE,
    workflows: Sequence[type[Any]] = ALL_WORKFLOWS,
    max_cached_workflows: int = 500,
    rules: RulesActivities | None = None,
    bodies_path: Path | str | None = None,
    years: tuple[int, int] = CASE_YEARS,
    outbound: OutboundPolicy | None = None,
    secret: bytes | None = None,
    keep_deliveries: timedelta | None = None,
) -> Worker:
    """A worker for the case workflows and their activities, on `task_queue`.

    `max_cached_workflows` bounds the worker's memory (about 1 MiB a cached case: 500 cases take ~600 MiB, see
    bench/README.md): past it, the least recently used case is evicted and replayed from its history when it
    next has work.

    Webhooks (`activities.webhooks`) are sent only to the hosts `outbound` lets through (default: as the
    environment's settings say, `DANVAN_WEBHOOK_ALLOW_HOSTS`), signed with secrets opened under `secret` (default:
    the installation's); their attempts are kept `keep_deliveries` (default: `DANVAN_WEBHOOK_KEEP_DAYS`).
    """
    store_activities = EventStoreActivities(store)
    # Reads policy/ once: a bad file stops the worker.
    rules = rules or RulesActivities(bodies_path=bodies_path, years=years)
    rules.bind(store)  # the rule documents of the cases it starts go to this store's `rule_sets`
    commands = CaseCommandActivities(client, store, bodies_path)
    reports = ReportActivities(store)
    scan = StalledScanActivities(client, store)
    jobs = JobActivities(client, store)
    if outbound is None or secret is None or keep_deliveries is None:
        settings = Settings.from_env()
        outbound = outbound or OutboundPolicy.from_settings(settings)
        secret = secret if secret is not None else settings_key(settings)
        keep_deliveries = keep_deliveries or timedelta(days=settings.webhook_keep_days)
    scan = StalledScanActivities(client, store, keep_deliveries)
    # Imported here: the webhook activities read the feed through `api.feed`, whose package imports this module.
    from activities.webhooks import WebhookActivities

    webhooks = WebhookActivities(store, secret, outbound)
    return Worker(
        client,
        task_queue=task_queue,
        # The case workflows, and the stalled scan's (started by its Schedule, `ops.scan`).
        workflows=[*workflows, *([StalledScanWorkflow] if StalledScanWorkflow not in workflows else [])],
        activities=[
            store_activities.append_events,
            store_activities.read_stream,
            rules.load_case_rules,
            rules.case_rules_ref,
            rules.rule_documents,
            rules.load_plan_rules,
            rules.plan_rules_ref,
            commands.start_cases,
            commands.request_reports,
            commands.replace_bodies,
            reports.compile_report,
            scan.scan_stalled,
            webhooks.deliver_batch,
            webhooks.mark_failing,
            jobs.open_job,
            jobs.record_action,
            jobs.repair_case,
        ],
        max_cached_workflows=max_cached_workflows,
        # Notes each step that fails and is retried, so the stalled scan describes those cases only (`ops.steps`).
        interceptors=[StepFailureInterceptor(store)],
    )


async def run_worker(
    settings: Settings, database_url: str, stop: asyncio.Event | None = None, *, task_queue: str = TASK_QUEUE
) -> None:
    """Run a worker on `task_queue` until `stop` is set (or forever), then drain in-flight tasks and close."""
    configure_tracing(settings, "danvan-worker")  # off unless an OTLP endpoint is set
    store = await EventStore.open(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                                  timeout=settings.worker_db_timeout)
    try:
        secret = settings_key(settings)
        # A worker with another secret than the installation's could open none of its payloads and would retry
        # every workflow task for ever: it refuses to start instead.
        await check_installation_secret(store.pool, secret)
        # The SDK's metrics and danvan's appends on the worker's own port, the SDK core's logs as JSON lines
        # (`danvan.worker_metrics`).
        runtime = worker_runtime(settings)
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace, secret=secret,
                                   runtime=runtime.runtime)
            worker = build_worker(client, store, task_queue=task_queue,
                                  years=(settings.calendar_first_year, settings.calendar_last_year),
                                  outbound=OutboundPolicy.from_settings(settings), secret=secret,
                                  keep_deliveries=timedelta(days=settings.webhook_keep_days))
            log.info("worker polling task queue %r at %s", task_queue, settings.temporal_address)
            # The rule documents other workers stored, then those a replayed case still lacks (written after
            # this start), fetched while the worker runs (`workflows.rulebook`).
            await load_rule_book(store, RULE_BOOK)
            refill = asyncio.create_task(keep_rule_book(store, RULE_BOOK))
            try:
                async with worker:
                    await (stop.wait() if stop is not None else asyncio.Event().wait())
            finally:
                refill.cancel()
        finally:
            runtime.close()
    finally:
        await store.close()
