"""Coordination between bodies, the same for every kind of case: the lead asks government, Party or Front
bodies for their part, each with its own sub-deadline, and records their answers.

Pure: standard library, pydantic and `domain` only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .calendar import CalendarRangeError, WorkingCalendar, end_of_day, local_date
from .common import DomainError, Event, Text
from .deadlines import Deadline, DeadlineRule, DeadlineState, add_deadlines, compute_deadline, meet_deadlines
from .jsontypes import Integer

BodyCode = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Z0-9_]+(:[A-Za-z0-9_.-]+)?$")]


class CoordinationTarget(Text):
    body: BodyCode
    side: Literal["party", "state", "front"]
    #: The body's period. Left out: the period the case's rules give a coordinating body, where they give one
    #: (a voters' petition, `voter_petition.coordination_reply`); elsewhere it is required.
    days: Integer | None = Field(default=None, ge=1, le=90)
    unit: Literal["calendar", "working"] = "working"


class RequestCoordination(Text):
    """Ask several bodies for their part, each with its own sub-deadline."""

    type: Literal["request_coordination"] = "request_coordination"
    reason: str | None = Field(default=None, max_length=2000)
    subject: str = Field(min_length=1, max_length=1000)
    bodies: list[CoordinationTarget] = Field(min_length=1, max_length=30)


class Respond(Text):
    """A coordinating body's answer to a request."""

    type: Literal["respond"] = "respond"
    reason: str | None = Field(default=None, max_length=2000)
    request_id: str = Field(min_length=1, max_length=50)
    body: BodyCode
    response: str = Field(min_length=1, max_length=20000)


class CoordinationRequested(Event):
    request_id: str
    subject: str
    bodies: list[str]
    sides: dict[str, str]
    deadlines: list[Deadline]


class CoordinationResponded(Event):
    request_id: str
    body: str
    response: str


class CoordinationRequest(BaseModel):
    """A request for contributions from other bodies, and the answers received."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    subject: str
    bodies: list[str]
    sides: dict[str, str]
    responses: dict[str, str] = Field(default_factory=dict)


def owing(coordination: dict[str, CoordinationRequest]) -> list[str]:
    """The bodies asked for a contribution that have not answered yet, in the order they were asked."""
    out: list[str] = []
    for request in coordination.values():
        out += [b for b in request.bodies if b not in request.responses and b not in out]
    return out


def deadline_key(request_id: str, body: str) -> str:
    return f"coordination.{request_id}.{body}"


#: The basis a coordination sub-deadline records: the lead body set it, no law did (readers show it in their
#: own language by this value).
SUB_DEADLINE_BASIS = "sub-deadline set by the lead body"

def sub_deadlines(request_id: str, targets: list[CoordinationTarget], calendar: WorkingCalendar,
                  now: datetime, legal: DeadlineRule | None = None) -> list[Deadline]:
    """One sub-deadline per body, counted from today on the case's recorded calendar.

    `legal`: the period the law gives a body asked to coordinate. A body given no `days` gets that period, with
    its legal basis; a body given `days` gets them when they end no later than the legal period, and the request
    is refused when they would end after it. Without `legal`, every body needs its `days`.
    """
    today = local_date(now)
    out = []
    for target in targets:
        try:
            by_law = compute_deadline(legal, today, calendar) if legal is not None else None
            if target.days is None:
                if by_law is None:
                    raise DomainError("coordination.days",
                                      f"{target.body}: give the body its period (days); no rule sets one")
                out.append(by_law.model_copy(update={"key": deadline_key(request_id, target.body)}))
                continue
            due_on = calendar.add_days(today, target.days, target.unit)
        except CalendarRangeError as exc:
            raise DomainError("calendar.out_of_range", str(exc)) from exc
        if by_law is not None and due_on > by_law.due_on:
            raise DomainError("coordination.beyond_legal_period",
                              f"{by_law.legal_basis}: a body asked to coordinate replies within {by_law.amount} "
                              f"{'working ' if by_law.unit == 'working' else ''}days, by "
                              f"{by_law.due_on.isoformat()}; {target.body} cannot be given until "
                              f"{due_on.isoformat()}")
        out.append(Deadline(
            key=deadline_key(request_id, target.body), started_on=today, due_on=due_on, due_at=end_of_day(due_on),
            warn_at=end_of_day(max(today, due_on - timedelta(days=1))), amount=target.days, unit=target.unit,
            variant=None, legal_basis=SUB_DEADLINE_BASIS, rule_ref="coordination",
            statutory=False, calendar_source=calendar.source,
        ))
    return out


def requested(coordination: dict[str, CoordinationRequest], deadlines: dict[str, DeadlineState],
              ev: CoordinationRequested) -> dict[str, Any]:
    """The state changes of a request: the request kept, its sub-deadlines started."""
    request = CoordinationRequest(request_id=ev.request_id, subject=ev.subject, bodies=ev.bodies, sides=ev.sides)
    return {"coordination": {**coordination, ev.request_id: request},
            "deadlines": add_deadlines(deadlines, ev.deadlines)}


def responded(coordination: dict[str, CoordinationRequest], deadlines: dict[str, DeadlineState],
              ev: CoordinationResponded) -> dict[str, Any]:
    """The state changes of an answer: kept with its request, the body's sub-deadline met."""
    request = coordination[ev.request_id]
    answered = request.model_copy(update={"responses": {**request.responses, ev.body: ev.response}})
    return {"coordination": {**coordination, ev.request_id: answered},
            "deadlines": meet_deadlines(deadlines, [deadline_key(ev.request_id, ev.body)], ev.occurred_at)}


def decide_request(coordination: dict[str, CoordinationRequest], cmd: RequestCoordination, calendar: WorkingCalendar,
                   now: datetime, envelope: dict[str, Any], *, lead: list[str],
                   legal: DeadlineRule | None = None) -> CoordinationRequested:
    """The event of a request, or a `DomainError`: a body named twice, the lead asking itself, a body without
    its period, or one given longer than the `legal` period (see `sub_deadlines`)."""
    bodies = [t.body for t in cmd.bodies]
    if len(set(bodies)) != len(bodies):
        raise DomainError("coordination.duplicate_body", "a body is named twice")
    if any(b in lead for b in bodies):
        raise DomainError("coordination.lead_body", "the lead body cannot coordinate with itself")
    request_id = f"R{len(coordination) + 1}"
    return CoordinationRequested(**envelope, request_id=request_id, subject=cmd.subject, bodies=bodies,
                                 sides={t.body: t.side for t in cmd.bodies},
                                 deadlines=sub_deadlines(request_id, list(cmd.bodies), calendar, now, legal))


def decide_response(coordination: dict[str, CoordinationRequest], cmd: Respond,
                    envelope: dict[str, Any]) -> CoordinationResponded:
    """The event of an answer, or a `DomainError`: no such request, a body not asked, or asked and answered."""
    request = coordination.get(cmd.request_id)
    if request is None:
        raise DomainError("respond.unknown_request", f"there is no coordination request {cmd.request_id}")
    if cmd.body not in request.bodies:
        raise DomainError("respond.not_asked", f"{cmd.body} was not asked in {cmd.request_id}")
    if cmd.body in request.responses:
        raise DomainError("respond.already", f"{cmd.body} has already answered {cmd.request_id}")
    return CoordinationResponded(**envelope, request_id=cmd.request_id, body=cmd.body, response=cmd.response)
