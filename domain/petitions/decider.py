"""The petition decider: `decide` (command -> events, or a `DomainError` naming the rule) and `evolve`.

Every due date is computed here from the case's recorded rules (deadline policy and working-day calendar,
recorded in `PetitionReceived`), so deciding again on replay gives the same dates, whatever the calendar
package or the policy file say today.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import singledispatch
from typing import Any

from .. import attachments as at
from .. import coordination as co
from ..bodies import BodyError, NoRoute, RoutingDecision
from ..calendar import CalendarRangeError, end_of_day, local_date
from ..common import Actor, DomainError, Event, content_digest, envelope, require
from ..deadlines import (
    CaseRules,
    Deadline,
    DeadlineApproaching,
    DeadlineBreached,
    DeadlineState,
    MarkDeadline,
    UnknownDeadlineRule,
    add_deadlines,
    can_extend,
    cancel_pending,
    compute_deadline,
    extend_deadline,
    mark_deadline,
    meet_deadlines,
    restart_clock,
    restarted,
    stop_clocks,
    stopped,
)
from ..repairs import BodyNudged, RepairRecorded
from . import commands as c
from . import events as e
from .model import (
    ARCHIVABLE,
    CLOSABLE,
    HANDLING,
    PetitionKind,
    PetitionState,
)
from .model import PetitionStatus as S

K = PetitionKind

#: Deadlines met by the first decision on a letter (accept, reject, forward, redirect, split, not processed).
ACCEPTANCE_STAGE = frozenset(
    {"complaint.acceptance", "complaint2.acceptance", "denunciation.initial_processing", "letter.processing",
     "reception.in_person_answer", "denunciation.repeated"}
)
#: Deadlines met by the notice to the Front or the body that forwarded the petition.
FORWARDER_NOTICES = ("complaint.forwarder_notice", "denunciation.forwarder_notice", "reception.forwarder_notice",
                     "reception.result_notice")
#: Channels by which another body forwards a petition (with `forwarded_by_front`): it is told the outcome.
FORWARDING_CHANNELS = frozenset({"front_forwarded", "deputy_forwarded", "press", "reception_forwarded"})
#: Channels of a petition forwarded by a body of the National Assembly, a deputy or a citizen reception board,
#: whose recommendations carry the reception's notices (Luật Tiếp công dân 2013, Điều 27 khoản 2, Điều 28
#: khoản 2).
RECEPTION_FORWARDING = frozenset({"deputy_forwarded", "reception_forwarded"})
#: The notice of a denunciation's suspension or termination decision (Luật Tố cáo 2018, Điều 34 khoản 4).
SUSPENSION_NOTICE = "denunciation.suspension_notice"
#: The day a complaint decision takes legal effect (Luật Khiếu nại 2011, Điều 44): a date the case reaches, not
#: a duty; when it passes the case records `DecisionTookEffect` instead of a breach.
DECISION_EFFECT = "complaint.decision_effect"
#: Deadlines met by the notice of the decision (or conclusion) to the parties.
DECISION_NOTICES = ("complaint.decision_delivery", "complaint2.decision_delivery", "denunciation.acceptance_notice",
                    "denunciation.conclusion_delivery")
#: Met by the publication of a denunciation's conclusion (Luật Tố cáo 2018, Điều 40 khoản 1).
PUBLICATION = "denunciation.publication"
#: The first clock of a recommendation received in person at a citizen reception (Luật Tiếp công dân 2013,
#: Điều 28 khoản 1), when the case's recorded policy has the rule.
IN_PERSON_ANSWER = "reception.in_person_answer"
DENUNCIATION_WITHDRAWAL = "Luật Tố cáo 2018, Điều 33 khoản 1"
#: Deadlines met by the decision, conclusion or answer.
RESOLUTION_STAGE = frozenset(
    {"complaint.resolution", "complaint2.resolution", "denunciation.resolution", "recommendation.resolution",
     "voter_petition.answer"}
)
#: Commands still allowed while a case is suspended (and, since the periods-completed patch, `notify` of the
#: suspension decision).
WHILE_SUSPENDED = frozenset({"resume", "withdraw", "assign", "deadline", "start_front_supervision", "attach"})

DECISION_FORM = {
    K.COMPLAINT: "complaint_decision",
    K.DENUNCIATION: "denunciation_conclusion",
    K.RECOMMENDATION: "reply",
    K.VOTER_PETITION: "reply",
}
OUTCOMES = {
    K.COMPLAINT: {"upheld", "partly_upheld", "not_upheld"},
    K.DENUNCIATION: {"violation_found", "no_violation", "partly_upheld"},
    K.RECOMMENDATION: {"answered"},
    K.VOTER_PETITION: {"answered"},
}
LAW = {
    K.COMPLAINT: "Luật Khiếu nại 2011",
    K.DENUNCIATION: "Luật Tố cáo 2018",
    K.RECOMMENDATION: "Luật Tiếp công dân 2013",
    K.VOTER_PETITION: "NQLT 72/2025",
}


# -- helpers ------------------------------------------------------------------------------------------


#: How far ahead of the case's clock a sender's clock may be: a receipt later than that is in the future.
CLOCK_SKEW = timedelta(minutes=5)


def deadline_for(rules: CaseRules, key: str, start: date | datetime, *, complex: bool = False,
                 remote: bool = False, variant: str | None = None) -> Deadline:
    """A policy deadline on the case's recorded calendar; a missing rule or a date off the calendar refuses."""
    try:
        return compute_deadline(
            rules.policy.rule(key), start, rules.calendar, complex=complex, remote=remote, variant=variant
        )
    except UnknownDeadlineRule as exc:
        raise DomainError("policy.missing_rule", str(exc)) from exc
    except CalendarRangeError as exc:
        raise DomainError("calendar.out_of_range", str(exc)) from exc


def check_body(state: PetitionState, code: str | None, rule: str, now: datetime) -> None:
    """Refuse a body that is unknown, or not in force on the day of the event (the message names its
    successor). Cases recorded before the body registry was part of their rules are not checked."""
    registry = state.rules.bodies
    if registry is None or code is None:
        return
    try:
        registry.effective(code, local_date(now))
    except BodyError as exc:
        raise DomainError(rule, str(exc)) from exc


def route(state: PetitionState, cmd: c.Classify, kind: PetitionKind, now: datetime) -> RoutingDecision | None:
    """The competent body by the case's recorded routing table, when the classification names none."""
    rules = state.rules
    if rules.routing is None or rules.bodies is None:
        return None
    intake = state.intake
    level = cmd.level or ("commune" if intake.commune else "district" if intake.district else "province")
    try:
        return rules.routing.route(kind.value, cmd.subject_category, level, intake.district, local_date(now),
                                   rules.bodies)
    except NoRoute:
        return None  # the officer names the body at acceptance (`accept.lead_body`)
    except BodyError as exc:
        raise DomainError("classify.routing", str(exc)) from exc


def first_deadline_key(kind: PetitionKind, instance: int, *, in_person: bool = False,
                       repeated: bool = False) -> str:
    """The first clock of a case of `kind`; `in_person`: a recommendation received at a citizen reception
    whose recorded policy has that rule; `repeated`: a second-instance denunciation (tố cáo tiếp) under a policy
    that has its rule."""
    if kind == K.RECOMMENDATION and in_person:
        return IN_PERSON_ANSWER
    if kind == K.COMPLAINT:
        return "complaint2.acceptance" if instance == 2 else "complaint.acceptance"
    if kind == K.DENUNCIATION:
        return "denunciation.repeated" if repeated and instance == 2 else "denunciation.initial_processing"
    if kind == K.VOTER_PETITION:
        return "voter_petition.answer"
    return "letter.processing"


