"""Who may send each command (`domain.authority`), over the whole matrix: every command of every kind, sent by a
sender holding each relation and each role.

The cases are real: a petition and a plan task brought to their state by their own deciders, on the rules the
workers load (`policy/`), with one body per relation. Each verdict goes the validator's way (the facts built from
that state, `for_command`, `authorize`), and is compared with what the table lists. Apart from the table, a few
rules are written out by hand below, so that an edit of the table that breaks them fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pydantic import TypeAdapter

from activities.rules import CaseRulesRequest, PlanRulesRequest, RulesActivities
from domain import coordination as co
from domain import plan_tasks as pt
from domain.authority import (
    PETITION,
    PLAN_TASK,
    CaseFacts,
    Relation,
    Table,
    Unauthorized,
    authorize,
    for_command,
    petition_facts,
    relations,
    render_markdown,
    task_facts,
)
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Actor, DomainError
from domain.petitions import commands as c
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionState
from tests.authority_cases import PETITION_BODIES, PETITION_SAMPLES, STRANGER, TASK_BODIES, TASK_SAMPLES, Sample

R = Relation
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=VN_TZ)
SOURCE = "tiep-dan-tinh"
ROLE_OF = {R.SUPERVISOR: "supervisor", R.OPERATOR: "operator", R.ADMIN: "admin", R.SYSTEM: "system"}


def sender(relation: Relation, bodies: dict[Relation, str], source: str = SOURCE) -> Actor:
    """A sender holding `relation` (and, the bodies being distinct, no other)."""
    if relation == R.INTAKE:
        return Actor(id=source, role="intake")
    if relation in ROLE_OF:
        return Actor(id=f"{relation.value}-01", role=ROLE_OF[relation])
    return Actor(id=f"can-bo-{relation.value}", role="body", body=bodies[relation])


def petition_state() -> PetitionState:
    """A complaint received by BAN_TCD, accepted by THANH_TRA_TINH, the land department asked to coordinate."""
    rules = asyncio.run(RulesActivities().load_case_rules(CaseRulesRequest(received_on=date(2026, 11, 20))))
    intake = PetitionIntake(
        source=SOURCE, external_ref="KN-AUTH-1", kind="complaint", channel="post",
        received_at=datetime(2026, 11, 20, 9, 0, tzinfo=VN_TZ), subject="Khiếu nại về bồi thường",
        content="Khiếu nại mức bồi thường", petitioner=Petitioner(name="Nguyễn Thị Lan", address="Nam Hồng"),
        district="Nam Sách", receiving_body=PETITION_BODIES[R.RECEIVING],
    )
    receiving = sender(R.RECEIVING, PETITION_BODIES)
    lead = sender(R.LEAD, PETITION_BODIES)
    state = fold(decide(None, c.Receive(case_id="pet-auth", intake=intake, rules=rules), SYSTEM, NOW))
    for command, actor in (
        (c.Classify(lead_body=PETITION_BODIES[R.LEAD]), receiving),
        (c.Accept(decision_no="1/QĐ-TTr"), lead),
        (co.RequestCoordination(subject="Hồ sơ đất", bodies=[co.CoordinationTarget(
            body=PETITION_BODIES[R.COORDINATING], side="state", days=5)]), lead),
    ):
        state = fold(decide(state, command, actor, NOW), state)
    assert state is not None
    return state


def task_state() -> pt.TaskState:
    rules = asyncio.run(RulesActivities().load_plan_rules(PlanRulesRequest(start_on=date(2026, 1, 5),
                                                                           until=date(2030, 12, 31))))
    spec = pt.TaskSpec(plan_id="KH-AUTH", task_id="II.1", title_vi="Công tác dân vận chính quyền",
                       lead=[TASK_BODIES[R.LEAD]], coordinators=[TASK_BODIES[R.COORDINATING]],
                       cadence=["semiannual", "annual"], issuer="BTGDV_TU", monitor="BTGDV_TU")
    state = pt.fold(pt.decide(None, pt.Assign(case_id="task-KH-AUTH-II.1", spec=spec, rules=rules), SYSTEM, NOW))
    assert state is not None
    asked = co.RequestCoordination(subject="Số liệu", bodies=[co.CoordinationTarget(
        body=TASK_BODIES[R.COORDINATING], side="front", days=5)])
    return pt.fold(pt.decide(state, asked, sender(R.LEAD, TASK_BODIES), NOW), state) or state


PETITION_STATE = petition_state()
TASK_STATE = task_state()
PETITION_COMMAND = TypeAdapter(c.PetitionCommand)
TASK_COMMAND = TypeAdapter(pt.PlanTaskCommand)


def verdict(table: Table, facts: CaseFacts, command: Any, actor: Actor) -> bool:
    """The validator's judgement of `command` from `actor` (True: allowed)."""
    try:
        authorize(table, command.type, actor, for_command(table, command, facts))
    except Unauthorized as exc:
        assert exc.rule == f"authority.{command.type}"
        assert isinstance(exc, DomainError)
        return False
    return True


