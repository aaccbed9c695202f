"""Client-side helpers to import a plan and follow the import (used by the API, the CLI and tests)."""

from __future__ import annotations

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from danvan.waits import rpc_timeout
from domain.common import SYSTEM, Actor
from domain.plan import PlanDocument
from domain.plan_cases import CASE_KIND, plan_case_id

from .client import CommandRefused, _refusal
from .plan import ImportRequest, ImportResult, PlanProgress, PlanStart, PlanWorkflow
from .shared import CASE_KIND as CASE_KIND_ATTR
from .shared import TASK_QUEUE


async def import_plan(
    client: Client,
    document: PlanDocument,
    *,
    apply_changes: bool = False,
    actor: Actor = SYSTEM,
    task_queue: str = TASK_QUEUE,
    history_limit: int | None = None,
) -> ImportResult:
    """Import a plan atomically (update-with-start on `plan-<id>`): the first import starts one task case per
    task; the same plan again changes nothing; an edited plan is refused (rule `plan.changed`, with what
    differs) unless `apply_changes`."""
    start = PlanStart(document=document, imported_by=actor)
    if history_limit is not None:
        start = start.model_copy(update={"history_limit": history_limit})
    operation = WithStartWorkflowOperation(
        PlanWorkflow.run, start, id=plan_case_id(document.id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(CASE_KIND_ATTR, CASE_KIND)]),
    )
    try:
        return await client.execute_update_with_start_workflow(
            PlanWorkflow.import_plan, ImportRequest(document=document, apply_changes=apply_changes, actor=actor),
            start_workflow_operation=operation, rpc_timeout=rpc_timeout(),
        )
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from exc


async def plan_progress(client: Client, plan_id: str) -> PlanProgress | None:
    """How many of the plan's task cases are started, and its report cycles."""
    handle = client.get_workflow_handle_for(PlanWorkflow.run, plan_case_id(plan_id))
    return await handle.query(PlanWorkflow.plan_progress, rpc_timeout=rpc_timeout())


__all__ = ["CommandRefused", "import_plan", "plan_progress"]
