"""The scheduled stalled scan's activity: one look (`ops.scan.run_scan`), written into `stalled_findings`; and,
at each look, the webhook delivery attempts older than their retention deleted (`api.subscriptions.
prune_deliveries`, bounded batches)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from eventstore import EventStore
from ops.scan import ScanInfo, ScanInput, run_scan

log = logging.getLogger("danvan.ops.scan")

#: How long delivery attempts are kept unless the worker is told otherwise (`DANVAN_WEBHOOK_KEEP_DAYS`).
KEEP_DELIVERIES = timedelta(days=30)


class StalledScanActivities:
    """Holds the Temporal client (the scan describes workflows), the event store and how long delivery attempts
    are kept; built in `worker.py`."""

    def __init__(self, client: Client, store: EventStore, keep_deliveries: timedelta = KEEP_DELIVERIES) -> None:
        self.client = client
        self.store = store
        self.keep_deliveries = keep_deliveries

    @activity.defn(name="scan_stalled")
    async def scan_stalled(self, request: ScanInput) -> ScanInfo:
        pruned = await self.prune()
        info = await run_scan(self.client, self.store, request.policy())
        return info.model_copy(update={"deliveries_pruned": pruned})

    async def prune(self) -> int:
        """The cleanup of old delivery attempts; one that fails is logged and left to the next look."""
        from api.subscriptions import prune_deliveries  # the API's package imports the worker's modules

        try:
            pruned = await prune_deliveries(self.store.pool, datetime.now(UTC) - self.keep_deliveries)
        except Exception as exc:
            log.warning("old webhook deliveries not deleted: %s", exc)
            return 0
        if pruned:
            log.info("%d webhook delivery attempts older than %s deleted", pruned, self.keep_deliveries)
        return pruned