def resolution_keys(kind: PetitionKind, instance: int) -> list[str]:
    if kind == K.COMPLAINT:
        return ["complaint2.resolution" if instance == 2 else "complaint.resolution"]
    if kind == K.DENUNCIATION:
        return ["denunciation.resolution", "denunciation.acceptance_notice"]
    if kind == K.RECOMMENDATION:
        return ["recommendation.resolution"]
    return []  # a voter's petition runs on its 60-day answer period from receipt


def _first_key(rules: CaseRules, kind: PetitionKind, instance: int, intake: Any, revised: bool,
               completed: bool = False) -> str:
    in_person = revised and intake.channel == "in_person" and IN_PERSON_ANSWER in rules.policy.rules
    repeated = completed and "denunciation.repeated" in rules.policy.rules
    return first_deadline_key(kind, instance, in_person=in_person, repeated=repeated)


def _owed(rules: CaseRules, key: str, start: date | datetime, completed: bool, *,
          remote: bool = False) -> list[Deadline]:
    """The deadline of `key` from `start`, for a case deciding by the periods-completed patch under a recorded
    policy that has the rule; nothing otherwise (cases recorded before either keep the deadlines they had)."""
    if not completed or key not in rules.policy.rules:
        return []
    return [deadline_for(rules, key, start, remote=remote)]


def _reception_forwarded(kind: PetitionKind, intake: Any) -> bool:
    """A recommendation forwarded by a body of the National Assembly, a deputy or a citizen reception board."""
    return kind == K.RECOMMENDATION and intake.channel in RECEPTION_FORWARDING


def forwarded(intake: Any) -> bool:
    """Whether the Front or another body forwarded the petition (and is to be told what became of it)."""
    return bool(intake.forwarded_by_front or intake.channel in FORWARDING_CHANNELS)


def _forwarder_notice(rules: CaseRules, key: str, intake: Any, start: date | datetime,
                      revised: bool) -> list[Deadline]:
    """The deadline of the notice to the forwarding body, for a forwarded petition under a policy that has it."""
    if not revised or not forwarded(intake) or key not in rules.policy.rules:
        return []
    return [deadline_for(rules, key, start)]


def _given(text: str | None) -> bool:
    """Whether a person actually wrote something (a reason of blank spaces is no reason)."""
    return bool(text and text.strip())


def _pending(state: PetitionState, key: str) -> DeadlineState | None:
    d = state.deadlines.get(key)
    return d if d is not None and d.pending else None


# -- decide -------------------------------------------------------------------------------------------


def decide(state: PetitionState | None, command: c.PetitionCommand, actor: Actor, now: datetime, *,
           revised: bool = True, completed: bool = True) -> list[Event]:
    """The events a command produces on `state` at `now`, or a `DomainError` naming the rule that refuses it.

    Pure: nothing is read but the arguments. A refused command produces nothing. `revised=False` decides as
    cases recorded before the legal-periods revision were decided (the workflow's patch `legal-periods`):
    extensions counted from the due date, suspensions that stop no clock, no notice to a forwarding body.
    `completed=False` decides as cases recorded before the periods-completed patch: no notice periods after a
    denunciation's suspension, termination or conclusion, nor its publication; no repeated denunciation; the
    first-instance delivery period for a second-instance complaint decision; no legal-effect date; no notices of
    the citizen reception; a voters' petition's coordination by the lead's periods alone. Each new period also
    needs its rule in the case's recorded policy, so cases received under an older policy keep their deadlines.
    """
    flags = {"revised": revised, "completed": completed}
    if isinstance(command, c.Receive):
        return _receive(state, command, actor, now, **flags)
    if state is None:
        raise DomainError("case.not_found", "the case has not been received yet")
    kind = getattr(command, "type", "")
    require(state.status != S.ARCHIVED, "case.archived", "the case is archived; nothing more can happen to it")
    if state.suspended:
        allowed = WHILE_SUSPENDED | ({"notify"} if completed else set())
        require(kind in allowed, "case.suspended", f"the case is suspended; `{kind}` must wait for `resume`")
    handler = _DECIDERS.get(type(command))
    if handler is None:
        raise DomainError("command.unknown", f"`{kind}` is not a command of a petition case")
    wanted = _FLAGS.get(type(command), ())
    options: dict[str, Any] = {k: v for k, v in flags.items() if k in wanted}
    if isinstance(command, c.DatedAct):
        options["on"] = act_date(state, command, now)
    events: list[Event] = handler(state, command, actor, now, **options)
    return events


#: The steps a dated act follows, by command: it may not be dated before the latest of them the case recorded.
FOLLOWS: dict[str, tuple[str, ...]] = {
    "extend": ("accepted", "extended", "resumed"),
    "suspend": ("accepted", "resumed"),
    "resume": ("suspended",),
    "withdraw": ("accepted", "suspended", "resumed"),
    "decide": ("accepted", "extended", "resumed"),
}
#: The steps a notice follows, by what it is about.
NOTICE_FOLLOWS: dict[str, tuple[str, ...]] = {
    "acceptance": ("accepted",), "decision": ("decided",), "publication": ("decided",),
    "suspension": ("suspended",), "termination": ("terminated",), "forwarder": ("accepted", "decided"),
}
#: How a message names each step.
STEP_NAMES = {"accepted": "acceptance (thụ lý)", "extended": "extension (gia hạn)",
              "suspended": "suspension (tạm đình chỉ)", "resumed": "resumption (tiếp tục giải quyết)",
              "decided": "decision (quyết định, kết luận)", "terminated": "termination (đình chỉ)"}


def act_date(state: PetitionState, cmd: c.DatedAct, now: datetime) -> date:
    """The date of the written act `cmd` records: its `dated`, or today in Vietnam when it gives none.

    A date given is refused after today (`dated.future`), before the petition's day of receipt
    (`dated.before_receipt`) and before the latest step the act follows (`dated.before_previous_step`: a
    decision dated before the acceptance, a resumption before the suspension). A command without `dated`
    decides exactly as before acts carried one."""
    today = local_date(now)
    dated = cmd.dated
    if dated is None:
        return today
    require(dated <= today, "dated.future",
            f"the act is dated {dated.isoformat()}, after today ({today.isoformat()}): record an act once it "
            "is signed")
    received = local_date(state.intake.received_at)
    require(dated >= received, "dated.before_receipt",
            f"the act is dated {dated.isoformat()}, before the petition was received ({received.isoformat()})")
    follows = NOTICE_FOLLOWS[cmd.about] if isinstance(cmd, c.Notify) else FOLLOWS.get(getattr(cmd, "type", ""), ())
    previous = [(state.acts[step], step) for step in follows if step in state.acts]
    if previous:
        latest, step = max(previous)
        require(dated >= latest, "dated.before_previous_step",
                f"the act is dated {dated.isoformat()}, before the {STEP_NAMES[step]} it follows, dated "
                f"{latest.isoformat()}")
    return dated


def _receive(state: PetitionState | None, cmd: c.Receive, actor: Actor, now: datetime, *,
             revised: bool = True, completed: bool = True) -> list[Event]:
    """Open a case: record the intake, the rules in force and the first deadlines (from the day of receipt):
    the first step's, and for a petition another body forwarded, the notice to that body (a denunciation's;
    a recommendation's forwarded by the National Assembly, a deputy or a citizen reception board)."""
    require(state is None, "case.exists", "the case was already received")
    intake, case_id, rules = cmd.intake, cmd.case_id, cmd.rules
    require(intake.received_at <= now + CLOCK_SKEW, "received_at.future",
            "received_at is in the future")
    first = deadline_for(rules, _first_key(rules, intake.kind, cmd.instance, intake, revised, completed),
                         intake.received_at)
    notices = (_forwarder_notice(rules, "denunciation.forwarder_notice", intake, intake.received_at, revised)
               if intake.kind == K.DENUNCIATION else [])
    if _reception_forwarded(intake.kind, intake):
        notices += _owed(rules, "reception.forwarder_notice", intake.received_at, completed)
    events: list[Event] = [
        e.PetitionReceived(
            **envelope(cmd, actor, now, first.legal_basis),
            case_id=case_id,
            intake=intake,
            intake_digest=intake_digest(intake),
            instance=cmd.instance,
            parent_case_id=cmd.parent_case_id,
            rules=rules,
            rules_ref=cmd.rules_ref,
            deadlines=[first, *notices],
        )
    ]
    if intake.forwarded_by_front:
        basis = ("Luật MTTQ 2015, Chương V" if revised
                 else "Luật MTTQ 2015, Chương V; Luật Tố cáo 2011 Điều 44 (tiền lệ)")
        events.append(
            e.FrontSupervisionStarted(
                **envelope(cmd, actor, now, basis),
                supervision_id=f"{case_id}-front",
                trigger="front_forwarded",
            )
        )
    return events


