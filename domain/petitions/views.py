"""What people and the read model see of a petition case: the API view and the `cases` projection row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ..calendar import in_vietnam
from .model import PetitionState


class DeadlineView(BaseModel):
    key: str
    due_on: str
    due_at: datetime
    started_on: str
    amount: int
    unit: str
    variant: str | None
    legal_basis: str
    rule_ref: str
    statutory: bool
    extensions: int
    outcome: str
    approached: bool
    breached: bool
    met_at: datetime | None
    #: The date of the written act that met it (what its outcome is judged by); absent when none was dated.
    met_on: str | None = None


class CoordinationView(BaseModel):
    request_id: str
    subject: str
    body: str
    side: str
    due_on: str | None
    answered: bool
    overdue: bool


class RuleSetView(BaseModel):
    """The deadline rule set a case is counted under: the one in force on the day it was received, named by its
    version, the first day it applies to (none: the base set) and its digest (none in cases recorded before sets
    had one)."""

    version: str
    valid_from: str | None
    title: str
    digest: str | None


class CaseView(BaseModel):
    """The current state of a petition case as the API returns it."""

    case_id: str
    kind: str
    instance: int
    status: str
    version: int
    subject: str
    district: str | None
    commune: str | None
    source: str
    external_ref: str
    channel: str
    received_at: datetime
    lead_body: str | None
    officer: str | None
    bodies: list[str]
    complex: bool
    remote_area: bool
    suspended: bool
    withdrawn: bool
    overdue: bool
    next_due_at: datetime | None
    deadlines: list[DeadlineView]
    coordination: list[CoordinationView]
    decision: dict[str, str] | None
    parent_case_id: str | None
    linked_cases: list[str]
    front_supervision: str | None
    petitioner_ref: str | None
    forwarded_by_front: bool
    #: Absent from views a worker wrote before rule sets were shown (a client newer than its workers reads them).
    rules: RuleSetView | None = None


def _deadlines(state: PetitionState) -> list[DeadlineView]:
    out = []
    for key, d in sorted(state.deadlines.items(), key=lambda kv: kv[1].deadline.due_at):
        dl = d.deadline
        out.append(DeadlineView(
            key=key, due_on=dl.due_on.isoformat(), due_at=dl.due_at, started_on=dl.started_on.isoformat(),
            amount=dl.amount, unit=dl.unit, variant=dl.variant, legal_basis=dl.legal_basis, rule_ref=dl.rule_ref,
            statutory=dl.statutory, extensions=dl.extensions, outcome=d.outcome, approached=d.approached,
            breached=d.breached, met_at=d.met_at, met_on=d.met_on.isoformat() if d.met_on else None,
        ))
    return out


def _coordination(state: PetitionState) -> list[CoordinationView]:
    board = []
    for request in state.coordination.values():
        for body in request.bodies:
            d = state.deadlines.get(f"coordination.{request.request_id}.{body}")
            board.append(CoordinationView(
                request_id=request.request_id, subject=request.subject, body=body, side=request.sides.get(body, ""),
                due_on=d.deadline.due_on.isoformat() if d else None, answered=body in request.responses,
                overdue=bool(d and d.breached and d.pending),
            ))
    return board


def rule_set_view(state: PetitionState) -> RuleSetView:
    policy = state.rules.policy
    return RuleSetView(version=policy.version, valid_from=policy.valid_from.isoformat() if policy.valid_from else None,
                       title=policy.title, digest=policy.digest or None)


def case_view(state: PetitionState) -> CaseView:
    intake = state.intake
    due = state.next_due
    return CaseView(
        case_id=state.case_id, kind=state.kind.value, instance=state.instance, status=state.status.value,
        version=state.version, subject=intake.subject, district=intake.district, commune=intake.commune,
        source=intake.source, external_ref=intake.external_ref, channel=intake.channel,
        received_at=intake.received_at, lead_body=state.lead_body, officer=state.officer, bodies=list(state.bodies),
        complex=state.complex, remote_area=state.remote_area, suspended=state.suspended, withdrawn=state.withdrawn,
        overdue=state.overdue, next_due_at=due.due_at if due else None, deadlines=_deadlines(state),
        coordination=_coordination(state), decision=state.decision, parent_case_id=state.parent_case_id,
        linked_cases=list(state.linked_cases), front_supervision=state.front_supervision,
        petitioner_ref=intake.petitioner.ref, forwarded_by_front=intake.forwarded_by_front,
        rules=rule_set_view(state),
    )


def case_row(state: PetitionState) -> dict[str, Any]:
    """The `cases` read-model row (the workflow wraps it in the event store's `CaseRow`)."""
    view = case_view(state)
    summary = in_vietnam(view).model_dump(mode="json",
                                          exclude={"subject", "district", "commune", "source", "external_ref"})
    due = state.next_due
    return {
        "kind": state.kind.value,
        "status": state.status.value,
        "title": state.intake.subject,
        "lead_body": state.lead_body,
        "bodies": list(state.bodies),
        "district": state.intake.district,
        "commune": state.intake.commune,
        "source": state.intake.source,
        "external_ref": state.intake.external_ref,
        "received_at": state.intake.received_at,
        "due_at": due.due_at if due else None,
        "overdue": state.overdue,
        "summary": summary,
    }
