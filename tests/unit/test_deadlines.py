"""Deadlines of the rules of docs/legal-reference.md (Appendix A) computed from `policy/deadlines.yaml` on real dates.

Each expected date was worked out by hand against the 2025-2027 days off of `holidays` 0.109
(see test_calendar.py): the comments show the count.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from activities.rules import build_calendar, load_deadline_policy
from domain.calendar import CalendarRangeError, end_of_day
from domain.deadlines import (
    Deadline,
    DeadlinePolicy,
    DeadlineRule,
    DeadlineState,
    ExtensionNotAllowed,
    UnknownDeadlineRule,
    UnknownVariant,
    can_extend,
    compute_deadline,
    extend_deadline,
    restart_clock,
    restarted,
    stop_clocks,
    stopped,
)

POLICY = load_deadline_policy()
CAL = build_calendar(2025, 2027)


def due(key: str, start: date, **flags: object) -> date:
    return compute_deadline(POLICY.rule(key), start, CAL, **flags).due_on  # type: ignore[arg-type]


# --- khiếu nại, first instance ---


def test_letter_processing_ending_in_tet_2025_moves_to_the_monday_after() -> None:
    # 20 Jan 2025 + 10 = Thu 30 Jan (Tết), Fri 31 Jan off, weekend -> Mon 3 Feb.
    assert due("letter.processing", date(2025, 1, 20)) == date(2025, 2, 3)


def test_complaint_acceptance_ending_on_vietnam_cultural_day_moves_a_day() -> None:
    # Sat 14 Nov 2026 + 10 = Tue 24 Nov 2026 (Ngày Văn hóa Việt Nam, new from 2026) -> Wed 25 Nov.
    assert due("complaint.acceptance", date(2026, 11, 14)) == date(2026, 11, 25)


def test_complaint_resolution_of_30_days_ending_in_tet_2026_moves_to_23_february() -> None:
    deadline = compute_deadline(POLICY.rule("complaint.resolution"), date(2026, 1, 20), CAL)
    # 20 Jan + 30 = Thu 19 Feb (Tết), Fri 20 Feb (Tết), weekend -> Mon 23 Feb.
    assert deadline.due_on == date(2026, 2, 23)
    assert deadline.variant is None
    assert deadline.amount == 30
    assert deadline.unit == "calendar"
    assert deadline.rule_ref == "LKN2011:Art28"
    assert deadline.legal_basis == "Luật Khiếu nại 2011, Điều 28"
    assert deadline.statutory is True
    assert deadline.due_at == end_of_day(date(2026, 2, 23))
    assert deadline.warn_at == end_of_day(date(2026, 2, 18))  # warn_before_days 5
    assert deadline.calendar_source == CAL.source


def test_complaint_resolution_variants() -> None:
    start = date(2026, 1, 20)
    assert due("complaint.resolution", start, complex=True) == date(2026, 3, 6)  # +45 = Fri 6 Mar
    assert due("complaint.resolution", start, remote=True) == date(2026, 3, 6)  # +45
    # +60 = Sat 21 Mar -> Mon 23 Mar.
    assert due("complaint.resolution", start, complex=True, remote=True) == date(2026, 3, 23)
    chosen = compute_deadline(POLICY.rule("complaint.resolution"), start, CAL, complex=True, remote=True)
    assert (chosen.variant, chosen.amount) == ("remote_complex", 60)


def test_complaint_decision_delivery_skips_national_day_2025() -> None:
    # Fri 29 Aug 2025: Mon 1 and Tue 2 Sep off; Wed 3 (1), Thu 4 (2), Fri 5 (3).
    assert due("complaint.decision_delivery", date(2025, 8, 29)) == date(2025, 9, 5)


def test_complaint_filing_limitation_of_90_days() -> None:
    # 1 Oct 2025 + 90 = Tue 30 Dec 2025.
    assert due("complaint.filing_limitation", date(2025, 10, 1)) == date(2025, 12, 30)


def test_complaint_document_request_of_7_days_ending_on_a_sunday() -> None:
    # Sun 8 Jun 2025 -> Mon 9 Jun.
    assert due("complaint.document_request", date(2025, 6, 1)) == date(2025, 6, 9)


def test_second_filing_window_ending_in_tet_2027() -> None:
    # 6 Jan 2027 + 30 = Fri 5 Feb (Tết 2027 runs 4-10 Feb) -> Thu 11 Feb.
    assert due("complaint.second_filing_window", date(2027, 1, 6)) == date(2027, 2, 11)
    # Remote: + 45 = Sat 20 Feb -> Mon 22 Feb.
    assert due("complaint.second_filing_window", date(2027, 1, 6), remote=True) == date(2027, 2, 22)


def test_a_remote_complex_case_gets_the_longest_variant_the_rule_has() -> None:
    deadline = compute_deadline(
        POLICY.rule("complaint.second_filing_window"), date(2027, 1, 6), CAL, complex=True, remote=True
    )
    assert (deadline.variant, deadline.amount) == ("remote", 45)
    complex_only = compute_deadline(POLICY.rule("complaint.second_filing_window"), date(2027, 1, 6), CAL, complex=True)
    assert (complex_only.variant, complex_only.amount) == (None, 30)


# --- khiếu nại, second instance ---


def test_second_instance_acceptance_ending_on_30_april_2025_skips_the_long_weekend() -> None:
    # Sun 20 Apr + 10 = Wed 30 Apr; 1 May, 2 May (substituted) and the weekend off -> Mon 5 May.
    assert due("complaint2.acceptance", date(2025, 4, 20)) == date(2025, 5, 5)


def test_second_instance_resolution_and_variants() -> None:
    start = date(2026, 3, 16)
    # +45 = Thu 30 Apr (holiday), Fri 1 May (holiday), weekend -> Mon 4 May.
    assert due("complaint2.resolution", start) == date(2026, 5, 4)
    assert due("complaint2.resolution", start, complex=True) == date(2026, 5, 15)  # +60, Fri
    assert due("complaint2.resolution", start, remote=True) == date(2026, 5, 15)  # +60
    assert due("complaint2.resolution", start, complex=True, remote=True) == date(2026, 5, 25)  # +70, Mon


# --- tố cáo ---


def test_denunciation_initial_processing_in_working_days_around_30_april_2026() -> None:
    # Fri 24 Apr 2026: Mon 27 off (Hùng Vương observed); Tue 28 (1), Wed 29 (2); 30 Apr, 1 May off;
    # Mon 4 (3) .. Fri 8 May (7).
    assert due("denunciation.initial_processing", date(2026, 4, 24)) == date(2026, 5, 8)
    extended = compute_deadline(
        POLICY.rule("denunciation.initial_processing"), date(2026, 4, 24), CAL, variant="extended"
    )
    assert (extended.due_on, extended.variant, extended.unit) == (date(2026, 5, 13), "extended", "working")


def test_denunciation_forwarding_across_tet_2026() -> None:
    # Fri 13 Feb 2026, then 14-22 Feb off; Mon 23 (1) .. Fri 27 (5).
    assert due("denunciation.forwarding", date(2026, 2, 13)) == date(2026, 2, 27)


def test_denunciation_acceptance_notice_counts_the_worked_saturday() -> None:
    # Thu 20 Aug 2026: Fri 21 (1), Sat 22 worked (2), Mon 24 (3), Tue 25 (4), Wed 26 (5).
    assert due("denunciation.acceptance_notice", date(2026, 8, 20)) == date(2026, 8, 26)


def test_denunciation_resolution_ending_on_the_substituted_day_off() -> None:
    # 1 Aug 2026 + 30 = Mon 31 Aug (day off for Sat 22 Aug), 1-2 Sep off -> Thu 3 Sep.
    assert due("denunciation.resolution", date(2026, 8, 1)) == date(2026, 9, 3)


def test_denunciation_resolution_may_be_extended_twice_by_30_days_counted_from_acceptance() -> None:
    rule = POLICY.rule("denunciation.resolution")
    assert (rule.max_extensions, rule.extension_amount) == (2, 30)
    first = compute_deadline(rule, date(2026, 8, 1), CAL)
    assert first.due_on == date(2026, 9, 3)  # Mon 31 Aug, 1-2 Sep off -> Thu 3 Sep
    assert can_extend(first, rule, "especially_complex")

    once = extend_deadline(first, rule, CAL, complexity="especially_complex")
    # The period is lengthened from its start (BLDS 2015 Art 148: only the final end moves off a day off):
    # Sat 1 Aug + 60 = Wed 30 Sep, a working day. Counting from the moved end (Thu 3 Sep) would give Mon 5 Oct.
    assert once.due_on == date(2026, 9, 30)
    assert once.due_at == end_of_day(date(2026, 9, 30))
    assert once.warn_at == end_of_day(date(2026, 9, 25))  # 5 days before
    assert (once.extensions, once.extended_by) == (1, 30)
    assert once.started_on == first.started_on
    assert once.amount == 30

    twice = extend_deadline(once, rule, CAL, complexity="especially_complex")
    # Sat 1 Aug + 90 = Fri 30 Oct.
    assert twice.due_on == date(2026, 10, 30)
    assert (twice.extensions, twice.extended_by) == (2, 60)
    assert not can_extend(twice, rule, "especially_complex")
    with pytest.raises(ExtensionNotAllowed, match="at most 2"):
        extend_deadline(twice, rule, CAL, complexity="especially_complex")


def test_an_extension_of_a_period_that_ended_on_a_holiday_is_not_lengthened_by_the_move() -> None:
    rule = POLICY.rule("denunciation.resolution")
    # Accepted Wed 21 Jan 2026: + 30 = Fri 20 Feb, in Tết (16-20 Feb off, then the weekend) -> Mon 23 Feb.
    first = compute_deadline(rule, date(2026, 1, 21), CAL)
    assert first.due_on == date(2026, 2, 23)
    # + 60 from Wed 21 Jan = Sun 22 Mar -> Mon 23 Mar (not Mon 23 Feb + 30 = Wed 25 Mar).
    assert extend_deadline(first, rule, CAL, complexity="complex").due_on == date(2026, 3, 23)
    # The count of cases recorded before the rule (from the moved due date) is kept for them.
    assert extend_deadline(first, rule, CAL, from_start=False).due_on == date(2026, 3, 25)


def test_an_ordinary_denunciation_has_no_extension_a_complex_one_one_an_especially_complex_one_two() -> None:
    rule = POLICY.rule("denunciation.resolution")
    assert rule.extension_limits == {"ordinary": 0, "complex": 1, "especially_complex": 2}
    first = compute_deadline(rule, date(2026, 8, 1), CAL)
    assert not can_extend(first, rule, "ordinary")
    with pytest.raises(ExtensionNotAllowed, match="at most 0"):
        extend_deadline(first, rule, CAL, complexity="ordinary")
    once = extend_deadline(first, rule, CAL, complexity="complex")
    assert not can_extend(once, rule, "complex")
    with pytest.raises(ExtensionNotAllowed, match="at most 1"):
        extend_deadline(once, rule, CAL, complexity="complex")
    assert can_extend(once, rule, "especially_complex")
    # A rule recorded before the limits existed allows its maximum to any case.
    old = rule.model_copy(update={"extension_limits": {}})
    assert old.extensions_allowed("ordinary") == 2


def test_extension_limits_beyond_the_maximum_are_refused() -> None:
    data = POLICY.rule("denunciation.resolution").model_dump()
    data["extension_limits"] = {"complex": 3}
    with pytest.raises(ValueError, match=r"extension_limits\.complex"):
        DeadlineRule.model_validate(data)


# --- suspension (Luật Tố cáo 2018, Điều 34 khoản 2) ---


def test_the_policy_says_for_each_kind_whether_suspension_time_counts() -> None:
    denunciation = POLICY.suspension_counts("denunciation")
    assert denunciation is not None and denunciation.counts is False
    assert denunciation.legal_basis == "Luật Tố cáo 2018, Điều 34 khoản 2" and denunciation.statutory
    for kind in ("complaint", "recommendation", "voter_petition"):
        rule = POLICY.suspension_counts(kind)
        assert rule is not None and rule.counts is True and not rule.statutory and rule.legal_basis
    assert POLICY.model_copy(update={"suspension": {}}).suspension_counts("denunciation") is None


def test_a_calendar_period_suspended_across_tet_resumes_for_what_remained() -> None:
    rule = POLICY.rule("denunciation.resolution")
    # Accepted Wed 21 Jan 2026, due Mon 23 Feb (Fri 20 Feb is in Tết).
    state = DeadlineState(deadline=compute_deadline(rule, date(2026, 1, 21), CAL))
    [stopped_key] = stop_clocks({"r": state}, end_of_day(date(2026, 2, 10)))
    paused = stopped({"r": state}, [stopped_key], date(2026, 2, 10))["r"]
    assert paused.stopped_on == date(2026, 2, 10) and paused.pending and not paused.running
    # Suspended Tue 10 Feb: 22 Jan..10 Feb counted (20 days), 10 remain. Resumed Wed 25 Feb: 26 Feb + 9 =
    # Sat 7 Mar -> Mon 9 Mar. The same as 21 Jan + 30 + 15 days not counted (11..25 Feb).
    resumed = restart_clock(paused, date(2026, 2, 25), CAL)
    assert resumed.due_on == date(2026, 3, 9)
    assert resumed.suspended_days == 15
    assert resumed.warn_at == end_of_day(date(2026, 3, 4))  # 5 days before, as the rule warns
    assert restarted({"r": paused}, [resumed.model_copy(update={"key": "r"})])["r"].running


def test_a_working_day_period_suspended_across_tet_loses_only_the_working_days_of_the_suspension() -> None:
    rule = POLICY.rule("denunciation.initial_processing")
    # Received Tue 10 Feb 2026: 7 working days = 11, 12, 13 Feb, then (Tết) 23, 24, 25, 26 Feb.
    deadline = compute_deadline(rule, date(2026, 2, 10), CAL)
    assert deadline.due_on == date(2026, 2, 26)
    # Suspended Thu 12 Feb (11 and 12 Feb counted, 5 remain), resumed Wed 25 Feb: 26, 27 Feb, 2, 3, 4 Mar.
    paused = DeadlineState(deadline=deadline, stopped_on=date(2026, 2, 12))
    resumed = restart_clock(paused, date(2026, 2, 25), CAL)
    assert resumed.due_on == date(2026, 3, 4)
    assert resumed.suspended_days == 4  # 13, 23, 24, 25 Feb
    # Resumed the day it was suspended: nothing is lost.
    assert restart_clock(paused, date(2026, 2, 12), CAL).due_on == date(2026, 2, 26)


def test_a_period_that_already_ended_is_not_stopped_by_a_suspension() -> None:
    state = DeadlineState(deadline=compute_deadline(POLICY.rule("denunciation.acceptance_notice"),
                                                    date(2026, 1, 21), CAL))  # due Wed 28 Jan
    assert stop_clocks({"n": state}, end_of_day(date(2026, 1, 28))) == ["n"]
    assert stop_clocks({"n": state}, datetime(2026, 1, 28, 17, 0, 1, tzinfo=UTC)) == []


def test_a_rule_without_extensions_cannot_extend() -> None:
    rule = POLICY.rule("complaint.resolution")
    deadline = compute_deadline(rule, date(2026, 1, 20), CAL)
    assert not can_extend(deadline, rule)
    with pytest.raises(ExtensionNotAllowed, match="allows no extension"):
        extend_deadline(deadline, rule, CAL)
    with pytest.raises(ExtensionNotAllowed, match="cannot extend"):
        extend_deadline(deadline, POLICY.rule("denunciation.resolution"), CAL)


# --- kiến nghị, PAKN, cử tri ---


def test_recommendation_sla_is_not_statutory() -> None:
    deadline = compute_deadline(POLICY.rule("recommendation.resolution"), date(2025, 12, 2), CAL)
    # + 30 = Thu 1 Jan 2026 (Tết Dương lịch) -> Fri 2 Jan.
    assert deadline.due_on == date(2026, 1, 2)
    assert deadline.statutory is False


def test_pakn_forwarding_across_the_2025_swap() -> None:
    # Thu 24 Apr 2025: Fri 25 (1), Sat 26 worked (2), Mon 28 (3), Tue 29 (4), 30 Apr - 4 May off, Mon 5 (5).
    assert due("pakn.forwarding", date(2025, 4, 24)) == date(2025, 5, 5)


def test_pakn_resolution_is_a_province_sla() -> None:
    assert POLICY.rule("pakn.resolution").statutory is False
    assert due("pakn.resolution", date(2025, 3, 3)) == date(2025, 4, 2)


def test_voter_petition_answer_of_60_days_ending_on_national_day_2025() -> None:
    # 3 Jul 2025 + 60 = Mon 1 Sep (off), Tue 2 Sep (off) -> Wed 3 Sep.
    assert due("voter_petition.answer", date(2025, 7, 3)) == date(2025, 9, 3)


def test_voter_petition_local_answer_and_compilation() -> None:
    assert POLICY.rule("voter_petition.local_answer").statutory is False
    assert due("voter_petition.local_answer", date(2025, 7, 3)) == date(2025, 9, 3)
    # Session closed Fri 13 Jun 2025 (example) + 15 = Sat 28 Jun -> Mon 30 Jun.
    assert due("voter_petition.compilation_after_session", date(2025, 6, 13)) == date(2025, 6, 30)


# --- Front supervision ---


def test_front_rules_are_policy_values() -> None:
    for key in (
        "front.forwarded_notice",
        "front.reminder_before",
        "front.urge_after_breach",
        "front.recommendation_response",
        "front.superior_response",
    ):
        assert POLICY.rule(key).statutory is False, key
    assert POLICY.rule("front.recommendation_response").amount == 15
    assert POLICY.rule("front.superior_response").amount == 7
    assert POLICY.rule("front.forwarded_notice").amount == 7


def test_front_deadlines_on_real_dates() -> None:
    # Handling decision Fri 23 Jan 2026 + 7 = Fri 30 Jan.
    assert due("front.forwarded_notice", date(2026, 1, 23)) == date(2026, 1, 30)
    # Recommendation sent Mon 2 Feb 2026 + 15 = Tue 17 Feb (Tết) -> Mon 23 Feb.
    assert due("front.recommendation_response", date(2026, 2, 2)) == date(2026, 2, 23)
    # Sent to the superior Thu 23 Apr 2026 + 7 = Thu 30 Apr (holiday), Fri 1 May, weekend -> Mon 4 May.
    assert due("front.superior_response", date(2026, 4, 23)) == date(2026, 5, 4)
    # Breach on Fri 28 Aug 2026: Mon 31 Aug, 1-2 Sep off; Thu 3 (1) .. Wed 9 Sep (5).
    assert due("front.urge_after_breach", date(2026, 8, 28)) == date(2026, 9, 9)


# --- start instants, warnings, errors ---


def test_a_start_instant_counts_from_its_date_in_vietnam() -> None:
    rule = POLICY.rule("complaint.resolution")
    # 17:30 UTC on 19 Jan is 00:30 on 20 Jan in Vietnam.
    deadline = compute_deadline(rule, datetime(2026, 1, 19, 17, 30, tzinfo=UTC), CAL)
    assert deadline.started_on == date(2026, 1, 20)
    assert deadline.due_on == date(2026, 2, 23)


def test_the_warning_is_never_before_the_start() -> None:
    rule = DeadlineRule(
        key="test.short",
        title_vi="Thử",
        title_en="Test",
        amount=1,
        unit="working",
        rule_ref="T",
        statutory=False,
        mark="unverified",
        warn_before_days=10,
    )
    deadline = compute_deadline(rule, date(2026, 3, 2), CAL)
    assert deadline.due_on == date(2026, 3, 3)
    assert deadline.warn_at == end_of_day(date(2026, 3, 2))


def test_an_unknown_variant_or_rule_is_a_clear_error() -> None:
    with pytest.raises(UnknownVariant, match="extended"):
        compute_deadline(POLICY.rule("complaint.resolution"), date(2026, 1, 20), CAL, variant="extended")
    with pytest.raises(UnknownDeadlineRule, match=r"no deadline rule 'complaint\.nope'"):
        POLICY.rule("complaint.nope")


def test_a_deadline_beyond_the_calendar_is_refused() -> None:
    with pytest.raises(CalendarRangeError):
        compute_deadline(POLICY.rule("voter_petition.answer"), date(2027, 12, 1), CAL)


def test_a_deadline_survives_a_json_round_trip() -> None:
    deadline = compute_deadline(POLICY.rule("complaint.resolution"), date(2026, 1, 20), CAL, complex=True)
    extended = extend_deadline(
        compute_deadline(POLICY.rule("denunciation.resolution"), date(2026, 8, 1), CAL),
        POLICY.rule("denunciation.resolution"),
        CAL,
    )
    for value in (deadline, extended):
        assert Deadline.model_validate_json(value.model_dump_json()) == value
    assert '"due_at":"2026-03-06T23:59:59.999999+07:00"' in deadline.model_dump_json()


def test_a_policy_survives_a_json_round_trip() -> None:
    assert DeadlinePolicy.model_validate_json(POLICY.model_dump_json()) == POLICY
