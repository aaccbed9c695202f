"""Client-side helpers of the repair jobs (the API's, the tests'): start a job, send it a decision.

Never imported by workflow code: these functions talk to the Temporal server.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from danvan.waits import rpc_timeout
from ops.job_types import CONTINUE_AFTER, Decision, JobDecision, JobProgress, JobSpec, JobStart, workflow_id
from ops.jobs import initial_state

from .repair_job import RepairJobWorkflow
from .shared import TASK_QUEUE


class JobRefused(Exception):
    """A decision the job does not take now: `rule` names why (`job.state`, `job.self_approval`...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


async def start_job(client: Client, spec: JobSpec, *, task_queue: str = TASK_QUEUE,
                    continue_after: int = CONTINUE_AFTER) -> None:
    """Start the job's workflow; the same job again (a repeated request) finds the one started."""
    start = JobStart(spec=spec, state=initial_state(spec), continue_after=continue_after)
    await client.start_workflow(
        RepairJobWorkflow.run, start, id=workflow_id(spec.job_id),
        task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, rpc_timeout=rpc_timeout())


async def decide(client: Client, job_id: str, decision: Decision, request: JobDecision) -> JobProgress:
    """Send `decision` to the job; JobRefused when its workflow refuses it or has ended."""
    handle = client.get_workflow_handle_for(RepairJobWorkflow.run, workflow_id(job_id))
    update = getattr(RepairJobWorkflow, decision)
    try:
        progress: JobProgress = await handle.execute_update(update, request, rpc_timeout=rpc_timeout())
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type:
            raise JobRefused(cause.type, cause.message) from None
        raise JobRefused("job.state", f"job {job_id} has ended") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise JobRefused("job.state", f"job {job_id} has ended") from None
        raise
    return progress
