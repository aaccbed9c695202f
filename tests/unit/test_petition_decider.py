"""The petition decider on real dates (docs/legal-reference.md §2, §3.1-3.3; docs/architecture.md, petition case).

Every case here is received on Tuesday 20 January 2026 at 09:00 Vietnam time (UTC+7), a few weeks before Tết
2026 (days off Monday 16 to Friday 20 February; with the weekends, 14-22 February), so that 30-day periods
counted from the next days end in Tết and move to Monday 23 February (BLDS 2015 Art 147-148). The rules are
the real ones: `policy/deadlines.yaml` and the `holidays` calendar with the province's overrides. Expected
dates were counted by hand; the comments show the count.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy
from domain import coordination as co
from domain.calendar import VN_TZ, end_of_day
from domain.common import SYSTEM, Actor, DomainError, Event
from domain.coordination import CoordinationRequested, CoordinationResponded
from domain.deadlines import CaseRules, DeadlineApproaching, DeadlineBreached, MarkDeadline
from domain.petitions import commands as c
from domain.petitions import events as e
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionKind, PetitionState, PetitionStatus
from domain.petitions.views import case_row, case_view

K = PetitionKind
S = PetitionStatus

RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2025, 2027, load_calendar_overrides()))
CASE_ID = "pet-hd-2026-0001"
OFFICER = Actor(id="tran.thi.lan", role="body", body="THANH_TRA_TINH")
NAMED = Petitioner(name="Nguyễn Văn An", address="Thôn Đông, xã Nam Sách, Hải Dương", phone="0912345678")


def vn(day: str, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    """An instant in Vietnam time (UTC+7), e.g. vn("2026-01-20", 9)."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=VN_TZ).replace(
        hour=hour, minute=minute, second=second
    )


RECEIVED = vn("2026-01-20", 9)  # a Tuesday
CLASSIFIED = vn("2026-01-20", 15)
ACCEPTED = vn("2026-01-21", 10)  # a Wednesday


class Case:
    """One petition case under test: the state after each accepted command, and every event so far."""

    def __init__(self, kind: PetitionKind, petitioner: Petitioner = NAMED, **intake: Any) -> None:
        fields: dict[str, object] = {
            "source": "mot-cua-tinh", "external_ref": "HD-2026-0001", "kind": kind, "received_at": RECEIVED,
            "petitioner": petitioner, "subject": "Đơn về việc thu hồi đất", "content": "Nội dung đơn.",
            **intake,
        }
        self.events: list[Event] = decide(
            None, c.Receive(case_id=CASE_ID, intake=PetitionIntake(**fields), rules=RULES), SYSTEM, RECEIVED
        )
        state = fold(self.events)
        assert state is not None
        self.state: PetitionState = state

    def status(self) -> S:
        """The case's status now (a call, so that a type checker does not keep an earlier comparison's answer)."""
        return self.state.status

    def do(self, command: c.PetitionCommand, now: datetime, actor: Actor = OFFICER) -> list[Event]:
        """Decide `command` at `now`, apply its events, and return them."""
        events = decide(self.state, command, actor, now)
        state = fold(events, self.state)
        assert state is not None
        self.state = state
        self.events += events
        return events

    def refused(self, command: c.PetitionCommand, now: datetime, actor: Actor = OFFICER) -> str:
        """The rule that refuses `command` at `now` (the state does not change)."""
        before = self.state
        with pytest.raises(DomainError) as refusal:
            decide(self.state, command, actor, now)
        assert self.state == before
        return refusal.value.rule

    def deadline(self, key: str) -> date:
        return self.state.deadlines[key].deadline.due_on

    def outcome(self, key: str) -> str:
        return self.state.deadlines[key].outcome

    def copy(self) -> Case:
        twin = Case.__new__(Case)
        twin.state, twin.events = self.state, list(self.events)
        return twin


def classified(kind: PetitionKind, *, complex: bool = False, remote: bool = False,
               petitioner: Petitioner = NAMED, **intake: Any) -> Case:
    case = Case(kind, petitioner, **intake)
    case.do(c.Classify(complex=complex, remote_area=remote, lead_body="UBND_TINH",
                       subject_category="đất đai"), CLASSIFIED)
    return case


def accepted(kind: PetitionKind, *, complex: bool = False, remote: bool = False, **intake: Any) -> Case:
    case = classified(kind, complex=complex, remote=remote, **intake)
    case.do(c.Accept(decision_no="12/QĐ-UBND"), ACCEPTED)
    return case


def decided(kind: PetitionKind, outcome: str, at: datetime) -> Case:
    case = accepted(kind)
    case.do(c.RecordVerification(findings="Kết quả xác minh.", demand_matches_findings=True), vn("2026-02-02"))
    case.do(c.Decide(outcome=outcome, decision_no="45/QĐ-UBND", summary="Giữ nguyên quyết định."), at)
    return case


def types(events: list[Event]) -> list[str]:
    return [ev.event_type() for ev in events]


# --- receipt: the first deadline of each kind ---


@pytest.mark.parametrize(
    ("kind", "key", "unit", "amount", "legal_basis", "due_on"),
    [
        # 20 Jan + 10 calendar days = Fri 30 Jan.
        (K.COMPLAINT, "complaint.acceptance", "calendar", 10, "Luật Khiếu nại 2011, Điều 27", "2026-01-30"),
        # 7 working days after Tue 20 Jan: 21, 22, 23, 26, 27, 28, 29 -> Thu 29 Jan.
        (K.DENUNCIATION, "denunciation.initial_processing", "working", 7, "Luật Tố cáo 2018, Điều 24 khoản 1",
         "2026-01-29"),
        # 20 Jan + 10 calendar days = Fri 30 Jan.
        (K.RECOMMENDATION, "letter.processing", "calendar", 10,
         "Thủ tục “Xử lý đơn tại cấp tỉnh” (Cổng DVC quốc gia, mã 315145); Thông tư 05/2021/TT-TTCP", "2026-01-30"),
        # 20 Jan + 60 = Sat 21 Mar -> Mon 23 Mar.
        (K.VOTER_PETITION, "voter_petition.answer", "calendar", 60,
         "Quyết định 33/2017/QĐ-TTg, Điều 12, sửa đổi bởi Quyết định 30/2020/QĐ-TTg", "2026-03-23"),
    ],
)
def test_receipt_records_the_first_deadline_of_each_kind(
    kind: PetitionKind, key: str, unit: str, amount: int, legal_basis: str, due_on: str
) -> None:
    case = Case(kind)
    [received] = case.events
    assert isinstance(received, e.PetitionReceived)
    [first] = received.deadlines
    assert (first.key, first.unit, first.amount, first.legal_basis) == (key, unit, amount, legal_basis)
    assert first.started_on == date(2026, 1, 20)
    assert first.due_on == date.fromisoformat(due_on)
    assert first.due_at == end_of_day(date.fromisoformat(due_on))
    assert received.legal_basis == legal_basis
    assert received.rules == RULES
    assert case.state.status == S.RECEIVED
    assert case.state.version == 1
    assert list(case.state.deadlines) == [key]
    assert case.state.deadlines[key].pending


def test_a_petition_forwarded_by_the_front_is_supervised_from_receipt() -> None:
    case = Case(K.COMPLAINT, forwarded_by_front=True)
    assert types(case.events) == ["PetitionReceived", "FrontSupervisionStarted"]
    assert case.state.front_supervision == f"{CASE_ID}-front"


def test_a_petition_received_in_the_future_is_refused() -> None:
    intake = PetitionIntake(source="mot-cua-tinh", external_ref="HD-1", kind=K.COMPLAINT, received_at=RECEIVED,
                            petitioner=NAMED, subject="Đơn", content="Nội dung")
    with pytest.raises(DomainError) as refusal:
        decide(None, c.Receive(case_id=CASE_ID, intake=intake, rules=RULES), SYSTEM, RECEIVED - timedelta(hours=1))
    assert refusal.value.rule == "received_at.future"


def test_a_case_is_received_only_once_and_commands_need_a_received_case() -> None:
    case = Case(K.COMPLAINT)
    again = c.Receive(case_id=CASE_ID, intake=case.state.intake, rules=RULES)
    assert case.refused(again, CLASSIFIED, SYSTEM) == "case.exists"
    with pytest.raises(DomainError) as refusal:
        decide(None, c.Classify(), OFFICER, CLASSIFIED)
    assert refusal.value.rule == "case.not_found"


# --- classification and acceptance ---


@pytest.mark.parametrize(
    ("complex", "remote", "variant", "amount", "due_on"),
    [
        (False, False, None, 30, "2026-02-23"),  # 21 Jan + 30 = Fri 20 Feb (Tết) -> Mon 23 Feb
        (True, False, "complex", 45, "2026-03-09"),  # 21 Jan + 45 = Sat 7 Mar -> Mon 9 Mar
        (False, True, "remote", 45, "2026-03-09"),
        (True, True, "remote_complex", 60, "2026-03-23"),  # 21 Jan + 60 = Sun 22 Mar -> Mon 23 Mar
    ],
)
def test_an_accepted_complaint_gets_its_resolution_period_moved_off_tet_and_weekends(
    complex: bool, remote: bool, variant: str | None, amount: int, due_on: str
) -> None:
    case = classified(K.COMPLAINT, complex=complex, remote=remote)
    assert case.state.status == S.CLASSIFIED
    assert (case.state.complex, case.state.remote_area, case.state.lead_body) == (complex, remote, "UBND_TINH")
    [decision] = case.do(c.Accept(decision_no="12/QĐ-UBND"), ACCEPTED)
    assert isinstance(decision, e.AcceptanceDecided)
    assert decision.accepted and decision.decision_no == "12/QĐ-UBND" and decision.lead_body == "UBND_TINH"
    assert decision.legal_basis == "Luật Khiếu nại 2011, Điều 28"
    [resolution] = decision.deadlines
    assert (resolution.key, resolution.variant, resolution.amount) == ("complaint.resolution", variant, amount)
    assert resolution.started_on == date(2026, 1, 21)
    assert resolution.due_on == date.fromisoformat(due_on)
    assert RULES.calendar.is_working_day(resolution.due_on)
    assert case.status() == S.ACCEPTED
    assert case.outcome("complaint.acceptance") == "on_time"
    assert case.state.deadlines["complaint.acceptance"].met_at == ACCEPTED
    assert case.state.deadlines["complaint.resolution"].pending


