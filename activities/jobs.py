"""The repair jobs' activities (`ops.jobs`): write a job's rows, its actions, and repair one of its cases."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.client import Client

from eventstore import EventStore
from ops.job_types import ActionRecord, CaseResult, CaseTask, JobSpec
from ops.jobs import finish_case, insert_job, record_action, repair_case
from ops.scan import refresh_after_repair

#: Seconds between two heartbeats of a case's repair: a worker lost mid-case is noticed within the workflow's
#: heartbeat timeout, not the activity's whole timeout.
HEARTBEAT_EVERY = 2.0
#: How many times the job's activity tries a case whose Temporal calls fail before counting it as failed.
CASE_ATTEMPTS = 5


class JobActivities:
    """Holds the Temporal client (a repair acts on the case's workflow) and the event store; built in `worker.py`."""

    def __init__(self, client: Client, store: EventStore) -> None:
        self.client = client
        self.store = store

    @activity.defn(name="open_repair_job")
    async def open_job(self, spec: JobSpec) -> bool:
        """Write the job's rows if the API did not (it writes them right after starting the workflow)."""
        return await insert_job(self.store.pool, spec)

    @activity.defn(name="record_repair_job_action")
    async def record_action(self, record: ActionRecord) -> None:
        await record_action(self.store.pool, record)

    @activity.defn(name="repair_job_case")
    async def repair_case(self, task: CaseTask) -> CaseResult:
        """Repair one case of the job and write its outcome; the same case again records nothing twice."""
        last = activity.info().attempt >= CASE_ATTEMPTS
        beating = asyncio.create_task(_heartbeat())
        try:
            run = await repair_case(self.client, self.store, task, last_attempt=last)
            await finish_case(self.store.pool, task.job_id, task.position, run.result, run.detail)
            if run.result.outcome == "done":  # the stalled set shows the repair at once, as after the API's
                await refresh_after_repair(self.client, self.store, task.case_id)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        return run.result


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY)