#: Petitioner fields added after cases were recorded: left out of the digest while unset, so the digest of an
#: intake recorded before them is the digest it had.
_LATER_PETITIONER_FIELDS = ("named", "traceable")


def intake_digest(intake: Any) -> str:
    """What makes a repeated submission 'the same petition': its whole content, in canonical form.

    With the identity sealed, the petitioner's part is its ref (one per source and external_ref) and the facts
    kept at sealing; the API has already refused a resubmission that names another person.
    """
    document = intake.model_dump(mode="json")
    petitioner = document.get("petitioner")
    if isinstance(petitioner, dict):
        for key in _LATER_PETITIONER_FIELDS:
            if petitioner.get(key) is None:
                petitioner.pop(key, None)
    return content_digest(document)


def same_petition(stored: Any, stored_digest: str, received: Any) -> bool:
    """Whether `received` (an intake, its petitioner sealed by the API) is the petition stored as `stored`
    (the case's intake, whose digest was recorded as `stored_digest`).

    The digests decide, and two intakes recorded before every petitioner carried the sealed facts still
    match their resubmission: a denouncer sealed without them (the API has compared the identity behind the
    same ref), and a petitioner received in clear (the API has compared the person with the case's first
    event), which is compared in its sealed form.
    """
    if intake_digest(received) == stored_digest:
        return True
    kept, sent = stored.petitioner, received.petitioner
    if sent.ref is None or sent.named is None:
        return False
    if kept.named is None and kept.ref == sent.ref and not kept.identifying:
        legacy = received.model_copy(update={"petitioner": kept})
        return bool(intake_digest(legacy) == stored_digest)
    if kept.identifying:
        return bool(intake_digest(stored.model_copy(update={"petitioner": kept.sealed(sent.ref)}))
                    == intake_digest(received))
    return False


def _classify(state: PetitionState, cmd: c.Classify, actor: Actor, now: datetime, *,
              revised: bool = True, completed: bool = True) -> list[Event]:
    require(state.status == S.RECEIVED, "classify.state",
            f"a case can be classified only when received, not {state.status}")
    require(not cmd.especially_complex or _given(cmd.reason), "classify.especially_complex_reason",
            "Luật Tố cáo 2018, Điều 30: a case found especially complex (đặc biệt phức tạp) needs its reason")
    kind = cmd.kind or state.kind
    env = envelope(cmd, actor, now)
    check_body(state, cmd.lead_body, "classify.body", now)
    routed = route(state, cmd, kind, now) if cmd.lead_body is None else None
    lead = cmd.lead_body or (routed.body if routed else None) or state.lead_body
    first: list[Deadline] = []
    if kind != state.kind:
        require(state.instance == 1, "classify.kind_second_instance", "a second-instance complaint stays a complaint")
        # The letter's first clock is the one of its real kind, still counted from the day of receipt.
        received = state.intake.received_at
        first = [deadline_for(state.rules, _first_key(state.rules, kind, state.instance, state.intake, revised,
                                                      completed), received)]
        if kind == K.DENUNCIATION:
            first += _forwarder_notice(state.rules, "denunciation.forwarder_notice", state.intake, received, revised)
        if _reception_forwarded(kind, state.intake):
            first += _owed(state.rules, "reception.forwarder_notice", received, completed)
    events: list[Event] = [
        e.Classified(**{**env, "legal_basis": routed.legal_basis if routed else None}, kind=kind,
                     subject_category=cmd.subject_category, complex=cmd.complex or cmd.especially_complex,
                     especially_complex=cmd.especially_complex, remote_area=cmd.remote_area,
                     lead_body=lead, routed=routed, deadlines=first)
    ]
    if kind == K.DENUNCIATION and state.intake.petitioner.anonymous:
        events.append(
            e.NotProcessed(**envelope(cmd, actor, now, "Luật Tố cáo 2018, Điều 25"),
                           ground="anonymous denunciation (no name or address, or a false name)")
        )
    return events


def _split(state: PetitionState, cmd: c.Split, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in {S.RECEIVED, S.CLASSIFIED}, "split.state",
            f"a letter can be split only before it is accepted, not when {state.status}")
    children = [
        {"case_id": f"{state.case_id}-{i}", "kind": part.kind.value, "subject": part.subject, "content": part.content}
        for i, part in enumerate(cmd.parts, start=1)
    ]
    return [e.PetitionSplit(**envelope(cmd, actor, now, "TT 05/2021/TT-TTCP (xử lý đơn)"), children=children)]


def _accept(state: PetitionState, cmd: c.Accept, actor: Actor, now: datetime, *, on: date) -> list[Event]:
    """Thụ lý: the resolution periods run from the acceptance decision's date (`on`)."""
    require(state.status == S.CLASSIFIED, "accept.state",
            f"only a classified case can be accepted (thụ lý), not one that is {state.status}")
    lead = cmd.lead_body or state.lead_body
    require(lead is not None, "accept.lead_body", "name the competent body (lead_body) that accepts the case")
    check_body(state, lead, "accept.body", end_of_day(on))
    new = [
        deadline_for(state.rules, key, on, complex=state.complex, remote=state.remote_area)
        for key in resolution_keys(state.kind, state.instance)
    ]
    basis = new[0].legal_basis if new else LAW[state.kind]
    return [e.AcceptanceDecided(**envelope(cmd, actor, now, basis), dated=on, accepted=True,
                                decision_no=cmd.decision_no, lead_body=lead, deadlines=new)]


def _reject(state: PetitionState, cmd: c.Reject, actor: Actor, now: datetime, *, on: date) -> list[Event]:
    require(state.status == S.CLASSIFIED, "reject.state",
            f"only a classified case can be refused (không thụ lý), not one that is {state.status}")
    basis = "Luật Khiếu nại 2011, Điều 11 và 27" if state.kind == K.COMPLAINT else LAW[state.kind]
    return [e.AcceptanceDecided(**envelope(cmd, actor, now, basis), dated=on, accepted=False,
                                decision_no=cmd.notice_no, reasons=list(cmd.reasons))]


def _forward(state: PetitionState, cmd: c.Forward, actor: Actor, now: datetime, *, on: date) -> list[Event]:
    require(state.status in {S.RECEIVED, S.CLASSIFIED}, "forward.state",
            f"a petition is forwarded before it is accepted, not when {state.status}")
    require(cmd.to_body != state.lead_body, "forward.same_body", "the petition is already with that body")
    check_body(state, cmd.to_body, "forward.body", end_of_day(on))
    return [e.Forwarded(**envelope(cmd, actor, now, "TT 05/2021/TT-TTCP (chuyển đơn)"), dated=on,
                        to_body=cmd.to_body, notice_no=cmd.notice_no)]


