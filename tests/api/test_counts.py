"""Counts of cases for a dashboard: by status, kind, lead body and district, overdue and total."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest_asyncio

from eventstore import EventStore

from .support import Api, seed_case, token, unique, unique_body

ICT = timezone(timedelta(hours=7))


def groups(answer: dict[str, Any], name: str) -> dict[str, Any]:
    return {g["value"]: (g["count"], g["overdue"]) for g in answer[name]}


@pytest_asyncio.fixture(scope="module")
async def supervisor(store: EventStore) -> str:
    return await token(store, "supervisor", label="counts-supervisor")


async def test_the_counts_group_the_filtered_cases_by_status_kind_lead_body_and_district(
    api: Api, store: EventStore, supervisor: str
) -> None:
    district, other_district = unique("Huyện"), unique("Huyện")
    body_a, body_b = unique_body("A"), unique_body("B")
    seeded = [
        ("complaint", "received", body_a, district, False),
        ("complaint", "accepted", body_a, district, True),
        ("denunciation", "accepted", body_b, district, True),
        ("recommendation", "closed", None, district, False),
        ("complaint", "received", body_b, other_district, False),
    ]
    for kind, status, lead, where, overdue in seeded:
        await seed_case(store, kind=kind, status=status, lead_body=lead, district=where, overdue=overdue)

    response = await api.get("/v1/cases/counts", supervisor, params={"district": district})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["total"], answer["overdue"]) == (4, 2)
    assert groups(answer, "by_status") == {"received": (1, 0), "accepted": (2, 2), "closed": (1, 0)}
    assert groups(answer, "by_kind") == {"complaint": (2, 1), "denunciation": (1, 1), "recommendation": (1, 0)}
    assert groups(answer, "by_lead_body") == {body_a: (2, 1), body_b: (1, 1), None: (1, 0)}
    assert groups(answer, "by_district") == {district: (4, 2)}
    assert [g["count"] for g in answer["by_status"]] == [2, 1, 1]  # largest first

    overdue = (await api.get("/v1/cases/counts", supervisor, params={"district": district, "overdue": "true"})).json()
    assert (overdue["total"], overdue["overdue"]) == (2, 2)
    by_body = (await api.get("/v1/cases/counts", supervisor, params={"body": body_b})).json()
    assert groups(by_body, "by_district") == {district: (1, 1), other_district: (1, 0)}
    nothing = (await api.get("/v1/cases/counts", supervisor, params={"district": unique("none")})).json()
    assert nothing == {"total": 0, "overdue": 0, "by_status": [], "by_kind": [], "by_lead_body": [],
                       "by_district": []}


async def test_the_counts_agree_with_the_list_under_the_same_filters(
    api: Api, store: EventStore, supervisor: str
) -> None:
    district = unique("Huyện")
    for i in range(7):
        await seed_case(store, district=district, status="received" if i % 2 else "accepted", overdue=i % 3 == 0,
                        received_at=datetime(2026, 3, 1 + i, 9, 0, tzinfo=ICT))
    params = {"district": district, "received_from": "2026-03-02", "received_to": "2026-03-06"}
    listed = (await api.get("/v1/cases", supervisor, params={**params, "limit": 200})).json()["items"]
    counts = (await api.get("/v1/cases/counts", supervisor, params=params)).json()
    assert counts["total"] == len(listed) == 5
    assert counts["overdue"] == sum(1 for c in listed if c["overdue"])
    statuses: dict[str, int] = {}
    for c in listed:
        statuses[c["status"]] = statuses.get(c["status"], 0) + 1
    assert {g["value"]: g["count"] for g in counts["by_status"]} == statuses


async def test_a_body_token_counts_only_its_own_cases(api: Api, store: EventStore) -> None:
    body, other = unique_body(), unique_body()
    district = unique("Huyện")
    await seed_case(store, lead_body=body, district=district)
    await seed_case(store, lead_body=other, bodies=[body], district=district, overdue=True)
    await seed_case(store, lead_body=other, district=district)
    tok = await token(store, "body", body)
    mine = (await api.get("/v1/cases/counts", tok, params={"district": district})).json()
    assert (mine["total"], mine["overdue"]) == (2, 1)  # the case it leads and the one it coordinates
    assert groups(mine, "by_lead_body") == {body: (1, 0), other: (1, 1)}
    everything = (await api.get("/v1/cases/counts", tok)).json()
    assert everything["total"] == 2
    # Filtering by another body counts, among the cases it may read, those of that body: the one it coordinates.
    theirs = await api.get("/v1/cases/counts", tok, params={"body": other, "district": district})
    assert theirs.status_code == 200 and theirs.json()["total"] == 1


async def test_bad_count_filters_are_422_naming_the_field(api: Api, supervisor: str) -> None:
    bad = await api.get("/v1/cases/counts", supervisor, params={"received_from": "2026-05-02",
                                                                "received_to": "2026-05-01"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "received_to"
    bad = await api.get("/v1/cases/counts", supervisor, params={"overdue": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "overdue"


# -- a received-date range in the past is read through its own index (the list, `api.queries`) -----------


def test_a_past_range_is_read_by_received_date_and_a_recent_or_wide_one_by_the_newest_first_index() -> None:
    from datetime import date

    from api.queries import CaseFilter, fence_received_range

    today, oldest = date(2026, 11, 26), date(2023, 12, 1)

    def fenced(start: date | None, end: date | None) -> bool:
        return fence_received_range(CaseFilter(received_from=start, received_to=end), today, oldest)

    assert fenced(date(2025, 11, 1), date(2025, 11, 30))  # a month a year ago
    assert fenced(None, date(2024, 6, 30))  # until long ago: from the oldest case on
    assert not fenced(date(2026, 10, 27), today)  # the last month: the newest cases match at once
    assert not fenced(date(2026, 10, 27), None)  # open at its end
    assert not fenced(date(2024, 11, 26), date(2026, 11, 19))  # wide, ending a week ago
    assert not fenced(None, date(2026, 11, 20)) and not fenced(date(2026, 1, 1), date(2027, 1, 1))
    assert not fence_received_range(CaseFilter(received_to=date(2025, 1, 1)), today, None)  # no case at all


async def test_a_past_received_range_pages_through_every_case_once_either_way(
    api: Api, store: EventStore, supervisor: str
) -> None:
    from api.queries import CaseFilter, list_cases_sql

    district = unique("Huyện")
    seeded = {await seed_case(store, district=district, received_at=datetime(2024, 5, 1 + i, 9, 0, tzinfo=ICT))
              for i in range(7)}
    await seed_case(store, district=district, received_at=datetime(2026, 5, 1, 9, 0, tzinfo=ICT))  # outside
    params = {"district": district, "received_from": "2024-04-01", "received_to": "2024-05-31", "limit": 3}
    seen: list[str] = []
    cursor = None
    while True:
        page = (await api.get("/v1/cases", supervisor, params={**params, **({"cursor": cursor} if cursor else {})}))
        assert page.status_code == 200, page.text
        seen += [c["case_id"] for c in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == seeded
    filters = CaseFilter(district=district, received_from=datetime(2024, 4, 1).date(),
                         received_to=datetime(2024, 5, 31).date())
    rows = {}
    for fence in (False, True):
        sql, args = list_cases_sql(filters, limit=10, fence=fence)
        rows[fence] = [r["case_id"] for r in await store.pool.fetch(sql, *args)]
    assert rows[True] == rows[False] == seen
