"""The petition case: its kinds, statuses, intake data and state."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..common import Text
from ..coordination import CoordinationRequest
from ..deadlines import CaseRules, Deadline, DeadlineState
from ..jsontypes import Boolean, Integer, Moment
from ..rulesets import RulesRef


class PetitionKind(StrEnum):
    COMPLAINT = "complaint"  # khiếu nại
    DENUNCIATION = "denunciation"  # tố cáo
    RECOMMENDATION = "recommendation"  # kiến nghị, phản ánh
    VOTER_PETITION = "voter_petition"  # kiến nghị cử tri


class PetitionStatus(StrEnum):
    RECEIVED = "received"
    CLASSIFIED = "classified"
    SPLIT = "split"
    NOT_PROCESSED = "not_processed"
    REDIRECTED = "redirected"
    FORWARDED = "forwarded"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    VERIFYING = "verifying"
    DIALOGUE = "dialogue"
    DECIDED = "decided"
    NOTIFIED = "notified"
    IMPLEMENTING = "implementing"
    TERMINATED = "terminated"
    CLOSED = "closed"
    ARCHIVED = "archived"


S = PetitionStatus
#: States in which the substance of the case is being handled (after acceptance, before the decision).
HANDLING = frozenset({S.ACCEPTED, S.VERIFYING, S.DIALOGUE})
#: States from which nothing but closing and archiving can happen.
ENDED = frozenset({S.SPLIT, S.NOT_PROCESSED, S.REDIRECTED, S.REJECTED, S.TERMINATED, S.CLOSED, S.ARCHIVED})
#: States a case may be closed from.
CLOSABLE = frozenset({S.NOTIFIED, S.IMPLEMENTING, S.FORWARDED, S.SPLIT, S.NOT_PROCESSED, S.REDIRECTED,
                      S.REJECTED, S.TERMINATED})
#: States a case may be archived from.
ARCHIVABLE = frozenset({S.CLOSED, S.SPLIT, S.NOT_PROCESSED, S.REDIRECTED, S.REJECTED, S.TERMINATED})

#: `deputy_forwarded`: by a body of the National Assembly or a deputy; `reception_forwarded`: by a citizen
#: reception board (Ban tiếp công dân).
Channel = Literal["post", "in_person", "suggestion_box", "online_portal", "email", "phone", "front_forwarded",
                  "deputy_forwarded", "press", "leader_handover", "voter_meeting", "other", "reception_forwarded"]


class Petitioner(Text):
    """Who petitions. The API replaces the identity of every petitioner, whatever the kind, with a
    pseudonymous reference (`ref`) before anything reaches Temporal or the event store (`api.identities`):
    the case knows how many petition together and whether a name and a way to find them were given, which
    is all its rules need; the person is read only through `GET /v1/cases/{id}/petitioner`."""

    name: str | None = Field(default=None, max_length=300)
    address: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=200)
    id_number: str | None = Field(default=None, max_length=50)
    ref: str | None = Field(default=None, max_length=100, description="pseudonymous reference to a sealed identity")
    count: Integer = Field(default=1, ge=1, description="number of people petitioning together")
    named: Boolean | None = Field(default=None, description="sealed: whether the petitioner gave a name")
    traceable: Boolean | None = Field(
        default=None, description="sealed: whether the petitioner gave an address, a phone or an ID number")

    @property
    def anonymous(self) -> bool:
        """An anonymous letter (no name, or no way to find its writer: Luật Tố cáo 2018, Điều 25).

        A sealed petitioner answers from the facts kept at sealing. One sealed before those facts were kept
        (a denouncer of an older case, `named` unset) was never treated as anonymous, and still is not, so
        recorded histories decide as they did.
        """
        if self.named is not None:
            return not (self.named and self.traceable)
        return self.ref is None and not (self.name and (self.address or self.phone or self.id_number))

    @property
    def identifying(self) -> bool:
        """Whether this carries anything that identifies a person (what sealing removes)."""
        return any((self.name, self.address, self.phone, self.email, self.id_number))

    def sealed(self, ref: str) -> Petitioner:
        """What the rest of the system may hold of this petitioner once its identity is sealed under `ref`."""
        return Petitioner(ref=ref, count=self.count, named=bool(self.name),
                          traceable=bool(self.address or self.phone or self.id_number))


class PetitionIntake(Text):
    """A petition as received from a back-office system."""

    source: str = Field(min_length=1, max_length=100, description="the sending system")
    external_ref: str = Field(min_length=1, max_length=200, description="the sender's own id of the petition")
    kind: PetitionKind
    channel: Channel = "post"
    received_at: Moment
    petitioner: Petitioner = Field(default_factory=Petitioner)
    subject: str = Field(min_length=1, max_length=500)
    content: str = Field(min_length=1, max_length=20000)
    district: str | None = Field(default=None, max_length=200)
    commune: str | None = Field(default=None, max_length=200)
    attachments: list[str] = Field(default_factory=list, max_length=50)
    forwarded_by_front: Boolean = False
    receiving_body: str | None = Field(default=None, max_length=100)


class PetitionState(BaseModel):
    """Everything decided so far about one petition case (a fold of its events)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = 0
    kind: PetitionKind
    instance: int = 1
    status: PetitionStatus = S.RECEIVED
    intake: PetitionIntake
    intake_digest: str
    rules: CaseRules
    #: The digests the first event names the rules by (None: recorded in full, before `rules-by-digest`).
    rules_ref: RulesRef | None = None
    subject_category: str | None = None
    complex: bool = False
    especially_complex: bool = False
    remote_area: bool = False
    lead_body: str | None = None
    officer: str | None = None
    bodies: list[str] = Field(default_factory=list)
    deadlines: dict[str, DeadlineState] = Field(default_factory=dict)
    coordination: dict[str, CoordinationRequest] = Field(default_factory=dict)
    suspended: bool = False
    withdrawn: bool = False
    verification_recorded: bool = False
    demand_matches_findings: bool | None = None
    dialogue_held: bool = False
    decision: dict[str, str] | None = None
    decided_at: datetime | None = None
    #: The date the decision bears (its `dated`); None in cases recorded before acts carried one.
    decided_on: date | None = None
    #: The date of the latest written act of each step (`accepted`, `extended`, `suspended`, `resumed`,
    #: `decided`, `terminated`), which a later act may not be dated before.
    acts: dict[str, date] = Field(default_factory=dict)
    #: The day the decision took legal effect (a complaint's, Luật Khiếu nại 2011, Điều 44), once it has.
    in_effect_on: date | None = None
    parent_case_id: str | None = None
    linked_cases: list[str] = Field(default_factory=list)
    front_supervision: str | None = None
    #: The extension decisions granted so far: their numbers and dates.
    extension_decisions: list[dict[str, str]] = Field(default_factory=list)
    #: The SHA-256 of every file the case holds (`domain.attachments`), in the order they came.
    attachments: list[str] = Field(default_factory=list)

    @property
    def complexity(self) -> Literal["ordinary", "complex", "especially_complex"]:
        return "especially_complex" if self.especially_complex else "complex" if self.complex else "ordinary"

    @property
    def overdue(self) -> bool:
        return any(d.pending and d.breached for d in self.deadlines.values())

    @property
    def next_due(self) -> Deadline | None:
        """The next due date of a running period (a stopped one has none while the case is suspended)."""
        pending = [d.deadline for d in self.deadlines.values() if d.running]
        return min(pending, key=lambda d: d.due_at) if pending else None

    @property
    def open(self) -> bool:
        return self.status not in ENDED


def petition_case_id(source: str, external_ref: str) -> str:
    """The case id of a petition: a business key, so the same `source` + `external_ref` is the same case."""
    import hashlib
    import unicodedata

    key = unicodedata.normalize("NFC", source) + "\x1f" + unicodedata.normalize("NFC", external_ref)
    return "pet-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