def _redirect(state: PetitionState, cmd: c.Redirect, actor: Actor, now: datetime, *, on: date) -> list[Event]:
    require(state.status in {S.RECEIVED, S.CLASSIFIED}, "redirect.state",
            f"a petitioner is redirected before acceptance, not when {state.status}")
    return [e.Redirected(**envelope(cmd, actor, now, "TT 05/2021/TT-TTCP (hướng dẫn)"), dated=on,
                         guidance=cmd.guidance)]


def _assign(state: PetitionState, cmd: c.Assign, actor: Actor, now: datetime) -> list[Event]:
    require(state.open, "assign.state", f"a case that is {state.status} cannot be reassigned")
    require(cmd.body != state.lead_body or cmd.officer != state.officer, "assign.unchanged",
            "the case is already with that body and officer")
    check_body(state, cmd.body, "assign.body", now)
    return [e.Assigned(**envelope(cmd, actor, now), body=cmd.body, officer=cmd.officer,
                       previous_body=state.lead_body)]


#: The period the law gives a body asked to coordinate, by kind of case (Quyết định 33/2017/QĐ-TTg).
COORDINATION_RULES = {K.VOTER_PETITION: "voter_petition.coordination_reply"}


def _request_coordination(state: PetitionState, cmd: co.RequestCoordination, actor: Actor,
                          now: datetime, *, completed: bool = True) -> list[Event]:
    """Ask bodies for their part. A voters' petition's bodies reply within the period its rules give them (since
    the periods-completed patch, when the recorded policy has it): by default, and never later."""
    require(state.status in HANDLING | {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING}, "coordination.state",
            f"coordination is requested while the case is handled, not when {state.status}")
    for target in cmd.bodies:
        check_body(state, target.body, "coordination.body", now)
    lead = [state.lead_body] if state.lead_body else []
    key = COORDINATION_RULES.get(state.kind)
    legal = state.rules.policy.rules.get(key) if completed and key else None
    return [co.decide_request(state.coordination, cmd, state.rules.calendar, now, envelope(cmd, actor, now),
                              lead=lead, legal=legal)]


def _respond(state: PetitionState, cmd: co.Respond, actor: Actor, now: datetime) -> list[Event]:
    return [co.decide_response(state.coordination, cmd, envelope(cmd, actor, now))]


def _verify(state: PetitionState, cmd: c.RecordVerification, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in HANDLING, "verification.state",
            f"verification happens after acceptance and before the decision, not when {state.status}")
    basis = "Luật Khiếu nại 2011, Điều 29" if state.kind == K.COMPLAINT else LAW[state.kind]
    return [e.VerificationStep(**envelope(cmd, actor, now, basis), findings=cmd.findings,
                               demand_matches_findings=cmd.demand_matches_findings)]


def _dialogue(state: PetitionState, cmd: c.RecordDialogue, actor: Actor, now: datetime) -> list[Event]:
    require(state.kind == K.COMPLAINT, "dialogue.kind", "a dialogue (đối thoại) belongs to complaints")
    require(state.status in {S.VERIFYING, S.DIALOGUE}, "dialogue.state",
            f"a dialogue follows verification, not {state.status}")
    return [e.DialogueHeld(**envelope(cmd, actor, now, "Luật Khiếu nại 2011, Điều 30"), held_on=cmd.held_on,
                           participants=list(cmd.participants), summary=cmd.summary)]


_COMPLEXITY_VI = {"ordinary": "vụ việc thông thường (ordinary)", "complex": "vụ việc phức tạp (complex)",
                  "especially_complex": "vụ việc đặc biệt phức tạp (especially complex)"}


def _decision_date(cmd: c.Extend) -> date | None:
    """The extension decision's date: `decision_date`, or the act's `dated` (the two, if both given, agree)."""
    if cmd.dated is not None and cmd.decision_date is not None:
        require(cmd.dated == cmd.decision_date, "extend.decision_date_mismatch",
                f"the extension decision is dated {cmd.dated.isoformat()} (dated) and "
                f"{cmd.decision_date.isoformat()} (decision_date): give one date")
    return cmd.decision_date or cmd.dated


def _extension_decision(state: PetitionState, cmd: c.Extend, now: datetime, basis: str) -> None:
    """The written extension decision: its own number, and a date neither in the future nor before receipt."""
    decision_date = _decision_date(cmd)
    require(decision_date is not None, "extend.decision_date",
            f"{basis}: an extension is decided in writing; give the decision's date (dated)")
    assert decision_date is not None
    today, received = local_date(now), local_date(state.intake.received_at)
    require(decision_date <= today, "extend.decision_date_future",
            f"the extension decision is dated {decision_date.isoformat()}, after today ({today.isoformat()})")
    require(decision_date >= received, "extend.decision_date_before_receipt",
            f"the extension decision is dated {decision_date.isoformat()}, before the petition was received "
            f"({received.isoformat()})")
    used = [d["decision_no"] for d in state.extension_decisions]
    require(cmd.decision_no.strip() not in used, "extend.decision_no_reused",
            f"decision {cmd.decision_no} already granted an extension of this case: each has its own number")


def _extend(state: PetitionState, cmd: c.Extend, actor: Actor, now: datetime, *, on: date,
            revised: bool = True) -> list[Event]:
    """Gia hạn: decided before the period ends, by the decision's date."""
    require(state.kind != K.COMPLAINT, "complaint.no_extension",
            "Luật Khiếu nại 2011, Điều 28: a complaint's period (30, or 45 days when complex) is not extended")
    require(state.status in HANDLING, "extend.state", f"only a case being resolved can be extended, not {state.status}")
    keys = [k for k in resolution_keys(state.kind, state.instance) if _pending(state, k)]
    key = keys[0] if keys and keys[0].endswith(".resolution") else None
    require(key is not None, "extend.no_deadline", "the case has no running resolution period to extend")
    assert key is not None
    current = state.deadlines[key]
    rule = state.rules.policy.rule(key)
    basis = rule.extension_basis or rule.legal_basis
    complexity = "especially_complex" if cmd.especially_complex else state.complexity
    if revised and rule.max_extensions and rule.extensions_allowed(complexity) == 0:
        raise DomainError(f"{state.kind.value}.extension_not_allowed",
                          f"{basis}: a case classified as {_COMPLEXITY_VI[complexity]} is not extended; only a "
                          "complex case (once) or an especially complex one (twice) is")
    allowed = rule.extensions_allowed(complexity if revised else None)
    require(can_extend(current.deadline, rule, complexity if revised else None),
            f"{state.kind.value}.extension_limit",
            f"{basis}: at most {allowed} extension(s) of {rule.extension_amount or 0} days for "
            f"{_COMPLEXITY_VI[complexity] if revised else 'a case'}; {current.deadline.extensions} already granted")
    decision_date = _decision_date(cmd) if revised else None
    on = decision_date or on
    require(on <= current.deadline.due_on, "extend.after_deadline",
            "an extension is decided before the period ends; this one ended on "
            f"{current.deadline.due_on.isoformat()}")
    require(_given(cmd.reason), "extend.reason", "an extension needs its reason (the complexity criterion)")
    if revised:
        _extension_decision(state, cmd, now, basis)
    try:
        extended = extend_deadline(current.deadline, rule, state.rules.calendar,
                                   complexity=complexity if revised else None, from_start=revised)
    except CalendarRangeError as exc:
        raise DomainError("calendar.out_of_range", str(exc)) from exc
    return [e.ExtensionGranted(**envelope(cmd, actor, now, basis if revised else rule.legal_basis), dated=on,
                               decision_no=cmd.decision_no, deadline=extended, decision_date=decision_date,
                               especially_complex=revised and cmd.especially_complex and not state.especially_complex)]


