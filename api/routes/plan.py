"""Importing the action plan: `POST /v1/plan/import` starts one plan task case per task, idempotently."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from activities.plan_loader import PlanFileError, load_plan, parse_plan
from domain.common import Actor
from workflows.client import CommandRefused
from workflows.plan import ImportResult
from workflows.plan_client import import_plan

from ..auth import require
from ..deps import Temporal
from ..errors import ApiError, FieldError, error_responses
from ..routing import ApiRoute
from ..tokens import Principal

router = APIRouter(prefix="/v1/plan", tags=["plan"], route_class=ApiRoute)


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Import the action plan",
    responses=error_responses(401, 403, 409, 422, 503),
    openapi_extra={"requestBody": {"required": False, "content": {
        "application/yaml": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}},
    }}},
)
async def import_action_plan(
    request: Request,
    temporal: Temporal,
    principal: Annotated[Principal, Depends(require("admin"))],
    apply_changes: Annotated[bool, Query(description="apply the changes of an edited plan")] = False,
) -> ImportResult:
    """Start a plan task case for every task of a plan document (YAML or JSON in the body; with no body, the
    shipped plan `plan/action_plan.yaml`). Importing the same plan again starts nothing (`outcome`
    "unchanged"); an edited plan is refused with 409 and what differs, unless `apply_changes=true`, which
    starts the added tasks (changed and removed tasks are reported in `diff`, not altered). Role: `admin`.
    """
    body = (await request.body()).decode("utf-8")
    try:
        document = parse_plan(body, source="the request body") if body.strip() else load_plan()
    except PlanFileError as exc:
        fields = [FieldError(field=p.task_id or p.where or "body", rule=p.rule, message=p.message)
                  for p in exc.problems] or [FieldError(field="body", rule="plan_invalid", message=str(exc))]
        raise ApiError(422, "validation_failed", "the plan document is not valid", fields=fields) from exc
    actor = Actor(id=principal.label, role=principal.role, body=principal.body_id)
    try:
        return await import_plan(await temporal.get(), document, apply_changes=apply_changes, actor=actor)
    except CommandRefused as exc:
        raise ApiError(409, exc.rule, exc.message) from exc
