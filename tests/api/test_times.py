"""Every moment in every answer at Vietnam's offset: no answer mixes `Z` with `+07:00` (`api.times`)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from pydantic import BaseModel

from api.times import in_vietnam
from eventstore import EventStore

from .support import Api, petition, token, unique

#: An ISO 8601 moment as pydantic writes one (date, time, optional fraction, offset or Z).
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def moments(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in moments(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [m for i, v in enumerate(value) for m in moments(v, f"{path}[{i}]")]
    if isinstance(value, str) and MOMENT.match(value):
        return [(path, value)]
    return []


def assert_vietnam_time(answer: Any) -> int:
    # An event's `data` is the stored record, quoted as it is so that its hash can be checked: exempt.
    found = [(p, v) for p, v in moments(answer) if ".data." not in p]
    wrong = [(p, v) for p, v in found if not v.endswith("+07:00")]
    assert not wrong, wrong
    return len(found)


class Tokens(BaseModel):
    intake: str
    source: str
    body: str
    supervisor: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("times")
    return Tokens(intake=await token(store, "intake", label=source), source=source,
                  body=await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh"),
                  supervisor=await token(store, "supervisor"))


async def test_every_answer_about_a_case_writes_its_moments_at_plus_seven(api: Api, tokens: Tokens) -> None:
    sent = petition(tokens.source, receiving_body="UBND_TINH")
    sent["content"] = "Ngày 2026-01-05T08:00:00Z ông Bình nộp đơn"  # text that looks like a moment is data
    opened = await api.post("/v1/petitions", tokens.intake, json=sent)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    counted = assert_vietnam_time(opened.json())
    answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.body,
                            json={"type": "classify", "lead_body": "UBND_TINH"},
                            headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 200, answer.text
    counted += assert_vietnam_time(answer.json())
    for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/history", "/v1/cases",  # a page of the list
                 f"/v1/cases/{case_id}/events", "/v1/events?limit=5"):  # the feed, written by orjson
        got = await api.get(path, tokens.supervisor)
        assert got.status_code == 200, (path, got.text)
        counted += assert_vietnam_time(got.json())
    assert counted >= 10  # received_at, created_at, updated_at, occurred_at of each event, deadlines...
    history = (await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)).json()
    received = history["events"][0]
    assert "2026-01-05T08:00:00Z" in str(received["data"]), received["data"]


def test_only_moments_move_and_they_keep_their_instant() -> None:
    class Inner(BaseModel):
        at: datetime
        text: str

    class Outer(BaseModel):
        items: list[Inner]
        by_key: dict[str, datetime]
        naive: datetime

    utc = datetime(2026, 12, 31, 20, 30, tzinfo=UTC)
    value = Outer(items=[Inner(at=utc, text="2026-12-31T20:30:00Z")], by_key={"a": utc},
                  naive=datetime(2026, 1, 1, 8, 0))
    moved = in_vietnam(value)
    assert moved.items[0].at == utc and moved.items[0].at.isoformat() == "2027-01-01T03:30:00+07:00"
    assert moved.items[0].text == "2026-12-31T20:30:00Z"
    assert moved.by_key["a"].isoformat() == "2027-01-01T03:30:00+07:00"
    assert moved.naive == datetime(2026, 1, 1, 8, 0)
    assert value.items[0].at.isoformat() == "2026-12-31T20:30:00+00:00"  # the original is left as it was
    untouched = Inner(at=moved.items[0].at, text="x")
    assert in_vietnam(untouched) is untouched
