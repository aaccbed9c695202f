"""Reading cases: state, history with its hash chain, Vietnamese text, the list's paging and filters."""

from __future__ import annotations

import itertools
import json
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest_asyncio

from eventstore import EventStore

from .support import Api, seed_case, token, unique, unique_body

ICT = timezone(timedelta(hours=7))
TITLE = "Đơn khiếu nại về bồi thường đất đai ở xã Nam Sách"


@pytest_asyncio.fixture(scope="module")
async def supervisor(store: EventStore) -> str:
    return await token(store, "supervisor", label="cases-supervisor")


async def list_all(api: Api, tok: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/v1/cases", tok, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_a_case_reads_back_as_its_projection_row(api: Api, store: EventStore, supervisor: str) -> None:
    case_id = await seed_case(
        store, kind="denunciation", status="accepted", lead_body="ubnd-huyen", bodies=["mttq"], district="Kinh Môn"
    )
    response = await api.get(f"/v1/cases/{case_id}", supervisor)
    assert response.status_code == 200
    body = response.json()
    assert body["case_id"] == case_id
    assert (body["kind"], body["status"], body["lead_body"], body["bodies"]) == (
        "denunciation",
        "accepted",
        "ubnd-huyen",
        ["mttq"],
    )
    assert body["version"] == 1


async def test_history_returns_the_events_in_order_with_linked_hashes(
    api: Api, store: EventStore, supervisor: str
) -> None:
    case_id = await seed_case(store, events=4)
    response = await api.get(f"/v1/cases/{case_id}/history", supervisor)
    assert response.status_code == 200, response.text
    history = response.json()
    assert history["case_id"] == case_id and history["version"] == 4
    assert history["integrity"] == {"ok": True, "first_bad_version": None, "problem": None}
    events = history["events"]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    assert [e["type"] for e in events] == ["TestEvent1", "TestEvent2", "TestEvent3", "TestEvent4"]
    assert events[0]["prev_hash"] == "0" * 64
    for before, after in itertools.pairwise(events):
        assert after["prev_hash"] == before["hash"]
    assert set(events[0]) >= {
        "version", "type", "occurred_at", "recorded_at", "actor", "reason", "legal_basis", "data",
        "hash", "prev_hash", "event_id", "schema_version",
    }  # fmt: skip
    assert events[0]["legal_basis"] == "Luật Khiếu nại 2011, Điều 28"
    assert events[1]["data"] == {"n": 2, "note": "ghi chú"}


async def test_history_names_the_first_tampered_version(api: Api, store: EventStore, supervisor: str) -> None:
    case_id = await seed_case(store, events=4)
    await store.pool.execute(
        """UPDATE events SET data = data || '{"n": 99}'::jsonb WHERE stream_id = $1 AND version = 3""", case_id
    )
    response = await api.get(f"/v1/cases/{case_id}/history", supervisor)
    assert response.status_code == 200
    integrity = response.json()["integrity"]
    assert integrity["ok"] is False
    assert integrity["first_bad_version"] == 3
    assert "hash" in integrity["problem"]
    assert response.json()["events"][2]["data"]["n"] == 99  # the history still shows what is stored


async def test_vietnamese_text_round_trips_in_nfc_as_raw_utf8(api: Api, store: EventStore, supervisor: str) -> None:
    district = unique("Nam Sách")
    case_id = await seed_case(store, title=TITLE, district=district, commune="xã An Lâm", source="Cổng dịch vụ công")
    response = await api.get(f"/v1/cases/{case_id}", supervisor)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert TITLE.encode("utf-8") in response.content
    assert b"\\u" not in response.content
    body = json.loads(response.content.decode("utf-8"))
    assert body["title"] == TITLE
    assert unicodedata.is_normalized("NFC", body["title"])
    assert body["title"].encode("utf-8") == unicodedata.normalize("NFC", TITLE).encode("utf-8")

    history = await api.get(f"/v1/cases/{case_id}/history", supervisor)
    assert "ghi chú".encode() in history.content and b"\\u" not in history.content

    # A filter value typed in decomposed form (NFD) finds the NFC-stored case.
    listed = await list_all(api, supervisor, district=unicodedata.normalize("NFD", district))
    assert [c["case_id"] for c in listed] == [case_id]
    assert TITLE.encode("utf-8") in (await api.get("/v1/cases", supervisor, params={"district": district})).content


async def test_decomposed_text_is_stored_and_returned_in_nfc(api: Api, store: EventStore, supervisor: str) -> None:
    case_id = await seed_case(store, title=unicodedata.normalize("NFD", TITLE))
    body = (await api.get(f"/v1/cases/{case_id}", supervisor)).json()
    assert body["title"].encode("utf-8") == TITLE.encode("utf-8")


async def test_paging_with_the_cursor_returns_every_case_exactly_once(
    api: Api, store: EventStore, supervisor: str
) -> None:
    district = unique("Huyện")  # the test's own cases
    seeded = [await seed_case(store, district=district) for _ in range(7)]
    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"district": district, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/cases", supervisor, params=params)).json()
        pages.append([c["case_id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [case for page in pages for case in page]
    assert sorted(flat) == sorted(seeded)
    assert flat == list(reversed(seeded))  # newest first


async def test_a_page_that_ends_exactly_at_the_limit_has_no_next_cursor(
    api: Api, store: EventStore, supervisor: str
) -> None:
    district = unique("Huyện")
    for _ in range(3):
        await seed_case(store, district=district)
    page = (await api.get("/v1/cases", supervisor, params={"district": district, "limit": 3})).json()
    assert len(page["items"]) == 3 and page["next_cursor"] is None


async def test_the_list_filters_by_kind_status_body_district_overdue_and_received_dates(
    api: Api, store: EventStore, supervisor: str
) -> None:
    kind, body, d1, d2 = "voter_petition", unique_body(), unique("district"), unique("district")
    c1 = await seed_case(
        store, kind=kind, status="received", district=d1, lead_body=body,
        received_at=datetime(2026, 1, 10, 9, 0, tzinfo=ICT),
    )  # fmt: skip
    c2 = await seed_case(
        store, kind=kind, status="accepted", district=d2, bodies=[body], overdue=True,
        received_at=datetime(2026, 1, 11, 9, 0, tzinfo=ICT),
    )  # fmt: skip
    c3 = await seed_case(
        store, kind=kind, status="accepted", district=d1,
        received_at=datetime(2026, 1, 12, 23, 30, tzinfo=ICT),  # still 12 January in the province
    )  # fmt: skip
    c4 = await seed_case(
        store, kind=kind, status="closed", district=d2,
        received_at=datetime(2026, 1, 13, 0, 30, tzinfo=ICT),  # 12 January in UTC, 13th in the province
    )  # fmt: skip

    mine = {c1, c2, c3, c4}

    async def ids(**params: Any) -> set[str]:  # among the test's own cases
        return mine & {c["case_id"] for c in await list_all(api, supervisor, kind=kind, **params)}

    assert await ids() == {c1, c2, c3, c4}
    assert await ids(status="accepted") == {c2, c3}
    assert await ids(district=d1) == {c1, c3}
    assert await ids(status="accepted", district=d1) == {c3}
    assert await ids(body=body) == {c1, c2}
    assert await ids(overdue="true") == {c2}
    assert await ids(overdue="false") == {c1, c3, c4}
    assert await ids(received_from="2026-01-11", received_to="2026-01-12") == {c2, c3}
    assert await ids(received_to="2026-01-12") == {c1, c2, c3}
    assert await ids(received_from="2026-01-13") == {c4}
    misspelt = await api.get("/v1/cases", supervisor, params={"kind": kind, "stauts": "accepted"})
    assert misspelt.status_code == 422  # an unknown parameter is refused, never read as no filter
    assert [(f["field"], f["rule"]) for f in misspelt.json()["error"]["fields"]] == [("stauts", "extra_forbidden")]
    assert not mine & {c["case_id"] for c in await list_all(api, supervisor, kind="plan_task", district=d1)}
    assert await list_all(api, supervisor, district=unique("no-such-district")) == []
