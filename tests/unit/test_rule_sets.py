"""Rule sets that change on a date: the policy file's base set and its dated amendments, the set a case is
counted under (the one in force on its day of receipt, recorded with its digest), and the draft of Luật
136/2025/QH15 that applies to no case until its text is read."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest

from activities.rules import (
    DEADLINES_FILE,
    CaseRulesRequest,
    RulesActivities,
    RulesFileError,
    build_calendar,
    load_calendar_overrides,
    load_deadline_policy,
    load_rule_sets,
)
from domain.calendar import VN_TZ
from domain.common import SYSTEM
from domain.deadlines import CaseRules, set_digest
from domain.petitions import commands as c
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionKind
from domain.petitions.views import case_view

SHIPPED = DEADLINES_FILE.read_text(encoding="utf-8")
CALENDAR = build_calendar(2026, 2028, load_calendar_overrides())

#: An amendment in force from Sat 1 Aug 2026 (complaint acceptance in 15 working days, a new policy rule), and a
#: draft after it that no case may follow.
AMENDED = SHIPPED + '''
  - version: "6"
    valid_from: 2026-08-01
    title: "Bộ quy tắc thử nghiệm"
    note: "Một bộ quy tắc có hiệu lực sau bản dự thảo."
    rules:
      complaint.acceptance: {amount: 15, unit: working, mark: unverified, note: "Giá trị thử nghiệm."}
      test.new_rule:
        title_vi: "Quy tắc mới"
        title_en: "A new rule"
        amount: 3
        unit: working
        rule_ref: "POLICY:test.new_rule"
        statutory: false
        mark: unverified
    suspension:
      complaint: {counts: false}
  - version: "7-draft"
    valid_from: 2027-01-01
    status: draft
    rules:
      complaint.acceptance: {amount: 1}
'''


def write(tmp_path: Path, text: str, name: str = "deadlines.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_keeps_the_2011_2018_values_in_force_and_the_2025_amendment_as_a_draft() -> None:
    sets = load_rule_sets()
    base, draft = sets.sets
    assert (base.version, base.valid_from, base.status) == ("4", None, "in_force")
    assert (draft.valid_from, draft.status) == (date(2026, 7, 1), "draft") and "136/2025/QH15" in draft.title
    for day in (date(2025, 1, 1), date(2026, 6, 30), date(2026, 7, 1), date(2028, 12, 31)):
        assert sets.in_force(day) is base
    assert sets.latest is base and load_deadline_policy() == base
    # The draft names the periods the amendment may change, at their 2011/2018 values, marked unverified.
    for key in ("complaint.acceptance", "complaint.resolution", "denunciation.resolution"):
        assert draft.rules[key].amount == base.rules[key].amount and draft.rules[key].mark == "unverified"
    assert draft.rules["complaint.acceptance"].legal_basis == base.rules["complaint.acceptance"].legal_basis


def test_each_set_is_named_by_the_digest_of_its_content() -> None:
    first, again = load_rule_sets(), load_rule_sets()
    digests = [s.digest for s in first.sets]
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests) and len(set(digests)) == len(digests)
    assert digests == [s.digest for s in again.sets]
    assert all(s.digest == set_digest(s) for s in first.sets)
    changed = first.sets[0].model_copy(update={"version": "4b"})
    assert set_digest(changed) != first.sets[0].digest


def test_a_case_is_counted_under_the_set_in_force_on_its_day_of_receipt(tmp_path: Path) -> None:
    sets = load_rule_sets(write(tmp_path, AMENDED))
    base, draft, amended, later = sets.sets
    assert sets.in_force(date(2026, 7, 31)) is base  # the 2025 draft applies to no day
    assert sets.in_force(date(2026, 8, 1)) is amended
    assert sets.in_force(date(2027, 6, 1)) is amended  # nor does the later draft
    assert sets.latest is amended and later.status == "draft"
    acceptance = amended.rules["complaint.acceptance"]
    assert (acceptance.amount, acceptance.unit, acceptance.mark) == (15, "working", "unverified")
    assert acceptance.title_vi == base.rules["complaint.acceptance"].title_vi  # the fields not given are kept
    # Built on the set in force before it, not on the draft between them (whose marks were lowered).
    assert amended.rules["complaint.resolution"] == base.rules["complaint.resolution"]
    assert draft.rules["complaint.resolution"] != base.rules["complaint.resolution"]
    assert "test.new_rule" in amended.rules and "test.new_rule" not in base.rules
    assert amended.suspension["complaint"].counts is False
    assert amended.suspension["complaint"].legal_basis == base.suspension["complaint"].legal_basis
    assert amended.suspension["denunciation"] == base.suspension["denunciation"]


async def test_the_activity_gives_a_case_the_set_of_its_day_of_receipt(tmp_path: Path) -> None:
    activities = RulesActivities(deadlines_path=write(tmp_path, AMENDED))
    before = await activities.load_case_rules(CaseRulesRequest(received_on=date(2026, 7, 31)))
    after = await activities.load_case_rules(CaseRulesRequest(received_on=date(2026, 8, 3)))
    assert (before.policy.version, after.policy.version) == ("4", "6")
    assert after.policy.digest == activities.rule_sets.sets[2].digest


def received(on: str, rules: CaseRules) -> object:
    received_at = datetime.combine(date.fromisoformat(on), datetime.min.time(), tzinfo=VN_TZ).replace(hour=9)
    intake = PetitionIntake(source="mot-cua-tinh", external_ref=f"HD-{on}", kind=PetitionKind.COMPLAINT,
                            received_at=received_at, petitioner=Petitioner(name="Lê Văn Tâm", address="Xã Nam Hồng"),
                            subject="Khiếu nại", content="Nội dung.")
    state = fold(decide(None, c.Receive(case_id=f"pet-{on}", intake=intake, rules=rules), SYSTEM, received_at))
    assert state is not None
    return state


def test_two_complaints_a_day_apart_follow_two_sets(tmp_path: Path) -> None:
    sets = load_rule_sets(write(tmp_path, AMENDED))
    friday = received("2026-07-31", CaseRules(policy=sets.in_force(date(2026, 7, 31)), calendar=CALENDAR))
    monday = received("2026-08-03", CaseRules(policy=sets.in_force(date(2026, 8, 3)), calendar=CALENDAR))
    # Fri 31 Jul + 10 days = Mon 10 Aug; Mon 3 Aug + 15 working days: 4-7, 10-14, 17-21 and Sat 22 Aug, worked
    # in exchange for Mon 31 Aug (the National Day bridge) -> Sat 22 Aug.
    assert friday.deadlines["complaint.acceptance"].deadline.due_on == date(2026, 8, 10)  # type: ignore[attr-defined]
    assert monday.deadlines["complaint.acceptance"].deadline.due_on == date(2026, 8, 22)  # type: ignore[attr-defined]
    view = case_view(monday)  # type: ignore[arg-type]
    assert view.rules is not None
    assert (view.rules.version, view.rules.valid_from, view.rules.title) == ("6", "2026-08-01", "Bộ quy tắc thử nghiệm")
    assert view.rules.digest == sets.sets[2].digest
    old = case_view(friday)  # type: ignore[arg-type]
    assert old.rules is not None
    assert (old.rules.version, old.rules.valid_from, old.rules.digest) == ("4", None, sets.sets[0].digest)


def test_a_case_recorded_before_sets_had_digests_shows_none() -> None:
    policy = load_deadline_policy().model_copy(update={"digest": ""})
    state = received("2026-07-31", CaseRules(policy=policy, calendar=CALENDAR))
    rules = case_view(state).rules  # type: ignore[arg-type]
    assert rules is not None and rules.digest is None


@pytest.mark.parametrize(("amendment", "message"), [
    ('  - version: "6"\n    valid_from: 2026-06-01\n', "must come after 2026-07-01"),
    ('  - version: "4"\n    valid_from: 2026-09-01\n', "the version is already used"),
    ('  - version: "6"\n', "valid_from"),
    ('  - version: "6"\n    valid_from: 2026-09-01\n    rules:\n      test.half: {amount: 3}\n',
     "amendments[1] (version '6'): rules.test.half"),
    ('  - version: "6"\n    valid_from: 2026-09-01\n    rules:\n      complaint.acceptance: {unit: weeks}\n',
     "rules.complaint.acceptance.unit"),
    ('  - version: "6"\n    valid_from: 2026-09-01\n    in_force: true\n', "in_force"),
])
def test_a_bad_amendment_names_the_file_the_set_and_the_rule(tmp_path: Path, amendment: str, message: str) -> None:
    with pytest.raises(RulesFileError) as error:
        load_rule_sets(write(tmp_path, SHIPPED + amendment))
    assert "deadlines.yaml" in str(error.value) and message in str(error.value), str(error.value)


def test_the_base_set_applies_from_the_beginning(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError) as error:
        load_rule_sets(write(tmp_path, SHIPPED.replace('version: "4"\n', 'version: "4"\nvalid_from: 2026-01-01\n', 1)))
    assert "the base set" in str(error.value)
