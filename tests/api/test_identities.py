"""Every petitioner sealed at intake; who reads the identity, under which regime; erasure; the codec endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from temporalio.api.common.v1 import Payload

from api.console.session import SESSION_COOKIE
from api.identities import IdentityVault
from api.sessions import create_session
from api.tokens import hash_token
from domain.petitions.model import petition_case_id
from eventstore import CaseRow, EventStore, NewEvent

from .support import Api, petition, seed_case, token, unique

NAME = "Đỗ Thị Bích Ngọc"
PHONE = "0903111222"
ID_NUMBER = "001199012345"


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    source: str
    intake: str
    lead: str
    coordinator: str
    supervisor: str
    operator: str
    admin: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("seal-backoffice")
    return Tokens(
        source=source, intake=await token(store, "intake", label=source),
        lead=await token(store, "body", "UBND_TINH", label="chuyên viên UBND tỉnh"),
        coordinator=await token(store, "body", "SO_TAI_NGUYEN", label="chuyên viên Sở TN&MT"),
        supervisor=await token(store, "supervisor", label="giám sát viên"),
        operator=await token(store, "operator", label="vận hành"), admin=await token(store, "admin", label="quản trị"),
    )


def identity() -> dict[str, str]:
    return {"name": NAME, "address": "Thôn Thượng, xã Hồng Phong", "phone": PHONE, "id_number": ID_NUMBER,
            "email": "ngoc.do@thu.vn"}


async def open_case(api: Api, tokens: Tokens, kind: str = "complaint", **overrides: Any) -> dict[str, Any]:
    body = petition(tokens.source, kind=kind, receiving_body="UBND_TINH", petitioner=identity())
    body.update(overrides)
    opened = await api.post("/v1/petitions", tokens.intake, json=body)
    assert opened.status_code == 201, opened.text
    return {"body": body, **opened.json()}


async def send(api: Api, tok: str, case_id: str, command: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post(f"/v1/cases/{case_id}/commands", tok, json=command)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def petitioner(api: Api, tok: str, case_id: str, purpose: str = "liên hệ người gửi đơn") -> Any:
    return await api.get(f"/v1/cases/{case_id}/petitioner", tok, params={"purpose": purpose})


async def reads(api: Api, tokens: Tokens, case_id: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/cases/{case_id}/reads", tokens.supervisor)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["reads"]
    return found


async def test_a_complaint_is_sealed_at_intake_and_its_lead_body_and_supervisors_read_its_petitioner(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    opened = await open_case(api, tokens)
    case_id = opened["case_id"]
    ref = opened["case"]["petitioner_ref"]
    assert ref.startswith("sealed-") and NAME not in str({k: v for k, v in opened.items() if k != "body"})
    first = (await store.read_stream(case_id))[0]
    assert first.data["intake"]["petitioner"] == {
        "name": None, "address": None, "phone": None, "email": None, "id_number": None, "ref": ref, "count": 1,
        "named": True, "traceable": True}

    # The same petition again is the same case; the same source and external_ref with another person is not.
    again = await api.post("/v1/petitions", tokens.intake, json=opened["body"])
    assert again.status_code == 200 and again.json()["case_id"] == case_id
    other = {**opened["body"], "petitioner": {**identity(), "phone": "0900000000"}}
    conflict = await api.post("/v1/petitions", tokens.intake, json=other)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "petition.conflict"
    assert PHONE not in conflict.text

    await send(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    for tok in (tokens.lead, tokens.supervisor):
        got = await petitioner(api, tok, case_id)
        assert got.status_code == 200, got.text
        assert got.json()["name"] == NAME and got.json()["id_number"] == ID_NUMBER
        assert got.headers["cache-control"] == "no-store"
    for tok in (tokens.coordinator, tokens.operator, tokens.admin, tokens.intake):
        refused = await petitioner(api, tok, case_id)
        assert refused.status_code == 403 and NAME not in refused.text
    logged = await store.pool.fetch("SELECT role FROM identity_reads WHERE case_id = $1 ORDER BY id", case_id)
    assert [r["role"] for r in logged] == ["body", "supervisor"]
    # A complaint is not under the denunciation regime: reading the case is not audited.
    assert (await api.get(f"/v1/cases/{case_id}", tokens.supervisor)).status_code == 200
    assert await reads(api, tokens, case_id) == []


async def test_a_complaint_reclassified_as_a_denunciation_keeps_its_seal_and_is_read_under_that_regime(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = (await open_case(api, tokens))["case_id"]
    await send(api, tokens.lead, case_id, {"type": "classify", "kind": "denunciation", "lead_body": "UBND_TINH"})
    await send(api, tokens.lead, case_id, {"type": "accept", "decision_no": "7/QĐ"})
    await send(api, tokens.lead, case_id, {"type": "request_coordination", "subject": "Xác minh",
                                            "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5}]})
    for tok in (tokens.coordinator, tokens.lead, tokens.supervisor):
        history = await api.get(f"/v1/cases/{case_id}/history", tok)
        assert history.status_code == 200 and NAME not in history.text and PHONE not in history.text
    refused = await petitioner(api, tokens.coordinator, case_id)
    assert refused.status_code == 403
    assert (await petitioner(api, tokens.lead, case_id)).json()["phone"] == PHONE
    assert [r["body"] for r in await reads(api, tokens, case_id)] == [None, "UBND_TINH", "SO_TAI_NGUYEN"]


async def test_a_letter_split_with_a_denouncing_part_puts_every_part_and_the_letter_under_that_regime(
    api: Api, tokens: Tokens
) -> None:
    case_id = (await open_case(api, tokens))["case_id"]
    split = await send(api, tokens.lead, case_id, {"type": "split", "parts": [
        {"kind": "complaint", "subject": "Khiếu nại", "content": "Phần khiếu nại."},
        {"kind": "denunciation", "subject": "Tố cáo", "content": "Phần tố cáo."}]})
    complaint_part, denunciation_part = split["case"]["linked_cases"]
    for part in (complaint_part, denunciation_part):
        for _ in range(100):
            found = await api.get(f"/v1/cases/{part}", tokens.supervisor)
            if found.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert found.json()["summary"]["petitioner_ref"] == split["case"]["petitioner_ref"]
        assert (await petitioner(api, tokens.lead, part)).json()["name"] == NAME
    # The complaint part and the letter itself were never denunciations, but carry the denouncer's identity.
    for case in (complaint_part, case_id):
        assert (await api.get(f"/v1/cases/{case}", tokens.operator)).status_code == 200
        assert [r["role"] for r in await reads(api, tokens, case)][:1] == ["operator"]


async def test_an_identity_recorded_in_clear_before_sealing_is_never_shown_in_a_history(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = unique("pet-legacy")
    received = NewEvent(event_id=uuid.uuid4(), type="PetitionReceived", occurred_at=datetime.now(UTC),
                        data={"intake": {"kind": "complaint", "subject": "Đơn cũ",
                                         "petitioner": {"name": NAME, "phone": PHONE, "address": "Xã Cũ",
                                                        "email": None, "id_number": None, "ref": None, "count": 2}}})
    await store.append(case_id, 0, [received], CaseRow(kind="complaint", status="received", lead_body="UBND_TINH"))
    history = await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)
    assert history.status_code == 200 and history.json()["integrity"]["ok"]
    assert history.json()["events"][0]["data"]["intake"]["petitioner"] == {
        "ref": None, "count": 2, "named": True, "traceable": True, "withheld": True}
    assert NAME not in history.text and PHONE not in history.text
    assert (await store.read_stream(case_id))[0].data["intake"]["petitioner"]["name"] == NAME  # stored as it was
    # Its lead body still reads it where identities are read, and the read is recorded like any other.
    assert (await petitioner(api, tokens.coordinator, case_id)).status_code == 403
    got = await petitioner(api, tokens.lead, case_id, purpose="thông báo kết quả")
    assert got.status_code == 200 and got.json()["name"] == NAME and got.json()["ref"] == "in-event"
    logged = await store.pool.fetch("SELECT ref, purpose FROM identity_reads WHERE case_id = $1", case_id)
    assert [(r["ref"], r["purpose"]) for r in logged] == [("in-event", "thông báo kết quả")]


async def test_a_petition_received_in_clear_before_sealing_is_recognised_when_sent_again(
    api: Api, tokens: Tokens, temporal_env: Any, store: EventStore
) -> None:
    """A case opened before every petitioner was sealed holds its petitioner in clear; the same petition sent
    again is the same case, and another person under its source and external_ref is still a conflict."""
    from domain.petitions.model import PetitionIntake
    from workflows.client import open_petition as open_directly

    body = petition(tokens.source, receiving_body="UBND_TINH", petitioner=identity())
    opened = await open_directly(temporal_env.client, PetitionIntake.model_validate(body))  # as before sealing
    assert (await store.read_stream(opened.case.case_id))[0].data["intake"]["petitioner"]["name"] == NAME
    other = {**body, "petitioner": {**identity(), "name": "Người Khác"}}  # compared with the first event
    conflict = await api.post("/v1/petitions", tokens.intake, json=other)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "petition.conflict"
    assert await store.pool.fetchval("SELECT count(*) FROM sealed_identities WHERE case_id = $1",
                                     opened.case.case_id) == 0  # nothing sealed for the wrong person
    again = await api.post("/v1/petitions", tokens.intake, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == opened.case.case_id and again.json()["created"] is False
    got = await petitioner(api, tokens.lead, opened.case.case_id)
    assert got.status_code == 200 and got.json()["name"] == NAME


async def test_a_denunciation_sealed_before_the_sealed_facts_were_kept_is_recognised_when_sent_again(
    api: Api, tokens: Tokens, temporal_env: Any
) -> None:
    from domain.petitions.model import Petitioner, PetitionIntake
    from workflows.client import open_petition as open_directly

    vault: IdentityVault = api.app.state.vault
    body = petition(tokens.source, kind="denunciation", receiving_body="UBND_TINH",
                    petitioner={"name": NAME, "phone": PHONE})
    ref = vault.ref_for(tokens.source, body["external_ref"])
    nonce = b"\x02" * 12
    clear = json.dumps({"address": None, "email": None, "id_number": None, "name": NAME, "phone": PHONE},
                       ensure_ascii=False, sort_keys=True)
    await vault.pool.execute(  # as 0004 sealed it: under the secret's own key, the case holding the ref alone
        "INSERT INTO sealed_identities (ref, case_id, nonce, ciphertext, key_id) VALUES ($1, $2, $3, $4, $5)",
        ref, petition_case_id(tokens.source, body["external_ref"]), nonce,
        vault.aead.encrypt(nonce, clear.encode(), ref.encode()), vault.key_id)
    old = PetitionIntake.model_validate({**body, "petitioner": {"ref": ref}})
    opened = await open_directly(temporal_env.client, old)
    again = await api.post("/v1/petitions", tokens.intake, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == opened.case.case_id and again.json()["created"] is False
    assert Petitioner(ref=ref).anonymous is False  # and its classification decides as it did
    other = await api.post("/v1/petitions", tokens.intake, json={**body, "petitioner": {"name": "Người Khác"}})
    assert other.status_code == 409 and other.json()["error"]["code"] == "petition.conflict"


async def test_an_erased_identity_answers_that_it_was_erased_and_every_chain_still_verifies(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    opened = await open_case(api, tokens, kind="denunciation")
    case_id, ref = opened["case_id"], opened["case"]["petitioner_ref"]
    await send(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    short = await api.post(f"/v1/identities/{ref}/erase", tokens.admin, json={"reason": "ngắn"})
    assert short.status_code == 422 and short.json()["error"]["fields"][0]["field"] == "reason"
    assert (await petitioner(api, tokens.supervisor, case_id)).status_code == 200  # nothing changed
    unknown = await api.post(f"/v1/identities/sealed-{uuid.uuid4().hex[:24]}/erase", tokens.admin,
                             json={"reason": "không có danh tính này"})
    assert unknown.status_code == 404

    erased = await api.post(f"/v1/identities/{ref}/erase", tokens.admin,
                            json={"reason": "người tố cáo rút đơn và yêu cầu xoá"})
    assert erased.status_code == 200, erased.text
    record = erased.json()
    assert record["ref"] == ref and record["case_id"] == case_id and record["erased_by"] == "quản trị"
    assert record["role"] == "admin" and record["reason"] == "người tố cáo rút đơn và yêu cầu xoá"

    gone = await petitioner(api, tokens.lead, case_id)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "identity.erased"
    assert NAME not in gone.text
    row = await store.pool.fetchrow("SELECT nonce, ciphertext, wrapped_key FROM sealed_identities WHERE ref = $1", ref)
    assert tuple(row) == (None, None, None)
    report = await store.verify(case_id)
    assert report.ok
    # The case goes on without it.
    assert (await send(api, tokens.lead, case_id, {"type": "accept", "decision_no": "8/QĐ"}))["status"] == "accepted"
    assert (await store.verify(case_id)).ok


async def test_an_identity_sealed_before_identities_had_their_own_keys_is_read_and_erased(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    """A row of 0004 (ciphertext under the secret's own key, no data key) still opens, and erasing it destroys
    its ciphertext."""
    vault: IdentityVault = api.app.state.vault
    source, external_ref = tokens.source, unique("old")
    case_id, ref = petition_case_id(source, external_ref), vault.ref_for(source, external_ref)
    nonce = b"\x01" * 12
    clear = '{"address": null, "email": null, "id_number": null, "name": "Ông Cũ", "phone": null}'
    await store.pool.execute(
        "INSERT INTO sealed_identities (ref, case_id, nonce, ciphertext, key_id) VALUES ($1, $2, $3, $4, $5)",
        ref, case_id, nonce, vault.aead.encrypt(nonce, clear.encode(), ref.encode()), vault.key_id)
    await seed_case(store, case_id=case_id, kind="denunciation", lead_body="UBND_TINH",
                    summary={"petitioner_ref": ref})
    assert (await petitioner(api, tokens.supervisor, case_id)).json()["name"] == "Ông Cũ"
    assert (await api.post(f"/v1/identities/{ref}/erase", tokens.admin,
                           json={"reason": "dữ liệu cũ cần xoá"})).status_code == 200
    assert (await petitioner(api, tokens.supervisor, case_id)).status_code == 410


# -- the codec endpoint ---------------------------------------------------------------------------------------


def as_json(payload: Payload) -> dict[str, Any]:
    return {"metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            "data": base64.b64encode(payload.data).decode()}


async def test_the_codec_endpoint_decodes_for_cleared_roles_and_refuses_everyone_else(
    api: Api, tokens: Tokens
) -> None:
    clear = Payload(metadata={"encoding": b"json/plain"}, data=f'{{"name": "{NAME}"}}'.encode())
    (sealed,) = await api.app.state.codec.encode([clear])
    body = {"payloads": [as_json(sealed), as_json(clear)]}
    for tok in (tokens.supervisor, tokens.operator, tokens.admin):
        decoded = await api.post("/codec/decode", tok, json=body)
        assert decoded.status_code == 200, decoded.text
        assert decoded.json()["payloads"] == [as_json(clear), as_json(clear)]  # the second passed through
    for tok in (tokens.lead, tokens.intake):
        refused = await api.post("/codec/decode", tok, json=body)
        assert refused.status_code == 403 and NAME not in refused.text
    anonymous = await api.http.post("/codec/decode", json=body)
    assert anonymous.status_code == 401
    # By the console's session, where its cookie reaches (`/console/codec`).
    pool = api.app.state.store.pool
    supervisor_session = await create_session(pool, hash_token(tokens.supervisor), absolute=600)
    lead_session = await create_session(pool, hash_token(tokens.lead), absolute=600)
    by_cookie = await api.http.post("/console/codec/decode", json=body,
                                    headers={"Cookie": f"{SESSION_COOKIE}={supervisor_session}"})
    assert by_cookie.status_code == 200 and by_cookie.json()["payloads"][0] == as_json(clear)
    uncleared = await api.http.post("/console/codec/decode", json=body,
                                    headers={"Cookie": f"{SESSION_COOKIE}={lead_session}"})
    assert uncleared.status_code == 403
    # The bearer token itself in the cookie opens nothing: the cookie carries a session id only.
    token_as_cookie = await api.http.post("/console/codec/decode", json=body,
                                          headers={"Cookie": f"{SESSION_COOKIE}={tokens.supervisor}"})
    assert token_as_cookie.status_code == 401

    encoded = await api.post("/codec/encode", tokens.operator, json={"payloads": [as_json(clear)]})
    assert encoded.status_code == 200
    (again,) = encoded.json()["payloads"]
    assert base64.b64decode(again["metadata"]["encoding"]) == b"binary/encrypted"
    assert (await api.post("/codec/decode", tokens.supervisor, json={"payloads": [again]})).json()["payloads"] == [
        as_json(clear)]
    bad = await api.post("/codec/decode", tokens.supervisor, json={"payloads": [{"data": "not base64 !"}]})
    assert bad.status_code == 422


async def test_temporal_holds_only_encrypted_payloads_and_the_history_replays_with_the_production_converter(
    api: Api, tokens: Tokens, temporal_env: Any
) -> None:
    from temporalio.worker import Replayer

    from worker import project_converter
    from workflows import ALL_WORKFLOWS

    opened = await open_case(api, tokens)
    case_id = opened["case_id"]
    await send(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    history = await temporal_env.client.get_workflow_handle(case_id).fetch_history()
    text = history.to_json()
    encodings: list[bytes] = []
    plain = base64.b64encode(b"json/plain").decode()

    def walk(node: Any) -> None:  # every payload but the search attributes, which the server indexes in clear
        if isinstance(node, dict):
            if "metadata" in node and "encoding" in node.get("metadata", {}):
                data = json.loads(base64.b64decode(node["data"])) if node["metadata"]["encoding"] == plain else None
                if not (isinstance(data, dict) and set(data) == {"id", "deprecated"}):  # the SDK's patch markers
                    encodings.append(base64.b64decode(node["metadata"]["encoding"]))
            for key, value in node.items():
                if key != "searchAttributes":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(text))
    assert len(encodings) > 5 and set(encodings) == {b"binary/encrypted"}
    assert opened["body"]["subject"] not in text and NAME not in text
    result = await Replayer(workflows=ALL_WORKFLOWS, data_converter=project_converter()).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None
