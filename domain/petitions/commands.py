"""Commands on a petition case: imperative, one model per `type`, validated at the edge (field rules) and
decided by `decider.decide` (legal and state rules)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..attachments import Attach
from ..common import Actor, Text
from ..coordination import BodyCode, RequestCoordination, Respond
from ..deadlines import CaseRules, MarkDeadline
from ..jsontypes import Boolean, Date
from ..rulesets import RulesRef
from .model import PetitionIntake, PetitionKind


class Command(Text):
    """Fields every command may carry: why (a person's reason) and a document number where one is issued."""

    reason: str | None = Field(default=None, max_length=2000)


class DatedAct(Command):
    """A command that records a written act (a decision, a notice, an extension...): the act has its own date,
    from which the periods it starts are counted and against which its own period is judged met or missed."""

    dated: Date | None = Field(default=None, description=(
        "the date the written act bears, a calendar day in Vietnam (YYYY-MM-DD); absent: today. Not after today, "
        "not before the petition's receipt, not before the step it follows (the acceptance a decision follows, "
        "the suspension a resumption ends...); the periods it starts run from it"))


class Receive(Command):
    """Internal: the first command of a case, made by the workflow from its start input."""

    type: Literal["receive"] = "receive"
    case_id: str = Field(min_length=1, max_length=200)
    intake: PetitionIntake
    rules: CaseRules
    #: The digests of `rules`, recorded in the first event instead of them (patch `rules-by-digest`); None:
    #: the rules are recorded in full, as before it.
    rules_ref: RulesRef | None = None
    instance: int = Field(default=1, ge=1, le=2)
    parent_case_id: str | None = None


class Classify(Command):
    """Phân loại: confirm the kind and note the subject, the flags that change deadlines, and the lead body."""

    type: Literal["classify"] = "classify"
    kind: PetitionKind | None = None
    subject_category: str | None = Field(default=None, max_length=200)
    complex: Boolean = False
    #: Vụ việc đặc biệt phức tạp (a denunciation: two extensions, Luật Tố cáo 2018, Điều 30); needs `reason`.
    especially_complex: Boolean = False
    remote_area: Boolean = False
    lead_body: BodyCode | None = None
    level: Literal["province", "district", "commune"] | None = Field(
        default=None, description="the level the petition concerns; by default from the intake's commune/district"
    )


class SplitPart(Text):
    kind: PetitionKind
    subject: str = Field(min_length=1, max_length=500)
    content: str = Field(min_length=1, max_length=20000)


class Split(Command):
    """A letter with several contents becomes one linked case per content, each with its own clock."""

    type: Literal["split"] = "split"
    parts: list[SplitPart] = Field(min_length=2, max_length=20)


class Accept(DatedAct):
    """Thụ lý: the acceptance decision; starts the resolution period."""

    type: Literal["accept"] = "accept"
    decision_no: str = Field(min_length=1, max_length=100)
    lead_body: BodyCode | None = None


class Reject(DatedAct):
    """Không thụ lý: refusal with written reasons (LKN Art 27)."""

    type: Literal["reject"] = "reject"
    reasons: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(min_length=1, max_length=20)
    notice_no: str | None = Field(default=None, max_length=100)


class Forward(DatedAct):
    """Chuyển đơn: send to the competent body, with a notice to the petitioner."""

    type: Literal["forward"] = "forward"
    to_body: BodyCode
    notice_no: str = Field(min_length=1, max_length=100)


class Redirect(DatedAct):
    """Hướng dẫn: tell the petitioner where to go."""

    type: Literal["redirect"] = "redirect"
    guidance: str = Field(min_length=1, max_length=2000)


class Assign(Command):
    """Give the case to a body (and an officer of it)."""

    type: Literal["assign"] = "assign"
    body: BodyCode
    officer: str | None = Field(default=None, max_length=200)


class RecordVerification(Command):
    """Xác minh: a verification step and its findings."""

    type: Literal["record_verification"] = "record_verification"
    findings: str = Field(min_length=1, max_length=20000)
    demand_matches_findings: Boolean | None = None


class RecordDialogue(Command):
    """Đối thoại (complaints): required when the demand and the verification result differ (LKN Art 30)."""

    type: Literal["record_dialogue"] = "record_dialogue"
    held_on: Date
    participants: list[str] = Field(min_length=1, max_length=50)
    summary: str = Field(min_length=1, max_length=20000)


class Extend(DatedAct):
    """Gia hạn by written decision (denunciations, Luật Tố cáo 2018 Art 30: none for an ordinary case, once
    for a complex one, twice for an especially complex one, each time by at most 30 days)."""

    type: Literal["extend"] = "extend"
    #: The extension decision's own number and date (not in the future, not before receipt).
    decision_no: str = Field(min_length=1, max_length=100)
    decision_date: Date | None = Field(default=None, description="the date of the written extension decision")
    #: The decision finds the case especially complex (its `reason` says why): it may be extended twice.
    especially_complex: Boolean = False


class Suspend(DatedAct):
    """Tạm đình chỉ, with a reason."""

    type: Literal["suspend"] = "suspend"


class Resume(DatedAct):
    type: Literal["resume"] = "resume"


class Withdraw(DatedAct):
    """Rút đơn. A denunciation continues when there are signs of violation or the withdrawal was coerced."""

    type: Literal["withdraw"] = "withdraw"
    signs_of_violation: Boolean = False
    coerced: Boolean = False


class Decide(DatedAct):
    """The decision (complaint), conclusion (denunciation) or written answer (recommendation, voters)."""

    type: Literal["decide"] = "decide"
    outcome: Literal["upheld", "partly_upheld", "not_upheld", "violation_found", "no_violation", "answered"]
    decision_no: str = Field(min_length=1, max_length=100)
    summary: str = Field(min_length=1, max_length=20000)


class Notify(DatedAct):
    """Thông báo: a written notice (of acceptance, of the decision) to the parties; denunciations: published.
    `forwarder`: the notice to the Front or the body that forwarded the petition (Luật Khiếu nại 2011, Điều 66
    khoản 2; Luật Tố cáo 2018, Điều 26 khoản 2; Luật Tiếp công dân 2013, Điều 27 khoản 2 and Điều 28 khoản 2).
    `suspension`, `termination`: the decision suspending or ending a denunciation's handling, sent to the parties
    (Luật Tố cáo 2018, Điều 34 khoản 4). `publication`: a denunciation's conclusion made public (Điều 40)."""

    type: Literal["notify"] = "notify"
    about: Literal["acceptance", "decision", "forwarder", "suspension", "termination", "publication"]
    recipients: list[str] = Field(min_length=1, max_length=50)
    channel: Literal["post", "in_person", "email", "portal", "publication"] = "post"
    doc_no: str = Field(min_length=1, max_length=100)


class RecordImplementation(Command):
    """Tổ chức thực hiện: how the decision is carried out."""

    type: Literal["record_implementation"] = "record_implementation"
    summary: str = Field(min_length=1, max_length=20000)


class RecordExternalResult(Command):
    """The competent body's result on a forwarded petition."""

    type: Literal["record_external_result"] = "record_external_result"
    result: str = Field(min_length=1, max_length=20000)


class Appeal(Command):
    """Khiếu nại lần hai: a second-instance complaint, a new linked case with its own clock (LKN Art 33); for a
    denunciation, tố cáo tiếp: the denunciation repeated to the resolver's direct superior (Luật Tố cáo 2018,
    Điều 37), a new linked case whose first clock is the superior's 20 days."""

    type: Literal["appeal"] = "appeal"
    to_body: BodyCode | None = None


class Close(Command):
    type: Literal["close"] = "close"


class Archive(Command):
    """Lưu hồ sơ: the case file goes to the archive."""

    type: Literal["archive"] = "archive"
    archive_ref: str = Field(min_length=1, max_length=200)



class StartFrontSupervision(Command):
    """The Front starts following the case (also started by the system on a breach or a Front forwarding)."""

    type: Literal["start_front_supervision"] = "start_front_supervision"
    trigger: Literal["breach", "front_forwarded", "manual"] = "manual"


PetitionCommand = Annotated[
    Receive | Classify | Split | Accept | Reject | Forward | Redirect | Assign | RequestCoordination | Respond
    | RecordVerification | RecordDialogue | Extend | Suspend | Resume | Withdraw | Decide | Notify
    | RecordImplementation | RecordExternalResult | Appeal | Close | Archive | MarkDeadline
    | StartFrontSupervision | Attach,
    Field(discriminator="type"),
]

#: Commands that only the workflow itself issues; refused when they come from outside.
INTERNAL = frozenset({"receive", "deadline"})

COMMAND_TYPES: list[str] = [
    "classify", "split", "accept", "reject", "forward", "redirect", "assign", "request_coordination", "respond",
    "record_verification", "record_dialogue", "extend", "suspend", "resume", "withdraw", "decide", "notify",
    "record_implementation", "record_external_result", "appeal", "close", "archive", "start_front_supervision",
    "attach",
]


class CommandRequest(Text):
    """One command as an Update carries it: the command, who sends it, and an id that makes a retry a no-op."""

    command: PetitionCommand
    actor: Actor
    command_id: str | None = Field(default=None, max_length=200)
