"""`StalledScanWorkflow`: one look of the stalled scan, started by its Temporal Schedule (`ops.scan`).

Not a case: it holds no stream and ends with its look. Its activity is tried three times; a look that still fails
ends the workflow as failed (recorded with its error in `stalled_scans`), and the Schedule's next start tries again.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.stalled import StalledScanActivities
    from ops.scan import ScanInfo, ScanInput

SCAN_TIMEOUT = timedelta(minutes=5)
SCAN_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3)


@workflow.defn
class StalledScanWorkflow:
    @workflow.run
    async def run(self, request: ScanInput) -> ScanInfo:
        return await workflow.execute_activity_method(
            StalledScanActivities.scan_stalled, request, start_to_close_timeout=SCAN_TIMEOUT, retry_policy=SCAN_RETRY)
