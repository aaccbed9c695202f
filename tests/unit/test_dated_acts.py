"""Dated acts (docs/legal-reference.md §1.4): a written act carries its own date (`dated`), the periods it starts
are counted from it on the working-day calendar, its own period is judged met or missed by it, and the event keeps
both the act's date and the moment it was recorded.

The calendar is the real one (`holidays`) with a province day off read from an overrides file written in the
format of `policy/calendar_overrides.yaml`: Tuesday 10 March 2026. Acts are signed on Friday 6 March and
recorded on Monday 9 March; the counts are in the comments.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Actor, DomainError, Event
from domain.deadlines import CaseRules
from domain.petitions import commands as c
from domain.petitions import events as e
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionKind, PetitionState

K = PetitionKind
OFFICER = Actor(id="tran.thi.lan", role="body", body="THANH_TRA_TINH")
OVERRIDES = """\
days_off:
  - date: 2026-03-10
    reason_vi: "Nghỉ theo quyết định của UBND tỉnh"
    source: "Quyết định số 01/QĐ-UBND (ví dụ của bộ kiểm thử)"
working_days: []
remove_days_off: []
"""


def vn(day: str, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=VN_TZ)


RECEIVED = vn("2026-03-02", 9)  # a Monday
FRIDAY = date(2026, 3, 6)
MONDAY = vn("2026-03-09", 8, 30)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> CaseRules:
    path: Path = tmp_path_factory.mktemp("calendar") / "calendar_overrides.yaml"
    path.write_text(OVERRIDES, encoding="utf-8")
    return CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2025, 2027, load_calendar_overrides(path)))


class Case:
    def __init__(self, rules: CaseRules, kind: PetitionKind) -> None:
        intake = PetitionIntake(source="mot-cua", external_ref=f"{kind.value}-1", kind=kind, received_at=RECEIVED,
                                petitioner=Petitioner(name="Lê Thị Hoa", address="Thôn Bắc, xã An Phú"),
                                subject="Đơn về việc cấp giấy chứng nhận", content="Nội dung đơn.")
        self.events: list[Event] = decide(None, c.Receive(case_id="pet-dated", intake=intake, rules=rules),
                                          SYSTEM, RECEIVED)
        self.state: PetitionState = fold(self.events)  # type: ignore[assignment]

    def do(self, command: c.PetitionCommand, now: datetime) -> list[Event]:
        events = decide(self.state, command, OFFICER, now)
        self.state = fold(events, self.state)  # type: ignore[assignment]
        self.events += events
        return events

    def refused(self, command: c.PetitionCommand, now: datetime) -> str:
        with pytest.raises(DomainError) as refusal:
            decide(self.state, command, OFFICER, now)
        return refusal.value.rule

    def due(self, key: str) -> date:
        return self.state.deadlines[key].deadline.due_on


def classified(rules: CaseRules, kind: PetitionKind) -> Case:
    case = Case(rules, kind)
    case.do(c.Classify(lead_body="UBND_TINH"), vn("2026-03-02", 15))
    return case


def test_an_acceptance_signed_on_friday_and_recorded_on_monday_runs_from_friday(rules: CaseRules) -> None:
    case = classified(rules, K.DENUNCIATION)
    [accepted] = case.do(c.Accept(decision_no="5/QĐ-TLTC", dated=FRIDAY), MONDAY)
    assert isinstance(accepted, e.AcceptanceDecided)
    assert accepted.dated == FRIDAY and accepted.occurred_at == MONDAY  # the act's date and when it was recorded
    # 5 working days from Friday 6 March (not counted): Mon 9, (Tue 10 off), Wed 11, Thu 12, Fri 13, Mon 16.
    assert case.due("denunciation.acceptance_notice") == date(2026, 3, 16)
    # 30 days from Friday 6 March: Sunday 5 April, moved to Monday 6 April.
    assert case.due("denunciation.resolution") == date(2026, 4, 6)
    assert case.state.deadlines["denunciation.resolution"].deadline.started_on == FRIDAY


def test_recorded_the_same_way_without_a_date_it_runs_from_the_day_of_recording(rules: CaseRules) -> None:
    case = classified(rules, K.DENUNCIATION)
    [accepted] = case.do(c.Accept(decision_no="5/QĐ-TLTC"), MONDAY)
    assert isinstance(accepted, e.AcceptanceDecided) and accepted.dated == date(2026, 3, 9)
    # From Monday 9 March: (Tue 10 off), Wed 11, Thu 12, Fri 13, Mon 16, Tue 17.
    assert case.due("denunciation.acceptance_notice") == date(2026, 3, 17)
    assert case.due("denunciation.resolution") == date(2026, 4, 8)


def test_the_notice_of_a_decision_runs_from_the_decision_and_is_judged_by_its_own_date(rules: CaseRules) -> None:
    case = classified(rules, K.COMPLAINT)
    case.do(c.Accept(decision_no="5/QĐ-UBND", dated=date(2026, 3, 3)), vn("2026-03-03", 10))
    case.do(c.RecordVerification(findings="Đúng một phần.", demand_matches_findings=True), vn("2026-03-04"))
    [decision] = case.do(c.Decide(outcome="partly_upheld", decision_no="9/QĐ-UBND", summary="Chấp nhận một phần.",
                                  dated=FRIDAY), MONDAY)
    assert isinstance(decision, e.DecisionIssued) and decision.dated == FRIDAY
    # 3 working days from Friday 6 March: Mon 9, (Tue 10 off), Wed 11, Thu 12.
    assert case.due("complaint.decision_delivery") == date(2026, 3, 12)
    assert case.state.decided_on == FRIDAY
    # A notice signed on its last day and recorded the next morning was sent in time.
    case.do(c.Notify(about="decision", recipients=["Lê Thị Hoa"], doc_no="10/TB", dated=date(2026, 3, 12)),
            vn("2026-03-13", 8))
    kept = case.state.deadlines["complaint.decision_delivery"]
    assert kept.outcome == "on_time" and kept.met_on == date(2026, 3, 12) and kept.met_at == vn("2026-03-13", 8)


def test_a_decision_signed_on_the_due_day_and_recorded_after_it_is_on_time(rules: CaseRules) -> None:
    case = classified(rules, K.COMPLAINT)
    case.do(c.Accept(decision_no="5/QĐ-UBND"), vn("2026-03-03", 10))
    due = case.due("complaint.resolution")
    case.do(c.RecordVerification(findings="Đúng.", demand_matches_findings=True), vn("2026-03-04"))
    late_recording = datetime.combine(due + timedelta(days=1), time(9), tzinfo=VN_TZ)
    on_time = case.do(c.Decide(outcome="upheld", decision_no="9/QĐ", summary="Đúng.", dated=due), late_recording)
    assert on_time[0].resolution_outcome == "on_time"  # type: ignore[attr-defined]
    assert case.state.deadlines["complaint.resolution"].outcome == "on_time"


def test_undated_the_same_late_recording_is_late(rules: CaseRules) -> None:
    case = classified(rules, K.COMPLAINT)
    case.do(c.Accept(decision_no="5/QĐ-UBND"), vn("2026-03-03", 10))
    due = case.due("complaint.resolution")
    case.do(c.RecordVerification(findings="Đúng.", demand_matches_findings=True), vn("2026-03-04"))
    next_day = datetime.combine(due + timedelta(days=1), time(9), tzinfo=VN_TZ)
    [late] = case.do(c.Decide(outcome="upheld", decision_no="9/QĐ", summary="Đúng."), next_day)
    assert isinstance(late, e.DecisionIssued) and late.resolution_outcome == "late"


def test_impossible_dates_are_refused_with_their_rule(rules: CaseRules) -> None:
    case = classified(rules, K.DENUNCIATION)
    assert case.refused(c.Accept(decision_no="5", dated=date(2026, 3, 10)), MONDAY) == "dated.future"
    assert case.refused(c.Accept(decision_no="5", dated=date(2026, 3, 1)), MONDAY) == "dated.before_receipt"
    case.do(c.Accept(decision_no="5", dated=FRIDAY), MONDAY)
    decide_before = c.Decide(outcome="no_violation", decision_no="7", summary="Không vi phạm.",
                             dated=date(2026, 3, 5))
    assert case.refused(decide_before, vn("2026-03-20")) == "dated.before_previous_step"
    case.do(c.Suspend(reason="Chờ kết quả giám định", dated=date(2026, 3, 12)), vn("2026-03-13"))
    assert case.refused(c.Resume(dated=date(2026, 3, 11)), vn("2026-03-20")) == "dated.before_previous_step"
    assert case.refused(c.Notify(about="suspension", recipients=["Lê Thị Hoa"], doc_no="1/TB",
                                 dated=date(2026, 3, 11)), vn("2026-03-20")) == "dated.before_previous_step"


def test_a_suspension_stops_the_clocks_on_its_date_and_a_resumption_restarts_them_on_its_own(
        rules: CaseRules) -> None:
    case = classified(rules, K.DENUNCIATION)
    case.do(c.Accept(decision_no="5", dated=FRIDAY), MONDAY)
    [suspended] = case.do(c.Suspend(reason="Chờ kết quả giám định", dated=date(2026, 3, 12)), vn("2026-03-16"))
    assert isinstance(suspended, e.Suspended) and suspended.dated == date(2026, 3, 12)
    assert case.state.deadlines["denunciation.resolution"].stopped_on == date(2026, 3, 12)
    # The notice of the suspension decision: 5 working days from Thursday 12 March: 13, 16, 17, 18, 19.
    assert case.due("denunciation.suspension_notice") == date(2026, 3, 19)
    case.do(c.Resume(dated=date(2026, 3, 19)), vn("2026-03-23"))
    # 7 calendar days not counted (13..19 March): the 30 days end on 13 April instead of 6 April.
    assert case.due("denunciation.resolution") == date(2026, 4, 13)
    assert case.state.acts["resumed"] == date(2026, 3, 19)


def test_an_extension_is_dated_by_either_field_and_both_must_agree(rules: CaseRules) -> None:
    case = Case(rules, K.DENUNCIATION)
    case.do(c.Classify(lead_body="UBND_TINH", complex=True), vn("2026-03-02", 15))
    case.do(c.Accept(decision_no="5", dated=FRIDAY), MONDAY)
    both = c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp", dated=date(2026, 3, 20),
                    decision_date=date(2026, 3, 19))
    assert case.refused(both, vn("2026-03-23")) == "extend.decision_date_mismatch"
    before = c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp", dated=date(2026, 3, 5))
    assert case.refused(before, vn("2026-03-23")) == "dated.before_previous_step"
    [granted] = case.do(c.Extend(decision_no="1/QĐ-GH", reason="Phức tạp", dated=date(2026, 3, 20)),
                        vn("2026-03-23"))
    assert isinstance(granted, e.ExtensionGranted)
    assert granted.dated == granted.decision_date == date(2026, 3, 20)


def test_a_rejection_forwarding_and_redirection_meet_the_first_period_by_their_date(rules: CaseRules) -> None:
    for command in (c.Reject(reasons=["Không thuộc thẩm quyền"], dated=date(2026, 3, 3)),
                    c.Forward(to_body="CONG_AN_TINH", notice_no="3/PC", dated=date(2026, 3, 3)),
                    c.Redirect(guidance="Gửi đơn đến UBND huyện", dated=date(2026, 3, 3))):
        case = classified(rules, K.RECOMMENDATION)
        [event] = case.do(command, vn("2026-03-20"))
        assert isinstance(event, e.DatedEvent) and event.dated == date(2026, 3, 3)
        assert case.state.deadlines["letter.processing"].outcome == "on_time"


def test_stored_events_without_a_date_read_as_acts_of_their_recording_day(rules: CaseRules) -> None:
    case = classified(rules, K.DENUNCIATION)
    [accepted] = decide(case.state, c.Accept(decision_no="5"), OFFICER, MONDAY)
    older = accepted.model_copy(update={"dated": None})  # as recorded before acts carried a date
    state = fold([older], case.state)
    assert state is not None and state.acts["accepted"] == date(2026, 3, 9)


def test_the_documented_schema_of_an_import_line_is_the_model_s() -> None:
    import json

    from domain.petitions.imports import ImportedCase

    path = Path(__file__).resolve().parents[2] / "docs" / "import-case.schema.json"
    assert json.loads(path.read_text(encoding="utf-8")) == ImportedCase.model_json_schema()
