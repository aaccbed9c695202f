"""Rule documents by digest (`domain.rulesets`): the digest is the content's, a document read back gives the
same digest, the first event stores the ref or (as before) the rules in full, and both shapes fold."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from activities.rules import CaseRulesRequest, RulesActivities
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Event, content_digest
from domain.petitions import REGISTRY, fold
from domain.petitions import commands as c
from domain.petitions.decider import decide
from domain.petitions.views import case_view
from domain.rulesets import (
    RuleBook,
    RuleDigestMismatch,
    UnknownRules,
    document,
    read_document,
    refs,
    rules_ref,
    with_rules,
)
from tests.workflows.support import intake

RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ)
ACTIVITIES = RulesActivities(book=RuleBook())
RULES = ACTIVITIES.case_rules(CaseRulesRequest(received_on=RECEIVED.date()))


def stored(events: list[Event]) -> list[Event]:
    """The events as the store gives them back: their payload, parsed."""
    return [REGISTRY.parse(e.event_type(), occurred_at=e.occurred_at, actor=e.actor, reason=e.reason,
                           legal_basis=e.legal_basis, data=e.payload()) for e in events]


def receive(ref: object = None) -> list[Event]:
    petition = intake("complaint", RECEIVED)
    return decide(None, c.Receive(case_id="pet-rd", intake=petition, rules=RULES, rules_ref=ref), SYSTEM,
                  RECEIVED + timedelta(minutes=1))


def test_each_document_is_named_by_the_digest_of_its_content_and_reads_back_to_it() -> None:
    ref, docs = rules_ref(RULES, RuleBook())
    assert ref.policy == RULES.policy.digest  # the digest every case view shows
    for doc in docs:
        assert doc.digest == content_digest(doc.content)
        model = read_document(doc)
        assert document(doc.kind, model) == doc
    assert read_document(docs[0]) == RULES.policy


def test_a_document_whose_content_is_not_its_digest_is_refused() -> None:
    _, docs = rules_ref(RULES, RuleBook())
    altered = docs[1].model_copy(update={"content": {**docs[1].content, "days_off": []}})
    with pytest.raises(RuleDigestMismatch):
        RuleBook().add(altered)


def test_the_first_event_stores_the_ref_not_the_rules_and_folds_once_they_are_resolved() -> None:
    book = RuleBook()
    ref, _ = rules_ref(RULES, book)
    events = receive(ref)
    payload = events[0].payload()
    assert "rules" not in payload and payload["rules_ref"] == ref.model_dump()
    assert len(str(payload)) < 4 * 1024
    # Folded as decided (the decider holds the rules beside the ref).
    decided = fold(events)
    assert decided is not None and decided.rules == RULES
    # Read back, the event holds only the ref: folding asks for the rules, which the book gives.
    back = stored(events)
    assert refs(back) == set(ref.documents())
    with pytest.raises(UnknownRules):
        fold(back)
    with pytest.raises(UnknownRules):
        with_rules(back, RuleBook())
    state = fold(with_rules(back, book))
    assert state is not None and state.rules == RULES
    assert case_view(state).rules == case_view(decided).rules


def test_a_first_event_recorded_with_the_rules_in_full_stores_and_folds_as_before() -> None:
    events = receive(None)
    payload = events[0].payload()
    assert "rules_ref" not in payload and payload["rules"]["policy"]["digest"] == RULES.policy.digest
    back = stored(events)
    assert refs(back) == set()
    state = fold(with_rules(back, RuleBook()))  # nothing to resolve
    assert state is not None and state.rules == RULES
    assert state.rules.calendar.covers(date(2028, 12, 31))
