"""The Front's escalation ladder (docs/legal-reference.md §4) decided on real 2026 dates with the policy files.

Expected dates were counted by hand on the 2026 days off of `holidays` 0.109 (Tết 16-20 Feb, 30 Apr, 1 May);
the comments show the count.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy
from domain import front_supervision as fs
from domain.calendar import VN_TZ, end_of_day
from domain.common import SYSTEM, Actor, DomainError, Event
from domain.deadlines import CaseRules, Deadline, MarkDeadline, compute_deadline

RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2025, 2027, load_calendar_overrides()))
OFFICER = Actor(id="ttmt-01", role="body", body="UBMTTQ_TINH")
RESOLVER = "UBND_TINH"
S = fs.SupervisionStatus


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN_TZ)


def just_after(deadline: Deadline) -> datetime:
    return deadline.due_at + timedelta(seconds=1)


#: A complaint accepted on Mon 12 Jan 2026: 12 Jan + 30 days = Wed 11 Feb 2026, a working day.
WATCHED = compute_deadline(RULES.policy.rule("complaint.resolution"), date(2026, 1, 12), RULES.calendar)


#: The resolver's answer to the Front's recommendation on a complaint (Luật Khiếu nại 2011, Điều 66 khoản 2).
ANSWER = fs.LEGAL_RESPONSE["complaint"]


def opened(trigger: fs.Trigger = "front_forwarded", *, watched: Deadline | None = WATCHED,
           resolver: str | None = RESOLVER, when: datetime | None = None) -> fs.SupervisionState:
    events = fs.decide(None, open_command(trigger, watched=watched, resolver=resolver), SYSTEM,
                       when or at(date(2026, 1, 13)))
    state = fs.fold(events)
    assert state is not None
    return state


def open_command(trigger: fs.Trigger, *, watched: Deadline | None = WATCHED,
                 resolver: str | None = RESOLVER) -> fs.Open:
    return fs.Open(supervision_id="HD-2026-0001-front", case_id="HD-2026-0001", case_kind="complaint",
                   resolver=resolver, trigger=trigger, rules=RULES, watched_due=watched)


def step(state: fs.SupervisionState, command: fs.FrontCommand, now: datetime,
         actor: Actor = OFFICER) -> tuple[fs.SupervisionState, list[Event]]:
    events = fs.decide(state, command, actor, now)
    new = fs.fold(events, state)
    assert new is not None
    return new, events


def refused(state: fs.SupervisionState | None, command: fs.FrontCommand, now: datetime, actor: Actor = OFFICER) -> str:
    """The rule that refuses `command`; a refusal is an exception, so it returns no events at all."""
    with pytest.raises(DomainError) as info:
        fs.decide(state, command, actor, now)
    return info.value.rule


def names(events: list[Event]) -> list[str]:
    return [e.event_type() for e in events]


# --- the whole ladder, up to a satisfied close ---


def test_forwarded_watch_climbs_to_satisfied_and_closes_on_real_dates() -> None:
    s = opened("front_forwarded")
    assert s.status == S.WATCHING
    mirror = s.deadlines["complaint.resolution"].deadline
    assert mirror.due_on == date(2026, 2, 11)
    assert mirror.legal_basis == "Luật Khiếu nại 2011, Điều 28"  # the watched deadline keeps its legal basis
    assert mirror.warn_at == end_of_day(date(2026, 2, 8))  # front.reminder_before: 3 calendar days before
    assert s.next_due == mirror

    # The timer at the reminder moment: the internal reminder, by the system (§4 step 2).
    s, events = step(s, MarkDeadline(key="complaint.resolution", stage="approaching"), at(date(2026, 2, 9), 0, 1),
                     SYSTEM)
    assert names(events) == ["DeadlineApproaching", "FrontReminded"]
    assert s.status == S.REMINDED and s.reminders[0].automatic and s.reminders[0].actor == "system:danvan"

    # A đôn đốc follows a missed deadline, not one still running.
    assert refused(s, fs.Urge(doc_no="12/MTTQ-BTT"), at(date(2026, 2, 10))) == "urge.not_due"

    # Breached on Thu 12 Feb: the urge period starts, counted from that day in working days:
    # Fri 13, (Tết 16-20 Feb and two weekends off), Mon 23, Tue 24, Wed 25, Thu 26 Feb.
    s, events = step(s, MarkDeadline(key="complaint.resolution", stage="breached"), just_after(mirror), SYSTEM)
    assert names(events) == ["DeadlineBreached"]
    urge_due = s.deadlines[fs.URGE_AFTER_BREACH].deadline
    assert urge_due.due_on == date(2026, 2, 26) and urge_due.unit == "working"
    assert urge_due.rule_ref == "POLICY:front.urge_after_breach" and not urge_due.statutory
    assert s.overdue

    s, events = step(s, fs.Urge(doc_no="15/MTTQ-BTT"), at(date(2026, 2, 24)))
    assert names(events) == ["FrontUrged"] and s.status == S.URGED
    assert s.urges[0].to_body == RESOLVER and s.urges[0].doc_no == "15/MTTQ-BTT"
    assert s.deadlines[fs.URGE_AFTER_BREACH].outcome == "on_time"
    assert s.deadlines["complaint.resolution"].outcome == "cancelled"
    assert not s.overdue

    # The recommendation to the resolver itself, on a complaint: 7 calendar days (Luật Khiếu nại 2011, Điều 66
    # khoản 2) from Wed 15 Apr = Wed 22 Apr 2026.
    s, events = step(s, fs.SendRecommendation(to_body=RESOLVER, doc_no="22/KN-MTTQ"), at(date(2026, 4, 15)))
    assert names(events) == ["FrontRecommendationSent"] and s.status == S.RECOMMENDATION_SENT
    answer_due = s.deadlines[ANSWER].deadline
    assert answer_due.due_on == date(2026, 4, 22)
    assert answer_due.legal_basis == "Luật Khiếu nại 2011, Điều 66 khoản 2" and answer_due.statutory
    assert not s.recommendations[0].to_superior

    assert refused(s, fs.RecordResponse(body="SO_TNMT", summary="..."), at(date(2026, 4, 21))) == "response.body"
    s, events = step(s, fs.RecordResponse(body=RESOLVER, summary="Đã giải quyết, trả lời công dân."),
                     at(date(2026, 4, 21)))
    assert s.status == S.RESPONSE_RECEIVED and s.deadlines[ANSWER].outcome == "on_time"

    s, events = step(s, fs.AcceptResponse(), at(date(2026, 4, 29)))
    assert names(events) == ["FrontResponseAccepted"] and s.status == S.SATISFIED

    s, events = step(s, fs.Close(), at(date(2026, 4, 29)))
    assert names(events) == ["FrontSupervisionClosed"] and s.status == S.CLOSED
    assert s.version == 9
    for command in (fs.Close(reason="again"), fs.Remind(), MarkDeadline(key=fs.URGE_AFTER_BREACH,
                                                                            stage="breached")):
        assert refused(s, command, at(date(2026, 5, 10))) == "supervision.closed"


def test_a_manual_reminder_also_moves_a_watch_to_reminded_and_the_timer_then_adds_no_second_one() -> None:
    s, events = step(opened(), fs.Remind(), at(date(2026, 2, 5)))
    assert names(events) == ["FrontReminded"] and s.status == S.REMINDED and not s.reminders[0].automatic
    s, events = step(s, MarkDeadline(key="complaint.resolution", stage="approaching"), at(date(2026, 2, 9)),
                     SYSTEM)
    assert names(events) == ["DeadlineApproaching"]


# --- dispute and escalation ---


def test_breach_trigger_urges_recommends_to_the_superior_disputes_and_escalates() -> None:
    s = opened("breach", resolver="SO_TNMT", when=at(date(2026, 2, 12), 8))
    # Counted from the breach (Thu 12 Feb), not from the watch: due Thu 26 Feb across Tết.
    assert list(s.deadlines) == [fs.URGE_AFTER_BREACH]
    assert s.deadlines[fs.URGE_AFTER_BREACH].deadline.due_on == date(2026, 2, 26)

    assert refused(s, fs.Escalate(target="party_committee", to_body="TINH_UY"),
                   at(date(2026, 2, 13))) == "escalate.no_recommendation"
    assert refused(s, fs.SendRecommendation(to_body="UBND_TINH", doc_no="1/KN"),
                   at(date(2026, 2, 13))) == "recommendation.state"
    s, _ = step(s, fs.Urge(doc_no="3/MTTQ-BTT"), at(date(2026, 2, 13)))
    assert s.urges[0].to_body == "SO_TNMT"

    # To the resolver's superior: front.superior_response, 7 days from Mon 2 Mar = Mon 9 Mar.
    s, _ = step(s, fs.SendRecommendation(to_body="UBND_TINH", doc_no="9/KN-MTTQ"), at(date(2026, 3, 2)))
    assert s.recommendations[0].to_superior
    superior_due = s.deadlines[fs.SUPERIOR_RESPONSE].deadline
    assert superior_due.due_on == date(2026, 3, 9) and superior_due.rule_ref == "POLICY:front.superior_response"
    assert refused(s, fs.Escalate(target="party_committee", to_body="TINH_UY"),
                   at(date(2026, 3, 5))) == "escalate.awaiting_response"
    assert refused(s, fs.Close(reason="done"), at(date(2026, 3, 5))) == "close.state"
    assert refused(s, fs.AcceptResponse(), at(date(2026, 3, 5))) == "accept.no_response"

    s, _ = step(s, fs.RecordResponse(body="UBND_TINH", summary="Giữ nguyên quyết định."), at(date(2026, 3, 6)))
    assert refused(s, fs.Escalate(target="party_committee", to_body="TINH_UY"),
                   at(date(2026, 3, 6))) == "escalate.state"
    s, events = step(s, fs.Dispute(reason="Trả lời không giải quyết nội dung kiến nghị."), at(date(2026, 3, 10)))
    assert names(events) == ["FrontResponseDisputed"] and s.status == S.DISPUTED
    assert s.dispute_reason == "Trả lời không giải quyết nội dung kiến nghị."
    assert refused(s, fs.Close(reason="x"), at(date(2026, 3, 10))) == "close.state"

    s, events = step(s, fs.Escalate(target="party_committee", to_body="TINH_UY"), at(date(2026, 3, 11)))
    assert names(events) == ["FrontEscalated"] and s.status == S.ESCALATED
    assert s.escalation is not None and s.escalation.target == "party_committee" and not s.escalation.automatic
    assert events[0].legal_basis is not None and "217-QĐ/TW" in events[0].legal_basis
    assert refused(s, fs.Escalate(target="party_committee", to_body="TINH_UY"),
                   at(date(2026, 3, 12))) == "escalate.already"
    # It may also be proposed for the HĐND's supervision agenda (Luật HĐGS Art 58).
    s, _ = step(s, fs.Escalate(target="hdnd_supervision", to_body="HDND_TINH"), at(date(2026, 3, 12)))
    assert [e.target for e in s.escalations] == ["party_committee", "hdnd_supervision"]
    assert s.bodies == ["UBMTTQ_TINH", "SO_TNMT", "UBND_TINH", "TINH_UY", "HDND_TINH"]

    s, _ = step(s, fs.Close(), at(date(2026, 3, 20)))
    assert s.status == S.CLOSED


def test_an_unanswered_recommendation_is_escalated_by_the_system_when_its_period_is_breached() -> None:
    s = opened("breach", when=at(date(2026, 2, 12), 8))
    s, _ = step(s, fs.Urge(doc_no="3/MTTQ-BTT"), at(date(2026, 2, 13)))
    s, _ = step(s, fs.SendRecommendation(to_body=RESOLVER, doc_no="22/KN-MTTQ"), at(date(2026, 4, 15)))
    due = s.deadlines[ANSWER].deadline
    assert due.due_on == date(2026, 4, 22)  # a complaint: 7 days (Luật Khiếu nại 2011, Điều 66 khoản 2)

    s, events = step(s, MarkDeadline(key=ANSWER, stage="approaching"), at(date(2026, 4, 21), 0, 1), SYSTEM)
    assert names(events) == ["DeadlineApproaching"] and s.status == S.RECOMMENDATION_SENT
    # A timer that fires early (before the end of the last day) is not a breach.
    assert fs.decide(s, MarkDeadline(key=ANSWER, stage="breached"), SYSTEM, at(date(2026, 4, 22), 23, 59)) == []

    s, events = step(s, MarkDeadline(key=ANSWER, stage="breached"), just_after(due), SYSTEM)
    assert names(events) == ["DeadlineBreached", "FrontEscalated"]
    escalated = events[1]
    assert isinstance(escalated, fs.FrontEscalated)
    assert escalated.automatic and escalated.target == "party_committee" and escalated.to_body == "TINH_UY"
    assert escalated.actor == "system:danvan" and escalated.after_deadline == ANSWER
    assert s.status == S.ESCALATED and not s.overdue
    assert s.deadlines[ANSWER].breached
    # Too late to answer through the ladder: the matter is with the Party committee.
    assert refused(s, fs.RecordResponse(body=RESOLVER, summary="muộn"), at(date(2026, 4, 24))) == "response.state"
    # The same timer firing again on replay changes nothing.
    assert fs.decide(s, MarkDeadline(key=ANSWER, stage="breached"), SYSTEM, at(date(2026, 4, 24))) == []


def test_the_recommendation_on_another_kind_of_case_keeps_the_policy_period() -> None:
    events = fs.decide(None, open_command("breach").model_copy(update={"case_kind": "denunciation"}), SYSTEM,
                       at(date(2026, 2, 12), 8))
    s = fs.fold(events)
    assert s is not None
    s, _ = step(s, fs.Urge(doc_no="3/MTTQ-BTT"), at(date(2026, 2, 13)))
    s, _ = step(s, fs.SendRecommendation(to_body=RESOLVER, doc_no="22/KN-MTTQ"), at(date(2026, 4, 15)))
    # 15 calendar days from Wed 15 Apr = Thu 30 Apr (holiday), Fri 1 May (holiday), weekend -> Mon 4 May 2026.
    assert list(s.deadlines)[-1] == fs.RECOMMENDATION_RESPONSE
    assert s.deadlines[fs.RECOMMENDATION_RESPONSE].deadline.due_on == date(2026, 5, 4)


def test_a_supervision_recorded_before_the_legal_period_keeps_the_policy_period_for_a_complaint() -> None:
    rules = RULES.model_copy(update={"policy": RULES.policy.model_copy(update={
        "rules": {k: v for k, v in RULES.policy.rules.items() if k != ANSWER}})})
    events = fs.decide(None, open_command("breach").model_copy(update={"rules": rules}), SYSTEM,
                       at(date(2026, 2, 12), 8))
    s = fs.fold(events)
    assert s is not None
    s, _ = step(s, fs.Urge(doc_no="3/MTTQ-BTT"), at(date(2026, 2, 13)))
    s, _ = step(s, fs.SendRecommendation(to_body=RESOLVER, doc_no="22/KN-MTTQ"), at(date(2026, 4, 15)))
    assert s.deadlines[fs.RECOMMENDATION_RESPONSE].deadline.due_on == date(2026, 5, 4)


# --- opening and other refusals ---


def test_opening_twice_or_commanding_before_opening_is_refused() -> None:
    s = opened()
    assert refused(s, open_command("manual"), at(date(2026, 1, 14))) == "supervision.exists"
    assert refused(None, fs.Remind(), at(date(2026, 1, 14))) == "supervision.not_found"


def test_a_watch_opened_after_the_watched_deadline_passed_starts_with_the_urge_period() -> None:
    s = opened("front_forwarded", when=at(date(2026, 2, 13)))
    assert list(s.deadlines) == [fs.URGE_AFTER_BREACH]
    assert s.deadlines[fs.URGE_AFTER_BREACH].deadline.started_on == date(2026, 2, 12)


def test_a_manual_watch_without_a_watched_deadline_has_no_timers_and_may_urge_when_the_front_chooses() -> None:
    s = opened("manual", watched=None, resolver=None)
    assert s.deadlines == {} and s.next_due is None
    assert refused(s, fs.Urge(doc_no="1/MTTQ"), at(date(2026, 1, 20))) == "urge.no_recipient"
    s, _ = step(s, fs.Urge(doc_no="1/MTTQ", to_body="UBND_XA:an_binh"), at(date(2026, 1, 20)))
    assert s.status == S.URGED and s.bodies == ["UBMTTQ_TINH", "UBND_XA:an_binh"]


def test_a_watch_closes_early_only_with_a_reason() -> None:
    s = opened()
    assert refused(s, fs.Close(), at(date(2026, 2, 1))) == "close.reason"
    s, events = step(s, fs.Close(reason="Vụ việc đã được giải quyết đúng hạn."), at(date(2026, 2, 1)))
    assert s.status == S.CLOSED and all(d.outcome == "cancelled" for d in s.deadlines.values())
    assert isinstance(events[0], fs.FrontSupervisionClosed) and events[0].from_status == "watching"


def test_reminding_after_a_written_step_and_disputing_without_an_answer_are_refused() -> None:
    s, _ = step(opened("breach", when=at(date(2026, 2, 12))), fs.Urge(doc_no="3/MTTQ"), at(date(2026, 2, 13)))
    assert refused(s, fs.Remind(), at(date(2026, 2, 14))) == "remind.state"
    assert refused(s, fs.Dispute(reason="không"), at(date(2026, 2, 14))) == "dispute.no_response"
    assert refused(s, fs.RecordResponse(body=RESOLVER, summary="x"), at(date(2026, 2, 14))) == "response.state"


# --- the read model ---


def test_the_cases_row_names_the_front_the_bodies_the_deadlines_with_their_bases_and_the_escalation() -> None:
    s = opened("breach", when=at(date(2026, 2, 12), 8))
    s, _ = step(s, fs.Urge(doc_no="3/MTTQ-BTT"), at(date(2026, 2, 13)))
    s, _ = step(s, fs.SendRecommendation(to_body=RESOLVER, doc_no="22/KN-MTTQ"), at(date(2026, 4, 15)))
    s, _ = step(s, MarkDeadline(key=ANSWER, stage="breached"), at(date(2026, 4, 23)), SYSTEM)
    row = fs.supervision_row(s)
    assert row["kind"] == "front_supervision" and row["status"] == "escalated"
    assert row["lead_body"] == "UBMTTQ_TINH" and row["bodies"] == ["UBMTTQ_TINH", "UBND_TINH", "TINH_UY"]
    assert row["overdue"] is False and row["due_at"] is None
    summary = row["summary"]
    assert summary["case_id"] == "HD-2026-0001"
    bases = {d["key"]: d["legal_basis"] for d in summary["deadlines"]}
    assert bases[ANSWER] == RULES.policy.rule(ANSWER).legal_basis == "Luật Khiếu nại 2011, Điều 66 khoản 2"
    assert bases[fs.URGE_AFTER_BREACH] == RULES.policy.rule(fs.URGE_AFTER_BREACH).legal_basis
    assert summary["escalation"]["target"] == "party_committee" and summary["escalation"]["automatic"] is True


# --- any sequence of commands ---

BODIES = ["UBND_TINH", "SO_TNMT", "TINH_UY", "HDND_TINH"]
KEYS = ["complaint.resolution", fs.URGE_AFTER_BREACH, fs.RECOMMENDATION_RESPONSE, fs.SUPERIOR_RESPONSE,
        "front.unknown"]
_remind = st.builds(fs.Remind, to_body=st.none() | st.sampled_from(BODIES))
_urge = st.builds(fs.Urge, doc_no=st.just("5/MTTQ"), to_body=st.none() | st.sampled_from(BODIES))
_recommend = st.builds(fs.SendRecommendation, to_body=st.sampled_from(BODIES), doc_no=st.just("7/KN"))
_respond = st.builds(fs.RecordResponse, body=st.sampled_from(BODIES), summary=st.just("trả lời"))
_escalate = st.builds(fs.Escalate, target=st.sampled_from(["party_committee", "hdnd_supervision"]),
                      to_body=st.sampled_from(["TINH_UY", "HDND_TINH"]))
_close = st.builds(fs.Close, reason=st.none() | st.just("đã giải quyết"))
_deadline = st.builds(MarkDeadline, key=st.sampled_from(KEYS), stage=st.sampled_from(["approaching", "breached"]))
_reopen = st.builds(fs.Open, supervision_id=st.just("X-front"), case_id=st.just("X"), case_kind=st.just("complaint"),
                    trigger=st.sampled_from(["breach", "front_forwarded", "manual"]), rules=st.just(RULES))
#: Every command type, weighted so that runs climb the ladder (closing is rare, timers and letters common).
_BUILDERS: dict[str, st.SearchStrategy[Any]] = {
    "remind": _remind, "urge": _urge, "send_recommendation": _recommend, "record_response": _respond,
    "accept_response": st.builds(fs.AcceptResponse), "dispute": st.builds(fs.Dispute, reason=st.just("chưa ổn")),
    "escalate": _escalate, "close": _close, "deadline": _deadline, "open": _reopen,
}
_WEIGHTS = {"remind": 1, "urge": 2, "send_recommendation": 2, "record_response": 4, "accept_response": 1,
            "dispute": 2, "escalate": 2, "close": 1, "deadline": 8, "open": 1}
commands = st.sampled_from([kind for kind, n in _WEIGHTS.items() for _ in range(n)]).flatmap(_BUILDERS.__getitem__)

#: Time between commands: whole days mostly, so that deadlines come and go within one run.
gaps = st.sampled_from([timedelta(minutes=1), timedelta(hours=5), timedelta(days=1), timedelta(days=3),
                        timedelta(days=7), timedelta(days=16), timedelta(days=31)])


def _roundtrip(event: Event) -> Event:
    return fs.REGISTRY.parse(event.event_type(), occurred_at=event.occurred_at, actor=event.actor,
                             reason=event.reason, legal_basis=event.legal_basis, data=event.payload())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trigger=st.sampled_from(["breach", "front_forwarded", "manual"]),
       watched=st.sampled_from([WATCHED, None]), resolver=st.sampled_from([RESOLVER, "SO_TNMT", None]),
       script=st.lists(st.tuples(commands, gaps), max_size=30))
def test_any_command_sequence_is_refused_whole_or_folds_to_the_state_built_step_by_step(
        trigger: Any, watched: Deadline | None, resolver: str | None, script: list[tuple[Any, timedelta]]) -> None:
    now = at(date(2026, 1, 13))
    history = fs.decide(None, open_command(trigger, watched=watched, resolver=resolver), SYSTEM, now)
    state = fs.fold(history)
    assert state is not None
    for command, gap in script:
        now += gap
        actor = SYSTEM if isinstance(command, MarkDeadline) else OFFICER
        before = state
        try:
            events = fs.decide(state, command, actor, now)
        except DomainError as exc:
            assert exc.rule and exc.message
            assert state == before  # nothing moved
            continue
        for event in events:
            following = fs.evolve(state, event)
            assert following.version == state.version + 1  # versions strictly increase, one per event
            state = following
            assert _roundtrip(event) == event  # what the store keeps parses back to the same event
        history += events
        assert fs.fold(history) == state  # the record folds to the state built step by step
        assert fs.supervision_view(state).version == len(history)
