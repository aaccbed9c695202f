"""Bad input at the API's edge: refused with 422 (or 413/415) naming the field and the rule, and nothing sealed,
started or stored. On the real app, PostgreSQL and the Temporal dev server."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.settings import Settings
from domain.petitions.model import petition_case_id
from eventstore import EventStore

from .support import Api, petition, running, token, unique


class Sender:
    def __init__(self, source: str, intake: str, body: str, supervisor: str) -> None:
        self.source, self.intake, self.body, self.supervisor = source, intake, body, supervisor


@pytest_asyncio.fixture(scope="module")
async def sender(store: EventStore) -> Sender:
    source = unique("edge")
    return Sender(source, await token(store, "intake", label=source),
                  await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh"), await token(store, "supervisor"))


def as_json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)


async def post_raw(api: Api, tok: str, raw: bytes, content_type: str | None = "application/json",
                   url: str = "/v1/petitions") -> Any:
    headers = {"Authorization": f"Bearer {tok}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.http.post(url, content=raw, headers=headers)


async def nothing_kept(store: EventStore, temporal_env: WorkflowEnvironment, case_id: str) -> None:
    """No event, no case row, no sealed identity, no workflow."""
    assert await store.stream_version(case_id) == 0
    assert await store.get_case(case_id) is None
    assert await store.pool.fetchval("SELECT count(*) FROM sealed_identities WHERE case_id = $1", case_id) == 0
    with pytest.raises(RPCError):
        await temporal_env.client.get_workflow_handle(case_id).describe()


def refused_on(answer: Any, field: str, rule: str, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    if status == 422:
        found = [{"field": f["field"], "rule": f["rule"]} for f in error["fields"]]
        assert {"field": field, "rule": rule} in found, error
    return error


BAD_TEXT = [
    ("subject", "Khiếu nại\u0000về đất", "text_nul"),
    ("content", "Nội dung \u0007 có chuông", "text_control"),
    ("petitioner.name", "Nguyễn\u001bVăn A", "text_control"),
    ("district", "Nam Sách\u0085", "text_control"),
]


@pytest.mark.parametrize(("field", "value", "rule"), BAD_TEXT, ids=[b[2] + ":" + b[0] for b in BAD_TEXT])
async def test_text_no_case_may_hold_is_refused_on_its_field_and_nothing_is_kept(
    api: Api, store: EventStore, temporal_env: WorkflowEnvironment, sender: Sender, field: str, value: str,
    rule: str,
) -> None:
    body = petition(sender.source)
    if field == "petitioner.name":
        body["petitioner"] = {**body["petitioner"], "name": value}
    else:
        body[field] = value
    answer = await api.post("/v1/petitions", sender.intake, json=body)
    error = refused_on(answer, field, rule)
    assert "U+" in error["fields"][0]["message"]
    await nothing_kept(store, temporal_env, petition_case_id(sender.source, body["external_ref"]))


async def test_a_lone_surrogate_a_key_with_a_nul_and_tab_or_newline_in_prose(
    api: Api, store: EventStore, temporal_env: WorkflowEnvironment, sender: Sender
) -> None:
    body = petition(sender.source)
    raw = as_json(body).replace('"Khiếu nại về', '"\\ud800 về')
    refused_on(await post_raw(api, sender.intake, raw.encode()), "subject", "text_surrogate")
    raw = as_json(body).replace('"district"', '"distr\\u0000ict"')
    refused_on(await post_raw(api, sender.intake, raw.encode()), "distr\u0000ict", "text_nul")
    await nothing_kept(store, temporal_env, petition_case_id(sender.source, body["external_ref"]))

    # Tab, line feed and carriage return are text: a letter has lines.
    letter = petition(sender.source, content="Kính gửi UBND tỉnh,\r\n\tTôi xin trình bày như sau.\nTrân trọng.")
    opened = await api.post("/v1/petitions", sender.intake, json=letter)
    assert opened.status_code == 201, opened.text


async def test_bodies_that_are_not_utf8_json_are_refused_on_body(
    api: Api, store: EventStore, temporal_env: WorkflowEnvironment, sender: Sender
) -> None:
    body = petition(sender.source)
    case_id = petition_case_id(sender.source, body["external_ref"])
    text = as_json(body)
    cases = [
        (text.replace("Khiếu", "Khi\udcffu").encode("utf-8", "surrogateescape"), "body_not_utf8"),
        (text.encode("utf-16"), "body_not_utf8"),
        (text[:-20].encode(), "json_invalid"),
        (text.replace('"channel": "post"', '"channel": NaN').encode(), "json_invalid"),
        (text.replace('"channel": "post"', '"channel": Infinity').encode(), "json_invalid"),
        (text.replace('"channel": "post"', '"channel": ' + "9" * 5000).encode(), "json_invalid"),
        (text.replace('"channel": "post"', '"channel": "post", "channel": "email"').encode(), "json_duplicate_key"),
        (text.replace('"channel": "post"', '"channel": ' + "[" * 40 + "]" * 40).encode(), "json_too_deep"),
        (text.replace('"channel": "post"', '"channel": ' + "[" * 200_000 + "]" * 200_000).encode(),
         "json_too_deep"),
    ]
    for raw, rule in cases:
        error = refused_on(await post_raw(api, sender.intake, raw), "body" if rule != "json_too_deep" else
                           error_place(raw), rule)
        assert error["code"] == "validation_failed"
    await nothing_kept(store, temporal_env, case_id)


def error_place(raw: bytes) -> str:
    """Where a too-deep document is refused: the place of its first value past the limit, or the body when it is
    too deep to read at all."""
    return "channel" + ".0" * 31 if raw.count(b"[") == 40 else "body"


async def test_size_and_media_type_are_refused_before_the_body_is_read(
    api: Api, store: EventStore, temporal_env: WorkflowEnvironment, sender: Sender
) -> None:
    body = petition(sender.source, content="x" * 2_000_000)
    huge = await api.post("/v1/petitions", sender.intake, json=body)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "too_large", huge.text
    assert "DANVAN_MAX_BODY_BYTES" in huge.json()["error"]["message"]

    body = petition(sender.source)
    raw = as_json(body).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        answer = await post_raw(api, sender.intake, raw, content_type)
        error = refused_on(answer, "", "", status=415)
        assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
    latin = await post_raw(api, sender.intake, raw, "application/json; charset=iso-8859-1")
    assert latin.status_code == 415 and "UTF-8" in latin.json()["error"]["message"]
    fine = await post_raw(api, sender.intake, raw, "application/json; charset=UTF-8")
    assert fine.status_code == 201, fine.text


async def test_dates_the_calendar_does_not_cover_and_a_receipt_in_the_future_are_refused_before_sealing(
    api: Api, store: EventStore, temporal_env: WorkflowEnvironment, sender: Sender
) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for received_at, rule in (("1850-01-01T09:00:00+07:00", "date_out_of_range"),
                              ("1999-12-31T23:00:00+07:00", "date_out_of_range"),
                              ("2150-01-01T09:00:00+07:00", "date_out_of_range"),
                              (future, "received_at.future")):
        body = petition(sender.source, received_at=received_at)
        answer = await api.post("/v1/petitions", sender.intake, json=body)
        error = refused_on(answer, "received_at", rule)
        if rule == "date_out_of_range":
            message = error["fields"][0]["message"]
            assert "2000-01-01" in message and "2098-12-31" in message, message
        await nothing_kept(store, temporal_env, petition_case_id(sender.source, body["external_ref"]))


async def test_a_command_with_bad_text_or_a_date_out_of_range_changes_nothing(
    api: Api, store: EventStore, temporal_env: WorkflowEnvironment, sender: Sender
) -> None:
    opened = await api.post("/v1/petitions", sender.intake, json=petition(sender.source, receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    version = await store.stream_version(case_id)
    history = len((await temporal_env.client.get_workflow_handle(case_id).fetch_history()).events)
    url = f"/v1/cases/{case_id}/commands"
    for command, field, rule in (
        ({"type": "classify", "lead_body": "UBND_TINH", "subject_category": "đất\u0000đai"}, "subject_category",
         "text_nul"),
        ({"type": "classify", "lead_body": "UBND_TINH", "reason": "lý do\u0008"}, "reason", "text_control"),
    ):
        answer = await api.post(url, sender.body, json=command, headers={"Idempotency-Key": str(uuid.uuid4())})
        refused_on(answer, field, rule)
    classified = await api.post(url, sender.body, json={"type": "classify", "lead_body": "UBND_TINH"})
    assert classified.status_code == 200, classified.text
    accepted = await api.post(url, sender.body, json={"type": "accept", "decision_no": "1/QĐ"})
    assert accepted.status_code == 200, accepted.text
    dialogue = {"type": "record_dialogue", "held_on": "1890-05-01", "participants": ["Bà Lan"],
                "summary": "Đối thoại"}
    answer = await api.post(url, sender.body, json=dialogue)
    refused_on(answer, "held_on", "date_out_of_range")
    assert await store.stream_version(case_id) == version + 2
    assert len((await temporal_env.client.get_workflow_handle(case_id).fetch_history()).events) > history


async def test_the_path_and_the_query_are_held_to_the_text_rules(api: Api, sender: Sender) -> None:
    for url, field, rule in (
        ("/v1/cases?district=Nam%00S%C3%A1ch", "district", "text_nul"),
        ("/v1/cases?district=%FF", "query", "text_not_utf8"),
        ("/v1/cases/pet-%00/history", "path", "text_nul"),
        ("/v1/cases/pet-%07", "path", "text_control"),
    ):
        answer = await api.get(url, sender.supervisor)
        refused_on(answer, field, rule)
    # A backslash or a quote in a filter is a character like any other: it finds nothing, and breaks nothing.
    for value in ("Nam\\Sách", "Nam'Sách", 'Nam"Sách', "%", "_"):
        answer = await api.get("/v1/cases", sender.supervisor, params={"district": value})
        assert answer.status_code == 200, (value, answer.text)


async def test_an_identity_sealed_for_a_petition_the_case_refuses_is_not_kept(
    api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment, store: EventStore, sender: Sender
) -> None:
    """An API configured for wider years than its workers: the petition passes the edge, is sealed, and its case
    refuses it. The identity sealed for it goes, and the case's refusal is the answer."""
    wider = dataclasses.replace(api_settings, calendar_first_year=1901)
    app = create_app(wider, database_url, temporal_client=temporal_env.client, token_cache_ttl=0.5)
    async with running(app) as wide:
        body = petition(sender.source, received_at="1950-03-01T09:00:00+07:00")
        answer = await wide.post("/v1/petitions", sender.intake, json=body)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "calendar.out_of_range"
        case_id = petition_case_id(sender.source, body["external_ref"])
        assert await store.pool.fetchval("SELECT count(*) FROM sealed_identities WHERE case_id = $1", case_id) == 0
        assert await store.stream_version(case_id) == 0 and await store.get_case(case_id) is None
        assert await temporal_env.client.get_workflow_handle(case_id).result() is None