def _suspend(state: PetitionState, cmd: c.Suspend, actor: Actor, now: datetime, *, on: date,
             revised: bool = True, completed: bool = True) -> list[Event]:
    """Tạm đình chỉ: the clocks stop on the suspension decision's date (`on`), and its notice runs from it."""
    require(state.open and state.status not in {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING}, "suspend.state",
            f"a case that is {state.status} cannot be suspended")
    require(not state.suspended, "suspend.already", "the case is already suspended")
    require(_given(cmd.reason), "suspend.reason", "a suspension (tạm đình chỉ) needs its reason")
    rule = state.rules.policy.suspension_counts(state.kind.value) if revised else None
    clocks = stop_clocks(state.deadlines, end_of_day(on)) if rule is not None and not rule.counts else []
    basis = rule.legal_basis if rule is not None else LAW[state.kind]
    notice = _owed(state.rules, SUSPENSION_NOTICE, on, completed) if state.kind == K.DENUNCIATION else []
    return [e.Suspended(**envelope(cmd, actor, now, basis), dated=on, stopped=clocks, deadlines=notice)]


def _resume(state: PetitionState, cmd: c.Resume, actor: Actor, now: datetime, *, on: date) -> list[Event]:
    """Resume: each stopped period continues from the resumption's date (`on`) for what remained of it, on the
    case's calendar."""
    require(state.suspended, "resume.not_suspended", "the case is not suspended")
    rule = state.rules.policy.suspension_counts(state.kind.value)
    try:
        new = [restart_clock(d, on, state.rules.calendar)
               for _, d in sorted(state.deadlines.items()) if d.pending and d.stopped_on is not None]
    except CalendarRangeError as exc:
        raise DomainError("calendar.out_of_range", str(exc)) from exc
    basis = rule.legal_basis if new and rule is not None else LAW[state.kind]
    return [e.Resumed(**envelope(cmd, actor, now, basis), dated=on, deadlines=new)]


def _withdraw(state: PetitionState, cmd: c.Withdraw, actor: Actor, now: datetime, *, on: date,
              completed: bool = True) -> list[Event]:
    if state.kind == K.DENUNCIATION and state.decided_at is not None:
        raise DomainError("denunciation.withdraw_after_conclusion",
                          f"{DENUNCIATION_WITHDRAWAL}: a denunciation may be withdrawn only before the conclusion; "
                          f"the conclusion was issued on {local_date(state.decided_at).isoformat()}")
    require(state.open, "withdraw.state", f"a case that is {state.status} cannot be withdrawn")
    require(not state.withdrawn, "withdraw.already", "the petition was already withdrawn")
    env = {**envelope(cmd, actor, now, LAW[state.kind]), "dated": on}
    if state.kind == K.DENUNCIATION:
        require(state.status not in {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING}, "denunciation.withdraw_after_conclusion",
                f"{DENUNCIATION_WITHDRAWAL}: a denunciation may be withdrawn only before the conclusion")
        if cmd.signs_of_violation or cmd.coerced:
            return [e.Withdrawn(**{**env, "legal_basis": "Luật Tố cáo 2018, Điều 33"}, continues=True,
                                signs_of_violation=cmd.signs_of_violation, coerced=cmd.coerced)]
    else:
        require(state.status not in {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING}, "withdraw.after_decision",
                "the petition was already decided")
    basis = "Luật Khiếu nại 2011, Điều 10" if state.kind == K.COMPLAINT else env["legal_basis"]
    # A denunciation's termination decision is sent to the parties (Luật Tố cáo 2018, Điều 34 khoản 4).
    notice = _owed(state.rules, SUSPENSION_NOTICE, on, completed) if state.kind == K.DENUNCIATION else []
    return [
        e.Withdrawn(**{**env, "legal_basis": basis}, continues=False),
        e.Terminated(**{**env, "legal_basis": basis}, ground="withdrawn by the petitioner (đình chỉ)",
                     deadlines=notice),
    ]


def _decide(state: PetitionState, cmd: c.Decide, actor: Actor, now: datetime, *, on: date,
            revised: bool = True, completed: bool = True) -> list[Event]:
    """The decision: the periods it starts run from its date (`on`), and the resolution period it meets is judged
    by that date."""
    require(state.status in HANDLING, "decide.state",
            f"a decision is issued on an accepted case, not one that is {state.status}")
    require(cmd.outcome in OUTCOMES[state.kind], "decide.outcome",
            f"a {state.kind.value} ends with one of {sorted(OUTCOMES[state.kind])}, not {cmd.outcome}")
    if state.kind == K.COMPLAINT:
        require(not (state.demand_matches_findings is False and not state.dialogue_held), "complaint.dialogue_required",
                "Luật Khiếu nại 2011, Điều 30: the demand and the verification result differ, so a dialogue "
                "(đối thoại) must be held before the decision")
    new: list[Deadline] = []
    rules = state.rules
    if state.kind == K.COMPLAINT:
        # A second-instance decision is sent within its own period (Luật Khiếu nại 2011, Điều 41 khoản 1).
        second = _owed(rules, "complaint2.decision_delivery", on, completed) if state.instance == 2 else []
        new += second or [deadline_for(rules, "complaint.decision_delivery", on)]
        new += _forwarder_notice(rules, "complaint.forwarder_notice", state.intake, on, revised)
        new += _owed(rules, DECISION_EFFECT, on, completed, remote=state.remote_area)
    elif state.kind == K.DENUNCIATION:
        new += _owed(rules, "denunciation.conclusion_delivery", on, completed)
        new += _owed(rules, PUBLICATION, on, completed)
    elif _reception_forwarded(state.kind, state.intake):
        new += _owed(rules, "reception.result_notice", on, completed)
    basis = {
        K.COMPLAINT: "Luật Khiếu nại 2011, Điều 31",
        K.DENUNCIATION: "Luật Tố cáo 2018, Điều 35",
    }.get(state.kind, LAW[state.kind])
    running = [d for key, d in state.deadlines.items() if key in RESOLUTION_STAGE and d.pending]
    kept = None if not running else "on_time" if all(on <= d.deadline.due_on for d in running) else "late"
    return [e.DecisionIssued(**envelope(cmd, actor, now, basis), dated=on, form=DECISION_FORM[state.kind],
                             outcome=cmd.outcome, decision_no=cmd.decision_no, summary=cmd.summary, deadlines=new,
                             resolution_outcome=kept)]


def _basis_of_pending(state: PetitionState, keys: Iterable[str]) -> str | None:
    """The legal basis of the first pending deadline among `keys` (the notice a command is about to give)."""
    for key in keys:
        d = _pending(state, key)
        if d is not None:
            return d.deadline.legal_basis
    return None


#: The notices added by the periods-completed patch (`completed`): refused, as unknown, for runs before it.
LATER_NOTICES = frozenset({"suspension", "termination", "publication"})