class KindSpec(NamedTuple):
    """What the matrix needs of a kind: its table, a case of it, its relations, bodies and sample commands."""

    table: Table
    state: Any
    facts_of: Callable[[Any], CaseFacts]
    bodies: dict[Relation, str]
    samples: dict[str, Sample]
    adapter: TypeAdapter[Any]
    commands: list[str]


KINDS = {
    "petition": KindSpec(PETITION, PETITION_STATE, petition_facts, PETITION_BODIES, PETITION_SAMPLES,
                         PETITION_COMMAND, c.COMMAND_TYPES),
    "plan_task": KindSpec(PLAN_TASK, TASK_STATE, task_facts, TASK_BODIES, TASK_SAMPLES, TASK_COMMAND,
                          pt.COMMAND_TYPES),
}
MATRIX = [(kind, command, relation) for kind, spec in KINDS.items() for command in spec[6] for relation in Relation
          if relation in spec[3] or relation in ROLE_OF or relation == R.INTAKE]


@pytest.mark.parametrize(("kind", "command_type", "relation"), MATRIX)
def test_a_command_is_allowed_exactly_where_the_table_says(kind: str, command_type: str, relation: Relation) -> None:
    table, state, facts_of, bodies, samples, adapter, _ = KINDS[kind]
    facts = facts_of(state)
    actor = sender(relation, bodies, facts.source or "")
    command = adapter.validate_python(samples[command_type](actor.body))
    assert relations(actor, for_command(table, command, facts)) == {relation}
    assert verdict(table, facts, command, actor) == (relation in table.entry(command_type).allowed)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("who", ["stranger", "foreign intake"])
def test_a_sender_with_no_relation_to_the_case_may_send_nothing(kind: str, who: str) -> None:
    table, state, facts_of, _, samples, adapter, commands = KINDS[kind]
    actor = (Actor(id="can-bo", role="body", body=STRANGER) if who == "stranger"
             else Actor(id="he-thong-khac", role="intake"))
    for command_type in commands:
        command = adapter.validate_python(samples[command_type](actor.body))
        assert not verdict(table, facts_of(state), command, actor), command_type


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_acts_for_itself_only(kind: str) -> None:
    """A command speaking for a body, sent by another body that holds the relation itself, is refused."""
    table, state, facts_of, bodies, samples, adapter, _ = KINDS[kind]
    for entry in table.entries:
        if not entry.speaks_for_body:
            continue
        for relation in entry.allowed & {R.LEAD, R.COORDINATING}:
            other = next(b for r, b in bodies.items() if b != bodies[relation] and r in (R.LEAD, R.COORDINATING))
            command = adapter.validate_python(samples[entry.command](other))
            assert not verdict(table, facts_of(state), command, sender(relation, bodies)), (entry.command, relation)


def test_the_rules_a_table_edit_must_not_break() -> None:
    """Written out by hand, apart from the table: what only the competent body does, and what a coordinating
    body, an operator and an admin never do."""
    lead_only = {"accept", "reject", "decide", "extend", "suspend", "resume", "request_coordination",
                 "record_verification", "record_dialogue", "notify", "record_implementation", "close", "archive"}
    for name in lead_only:
        assert PETITION.entry(name).allowed == {R.LEAD}, name
    assert PETITION.entry("assign").allowed == {R.LEAD, R.SUPERIOR, R.COMMISSION}
    for table in (PETITION, PLAN_TASK):
        for entry in table.entries:
            assert R.OPERATOR not in entry.allowed and R.ADMIN not in entry.allowed, entry.command
            assert R.SUPERVISOR not in entry.allowed, entry.command
    # A coordinating body answers its request, and may join the files its answer rests on; nothing else.
    assert [e.command for e in PETITION.entries if R.COORDINATING in e.allowed] == ["respond", "attach"]
    assert PETITION.entry("respond").allowed == {R.COORDINATING} == PLAN_TASK.entry("respond").allowed
    for name in ("review_report", "urge", "interim_review", "final_review", "close"):
        assert PLAN_TASK.entry(name).allowed == {R.COMMISSION}, name
    assert PLAN_TASK.entry("reassign").allowed == {R.COMMISSION, R.SYSTEM}


