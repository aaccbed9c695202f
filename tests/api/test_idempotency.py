"""`Idempotency-Key` over the real API, Temporal dev server and PostgreSQL: the same key with the same request
is a duplicate; with another command or from another sender it is refused with 422 `idempotency.key_reused`
and changes nothing; sent at once with different requests, exactly one is applied (`domain.idempotency`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio

from eventstore import EventStore

from .support import Api, petition, token, unique

REASON = "Cơ quan chưa trả lời quá hạn, nhắc xử lý"


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    intake: str
    source: str
    body: str
    colleague: str
    operator: str
    other_operator: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("idem-backoffice")
    return Tokens(
        intake=await token(store, "intake", label=source), source=source,
        body=await token(store, "body", "UBND_TINH", label="cán bộ Nguyễn Hoà"),
        colleague=await token(store, "body", "UBND_TINH", label="cán bộ Trần Bình"),  # same body, another sender
        operator=await token(store, "operator", label="Trực vận hành Hoàng Minh"),
        other_operator=await token(store, "operator", label="Trực vận hành Lê Vân"),
    )


async def command(api: Api, tok: str, case_id: str, body: dict[str, Any], key: str | bytes) -> httpx.Response:
    return await api.post(f"/v1/cases/{case_id}/commands", tok, json=body, headers={"Idempotency-Key": key})


async def classified_case(api: Api, tokens: Tokens) -> str:
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source, receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["case_id"])
    answer = await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "UBND_TINH"},
                           uuid.uuid4().hex)
    assert answer.status_code == 200, answer.text
    return case_id


def assert_key_reused(response: httpx.Response, *differs: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "idempotency.key_reused"
    assert [(f["field"], f["rule"]) for f in error["fields"]] == [("idempotency-key", "idempotency.key_reused")]
    for what in differs:
        assert what in error["message"], error["message"]


async def test_the_same_key_with_the_same_request_is_a_duplicate(api: Api, tokens: Tokens, store: EventStore
                                                                 ) -> None:
    case_id = await classified_case(api, tokens)
    key = uuid.uuid4().hex
    body = {"type": "accept", "decision_no": "12/QĐ-UBND"}
    first = await command(api, tokens.body, case_id, body, key)
    assert first.status_code == 200 and first.json()["events"] == ["AcceptanceDecided"], first.text
    # The same request again, its text in another Unicode form and a default written out: the same request.
    again = await command(api, tokens.body, case_id, {"decision_no": "12/QĐ-UBND", "type": "accept"}, key)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True or again.json()["events"] == ["AcceptanceDecided"]
    stored = await store.read_stream(case_id)
    assert [e.type for e in stored].count("AcceptanceDecided") == 1
    accepted = next(e for e in stored if e.type == "AcceptanceDecided")
    assert accepted.metadata["command_id"] == key
    assert len(accepted.metadata["command_digest"]) == 64 and len(accepted.metadata["sender_digest"]) == 64
    assert stored[0].metadata == {"command_id": "receive"}  # the case's own first command: no digests


async def test_the_same_key_with_another_command_is_refused_and_changes_nothing(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await classified_case(api, tokens)
    key = uuid.uuid4().hex
    first = await command(api, tokens.body, case_id, {"type": "accept", "decision_no": "12/QĐ-UBND"}, key)
    assert first.status_code == 200, first.text
    before = await store.read_stream(case_id)
    for other in ({"type": "accept", "decision_no": "13/QĐ-UBND"},  # the same type, another field
                  {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Hoà"}):  # another command
        assert_key_reused(await command(api, tokens.body, case_id, other, key), "the command")
        assert_key_reused(await command(api, tokens.body, case_id, other, key), "the command")  # and again
    assert await store.read_stream(case_id) == before
    # The first request under the key is still a duplicate, and a new key applies the other command.
    assert (await command(api, tokens.body, case_id, {"type": "accept", "decision_no": "12/QĐ-UBND"},
                          key)).status_code == 200
    assigned = await command(api, tokens.body, case_id, {"type": "assign", "body": "UBND_TINH", "officer": "Hoà"},
                             uuid.uuid4().hex)
    assert assigned.status_code == 200 and assigned.json()["events"] == ["Assigned"], assigned.text


async def test_the_same_key_from_another_sender_is_refused(api: Api, tokens: Tokens, store: EventStore) -> None:
    case_id = await classified_case(api, tokens)
    key = uuid.uuid4().hex
    body = {"type": "accept", "decision_no": "12/QĐ-UBND"}
    assert (await command(api, tokens.body, case_id, body, key)).status_code == 200
    before = await store.read_stream(case_id)
    refused = await command(api, tokens.colleague, case_id, body, key)
    assert_key_reused(refused, "the sender")
    assert "the command" not in refused.json()["error"]["message"]
    both = await command(api, tokens.colleague, case_id, {"type": "accept", "decision_no": "99/QĐ"}, key)
    assert_key_reused(both, "the command and the sender")
    assert await store.read_stream(case_id) == before


async def test_requests_sent_at_once_under_one_key_apply_exactly_one(api: Api, tokens: Tokens,
                                                                    store: EventStore) -> None:
    case_id = await classified_case(api, tokens)
    key = uuid.uuid4().hex
    officers = ["Cán bộ An", "Cán bộ Bình", "Cán bộ Chi", "Cán bộ Dũng"]
    answers = await asyncio.gather(*(
        command(api, tokens.body, case_id, {"type": "assign", "body": "UBND_TINH", "officer": o}, key)
        for o in officers))
    applied = [o for o, a in zip(officers, answers, strict=True) if a.status_code == 200]
    assert len(applied) == 1, [a.text for a in answers]
    for a in answers:
        if a.status_code != 200:
            assert_key_reused(a, "the command")
    stored = await store.read_stream(case_id)
    assigned = [e for e in stored if e.type == "Assigned"]
    assert len(assigned) == 1 and assigned[0].data["officer"] == applied[0]
    # Afterwards the one applied is the key's request: a duplicate; the others are still refused.
    again = await command(api, tokens.body, case_id, {"type": "assign", "body": "UBND_TINH",
                                                      "officer": applied[0]}, key)
    assert again.status_code == 200, again.text
    other = next(o for o in officers if o != applied[0])
    assert_key_reused(await command(api, tokens.body, case_id, {"type": "assign", "body": "UBND_TINH",
                                                                "officer": other}, key))


@pytest.mark.parametrize("key, rule", [
    ("k" * 201, "string_too_long"),
    ("khóa-một".encode(), "string_pattern_mismatch"),  # not ASCII
    (b"tab\there", "string_pattern_mismatch"),  # a control character
])
async def test_a_malformed_key_is_422_and_sends_nothing(api: Api, tokens: Tokens, store: EventStore,
                                                        key: str | bytes, rule: str) -> None:
    case_id = await classified_case(api, tokens)
    before = await store.read_stream(case_id)
    response = await command(api, tokens.body, case_id, {"type": "accept", "decision_no": "1/QĐ"}, key)
    assert response.status_code == 422, response.text
    assert [(f["field"], f["rule"]) for f in response.json()["error"]["fields"]] == [("idempotency-key", rule)]
    assert await store.read_stream(case_id) == before


async def test_a_key_of_printable_ascii_with_spaces_and_symbols_is_accepted(api: Api, tokens: Tokens) -> None:
    case_id = await classified_case(api, tokens)
    key = f"KN-0001 accept/{uuid.uuid4().hex}?#%'\"\\"
    body = {"type": "accept", "decision_no": "2/QĐ"}
    assert (await command(api, tokens.body, case_id, body, key)).status_code == 200
    again = await command(api, tokens.body, case_id, body, key)
    assert again.status_code == 200, again.text


async def test_a_repair_key_reused_for_another_repair_or_operator_is_refused(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await classified_case(api, tokens)
    assert (await command(api, tokens.body, case_id, {"type": "accept", "decision_no": "3/QĐ"},
                          uuid.uuid4().hex)).status_code == 200
    key = uuid.uuid4().hex
    first = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator, json={"reason": REASON},
                           headers={"Idempotency-Key": key})
    assert first.status_code == 200 and first.json()["recorded"], first.text
    assert (await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator, json={"reason": REASON},
                           headers={"Idempotency-Key": key})).status_code == 200
    before = await store.read_stream(case_id)
    other_reason = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator,
                                  json={"reason": REASON + " lần hai"}, headers={"Idempotency-Key": key})
    assert_key_reused(other_reason, "the command")
    other_operator = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.other_operator,
                                    json={"reason": REASON}, headers={"Idempotency-Key": key})
    assert_key_reused(other_operator, "the sender")
    assert await store.read_stream(case_id) == before


async def test_a_retry_after_the_command_cost_the_sender_its_authority_still_learns_the_outcome(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    """A lead body gives the case to another body and loses the answer: its retry under the same key is the
    same request, answered as applied, not refused because the sender is no longer the lead."""
    lead = await token(store, "body", "SO_TAI_NGUYEN", label="cán bộ Sở Tài nguyên")
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source, receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["case_id"])
    classified = await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "SO_TAI_NGUYEN"},
                               uuid.uuid4().hex)
    assert classified.status_code == 200, classified.text
    key = uuid.uuid4().hex
    away = {"type": "assign", "body": "SO_NOI_VU", "officer": "Cán bộ Lê Hà"}
    first = await command(api, lead, case_id, away, key)
    assert first.status_code == 200 and first.json()["events"] == ["Assigned"], first.text
    # The former lead may no longer give the case to anyone...
    back = await command(api, lead, case_id, {"type": "assign", "body": "SO_TAI_NGUYEN"}, uuid.uuid4().hex)
    assert back.status_code == 403 and back.json()["error"]["code"] == "authority.assign", back.text
    # ...but its retry of what it did is answered, once.
    again = await command(api, lead, case_id, away, key)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True or again.json()["events"] == ["Assigned"]
    assert [e.type for e in await store.read_stream(case_id)].count("Assigned") == 1
    # Another sender, or another request, under that key gains nothing from it.
    stranger = await command(api, tokens.colleague, case_id, away, key)
    assert stranger.status_code in (403, 422), stranger.text
    other = await command(api, lead, case_id, {**away, "officer": "Cán bộ khác"}, key)
    assert other.status_code == 403, other.text