def test_an_accepted_denunciation_gets_its_resolution_period_and_the_acceptance_notice() -> None:
    case = accepted(K.DENUNCIATION)
    assert case.outcome("denunciation.initial_processing") == "on_time"
    assert case.deadline("denunciation.resolution") == date(2026, 2, 23)  # 21 Jan + 30 = Fri 20 Feb (Tết)
    # 5 working days after Wed 21 Jan: 22, 23, 26, 27, 28 -> Wed 28 Jan.
    assert case.deadline("denunciation.acceptance_notice") == date(2026, 1, 28)
    notice = case.state.deadlines["denunciation.acceptance_notice"].deadline
    assert notice.legal_basis == "Luật Tố cáo 2018, Điều 29 khoản 3"


def test_an_accepted_recommendation_runs_on_the_non_statutory_province_sla() -> None:
    case = accepted(K.RECOMMENDATION)
    resolution = case.state.deadlines["recommendation.resolution"].deadline
    assert resolution.statutory is False
    assert resolution.due_on == date(2026, 2, 23)
    assert case.outcome("letter.processing") == "on_time"


def test_an_accepted_voter_petition_keeps_its_answer_period_from_receipt() -> None:
    case = accepted(K.VOTER_PETITION)
    [decision] = case.events[-1:]
    assert isinstance(decision, e.AcceptanceDecided) and decision.deadlines == []
    assert decision.legal_basis == "NQLT 72/2025"
    assert case.deadline("voter_petition.answer") == date(2026, 3, 23)
    assert case.state.deadlines["voter_petition.answer"].pending


def test_a_case_is_classified_only_once_and_accepted_only_after_classification() -> None:
    case = Case(K.COMPLAINT)
    assert case.refused(c.Accept(decision_no="1"), ACCEPTED) == "accept.state"
    case.do(c.Classify(lead_body="UBND_TINH"), CLASSIFIED)
    assert case.refused(c.Classify(), ACCEPTED) == "classify.state"


def test_acceptance_needs_a_competent_body() -> None:
    case = Case(K.COMPLAINT)
    case.do(c.Classify(), CLASSIFIED)
    assert case.refused(c.Accept(decision_no="1"), ACCEPTED) == "accept.lead_body"
    case.do(c.Accept(decision_no="1", lead_body="SO_TAI_NGUYEN"), ACCEPTED)
    assert case.state.lead_body == "SO_TAI_NGUYEN"
    assert "SO_TAI_NGUYEN" in case.state.bodies


def test_a_second_instance_complaint_runs_on_the_second_instance_clocks() -> None:
    intake = PetitionIntake(source="mot-cua-tinh", external_ref="HD-L2", kind=K.COMPLAINT, received_at=RECEIVED,
                            petitioner=NAMED, subject="Khiếu nại lần hai", content="Nội dung")
    events = decide(None, c.Receive(case_id=f"{CASE_ID}-L2", intake=intake, rules=RULES, instance=2,
                                    parent_case_id=CASE_ID), SYSTEM, RECEIVED)
    state = fold(events)
    assert state is not None
    assert state.instance == 2 and state.linked_cases == [CASE_ID]
    assert state.deadlines["complaint2.acceptance"].deadline.due_on == date(2026, 1, 30)
    state = fold(decide(state, c.Classify(lead_body="UBND_TINH"), OFFICER, CLASSIFIED), state)
    state = fold(decide(state, c.Accept(decision_no="3/QĐ"), OFFICER, ACCEPTED), state)
    assert state is not None
    # 21 Jan + 45 = Sat 7 Mar -> Mon 9 Mar (LKN 2011 Art 37).
    assert state.deadlines["complaint2.resolution"].deadline.due_on == date(2026, 3, 9)
    with pytest.raises(DomainError) as refusal:
        decide(state, c.Appeal(), OFFICER, vn("2026-03-20"))
    assert refusal.value.rule == "appeal.kind"
    with pytest.raises(DomainError) as refusal:
        fresh = fold(events)
        decide(fresh, c.Classify(kind=K.DENUNCIATION), OFFICER, CLASSIFIED)
    assert refusal.value.rule == "classify.kind_second_instance"


# --- rejection ---


def test_a_rejection_without_reasons_is_not_even_a_valid_command() -> None:
    with pytest.raises(ValidationError):
        c.Reject(reasons=[])


def test_a_rejected_complaint_records_its_reasons_and_legal_basis() -> None:
    case = classified(K.COMPLAINT)
    reasons = ["Quá thời hiệu khiếu nại (Điều 9)", "Đã có bản án của Tòa án"]
    [decision] = case.do(c.Reject(reasons=reasons, notice_no="7/TB-UBND"), ACCEPTED)
    assert isinstance(decision, e.AcceptanceDecided)
    assert decision.accepted is False
    assert decision.reasons == reasons
    assert decision.decision_no == "7/TB-UBND"
    assert decision.legal_basis == "Luật Khiếu nại 2011, Điều 11 và 27"
    assert decision.deadlines == []
    assert case.state.status == S.REJECTED
    assert case.outcome("complaint.acceptance") == "on_time"
    assert case.refused(c.Accept(decision_no="1"), ACCEPTED) == "accept.state"


def test_a_rejected_denunciation_cites_the_denunciation_law() -> None:
    case = classified(K.DENUNCIATION)
    [decision] = case.do(c.Reject(reasons=["Không đủ điều kiện thụ lý (Điều 29)"]), ACCEPTED)
    assert decision.legal_basis == "Luật Tố cáo 2018"


# --- anonymous denunciations ---


@pytest.mark.parametrize(
    "petitioner",
    [Petitioner(), Petitioner(name="Một người dân"), Petitioner(address="Xã Nam Sách")],
    ids=["nobody", "name-without-address", "address-without-name"],
)
def test_an_anonymous_denunciation_is_not_processed(petitioner: Petitioner) -> None:
    case = Case(K.DENUNCIATION, petitioner)
    events = case.do(c.Classify(lead_body="THANH_TRA_TINH"), CLASSIFIED)
    assert types(events) == ["Classified", "NotProcessed"]
    assert events[1].legal_basis == "Luật Tố cáo 2018, Điều 25"
    assert case.state.status == S.NOT_PROCESSED
    assert case.outcome("denunciation.initial_processing") == "on_time"
    assert case.refused(c.Accept(decision_no="1"), ACCEPTED) == "accept.state"
    case.do(c.Close(), ACCEPTED)
    assert case.status() == S.CLOSED


def test_a_letter_reclassified_as_an_anonymous_denunciation_is_not_processed() -> None:
    case = Case(K.RECOMMENDATION, Petitioner())
    assert types(case.do(c.Classify(kind=K.DENUNCIATION), CLASSIFIED)) == ["Classified", "NotProcessed"]
    assert case.state.kind == K.DENUNCIATION


def test_a_denunciation_with_a_sealed_identity_reference_is_processed() -> None:
    case = Case(K.DENUNCIATION, Petitioner(ref="sealed:7f3a9c"))
    assert types(case.do(c.Classify(lead_body="THANH_TRA_TINH"), CLASSIFIED)) == ["Classified"]
    assert case.state.status == S.CLASSIFIED


def test_an_anonymous_complaint_is_not_refused_at_classification() -> None:
    case = Case(K.COMPLAINT, Petitioner())
    assert types(case.do(c.Classify(), CLASSIFIED)) == ["Classified"]


# --- split, forward, redirect, assign ---


def test_a_split_letter_creates_numbered_children_and_meets_the_processing_deadline() -> None:
    case = Case(K.RECOMMENDATION)
    parts = [
        c.SplitPart(kind=K.COMPLAINT, subject="Khiếu nại quyết định thu hồi đất", content="Phần 1"),
        c.SplitPart(kind=K.DENUNCIATION, subject="Tố cáo cán bộ địa chính", content="Phần 2"),
        c.SplitPart(kind=K.RECOMMENDATION, subject="Kiến nghị sửa đường", content="Phần 3"),
    ]
    [split] = case.do(c.Split(parts=parts), vn("2026-01-22"))
    assert isinstance(split, e.PetitionSplit)
    assert [child["case_id"] for child in split.children] == [f"{CASE_ID}-1", f"{CASE_ID}-2", f"{CASE_ID}-3"]
    assert [child["kind"] for child in split.children] == ["complaint", "denunciation", "recommendation"]
    assert split.children[1]["subject"] == "Tố cáo cán bộ địa chính"
    assert case.state.status == S.SPLIT
    assert case.state.linked_cases == [f"{CASE_ID}-1", f"{CASE_ID}-2", f"{CASE_ID}-3"]
    assert case.outcome("letter.processing") == "on_time"
    assert case.refused(c.Accept(decision_no="1"), vn("2026-01-22")) == "accept.state"
    assert case.refused(c.Split(parts=parts), vn("2026-01-22")) == "split.state"