def _notify(state: PetitionState, cmd: c.Notify, actor: Actor, now: datetime, *, on: date,
            completed: bool = True) -> list[Event]:
    """A notice, judged on time or late by its date (`on`)."""
    if state.suspended and cmd.about != "suspension":
        raise DomainError("case.suspended", f"the case is suspended; a notice of {cmd.about} must wait for `resume`")
    if cmd.about in LATER_NOTICES:
        require(completed, "notify.about", f"`{cmd.about}` is not a notice this case gives")
        return _notify_later(state, cmd, actor, now, on)
    if cmd.about == "forwarder":
        require(forwarded(state.intake), "notify.forwarder_none", "no body forwarded this petition")
        require(state.status not in {S.CLOSED, S.ARCHIVED}, "notify.forwarder_state",
                f"the forwarding body is told while the case is handled, not when it is {state.status}")
        if state.kind == K.COMPLAINT:
            require(state.decided_at is not None, "notify.forwarder_state",
                    "Luật Khiếu nại 2011, Điều 66 khoản 2: the forwarding body is told of the decision once issued")
        basis = {K.COMPLAINT: "Luật Khiếu nại 2011, Điều 66 khoản 2",
                 K.DENUNCIATION: "Luật Tố cáo 2018, Điều 26 khoản 2"}.get(state.kind, LAW[state.kind])
        basis = _basis_of_pending(state, ("reception.forwarder_notice", "reception.result_notice")) or basis
        return [e.NotificationSent(**envelope(cmd, actor, now, basis), dated=on, about=cmd.about,
                                   recipients=list(cmd.recipients), channel=cmd.channel, doc_no=cmd.doc_no)]
    if cmd.about == "acceptance":
        require(state.status in HANDLING, "notify.acceptance_state", "the acceptance is notified after it is decided")
        basis = {K.DENUNCIATION: "Luật Tố cáo 2018, Điều 29.3",
                 K.COMPLAINT: "Luật Khiếu nại 2011, Điều 27"}.get(state.kind, LAW[state.kind])
    else:
        require(state.status == S.DECIDED, "notify.decision_state",
                f"the decision is notified once issued; the case is {state.status}")
        basis = "Luật Khiếu nại 2011, Điều 32" if state.kind == K.COMPLAINT else LAW[state.kind]
        basis = _basis_of_pending(state, ("complaint2.decision_delivery", "denunciation.conclusion_delivery")) or basis
    published = state.kind == K.DENUNCIATION and cmd.channel == "publication"
    return [e.NotificationSent(**envelope(cmd, actor, now, basis), dated=on, about=cmd.about,
                               recipients=list(cmd.recipients),
                               channel=cmd.channel, doc_no=cmd.doc_no, published=published)]


def _notify_later(state: PetitionState, cmd: c.Notify, actor: Actor, now: datetime, on: date) -> list[Event]:
    """The notice of a denunciation's suspension or termination decision, and the publication of its conclusion."""
    require(state.kind == K.DENUNCIATION, "notify.about_kind",
            f"a notice of {cmd.about} belongs to denunciations (Luật Tố cáo 2018), not to a {state.kind.value}")
    if cmd.about == "publication":
        require(state.decided_at is not None and state.status in {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING},
                "notify.publication_state",
                f"Luật Tố cáo 2018, Điều 40: the conclusion is published once issued; the case is {state.status}")
        basis = _basis_of_pending(state, [PUBLICATION]) or "Luật Tố cáo 2018, Điều 40"
        return [e.NotificationSent(**envelope(cmd, actor, now, basis), dated=on, about=cmd.about,
                                   recipients=list(cmd.recipients), channel=cmd.channel, doc_no=cmd.doc_no,
                                   published=True)]
    if cmd.about == "suspension":
        suspended_once = SUSPENSION_NOTICE in state.deadlines and state.status != S.TERMINATED
        require(state.suspended or suspended_once, "notify.suspension_state",
                "Luật Tố cáo 2018, Điều 34 khoản 4: there is no suspension decision to send")
    else:
        require(state.status == S.TERMINATED, "notify.termination_state",
                f"Luật Tố cáo 2018, Điều 34 khoản 4: there is no termination decision to send; the case is "
                f"{state.status}")
    basis = _basis_of_pending(state, [SUSPENSION_NOTICE]) or "Luật Tố cáo 2018, Điều 34 khoản 4"
    return [e.NotificationSent(**envelope(cmd, actor, now, basis), dated=on, about=cmd.about,
                               recipients=list(cmd.recipients),
                               channel=cmd.channel, doc_no=cmd.doc_no)]


def _implement(state: PetitionState, cmd: c.RecordImplementation, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in {S.NOTIFIED, S.IMPLEMENTING}, "implementation.state",
            f"implementation follows the notified decision; the case is {state.status}")
    effect = _pending(state, DECISION_EFFECT)
    if effect is not None:
        raise DomainError("implementation.not_in_effect",
                          f"{effect.deadline.legal_basis}: a complaint decision is carried out once it has legal "
                          f"effect, at the end of {effect.deadline.due_on.isoformat()} unless a second complaint is "
                          "filed")
    return [e.ImplementationRecorded(**envelope(cmd, actor, now), summary=cmd.summary)]


def _external(state: PetitionState, cmd: c.RecordExternalResult, actor: Actor, now: datetime) -> list[Event]:
    require(state.status == S.FORWARDED, "external_result.state", "only a forwarded petition awaits another body")
    return [e.ExternalResultRecorded(**envelope(cmd, actor, now), result=cmd.result)]


#: Luật Tố cáo 2018, Điều 37: a denunciation repeated to the resolver's direct superior.
REPEATED_DENUNCIATION = "Luật Tố cáo 2018, Điều 37"


def _appeal(state: PetitionState, cmd: c.Appeal, actor: Actor, now: datetime, *,
            completed: bool = True) -> list[Event]:
    repeated = (completed and state.kind == K.DENUNCIATION and state.instance == 1
                and "denunciation.repeated" in state.rules.policy.rules)
    require((state.kind == K.COMPLAINT or repeated) and state.instance == 1, "appeal.kind",
            "only a first-instance complaint (or, under the rules in force, a denunciation) can go to the second "
            "instance")
    check_body(state, cmd.to_body, "appeal.body", now)
    new_id = f"{state.case_id}-L2"
    require(new_id not in state.linked_cases, "appeal.already", f"the second instance is already open: {new_id}")
    if repeated:
        return _repeat_denunciation(state, cmd, actor, now, new_id)
    if state.in_effect_on is not None:
        raise DomainError("complaint.decision_in_effect",
                          f"Luật Khiếu nại 2011, Điều 44: the decision took legal effect on "
                          f"{state.in_effect_on.isoformat()}; the window for a second complaint has closed")
    resolution = state.deadlines.get("complaint.resolution")
    window_from: date | datetime
    if state.status in {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING} and state.decided_at is not None:
        window_from = state.decided_on or state.decided_at
    elif state.status in HANDLING and resolution is not None and now > resolution.deadline.due_at:
        window_from = resolution.deadline.due_at  # the first instance let its period pass without a decision
    else:
        raise DomainError("appeal.state", "Luật Khiếu nại 2011, Điều 33: a second complaint follows the first-instance "
                                          "decision, or the end of its period without one")
    window = deadline_for(state.rules, "complaint.second_filing_window", window_from, remote=state.remote_area)
    require(now <= window.due_at, "complaint.appeal_window",
            f"{window.legal_basis}: the window for a second complaint closed on {window.due_on.isoformat()}")
    return [e.EscalatedSecondInstance(**envelope(cmd, actor, now, window.legal_basis), new_case_id=new_id,
                                      to_body=cmd.to_body)]


def _repeat_denunciation(state: PetitionState, cmd: c.Appeal, actor: Actor, now: datetime,
                         new_id: str) -> list[Event]:
    """Tố cáo tiếp: the period passed without a conclusion, or the denouncer holds the conclusion unlawful
    (Luật Tố cáo 2018, Điều 37 khoản 1); the superior handles it as a new linked case (`denunciation.repeated`)."""
    resolution = state.deadlines.get("denunciation.resolution")
    concluded = state.decided_at is not None and state.status in {S.DECIDED, S.NOTIFIED, S.IMPLEMENTING}
    overdue = (state.status in HANDLING and resolution is not None and resolution.pending
               and resolution.stopped_on is None and now > resolution.deadline.due_at)
    require(concluded or overdue, "appeal.state",
            f"{REPEATED_DENUNCIATION} khoản 1: a denunciation is repeated to the superior after its conclusion, or "
            "once its period has passed without one")
    require(cmd.to_body is not None, "appeal.to_body",
            f"{REPEATED_DENUNCIATION}: name the resolver's direct superior (to_body)")
    return [e.EscalatedSecondInstance(**envelope(cmd, actor, now, REPEATED_DENUNCIATION), new_case_id=new_id,
                                      to_body=cmd.to_body)]


def _close(state: PetitionState, cmd: c.Close, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in CLOSABLE, "close.state", f"a case that is {state.status} cannot be closed yet")
    return [e.Closed(**envelope(cmd, actor, now))]


