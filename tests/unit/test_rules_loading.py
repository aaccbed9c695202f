"""Loading the policy files, applying the province's calendar overrides, and the `load_case_rules` activity."""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.rules import (
    DEADLINES_FILE,
    OVERRIDES_FILE,
    CalendarOverrideError,
    CaseRulesRequest,
    RulesActivities,
    RulesFileError,
    build_calendar,
    load_calendar_overrides,
    load_deadline_policy,
)
from domain.deadlines import CaseRules, compute_deadline

# The keys the workflows rely on (docs/legal-reference.md §3.0-3.5, §4; docs/architecture.md, petition case).
REQUIRED_KEYS = {
    "letter.processing",
    "complaint.acceptance",
    "complaint.resolution",
    "complaint.decision_delivery",
    "complaint.second_filing_window",
    "complaint2.acceptance",
    "complaint2.resolution",
    "denunciation.initial_processing",
    "denunciation.forwarding",
    "denunciation.acceptance_notice",
    "denunciation.resolution",
    "recommendation.resolution",
    "pakn.forwarding",
    "voter_petition.answer",
    "voter_petition.local_answer",
    "front.forwarded_notice",
    "front.reminder_before",
    "front.urge_after_breach",
    "front.recommendation_response",
    "front.superior_response",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- policy/deadlines.yaml ---


def test_the_policy_file_has_every_rule_the_workflows_need() -> None:
    policy = load_deadline_policy()
    assert REQUIRED_KEYS <= set(policy.rules)
    assert policy.version


def test_every_rule_key_matches_its_mapping_key() -> None:
    for key, rule in load_deadline_policy().rules.items():
        assert rule.key == key


def test_the_policy_file_is_nfc_and_so_is_every_title() -> None:
    text = DEADLINES_FILE.read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", text)
    for rule in load_deadline_policy().rules.values():
        assert unicodedata.is_normalized("NFC", rule.title_vi), rule.key
        assert unicodedata.is_normalized("NFC", rule.legal_basis), rule.key
        assert rule.title_vi and rule.title_en


def test_every_statutory_rule_has_a_legal_basis_and_every_rule_a_reference() -> None:
    for rule in load_deadline_policy().rules.values():
        assert rule.rule_ref, rule.key
        if rule.statutory:
            assert rule.legal_basis, rule.key


def test_the_values_of_the_legal_reference_are_in_the_file() -> None:
    policy = load_deadline_policy()

    def shape(key: str) -> tuple[int, str, dict[str, int]]:
        rule = policy.rule(key)
        return rule.amount, rule.unit, rule.variants

    assert shape("letter.processing") == (10, "calendar", {})
    assert shape("complaint.acceptance") == (10, "calendar", {})
    assert shape("complaint.resolution") == (30, "calendar", {"complex": 45, "remote": 45, "remote_complex": 60})
    assert shape("complaint.decision_delivery") == (3, "working", {})
    assert shape("complaint.second_filing_window") == (30, "calendar", {"remote": 45})
    assert shape("complaint2.resolution") == (45, "calendar", {"complex": 60, "remote": 60, "remote_complex": 70})
    assert shape("denunciation.initial_processing") == (7, "working", {"extended": 10})
    assert shape("denunciation.forwarding") == (5, "working", {})
    assert shape("denunciation.acceptance_notice") == (5, "working", {})
    assert shape("denunciation.resolution") == (30, "calendar", {})
    assert shape("pakn.forwarding") == (5, "working", {})
    assert shape("voter_petition.answer") == (60, "calendar", {})
    assert policy.rule("complaint.decision_delivery").mark == "partial"
    assert policy.rule("denunciation.initial_processing").mark == "partial"
    assert policy.rule("recommendation.resolution").statutory is False
    assert policy.rule("complaint.resolution").legal_basis == "Luật Khiếu nại 2011, Điều 28"


def test_a_policy_error_names_the_file_the_rule_and_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "deadlines.yaml",
        'version: "t"\nrules:\n  complaint.resolution:\n    title_vi: "Giải quyết"\n    title_en: "Resolve"\n'
        "    amount: thirty\n    unit: calendar\n    rule_ref: X\n    statutory: false\n    mark: verified\n",
    )
    with pytest.raises(RulesFileError) as caught:
        load_deadline_policy(path)
    message = str(caught.value)
    assert str(path) in message
    assert "rules.complaint.resolution.amount" in message
    assert "valid integer" in message