def test_a_coordinating_body_cannot_take_the_case_and_decide_it() -> None:
    coordinating = sender(R.COORDINATING, PETITION_BODIES)
    facts = petition_facts(PETITION_STATE)
    for payload in ({"type": "assign", "body": PETITION_BODIES[R.COORDINATING]},
                    {"type": "decide", "outcome": "upheld", "decision_no": "9/QĐ", "summary": "Chấp nhận"},
                    {"type": "extend", "decision_no": "9/QĐ", "reason": "Phức tạp"},
                    {"type": "suspend", "reason": "Chờ kết quả giám định"}):
        command = PETITION_COMMAND.validate_python(payload)
        with pytest.raises(Unauthorized) as refused:
            authorize(PETITION, command.type, coordinating, for_command(PETITION, command, facts))
        assert refused.value.rule == f"authority.{command.type}"
        assert "lead body" in refused.value.message and "coordinating body" in refused.value.message


def test_a_coordinating_body_answers_only_a_request_addressed_to_it() -> None:
    coordinating = sender(R.COORDINATING, PETITION_BODIES)
    facts = petition_facts(PETITION_STATE)
    body = PETITION_BODIES[R.COORDINATING]
    mine = PETITION_COMMAND.validate_python({"type": "respond", "request_id": "R1", "body": body, "response": "x"})
    other = PETITION_COMMAND.validate_python({"type": "respond", "request_id": "R2", "body": body, "response": "x"})
    assert verdict(PETITION, facts, mine, coordinating)
    assert not verdict(PETITION, facts, other, coordinating)


def test_the_facts_name_the_registry_s_front_commission_and_superior() -> None:
    facts = petition_facts(PETITION_STATE)
    assert facts.front == ["UBMTTQ_TINH"]
    assert facts.commission[:2] == ["BDV_TU", "BTGDV_TU"] and "PHONG_DTHTH" in facts.commission
    assert facts.superiors == ["UBND_TINH"]  # THANH_TRA_TINH's parent
    assert facts.receiving == "BAN_TCD" and facts.lead == ["THANH_TRA_TINH"]
    assert facts.requests == {"R1": ["SO_TAI_NGUYEN"]}
    task = task_facts(TASK_STATE)
    assert task.commission == ["BTGDV_TU"] and task.superiors == ["UBND_TINH"] and task.coordinating == ["HND"]


def test_a_district_instance_of_a_lead_family_submits_its_own_plan() -> None:
    rules = TASK_STATE.rules
    spec = TASK_STATE.spec.model_copy(update={"lead": ["BDV_HUYEN"], "coordinators": [],
                                              "cadence": ["one_off_subplan"]})
    state = pt.fold(pt.decide(None, pt.Assign(case_id="task-KH-AUTH-III.2", spec=spec, rules=rules), SYSTEM, NOW))
    assert state is not None
    command = TASK_COMMAND.validate_python({"type": "submit_subplan", "body": "BDV_HUYEN:nam-sach",
                                            "doc_ref": "KH-01"})
    district = Actor(id="ns", role="body", body="BDV_HUYEN:nam-sach")
    neighbour = Actor(id="cm", role="body", body="BDV_HUYEN:chi-linh")
    assert verdict(PLAN_TASK, task_facts(state), command, district)
    assert not verdict(PLAN_TASK, task_facts(state), command, neighbour)


def test_the_readme_publishes_the_table_the_code_enforces() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- authority table: start -->", "<!-- authority table: end -->"
    assert start in readme and end in readme, "README.md has no section generated by domain.authority"
    published = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert published == render_markdown().strip(), (
        "README.md's 'Who may send each command' differs from domain.authority: paste render_markdown()'s output")
