"""The event store's contract, against a real PostgreSQL.

Written as one suite over the `event_store` fixture, so any other implementation of the store (a
partitioned one, another database) is held to the same rules by parametrising that fixture.
"""

from __future__ import annotations

import asyncio
import random
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from pydantic import ValidationError

from eventstore import (
    CaseRow,
    ConcurrencyError,
    EventIdConflictError,
    EventStore,
    FeedCursor,
    InvalidEventError,
    NewEvent,
    StoreUnavailableError,
)
from eventstore.canonical import canonical_text, chain_hash
from tests.conftest import migrated_database

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def ev(n: int = 0, *, data: dict[str, Any] | None = None, type_: str = "Noted",
       event_id: uuid.UUID | None = None) -> NewEvent:
    return NewEvent(
        event_id=event_id or uuid.uuid4(),
        type=type_,
        occurred_at=T0 + timedelta(minutes=n),
        actor="system",
        data=data if data is not None else {"n": n},
    )


def sid(label: str = "s") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["one statement", "function"])
def event_store(store: EventStore, request: pytest.FixtureRequest) -> EventStore:
    """The store as the application uses it, and with every append through `danvan_append` (the path a
    single-event append takes when it is not in the plain case, and every batch takes)."""
    return EventStore(store.pool, one_statement=request.param == "one statement")


async def fresh_store(new_database: Callable[[], Awaitable[str]]) -> EventStore:
    return await EventStore.open(await migrated_database(new_database), max_size=12)


@pytest_asyncio.fixture
async def isolated_store(new_database: Callable[[], Awaitable[str]]) -> AsyncIterator[EventStore]:
    """A store on its own database, for tests that tamper with rows or read the whole feed."""
    s = await fresh_store(new_database)
    yield s
    await s.close()


