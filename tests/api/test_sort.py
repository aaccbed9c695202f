"""The case list in the orders a clerk needs: by next due date and by receipt, paged by a cursor of that order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from eventstore import EventStore

from .support import Api, seed_case, token, unique


@pytest_asyncio.fixture(scope="module")
async def supervisor(store: EventStore) -> str:
    return await token(store, "supervisor", label="sort-supervisor")


async def pages(api: Api, tok: str, **params: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = await api.get("/v1/cases", tok, params=query)
        assert answer.status_code == 200, answer.text
        ids += [item["case_id"] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return ids


async def test_sorted_by_due_date_and_by_receipt_every_case_once_in_order(
    api: Api, store: EventStore, supervisor: str
) -> None:
    district = unique("Huyện")
    now = datetime.now(UTC)
    made = {}
    for name, due, received in (("a", 5, 1), ("b", 1, 9), ("c", None, 3), ("d", 5, 2), ("e", 3, None)):
        made[name] = await seed_case(store, district=district,
                                     due_at=now + timedelta(days=due) if due is not None else None,
                                     received_at=now - timedelta(days=received) if received is not None else None)
    by_due = await pages(api, supervisor, district=district, sort="due_at")
    assert by_due[:3] == [made["b"], made["e"], *sorted([made["a"], made["d"]])[:1]]
    assert set(by_due[2:4]) == {made["a"], made["d"]} and by_due[4] == made["c"]  # no deadline last
    newest = await pages(api, supervisor, district=district, sort="-received_at")
    assert newest == [made["a"], made["d"], made["c"], made["b"], made["e"]]
    oldest = await pages(api, supervisor, district=district, sort="received_at")
    assert oldest == [made["e"], made["b"], made["c"], made["d"], made["a"]]
    default = await pages(api, supervisor, district=district)
    assert default == [made[n] for n in "edcba"]  # newest created first


@pytest.mark.parametrize("other", ["due_at", "-created_at"])
async def test_a_cursor_of_another_order_is_refused(api: Api, store: EventStore, supervisor: str, other: str) -> None:
    district = unique("Huyện")
    for _ in range(3):
        await seed_case(store, district=district, due_at=datetime.now(UTC))
    first = await api.get("/v1/cases", supervisor, params={"district": district, "limit": 1, "sort": "-received_at"})
    cursor = first.json()["next_cursor"]
    answer = await api.get("/v1/cases", supervisor, params={"district": district, "sort": other, "cursor": cursor})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["fields"][0]["rule"] == "cursor_invalid"
    bad = await api.get("/v1/cases", supervisor, params={"sort": "title"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "sort"
