"""Helpers for workflow tests: intakes, actors, and reading a case back from its stream."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from temporalio.client import WorkflowHandle

from activities.rules import known_rules
from domain.common import Actor
from domain.petitions import REGISTRY, Petitioner, PetitionIntake, fold
from domain.petitions.commands import CommandRequest
from domain.petitions.views import CaseView
from domain.rulesets import with_rules
from eventstore import EventStore
from workflows.petition import PetitionWorkflow
from workflows.plan_task import PlanTaskWorkflow, TaskView

OFFICER = Actor(id="can-bo-01", role="body", body="UBND_TINH")


def intake(kind: str, received_at: datetime, **overrides: Any) -> PetitionIntake:
    data: dict[str, Any] = {
        "source": "test-backoffice",
        "external_ref": f"ref-{uuid.uuid4().hex[:10]}",
        "kind": kind,
        "channel": "post",
        "received_at": received_at,
        "petitioner": Petitioner(name="Trần Văn Bình", address="Thôn Đông, xã Nam Sách"),
        "subject": "Khiếu nại quyết định thu hồi đất",
        "content": "Ông Bình khiếu nại quyết định thu hồi đất nông nghiệp của UBND xã.",
        "district": "Nam Sách",
        "commune": "Nam Hồng",
        "receiving_body": "UBND_TINH",
    }
    data.update(overrides)
    return PetitionIntake.model_validate(data)


def command(payload: dict[str, Any], actor: Actor = OFFICER, command_id: str | None = None) -> CommandRequest:
    return CommandRequest.model_validate({"command": payload, "actor": actor, "command_id": command_id})


async def folded(store: EventStore, case_id: str) -> Any:
    """The state rebuilt from the PostgreSQL stream alone."""
    events = await store.read_stream(case_id)
    book = await known_rules(store, events)
    return fold(with_rules([
        REGISTRY.parse(e.type, occurred_at=e.occurred_at, actor=e.actor, reason=e.reason,
                       legal_basis=e.legal_basis, data=e.data)
        for e in events
    ], book))


async def case_view(handle: WorkflowHandle[Any, Any]) -> CaseView:
    """The view of an opened petition case; the test fails if the case is not open yet."""
    view = await handle.query(PetitionWorkflow.view)
    assert view is not None, f"{handle.id} is not open"
    return view


async def task_view(handle: WorkflowHandle[Any, Any]) -> TaskView:
    """The view of an assigned plan task; the test fails if the task is not assigned yet."""
    view = await handle.query(PlanTaskWorkflow.view)
    assert view is not None, f"{handle.id} is not assigned"
    return view