def test_a_letter_split_after_the_processing_period_meets_it_late() -> None:
    case = classified(K.COMPLAINT)
    parts = [c.SplitPart(kind=K.COMPLAINT, subject="a", content="b"), c.SplitPart(kind=K.COMPLAINT, subject="c",
                                                                                  content="d")]
    case.do(c.Split(parts=parts), vn("2026-01-31", 8))
    assert case.outcome("complaint.acceptance") == "late"


def test_a_letter_cannot_be_split_into_one_part() -> None:
    with pytest.raises(ValidationError):
        c.Split(parts=[c.SplitPart(kind=K.COMPLAINT, subject="a", content="b")])


def test_a_forwarded_petition_meets_the_processing_deadline_and_waits_for_the_other_body() -> None:
    case = classified(K.COMPLAINT)
    [forwarded] = case.do(c.Forward(to_body="SO_TAI_NGUYEN", notice_no="9/PC-TTT"), vn("2026-01-23"))
    assert isinstance(forwarded, e.Forwarded)
    assert forwarded.legal_basis == "TT 05/2021/TT-TTCP (chuyển đơn)"
    assert case.state.status == S.FORWARDED
    assert "SO_TAI_NGUYEN" in case.state.bodies
    assert case.outcome("complaint.acceptance") == "on_time"
    assert not any(d.pending for d in case.state.deadlines.values())
    assert types(case.do(c.RecordExternalResult(result="Sở đã trả lời."), vn("2026-03-02"))) == [
        "ExternalResultRecorded"
    ]
    assert case.state.decision == {"form": "external_result", "outcome": "Sở đã trả lời.", "decision_no": ""}
    case.do(c.Close(), vn("2026-03-03"))
    assert case.status() == S.CLOSED


def test_a_petition_is_not_forwarded_to_the_body_that_has_it() -> None:
    case = classified(K.COMPLAINT)
    assert case.refused(c.Forward(to_body="UBND_TINH", notice_no="1"), ACCEPTED) == "forward.same_body"


def test_an_accepted_petition_is_neither_forwarded_nor_redirected() -> None:
    case = accepted(K.COMPLAINT)
    assert case.refused(c.Forward(to_body="SO_TAI_NGUYEN", notice_no="1"), vn("2026-01-22")) == "forward.state"
    assert case.refused(c.Redirect(guidance="Đến Tòa án"), vn("2026-01-22")) == "redirect.state"


def test_a_redirected_petitioner_ends_the_case_and_stops_its_clock() -> None:
    case = Case(K.RECOMMENDATION)
    [redirected] = case.do(c.Redirect(guidance="Đề nghị gửi đơn đến UBND xã Nam Sách."), vn("2026-01-21"))
    assert isinstance(redirected, e.Redirected)
    assert redirected.guidance == "Đề nghị gửi đơn đến UBND xã Nam Sách."
    assert case.state.status == S.REDIRECTED
    assert case.outcome("letter.processing") == "on_time"
    assert case.refused(c.RecordExternalResult(result="x"), vn("2026-01-22")) == "external_result.state"


def test_assigning_a_case_records_the_body_the_officer_and_the_previous_body() -> None:
    case = accepted(K.COMPLAINT)
    [assigned] = case.do(c.Assign(body="THANH_TRA_TINH", officer="le.van.cuong"), vn("2026-01-22"))
    assert isinstance(assigned, e.Assigned)
    assert (assigned.body, assigned.officer, assigned.previous_body) == ("THANH_TRA_TINH", "le.van.cuong", "UBND_TINH")
    assert (case.state.lead_body, case.state.officer) == ("THANH_TRA_TINH", "le.van.cuong")
    assert case.state.bodies == ["UBND_TINH", "THANH_TRA_TINH"]
    assert case.refused(c.Assign(body="THANH_TRA_TINH", officer="le.van.cuong"), vn("2026-01-23")) == (
        "assign.unchanged"
    )


def test_an_ended_case_is_not_reassigned() -> None:
    case = classified(K.COMPLAINT)
    case.do(c.Reject(reasons=["Quá thời hiệu"]), ACCEPTED)
    assert case.refused(c.Assign(body="THANH_TRA_TINH"), vn("2026-01-22")) == "assign.state"


# --- coordination ---


def coordinated() -> Case:
    case = accepted(K.COMPLAINT)
    case.do(co.RequestCoordination(subject="Cung cấp hồ sơ địa chính", bodies=[
        co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state", days=5, unit="working"),
        co.CoordinationTarget(body="UBMTTQ_TINH", side="front", days=10, unit="calendar"),
    ]), vn("2026-01-22", 10))
    return case


def test_a_coordination_request_sets_one_sub_deadline_per_body() -> None:
    case = coordinated()
    [request] = case.events[-1:]
    assert isinstance(request, CoordinationRequested)
    assert request.request_id == "R1"
    assert request.bodies == ["SO_TAI_NGUYEN", "UBMTTQ_TINH"]
    assert request.sides == {"SO_TAI_NGUYEN": "state", "UBMTTQ_TINH": "front"}
    assert [d.key for d in request.deadlines] == ["coordination.R1.SO_TAI_NGUYEN", "coordination.R1.UBMTTQ_TINH"]
    # 5 working days after Thu 22 Jan: 23, 26, 27, 28, 29 -> Thu 29 Jan.
    assert case.deadline("coordination.R1.SO_TAI_NGUYEN") == date(2026, 1, 29)
    # 22 Jan + 10 = Sun 1 Feb -> Mon 2 Feb.
    assert case.deadline("coordination.R1.UBMTTQ_TINH") == date(2026, 2, 2)
    assert all(d.statutory is False for d in request.deadlines)
    assert case.state.bodies == ["UBND_TINH", "SO_TAI_NGUYEN", "UBMTTQ_TINH"]
    again = co.RequestCoordination(subject="Lần hai", bodies=[co.CoordinationTarget(body="SO_TAI_NGUYEN",
                                                                                  side="state", days=3)])
    [second] = case.do(again, vn("2026-01-23"))
    assert isinstance(second, CoordinationRequested) and second.request_id == "R2"


def test_a_coordination_response_meets_its_sub_deadline_on_time_or_late() -> None:
    case = coordinated()
    [answer] = case.do(co.Respond(request_id="R1", body="SO_TAI_NGUYEN", response="Đã gửi hồ sơ."),
                       vn("2026-01-29", 16))
    assert isinstance(answer, CoordinationResponded)
    case.do(co.Respond(request_id="R1", body="UBMTTQ_TINH", response="Ý kiến của Mặt trận."), vn("2026-02-03", 8))
    assert case.outcome("coordination.R1.SO_TAI_NGUYEN") == "on_time"
    assert case.outcome("coordination.R1.UBMTTQ_TINH") == "late"
    assert case.state.coordination["R1"].responses == {"SO_TAI_NGUYEN": "Đã gửi hồ sơ.",
                                                       "UBMTTQ_TINH": "Ý kiến của Mặt trận."}


def test_a_response_from_a_body_that_was_not_asked_is_refused() -> None:
    case = coordinated()
    respond = co.Respond(request_id="R1", body="THANH_TRA_TINH", response="x")
    assert case.refused(respond, vn("2026-01-23")) == "respond.not_asked"
    unknown = co.Respond(request_id="R9", body="SO_TAI_NGUYEN", response="x")
    assert case.refused(unknown, vn("2026-01-23")) == "respond.unknown_request"
    case.do(co.Respond(request_id="R1", body="SO_TAI_NGUYEN", response="x"), vn("2026-01-23"))
    assert case.refused(co.Respond(request_id="R1", body="SO_TAI_NGUYEN", response="y"), vn("2026-01-24")) == (
        "respond.already"
    )


