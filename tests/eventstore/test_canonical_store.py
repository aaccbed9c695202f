"""No case fails its own verification: any JSON value a case can hold (integers of any size, floats, text in
any Unicode normalisation, nested lists and objects), appended to the real store by both paths (the one
statement and `danvan_append`), reads back exactly as its canonical form has it, and its chain verifies.

Hypothesis drives it; the store runs on a loop of its own thread so that each example is a plain call."""

from __future__ import annotations

import asyncio
import math
import threading
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore, InvalidEventError, NewEvent
from eventstore.canonical import nfc
from tests.conftest import migrated_database

T = TypeVar("T")
VIETNAMESE = ["Nguyễn Thị Hằng", "Ủy ban nhân dân", "khiếu nại", "Đảng ủy", "Mặt trận Tổ quốc", "ghi chú",
              "Bà Rịa – Vũng Tàu", "thuở", "Hòa/Hoà"]


def forms(text: str) -> list[str]:
    return [unicodedata.normalize(f, text) for f in ("NFC", "NFD", "NFKC", "NFKD")]


texts = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12),
    st.sampled_from([f for t in VIETNAMESE for f in forms(t)]),
    st.lists(st.sampled_from(["e", "\u0301", "\u0323", "\u0302", "a", "\u0306", "o", "\u031b", "u", " "]),
             max_size=8).map("".join),  # bare combining marks in any order: normalisation reorders them
)
numbers = st.one_of(
    st.integers(),  # unbounded: hypothesis goes past 64 bits
    st.integers(min_value=-(10**80), max_value=10**80),
    st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**19, 10**300]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, -0.0, 1e16, 1e300, 1.7976931348623157e308, 5e-324, 2.0**53 + 2, 1.5e-7, 123.456]),
)
values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=16,
)
documents = st.dictionaries(texts, values, max_size=5)


class LoopThread:
    """An event loop in a thread, holding the stores, for hypothesis's plain (synchronous) examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest_asyncio.fixture(scope="module")
async def canonical_db(new_database: Callable[[], Awaitable[str]]) -> str:
    return await migrated_database(new_database)


@pytest.fixture(scope="module")
def stores(canonical_db: str) -> Iterator[tuple[LoopThread, list[EventStore]]]:
    loop = LoopThread()
    opened = [loop.run(EventStore.open(canonical_db, max_size=2)) for _ in range(2)]
    opened[1].one_statement = False  # every append through danvan_append
    yield loop, opened
    for store in opened:
        loop.run(store.close())
    loop.stop()


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, a float equal to itself only (and 0.0 is -0.0 no more after normalising)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=documents, metadata=documents, reason=st.none() | texts, two=st.booleans(),
       offset=st.integers(min_value=-12 * 60, max_value=14 * 60), micro=st.integers(0, 999_999))
def test_any_case_data_reads_back_exactly_and_verifies(
    stores: tuple[LoopThread, list[EventStore]], data: dict[str, Any], metadata: dict[str, Any],
    reason: str | None, two: bool, offset: int, micro: int,
) -> None:
    loop, both = stores
    when = datetime(2026, 5, 1, 8, 0, 0, micro, tzinfo=timezone(timedelta(minutes=offset)))
    for store in both:
        stream = f"prop-{uuid.uuid4().hex[:12]}"
        events = [NewEvent(event_id=uuid.uuid4(), type="Ghi nhận", occurred_at=when, actor="cán bộ", reason=reason,
                           data=data, metadata=metadata) for _ in range(2 if two else 1)]
        loop.run(store.append(stream, 0, events))
        stored, report = loop.run(store.read_verified(stream))
        assert report.ok, report
        assert loop.run(store.verify(stream)).ok
        for event in stored:
            assert same(event.data, nfc(data)), (event.data, data)
            assert same(event.metadata, nfc(metadata))
            assert event.reason == nfc(reason)
            assert event.occurred_at == when.astimezone(UTC)


def test_an_integer_beyond_what_json_text_can_carry_is_refused_by_name(
    stores: tuple[LoopThread, list[EventStore]],
) -> None:
    loop, [store, _] = stores
    event = NewEvent(event_id=uuid.uuid4(), type="Ghi nhận", occurred_at=datetime.now(UTC),
                     data={"n": 10**5000})
    with pytest.raises(InvalidEventError, match="integer of more than 4300 digits"):
        loop.run(store.append(f"prop-{uuid.uuid4().hex[:12]}", 0, [event]))
