"""The scheduled stalled scan's activity: one look (`ops.scan.run_scan`), written into `stalled_findings`."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from eventstore import EventStore
from ops.scan import ScanInfo, ScanInput, run_scan


class StalledScanActivities:
    """Holds the Temporal client (the scan describes workflows) and the event store; built in `worker.py`."""

    def __init__(self, client: Client, store: EventStore) -> None:
        self.client = client
        self.store = store

    @activity.defn(name="scan_stalled")
    async def scan_stalled(self, request: ScanInput) -> ScanInfo:
        return await run_scan(self.client, self.store, request.policy())
