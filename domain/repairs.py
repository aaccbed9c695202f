"""Operators' repairs of a case, as commands and events of the case's own stream (every kind of case).

A repair is what an operator did to set a stalled case going again: retry a failing step, re-run the case from
its last good point, nudge the body that owes an answer, reassign the case to another body. Each is recorded
in the case's stream as a `RepairRecorded` event with the operator (from the login, never from the request),
the reason (required) and what was done, so the audit trail shows the machinery's repairs next to the
decisions. A nudge also records the reminder sent (`BodyNudged`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from .common import Actor, Event, Text, require

RepairAction = Literal["retry", "reset", "nudge", "reassign"]
REPAIR_ACTIONS: tuple[RepairAction, ...] = ("retry", "reset", "nudge", "reassign")
#: Roles that may repair a case.
REPAIR_ROLES = frozenset({"operator", "admin"})
#: A reason must say something: at least this many characters after trimming.
MIN_REASON = 10



def stated_reason(value: str, what: str) -> str:
    """`value` without the spaces at either end, if it still says something (`MIN_REASON` characters): the
    reason an operator gives for `what` (a repair, a decision on a repair job)."""
    value = value.strip()
    if len(value) < MIN_REASON:
        raise ValueError(f"{what} needs a reason of at least {MIN_REASON} characters")
    return value

class RecordRepair(Text):
    """Record a repair in the case's stream (and, for `nudge` and `reassign`, carry it out)."""

    #: Left out of the request's digest (`domain.idempotency`): what the tool saw differs between retries.
    IDEMPOTENCY_EXCLUDE: ClassVar[tuple[str, ...]] = ("detail",)

    type: Literal["record_repair"] = "record_repair"
    action: RepairAction
    reason: str = Field(min_length=MIN_REASON, max_length=2000)
    #: The body to nudge (default: every body that owes the case something) or to reassign the case to.
    body: str | None = Field(default=None, min_length=1, max_length=100)
    #: What the machinery did, as the operator's tool saw it (the activity retried, the reset point...).
    detail: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reason")
    @classmethod
    def _said_something(cls, value: str) -> str:
        return stated_reason(value, "a repair")


class RepairRecorded(Event):
    """An operator repaired the case: `action`, with `reason` and `actor` in the envelope."""

    case_id: str
    action: RepairAction
    detail: dict[str, Any] = Field(default_factory=dict)


class BodyNudged(Event):
    """A reminder sent to a body that owes the case an answer (`notice` is the text sent)."""

    case_id: str
    body: str
    notice: str


def nudge_notice(case_id: str, body: str, reason: str) -> str:
    return f"Đề nghị {body} khẩn trương xử lý hồ sơ {case_id}. Lý do nhắc: {reason}"


def decide_repair(
    case_id: str, command: RecordRepair, actor: Actor, now: datetime, *, owing: list[str], closed: bool,
) -> list[Event]:
    """The events of a repair. `owing`: the bodies the case waits on; `closed`: nothing more is expected.

    `reassign` is not decided here: each kind of case reassigns through its own domain (see the workflows).
    """
    require(actor.role in REPAIR_ROLES, "repair.role", f"only an operator may repair a case (not {actor.role})")
    require(not closed or command.action in ("retry", "reset"), f"repair.{command.action}.closed",
            f"the case is closed: there is nobody to {command.action}")
    base: dict[str, Any] = {"occurred_at": now, "actor": actor.label, "reason": command.reason}
    events: list[Event] = [
        RepairRecorded(**base, case_id=case_id, action=command.action,
                       detail={**command.detail, **({"body": command.body} if command.body else {})})
    ]
    if command.action == "nudge":
        targets = [command.body] if command.body else owing
        require(bool(targets), "repair.nudge.nobody", "no body owes this case anything: there is nobody to nudge")
        require(command.body is None or command.body in owing, "repair.nudge.body",
                f"{command.body} owes this case nothing (bodies owing: {', '.join(owing) or 'none'})")
        events += [BodyNudged(**base, case_id=case_id, body=b, notice=nudge_notice(case_id, b, command.reason))
                   for b in targets]
    return events


REPAIR_EVENTS: tuple[type[Event], ...] = (RepairRecorded, BodyNudged)
