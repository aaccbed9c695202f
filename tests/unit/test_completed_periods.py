"""The periods the law sets that no rule held before the periods-completed patch, on fixed 2027 dates.

Each case is decided by the pure decider on the real policy (`policy/deadlines.yaml`) and the real calendar of
2027 (the `holidays` package with the province's overrides): days off Fri 1 Jan, Tết Thu 4 to Wed 10 Feb (with
the weekend 6-7 Feb), Fri 16 Apr (Hùng Kings), Fri 30 Apr, Mon 3 May (for Sat 1 May), Thu 2 and Fri 3 Sep, Wed
24 Nov. The expected days were counted by hand; each comment shows the count (the day of the event is not
counted; a calendar period ending on a day off ends on the next working day). docs/legal-reference.md §3.6
holds the same table.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy
from domain import coordination as co
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Actor, DomainError, Event
from domain.deadlines import CaseRules, MarkDeadline
from domain.petitions import commands as c
from domain.petitions import events as e
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionKind, PetitionState, PetitionStatus
from domain.petitions.views import case_row

K = PetitionKind
S = PetitionStatus

RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2026, 2028, load_calendar_overrides()))
OFFICER = Actor(id="nguyen.van.binh", role="body", body="UBND_TINH")
NAMED = Petitioner(name="Lê Thị Hoa", address="Thôn Tây, xã Nam Hồng", phone="0912000111")


def vn(day: str, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=VN_TZ).replace(
        hour=hour, minute=minute, second=second)


class Case:
    """A case decided command by command, as the workflow does, with `completed` chosen per case."""

    def __init__(self, kind: PetitionKind, received: datetime, *, instance: int = 1, completed: bool = True,
                 **intake: Any) -> None:
        self.completed = completed
        fields: dict[str, object] = {
            "source": "mot-cua-tinh", "external_ref": "HD-2027-0001", "kind": kind, "received_at": received,
            "petitioner": NAMED, "subject": "Đơn về việc cấp giấy chứng nhận", "content": "Nội dung đơn.", **intake,
        }
        receive = c.Receive(case_id="pet-2027-0001", intake=PetitionIntake(**fields), rules=RULES, instance=instance)
        self.events: list[Event] = decide(None, receive, SYSTEM, received, completed=completed)
        state = fold(self.events)
        assert state is not None
        self.state: PetitionState = state

    def do(self, command: object, now: datetime, actor: Actor = OFFICER) -> list[Event]:
        events = decide(self.state, command, actor, now, completed=self.completed)  # type: ignore[arg-type]
        state = fold(events, self.state)
        assert state is not None
        self.state, self.events = state, self.events + events
        return events

    def refused(self, command: object, now: datetime) -> DomainError:
        with pytest.raises(DomainError) as refusal:
            decide(self.state, command, OFFICER, now, completed=self.completed)  # type: ignore[arg-type]
        return refusal.value

    def due(self, key: str) -> date:
        return self.state.deadlines[key].deadline.due_on

    def outcome(self, key: str) -> str:
        return self.state.deadlines[key].outcome

    def timer(self, key: str, stage: str, at: datetime) -> list[str]:
        return [ev.event_type() for ev in self.do(MarkDeadline(key=key, stage=stage), at, SYSTEM)]


def accepted(kind: PetitionKind, at: str = "2027-01-04", *, remote: bool = False, completed: bool = True,
             **intake: Any) -> Case:
    case = Case(kind, vn(at, 8), completed=completed, **intake)
    case.do(c.Classify(lead_body="UBND_TINH", remote_area=remote), vn(at, 10))
    case.do(c.Accept(decision_no="1/QĐ-TL"), vn(at, 11))
    return case


def concluded(kind: PetitionKind, on: str, **kw: object) -> Case:
    case = accepted(kind, **kw)  # type: ignore[arg-type]
    case.do(c.RecordVerification(findings="Kết quả xác minh.", demand_matches_findings=True), vn(on, 8))
    outcome = {K.COMPLAINT: "not_upheld", K.DENUNCIATION: "no_violation"}.get(kind, "answered")
    case.do(c.Decide(outcome=outcome, decision_no="9/QĐ-GQ", summary="Kết luận."), vn(on, 9))
    return case


# --- the table: each new period, its start, unit and the day the clerk writes ---

TABLE = [
    # (rule, start, unit, amount, due, count)
    ("denunciation.suspension_notice", "2027-01-29", "working", 5, "2027-02-12",
     "Fri 29 Jan: 1, 2, 3 Feb; Tết 4-10 Feb off; 11, 12 -> Fri 12 Feb"),
    ("denunciation.conclusion_delivery", "2027-02-03", "working", 5, "2027-02-17",
     "Wed 3 Feb: Tết 4-10 off; 11, 12, 15, 16, 17 -> Wed 17 Feb"),
    ("denunciation.publication", "2027-02-03", "working", 7, "2027-02-19",
     "Wed 3 Feb: 11, 12, 15, 16, 17, 18, 19 -> Fri 19 Feb"),
    ("denunciation.repeated", "2027-01-20", "calendar", 20, "2027-02-11",
     "Wed 20 Jan + 20 = Tue 9 Feb, Tết -> Thu 11 Feb"),
    ("complaint2.decision_delivery", "2027-01-29", "calendar", 7, "2027-02-11",
     "Fri 29 Jan + 7 = Fri 5 Feb, Tết -> Thu 11 Feb"),
    ("complaint.decision_effect", "2027-01-05", "calendar", 30, "2027-02-11",
     "Tue 5 Jan + 30 = Thu 4 Feb, Tết -> Thu 11 Feb"),
    ("reception.forwarder_notice", "2027-01-04", "working", 7, "2027-01-13",
     "Mon 4 Jan: 5, 6, 7, 8, 11, 12, 13 -> Wed 13 Jan"),
    ("reception.result_notice", "2027-04-28", "working", 5, "2027-05-07",
     "Wed 28 Apr: 29; Fri 30 Apr, Sat 1, Sun 2, Mon 3 May off; 4, 5, 6, 7 -> Fri 7 May"),
    ("voter_petition.coordination_reply", "2027-01-20", "calendar", 15, "2027-02-11",
     "Wed 20 Jan + 15 = Thu 4 Feb, Tết -> Thu 11 Feb"),
]


@pytest.mark.parametrize(("key", "start", "unit", "amount", "due", "count"), TABLE, ids=[row[0] for row in TABLE])
def test_each_new_period_ends_on_the_day_counted_by_hand(key: str, start: str, unit: str, amount: int, due: str,
                                                          count: str) -> None:
    from domain.deadlines import compute_deadline

    rule = RULES.policy.rule(key)
    assert (rule.unit, rule.amount, rule.statutory) == (unit, amount, True)
    assert rule.legal_basis and rule.rule_ref and rule.mark in {"verified", "partial"}
    deadline = compute_deadline(rule, vn(start), RULES.calendar)
    assert deadline.due_on == date.fromisoformat(due), count


def test_a_remote_complaint_decision_takes_effect_after_45_days() -> None:
    case = concluded(K.COMPLAINT, "2027-01-05", remote=True)
    # Tue 5 Jan + 45 = Fri 19 Feb (Luật Khiếu nại 2011, Điều 44).
    assert case.due("complaint.decision_effect") == date(2027, 2, 19)
    assert case.state.deadlines["complaint.decision_effect"].deadline.variant == "remote"


# --- denunciations: suspension, termination, conclusion, publication, repetition ---


def test_a_suspended_denunciation_owes_the_notice_of_its_suspension_which_warns_breaches_and_is_met() -> None:
    case = accepted(K.DENUNCIATION)
    case.do(c.Notify(about="acceptance", recipients=["Người tố cáo"], doc_no="2/TB"), vn("2027-01-05"))
    [suspended] = case.do(c.Suspend(reason="Chờ kết quả giám định"), vn("2027-01-29"))
    assert isinstance(suspended, e.Suspended)
    assert suspended.stopped == ["denunciation.resolution"]  # the acceptance notice was due Mon 11 Jan
    [notice] = suspended.deadlines
    assert (notice.key, notice.due_on, notice.legal_basis) == (
        "denunciation.suspension_notice", date(2027, 2, 12), "Luật Tố cáo 2018, Điều 34 khoản 4")
    # It runs while the case is suspended: warned 2 days before (end of Wed 10 Feb), missed after Fri 12 Feb.
    assert case.state.next_due == notice
    assert case.timer("denunciation.suspension_notice", "approaching", vn("2027-02-11", 0, 0, 1)) == [
        "DeadlineApproaching"]
    assert case.timer("denunciation.suspension_notice", "breached", vn("2027-02-12", 23, 59)) == []
    assert case.timer("denunciation.suspension_notice", "breached", vn("2027-02-13", 0, 0, 1)) == ["DeadlineBreached"]
    assert case.state.overdue and case_row(case.state)["overdue"]
    assert case.state.front_supervision is None  # a notice missed is not the resolution missed
    # Any other notice waits for the resumption; the suspension's own is sent now, late.
    acceptance = c.Notify(about="acceptance", recipients=["Người tố cáo"], doc_no="2b/TB")
    assert case.refused(acceptance, vn("2027-02-15")).rule == "case.suspended"
    case.do(c.Notify(about="suspension", recipients=["Người tố cáo", "Người bị tố cáo"], doc_no="3/QĐ-TĐC"),
            vn("2027-02-15"))
    assert case.outcome("denunciation.suspension_notice") == "late"
    assert not case.state.overdue


def test_the_termination_of_a_withdrawn_denunciation_is_sent_within_5_working_days() -> None:
    case = accepted(K.DENUNCIATION, "2027-04-05")
    case.do(c.Withdraw(reason="Người tố cáo rút đơn"), vn("2027-04-26"))
    assert case.state.status == S.TERMINATED
    # Mon 26 Apr: 27, 28, 29; Fri 30 Apr, Sat 1, Sun 2, Mon 3 May off; 4, 5 -> Wed 5 May.
    assert case.due("denunciation.suspension_notice") == date(2027, 5, 5)
    assert case.refused(c.Notify(about="suspension", recipients=["A"], doc_no="1"), vn("2027-04-27")).rule == (
        "notify.suspension_state")
    case.do(c.Notify(about="termination", recipients=["Người tố cáo"], doc_no="4/QĐ-ĐC"), vn("2027-05-05", 16))
    assert case.outcome("denunciation.suspension_notice") == "on_time"


def test_a_conclusion_is_sent_in_5_working_days_and_published_in_7() -> None:
    case = concluded(K.DENUNCIATION, "2027-02-03")
    [issued] = [ev for ev in case.events if isinstance(ev, e.DecisionIssued)]
    assert [(d.key, d.due_on) for d in issued.deadlines] == [
        ("denunciation.conclusion_delivery", date(2027, 2, 17)), ("denunciation.publication", date(2027, 2, 19))]
    [sent] = case.do(c.Notify(about="decision", recipients=["Người tố cáo", "Người bị tố cáo"], doc_no="10/TB"),
                     vn("2027-02-16"))
    assert sent.legal_basis == "Luật Tố cáo 2018, Điều 35 khoản 3"
    assert case.outcome("denunciation.conclusion_delivery") == "on_time" and case.state.status == S.NOTIFIED
    assert case.outcome("denunciation.publication") == "pending"
    assert case.timer("denunciation.publication", "breached", vn("2027-02-20", 0, 0, 1)) == ["DeadlineBreached"]
    assert case_row(case.state)["overdue"]
    [published] = case.do(c.Notify(about="publication", recipients=["Cổng TTĐT tỉnh"], channel="portal",
                                   doc_no="11/TB"), vn("2027-02-22"))
    assert isinstance(published, e.NotificationSent) and published.published
    assert published.legal_basis == "Luật Tố cáo 2018, Điều 40 khoản 1"
    assert case.outcome("denunciation.publication") == "late" and not case.state.overdue


def test_a_conclusion_sent_by_publication_meets_both_notices() -> None:
    case = concluded(K.DENUNCIATION, "2027-02-03")
    case.do(c.Notify(about="decision", recipients=["Cổng TTĐT tỉnh"], channel="publication", doc_no="12/TB"),
            vn("2027-02-11"))
    assert case.outcome("denunciation.conclusion_delivery") == "on_time"
    assert case.outcome("denunciation.publication") == "on_time"


def test_only_a_denunciation_is_published_and_only_once_concluded() -> None:
    publish = c.Notify(about="publication", recipients=["Cổng TTĐT tỉnh"], doc_no="1/TB")
    assert accepted(K.DENUNCIATION).refused(publish, vn("2027-01-05")).rule == "notify.publication_state"
    assert concluded(K.COMPLAINT, "2027-01-05").refused(publish, vn("2027-01-06")).rule == "notify.about_kind"


def test_a_repeated_denunciation_is_a_second_instance_case_with_20_days_at_the_superior() -> None:
    first = concluded(K.DENUNCIATION, "2027-01-15")
    [repeated] = first.do(c.Appeal(to_body="UBND_TINH"), vn("2027-01-20"))
    assert isinstance(repeated, e.EscalatedSecondInstance) and repeated.legal_basis == "Luật Tố cáo 2018, Điều 37"
    second = Case(K.DENUNCIATION, vn("2027-01-20", 10), instance=2, external_ref="HD-2027-0001#L2")
    assert list(second.state.deadlines) == ["denunciation.repeated"]
    assert second.due("denunciation.repeated") == date(2027, 2, 11)
    assert second.timer("denunciation.repeated", "breached", vn("2027-02-12", 0, 0, 1)) == [
        "DeadlineBreached", "FrontSupervisionStarted"]
    second.do(c.Classify(lead_body="UBND_TINH"), vn("2027-02-12"))
    second.do(c.Accept(decision_no="2/QĐ-TL"), vn("2027-02-12"))
    assert second.outcome("denunciation.repeated") == "late"
    # Before the patch a second-instance denunciation starts with the initial processing, as any other.
    old = Case(K.DENUNCIATION, vn("2027-01-20", 10), instance=2, completed=False)
    assert list(old.state.deadlines) == ["denunciation.initial_processing"]


def test_a_denunciation_is_repeated_only_after_its_conclusion_or_its_missed_period() -> None:
    case = accepted(K.DENUNCIATION)
    assert case.refused(c.Appeal(to_body="UBND_TINH"), vn("2027-01-20")).rule == "appeal.state"
    # The resolution period (Mon 4 Jan + 30 = Wed 3 Feb) has passed without a conclusion.
    assert [ev.event_type() for ev in case.do(c.Appeal(to_body="UBND_TINH"), vn("2027-02-04"))] == [
        "EscalatedSecondInstance"]


# --- complaints: the second-instance delivery, the legal effect ---


def test_a_second_instance_decision_is_sent_within_7_days() -> None:
    case = Case(K.COMPLAINT, vn("2027-01-11", 8), instance=2)
    case.do(c.Classify(lead_body="UBND_TINH"), vn("2027-01-11", 10))
    case.do(c.Accept(decision_no="5/QĐ-TL"), vn("2027-01-12"))
    case.do(c.RecordVerification(findings="Xác minh lại.", demand_matches_findings=True), vn("2027-01-28"))
    [issued] = case.do(c.Decide(outcome="not_upheld", decision_no="7/QĐ-GQKN2", summary="Giữ nguyên."),
                       vn("2027-01-29"))
    assert isinstance(issued, e.DecisionIssued)
    # Fri 29 Jan + 7 = Fri 5 Feb, Tết -> Thu 11 Feb; its legal effect: 29 Jan + 30 = Sun 28 Feb -> Mon 1 Mar.
    assert [(d.key, d.due_on) for d in issued.deadlines] == [
        ("complaint2.decision_delivery", date(2027, 2, 11)), ("complaint.decision_effect", date(2027, 3, 1))]
    assert "complaint.decision_delivery" not in case.state.deadlines
    assert case.timer("complaint2.decision_delivery", "approaching", vn("2027-02-10", 0, 0, 1)) == [
        "DeadlineApproaching"]
    assert case.timer("complaint2.decision_delivery", "breached", vn("2027-02-12", 0, 0, 1)) == ["DeadlineBreached"]
    assert case.state.overdue
    [sent] = case.do(c.Notify(about="decision", recipients=["Người khiếu nại", "Thanh tra tỉnh"], doc_no="8/TB"),
                     vn("2027-02-12"))
    assert sent.legal_basis == "Luật Khiếu nại 2011, Điều 41 khoản 1"
    assert case.outcome("complaint2.decision_delivery") == "late" and not case.state.overdue


def test_a_complaint_decision_takes_effect_and_is_carried_out_from_then() -> None:
    case = concluded(K.COMPLAINT, "2027-01-05")
    case.do(c.Notify(about="decision", recipients=["Người khiếu nại"], doc_no="3/TB"), vn("2027-01-06"))
    assert case.due("complaint.decision_effect") == date(2027, 2, 11)
    implement = c.RecordImplementation(summary="Thi hành quyết định.")
    refusal = case.refused(implement, vn("2027-01-20"))
    assert refusal.rule == "implementation.not_in_effect" and "Điều 44" in refusal.message
    # Warned 5 days before (end of Sat 6 Feb), reached once Thu 11 Feb has ended: never a breach.
    assert case.timer("complaint.decision_effect", "approaching", vn("2027-02-07", 0, 0, 1)) == ["DeadlineApproaching"]
    assert case.timer("complaint.decision_effect", "breached", vn("2027-02-11", 23, 59)) == []
    [effect] = case.do(MarkDeadline(key="complaint.decision_effect", stage="breached"), vn("2027-02-12", 0, 0, 1),
                       SYSTEM)
    assert isinstance(effect, e.DecisionTookEffect)
    assert (effect.effective_on, effect.legal_basis, effect.decision_no) == (
        date(2027, 2, 11), "Luật Khiếu nại 2011, Điều 44", "9/QĐ-GQ")
    assert case.state.in_effect_on == date(2027, 2, 11)
    assert case.state.decision is not None and case.state.decision["in_effect_on"] == "2027-02-11"
    assert case.outcome("complaint.decision_effect") == "on_time" and not case.state.overdue
    # The window for a second complaint closed with it; the decision is carried out now.
    assert case.refused(c.Appeal(), vn("2027-02-12")).rule == "complaint.decision_in_effect"
    assert [ev.event_type() for ev in case.do(implement, vn("2027-02-12"))] == ["ImplementationRecorded"]


def test_an_appealed_decision_does_not_take_effect() -> None:
    case = concluded(K.COMPLAINT, "2027-01-05")
    case.do(c.Notify(about="decision", recipients=["Người khiếu nại"], doc_no="3/TB"), vn("2027-01-06"))
    case.do(c.Appeal(to_body="THANH_TRA_TINH"), vn("2027-01-25"))
    assert case.outcome("complaint.decision_effect") == "cancelled"
    assert case.timer("complaint.decision_effect", "breached", vn("2027-02-12", 0, 0, 1)) == []
    assert case.state.in_effect_on is None


def test_closing_keeps_the_day_the_decision_takes_effect_and_archiving_ends_it() -> None:
    case = concluded(K.COMPLAINT, "2027-01-05")
    case.do(c.Notify(about="decision", recipients=["Người khiếu nại"], doc_no="3/TB"), vn("2027-01-06"))
    case.do(c.Close(), vn("2027-01-07"))
    assert case.outcome("complaint.decision_effect") == "pending"
    assert case.timer("complaint.decision_effect", "breached", vn("2027-02-12", 0, 0, 1)) == ["DecisionTookEffect"]
    again = concluded(K.COMPLAINT, "2027-01-05")
    again.do(c.Notify(about="decision", recipients=["Người khiếu nại"], doc_no="3/TB"), vn("2027-01-06"))
    again.do(c.Close(), vn("2027-01-07"))
    again.do(c.Archive(archive_ref="HS-1"), vn("2027-01-08"))
    assert again.outcome("complaint.decision_effect") == "cancelled"
    assert again.state.next_due is None


# --- the citizen reception's notices to the body that forwarded a recommendation ---


def test_a_recommendation_forwarded_by_the_reception_board_owes_its_two_notices() -> None:
    case = accepted(K.RECOMMENDATION, channel="reception_forwarded")
    assert case.due("reception.forwarder_notice") == date(2027, 1, 13)
    [told] = case.do(c.Notify(about="forwarder", recipients=["Ban tiếp công dân tỉnh"], doc_no="1/TB"),
                     vn("2027-01-12"))
    assert told.legal_basis == "Luật Tiếp công dân 2013, Điều 27 khoản 2"
    assert case.outcome("reception.forwarder_notice") == "on_time"
    case.do(c.Decide(outcome="answered", decision_no="20/CV", summary="Trả lời kiến nghị."), vn("2027-04-28"))
    assert case.due("reception.result_notice") == date(2027, 5, 7)
    assert case.timer("reception.result_notice", "breached", vn("2027-05-08", 0, 0, 1)) == ["DeadlineBreached"]
    [result] = case.do(c.Notify(about="forwarder", recipients=["Ban tiếp công dân tỉnh"], doc_no="21/TB"),
                       vn("2027-05-10"))
    assert result.legal_basis == "Luật Tiếp công dân 2013, Điều 28 khoản 2"
    assert case.outcome("reception.result_notice") == "late"


def test_a_deputys_recommendation_owes_the_notice_but_a_letter_by_post_does_not() -> None:
    def keys(kind: PetitionKind, **intake: Any) -> set[str]:
        return set(Case(kind, vn("2027-01-04"), **intake).state.deadlines)

    assert "reception.forwarder_notice" in keys(K.RECOMMENDATION, channel="deputy_forwarded")
    assert "reception.forwarder_notice" not in keys(K.RECOMMENDATION)
    # A complaint forwarded by a deputy follows the complaint law's notice (Điều 66), not the reception's.
    assert "reception.forwarder_notice" not in keys(K.COMPLAINT, channel="deputy_forwarded")
    # Reclassified as a complaint, the recommendation's notice is cancelled.
    letter = Case(K.RECOMMENDATION, vn("2027-01-04"), channel="deputy_forwarded")
    letter.do(c.Classify(kind=K.COMPLAINT, lead_body="UBND_TINH"), vn("2027-01-05"))
    assert letter.outcome("reception.forwarder_notice") == "cancelled"


# --- voters' petitions: the coordinating body's period ---


def test_a_body_asked_to_coordinate_on_a_voters_petition_replies_within_the_legal_period() -> None:
    case = accepted(K.VOTER_PETITION)
    ask = co.RequestCoordination(subject="Số liệu đầu tư đường huyện", bodies=[
        co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state"),
        co.CoordinationTarget(body="UBMTTQ_TINH", side="front", days=10, unit="working")])
    [requested] = case.do(ask, vn("2027-01-20"))
    assert isinstance(requested, co.CoordinationRequested)
    by_law, by_lead = requested.deadlines
    # The law's 15 days: Wed 20 Jan + 15 = Thu 4 Feb, Tết -> Thu 11 Feb; the lead's 10 working days end sooner:
    # 21, 22, 25, 26, 27, 28, 29, 1, 2, 3 -> Wed 3 Feb.
    assert (by_law.key, by_law.due_on, by_law.statutory) == ("coordination.R1.SO_TAI_NGUYEN", date(2027, 2, 11), True)
    assert by_law.legal_basis.startswith("Quyết định 33/2017/QĐ-TTg")
    assert (by_lead.due_on, by_lead.statutory) == (date(2027, 2, 3), False)
    assert case.timer("coordination.R1.SO_TAI_NGUYEN", "breached", vn("2027-02-12", 0, 0, 1)) == ["DeadlineBreached"]
    assert case.state.overdue
    case.do(co.Respond(request_id="R1", body="SO_TAI_NGUYEN", response="Đã gửi số liệu."), vn("2027-02-12"),
            Actor(id="so-tn", role="body", body="SO_TAI_NGUYEN"))
    assert case.outcome("coordination.R1.SO_TAI_NGUYEN") == "late"


def test_a_lead_cannot_give_a_coordinating_body_longer_than_the_law() -> None:
    case = accepted(K.VOTER_PETITION)
    # 20 calendar days: Tue 9 Feb, Tết -> Thu 11 Feb, the law's own end: allowed. 25: Sun 14 -> Mon 15 Feb: not.
    within = co.RequestCoordination(subject="x", bodies=[
        co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state", days=20, unit="calendar")])
    assert case.do(within, vn("2027-01-20"))
    beyond = co.RequestCoordination(subject="y", bodies=[
        co.CoordinationTarget(body="UBMTTQ_TINH", side="front", days=25, unit="calendar")])
    refusal = case.refused(beyond, vn("2027-01-20"))
    assert refusal.rule == "coordination.beyond_legal_period" and "2027-02-11" in refusal.message


def test_other_kinds_still_need_the_leads_period() -> None:
    case = accepted(K.COMPLAINT)
    ask = co.RequestCoordination(subject="x", bodies=[co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state")])
    assert case.refused(ask, vn("2027-01-20")).rule == "coordination.days"


# --- cases decided before the patch keep the deadlines they had ---


def test_runs_before_the_patch_start_none_of_the_new_periods() -> None:
    case = concluded(K.DENUNCIATION, "2027-02-03", completed=False)
    assert not {"denunciation.conclusion_delivery", "denunciation.publication"} & set(case.state.deadlines)
    complaint = concluded(K.COMPLAINT, "2027-01-05", completed=False)
    assert "complaint.decision_effect" not in complaint.state.deadlines
    complaint.do(c.Notify(about="decision", recipients=["A"], doc_no="1"), vn("2027-01-06"))
    assert complaint.do(c.RecordImplementation(summary="Thi hành."), vn("2027-01-07"))
    suspended = accepted(K.DENUNCIATION, completed=False)
    [event] = suspended.do(c.Suspend(reason="Chờ"), vn("2027-01-29"))
    assert isinstance(event, e.Suspended) and event.deadlines == []
    notice = c.Notify(about="suspension", recipients=["A"], doc_no="1")
    assert suspended.refused(notice, vn("2027-01-29")).rule == "case.suspended"
    recommendation = Case(K.RECOMMENDATION, vn("2027-01-04"), channel="reception_forwarded", completed=False)
    assert list(recommendation.state.deadlines) == ["letter.processing"]


def test_a_policy_recorded_without_the_new_rules_starts_none_of_them() -> None:
    new_keys = {"denunciation.suspension_notice", "denunciation.conclusion_delivery", "denunciation.publication",
                "complaint.decision_effect", "complaint2.decision_delivery"}
    rules = RULES.model_copy(update={"policy": RULES.policy.model_copy(update={"rules": {
        k: v for k, v in RULES.policy.rules.items() if k not in new_keys}})})
    complaint = accepted(K.COMPLAINT)
    complaint.state = complaint.state.model_copy(update={"rules": rules})
    complaint.do(c.RecordVerification(findings="x", demand_matches_findings=True), vn("2027-01-05", 8))
    [issued] = complaint.do(c.Decide(outcome="upheld", decision_no="1", summary="x"), vn("2027-01-05"))
    assert [d.key for d in issued.deadlines] == ["complaint.decision_delivery"]  # type: ignore[attr-defined]
    denunciation = accepted(K.DENUNCIATION)
    denunciation.state = denunciation.state.model_copy(update={"rules": rules})
    [suspended] = denunciation.do(c.Suspend(reason="Chờ"), vn("2027-01-29"))
    assert isinstance(suspended, e.Suspended) and suspended.deadlines == []