def _archive(state: PetitionState, cmd: c.Archive, actor: Actor, now: datetime) -> list[Event]:
    require(state.status in ARCHIVABLE, "archive.state", f"close the case before archiving it (it is {state.status})")
    return [e.Archived(**envelope(cmd, actor, now, "Luật Lưu trữ 2024; TT 10/2022/TT-BNV"),
                       archive_ref=cmd.archive_ref)]


def _mark_deadline(state: PetitionState, cmd: MarkDeadline, actor: Actor, now: datetime) -> list[Event]:
    """A timer fired. Nothing happens if the deadline was met meanwhile (a timer may fire late on replay)."""
    d = _pending(state, cmd.key)
    if d is None or d.stopped_on is not None:  # met, or its clock stopped while the case is suspended
        return []
    env = envelope(cmd, actor, now, d.deadline.legal_basis)
    due = d.deadline.due_at.isoformat()
    if cmd.stage == "approaching":
        return [] if d.approached or d.breached else [DeadlineApproaching(**env, key=cmd.key, due_at=due)]
    if d.breached or now <= d.deadline.due_at:
        return []
    if cmd.key == DECISION_EFFECT:  # a date reached, not a duty missed
        return [e.DecisionTookEffect(**env, key=cmd.key, effective_on=d.deadline.due_on,
                                     decision_no=(state.decision or {}).get("decision_no", ""))]
    events: list[Event] = [DeadlineBreached(**env, key=cmd.key, due_at=due)]
    if state.front_supervision is None and (cmd.key in RESOLUTION_STAGE or cmd.key in ACCEPTANCE_STAGE):
        events.append(e.FrontSupervisionStarted(**{**env, "legal_basis": "Luật MTTQ 2015, Chương V"},
                                                supervision_id=f"{state.case_id}-front", trigger="breach"))
    return events


def _start_front(state: PetitionState, cmd: c.StartFrontSupervision, actor: Actor, now: datetime) -> list[Event]:
    require(state.front_supervision is None, "front.already", "the Front already supervises this case")
    require(state.open, "front.state", f"a case that is {state.status} is not supervised any more")
    return [e.FrontSupervisionStarted(**envelope(cmd, actor, now, "Luật MTTQ 2015, Chương V"),
                                      supervision_id=f"{state.case_id}-front", trigger=cmd.trigger)]


def _attach(state: PetitionState, cmd: at.Attach, actor: Actor, now: datetime) -> list[Event]:
    return at.decide_attach(state.attachments, cmd, actor, now)


_DECIDERS: dict[type[Any], Any] = {
    at.Attach: _attach,
    c.Classify: _classify, c.Split: _split, c.Accept: _accept, c.Reject: _reject, c.Forward: _forward,
    c.Redirect: _redirect, c.Assign: _assign, co.RequestCoordination: _request_coordination, co.Respond: _respond,
    c.RecordVerification: _verify, c.RecordDialogue: _dialogue, c.Extend: _extend, c.Suspend: _suspend,
    c.Resume: _resume, c.Withdraw: _withdraw, c.Decide: _decide, c.Notify: _notify,
    c.RecordImplementation: _implement, c.RecordExternalResult: _external, c.Appeal: _appeal, c.Close: _close,
    c.Archive: _archive, MarkDeadline: _mark_deadline, c.StartFrontSupervision: _start_front,
}
#: Handlers that decide differently for cases recorded before the legal-periods revision (`revised`) or the
#: periods-completed patch (`completed`), and the flags each takes.
_FLAGS: dict[type[Any], tuple[str, ...]] = {
    c.Classify: ("revised", "completed"), c.Extend: ("revised",), c.Suspend: ("revised", "completed"),
    c.Decide: ("revised", "completed"), c.Withdraw: ("completed",), co.RequestCoordination: ("completed",),
    c.Notify: ("completed",), c.Appeal: ("completed",),
}


# -- evolve -------------------------------------------------------------------------------------------


def _add_body(bodies: list[str], *more: str | None) -> list[str]:
    out = list(bodies)
    for b in more:
        if b and b not in out:
            out.append(b)
    return out


def _act_on(ev: e.DatedEvent) -> date:
    """The date of the act an event records: its `dated`, or (recorded before acts carried one) its day."""
    return ev.dated or local_date(ev.occurred_at)


def _acted(s: PetitionState, step: str, ev: e.DatedEvent) -> dict[str, date]:
    return {**s.acts, step: _act_on(ev)}


@singledispatch
def _apply(event: Event, s: PetitionState) -> dict[str, Any]:
    raise TypeError(f"no evolve rule for {type(event).__name__}")


@_apply.register(RepairRecorded)
@_apply.register(BodyNudged)
def _(ev: Event, s: PetitionState) -> dict[str, Any]:
    return {}  # an operator's repair is on the record; the case itself moves through its own events


@_apply.register
def _(ev: at.AttachmentAdded, s: PetitionState) -> dict[str, Any]:
    return {"attachments": [*s.attachments, ev.sha256]}


@_apply.register
def _(ev: e.Classified, s: PetitionState) -> dict[str, Any]:
    deadlines = s.deadlines
    if ev.deadlines:
        # The clocks of the old kind still pending from receipt are cancelled: its first step's (in-person or
        # not) and a denunciation's notice to its forwarding body.
        old = {*ACCEPTANCE_STAGE, first_deadline_key(s.kind, s.instance)}
        if s.kind == K.DENUNCIATION:
            old.add("denunciation.forwarder_notice")
        if s.kind == K.RECOMMENDATION:
            old.add("reception.forwarder_notice")
        deadlines = add_deadlines(cancel_pending(deadlines, old), ev.deadlines)
    return {"status": S.CLASSIFIED, "kind": ev.kind, "subject_category": ev.subject_category, "complex": ev.complex,
            "especially_complex": ev.especially_complex,
            "remote_area": ev.remote_area, "lead_body": ev.lead_body, "bodies": _add_body(s.bodies, ev.lead_body),
            "deadlines": deadlines}


@_apply.register
def _(ev: e.NotProcessed, s: PetitionState) -> dict[str, Any]:
    return {"status": S.NOT_PROCESSED,
            "deadlines": cancel_pending(meet_deadlines(s.deadlines, ACCEPTANCE_STAGE, ev.occurred_at))}


@_apply.register
def _(ev: e.PetitionSplit, s: PetitionState) -> dict[str, Any]:
    met = meet_deadlines(s.deadlines, ACCEPTANCE_STAGE, ev.occurred_at)
    return {"status": S.SPLIT, "deadlines": cancel_pending(met),
            "linked_cases": s.linked_cases + [child["case_id"] for child in ev.children]}


@_apply.register
def _(ev: e.AcceptanceDecided, s: PetitionState) -> dict[str, Any]:
    met = meet_deadlines(s.deadlines, ACCEPTANCE_STAGE, ev.occurred_at, ev.dated)
    if not ev.accepted:
        return {"status": S.REJECTED, "deadlines": cancel_pending(met)}
    lead = ev.lead_body or s.lead_body
    return {"status": S.ACCEPTED, "lead_body": lead, "bodies": _add_body(s.bodies, lead),
            "deadlines": add_deadlines(met, ev.deadlines), "acts": _acted(s, "accepted", ev)}


@_apply.register
def _(ev: e.Forwarded, s: PetitionState) -> dict[str, Any]:
    met = meet_deadlines(s.deadlines, ACCEPTANCE_STAGE, ev.occurred_at, ev.dated)
    return {"status": S.FORWARDED, "bodies": _add_body(s.bodies, ev.to_body), "deadlines": cancel_pending(met)}


@_apply.register
def _(ev: e.Redirected, s: PetitionState) -> dict[str, Any]:
    met = meet_deadlines(s.deadlines, ACCEPTANCE_STAGE, ev.occurred_at, ev.dated)
    return {"status": S.REDIRECTED, "deadlines": cancel_pending(met)}