def test_a_statutory_rule_without_legal_basis_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "deadlines.yaml",
        'version: "t"\nrules:\n  a.b:\n    title_vi: "x"\n    title_en: "x"\n    amount: 1\n    unit: working\n'
        "    rule_ref: X\n    statutory: true\n    mark: verified\n",
    )
    with pytest.raises(RulesFileError, match=r"a\.b: a statutory rule needs a legal_basis"):
        load_deadline_policy(path)


def test_an_unknown_field_or_unit_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "deadlines.yaml",
        'version: "t"\nrules:\n  a.b:\n    title_vi: "x"\n    title_en: "x"\n    amount: 1\n    unit: business\n'
        "    rule_ref: X\n    statutory: false\n    mark: verified\n    ammount: 2\n",
    )
    with pytest.raises(RulesFileError) as caught:
        load_deadline_policy(path)
    assert "rules.a.b.unit" in str(caught.value)
    assert "rules.a.b.ammount" in str(caught.value)


def test_a_file_that_is_not_yaml_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="not valid YAML"):
        load_deadline_policy(write(tmp_path, "bad.yaml", "rules: [unclosed\n"))
    with pytest.raises(RulesFileError, match="cannot read"):
        load_deadline_policy(tmp_path / "absent.yaml")


def test_decomposed_vietnamese_is_stored_composed(tmp_path: Path) -> None:
    title = unicodedata.normalize("NFD", "Thời hạn giải quyết")
    path = write(
        tmp_path,
        "deadlines.yaml",
        f'version: "t"\nrules:\n  a.b:\n    title_vi: "{title}"\n    title_en: "x"\n    amount: 1\n'
        "    unit: working\n    rule_ref: X\n    statutory: false\n    mark: unverified\n",
    )
    rule = load_deadline_policy(path).rule("a.b")
    assert rule.title_vi == unicodedata.normalize("NFC", "Thời hạn giải quyết")


# --- policy/calendar_overrides.yaml ---


def test_the_shipped_overrides_are_empty_and_valid() -> None:
    overrides = load_calendar_overrides()
    assert overrides.days_off == overrides.working_days == overrides.remove_days_off == ()
    assert overrides.origin.startswith("policy/calendar_overrides.yaml sha256:")
    assert OVERRIDES_FILE.exists()


def test_an_extra_day_off_moves_a_deadline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "overrides.yaml",
        "days_off:\n  - date: 2026-02-23\n    reason_vi: Nghỉ thêm\n    source: Thông báo thử\n",
    )
    calendar = build_calendar(2026, 2026, load_calendar_overrides(path))
    assert not calendar.is_working_day(date(2026, 2, 23))
    assert "overrides.yaml sha256:" in calendar.source
    rule = load_deadline_policy().rule("complaint.resolution")
    assert compute_deadline(rule, date(2026, 1, 20), calendar).due_on == date(2026, 2, 24)


def test_a_worked_weekend_day_from_the_table_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "overrides.yaml",
        "working_days:\n  - {date: 2026-03-07, reason_vi: Làm bù, source: Thông báo thử}\n",
    )
    calendar = build_calendar(2026, 2026, load_calendar_overrides(path))
    assert calendar.is_working_day(date(2026, 3, 7))
    assert calendar.add_days(date(2026, 3, 6), 1, "working") == date(2026, 3, 7)


def test_remove_days_off_makes_a_holiday_a_working_day(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "overrides.yaml",
        "remove_days_off:\n  - date: 2026-11-24\n    reason_vi: Tỉnh làm việc\n    source: Quyết định thử\n",
    )
    calendar = build_calendar(2026, 2026, load_calendar_overrides(path))
    assert calendar.is_working_day(date(2026, 11, 24))
    assert build_calendar(2026, 2026).is_working_day(date(2026, 11, 24)) is False


