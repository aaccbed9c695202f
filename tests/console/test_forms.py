"""The command forms, without a server: every command of every kind has a form made from its model, in both
languages; a posted form reads back into the command; dates are read day first whatever the browser's locale;
every rule a case refuses by is explained; and the commands a page offers follow the case's state and the
sender's authority exactly (nothing offered that the case would refuse, nothing the case would take left out).
The cases are brought to each state by their own deciders, on the rules the workers load."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.rules import CaseRulesRequest, PlanRulesRequest, RulesActivities, load_deadline_policy
from api.console.forms import (
    Group,
    Input,
    Options,
    Problem,
    field_shapes,
    input_names,
    inputs_of,
    parse_date,
    read_values,
)
from api.console.i18n import LABELS, Translator
from api.console.offers import CASE_KINDS, Offer, Probe, offers_on
from api.console.refusals import basis_of, refusal, rule_text
from domain import coordination as co
from domain import plan_tasks as pt
from domain.authority import Unauthorized, authorize, for_command, petition_facts, task_facts
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Actor, DomainError
from domain.petitions import commands as c
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionState

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(VN_TZ).replace(microsecond=0)
TODAY = NOW.date()
VI, EN = Translator("vi"), Translator("en")
LEAD = Actor(id="chuyên viên UBND tỉnh", role="body", body="UBND_TINH")
DEPARTMENT = Actor(id="chuyên viên Sở Tài nguyên", role="body", body="SO_TAI_NGUYEN")
RECEIVING = Actor(id="cán bộ tiếp dân", role="body", body="BAN_TCD")
FRONT = Actor(id="cán bộ Mặt trận", role="body", body="UBMTTQ_TINH")
STRANGER = Actor(id="cán bộ Công an", role="body", body="CA_TINH")
SUPERVISOR = Actor(id="giám sát viên", role="supervisor")


# -- every command has a form ---------------------------------------------------------------------------------


ALL = [(kind.name, command) for kind in CASE_KINDS.values() for command in kind.public()]


@pytest.mark.parametrize(("kind", "command"), ALL)
def test_every_command_has_a_form_labelled_in_both_languages(kind: str, command: str) -> None:
    model = CASE_KINDS[kind].models[command]
    assert command in LABELS["command"] and command in LABELS["command_help"]
    for t in (VI, EN):
        for item in inputs_of(model, t, Options()):
            inputs = [i for row in item.rows for i in row] if isinstance(item, Group) else [item]
            for i in [item, *inputs]:
                assert i.label and i.label != i.model_field, (command, i.model_field)
            for i in inputs:
                assert isinstance(i, Input)
                for choice in i.choices:
                    assert choice.label != choice.value, (command, i.name, choice.value)
    assert list(field_shapes(model))[-1] == "reason"  # every command carries a reason, asked last


def test_the_catalogue_has_no_english_left_in_vietnamese() -> None:
    for group in ("command", "command_help", "form_field", "relation", "rule", *[g for g in LABELS
                                                                                 if g.startswith("choice.")]):
        for code, (vietnamese, english) in LABELS[group].items():
            assert vietnamese != english or code in ("answered",), (group, code)


# -- reading a posted form --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "day"), [
    ("31/12/2026", date(2026, 12, 31)), ("1/2/2027", date(2027, 2, 1)), ("05-03-2027", date(2027, 3, 5)),
    ("05.03.2027", date(2027, 3, 5)), (" 29/02/2028 ", date(2028, 2, 29)), ("2027-03-05", date(2027, 3, 5)),
])
def test_a_date_is_read_day_first_whatever_the_browser_writes(text: str, day: date) -> None:
    assert parse_date(text) == day


@pytest.mark.parametrize(("text", "code"), [
    ("12/31/2026", "date_invalid"), ("29/02/2027", "date_invalid"), ("31/12/26", "date_format"),
    ("hôm nay", "date_format"), ("2026/12/31", "date_format"),
])
def test_a_date_that_is_not_one_is_a_problem_of_its_input(text: str, code: str) -> None:
    with pytest.raises(Problem) as found:
        parse_date(text)
    assert found.value.code == code


def test_a_posted_form_reads_back_into_the_command_s_values() -> None:
    petition = CASE_KINDS["petition"]
    values, problems = read_values(petition.models["request_coordination"], {
        "subject": " Cung cấp hồ sơ địa chính ", "bodies.0.body": "SO_TAI_NGUYEN", "bodies.0.side": "state",
        "bodies.0.days": "5", "bodies.0.unit": "working", "bodies.1.body": "", "bodies.1.side": "party",
        "bodies.1.days": "", "bodies.1.unit": "working", "bodies.2.body": "UBMTTQ_TINH", "bodies.2.side": "front",
        "bodies.2.days": "7", "bodies.2.unit": "calendar", "reason": "",
    })
    assert problems == {}
    assert values == {"subject": "Cung cấp hồ sơ địa chính", "bodies": [
        {"body": "SO_TAI_NGUYEN", "side": "state", "days": 5, "unit": "working"},
        {"body": "UBMTTQ_TINH", "side": "front", "days": 7, "unit": "calendar"}]}  # the blank row left out
    values, problems = read_values(petition.models["record_dialogue"], {
        "held_on": "25/11/2026", "participants": "Bà Nguyễn Thị Lan\r\n\r\n Ông Trần Văn Bình \r\n",
        "summary": "Đối thoại công khai"})
    assert problems == {} and values["held_on"] == date(2026, 11, 25)
    assert values["participants"] == ["Bà Nguyễn Thị Lan", "Ông Trần Văn Bình"]
    values, _ = read_values(petition.models["extend"], {"decision_no": "12/QĐ", "especially_complex": "1"})
    assert values == {"decision_no": "12/QĐ", "especially_complex": True}
    values, _ = read_values(petition.models["extend"], {"decision_no": "12/QĐ"})
    assert values["especially_complex"] is False  # an unticked box is not sent by the browser
    values, _ = read_values(petition.models["record_verification"], {"findings": "Đúng", "demand_matches_findings":
                                                                      "false"})
    assert values["demand_matches_findings"] is False
    values, problems = read_values(CASE_KINDS[pt.CASE_KIND].models["submit_report"], {
        "period": "2026", "body": "UBND_TINH", "summary": "Báo cáo", "figures": "hội nghị: 2\nsố người dự = 150,5"})
    assert problems == {} and values["figures"] == {"hội nghị": 2.0, "số người dự": 150.5}
    _, problems = read_values(petition.models["record_dialogue"], {"held_on": "25/13/2026"})
    assert problems == {"held_on": "date_invalid"}
    _, problems = read_values(petition.models["request_coordination"], {"bodies.0.body": "HND", "bodies.0.days": "năm"})
    assert problems == {"bodies.0.days": "number_format"}


def test_every_input_name_of_a_form_is_a_place_the_model_reports_errors_at() -> None:
    model = CASE_KINDS["petition"].models["request_coordination"]
    assert {"subject", "bodies", "bodies.0.days", "bodies.2.body", "reason"} <= input_names(model)
    with pytest.raises(ValidationError) as found:
        CASE_KINDS["petition"].adapter.validate_python({"type": "request_coordination", "bodies": [
            {"body": "HND", "side": "party", "days": 0}]})
    places = {".".join(str(p) for p in e["loc"][1:]) for e in found.value.errors()}
    assert places <= input_names(model)


# -- every refusal is explained ----------------------------------------------------------------------------------


def _rules_in(*paths: str) -> set[str]:
    policy = set(load_deadline_policy().rules)
    found: set[str] = set()
    for path in paths:
        text = (ROOT / path).read_text(encoding="utf-8")
        for match in re.finditer(r'(?:DomainError\(|require\([^"]*?,\s*)f?"([a-z_0-9]+(?:\.[a-z_0-9]+)+)"', text, re.S):
            found.add(match.group(1))
    return found - policy


def test_every_rule_a_case_refuses_a_command_by_is_explained_in_both_languages() -> None:
    rules = _rules_in("domain/petitions/decider.py", "domain/coordination.py", "domain/plan_tasks.py",
                      "domain/attachments.py")
    assert len(rules) > 80, sorted(rules)
    rules |= {f"{kind}.{suffix}" for kind in ("denunciation", "recommendation", "voter_petition")
              for suffix in ("extension_not_allowed", "extension_limit")}
    rules |= {f"authority.{command}" for _, command in ALL} | {"command.invalid", "idempotency.key_reused",
                                                                "text_control", "case.opening"}
    missing = sorted(r for r in rules if rule_text(VI, r) is None or rule_text(EN, r) is None)
    assert missing == []


def test_a_refusal_gives_the_law_it_rests_on() -> None:
    petition = CASE_KINDS["petition"]
    cited = "Luật Khiếu nại 2011, Điều 28: a complaint's period (30, or 45 days when complex) is not extended"
    assert basis_of("complaint.no_extension", cited, "Luật Khiếu nại 2011") == "Luật Khiếu nại 2011, Điều 28"
    assert basis_of("dialogue.state", "a dialogue follows verification, not accepted", None) == \
        "Luật Khiếu nại 2011, Điều 30"
    assert basis_of("respond.already", "SO_TAI_NGUYEN has already answered R1", "Luật Tố cáo 2018") == \
        "Luật Tố cáo 2018"
    assert basis_of("command.invalid", "the case cannot take this", "Luật Tố cáo 2018") is None
    refused = refusal(VI, "accept", "authority.accept", "`accept` on a petition case is sent by: lead body",
                      table=petition.table, law="Luật Khiếu nại 2011")
    assert refused.status == 403 and refused.text == "Bạn không có thẩm quyền gửi thao tác này cho hồ sơ."
    assert refused.allowed == "cơ quan chủ trì giải quyết"
    assert refused.basis == "Thẩm quyền gửi thao tác theo quan hệ với hồ sơ"


# -- what a page offers ----------------------------------------------------------------------------------------


RULES = asyncio.run(RulesActivities().load_case_rules(CaseRulesRequest(received_on=TODAY)))


def received(kind: str, **intake: Any) -> PetitionState:
    petition = PetitionIntake(**{
        "source": "tiep-dan-tinh", "external_ref": f"{kind}-1", "kind": kind, "channel": "post",
        "received_at": NOW - timedelta(days=2), "subject": "Đơn của bà Lan", "content": "Nội dung đơn",
        "petitioner": Petitioner(ref="pet-ref-1", named=True, traceable=True), "district": "Nam Sách",
        "receiving_body": "BAN_TCD", **intake})
    state = fold(decide(None, c.Receive(case_id=f"pet-{kind}", intake=petition, rules=RULES), SYSTEM, NOW))
    assert state is not None
    return state


def then(state: Any, actor: Actor, *commands: Any) -> Any:
    for command in commands:
        state = fold(decide(state, command, actor, NOW), state)
    return state


def offered(state: PetitionState, actor: Actor) -> dict[str, Offer]:
    probe = Probe(kind=CASE_KINDS["petition"], state=state, facts=petition_facts(state), actor=actor, now=NOW,
                  registry=state.rules.bodies)
    return {o.command: o for o in offers_on(probe)}


#: Commands as a clerk fills them in, several ways each: a command the case would take from its sender must be
#: offered, with the values the case takes among its select's.
FILLED: dict[str, list[dict[str, Any]]] = {
    "classify": [{"lead_body": "UBND_TINH"}, {"kind": "denunciation", "lead_body": "UBND_TINH"},
                 {"especially_complex": True, "reason": "Nhiều người, nhiều nội dung", "lead_body": "UBND_TINH"}],
    "split": [{"parts": [{"kind": "complaint", "subject": "Một", "content": "Một"},
                         {"kind": "recommendation", "subject": "Hai", "content": "Hai"}]}],
    "accept": [{"decision_no": "15/QĐ-UBND"}, {"decision_no": "15/QĐ-UBND", "lead_body": "UBND_TINH"}],
    "reject": [{"reasons": ["Không thuộc thẩm quyền"]}],
    "forward": [{"to_body": "SO_NOI_VU", "notice_no": "2/TB"}],
    "redirect": [{"guidance": "Đề nghị gửi đơn đến UBND xã"}],
    "assign": [{"body": "THANH_TRA_TINH", "officer": "Ông Bình"}, {"body": "UBND_TINH", "officer": "Bà Hoa"}],
    "request_coordination": [{"subject": "Hồ sơ đất", "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state",
                                                                  "days": 5}]}],
    "respond": [{"request_id": "R1", "body": "SO_TAI_NGUYEN", "response": "Đã gửi"},
                {"request_id": "R2", "body": "SO_TAI_NGUYEN", "response": "Đã gửi"}],
    "record_verification": [{"findings": "Đúng", "demand_matches_findings": True},
                            {"findings": "Khác", "demand_matches_findings": False}],
    "record_dialogue": [{"held_on": TODAY.isoformat(), "participants": ["Bà Lan"], "summary": "Đối thoại"}],
    "extend": [{"decision_no": f"{n}/QĐ-GH", "decision_date": TODAY.isoformat(), "reason": "Phức tạp",
                "especially_complex": flag} for n in (1, 2, 3) for flag in (False, True)],
    "suspend": [{"reason": "Chờ kết quả giám định"}],
    "resume": [{}],
    "withdraw": [{}, {"signs_of_violation": True}],
    "decide": [{"outcome": o, "decision_no": "20/QĐ", "summary": "Kết luận"} for o in
               ("upheld", "partly_upheld", "not_upheld", "violation_found", "no_violation", "answered")],
    "notify": [{"about": a, "recipients": ["Bà Lan"], "doc_no": "5/TB", "channel": ch}
               for a in ("acceptance", "decision", "forwarder") for ch in ("post", "publication")],
    "record_implementation": [{"summary": "Đã thực hiện"}],
    "record_external_result": [{"result": "Đã giải quyết"}],
    "appeal": [{}],
    "close": [{}],
    "archive": [{"archive_ref": "HS-2026-01"}],
    "start_front_supervision": [{}, {"trigger": "breach"}],
}


def takes(state: PetitionState, actor: Actor, command: str, values: dict[str, Any]) -> bool:
    kind = CASE_KINDS["petition"]
    parsed = kind.adapter.validate_python({"type": command, **values})
    try:
        authorize(kind.table, command, actor, for_command(kind.table, parsed, petition_facts(state)))
        decide(state, parsed, actor, NOW)
    except (Unauthorized, DomainError):
        return False
    return True


def check_offers(state: PetitionState, actors: list[Actor]) -> None:
    """Everything the case would take from each actor is offered, with the values it takes; nothing else is."""
    for actor in actors:
        found = offered(state, actor)
        for command, fillings in FILLED.items():
            taken = [v for v in fillings if takes(state, actor, command, v)]
            assert (command in found) == bool(taken), (state.status, actor.body, command)
            for values in taken:
                for name, value in values.items():
                    if name in found[command].choices:
                        assert str(value) in found[command].choices[name], (command, name, value)


def test_a_complaint_s_forms_follow_it_from_receipt_to_archive() -> None:
    state = received("complaint")
    actors = [LEAD, DEPARTMENT, RECEIVING, FRONT, STRANGER, SUPERVISOR]
    check_offers(state, actors)
    assert set(offered(state, RECEIVING)) >= {"classify", "forward", "redirect", "split"}
    assert "accept" not in offered(state, RECEIVING)  # only the competent body accepts
    assert offered(state, STRANGER) == {} and offered(state, SUPERVISOR) == {}
    assert "start_front_supervision" in offered(state, FRONT)
    steps: list[tuple[Actor, Any]] = [
        (RECEIVING, c.Classify(lead_body="UBND_TINH")), (LEAD, c.Accept(decision_no="1/QĐ")),
        (LEAD, co.RequestCoordination(subject="Hồ sơ", bodies=[co.CoordinationTarget(body="SO_TAI_NGUYEN",
                                                                                     side="state", days=5)])),
        (LEAD, c.RecordVerification(findings="Khác", demand_matches_findings=False)),
        (LEAD, c.RecordDialogue(held_on=TODAY, participants=["Bà Lan"], summary="Đối thoại")),
        (LEAD, c.Decide(outcome="partly_upheld", decision_no="2/QĐ", summary="Giải quyết")),
        (LEAD, c.Notify(about="decision", recipients=["Bà Lan"], doc_no="3/TB")),
        (LEAD, c.Close()), (LEAD, c.Archive(archive_ref="HS-1")),
    ]
    for actor, command in steps:
        state = then(state, actor, command)
        check_offers(state, actors)
        if state.status == "accepted":
            lead = offered(state, LEAD)
            assert lead["decide"].choices["outcome"] == ["upheld", "partly_upheld", "not_upheld"]
            assert lead["notify"].choices["about"] == ["acceptance"]
            assert "extend" not in lead  # a complaint's period is not extended
        if state.coordination and state.status == "accepted":
            assert offered(state, DEPARTMENT)["respond"].fixed == {"request_id": "R1", "body": "SO_TAI_NGUYEN"}
            assert "respond" not in offered(state, LEAD)
        if state.status == "verifying":
            assert "decide" not in offered(state, LEAD)  # the demand and the findings differ: a dialogue first
        if state.status == "decided":
            assert offered(state, LEAD)["notify"].choices["about"] == ["decision"]
        if state.status == "closed":
            assert set(offered(state, LEAD)) == {"archive"}
    assert state.status == "archived" and all(offered(state, a) == {} for a in actors)


def test_an_especially_complex_denunciation_is_offered_two_extensions_then_none() -> None:
    state = then(received("denunciation"), RECEIVING, c.Classify(lead_body="UBND_TINH", complex=True))
    state = then(state, LEAD, c.Accept(decision_no="1/QĐ"))
    check_offers(state, [LEAD, DEPARTMENT])
    lead = offered(state, LEAD)
    assert lead["decide"].choices["outcome"] == ["partly_upheld", "violation_found", "no_violation"]
    assert "extend" in lead
    state = then(state, LEAD, c.Extend(decision_no="5/QĐ-GH", decision_date=TODAY, reason="Nhiều nội dung"))
    assert "extend" in offered(state, LEAD)  # the second only if the decision finds it especially complex
    assert not takes(state, LEAD, "extend", {"decision_no": "6/QĐ-GH", "decision_date": TODAY.isoformat(),
                                             "reason": "Phức tạp"})
    state = then(state, LEAD, c.Extend(decision_no="6/QĐ-GH", decision_date=TODAY, reason="Đặc biệt phức tạp",
                                       especially_complex=True))
    check_offers(state, [LEAD])
    assert "extend" not in offered(state, LEAD)


def test_an_ordinary_denunciation_s_extension_is_offered_for_a_decision_that_finds_it_complex() -> None:
    state = then(then(received("denunciation"), RECEIVING, c.Classify(lead_body="UBND_TINH")), LEAD,
                 c.Accept(decision_no="1/QĐ"))
    check_offers(state, [LEAD])
    assert "extend" in offered(state, LEAD)
    assert not takes(state, LEAD, "extend", {"decision_no": "7/QĐ", "decision_date": TODAY.isoformat(),
                                             "reason": "r"})


def test_a_suspended_case_offers_what_may_happen_while_it_waits() -> None:
    state = then(then(received("complaint"), RECEIVING, c.Classify(lead_body="UBND_TINH")), LEAD,
                 c.Accept(decision_no="1/QĐ"), c.Suspend(reason="Chờ giám định"))
    check_offers(state, [LEAD, FRONT])
    assert set(offered(state, LEAD)) == {"assign", "resume", "withdraw"}


def test_a_plan_task_offers_each_body_its_own_part() -> None:
    rules = asyncio.run(RulesActivities().load_plan_rules(PlanRulesRequest(start_on=TODAY - timedelta(days=30),
                                                                           until=TODAY + timedelta(days=900))))
    spec = pt.TaskSpec(plan_id="KH-FORMS", task_id="II.1", title_vi="Công tác dân vận chính quyền",
                       lead=["SO_NOI_VU"], coordinators=["HND"], cadence=["semiannual", "annual"],
                       issuer="BTGDV_TU", monitor="BTGDV_TU")
    state = pt.fold(pt.decide(None, pt.Assign(case_id="task-KH-FORMS-II.1", spec=spec, rules=rules), SYSTEM, NOW))
    period = rules.reports.periods_between(TODAY, TODAY + timedelta(days=400))[0].id
    state = pt.fold(pt.decide(state, pt.RequestReport(period=period), SYSTEM, NOW), state)
    assert state is not None
    kind = CASE_KINDS[pt.CASE_KIND]

    def task_offers(actor: Actor) -> dict[str, Offer]:
        probe = Probe(kind=kind, state=state, facts=task_facts(state), actor=actor, now=NOW,
                      registry=state.rules.case.bodies)
        return {o.command: o for o in offers_on(probe)}

    lead = task_offers(Actor(id="cán bộ Sở Nội vụ", role="body", body="SO_NOI_VU"))
    assert lead["acknowledge"].fixed == {"body": "SO_NOI_VU"}
    assert lead["submit_report"].fixed == {"period": period, "body": "SO_NOI_VU"}
    assert "review_report" not in lead and "close" not in lead
    farmers = task_offers(Actor(id="cán bộ Hội Nông dân", role="body", body="HND"))
    assert farmers["acknowledge"].fixed == {"body": "HND"} and "submit_report" not in farmers
    commission = task_offers(Actor(id="chuyên viên Ban Dân vận", role="body", body="BTGDV_TU"))
    assert {"interim_review", "final_review", "request_coordination"} <= set(commission)
    assert commission["acknowledge"].choices["body"] == ["SO_NOI_VU", "HND"]  # for a body that has not yet
    assert "review_report" not in commission  # nothing submitted to review