class TestAppendAndRead:
    async def test_appended_events_read_back_in_order_with_their_content(self, event_store: EventStore) -> None:
        stream = sid()
        events = [ev(i) for i in range(3)]
        result = await event_store.append(stream, 0, events)
        assert (result.version, result.duplicate) == (3, False)
        read = await event_store.read_stream(stream)
        assert [e.version for e in read] == [1, 2, 3]
        assert [e.event_id for e in read] == [e.event_id for e in events]
        assert [e.data for e in read] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert read[0].occurred_at == T0
        assert await event_store.stream_version(stream) == 3
        assert [e.version for e in await event_store.read_stream(stream, from_version=2)] == [2, 3]

    async def test_each_event_hash_chains_to_the_previous_one(self, event_store: EventStore) -> None:
        stream = sid()
        await event_store.append(stream, 0, [ev(0), ev(1)])
        await event_store.append(stream, 2, [ev(2)])
        read = await event_store.read_stream(stream)
        assert read[0].prev_hash == "0" * 64
        assert read[1].prev_hash == read[0].hash and read[2].prev_hash == read[1].hash
        assert len({e.hash for e in read}) == 3

    async def test_an_append_without_events_is_refused(self, event_store: EventStore) -> None:
        with pytest.raises(InvalidEventError):
            await event_store.append(sid(), 0, [])

    async def test_a_negative_expected_version_is_refused_by_the_store_and_by_the_database(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        with pytest.raises(InvalidEventError):
            await event_store.append(stream, -1, [ev(0)])
        with pytest.raises(asyncpg.PostgresError) as refused:
            await event_store.pool.fetchrow(
                "SELECT * FROM danvan_append($1, -1, $2, NULL)", stream, [canonical_text(stream, 0, ev(0))]
            )
        assert refused.value.sqlstate == "DV003"
        assert await event_store.stream_version(stream) == 0

    async def test_a_time_without_zone_is_refused_before_reaching_the_database(self) -> None:
        with pytest.raises(ValidationError, match="occurred_at"):
            NewEvent(event_id=uuid.uuid4(), type="X", occurred_at=datetime(2026, 1, 1))

    async def test_text_with_a_nul_character_is_refused_and_nothing_is_written(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        with pytest.raises(InvalidEventError):
            await event_store.append(stream, 0, [ev(data={"note": "a\x00b"})])
        assert await event_store.read_stream(stream) == []


class TestIdempotency:
    async def test_the_same_events_appended_again_succeed_and_change_nothing(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        events = [ev(0), ev(1)]
        await event_store.append(stream, 0, events)
        await event_store.append(stream, 2, [ev(2)])
        again = await event_store.append(stream, 0, events)  # the acknowledgement was lost; retried
        assert (again.version, again.duplicate) == (2, True)
        assert [e.version for e in await event_store.read_stream(stream)] == [1, 2, 3]

    async def test_a_single_event_appended_again_is_a_duplicate_first_and_later_in_the_stream(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        first, second = ev(0), ev(1)
        case = CaseRow(kind="complaint", status="received")
        assert not (await event_store.append(stream, 0, [first], case)).duplicate
        assert not (await event_store.append(stream, 1, [second], case)).duplicate
        for expected, event in ((0, first), (1, second)):  # each acknowledgement lost, each append retried
            again = await event_store.append(stream, expected, [event], case)
            assert (again.version, again.duplicate) == (expected + 1, True)
        assert [e.event_id for e in await event_store.read_stream(stream)] == [first.event_id, second.event_id]
        record = await event_store.get_case(stream)
        assert record is not None and record.version == 2

    async def test_the_same_ids_with_different_content_are_an_error(self, event_store: EventStore) -> None:
        stream = sid()
        first = ev(0)
        await event_store.append(stream, 0, [first])
        altered = first.model_copy(update={"data": {"n": 99}})
        with pytest.raises(EventIdConflictError):
            await event_store.append(stream, 0, [altered])
        read = await event_store.read_stream(stream)
        assert [e.data for e in read] == [{"n": 0}]

    async def test_an_id_already_used_in_another_stream_is_an_error(self, event_store: EventStore) -> None:
        used = ev(0)
        await event_store.append(sid(), 0, [used])
        other = sid()
        with pytest.raises(EventIdConflictError):
            await event_store.append(other, 0, [used])
        assert await event_store.read_stream(other) == []


class TestConcurrency:
    async def test_a_wrong_expected_version_is_refused_with_the_actual_version(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        await event_store.append(stream, 0, [ev(0), ev(1)])
        with pytest.raises(ConcurrencyError) as caught:
            await event_store.append(stream, 1, [ev(2)])
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        with pytest.raises(ConcurrencyError):
            await event_store.append(sid(), 3, [ev(0)])  # a stream that does not exist is at version 0
        assert await event_store.stream_version(stream) == 2

    async def test_exactly_one_of_eight_writers_wins_the_same_version(self, event_store: EventStore) -> None:
        stream = sid()
        await event_store.append(stream, 0, [ev(0)])
        outcomes = await asyncio.gather(
            *(event_store.append(stream, 1, [ev(i)]) for i in range(8)), return_exceptions=True
        )
        wins = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(wins) == 1
        assert all(isinstance(o, ConcurrencyError) for o in outcomes if isinstance(o, BaseException))
        assert await event_store.stream_version(stream) == 2

    async def test_eight_writers_creating_the_same_new_stream_leave_one_winner(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        outcomes = await asyncio.gather(
            *(event_store.append(stream, 0, [ev(i)]) for i in range(8)), return_exceptions=True
        )
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert len(await event_store.read_stream(stream)) == 1

    async def test_concurrent_appenders_that_retry_fill_every_version_once_without_gaps(
        self, event_store: EventStore
    ) -> None:
        stream = sid()
        per_writer = 15

        async def writer(w: int) -> int:
            conflicts = 0
            done = 0
            while done < per_writer:
                version = await event_store.stream_version(stream)
                try:
                    await event_store.append(stream, version, [ev(data={"writer": w, "i": done})])
                    done += 1
                except ConcurrencyError:
                    conflicts += 1
            return conflicts

        await asyncio.gather(*(writer(w) for w in range(8)))
        read = await event_store.read_stream(stream)
        assert [e.version for e in read] == list(range(1, 8 * per_writer + 1))
        assert len({(e.data["writer"], e.data["i"]) for e in read}) == 8 * per_writer
        assert (await event_store.verify(stream)).ok


class TestProjection:
    async def test_the_case_row_is_written_with_the_events_and_carries_the_stream_version(
        self, event_store: EventStore
    ) -> None:
        stream = sid("case")
        await event_store.append(stream, 0, [ev(0)], CaseRow(kind="complaint", status="received"))
        await event_store.append(stream, 1, [ev(1), ev(2)], CaseRow(kind="complaint", status="accepted"))
        case = await event_store.get_case(stream)
        assert case is not None and (case.status, case.version) == ("accepted", 3)

    async def test_a_refused_append_leaves_the_case_row_untouched(self, event_store: EventStore) -> None:
        stream = sid("case")
        await event_store.append(stream, 0, [ev(0)], CaseRow(kind="complaint", status="received"))
        with pytest.raises(ConcurrencyError):
            await event_store.append(stream, 0, [ev(1)], CaseRow(kind="complaint", status="closed"))
        case = await event_store.get_case(stream)
        assert case is not None and (case.status, case.version) == ("received", 1)


class TestVietnameseText:
    TITLE = "Đơn khiếu nại về bồi thường, hỗ trợ tái định cư ở xã Nam Sách, tỉnh Hải Dương"

    async def test_vietnamese_text_comes_back_unchanged_in_nfc(self, event_store: EventStore) -> None:
        stream = sid("Hải-Dương")
        data = {"tiêu_đề": self.TITLE, "người_gửi": "Nguyễn Thị Hằng", "ghi chú": ["Ủy ban", "Mặt trận Tổ quốc"]}
        await event_store.append(stream, 0, [ev(data=data)], CaseRow(kind="complaint", status="received",
                                                                       title=self.TITLE, district="Nam Sách"))
        (read,) = await event_store.read_stream(stream)
        assert read.data == data and read.stream_id == stream
        case = await event_store.get_case(stream)
        assert case is not None and case.title == self.TITLE and case.district == "Nam Sách"

    async def test_decomposed_input_is_stored_composed_and_still_verifies(self, event_store: EventStore) -> None:
        stream = sid()
        decomposed = unicodedata.normalize("NFD", self.TITLE)
        assert decomposed != self.TITLE
        await event_store.append(stream, 0, [ev(data={"title": decomposed})])
        (read,) = await event_store.read_stream(stream)
        assert read.data["title"] == self.TITLE
        assert (await event_store.verify(stream)).ok

    async def test_a_decomposed_case_row_is_stored_composed_column_by_column(self, event_store: EventStore) -> None:
        stream = sid("case")
        nfd = unicodedata.normalize
        row = CaseRow(
            kind="complaint", status="received", title=nfd("NFD", self.TITLE), lead_body=nfd("NFD", "Thanh tra tỉnh"),
            bodies=[nfd("NFD", "Ủy ban nhân dân huyện"), "Ban Dân vận"], district=nfd("NFD", "Nam Sách"),
            commune=nfd("NFD", "Xã Hợp Tiến"), source="tiếp công dân", external_ref=nfd("NFD", "TCD-Đơn-07"),
            received_at=T0, due_at=T0 + timedelta(days=30), overdue=True,
            summary={nfd("NFD", "người_gửi"): nfd("NFD", "Nguyễn Thị Hằng"), "số": [1, 2.5, None, True]},
        )
        await event_store.append(stream, 0, [ev(0)], row)
        await event_store.append(stream, 1, [ev(1)], row)
        case = await event_store.get_case(stream)
        assert case is not None
        assert case.model_dump(exclude={"case_id", "version", "created_at", "updated_at"}) == {
            "kind": "complaint", "status": "received", "title": self.TITLE, "lead_body": "Thanh tra tỉnh",
            "bodies": ["Ủy ban nhân dân huyện", "Ban Dân vận"], "district": "Nam Sách", "commune": "Xã Hợp Tiến",
            "source": "tiếp công dân", "external_ref": "TCD-Đơn-07", "received_at": T0,
            "due_at": T0 + timedelta(days=30), "overdue": True,
            "summary": {"người_gửi": "Nguyễn Thị Hằng", "số": [1, 2.5, None, True]},
        }
        assert (case.case_id, case.version) == (stream, 2)


class TestGlobalFeed:
    async def test_a_transaction_that_commits_late_with_a_lower_position_is_still_delivered(
        self, isolated_store: EventStore
    ) -> None:
        store = isolated_store
        start = (await store.read_feed()).cursor
        slow = await store.pool.acquire()
        try:
            tx = slow.transaction()
            await tx.start()
            texts = [canonical_text("slow", 1, ev(0))]
            await slow.execute("SELECT danvan_append('slow', 0, $1, NULL)", texts)  # takes the lower position
            await store.append("fast", 0, [ev(1)])  # takes a higher position and commits first
            first = await store.read_feed(start)
            assert [e.stream_id for e in first.events] == []  # held back while the older one runs
            await tx.commit()
        finally:
            await store.pool.release(slow)
        second = await store.read_feed(first.cursor)
        assert [e.stream_id for e in second.events] == ["slow", "fast"]
        slow_pos, fast_pos = (e.position for e in second.events)
        assert slow_pos < fast_pos

    async def test_a_tailing_reader_gets_every_event_exactly_once_under_eight_writers(
        self, isolated_store: EventStore
    ) -> None:
        store = isolated_store
        rng = random.Random(7)
        expected: set[uuid.UUID] = set()
        received: list[uuid.UUID] = []
        writers_done = asyncio.Event()

        async def reader() -> None:
            async for event in store.tail(FeedCursor(), poll_interval=0.005, batch=50):
                received.append(event.event_id)
                if writers_done.is_set() and len(received) >= len(expected):
                    return

        async def writer(w: int) -> None:
            version = 0
            stream = f"feed-{w}"
            for _ in range(40):
                batch = [ev(data={"w": w}) for _ in range(rng.randint(1, 3))]
                texts = [canonical_text(stream, version + i, e) for i, e in enumerate(batch, start=1)]
                async with store.pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT danvan_append($1, $2, $3, NULL)", stream, version, texts)
                    # Hold some transactions open after their positions are taken, so commits land
                    # out of position order: the case a position-only reader gets wrong.
                    if rng.random() < 0.3:
                        await asyncio.sleep(rng.uniform(0.001, 0.02))
                version += len(batch)
                expected.update(e.event_id for e in batch)

        reading = asyncio.create_task(reader())
        await asyncio.gather(*(writer(w) for w in range(8)))
        writers_done.set()
        await asyncio.wait_for(reading, timeout=30)
        assert len(received) == len(set(received)), "an event was delivered twice"
        assert set(received) == expected, "an event was skipped"

    async def test_the_feed_cursor_round_trips_as_text(self) -> None:
        cursor = FeedCursor(transaction_id=812, position=44)
        assert FeedCursor.decode(cursor.encode()) == cursor
        with pytest.raises(ValueError, match="cursor"):
            FeedCursor.decode("nonsense")


async def test_events_read_back_equal_validated_models(isolated_store: EventStore) -> None:
    """The store builds stored events without validating them again: they must be what validation would give."""
    from eventstore.models import RecordedEvent

    stream = sid("read")
    await isolated_store.append(stream, 0, [ev(i) for i in range(3)])
    events = await isolated_store.read_stream(stream)
    rows = await isolated_store.pool.fetch("SELECT stream_id, version FROM events WHERE stream_id = $1", stream)
    assert len(events) == len(rows) == 3
    for event in events:
        validated = RecordedEvent.model_validate(event.model_dump())
        assert event == validated and event.model_dump() == validated.model_dump()
        assert event.model_dump_json() == validated.model_dump_json()
        assert event.model_fields_set == validated.model_fields_set
        assert event.model_copy(update={"reason": "x"}).reason == "x"


async def verified(store: EventStore, stream: str) -> Any:
    """`verify` of one stream, checked to agree with `read_verified` (the history's one read), which must also
    return exactly the stream's rows."""
    report = await store.verify(stream)
    events, same = await store.read_verified(stream)
    assert same == report
    assert events == await store.read_stream(stream)
    return report


class TestVerify:
    async def _stream(self, store: EventStore, n: int = 5) -> str:
        stream = sid("v")
        await store.append(stream, 0, [ev(i) for i in range(n)])
        return stream

    async def test_an_untouched_database_verifies(self, isolated_store: EventStore) -> None:
        await self._stream(isolated_store)
        await self._stream(isolated_store)
        report = await isolated_store.verify()
        assert report.ok and report.streams_checked == 2 and report.events_checked == 10
        events, one = await isolated_store.read_verified(await self._stream(isolated_store, 3))
        assert one.ok and one.events_checked == 3 and [e.version for e in events] == [1, 2, 3]

    async def test_an_edited_row_is_named(self, isolated_store: EventStore) -> None:
        stream = await self._stream(isolated_store)
        await isolated_store.pool.execute(
            "UPDATE events SET data = '{\"n\": 42}' WHERE stream_id = $1 AND version = 3", stream
        )
        report = await verified(isolated_store, stream)
        assert not report.ok and report.first_bad_version == 3 and "content" in (report.problem or "")
        assert (await isolated_store.verify()).first_bad_stream == stream

    async def test_a_deleted_row_is_named(self, isolated_store: EventStore) -> None:
        stream = await self._stream(isolated_store)
        await isolated_store.pool.execute("DELETE FROM events WHERE stream_id = $1 AND version = 2", stream)
        report = await verified(isolated_store, stream)
        assert not report.ok and report.first_bad_version == 2

    async def test_a_deleted_last_row_is_named(self, isolated_store: EventStore) -> None:
        stream = await self._stream(isolated_store)
        await isolated_store.pool.execute("DELETE FROM events WHERE stream_id = $1 AND version = 5", stream)
        report = await verified(isolated_store, stream)
        assert not report.ok and report.first_bad_version == 5

    async def test_a_stream_appended_one_event_at_a_time_verifies_and_its_head_is_checked(
        self, isolated_store: EventStore
    ) -> None:
        stream = sid("v")
        for i in range(4):  # the one-statement path, then one batch through the function, then one again
            await isolated_store.append(stream, i, [ev(i)], CaseRow(kind="complaint", status="received"))
        await isolated_store.append(stream, 4, [ev(4), ev(5)])
        await isolated_store.append(stream, 6, [ev(6)])
        report = await verified(isolated_store, stream)
        assert report.ok and report.events_checked == 7
        await isolated_store.pool.execute("UPDATE streams SET prev_hash = sha256('x') WHERE stream_id = $1", stream)
        report = await verified(isolated_store, stream)
        assert not report.ok and report.first_bad_version == 7 and "previous hash" in (report.problem or "")

    async def test_reordered_rows_are_named(self, isolated_store: EventStore) -> None:
        stream = await self._stream(isolated_store)
        async with isolated_store.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE events SET version = 100 WHERE stream_id = $1 AND version = 2", stream)
            await conn.execute("UPDATE events SET version = 2 WHERE stream_id = $1 AND version = 3", stream)
            await conn.execute("UPDATE events SET version = 3 WHERE stream_id = $1 AND version = 100", stream)
        report = await verified(isolated_store, stream)
        assert not report.ok and report.first_bad_version == 2

    async def test_a_row_forged_with_a_recomputed_hash_breaks_the_link_to_the_next(
        self, isolated_store: EventStore
    ) -> None:
        stream = await self._stream(isolated_store)
        (second,) = await isolated_store.read_stream(stream, from_version=2, limit=1)
        forged = second.model_copy(update={"data": {"n": 7}})
        forged_hash = chain_hash(second.prev_hash, canonical_text(stream, 2, forged))
        await isolated_store.pool.execute(
            "UPDATE events SET data = $2, hash = decode($3, 'hex') WHERE stream_id = $1 AND version = 2",
            stream,
            {"n": 7},
            forged_hash,
        )
        report = await verified(isolated_store, stream)
        assert not report.ok and report.first_bad_version == 3 and "link" in (report.problem or "")


class TestUnavailable:
    async def test_an_unreachable_database_is_a_store_unavailable_error(self) -> None:
        with pytest.raises(StoreUnavailableError):
            await EventStore.open("postgresql://postgres@127.0.0.1:1/nowhere")


class TestBatchAppend:
    async def test_a_batch_naming_another_stream_or_version_is_refused_whole(self, event_store: EventStore) -> None:
        stream = sid()
        texts = [canonical_text(stream, 1, ev(0)), canonical_text("elsewhere", 2, ev(1)),
                 canonical_text(stream, 3, ev(2))]
        with pytest.raises(asyncpg.PostgresError) as caught:
            await event_store.pool.execute("SELECT danvan_append($1, 0, $2, NULL)", stream, texts)
        assert caught.value.sqlstate == "DV003"
        assert await event_store.read_stream(stream) == []

    async def test_a_hundred_event_batch_chains_and_verifies(self, event_store: EventStore) -> None:
        stream = sid()
        result = await event_store.append(stream, 0, [ev(i) for i in range(100)],
                                          CaseRow(kind="complaint", status="received"))
        assert result.version == 100
        read = await event_store.read_stream(stream)
        assert [e.version for e in read] == list(range(1, 101)) and [e.data["n"] for e in read] == list(range(100))
        assert (await event_store.verify(stream)).ok
