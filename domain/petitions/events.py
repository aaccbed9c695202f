"""Events of a petition case, in the past tense (docs/architecture.md, events). The envelope (when, who, why, on what
legal basis) is in `domain.common.Event`; each class adds what that step decided."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from ..attachments import AttachmentAdded
from ..bodies import RoutingDecision
from ..common import Event, EventRegistry
from ..coordination import CoordinationRequested, CoordinationResponded
from ..deadlines import Deadline, DeadlineApproaching, DeadlineBreached
from ..repairs import REPAIR_EVENTS
from ..rulesets import RecordsCaseRules
from .model import PetitionIntake, PetitionKind


class DatedEvent(Event):
    """An event that records a written act: `dated` is the act's own date (absent in cases recorded before acts
    carried one, where it is the day of `occurred_at`); `occurred_at` stays the moment it was recorded."""

    dated: date | None = None


class PetitionReceived(RecordsCaseRules):
    """The first event of a case: its intake, its first deadlines and the rules it is counted under (`rules_ref`
    since the patch `rules-by-digest`; `rules` in full in the cases recorded before)."""

    case_id: str
    intake: PetitionIntake
    intake_digest: str
    instance: int = 1
    parent_case_id: str | None = None
    deadlines: list[Deadline]


class Classified(Event):
    kind: PetitionKind
    subject_category: str | None = None
    complex: bool = False
    especially_complex: bool = False
    remote_area: bool = False
    lead_body: str | None = None
    #: How the lead body was found when the command named none (the routing rule in the recorded table).
    routed: RoutingDecision | None = None
    #: The first deadline of the new kind when classification changes the kind (the old one is cancelled).
    deadlines: list[Deadline] = Field(default_factory=list)


class NotProcessed(Event):
    """An anonymous denunciation (or one under a false name) is not processed under the law (Art 25)."""

    ground: str



class PetitionSplit(Event):
    children: list[dict[str, str]]


class AcceptanceDecided(DatedEvent):
    accepted: bool
    decision_no: str | None = None
    reasons: list[str] = Field(default_factory=list)
    lead_body: str | None = None
    deadlines: list[Deadline] = Field(default_factory=list)


class Forwarded(DatedEvent):
    to_body: str
    notice_no: str


class Redirected(DatedEvent):
    guidance: str


class Assigned(Event):
    body: str
    officer: str | None = None
    previous_body: str | None = None


class VerificationStep(Event):
    findings: str
    demand_matches_findings: bool | None = None


class DialogueHeld(Event):
    held_on: date
    participants: list[str]
    summary: str


class ExtensionGranted(DatedEvent):
    decision_no: str
    deadline: Deadline
    #: The date of the written decision (absent in cases recorded before it was asked for).
    decision_date: date | None = None
    #: The decision found the case especially complex.
    especially_complex: bool = False


class Suspended(DatedEvent):
    #: The deadlines whose clock stops (the kind's suspension time does not count); empty: they run on.
    stopped: list[str] = Field(default_factory=list)
    #: The deadlines the suspension starts (the notice of the suspension decision), which do not stop.
    deadlines: list[Deadline] = Field(default_factory=list)


class Resumed(DatedEvent):
    #: The stopped deadlines with their new due dates, the rest of each period counted from the resumption.
    deadlines: list[Deadline] = Field(default_factory=list)


class Withdrawn(DatedEvent):
    continues: bool
    signs_of_violation: bool = False
    coerced: bool = False


class Terminated(DatedEvent):
    ground: str
    #: The deadlines the termination starts (the notice of the termination decision), after every other
    #: pending one is cancelled.
    deadlines: list[Deadline] = Field(default_factory=list)


class DecisionIssued(DatedEvent):
    """Quyết định giải quyết khiếu nại / kết luận nội dung tố cáo / văn bản trả lời (by `form`)."""

    form: Literal["complaint_decision", "denunciation_conclusion", "reply"]
    outcome: str
    decision_no: str
    summary: str
    deadlines: list[Deadline] = Field(default_factory=list)
    #: Whether the resolution period was kept: what the period reports count as resolved on time or late.
    resolution_outcome: Literal["on_time", "late"] | None = None


class NotificationSent(DatedEvent):
    about: Literal["acceptance", "decision", "forwarder", "suspension", "termination", "publication"]
    recipients: list[str]
    channel: str
    doc_no: str
    published: bool = False


class DecisionTookEffect(Event):
    """The decision took legal effect: its period (`key`) ended with no second complaint against it."""

    key: str
    effective_on: date
    decision_no: str


class ImplementationRecorded(Event):
    summary: str


class ExternalResultRecorded(Event):
    result: str


class EscalatedSecondInstance(Event):
    new_case_id: str
    to_body: str | None = None




class FrontSupervisionStarted(Event):
    supervision_id: str
    trigger: str


class Closed(Event):
    pass


class Archived(Event):
    archive_ref: str


REGISTRY = EventRegistry(
    PetitionReceived, Classified, NotProcessed, PetitionSplit, AcceptanceDecided, Forwarded, Redirected,
    Assigned, CoordinationRequested, CoordinationResponded, VerificationStep, DialogueHeld, ExtensionGranted,
    Suspended, Resumed, Withdrawn, Terminated, DecisionIssued, NotificationSent, DecisionTookEffect,
    ImplementationRecorded,
    ExternalResultRecorded, EscalatedSecondInstance, DeadlineApproaching, DeadlineBreached,
    FrontSupervisionStarted, Closed, Archived, AttachmentAdded, *REPAIR_EVENTS,
)