def test_a_coordination_request_names_each_body_once_and_not_the_lead_body() -> None:
    case = accepted(K.COMPLAINT)
    twice = co.RequestCoordination(subject="x", bodies=[co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state",
                                                                            days=3)] * 2)
    assert case.refused(twice, vn("2026-01-22")) == "coordination.duplicate_body"
    lead = co.RequestCoordination(subject="x", bodies=[co.CoordinationTarget(body="UBND_TINH", side="state", days=3)])
    assert case.refused(lead, vn("2026-01-22")) == "coordination.lead_body"
    early = classified(K.COMPLAINT)
    target = [co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state", days=3)]
    assert early.refused(co.RequestCoordination(subject="x", bodies=target), CLASSIFIED) == "coordination.state"


# --- verification and dialogue ---


def test_verification_is_recorded_with_its_legal_basis() -> None:
    case = accepted(K.COMPLAINT)
    [step] = case.do(c.RecordVerification(findings="Đã kiểm tra hồ sơ.", demand_matches_findings=True),
                     vn("2026-02-02"))
    assert isinstance(step, e.VerificationStep)
    assert step.legal_basis == "Luật Khiếu nại 2011, Điều 29"
    assert case.state.status == S.VERIFYING
    assert case.state.verification_recorded is True
    assert case.state.demand_matches_findings is True
    # A later step that says nothing about the demand keeps what the earlier one found.
    case.do(c.RecordVerification(findings="Bổ sung."), vn("2026-02-03"))
    assert case.state.demand_matches_findings is True


def test_verification_happens_only_while_the_case_is_handled() -> None:
    case = classified(K.COMPLAINT)
    assert case.refused(c.RecordVerification(findings="x"), ACCEPTED) == "verification.state"


def test_a_complaint_whose_demand_differs_from_the_findings_is_decided_only_after_a_dialogue() -> None:
    case = accepted(K.COMPLAINT)
    case.do(c.RecordVerification(findings="Yêu cầu khác kết quả xác minh.", demand_matches_findings=False),
            vn("2026-02-02"))
    decision = c.Decide(outcome="not_upheld", decision_no="45/QĐ-UBND", summary="Không công nhận.")
    assert case.refused(decision, vn("2026-02-05")) == "complaint.dialogue_required"
    [dialogue] = case.do(c.RecordDialogue(held_on=date(2026, 2, 4), participants=["Nguyễn Văn An", "Trần Thị Lan"],
                                          summary="Đã đối thoại."), vn("2026-02-04", 16))
    assert isinstance(dialogue, e.DialogueHeld)
    assert dialogue.legal_basis == "Luật Khiếu nại 2011, Điều 30"
    assert case.state.status == S.DIALOGUE and case.state.dialogue_held
    assert types(case.do(decision, vn("2026-02-05"))) == ["DecisionIssued"]


def test_a_dialogue_belongs_to_complaints_and_follows_verification() -> None:
    dialogue = c.RecordDialogue(held_on=date(2026, 2, 4), participants=["A"], summary="x")
    assert accepted(K.COMPLAINT).refused(dialogue, vn("2026-02-04")) == "dialogue.state"
    denunciation = accepted(K.DENUNCIATION)
    denunciation.do(c.RecordVerification(findings="x", demand_matches_findings=False), vn("2026-02-02"))
    assert denunciation.refused(dialogue, vn("2026-02-04")) == "dialogue.kind"


# --- extensions ---


def extension(no: str, on: str, reason: str = "Phải xác minh ở hai địa điểm", **more: object) -> c.Extend:
    return c.Extend(decision_no=no, decision_date=date.fromisoformat(on), reason=reason, **more)


def especially_complex_denunciation() -> Case:
    case = Case(K.DENUNCIATION)
    case.do(c.Classify(especially_complex=True, lead_body="UBND_TINH", subject_category="đất đai",
                       reason="Nhiều người tố cáo, phải xác minh ở nhiều địa điểm"), CLASSIFIED)
    case.do(c.Accept(decision_no="12/QĐ-UBND"), ACCEPTED)
    return case


def test_an_especially_complex_denunciation_is_extended_twice_from_acceptance_and_not_a_third_time() -> None:
    case = especially_complex_denunciation()
    assert case.state.especially_complex and case.state.complex
    # Accepted Wed 21 Jan 2026: + 30 = Fri 20 Feb, in Tết -> Mon 23 Feb.
    assert case.deadline("denunciation.resolution") == date(2026, 2, 23)
    [first] = case.do(extension("1/QĐ-GH", "2026-02-10"), vn("2026-02-10"))
    assert isinstance(first, e.ExtensionGranted)
    assert first.legal_basis == "Luật Tố cáo 2018, Điều 30"
    assert first.decision_no == "1/QĐ-GH" and first.decision_date == date(2026, 2, 10)
    assert first.deadline.extensions == 1 and first.deadline.extended_by == 30
    # Counted from acceptance, only the final end moved: 21 Jan + 60 = Sun 22 Mar -> Mon 23 Mar
    # (not Mon 23 Feb + 30 = Wed 25 Mar).
    assert case.deadline("denunciation.resolution") == date(2026, 3, 23)
    case.do(extension("2/QĐ-GH", "2026-03-20", "Vụ việc đặc biệt phức tạp"), vn("2026-03-20"))
    # 21 Jan + 90 = Tue 21 Apr.
    assert case.deadline("denunciation.resolution") == date(2026, 4, 21)
    assert case.state.deadlines["denunciation.resolution"].deadline.extensions == 2
    assert [d["decision_no"] for d in case.state.extension_decisions] == ["1/QĐ-GH", "2/QĐ-GH"]
    with pytest.raises(DomainError) as refusal:
        decide(case.state, extension("3/QĐ-GH", "2026-04-10", "Thêm lần nữa"), OFFICER, vn("2026-04-10"))
    assert refusal.value.rule == "denunciation.extension_limit"
    assert refusal.value.message.startswith("Luật Tố cáo 2018, Điều 30: at most 2 extension(s)")


def test_an_ordinary_denunciation_is_not_extended() -> None:
    case = accepted(K.DENUNCIATION)
    with pytest.raises(DomainError) as refusal:
        decide(case.state, extension("1/QĐ-GH", "2026-02-10"), OFFICER, vn("2026-02-10"))
    assert refusal.value.rule == "denunciation.extension_not_allowed"
    assert refusal.value.message.startswith("Luật Tố cáo 2018, Điều 30:")
    assert "vụ việc thông thường" in refusal.value.message


def test_a_complex_denunciation_is_extended_once_only() -> None:
    case = accepted(K.DENUNCIATION, complex=True)
    case.do(extension("1/QĐ-GH", "2026-02-10"), vn("2026-02-10"))
    assert case.deadline("denunciation.resolution") == date(2026, 3, 23)
    with pytest.raises(DomainError) as refusal:
        decide(case.state, extension("2/QĐ-GH", "2026-03-20"), OFFICER, vn("2026-03-20"))
    assert refusal.value.rule == "denunciation.extension_limit"
    assert "at most 1 extension(s)" in refusal.value.message and "Điều 30" in refusal.value.message


def test_the_extension_decision_may_find_a_complex_case_especially_complex() -> None:
    case = accepted(K.DENUNCIATION, complex=True)
    case.do(extension("1/QĐ-GH", "2026-02-10"), vn("2026-02-10"))
    [second] = case.do(extension("2/QĐ-GH", "2026-03-20", "Phát sinh nội dung mới, phải xác minh ở tỉnh khác",
                                 especially_complex=True), vn("2026-03-20"))
    assert isinstance(second, e.ExtensionGranted) and second.especially_complex
    assert case.state.especially_complex
    assert case.deadline("denunciation.resolution") == date(2026, 4, 21)
    # An ordinary case found especially complex at its first extension.
    ordinary = accepted(K.DENUNCIATION)
    ordinary.do(extension("1/QĐ-GH", "2026-02-10", "Đặc biệt phức tạp", especially_complex=True), vn("2026-02-10"))
    assert ordinary.state.especially_complex and ordinary.deadline("denunciation.resolution") == date(2026, 3, 23)


def test_an_extension_decision_needs_its_own_number_and_a_date_neither_future_nor_before_receipt() -> None:
    case = especially_complex_denunciation()
    assert case.refused(c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp"), vn("2026-02-10")) == "extend.decision_date"
    assert case.refused(extension("1/QĐ-GH", "2026-02-11"), vn("2026-02-10")) == "extend.decision_date_future"
    # The date is Vietnam's: at 06:00 on 11 Feb in Vietnam it is still 10 Feb in UTC, and 11 Feb is today.
    assert types(case.copy().do(extension("1/QĐ-GH", "2026-02-11"), vn("2026-02-11", 6))) == ["ExtensionGranted"]
    assert case.refused(extension("1/QĐ-GH", "2026-01-19"), vn("2026-02-10")) == "extend.decision_date_before_receipt"
    case.do(extension("1/QĐ-GH", "2026-01-20"), vn("2026-02-10"))  # the day of receipt is allowed
    assert case.refused(extension("1/QĐ-GH", "2026-03-20"), vn("2026-03-20")) == "extend.decision_no_reused"


def test_cases_recorded_before_the_revision_extend_as_they_did() -> None:
    case = accepted(K.DENUNCIATION)
    old = c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp")
    [granted] = decide(case.state, old, OFFICER, vn("2026-02-10"), revised=False)
    assert isinstance(granted, e.ExtensionGranted)
    assert granted.deadline.due_on == date(2026, 3, 25)  # Mon 23 Feb + 30, as before
    assert granted.decision_date is None


def test_a_denunciation_is_not_extended_after_its_period_ended() -> None:
    case = accepted(K.DENUNCIATION, complex=True)
    late = extension("1/QĐ-GH", "2026-02-24", "Phức tạp")
    assert case.refused(late, vn("2026-02-24", 0, 0, 1)) == "extend.after_deadline"
    # Judged by the decision's date: signed on the last day, recorded the next morning, it was in time.
    in_time = extension("1/QĐ-GH", "2026-02-23", "Phức tạp")
    assert types(case.copy().do(in_time, vn("2026-02-24", 8))) == ["ExtensionGranted"]
    assert types(case.do(in_time, vn("2026-02-23", 23, 59))) == ["ExtensionGranted"]


def test_an_extension_needs_its_reason() -> None:
    case = accepted(K.DENUNCIATION, complex=True)
    assert case.refused(c.Extend(decision_no="1/QĐ-GH", decision_date=date(2026, 2, 10)),
                        vn("2026-02-10")) == "extend.reason"


def test_especially_complex_at_classification_needs_its_reason() -> None:
    case = Case(K.DENUNCIATION)
    assert case.refused(c.Classify(especially_complex=True, lead_body="UBND_TINH"),
                        CLASSIFIED) == "classify.especially_complex_reason"


def test_a_complaint_is_never_extended() -> None:
    case = accepted(K.COMPLAINT, complex=True)
    extend = c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp")
    assert case.refused(extend, vn("2026-02-10")) == "complaint.no_extension"


def test_a_recommendation_has_no_extension_and_a_voter_petition_no_resolution_period_to_extend() -> None:
    extend = c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp")
    assert accepted(K.RECOMMENDATION).refused(extend, vn("2026-02-10")) == "recommendation.extension_limit"
    assert accepted(K.VOTER_PETITION).refused(extend, vn("2026-02-10")) == "extend.no_deadline"
    assert classified(K.DENUNCIATION).refused(extend, vn("2026-01-21")) == "extend.state"


# --- suspension ---


def test_a_suspension_needs_a_reason() -> None:
    case = accepted(K.COMPLAINT)
    assert case.refused(c.Suspend(), vn("2026-02-02")) == "suspend.reason"
    assert case.refused(c.Suspend(reason=""), vn("2026-02-02")) == "suspend.reason"
    [suspended] = case.do(c.Suspend(reason="Chờ kết quả giám định"), vn("2026-02-02"))
    assert isinstance(suspended, e.Suspended) and suspended.reason == "Chờ kết quả giám định"
    assert case.state.suspended
    # A second suspension meets the general refusal first (so `suspend.already` is never reached).
    assert case.refused(c.Suspend(reason="lần nữa"), vn("2026-02-03")) == "case.suspended"


def test_a_suspension_with_a_blank_reason_is_refused() -> None:
    case = accepted(K.COMPLAINT)
    assert case.refused(c.Suspend(reason="   "), vn("2026-02-02")) == "suspend.reason"


SUSPENDED_REFUSES = [
    c.RecordVerification(findings="x"),
    c.Decide(outcome="upheld", decision_no="1", summary="x"),
    c.Extend(decision_no="1", reason="x"),
    c.Notify(about="acceptance", recipients=["A"], doc_no="1"),
    co.RequestCoordination(subject="x", bodies=[co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state", days=3)]),
    c.Suspend(reason="x"),
    c.Close(),
    c.Appeal(),
]


@pytest.mark.parametrize("command", SUSPENDED_REFUSES, ids=lambda cmd: cmd.type)
def test_a_suspended_case_refuses_most_commands(command: c.PetitionCommand) -> None:
    case = accepted(K.COMPLAINT)
    case.do(c.Suspend(reason="Chờ giám định"), vn("2026-02-02"))
    assert case.refused(command, vn("2026-02-03")) == "case.suspended"


def test_a_suspended_case_can_be_resumed_withdrawn_or_reassigned() -> None:
    case = accepted(K.COMPLAINT)
    case.do(c.Suspend(reason="Chờ giám định"), vn("2026-02-02"))
    resumed = case.copy()
    assert types(resumed.do(c.Resume(reason="Đã có kết quả"), vn("2026-02-09"))) == ["Resumed"]
    assert not resumed.state.suspended
    assert resumed.refused(c.Resume(), vn("2026-02-10")) == "resume.not_suspended"
    assigned = case.copy()
    assert types(assigned.do(c.Assign(body="THANH_TRA_TINH"), vn("2026-02-09"))) == ["Assigned"]
    assert assigned.state.suspended
    withdrawn = case.copy()
    assert types(withdrawn.do(c.Withdraw(), vn("2026-02-09"))) == ["Withdrawn", "Terminated"]
    assert withdrawn.state.status == S.TERMINATED and not withdrawn.state.suspended


# --- suspension stops the clock of a denunciation (Luật Tố cáo 2018, Điều 34 khoản 2) ---


def suspended_across_tet(case: Case) -> Case:
    """Suspended Tue 10 Feb 2026 (before Tết), resumed Wed 25 Feb (after it)."""
    [suspended] = case.do(c.Suspend(reason="Chờ kết quả giám định"), vn("2026-02-10"))
    assert isinstance(suspended, e.Suspended)
    return case


def test_a_suspended_denunciation_stops_its_clock_does_not_breach_and_resumes_for_what_remained() -> None:
    case = accepted(K.DENUNCIATION)
    case.do(c.Notify(about="acceptance", recipients=["Người tố cáo"], doc_no="13/TB"), vn("2026-01-22"))
    assert case.deadline("denunciation.resolution") == date(2026, 2, 23)
    [suspended] = case.do(c.Suspend(reason="Chờ kết quả giám định"), vn("2026-02-10"))
    assert isinstance(suspended, e.Suspended)
    assert suspended.stopped == ["denunciation.resolution"]
    assert suspended.legal_basis == "Luật Tố cáo 2018, Điều 34 khoản 2"
    resolution = case.state.deadlines["denunciation.resolution"]
    assert resolution.stopped_on == date(2026, 2, 10) and resolution.pending and not resolution.running
    # Only the notice of the suspension decision runs (Điều 34 khoản 4: 5 working days from Tue 10 Feb: 11, 12,
    # 13, Tết 16-20 off, 23, 24 -> Tue 24 Feb); once sent, nothing runs.
    assert case.state.next_due is not None and case.state.next_due.key == "denunciation.suspension_notice"
    assert case.state.next_due.due_on == date(2026, 2, 24)
    case.do(c.Notify(about="suspension", recipients=["Người tố cáo", "Người bị tố cáo"], doc_no="14/QĐ-TĐC"),
            vn("2026-02-11"))
    assert case.outcome("denunciation.suspension_notice") == "on_time"
    assert case.state.next_due is None
    # Its old due date passes while it is suspended: no warning, no breach, no Front supervision.
    for stage, at in (("approaching", vn("2026-02-19")), ("breached", vn("2026-02-24", 0, 0, 1))):
        assert case.do(c.MarkDeadline(key="denunciation.resolution", stage=stage), at, SYSTEM) == []
    assert not case.state.overdue and case.state.front_supervision is None

    # Resumed Wed 25 Feb: 22 Jan..10 Feb counted (20 days), 10 remain, from 26 Feb: Sat 7 Mar -> Mon 9 Mar.
    [resumed] = case.do(c.Resume(reason="Đã có kết quả giám định"), vn("2026-02-25"))
    assert isinstance(resumed, e.Resumed)
    [new] = resumed.deadlines
    assert (new.key, new.due_on, new.suspended_days) == ("denunciation.resolution", date(2026, 3, 9), 15)
    assert resumed.legal_basis == "Luật Tố cáo 2018, Điều 34 khoản 2"
    assert case.deadline("denunciation.resolution") == date(2026, 3, 9)
    assert case.state.deadlines["denunciation.resolution"].running
    assert case.state.next_due == new
    # It breaches on the recomputed day, not before.
    assert case.do(c.MarkDeadline(key="denunciation.resolution", stage="breached"), vn("2026-03-09", 23, 59),
                   SYSTEM) == []
    breach = case.do(c.MarkDeadline(key="denunciation.resolution", stage="breached"), vn("2026-03-10", 0, 0, 1),
                     SYSTEM)
    assert types(breach) == ["DeadlineBreached", "FrontSupervisionStarted"]


def test_an_extension_after_a_suspension_counts_the_suspended_days_too() -> None:
    case = especially_complex_denunciation()
    suspended_across_tet(case)
    case.do(c.Resume(reason="Đã có kết quả"), vn("2026-02-25"))
    assert case.deadline("denunciation.resolution") == date(2026, 3, 9)
    case.do(extension("1/QĐ-GH", "2026-03-02"), vn("2026-03-02"))
    # 21 Jan + 30 + 15 (not counted) + 30 = 21 Jan + 75 = Mon 6 Apr.
    assert case.deadline("denunciation.resolution") == date(2026, 4, 6)


def test_a_period_already_missed_is_not_stopped_by_the_suspension() -> None:
    case = accepted(K.DENUNCIATION)  # the acceptance notice was due Wed 28 Jan and was not sent
    [suspended] = case.do(c.Suspend(reason="Chờ giám định"), vn("2026-02-10"))
    assert isinstance(suspended, e.Suspended) and suspended.stopped == ["denunciation.resolution"]
    assert case.state.deadlines["denunciation.acceptance_notice"].running


def test_a_suspended_complaint_keeps_its_clock_as_the_policy_says() -> None:
    case = accepted(K.COMPLAINT)
    [suspended] = case.do(c.Suspend(reason="Chờ giám định"), vn("2026-02-02"))
    assert isinstance(suspended, e.Suspended) and suspended.stopped == []
    assert suspended.legal_basis == RULES.policy.suspension["complaint"].legal_basis
    [resumed] = case.do(c.Resume(reason="Có kết quả"), vn("2026-02-09"))
    assert isinstance(resumed, e.Resumed) and resumed.deadlines == []


def test_cases_recorded_before_the_revision_suspend_without_stopping_a_clock() -> None:
    case = accepted(K.DENUNCIATION)
    [suspended] = decide(case.state, c.Suspend(reason="Chờ"), OFFICER, vn("2026-02-10"), revised=False)
    assert isinstance(suspended, e.Suspended) and suspended.stopped == []
    # A policy without suspension rules (recorded before them) stops nothing either.
    old = case.state.model_copy(update={"rules": RULES.model_copy(update={
        "policy": RULES.policy.model_copy(update={"suspension": {}})})})
    [suspended] = decide(old, c.Suspend(reason="Chờ"), OFFICER, vn("2026-02-10"))
    assert isinstance(suspended, e.Suspended) and suspended.stopped == []


# --- the forwarding body's notices ---


def test_a_denunciation_forwarded_by_the_front_tells_it_within_20_days_of_receipt() -> None:
    case = Case(K.DENUNCIATION, forwarded_by_front=True, channel="front_forwarded")
    notice = case.state.deadlines["denunciation.forwarder_notice"].deadline
    # Received Tue 20 Jan 2026 + 20 = Mon 9 Feb.
    assert notice.due_on == date(2026, 2, 9) and notice.legal_basis == "Luật Tố cáo 2018, Điều 26 khoản 2"
    [sent] = case.do(c.Notify(about="forwarder", recipients=["UBMTTQ_TINH"], doc_no="5/TB"), vn("2026-02-06"))
    assert isinstance(sent, e.NotificationSent) and sent.legal_basis == "Luật Tố cáo 2018, Điều 26 khoản 2"
    assert case.outcome("denunciation.forwarder_notice") == "on_time"
    assert case.state.status == S.RECEIVED


def test_a_complaint_forwarded_by_the_front_tells_it_within_7_days_of_the_decision() -> None:
    case = accepted(K.COMPLAINT, channel="front_forwarded", forwarded_by_front=True)
    tell = c.Notify(about="forwarder", recipients=["UBMTTQ_TINH"], doc_no="9/TB")
    assert case.refused(tell, vn("2026-02-05")) == "notify.forwarder_state"
    case.do(c.RecordVerification(findings="x", demand_matches_findings=True), vn("2026-02-02"))
    case.do(c.Decide(outcome="upheld", decision_no="45/QĐ-UBND", summary="x"), vn("2026-02-12"))
    notice = case.state.deadlines["complaint.forwarder_notice"].deadline
    # Thu 12 Feb + 7 = Thu 19 Feb, in Tết (16-20 Feb off) -> Mon 23 Feb.
    assert notice.due_on == date(2026, 2, 23) and notice.legal_basis == "Luật Khiếu nại 2011, Điều 66 khoản 2"
    case.do(tell, vn("2026-02-23"))
    assert case.outcome("complaint.forwarder_notice") == "on_time"
    assert case.state.status == S.DECIDED


def test_a_petition_nobody_forwarded_has_no_forwarder_to_tell() -> None:
    case = accepted(K.DENUNCIATION)
    assert "denunciation.forwarder_notice" not in case.state.deadlines
    tell = c.Notify(about="forwarder", recipients=["UBMTTQ_TINH"], doc_no="9/TB")
    assert case.refused(tell, vn("2026-02-05")) == "notify.forwarder_none"


def test_a_recommendation_received_in_person_is_answered_within_10_working_days() -> None:
    case = Case(K.RECOMMENDATION, channel="in_person")
    [first] = case.state.deadlines.values()
    # Tue 20 Jan 2026: 21, 22, 23, 26, 27, 28, 29, 30 Jan, 2, 3 Feb.
    assert (first.deadline.key, first.deadline.unit, first.deadline.due_on) == (
        "reception.in_person_answer", "working", date(2026, 2, 3))
    assert first.deadline.legal_basis == "Luật Tiếp công dân 2013, Điều 28 khoản 1"
    case.do(c.Classify(lead_body="UBND_TINH"), CLASSIFIED)
    case.do(c.Accept(decision_no="3/TL"), ACCEPTED)
    assert case.outcome("reception.in_person_answer") == "on_time"
    assert Case(K.RECOMMENDATION).state.deadlines.keys() == {"letter.processing"}


# --- withdrawal ---


def test_a_withdrawn_complaint_is_terminated() -> None:
    case = accepted(K.COMPLAINT)
    withdrawn, terminated = case.do(c.Withdraw(reason="Người khiếu nại rút đơn"), vn("2026-02-02"))
    assert isinstance(withdrawn, e.Withdrawn) and isinstance(terminated, e.Terminated)
    assert withdrawn.continues is False
    assert withdrawn.legal_basis == terminated.legal_basis == "Luật Khiếu nại 2011, Điều 10"
    assert case.state.status == S.TERMINATED and case.state.withdrawn
    assert case.outcome("complaint.resolution") == "cancelled"
    assert case.refused(c.Withdraw(), vn("2026-02-03")) == "withdraw.state"


@pytest.mark.parametrize(("signs", "coerced"), [(True, False), (False, True), (True, True)])
def test_a_withdrawn_denunciation_with_signs_of_violation_or_coercion_continues(signs: bool, coerced: bool) -> None:
    case = accepted(K.DENUNCIATION)
    [withdrawn] = case.do(c.Withdraw(signs_of_violation=signs, coerced=coerced), vn("2026-02-02"))
    assert isinstance(withdrawn, e.Withdrawn)
    assert withdrawn.continues is True
    assert (withdrawn.signs_of_violation, withdrawn.coerced) == (signs, coerced)
    assert withdrawn.legal_basis == "Luật Tố cáo 2018, Điều 33"
    assert case.state.status == S.ACCEPTED and case.state.withdrawn
    assert case.state.deadlines["denunciation.resolution"].pending
    assert case.refused(c.Withdraw(), vn("2026-02-03")) == "withdraw.already"
    assert types(case.do(c.Decide(outcome="violation_found", decision_no="1/KL", summary="x"),
                         vn("2026-02-10"))) == ["DecisionIssued"]


def test_a_withdrawn_denunciation_without_signs_of_violation_is_terminated() -> None:
    case = accepted(K.DENUNCIATION)
    assert types(case.do(c.Withdraw(), vn("2026-02-02"))) == ["Withdrawn", "Terminated"]
    assert case.state.status == S.TERMINATED
    # Every period is cancelled but the notice of the termination decision (Điều 34 khoản 4: 5 working days
    # from Mon 2 Feb: 3, 4, 5, 6, 9 -> Mon 9 Feb).
    assert [k for k, d in case.state.deadlines.items() if d.pending] == ["denunciation.suspension_notice"]
    assert case.deadline("denunciation.suspension_notice") == date(2026, 2, 9)


def test_a_closed_denunciation_cannot_be_withdrawn_after_its_conclusion_either() -> None:
    case = decided(K.DENUNCIATION, "no_violation", vn("2026-02-12"))
    case.do(c.Notify(about="decision", recipients=["Người tố cáo"], doc_no="20/TB"), vn("2026-02-13"))
    case.do(c.Close(), vn("2026-02-13"))
    with pytest.raises(DomainError) as refusal:
        decide(case.state, c.Withdraw(reason="Xin rút"), OFFICER, vn("2026-02-14"))
    assert refusal.value.rule == "denunciation.withdraw_after_conclusion"
    assert refusal.value.message.startswith("Luật Tố cáo 2018, Điều 33 khoản 1:")
    assert "2026-02-12" in refusal.value.message


def test_a_denunciation_cannot_be_withdrawn_after_its_conclusion() -> None:
    case = decided(K.DENUNCIATION, "no_violation", vn("2026-02-12"))
    assert case.refused(c.Withdraw(), vn("2026-02-13")) == "denunciation.withdraw_after_conclusion"


def test_a_complaint_cannot_be_withdrawn_after_its_decision() -> None:
    case = decided(K.COMPLAINT, "upheld", vn("2026-02-12"))
    assert case.refused(c.Withdraw(), vn("2026-02-13")) == "withdraw.after_decision"


# --- decisions ---


@pytest.mark.parametrize(
    ("kind", "outcome", "wrong", "form", "legal_basis"),
    [
        (K.COMPLAINT, "partly_upheld", "violation_found", "complaint_decision", "Luật Khiếu nại 2011, Điều 31"),
        (K.DENUNCIATION, "violation_found", "upheld", "denunciation_conclusion", "Luật Tố cáo 2018, Điều 35"),
        (K.RECOMMENDATION, "answered", "not_upheld", "reply", "Luật Tiếp công dân 2013"),
        (K.VOTER_PETITION, "answered", "no_violation", "reply", "NQLT 72/2025"),
    ],
)
def test_each_kind_is_decided_with_its_own_outcomes(
    kind: PetitionKind, outcome: str, wrong: str, form: str, legal_basis: str
) -> None:
    case = accepted(kind)
    refused = c.Decide(outcome=wrong, decision_no="45/QĐ", summary="x")
    assert case.refused(refused, vn("2026-02-12")) == "decide.outcome"
    [issued] = case.do(c.Decide(outcome=outcome, decision_no="45/QĐ", summary="Nội dung."),
                       vn("2026-02-12"))
    assert isinstance(issued, e.DecisionIssued)
    assert (issued.form, issued.outcome, issued.legal_basis) == (form, outcome, legal_basis)
    assert case.state.status == S.DECIDED
    assert case.state.decided_at == vn("2026-02-12")
    assert case.state.decision == {"form": form, "outcome": outcome, "decision_no": "45/QĐ"}
    resolution = {"complaint": "complaint.resolution", "denunciation": "denunciation.resolution",
                  "recommendation": "recommendation.resolution", "voter_petition": "voter_petition.answer"}[kind]
    assert case.outcome(resolution) == "on_time"


def test_a_complaint_decided_after_its_period_is_late_and_must_be_sent_in_three_working_days() -> None:
    case = accepted(K.COMPLAINT)
    [issued] = case.do(c.Decide(outcome="upheld", decision_no="45/QĐ", summary="x"), vn("2026-02-24", 8))
    assert case.outcome("complaint.resolution") == "late"
    delivery, effect = issued.deadlines  # type: ignore[attr-defined]
    # 3 working days after Tue 24 Feb: 25, 26, 27 -> Fri 27 Feb.
    assert (delivery.key, delivery.unit, delivery.due_on) == ("complaint.decision_delivery", "working",
                                                               date(2026, 2, 27))
    # It takes legal effect 30 days after it is issued: 24 Feb + 30 = Thu 26 Mar (Luật Khiếu nại 2011, Điều 44).
    assert (effect.key, effect.due_on) == ("complaint.decision_effect", date(2026, 3, 26))


def test_a_decision_is_issued_only_on_an_accepted_case() -> None:
    case = classified(K.COMPLAINT)
    assert case.refused(c.Decide(outcome="upheld", decision_no="1", summary="x"), ACCEPTED) == "decide.state"


# --- notices ---


def test_notifying_the_acceptance_of_a_denunciation_meets_its_five_working_days() -> None:
    case = accepted(K.DENUNCIATION)
    [sent] = case.do(c.Notify(about="acceptance", recipients=["Người tố cáo", "Người bị tố cáo"], doc_no="3/TB"),
                     vn("2026-01-27", 10))
    assert isinstance(sent, e.NotificationSent)
    assert sent.legal_basis == "Luật Tố cáo 2018, Điều 29.3"
    assert case.outcome("denunciation.acceptance_notice") == "on_time"
    assert case.state.status == S.ACCEPTED


def test_a_late_acceptance_notice_is_recorded_as_late() -> None:
    case = accepted(K.DENUNCIATION)
    case.do(c.Notify(about="acceptance", recipients=["Người tố cáo"], doc_no="3/TB"), vn("2026-01-29", 8))
    assert case.outcome("denunciation.acceptance_notice") == "late"


def test_notifying_a_complaint_decision_meets_the_delivery_deadline_across_tet() -> None:
    case = decided(K.COMPLAINT, "upheld", vn("2026-02-12", 10))
    # 3 working days after Thu 12 Feb: Fri 13, then Tết (16-20 Feb) and weekends, Mon 23, Tue 24 -> Tue 24 Feb.
    assert case.deadline("complaint.decision_delivery") == date(2026, 2, 24)
    [sent] = case.do(c.Notify(about="decision", recipients=["Nguyễn Văn An", "Thanh tra tỉnh"], doc_no="45/QĐ"),
                     vn("2026-02-24", 16))
    assert sent.legal_basis == "Luật Khiếu nại 2011, Điều 32"
    assert case.outcome("complaint.decision_delivery") == "on_time"
    assert case.state.status == S.NOTIFIED


def test_a_denunciation_conclusion_published_is_marked_published() -> None:
    case = decided(K.DENUNCIATION, "violation_found", vn("2026-02-12"))
    [sent] = case.do(c.Notify(about="decision", recipients=["Cổng TTĐT tỉnh"], channel="publication",
                              doc_no="5/KL"), vn("2026-02-13"))
    assert sent.published is True  # type: ignore[attr-defined]


def test_a_decision_is_notified_only_once_issued_and_an_acceptance_only_once_decided() -> None:
    case = classified(K.DENUNCIATION)
    assert case.refused(c.Notify(about="acceptance", recipients=["A"], doc_no="1"), ACCEPTED) == (
        "notify.acceptance_state"
    )
    assert accepted(K.COMPLAINT).refused(c.Notify(about="decision", recipients=["A"], doc_no="1"),
                                         vn("2026-02-02")) == "notify.decision_state"


# --- second instance ---


def test_a_complaint_can_be_appealed_within_thirty_days_of_the_first_instance_decision() -> None:
    case = decided(K.COMPLAINT, "not_upheld", vn("2026-02-12", 10))
    # 12 Feb + 30 = Sat 14 Mar -> Mon 16 Mar (LKN 2011 Art 33).
    assert case.refused(c.Appeal(), vn("2026-03-17", 8)) == "complaint.appeal_window"
    [escalated] = case.do(c.Appeal(to_body="UBND_TINH"), vn("2026-03-16", 16))
    assert isinstance(escalated, e.EscalatedSecondInstance)
    assert escalated.new_case_id == f"{CASE_ID}-L2"
    assert escalated.to_body == "UBND_TINH"
    assert escalated.legal_basis == "Luật Khiếu nại 2011, Điều 33"
    assert case.state.linked_cases == [f"{CASE_ID}-L2"]
    assert case.refused(c.Appeal(), vn("2026-03-16", 17)) == "appeal.already"


def test_a_complaint_can_be_appealed_when_the_first_instance_period_passed_without_a_decision() -> None:
    case = accepted(K.COMPLAINT)
    assert case.refused(c.Appeal(), vn("2026-02-23", 12)) == "appeal.state"  # the period runs to the end of 23 Feb
    # 23 Feb + 30 = Wed 25 Mar.
    assert case.refused(c.Appeal(), vn("2026-03-26", 8)) == "complaint.appeal_window"
    assert types(case.do(c.Appeal(), vn("2026-03-02"))) == ["EscalatedSecondInstance"]


def test_a_denunciation_is_repeated_to_the_superior_only_under_the_completed_periods() -> None:
    case = decided(K.DENUNCIATION, "no_violation", vn("2026-02-12"))
    with pytest.raises(DomainError) as refused:
        decide(case.state, c.Appeal(to_body="UBND_TINH"), OFFICER, vn("2026-02-20"), completed=False)
    assert refused.value.rule == "appeal.kind"
    assert case.refused(c.Appeal(), vn("2026-02-20")) == "appeal.to_body"
    [repeated] = case.do(c.Appeal(to_body="UBND_TINH"), vn("2026-02-20"))
    assert isinstance(repeated, e.EscalatedSecondInstance) and repeated.legal_basis == "Luật Tố cáo 2018, Điều 37"


# --- closing and archiving ---


def test_a_case_is_closed_only_once_it_is_notified_or_ended() -> None:
    case = decided(K.COMPLAINT, "upheld", vn("2026-02-12"))
    assert case.refused(c.Close(), vn("2026-02-13")) == "close.state"
    assert case.refused(c.Archive(archive_ref="HS-1"), vn("2026-02-13")) == "archive.state"
    case.do(c.Notify(about="decision", recipients=["A"], doc_no="45/QĐ"), vn("2026-02-13"))
    # Carried out once in effect: 12 Feb + 30 = Sat 14 Mar -> Mon 16 Mar (Luật Khiếu nại 2011, Điều 44).
    assert case.refused(c.RecordImplementation(summary="Đã thi hành."), vn("2026-03-02")) == (
        "implementation.not_in_effect")
    assert types(case.do(MarkDeadline(key="complaint.decision_effect", stage="breached"), vn("2026-03-17", 0, 0, 1),
                         SYSTEM)) == ["DecisionTookEffect"]
    assert types(case.do(c.RecordImplementation(summary="Đã thi hành."), vn("2026-03-17"))) == [
        "ImplementationRecorded"
    ]
    assert case.state.status == S.IMPLEMENTING
    assert case.refused(c.Archive(archive_ref="HS-1"), vn("2026-03-18")) == "archive.state"
    case.do(c.Close(), vn("2026-03-18"))
    assert case.status() == S.CLOSED
    assert not any(d.pending for d in case.state.deadlines.values())
    assert case.refused(c.Close(), vn("2026-03-19")) == "close.state"
    [archived] = case.do(c.Archive(archive_ref="HS-2026-001"), vn("2026-03-19"))
    assert isinstance(archived, e.Archived) and archived.archive_ref == "HS-2026-001"
    assert case.status() == S.ARCHIVED


def test_an_accepted_case_cannot_be_closed() -> None:
    assert accepted(K.RECOMMENDATION).refused(c.Close(), vn("2026-02-02")) == "close.state"
    assert Case(K.COMPLAINT).refused(c.Close(), CLASSIFIED) == "close.state"


def test_a_redirected_case_is_archived_without_closing() -> None:
    case = Case(K.RECOMMENDATION)
    case.do(c.Redirect(guidance="Gửi UBND xã."), vn("2026-01-21"))
    case.do(c.Archive(archive_ref="HS-1"), vn("2026-01-22"))
    assert case.state.status == S.ARCHIVED


@pytest.mark.parametrize(
    "command",
    [c.Classify(), c.Assign(body="THANH_TRA_TINH"), c.Withdraw(), c.Archive(archive_ref="HS-2"), c.Resume(),
     MarkDeadline(key="letter.processing", stage="breached"), c.StartFrontSupervision()],
    ids=lambda cmd: cmd.type,
)
def test_an_archived_case_refuses_everything(command: c.PetitionCommand) -> None:
    case = Case(K.RECOMMENDATION)
    case.do(c.Redirect(guidance="Gửi UBND xã."), vn("2026-01-21"))
    case.do(c.Archive(archive_ref="HS-1"), vn("2026-01-22"))
    assert case.refused(command, vn("2026-03-01")) == "case.archived"


def test_the_implementation_follows_only_a_notified_decision() -> None:
    case = decided(K.COMPLAINT, "upheld", vn("2026-02-12"))
    assert case.refused(c.RecordImplementation(summary="x"), vn("2026-02-13")) == "implementation.state"


# --- timers ---


def test_a_resolution_deadline_approaches_then_is_breached_once_each_and_starts_front_supervision() -> None:
    case = accepted(K.COMPLAINT)
    key = "complaint.resolution"
    assert case.state.deadlines[key].deadline.warn_at == end_of_day(date(2026, 2, 18))  # 5 days before 23 Feb
    [approaching] = case.do(MarkDeadline(key=key, stage="approaching"), vn("2026-02-19", 0, 0, 1), SYSTEM)
    assert isinstance(approaching, DeadlineApproaching)
    assert approaching.due_at == end_of_day(date(2026, 2, 23)).isoformat()
    assert approaching.legal_basis == "Luật Khiếu nại 2011, Điều 28"
    assert case.state.deadlines[key].approached
    assert case.do(MarkDeadline(key=key, stage="approaching"), vn("2026-02-19", 1), SYSTEM) == []
    # Still the last day of the period: no breach yet.
    assert case.do(MarkDeadline(key=key, stage="breached"), vn("2026-02-23", 23, 59), SYSTEM) == []
    assert not case.state.overdue
    breached, front = case.do(MarkDeadline(key=key, stage="breached"), vn("2026-02-24", 0, 0, 1), SYSTEM)
    assert isinstance(breached, DeadlineBreached) and breached.key == key
    assert isinstance(front, e.FrontSupervisionStarted)
    assert (front.trigger, front.supervision_id) == ("breach", f"{CASE_ID}-front")
    assert case.state.overdue
    assert case.state.front_supervision == f"{CASE_ID}-front"
    assert case.do(c.MarkDeadline(key=key, stage="breached"), vn("2026-02-25"), SYSTEM) == []
    assert case.do(c.MarkDeadline(key=key, stage="approaching"), vn("2026-02-25"), SYSTEM) == []


def test_front_supervision_starts_once_even_when_several_deadlines_are_breached() -> None:
    case = Case(K.COMPLAINT)
    missed = case.do(MarkDeadline(key="complaint.acceptance", stage="breached"), vn("2026-01-31"), SYSTEM)
    assert types(missed) == ["DeadlineBreached", "FrontSupervisionStarted"]
    case.do(c.Classify(lead_body="UBND_TINH"), vn("2026-02-02"))
    case.do(c.Accept(decision_no="1"), vn("2026-02-02", 10))
    assert case.outcome("complaint.acceptance") == "late"
    assert case.deadline("complaint.resolution") == date(2026, 3, 4)  # 2 Feb + 30 = Wed 4 Mar
    again = case.do(MarkDeadline(key="complaint.resolution", stage="breached"), vn("2026-03-05"), SYSTEM)
    assert types(again) == ["DeadlineBreached"]


def test_a_breach_of_a_sub_deadline_does_not_start_front_supervision() -> None:
    case = coordinated()
    missed = case.do(MarkDeadline(key="coordination.R1.SO_TAI_NGUYEN", stage="breached"), vn("2026-01-30"), SYSTEM)
    assert types(missed) == ["DeadlineBreached"]
    assert case.state.front_supervision is None


def test_a_timer_for_a_met_or_unknown_deadline_produces_nothing() -> None:
    case = accepted(K.COMPLAINT)
    assert case.do(MarkDeadline(key="complaint.acceptance", stage="breached"), vn("2026-02-01"), SYSTEM) == []
    assert case.do(MarkDeadline(key="complaint.acceptance", stage="approaching"), vn("2026-02-01"), SYSTEM) == []
    assert case.do(MarkDeadline(key="no.such_deadline", stage="breached"), vn("2026-02-01"), SYSTEM) == []


def test_a_manual_front_supervision_starts_once_and_only_on_an_open_case() -> None:
    case = accepted(K.COMPLAINT)
    [started] = case.do(c.StartFrontSupervision(), vn("2026-02-02"))
    assert isinstance(started, e.FrontSupervisionStarted) and started.trigger == "manual"
    assert case.refused(c.StartFrontSupervision(), vn("2026-02-03")) == "front.already"
    redirected = Case(K.RECOMMENDATION)
    redirected.do(c.Redirect(guidance="x"), vn("2026-01-21"))
    assert redirected.refused(c.StartFrontSupervision(), vn("2026-01-22")) == "front.state"


# --- views ---


def test_the_case_view_lists_deadlines_by_due_time_with_legal_bases_and_the_overdue_flag() -> None:
    case = accepted(K.DENUNCIATION)
    case.do(co.RequestCoordination(subject="Xác minh", bodies=[
        co.CoordinationTarget(body="UBMTTQ_TINH", side="front", days=2, unit="working"),
    ]), vn("2026-01-22", 10))
    view = case_view(case.state)
    assert [d.key for d in view.deadlines] == [
        "coordination.R1.UBMTTQ_TINH",  # Mon 26 Jan
        "denunciation.acceptance_notice",  # Wed 28 Jan
        "denunciation.initial_processing",  # Thu 29 Jan (met)
        "denunciation.resolution",  # Mon 23 Feb
    ]
    assert [d.due_on for d in view.deadlines] == ["2026-01-26", "2026-01-28", "2026-01-29", "2026-02-23"]
    assert [d.legal_basis for d in view.deadlines] == [
        "sub-deadline set by the lead body",
        "Luật Tố cáo 2018, Điều 29 khoản 3",
        "Luật Tố cáo 2018, Điều 24 khoản 1",
        "Luật Tố cáo 2018, Điều 30",
    ]
    assert [d.outcome for d in view.deadlines] == ["pending", "pending", "on_time", "pending"]
    assert view.overdue is False
    assert view.next_due_at == end_of_day(date(2026, 1, 26))
    assert view.coordination[0].body == "UBMTTQ_TINH" and view.coordination[0].due_on == "2026-01-26"
    assert (view.status, view.kind, view.version) == ("accepted", "denunciation", case.state.version)

    case.do(MarkDeadline(key="coordination.R1.UBMTTQ_TINH", stage="breached"), vn("2026-01-27"), SYSTEM)
    view = case_view(case.state)
    assert view.overdue is True
    assert view.deadlines[0].breached is True
    assert view.coordination[0].overdue is True

    row = case_row(case.state)
    assert row["overdue"] is True
    assert row["status"] == "accepted" and row["kind"] == "denunciation"
    assert row["due_at"] == end_of_day(date(2026, 1, 26))
    assert row["title"] == "Đơn về việc thu hồi đất"
    assert row["lead_body"] == "UBND_TINH"
    assert [d["key"] for d in row["summary"]["deadlines"]] == [d.key for d in view.deadlines]
    assert row["summary"]["deadlines"][3]["legal_basis"] == "Luật Tố cáo 2018, Điều 30"
    assert "subject" not in row["summary"]


def test_the_view_of_a_closed_case_has_no_next_due_date() -> None:
    case = Case(K.RECOMMENDATION)
    case.do(c.Redirect(guidance="x"), vn("2026-01-21"))
    case.do(c.Close(), vn("2026-01-22"))
    view = case_view(case.state)
    assert view.next_due_at is None and view.overdue is False
    assert case_row(case.state)["due_at"] is None


def test_the_view_of_a_denunciation_shows_only_the_sealed_reference_of_the_denouncer() -> None:
    case = Case(K.DENUNCIATION, Petitioner(ref="sealed:7f3a9c"))
    assert case_view(case.state).petitioner_ref == "sealed:7f3a9c"


# --- Unicode ---


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_vietnamese_text_given_in_nfd_comes_out_nfc_in_events() -> None:
    name, category, reason = "Nguyễn Thị Hường", "đất đai – bồi thường", "Đơn thuộc thẩm quyền của Ủy ban"
    assert nfd(name) != name  # the test would prove nothing otherwise
    case = Case(K.COMPLAINT, Petitioner(name=nfd(name), address=nfd("Xã Thanh Hà")), subject=nfd("Đơn khiếu nại"))
    [received] = case.events
    assert received.intake.petitioner.name == name  # type: ignore[attr-defined]
    assert received.intake.subject == "Đơn khiếu nại"  # type: ignore[attr-defined]
    [classified_event] = case.do(c.Classify(subject_category=nfd(category), reason=nfd(reason),
                                            lead_body="UBND_TINH"), CLASSIFIED)
    assert classified_event.subject_category == category  # type: ignore[attr-defined]
    assert classified_event.reason == reason
    [rejected] = case.do(c.Reject(reasons=[nfd("Quá thời hiệu khiếu nại")]), ACCEPTED)
    assert rejected.reasons == ["Quá thời hiệu khiếu nại"]  # type: ignore[attr-defined]
    actor = Actor(id=nfd("nguyễn.văn.bình"), role="body", body="UBND_TINH")
    [closed] = case.do(c.Close(reason=nfd("Kết thúc")), vn("2026-01-22"), actor)
    assert closed.actor == "body:nguyễn.văn.bình@UBND_TINH"
    for ev in case.events:
        for text in _strings(ev.model_dump(mode="json")):
            assert unicodedata.is_normalized("NFC", text), text


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# --- bugs found while writing these tests (see the report; each fails until the decider is fixed) ---


def test_a_split_voter_petition_stops_its_answer_clock() -> None:
    case = Case(K.VOTER_PETITION)
    parts = [c.SplitPart(kind=K.RECOMMENDATION, subject="Đường giao thông", content="a"),
             c.SplitPart(kind=K.COMPLAINT, subject="Thu hồi đất", content="b")]
    case.do(c.Split(parts=parts), vn("2026-01-22"))
    assert not case.state.deadlines["voter_petition.answer"].pending
    assert case.do(MarkDeadline(key="voter_petition.answer", stage="breached"), vn("2026-03-24"), SYSTEM) == []
    assert case.state.front_supervision is None


@pytest.mark.parametrize("kind", [K.RECOMMENDATION, K.VOTER_PETITION])
def test_the_acceptance_notice_of_a_recommendation_or_voter_petition_cites_its_own_law(kind: PetitionKind) -> None:
    case = accepted(kind)
    [sent] = case.do(c.Notify(about="acceptance", recipients=["Người kiến nghị"], doc_no="3/TB"), vn("2026-01-22"))
    assert sent.legal_basis == {K.RECOMMENDATION: "Luật Tiếp công dân 2013", K.VOTER_PETITION: "NQLT 72/2025"}[kind]


def test_a_letter_received_as_a_voter_petition_and_classified_as_a_complaint_runs_on_the_complaint_clock() -> None:
    case = Case(K.VOTER_PETITION)
    case.do(c.Classify(kind=K.COMPLAINT, lead_body="UBND_TINH"), CLASSIFIED)
    assert case.deadline("complaint.acceptance") == date(2026, 1, 30)  # LKN 2011 Art 27, from the receipt
    assert not case.state.deadlines["voter_petition.answer"].pending


def test_coordination_can_be_requested_after_the_decision_is_notified() -> None:
    case = decided(K.COMPLAINT, "upheld", vn("2026-02-12"))
    case.do(c.Notify(about="decision", recipients=["A"], doc_no="45/QĐ"), vn("2026-02-13"))
    request = co.RequestCoordination(subject="Phối hợp tổ chức thi hành", bodies=[
        co.CoordinationTarget(body="SO_TAI_NGUYEN", side="state", days=5)])
    assert types(case.do(request, vn("2026-02-23"))) == ["CoordinationRequested"]
