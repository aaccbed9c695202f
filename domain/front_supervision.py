"""Front supervision of one petition case: the escalation ladder as a pure decider (docs/legal-reference.md §4;
docs/architecture.md, Front supervision).

The provincial Fatherland Front committee (UBMTTQ tỉnh) follows a petition it forwarded, or one whose deadline
was missed, and climbs a ladder when the resolver does not act:

    WATCHING ─(watched deadline − N days)─▶ REMINDED ─(breach)─▶ URGED (văn bản đôn đốc)
    URGED ─▶ RECOMMENDATION_SENT (văn bản kiến nghị, to the resolver or its direct superior)
          ─▶ RESPONSE_RECEIVED ─▶ SATISFIED ─▶ CLOSED
                               └▶ DISPUTED ─▶ ESCALATED (party committee / HĐND supervision) ─▶ CLOSED
    RECOMMENDATION_SENT ─(no answer within the policy period)─▶ ESCALATED (automatically, by the system)

Every waiting period is a policy value (`front.*` in `policy/deadlines.yaml`) read from the rules recorded when
the supervision opened, so replay computes the same dates. This module holds the commands, events, state,
`decide`/`evolve`/`fold` and the read views of a supervision; it mirrors `domain.petitions` at a smaller scale.

Pure: standard library, pydantic and `domain` only. Time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import singledispatch
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .calendar import CalendarRangeError, end_of_day, in_vietnam, local_date
from .common import Actor, DomainError, Event, EventRegistry, Text, envelope, require
from .coordination import BodyCode
from .deadlines import (
    CaseRules,
    Deadline,
    DeadlineApproaching,
    DeadlineState,
    MarkDeadline,
    UnknownDeadlineRule,
    add_deadlines,
    cancel_pending,
    compute_deadline,
    mark_deadline,
    meet_deadlines,
)
from .petitions.views import DeadlineView
from .repairs import REPAIR_EVENTS, BodyNudged, RepairRecorded
from .rulesets import RecordsCaseRules, RulesRef

#: The body that supervises: the Standing Board of the provincial Front committee (docs/legal-reference.md §6).
FRONT_BODY = "UBMTTQ_TINH"
#: Where an unanswered recommendation is escalated by the system: the provincial Party committee, which
#: "receives Front escalations" (docs/legal-reference.md §6). A person escalating names the body explicitly.
PARTY_COMMITTEE_BODY = "TINH_UY"
CASE_KIND = "front_supervision"

#: Policy keys of the escalation ladder (docs/legal-reference.md §4).
REMINDER_BEFORE = "front.reminder_before"
URGE_AFTER_BREACH = "front.urge_after_breach"
RECOMMENDATION_RESPONSE = "front.recommendation_response"
SUPERIOR_RESPONSE = "front.superior_response"
#: Deadlines whose breach, with no answer, escalates the supervision (docs/legal-reference.md §4 step 4).
RESPONSE_KEYS = frozenset({RECOMMENDATION_RESPONSE, SUPERIOR_RESPONSE, "complaint.front_recommendation_answer"})
#: The legal period of the resolver's answer to the Front's recommendation, by the supervised case's kind
#: (Luật Khiếu nại 2011, Điều 66 khoản 2), used when the supervision's recorded policy has it.
LEGAL_RESPONSE = {"complaint": "complaint.front_recommendation_answer"}

SUPERVISION_BASIS = "Luật MTTQ 2015, Chương V; NQLT 403/2017/NQLT-UBTVQH14-CP-ĐCTUBTWMTTQVN"
ESCALATION_BASIS = {
    "party_committee": "Quyết định 217-QĐ/TW (12/12/2013); Luật MTTQ 2015, Chương V",
    "hdnd_supervision": "Luật Hoạt động giám sát của Quốc hội và HĐND 2015, Điều 58",
}

Trigger = Literal["breach", "front_forwarded", "manual"]
EscalationTarget = Literal["party_committee", "hdnd_supervision"]


class SupervisionStatus(StrEnum):
    WATCHING = "watching"
    REMINDED = "reminded"
    URGED = "urged"
    RECOMMENDATION_SENT = "recommendation_sent"
    RESPONSE_RECEIVED = "response_received"
    SATISFIED = "satisfied"
    DISPUTED = "disputed"
    ESCALATED = "escalated"
    CLOSED = "closed"


S = SupervisionStatus
#: Before the Front has written anything formal: a person may still end the watch (the case was resolved).
EARLY = frozenset({S.WATCHING, S.REMINDED, S.URGED})
#: Ends of the ladder a supervision may be closed from without saying why.
SETTLED = frozenset({S.SATISFIED, S.ESCALATED})


# -- commands -----------------------------------------------------------------------------------------


class Command(Text):
    """Fields every command may carry: why (a person's reason)."""

    reason: str | None = Field(default=None, max_length=2000)


class Open(Command):
    """Internal: the first command of a supervision, made by the workflow from its start input."""

    type: Literal["open"] = "open"
    supervision_id: str = Field(min_length=1, max_length=200)
    case_id: str = Field(min_length=1, max_length=200)
    case_kind: str = Field(min_length=1, max_length=50)
    resolver: str | None = Field(default=None, max_length=64)
    trigger: Trigger
    rules: CaseRules
    #: The digests of `rules`, recorded instead of them (the watched case's, when it names its rules by digest).
    rules_ref: RulesRef | None = None
    watched_due: Deadline | None = None


class Remind(Command):
    """Nhắc: an informal reminder to the resolver before its deadline (docs/legal-reference.md §4 step 2)."""

    type: Literal["remind"] = "remind"
    to_body: BodyCode | None = None


class Urge(Command):
    """Đôn đốc: a written reminder to the resolver, once its deadline was missed (§4 step 3)."""

    type: Literal["urge"] = "urge"
    doc_no: str = Field(min_length=1, max_length=100)
    to_body: BodyCode | None = None


class SendRecommendation(Command):
    """Văn bản kiến nghị to the resolver or its direct superior; the recipient must answer within policy days."""

    type: Literal["send_recommendation"] = "send_recommendation"
    to_body: BodyCode
    doc_no: str = Field(min_length=1, max_length=100)


class RecordResponse(Command):
    """The recipient's written answer to the recommendation."""

    type: Literal["record_response"] = "record_response"
    body: BodyCode
    summary: str = Field(min_length=1, max_length=20000)


class AcceptResponse(Command):
    """The Front is satisfied with the answer."""

    type: Literal["accept_response"] = "accept_response"


class Dispute(Command):
    """The Front does not accept the answer; the reason is required."""

    type: Literal["dispute"] = "dispute"
    reason: str = Field(min_length=1, max_length=2000)


class Escalate(Command):
    """Report to the same-level Party committee, or propose the case for HĐND supervision (§4 step 5)."""

    type: Literal["escalate"] = "escalate"
    target: EscalationTarget
    to_body: BodyCode


class Close(Command):
    """End the supervision: after a satisfied answer or an escalation, or earlier with a reason."""

    type: Literal["close"] = "close"



FrontCommand = Annotated[
    Open | Remind | Urge | SendRecommendation | RecordResponse | AcceptResponse | Dispute | Escalate | Close
    | MarkDeadline,
    Field(discriminator="type"),
]

#: Commands that only the workflow itself issues; refused when they come from outside.
INTERNAL = frozenset({"open", "deadline"})

COMMAND_TYPES: list[str] = [
    "remind", "urge", "send_recommendation", "record_response", "accept_response", "dispute", "escalate", "close",
]


class FrontCommandRequest(Text):
    """One command as an Update carries it: the command, who sends it, and an id that makes a retry a no-op."""

    command: FrontCommand
    actor: Actor
    command_id: str | None = Field(default=None, max_length=200)


# -- events -------------------------------------------------------------------------------------------


class FrontWatchStarted(RecordsCaseRules):
    """The supervision opens, counted under the watched case's rules (by `rules_ref`, or in full as before)."""

    supervision_id: str
    case_id: str
    case_kind: str
    resolver: str | None = None
    trigger: Trigger
    watched_due: Deadline | None = None
    deadlines: list[Deadline] = Field(default_factory=list)


class FrontReminded(Event):
    to_body: str | None = None
    #: True for the internal reminder the system records when the watched deadline approaches.
    automatic: bool = False


class FrontUrged(Event):
    to_body: str
    doc_no: str


class FrontRecommendationSent(Event):
    to_body: str
    doc_no: str
    to_superior: bool
    deadline: Deadline


class FrontResponseReceived(Event):
    body: str
    summary: str


class FrontResponseAccepted(Event):
    pass


class FrontResponseDisputed(Event):
    """Why the answer is not accepted is the envelope's `reason`."""


class FrontEscalated(Event):
    target: EscalationTarget
    to_body: str
    #: True when the system escalated because the answer period passed with no answer.
    automatic: bool = False
    #: The deadline whose breach caused an automatic escalation.
    after_deadline: str | None = None


class FrontSupervisionClosed(Event):
    from_status: str



class DeadlineBreached(Event):
    key: str
    due_at: str
    #: Deadlines this breach starts (the missed watched deadline starts the urge period).
    deadlines: list[Deadline] = Field(default_factory=list)


REGISTRY = EventRegistry(
    FrontWatchStarted, FrontReminded, FrontUrged, FrontRecommendationSent, FrontResponseReceived,
    FrontResponseAccepted, FrontResponseDisputed, FrontEscalated, FrontSupervisionClosed, DeadlineApproaching,
    DeadlineBreached, *REPAIR_EVENTS,
)


# -- state --------------------------------------------------------------------------------------------


class Step(BaseModel):
    """One step of the ladder as it happened (a reminder, urge, recommendation, answer or escalation)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    to_body: str | None = None
    doc_no: str | None = None
    #: For an answer: who answered and what it says.
    body: str | None = None
    summary: str | None = None
    #: For a recommendation: whether it went to the resolver's superior; for an escalation: its target.
    to_superior: bool | None = None
    target: str | None = None
    automatic: bool = False


class SupervisionState(BaseModel):
    """Everything decided so far about one supervision (a fold of its events)."""

    model_config = ConfigDict(frozen=True)

    supervision_id: str
    case_id: str
    case_kind: str
    resolver: str | None = None
    trigger: Trigger
    status: SupervisionStatus = S.WATCHING
    version: int = 0
    opened_at: datetime
    rules: CaseRules
    watched_due: Deadline | None = None
    deadlines: dict[str, DeadlineState] = Field(default_factory=dict)
    reminders: list[Step] = Field(default_factory=list)
    urges: list[Step] = Field(default_factory=list)
    recommendations: list[Step] = Field(default_factory=list)
    responses: list[Step] = Field(default_factory=list)
    dispute_reason: str | None = None
    escalations: list[Step] = Field(default_factory=list)
    closed_at: datetime | None = None

    @property
    def recommendation_to(self) -> str | None:
        """Who was sent the latest recommendation (and must answer it)."""
        return self.recommendations[-1].to_body if self.recommendations else None

    @property
    def escalation(self) -> Step | None:
        """The latest escalation (None: not escalated)."""
        return self.escalations[-1] if self.escalations else None

    @property
    def bodies(self) -> list[str]:
        """Every body the supervision concerns: the Front, the resolver, recipients of its letters."""
        out: list[str] = []
        for b in (FRONT_BODY, self.resolver, *(s.to_body for s in (*self.urges, *self.recommendations,
                                                                      *self.escalations))):
            if b and b not in out:
                out.append(b)
        return out

    @property
    def overdue(self) -> bool:
        """A deadline passed and nobody has acted on it yet."""
        return any(d.pending and d.breached for d in self.deadlines.values())

    @property
    def next_due(self) -> Deadline | None:
        """The earliest deadline still pending."""
        pending = [d.deadline for d in self.deadlines.values() if d.pending]
        return min(pending, key=lambda d: d.due_at) if pending else None

    @property
    def mirrored_key(self) -> str | None:
        """The key of the watched petition deadline when the supervision mirrors it (not on a breach)."""
        w = self.watched_due
        return w.key if w is not None and w.key in self.deadlines else None


# -- decide -------------------------------------------------------------------------------------------


def _policy_deadline(rules: CaseRules, key: str, start: date | datetime) -> Deadline:
    """A `front.*` deadline on the recorded calendar; a missing rule or a date off the calendar refuses."""
    try:
        return compute_deadline(rules.policy.rule(key), start, rules.calendar)
    except UnknownDeadlineRule as exc:
        raise DomainError("policy.missing_rule", str(exc)) from exc
    except CalendarRangeError as exc:
        raise DomainError("calendar.out_of_range", str(exc)) from exc


def _urge_deadline(rules: CaseRules, watched: Deadline | None, now: datetime) -> Deadline:
    """The period to send the đôn đốc, counted from the breach: the day after the watched due date."""
    if watched is not None and watched.due_at < now:
        return _policy_deadline(rules, URGE_AFTER_BREACH, watched.due_on + timedelta(days=1))
    return _policy_deadline(rules, URGE_AFTER_BREACH, now)


def _mirror(rules: CaseRules, watched: Deadline, now: datetime) -> Deadline:
    """The watched deadline as the Front follows it: same due date and legal basis, warned (reminded)
    `front.reminder_before` days before it, never before the day the watch starts."""
    try:
        lead = rules.policy.rule(REMINDER_BEFORE)
    except UnknownDeadlineRule as exc:
        raise DomainError("policy.missing_rule", str(exc)) from exc
    warn_on = watched.due_on
    if lead.unit == "calendar":
        warn_on -= timedelta(days=lead.amount)
    else:
        try:
            for _ in range(lead.amount):
                warn_on -= timedelta(days=1)
                while not rules.calendar.is_working_day(warn_on):
                    warn_on -= timedelta(days=1)
        except CalendarRangeError as exc:
            raise DomainError("calendar.out_of_range", str(exc)) from exc
    return watched.model_copy(update={"warn_at": end_of_day(max(warn_on, local_date(now)))})


def _pending(state: SupervisionState, key: str) -> DeadlineState | None:
    d = state.deadlines.get(key)
    return d if d is not None and d.pending else None


def decide(state: SupervisionState | None, command: FrontCommand, actor: Actor, now: datetime) -> list[Event]:
    """The events a command produces on `state` at `now`, or a `DomainError` naming the rule that refuses it.

    Pure: nothing is read but the arguments. A refused command produces nothing.
    """
    if isinstance(command, Open):
        return _open(state, command, actor, now)
    if state is None:
        raise DomainError("supervision.not_found", "the supervision has not been opened yet")
    kind = getattr(command, "type", "")
    require(state.status != S.CLOSED, "supervision.closed", "the supervision is closed; nothing more can happen")
    handler = _DECIDERS.get(type(command))
    if handler is None:
        raise DomainError("command.unknown", f"`{kind}` is not a command of a Front supervision")
    events: list[Event] = handler(state, command, actor, now)
    return events


def _open(state: SupervisionState | None, cmd: Open, actor: Actor, now: datetime) -> list[Event]:
    """Start watching. On a breach (or a watched deadline already past) the urge period starts at once;
    otherwise the watched deadline is mirrored, with its reminder `front.reminder_before` days ahead."""
    require(state is None, "supervision.exists", "the supervision was already opened")
    w = cmd.watched_due
    if cmd.trigger == "breach" or (w is not None and w.due_at < now):
        deadlines = [_urge_deadline(cmd.rules, w, now)]
    elif w is not None:
        deadlines = [_mirror(cmd.rules, w, now)]
    else:
        deadlines = []  # a manual watch of a case with no pending deadline: the Front acts when it chooses
    return [FrontWatchStarted(
        **envelope(cmd, actor, now, SUPERVISION_BASIS), supervision_id=cmd.supervision_id, case_id=cmd.case_id,
        case_kind=cmd.case_kind, resolver=cmd.resolver, trigger=cmd.trigger, rules=cmd.rules, rules_ref=cmd.rules_ref,
        watched_due=w,
        deadlines=deadlines,
    )]


def _remind(state: SupervisionState, cmd: Remind, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in {S.WATCHING, S.REMINDED}, "remind.state",
            f"a reminder comes before any written step; the supervision is {state.status}")
    return [FrontReminded(**envelope(cmd, actor, now, SUPERVISION_BASIS), to_body=cmd.to_body or state.resolver)]


def _urge(state: SupervisionState, cmd: Urge, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in EARLY, "urge.state",
            f"a written reminder (đôn đốc) precedes a recommendation; the supervision is {state.status}")
    w = state.watched_due
    require(state.trigger == "breach" or w is None or now > w.due_at, "urge.not_due",
            f"the watched deadline ({w.due_on.isoformat() if w else ''}) has not passed yet: send a reminder; "
            "a written reminder (đôn đốc) follows a missed deadline")
    to_body = cmd.to_body or state.resolver
    require(to_body is not None, "urge.no_recipient", "name the body to urge (to_body): the resolver is unknown")
    assert to_body is not None
    return [FrontUrged(**envelope(cmd, actor, now, SUPERVISION_BASIS), to_body=to_body, doc_no=cmd.doc_no)]


def _send_recommendation(state: SupervisionState, cmd: SendRecommendation, actor: Actor,
                         now: datetime) -> list[Event]:
    require(state.status in {S.URGED, S.DISPUTED}, "recommendation.state",
            "a recommendation (văn bản kiến nghị) follows a written reminder (đôn đốc) or a disputed answer; "
            f"the supervision is {state.status}")
    # Addressed to anyone but the resolver, it goes to the resolver's superior, who has its own period.
    superior = state.resolver is not None and cmd.to_body != state.resolver
    key = SUPERIOR_RESPONSE if superior else RECOMMENDATION_RESPONSE
    legal = LEGAL_RESPONSE.get(state.case_kind)
    if not superior and legal is not None and legal in state.rules.policy.rules:
        key = legal
    deadline = _policy_deadline(state.rules, key, now)
    return [FrontRecommendationSent(**envelope(cmd, actor, now, SUPERVISION_BASIS), to_body=cmd.to_body,
                                    doc_no=cmd.doc_no, to_superior=superior, deadline=deadline)]


def _record_response(state: SupervisionState, cmd: RecordResponse, actor: Actor, now: datetime) -> list[Event]:
    require(state.status == S.RECOMMENDATION_SENT, "response.state",
            f"an answer is recorded while a recommendation awaits one; the supervision is {state.status}")
    require(cmd.body == state.recommendation_to, "response.body",
            f"the recommendation was sent to {state.recommendation_to}, not {cmd.body}")
    return [FrontResponseReceived(**envelope(cmd, actor, now), body=cmd.body, summary=cmd.summary)]


def _accept_response(state: SupervisionState, cmd: AcceptResponse, actor: Actor, now: datetime) -> list[Event]:
    require(state.status == S.RESPONSE_RECEIVED, "accept.no_response",
            f"only a received answer can be accepted; the supervision is {state.status}")
    return [FrontResponseAccepted(**envelope(cmd, actor, now))]


def _dispute(state: SupervisionState, cmd: Dispute, actor: Actor, now: datetime) -> list[Event]:
    require(state.status == S.RESPONSE_RECEIVED, "dispute.no_response",
            f"only a received answer can be disputed; the supervision is {state.status}")
    return [FrontResponseDisputed(**envelope(cmd, actor, now))]


def _escalate(state: SupervisionState, cmd: Escalate, actor: Actor, now: datetime) -> list[Event]:
    require(bool(state.recommendations), "escalate.no_recommendation",
            "escalation follows a recommendation (văn bản kiến nghị) that was disputed or not answered; none was sent")
    if state.status == S.RECOMMENDATION_SENT:
        waiting = [d for k, d in state.deadlines.items() if k in RESPONSE_KEYS and d.pending]
        due = min((d.deadline for d in waiting), key=lambda d: d.due_at, default=None)
        require(due is None or now > due.due_at, "escalate.awaiting_response",
                f"the answer to the recommendation is due by {due.due_on.isoformat() if due else ''}; escalate once "
                "that passes without an answer, or once the answer is disputed")
    elif state.status == S.ESCALATED:
        require(all(s.target != cmd.target for s in state.escalations), "escalate.already",
                f"the supervision was already escalated to {cmd.target}")
    else:
        require(state.status == S.DISPUTED, "escalate.state",
                f"escalation follows a disputed or unanswered recommendation; the supervision is {state.status}"
                + (" (accept or dispute the answer first)" if state.status == S.RESPONSE_RECEIVED else ""))
    return [FrontEscalated(**envelope(cmd, actor, now, ESCALATION_BASIS[cmd.target]), target=cmd.target,
                           to_body=cmd.to_body)]


def _close(state: SupervisionState, cmd: Close, actor: Actor, now: datetime) -> list[Event]:
    if state.status in EARLY:
        require(bool(cmd.reason), "close.reason",
                "say why the watch ends before the ladder did (e.g. the case was resolved in time)")
    else:
        require(state.status in SETTLED, "close.state",
                f"a supervision that is {state.status} cannot be closed: accept, dispute or escalate first")
    return [FrontSupervisionClosed(**envelope(cmd, actor, now), from_status=state.status.value)]


def _mark_deadline(state: SupervisionState, cmd: MarkDeadline, actor: Actor, now: datetime) -> list[Event]:
    """A timer fired. Nothing happens if the deadline was settled meanwhile (a timer may fire late on replay)."""
    d = _pending(state, cmd.key)
    if d is None:
        return []
    env = envelope(cmd, actor, now, d.deadline.legal_basis)
    due = d.deadline.due_at.isoformat()
    mirrored = cmd.key == state.mirrored_key
    if cmd.stage == "approaching":
        if d.approached or d.breached:
            return []
        events: list[Event] = [DeadlineApproaching(**env, key=cmd.key, due_at=due)]
        if mirrored and state.status == S.WATCHING:
            # §4 step 2: the internal reminder, N days before the watched deadline.
            events.append(FrontReminded(**{**env, "legal_basis": SUPERVISION_BASIS}, automatic=True))
        return events
    if d.breached or now <= d.deadline.due_at:
        return []
    started = [_urge_deadline(state.rules, d.deadline, now)] if mirrored else []
    events = [DeadlineBreached(**env, key=cmd.key, due_at=due, deadlines=started)]
    if cmd.key in RESPONSE_KEYS and state.status == S.RECOMMENDATION_SENT:
        # §4 step 5: no answer within the policy period -> escalated, by the system, to the Party committee.
        basis = f"{d.deadline.legal_basis}; {ESCALATION_BASIS['party_committee']}"
        events.append(FrontEscalated(**{**env, "legal_basis": basis}, target="party_committee",
                                     to_body=PARTY_COMMITTEE_BODY, automatic=True, after_deadline=cmd.key))
    return events


_DECIDERS: dict[type[Any], Any] = {
    Remind: _remind, Urge: _urge, SendRecommendation: _send_recommendation, RecordResponse: _record_response,
    AcceptResponse: _accept_response, Dispute: _dispute, Escalate: _escalate, Close: _close,
    MarkDeadline: _mark_deadline,
}


# -- evolve -------------------------------------------------------------------------------------------


def _step(ev: Event, **fields: Any) -> Step:
    return Step(at=ev.occurred_at, actor=ev.actor, **fields)


@singledispatch
def _apply(event: Event, s: SupervisionState) -> dict[str, Any]:
    raise TypeError(f"no evolve rule for {type(event).__name__}")


@_apply.register(RepairRecorded)
@_apply.register(BodyNudged)
def _(ev: Event, s: SupervisionState) -> dict[str, Any]:
    return {}  # an operator's repair is on the record; the case itself moves through its own events


@_apply.register
def _(ev: FrontReminded, s: SupervisionState) -> dict[str, Any]:
    return {"status": S.REMINDED if s.status == S.WATCHING else s.status,
            "reminders": [*s.reminders, _step(ev, to_body=ev.to_body, automatic=ev.automatic)]}


@_apply.register
def _(ev: FrontUrged, s: SupervisionState) -> dict[str, Any]:
    # The urge is the Front's answer to the breach: its own period is met; the mirrored one is no longer followed.
    met = meet_deadlines(s.deadlines, [URGE_AFTER_BREACH], ev.occurred_at)
    return {"status": S.URGED, "urges": [*s.urges, _step(ev, to_body=ev.to_body, doc_no=ev.doc_no)],
            "deadlines": cancel_pending(met)}


@_apply.register
def _(ev: FrontRecommendationSent, s: SupervisionState) -> dict[str, Any]:
    step = _step(ev, to_body=ev.to_body, doc_no=ev.doc_no, to_superior=ev.to_superior)
    return {"status": S.RECOMMENDATION_SENT, "recommendations": [*s.recommendations, step], "dispute_reason": None,
            "deadlines": add_deadlines(s.deadlines, [ev.deadline])}


@_apply.register
def _(ev: FrontResponseReceived, s: SupervisionState) -> dict[str, Any]:
    return {"status": S.RESPONSE_RECEIVED, "responses": [*s.responses, _step(ev, body=ev.body, summary=ev.summary)],
            "deadlines": meet_deadlines(s.deadlines, RESPONSE_KEYS, ev.occurred_at)}


@_apply.register
def _(ev: FrontResponseAccepted, s: SupervisionState) -> dict[str, Any]:
    return {"status": S.SATISFIED}


@_apply.register
def _(ev: FrontResponseDisputed, s: SupervisionState) -> dict[str, Any]:
    return {"status": S.DISPUTED, "dispute_reason": ev.reason}


@_apply.register
def _(ev: FrontEscalated, s: SupervisionState) -> dict[str, Any]:
    step = _step(ev, to_body=ev.to_body, target=ev.target, automatic=ev.automatic)
    # Escalation takes the matter out of the recipient's hands: its answer period is no longer followed.
    return {"status": S.ESCALATED, "escalations": [*s.escalations, step], "deadlines": cancel_pending(s.deadlines)}


@_apply.register
def _(ev: FrontSupervisionClosed, s: SupervisionState) -> dict[str, Any]:
    return {"status": S.CLOSED, "closed_at": ev.occurred_at, "deadlines": cancel_pending(s.deadlines)}


@_apply.register
def _(ev: DeadlineApproaching, s: SupervisionState) -> dict[str, Any]:
    return {"deadlines": mark_deadline(s.deadlines, ev.key, "approaching")}


@_apply.register
def _(ev: DeadlineBreached, s: SupervisionState) -> dict[str, Any]:
    return {"deadlines": add_deadlines(mark_deadline(s.deadlines, ev.key, "breached"), ev.deadlines)}


def evolve(state: SupervisionState | None, event: Event) -> SupervisionState:
    """The state after one more event. Every event adds one to the version."""
    if isinstance(event, FrontWatchStarted):
        if state is not None:
            raise ValueError("FrontWatchStarted can only open a supervision")
        return SupervisionState(
            supervision_id=event.supervision_id, case_id=event.case_id, case_kind=event.case_kind,
            resolver=event.resolver, trigger=event.trigger, version=1, opened_at=event.occurred_at,
            rules=event.case_rules(), watched_due=event.watched_due, deadlines=add_deadlines({}, event.deadlines),
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before FrontWatchStarted")
    changes = _apply(event, state)
    return state.model_copy(update={**changes, "version": state.version + 1})


def fold(events: Iterable[Event], state: SupervisionState | None = None) -> SupervisionState | None:
    """The state after `events`, from `state` (None: from nothing)."""
    for event in events:
        state = evolve(state, event)
    return state


# -- views --------------------------------------------------------------------------------------------


class SupervisionView(BaseModel):
    """The current state of a Front supervision as the API returns it."""

    supervision_id: str
    case_id: str
    case_kind: str
    trigger: str
    status: str
    version: int
    opened_at: datetime
    lead_body: str
    resolver: str | None
    bodies: list[str]
    overdue: bool
    next_due_at: AwareDatetime | None
    watched_due: Deadline | None
    deadlines: list[DeadlineView]
    reminders: list[Step]
    urges: list[Step]
    recommendations: list[Step]
    responses: list[Step]
    dispute_reason: str | None
    escalations: list[Step]
    escalation: Step | None
    closed_at: datetime | None


def _deadline_views(state: SupervisionState) -> list[DeadlineView]:
    out = []
    for key, d in sorted(state.deadlines.items(), key=lambda kv: (kv[1].deadline.due_at, kv[0])):
        dl = d.deadline
        out.append(DeadlineView(
            key=key, due_on=dl.due_on.isoformat(), due_at=dl.due_at, started_on=dl.started_on.isoformat(),
            amount=dl.amount, unit=dl.unit, variant=dl.variant, legal_basis=dl.legal_basis, rule_ref=dl.rule_ref,
            statutory=dl.statutory, extensions=dl.extensions, outcome=d.outcome, approached=d.approached,
            breached=d.breached, met_at=d.met_at,
        ))
    return out


def supervision_view(state: SupervisionState) -> SupervisionView:
    """What a supervisor reads of a supervision: the ladder so far, its deadlines with their bases."""
    due = state.next_due
    return SupervisionView(
        supervision_id=state.supervision_id, case_id=state.case_id, case_kind=state.case_kind,
        trigger=state.trigger, status=state.status.value, version=state.version, opened_at=state.opened_at,
        lead_body=FRONT_BODY, resolver=state.resolver, bodies=state.bodies, overdue=state.overdue,
        next_due_at=due.due_at if due else None, watched_due=state.watched_due, deadlines=_deadline_views(state),
        reminders=list(state.reminders), urges=list(state.urges), recommendations=list(state.recommendations),
        responses=list(state.responses), dispute_reason=state.dispute_reason, escalations=list(state.escalations),
        escalation=state.escalation, closed_at=state.closed_at,
    )


def supervision_row(state: SupervisionState) -> dict[str, Any]:
    """The `cases` read-model row of a supervision (the workflow wraps it in the event store's `CaseRow`).

    `bodies` lists the Front, the resolver and every body the Front wrote to, so that a superior or Party
    committee that received a letter finds the supervision in its body-scoped list.
    """
    due = state.next_due
    return {
        "kind": CASE_KIND,
        "status": state.status.value,
        "title": f"Giám sát của Mặt trận: {state.case_id}",
        "lead_body": FRONT_BODY,
        "bodies": state.bodies,
        "received_at": state.opened_at,
        "due_at": due.due_at if due else None,
        "overdue": state.overdue,
        "summary": in_vietnam(supervision_view(state)).model_dump(mode="json"),
    }
