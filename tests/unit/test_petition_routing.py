"""The petition decider with the recorded body registry and routing table: routing, and bodies in force."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from activities.rules import build_calendar, load_bodies, load_calendar_overrides, load_deadline_policy, load_routing
from domain.common import Actor, DomainError
from domain.deadlines import CaseRules
from domain.petitions import Petitioner, PetitionIntake, PetitionState, decide, fold
from domain.petitions import commands as c
from domain.petitions import events as e

VN = timezone(timedelta(hours=7))
BODIES = load_bodies()
RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2024, 2027, load_calendar_overrides()),
                  bodies=BODIES, routing=load_routing(registry=BODIES))
OFFICER = Actor(id="can-bo", role="body", body="UBND_TINH")


def received(kind: str, when: datetime, **intake: object) -> PetitionState:
    data = {"source": "s", "external_ref": f"r-{when.isoformat()}", "kind": kind, "received_at": when,
            "petitioner": Petitioner(name="Lê Văn Cường", address="Thanh Hà"), "subject": "Đất đai",
            "content": "Nội dung", **intake}
    events = decide(None, c.Receive(case_id="pet-r", intake=PetitionIntake.model_validate(data), rules=RULES),
                    OFFICER, when)
    state = fold(events)
    assert state is not None
    return state


def test_a_complaint_classified_without_a_body_is_routed_by_the_recorded_table() -> None:
    when = datetime(2026, 3, 2, 9, tzinfo=VN)
    state = received("complaint", when)
    (event,) = decide(state, c.Classify(level="province"), OFFICER, when)
    assert isinstance(event, e.Classified)
    assert event.lead_body == "UBND_TINH"
    assert event.routed is not None and event.routed.legal_basis
    assert event.legal_basis == event.routed.legal_basis


def test_a_named_body_wins_over_the_routing_table() -> None:
    when = datetime(2026, 3, 2, 9, tzinfo=VN)
    (event,) = decide(received("complaint", when), c.Classify(lead_body="THANH_TRA_TINH"), OFFICER, when)
    assert isinstance(event, e.Classified)
    assert event.lead_body == "THANH_TRA_TINH" and event.routed is None


def test_a_body_dissolved_in_the_2025_reorganisation_is_refused_naming_why() -> None:
    when = datetime(2026, 3, 2, 9, tzinfo=VN)
    state = fold(decide(received("complaint", when), c.Classify(lead_body="UBND_TINH"), OFFICER, when),
                 received("complaint", when))
    with pytest.raises(DomainError) as refused:
        decide(state, c.Assign(body="THANH_TRA_HUYEN:nam-sach"), OFFICER, when)
    assert refused.value.rule == "assign.body"
    assert "THANH_TRA_TINH" in refused.value.message  # its successor


def test_the_same_district_body_was_valid_before_the_reorganisation() -> None:
    when = datetime(2025, 3, 3, 9, tzinfo=VN)
    state = received("complaint", when)
    classified = fold(decide(state, c.Classify(lead_body="UBND_TINH"), OFFICER, when), state)
    (event,) = decide(classified, c.Assign(body="UBND_HUYEN:nam-sach"), OFFICER, when)
    assert isinstance(event, e.Assigned)
    assert event.body == "UBND_HUYEN:nam-sach"


def test_an_unknown_body_is_refused() -> None:
    when = datetime(2026, 3, 2, 9, tzinfo=VN)
    with pytest.raises(DomainError) as refused:
        decide(received("complaint", when), c.Classify(lead_body="NO_SUCH_BODY"), OFFICER, when)
    assert refused.value.rule == "classify.body"