def test_removing_a_day_the_package_does_not_list_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "overrides.yaml",
        "remove_days_off:\n  - date: 2026-11-25\n    reason_vi: x\n    source: y\n",
    )
    with pytest.raises(CalendarOverrideError, match=r"remove_days_off\[0\] \(2026-11-25\)"):
        build_calendar(2026, 2026, load_calendar_overrides(path))
    with pytest.raises(CalendarOverrideError):
        RulesActivities(overrides_path=path)  # the worker's start fails, not a case


def test_a_bad_date_names_the_file_and_the_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "overrides.yaml",
        "days_off:\n  - date: 2026-09-01\n    reason_vi: ok\n    source: ok\n"
        "  - date: 2026-02-30\n    reason_vi: Ngày sai\n    source: Thông báo thử\n",
    )
    with pytest.raises(RulesFileError) as caught:
        load_calendar_overrides(path)
    message = str(caught.value)
    assert str(path) in message
    assert "days_off[1].date" in message
    assert "2026-02-30" in message
    assert "Ngày sai" in message


def test_a_weekend_day_off_or_a_weekday_worked_is_refused(tmp_path: Path) -> None:
    weekend_off = write(tmp_path, "a.yaml", "days_off:\n  - {date: 2026-04-26, reason_vi: Giỗ Tổ, source: x}\n")
    with pytest.raises(RulesFileError, match=r"days_off\[0\] \(2026-04-26, Sunday\)"):
        load_calendar_overrides(weekend_off)
    weekday_worked = write(tmp_path, "b.yaml", "working_days:\n  - {date: 2026-04-27, reason_vi: x, source: x}\n")
    with pytest.raises(RulesFileError, match="must be a Saturday or Sunday"):
        load_calendar_overrides(weekday_worked)


def test_a_date_listed_twice_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "overrides.yaml",
        "days_off:\n  - {date: 2026-03-02, reason_vi: x, source: x}\n"
        "remove_days_off:\n  - {date: 2026-03-02, reason_vi: x, source: x}\n",
    )
    with pytest.raises(RulesFileError, match=r"already listed in days_off\[0\]"):
        load_calendar_overrides(path)


def test_an_entry_without_its_source_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "overrides.yaml", "days_off:\n  - {date: 2026-03-02, reason_vi: x}\n")
    with pytest.raises(RulesFileError, match=r"days_off\[0\]\.source: Field required"):
        load_calendar_overrides(path)


def test_an_empty_overrides_file_is_an_empty_table(tmp_path: Path) -> None:
    overrides = load_calendar_overrides(write(tmp_path, "overrides.yaml", "# nothing yet\n"))
    assert overrides.years() == set()


# --- the activity ---


def test_load_case_rules_gives_the_policy_and_three_years_of_calendar() -> None:
    activities = RulesActivities()
    request = CaseRulesRequest(received_on=date(2026, 1, 20))
    rules = asyncio.run(ActivityEnvironment().run(activities.load_case_rules, request))
    assert (rules.calendar.first_year, rules.calendar.last_year) == (2026, 2028)
    assert rules.policy == activities.policy
    again = asyncio.run(ActivityEnvironment().run(activities.load_case_rules, request))
    assert again.calendar is rules.calendar  # built once per year range


def test_case_rules_cross_the_temporal_data_converter_unchanged() -> None:
    rules = asyncio.run(
        ActivityEnvironment().run(RulesActivities().load_case_rules, CaseRulesRequest(received_on=date(2025, 12, 31)))
    )
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([rules])
    [decoded] = converter.from_payloads(payloads, [CaseRules])
    assert decoded == rules
    deadline = compute_deadline(decoded.policy.rule("complaint.resolution"), date(2026, 1, 20), decoded.calendar)
    assert deadline.due_on == date(2026, 2, 23)
