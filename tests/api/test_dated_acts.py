"""Dated acts through the HTTP API: `dated` sent, its deadlines counted from it, impossible dates refused with
their rule (and nothing changed), and the history showing the act's date beside the moment it was recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest_asyncio

from domain.calendar import VN_TZ
from eventstore import EventStore

from .support import Api, petition, token, unique


class Tokens:
    def __init__(self, intake: str, source: str, body: str) -> None:
        self.intake, self.source, self.body = intake, source, body


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("dated-backoffice")
    return Tokens(intake=await token(store, "intake", label=source), source=source,
                  body=await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh"))


async def send(api: Api, tokens: Tokens, case_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.body, json=body,
                            headers={"Idempotency-Key": unique("key")})
    return answer.status_code, answer.json()


async def test_an_act_dated_days_ago_counts_from_its_date_and_the_history_shows_both_times(
    api: Api, tokens: Tokens
) -> None:
    today = datetime.now(UTC).astimezone(VN_TZ).date()
    received = datetime.now(UTC) - timedelta(days=12)
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(
        tokens.source, received_at=received.isoformat(), receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert (await send(api, tokens, case_id, {"type": "classify", "lead_body": "UBND_TINH"}))[0] == 200

    refusals: list[tuple[dict[str, Any], int, str]] = [
        ({"dated": (today + timedelta(days=1)).isoformat()}, 409, "dated.future"),
        ({"dated": (received.astimezone(VN_TZ).date() - timedelta(days=1)).isoformat()}, 409,
         "dated.before_receipt"),
        ({"dated": "1999-12-31"}, 422, "date_out_of_range"),
        ({"dated": 20260101}, 422, "date_type"),
        ({"dated": "31/12/2026"}, 422, "date_"),
    ]
    for extra, status, rule in refusals:
        code, body = await send(api, tokens, case_id, {"type": "accept", "decision_no": "8/QĐ-UBND", **extra})
        assert code == status, body
        found = body["error"]["code"] if status == 409 else body["error"]["fields"][0]["rule"]
        assert found == rule or (rule.endswith("_") and found.startswith(rule)), body
    case = await api.get(f"/v1/cases/{case_id}", tokens.body)
    assert case.json()["status"] == "classified"  # nothing refused changed the case

    signed = today - timedelta(days=3)
    code, body = await send(api, tokens, case_id, {"type": "accept", "decision_no": "8/QĐ-UBND",
                                                   "dated": signed.isoformat()})
    assert code == 200, body
    resolution = next(d for d in body["case"]["deadlines"] if d["key"] == "complaint.resolution")
    assert resolution["started_on"] == signed.isoformat()
    acceptance = next(d for d in body["case"]["deadlines"] if d["key"] == "complaint.acceptance")
    assert acceptance["met_on"] == signed.isoformat()

    history = (await api.get(f"/v1/cases/{case_id}/history?include=process", tokens.body)).json()
    accepted = next(e for e in history["events"] if e["type"] == "AcceptanceDecided")
    assert accepted["data"]["dated"] == signed.isoformat()
    assert date.fromisoformat(accepted["occurred_at"][:10]) == today
    entry = next(e for e in history["timeline"] if e.get("type") == "AcceptanceDecided")
    assert entry["dated"] == signed.isoformat() and entry["occurred_at"].endswith("+07:00")


async def test_the_openapi_schema_documents_dated_on_the_commands_of_written_acts(api: Api) -> None:
    schema = (await api.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("Accept", "Decide", "Notify", "Extend", "Suspend", "Resume"):
        dated = schema[name]["properties"]["dated"]
        text = str(dated)
        assert "date" in text and "today" in text, (name, dated)
    assert "dated" not in schema["RecordVerification"]["properties"]