@_apply.register
def _(ev: e.Assigned, s: PetitionState) -> dict[str, Any]:
    return {"lead_body": ev.body, "officer": ev.officer, "bodies": _add_body(s.bodies, ev.body)}


@_apply.register
def _(ev: co.CoordinationRequested, s: PetitionState) -> dict[str, Any]:
    return {**co.requested(s.coordination, s.deadlines, ev), "bodies": _add_body(s.bodies, *ev.bodies)}


@_apply.register
def _(ev: co.CoordinationResponded, s: PetitionState) -> dict[str, Any]:
    return co.responded(s.coordination, s.deadlines, ev)


@_apply.register
def _(ev: e.VerificationStep, s: PetitionState) -> dict[str, Any]:
    matches = ev.demand_matches_findings if ev.demand_matches_findings is not None else s.demand_matches_findings
    return {"status": S.VERIFYING if s.status != S.DIALOGUE else S.DIALOGUE, "verification_recorded": True,
            "demand_matches_findings": matches}


@_apply.register
def _(ev: e.DialogueHeld, s: PetitionState) -> dict[str, Any]:
    return {"status": S.DIALOGUE, "dialogue_held": True}


@_apply.register
def _(ev: e.ExtensionGranted, s: PetitionState) -> dict[str, Any]:
    decision = {"decision_no": ev.decision_no.strip(),
                "decision_date": ev.decision_date.isoformat() if ev.decision_date else ""}
    return {"deadlines": add_deadlines(s.deadlines, [ev.deadline]),
            "especially_complex": s.especially_complex or ev.especially_complex,
            "complex": s.complex or ev.especially_complex,
            "extension_decisions": [*s.extension_decisions, decision], "acts": _acted(s, "extended", ev)}


@_apply.register
def _(ev: e.Suspended, s: PetitionState) -> dict[str, Any]:
    # The clocks stop first; the notice the suspension starts runs while the case is suspended.
    return {"suspended": True, "acts": _acted(s, "suspended", ev),
            "deadlines": add_deadlines(stopped(s.deadlines, ev.stopped, _act_on(ev)), ev.deadlines)}


@_apply.register
def _(ev: e.Resumed, s: PetitionState) -> dict[str, Any]:
    return {"suspended": False, "deadlines": restarted(s.deadlines, ev.deadlines), "acts": _acted(s, "resumed", ev)}


@_apply.register
def _(ev: e.Withdrawn, s: PetitionState) -> dict[str, Any]:
    return {"withdrawn": True}


@_apply.register
def _(ev: e.Terminated, s: PetitionState) -> dict[str, Any]:
    return {"status": S.TERMINATED, "suspended": False, "acts": _acted(s, "terminated", ev),
            "deadlines": add_deadlines(cancel_pending(s.deadlines), ev.deadlines)}


@_apply.register
def _(ev: e.DecisionIssued, s: PetitionState) -> dict[str, Any]:
    met = meet_deadlines(s.deadlines, RESOLUTION_STAGE, ev.occurred_at, ev.dated)
    return {"status": S.DECIDED, "decided_at": ev.occurred_at, "decided_on": _act_on(ev),
            "acts": _acted(s, "decided", ev),
            "decision": {"form": ev.form, "outcome": ev.outcome, "decision_no": ev.decision_no},
            "deadlines": add_deadlines(met, ev.deadlines)}


@_apply.register
def _(ev: e.NotificationSent, s: PetitionState) -> dict[str, Any]:
    at, on = ev.occurred_at, ev.dated
    if ev.about == "forwarder":
        return {"deadlines": meet_deadlines(s.deadlines, FORWARDER_NOTICES, at, on)}
    if ev.about == "acceptance":
        return {"deadlines": meet_deadlines(s.deadlines, ["denunciation.acceptance_notice"], at, on)}
    if ev.about in ("suspension", "termination"):
        return {"deadlines": meet_deadlines(s.deadlines, [SUSPENSION_NOTICE], at, on)}
    published = meet_deadlines(s.deadlines, [PUBLICATION], at, on) if ev.published else s.deadlines
    if ev.about == "publication":
        return {"deadlines": published}
    return {"status": S.NOTIFIED, "deadlines": meet_deadlines(published, DECISION_NOTICES, at, on)}


@_apply.register
def _(ev: e.DecisionTookEffect, s: PetitionState) -> dict[str, Any]:
    d = s.deadlines[ev.key]
    reached = d.model_copy(update={"met_at": ev.occurred_at, "outcome": "on_time"})
    return {"deadlines": {**s.deadlines, ev.key: reached}, "in_effect_on": ev.effective_on,
            "decision": {**(s.decision or {}), "in_effect_on": ev.effective_on.isoformat()}}


@_apply.register
def _(ev: e.ImplementationRecorded, s: PetitionState) -> dict[str, Any]:
    return {"status": S.IMPLEMENTING}


@_apply.register
def _(ev: e.ExternalResultRecorded, s: PetitionState) -> dict[str, Any]:
    return {"decision": {"form": "external_result", "outcome": ev.result[:200], "decision_no": ""}}


@_apply.register
def _(ev: e.EscalatedSecondInstance, s: PetitionState) -> dict[str, Any]:
    # A first-instance decision appealed in time does not take legal effect (Luật Khiếu nại 2011, Điều 44).
    return {"linked_cases": [*s.linked_cases, ev.new_case_id],
            "deadlines": cancel_pending(s.deadlines, [DECISION_EFFECT])}


@_apply.register
def _(ev: DeadlineApproaching, s: PetitionState) -> dict[str, Any]:
    return {"deadlines": mark_deadline(s.deadlines, ev.key, "approaching")}


@_apply.register
def _(ev: DeadlineBreached, s: PetitionState) -> dict[str, Any]:
    return {"deadlines": mark_deadline(s.deadlines, ev.key, "breached")}


@_apply.register
def _(ev: e.FrontSupervisionStarted, s: PetitionState) -> dict[str, Any]:
    return {"front_supervision": ev.supervision_id}


@_apply.register
def _(ev: e.Closed, s: PetitionState) -> dict[str, Any]:
    # Closing cancels what was owed, not the day the decision takes effect, which the law sets.
    owed = [k for k in s.deadlines if k != DECISION_EFFECT]
    return {"status": S.CLOSED, "suspended": False, "deadlines": cancel_pending(s.deadlines, owed)}


@_apply.register
def _(ev: e.Archived, s: PetitionState) -> dict[str, Any]:
    # Only what a closed case keeps running is left to cancel: the date its decision takes effect.
    return {"status": S.ARCHIVED, "deadlines": cancel_pending(s.deadlines, [DECISION_EFFECT])}


def evolve(state: PetitionState | None, event: Event) -> PetitionState:
    """The state after one more event. Every event adds one to the version."""
    if isinstance(event, e.PetitionReceived):
        if state is not None:
            raise ValueError("PetitionReceived can only open a case")
        intake = event.intake
        return PetitionState(
            case_id=event.case_id, version=1, kind=intake.kind, instance=event.instance, intake=intake,
            intake_digest=event.intake_digest, rules=event.case_rules(), rules_ref=event.rules_ref,
            lead_body=intake.receiving_body,
            bodies=_add_body([], intake.receiving_body),
            deadlines=add_deadlines({}, event.deadlines), parent_case_id=event.parent_case_id,
            linked_cases=[event.parent_case_id] if event.parent_case_id else [],
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before PetitionReceived")
    changes = _apply(event, state)
    return state.model_copy(update={**changes, "version": state.version + 1})


def fold(events: Iterable[Event], state: PetitionState | None = None) -> PetitionState | None:
    for event in events:
        state = evolve(state, event)
    return state
