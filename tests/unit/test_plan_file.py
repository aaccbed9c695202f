"""The action plan as data (plan/action_plan.yaml): complete against the seed, valid, and strict about bad plans."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.plan_loader import PLAN_FILE, PlanFileError, load_plan, parse_plan
from activities.rules import load_bodies
from domain.bodies import BodyRegistry
from domain.plan import RULES, PlanDocument, PlanError, PlanTask, UnknownTask

ROOT = Path(__file__).resolve().parents[2]
#: The plan as the commission issued it, kept in the repository next to its data form.
SEED = ROOT / "plan" / "source" / "ke-hoach-hanh-dong-dan-van.txt"

HEADING = re.compile(r"^(\d+(?:\.\d+)?)\.\s+(.+)$")
BULLET = re.compile(r"^-\s+(.+)$")


# --- the seed, parsed here independently of the plan's code --------------------------------------------------


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def paragraphs(lines: list[str]) -> list[str]:
    """Non-empty lines, each a paragraph, except that a line starting in lower case continues the previous one:
    the seed breaks three paragraphs across a page ("của cơ" / "quan nhà nước")."""
    found: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if found and line[0].islower():
            found[-1] += " " + line
        else:
            found.append(line)
    return found


def seed_section(start: str, end: str) -> list[str]:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(start))
    last = next(i for i, line in enumerate(lines) if i > first and line.strip().startswith(end))
    return [nfc(p) for p in paragraphs(lines[first + 1 : last])]


def first_sentence(text: str) -> str:
    """Up to the first ., ! or ? that is followed by a space and a capital (quotes allowed between); an
    ellipsis ("dịch bệnh;... tiếp tục") does not end a sentence."""
    for match in re.finditer(r"[.!?](?= )", text):
        i = match.start()
        if i > 0 and text[i - 1] == ".":
            continue
        if text[i + 1 :].lstrip().lstrip("“\"'")[:1].isupper():
            return text[: i + 1]
    return text


def seed_headings() -> dict[str, tuple[str, list[str]]]:
    """Section II of the seed: "II.<number>" -> (heading text, bullets under it, in order)."""
    headings: dict[str, tuple[str, list[str]]] = {}
    current = None
    for paragraph in seed_section("II. NHIỆM VỤ", "III. TỔ CHỨC"):
        if heading := HEADING.match(paragraph):
            current = f"II.{heading.group(1)}"
            headings[current] = (heading.group(2), [])
        elif bullet := BULLET.match(paragraph):
            assert current is not None, f"bullet before any heading: {paragraph[:60]}"
            headings[current][1].append(bullet.group(1))
        else:
            raise AssertionError(f"unexpected paragraph in section II: {paragraph[:60]}")
    return headings


def seed_standing_duties() -> dict[str, str]:
    duties = {}
    for paragraph in seed_section("III. TỔ CHỨC", "Nơi nhận"):
        heading = HEADING.match(paragraph)
        assert heading, f"unexpected paragraph in section III: {paragraph[:60]}"
        duties[f"III.{heading.group(1)}"] = heading.group(2)
    return duties


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> BodyRegistry:
    return load_bodies()


@pytest.fixture(scope="module")
def plan(registry: BodyRegistry) -> PlanDocument:
    return load_plan(registry=registry)


@pytest.fixture()
def raw() -> dict[str, Any]:
    """The shipped file as data, to spoil in a test."""
    data = yaml.safe_load(PLAN_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


def index_of(data: dict[str, Any], task_id: str, where: str = "tasks") -> int:
    return next(i for i, task in enumerate(data[where]) if task["id"] == task_id)


def problems_of(text: str, registry: BodyRegistry) -> list[tuple[str | None, str]]:
    with pytest.raises(PlanFileError) as caught:
        parse_plan(text, registry, source="test plan")
    assert str(caught.value).startswith("test plan: ")
    return [(problem.task_id, problem.rule) for problem in caught.value.problems]


# --- the shipped file ---------------------------------------------------------------------------------------------


def test_the_plan_text_is_in_the_repository() -> None:
    assert SEED.is_file(), f"the plan's source text is missing at {SEED}"


def test_the_shipped_plan_validates_against_the_shipped_bodies(plan: PlanDocument) -> None:
    assert plan.id == "KH-BDVTU-DH17"
    assert plan.issuer == "BDV_TU"
    assert plan.number is None and plan.issued_on is None  # missing from the seed
    assert (plan.term_start.year, plan.term_end.year) == (2020, 2025)
    assert plan.signer.name == "Nguyễn Văn Phú"
    assert [task.id for task in plan.standing_duties] == ["III.1", "III.2", "III.3"]
    assert {(line.from_body, line.to_body) for line in plan.reporting} == {
        ("BDV_HUYEN", "BDV_TU"),
        ("PHONG_DTHTH", "BDV_TU"),
    }


def test_every_heading_of_section_ii_is_a_task_with_the_seeds_exact_title(plan: PlanDocument) -> None:
    headings = seed_headings()
    expected = ["II.1", "II.2", *(f"II.2.{n}" for n in range(1, 8)), "II.3", "II.4"]
    assert list(headings) == expected
    for task_id, (heading, _) in headings.items():
        task = plan.task(task_id)
        # II.1's heading is a paragraph: its title is the first sentence (docs/legal-reference.md §5).
        title = first_sentence(heading) if task_id == "II.1" else heading
        assert nfc(task.title_vi) == title, task_id
        assert nfc(task.text_vi) == heading, task_id
    assert nfc(plan.task("II.1").title_vi) != nfc(plan.task("II.1").text_vi)


def test_every_bullet_of_section_ii_is_a_subtask_with_the_seeds_exact_text(plan: PlanDocument) -> None:
    for task_id, (_, bullets) in seed_headings().items():
        # Bullets are the lettered subtasks; II.1.a is the rest of II.1's heading paragraph.
        lettered = [t for t in plan.subtasks(task_id) if re.search(r"\.[a-z]$", t.id) and t.id != "II.1.a"]
        assert [nfc(t.text_vi) for t in lettered] == bullets, task_id
        for task, bullet in zip(lettered, bullets, strict=True):
            assert nfc(task.title_vi) == first_sentence(bullet), task.id
            assert task.parent == task_id
    assert sum(len(bullets) for _, bullets in seed_headings().values()) == 28


def test_section_ii_has_the_subtasks_of_the_plan_and_their_letters(plan: PlanDocument) -> None:
    letters = {
        "II.1": "abc",
        "II.2.1": "abcde",
        "II.2.2": "abc",
        "II.2.3": "abc",
        "II.2.4": "abc",
        "II.2.5": "abcd",
        "II.2.6": "abc",
        "II.3": "ab",
        "II.4": "abc",
    }
    for task_id, expected in letters.items():
        assert [t.id for t in plan.subtasks(task_id)] == [f"{task_id}.{letter}" for letter in expected]
    assert [t.id for t in plan.subtasks("II.2")] == [f"II.2.{n}" for n in range(1, 8)]
    assert plan.subtasks("II.2.7") == []
    assert len(plan.tasks) == 40  # 4 top-level, 7 under II.2, 29 lettered subtasks


def test_ii_1_a_is_the_rest_of_the_ii_1_heading(plan: PlanDocument) -> None:
    heading = seed_headings()["II.1"][0]
    rest = heading[len(first_sentence(heading)) :].strip()
    task = plan.task("II.1.a")
    assert nfc(task.text_vi) == rest
    assert nfc(task.title_vi) == first_sentence(rest)


def test_the_standing_duties_carry_the_seeds_text(plan: PlanDocument) -> None:
    duties = seed_standing_duties()
    assert list(duties) == ["III.1", "III.2", "III.3"]
    for task_id, text in duties.items():
        task = plan.task(task_id)
        assert nfc(task.text_vi) == text
        assert nfc(task.title_vi) == first_sentence(text)
        assert plan.is_standing_duty(task_id)


def test_the_seeds_own_spellings_are_kept(plan: PlanDocument) -> None:
    assert "chính đồn Đảng" in plan.task("II.1.b").text_vi
    assert plan.task("III.1").text_vi.startswith("Các các sở")


def test_all_text_is_nfc_and_every_inferred_body_is_marked(plan: PlanDocument) -> None:
    for task in plan.all_tasks():
        for text in (task.title_vi, task.title_en, task.text_vi, task.note):
            assert unicodedata.is_normalized("NFC", text), task.id
        assert task.lead and task.cadence, task.id
        assert {ref.basis for ref in task.bodies()} <= {"explicit", "inferred"}
    assert any(ref.basis == "inferred" for task in plan.all_tasks() for ref in task.bodies())


def test_the_file_keeps_the_bodies_the_plan_names_even_if_abolished(plan: PlanDocument) -> None:
    assert [ref.code for ref in plan.task("III.2").lead] == ["BDV_HUYEN"]
    assert "HUYEN_UY" in [ref.code for ref in plan.task("II.4.b").lead]
    assert [ref.code for ref in plan.task("III.3").lead] == ["PHONG_DTHTH"]


def test_cadences_and_links_follow_the_plan(plan: PlanDocument) -> None:
    assert plan.task("II.2.7").cadence == ["ad_hoc"]
    assert [ref.code for ref in plan.task("II.2.7").assigners] == ["BDV_TW", "TINH_UY"]
    assert plan.task("II.2.4.c").cadence == ["continuous_monitoring", "ad_hoc_report"]
    assert plan.task("II.2.5.c").cadence == ["event_driven"]
    assert plan.task("III.2").cadence == ["one_off_subplan", "semiannual", "annual"]
    assert plan.task("II.4.a").same_as == "II.2.6"
    assert plan.task("II.2.2").links == ["petitions", "voters_petitions", "front_supervision"]
    assert plan.task("II.2.6.b").links == ["petitions", "voters_petitions"]


# --- reading the document ----------------------------------------------------------------------------------------


def test_all_tasks_lists_parents_before_their_subtasks(plan: PlanDocument) -> None:
    ordered = [task.id for task in plan.all_tasks()]
    assert len(ordered) == len(set(ordered)) == 43
    for position, task_id in enumerate(ordered):
        parent = plan.task(task_id).parent
        if parent is not None:
            assert ordered.index(parent) < position
    assert ordered[:5] == ["II.1", "II.1.a", "II.1.b", "II.1.c", "II.2"]
    assert ordered[-3:] == ["III.1", "III.2", "III.3"]


def test_an_unknown_task_is_an_error_naming_it(plan: PlanDocument) -> None:
    with pytest.raises(UnknownTask, match=r"II\.9"):
        plan.task("II.9")


def test_a_subtask_inherits_what_it_does_not_give_and_records_it(plan: PlanDocument) -> None:
    parent, child = plan.task("II.2.1"), plan.task("II.2.1.a")
    assert child.lead == parent.lead and child.coordinators == parent.coordinators
    assert child.cadence == parent.cadence
    assert child.inherited == ["lead", "coordinators", "cadence"]
    own_lead = plan.task("II.2.1.b")
    assert [ref.code for ref in own_lead.lead] == ["HDND_TINH"]
    assert own_lead.inherited == ["cadence"]
    own_cadence = plan.task("II.2.4.c")
    assert own_cadence.inherited == ["lead", "coordinators"]
    assert plan.task("II.2.7").coordinators == [] and plan.task("II.2.7").inherited == []  # [] is its own


def test_inheritance_is_resolved_through_two_levels_and_follows_an_edit_of_the_parent(
    raw: dict[str, Any], registry: BodyRegistry
) -> None:
    raw["tasks"][index_of(raw, "II.4")]["cadence"] = ["annual"]
    edited = parse_plan(dump(raw), registry)
    assert edited.task("II.4.b").cadence == ["annual"]
    assert "cadence" in edited.task("II.4.b").inherited


def test_an_exported_plan_reads_back_the_same_and_json_input_works(plan: PlanDocument, registry: BodyRegistry) -> None:
    again = parse_plan(plan.model_dump_json(), registry)
    assert again == plan
    assert again.digest() == plan.digest()
    # Editing the parent of an exported plan still reaches subtasks marked inherited.
    data = json.loads(plan.model_dump_json())
    data["tasks"][index_of(data, "II.2.3")]["cadence"] = ["annual"]
    assert parse_plan(json.dumps(data), registry).task("II.2.3.a").cadence == ["annual"]


def test_the_digest_is_stable_and_changes_with_content(plan: PlanDocument, raw: dict[str, Any]) -> None:
    assert plan.digest() == load_plan().digest()
    assert re.fullmatch(r"[0-9a-f]{64}", plan.digest())
    # Same content in another layout and key order: same digest.
    shuffled = {key: raw[key] for key in reversed(list(raw))}
    assert parse_plan(dump(shuffled)).digest() == plan.digest()
    raw["tasks"][index_of(raw, "II.2.3")]["title_vi"] += " (sửa)"
    assert parse_plan(dump(raw)).digest() != plan.digest()


def test_diff_names_added_removed_and_changed_tasks(plan: PlanDocument, raw: dict[str, Any]) -> None:
    assert plan.diff(plan).empty
    assert plan.diff(plan).summary() == "no differences"
    tasks = raw["tasks"]
    tasks[index_of(raw, "II.2.3")]["title_vi"] = "Công tác dân vận của lực lượng vũ trang (sửa)"
    tasks[index_of(raw, "II.2.3")]["cadence"] = ["annual"]
    del tasks[index_of(raw, "II.3.b")]
    tasks.append({**copy.deepcopy(tasks[index_of(raw, "II.3.a")]), "id": "II.3.c"})
    raw["version"] = "2"
    other = parse_plan(dump(raw))
    diff = plan.diff(other)
    assert diff.added == ["II.3.c"]
    assert diff.removed == ["II.3.b"]
    changed = {change.id: change for change in diff.changed}
    assert set(changed) == {"II.2.3", "II.2.3.a", "II.2.3.b", "II.2.3.c"}  # the subtasks inherit the cadence
    assert changed["II.2.3"].fields == ["title_vi", "cadence"]
    assert changed["II.2.3"].after["cadence"] == ["annual"]
    assert changed["II.2.3.a"].fields == ["cadence"]
    assert diff.plan_fields == ["version"]
    summary = diff.summary()
    assert "tasks added: II.3.c" in summary and "tasks removed: II.3.b" in summary
    assert "task II.2.3 changed: title_vi, cadence" in summary


# --- bad plans ---------------------------------------------------------------------------------------------------


def test_an_unknown_body_is_refused_naming_the_task_and_the_rule(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"][index_of(raw, "II.2.5")]["coordinators"].append({"code": "SO_KHONG_CO", "basis": "inferred"})
    assert problems_of(dump(raw), registry) == [("II.2.5", "body_known")]


def test_a_body_that_did_not_exist_during_the_term_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["term_start"], raw["term_end"] = "2026-01-01", "2030-12-31"
    problems = problems_of(dump(raw), registry)
    assert ("III.2", "body_in_term") in problems  # BDV_HUYEN ended on 1 Jul 2025


def test_a_duplicate_id_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"].append(copy.deepcopy(raw["tasks"][index_of(raw, "II.2.6.b")]))
    assert problems_of(dump(raw), registry) == [("II.2.6.b", "id_unique")]


def test_an_id_used_by_a_task_and_a_standing_duty_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["standing_duties"][0]["id"] = "III.2"
    assert ("III.2", "id_unique") in problems_of(dump(raw), registry)


def test_a_subtask_of_a_missing_parent_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    orphan = {**copy.deepcopy(raw["tasks"][index_of(raw, "II.2.6.a")]), "id": "II.2.9.a"}
    raw["tasks"].append(orphan)
    assert problems_of(dump(raw), registry) == [("II.2.9.a", "parent_exists")]


def test_a_parent_that_disagrees_with_the_id_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"][index_of(raw, "II.2.6.a")]["parent"] = "II.2.5"
    assert problems_of(dump(raw), registry) == [("II.2.6.a", "parent_matches_id")]


def test_a_malformed_id_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"][index_of(raw, "II.3.b")]["id"] = "II-3-b"
    assert problems_of(dump(raw), registry) == [("II-3-b", "id_format")]


def test_a_standing_duty_in_the_tasks_list_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"].append({**copy.deepcopy(raw["standing_duties"][0]), "id": "III.4"})
    assert problems_of(dump(raw), registry) == [("III.4", "section")]


def test_non_nfc_text_is_refused_naming_the_task_and_field(raw: dict[str, Any], registry: BodyRegistry) -> None:
    entry = raw["tasks"][index_of(raw, "II.2.4.b")]
    entry["text_vi"] = unicodedata.normalize("NFD", entry["text_vi"])
    with pytest.raises(PlanFileError) as caught:
        parse_plan(dump(raw), registry, source="import")
    [problem] = caught.value.problems
    assert (problem.task_id, problem.rule) == ("II.2.4.b", "nfc")
    assert problem.where.endswith(".text_vi")
    assert "II.2.4.b: [nfc]" in str(caught.value)


def test_an_unknown_cadence_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"][index_of(raw, "II.2.7")]["cadence"] = ["weekly"]
    assert problems_of(dump(raw), registry) == [("II.2.7", "cadence_known")]


def test_other_bad_values_name_their_rule(raw: dict[str, Any], registry: BodyRegistry) -> None:
    tasks = raw["tasks"]
    tasks[index_of(raw, "II.2.1")]["lead"][0]["basis"] = "guessed"
    tasks[index_of(raw, "II.2.2")]["links"] = ["complaints"]
    tasks[index_of(raw, "II.2.3")]["owner"] = "BDV_TU"
    tasks[index_of(raw, "II.2.4")]["title_vi"] = " Công tác dân vận"
    del tasks[index_of(raw, "II.2.5")]["title_en"]
    tasks[index_of(raw, "II.2.6")]["coordinators"][0]["code"] = "bcd qcdc"
    assert problems_of(dump(raw), registry) == [
        ("II.2.1", "basis_known"),
        ("II.2.2", "link_known"),
        ("II.2.3", "field_known"),
        ("II.2.4", "text_format"),
        ("II.2.5", "field_required"),
        ("II.2.6", "body_code"),
    ]


def test_every_problem_is_reported_at_once(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"].append(copy.deepcopy(raw["tasks"][index_of(raw, "II.3.a")]))
    raw["tasks"].append({**copy.deepcopy(raw["tasks"][index_of(raw, "II.3.a")]), "id": "II.8.a"})
    raw["tasks"][index_of(raw, "II.4.a")]["same_as"] = "II.2.9"
    raw["tasks"][index_of(raw, "II.2")]["lead"] = []
    assert sorted(problems_of(dump(raw), registry)) == sorted(
        [("II.3.a", "id_unique"), ("II.8.a", "parent_exists"), ("II.4.a", "same_as_exists"), ("II.2", "lead_required")]
    )


def test_a_body_both_leading_and_coordinating_is_refused(raw: dict[str, Any], registry: BodyRegistry) -> None:
    # II.2.1.b leads with HDND_TINH, which coordinates II.2.1: inheriting II.2.1's coordinators would repeat it.
    del raw["tasks"][index_of(raw, "II.2.1.b")]["coordinators"]
    assert problems_of(dump(raw), registry) == [("II.2.1.b", "no_repeats")]


def test_a_changed_inherited_value_is_refused_rather_than_ignored(plan: PlanDocument, registry: BodyRegistry) -> None:
    data = json.loads(plan.model_dump_json())
    data["tasks"][index_of(data, "II.2.3.b")]["cadence"] = ["annual"]  # still marked inherited
    assert problems_of(json.dumps(data), registry) == [("II.2.3.b", "inherited")]


def test_a_yaml_key_written_twice_is_refused(registry: BodyRegistry) -> None:
    text = PLAN_FILE.read_text(encoding="utf-8").replace(
        "    cadence: [ad_hoc]\n", "    cadence: [ad_hoc]\n    cadence: [annual]\n", 1
    )
    with pytest.raises(PlanFileError, match="written twice"):
        parse_plan(text, registry)


def test_load_plan_names_the_file(tmp_path: Path, raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"][index_of(raw, "II.2.7")]["cadence"] = ["weekly"]
    path = tmp_path / "imported.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PlanFileError) as caught:
        load_plan(path, registry)
    message = str(caught.value)
    assert message.startswith(str(path)) and "II.2.7: [cadence_known]" in message
    with pytest.raises(PlanFileError, match="cannot read"):
        load_plan(tmp_path / "missing.yaml", registry)
    (tmp_path / "broken.yaml").write_text("tasks: [", encoding="utf-8")
    with pytest.raises(PlanFileError, match="not valid YAML"):
        load_plan(tmp_path / "broken.yaml", registry)
    with pytest.raises(PlanFileError, match="not valid JSON"):
        parse_plan('{"id": ', registry)


def test_the_domain_model_refuses_bad_data_without_the_loader(raw: dict[str, Any], registry: BodyRegistry) -> None:
    raw["tasks"][index_of(raw, "II.1")]["coordinators"].append({"code": "NOPE", "basis": "explicit"})
    document = PlanDocument.from_data(raw)  # no registry: structure only
    with pytest.raises(PlanError) as caught:
        document.check_bodies(registry)
    assert [(p.task_id, p.rule) for p in caught.value.problems] == [("II.1", "body_known")]
    assert all(problem.rule in RULES for problem in caught.value.problems)


def test_a_task_id_gives_its_parent() -> None:
    task = PlanTask.model_validate({"id": "II.2.1.a", "title_vi": "A", "title_en": "A", "text_vi": "A"})
    assert task.parent == "II.2.1"
    top = PlanTask.model_validate({"id": "III.2", "title_vi": "A", "title_en": "A", "text_vi": "A"})
    assert top.parent is None
