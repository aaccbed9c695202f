"""What a database writer can do to the event store, written as such a writer would: with the chain's own
algorithm, so every hash chain still verifies afterwards."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from eventstore import CaseRow, EventStore, NewEvent
from eventstore.canonical import canonical_text, chain_hash
from eventstore.models import GENESIS_HASH


async def seed(store: EventStore, stream_id: str, events: int) -> None:
    now = datetime.now(UTC)
    for v in range(events):
        await store.append(stream_id, v, [NewEvent(
            event_id=uuid.uuid4(), type="Ghi nhận", occurred_at=now, actor="cán bộ",
            data={"n": v + 1, "ghi chú": "Đơn khiếu nại về đất đai"})], CaseRow(kind="complaint", status="received"))


async def truncate_and_rewind(store: EventStore, stream_id: str, keep: int) -> None:
    """Remove the events after `keep` and set the head back to the last one kept."""
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM events WHERE stream_id = $1 AND version > $2", stream_id, keep)
        await conn.execute(
            """UPDATE streams s SET version = e.version, last_hash = e.hash, prev_hash = e.prev_hash
                 FROM events e WHERE e.stream_id = s.stream_id AND s.stream_id = $1 AND e.version = $2""",
            stream_id, keep)
        await conn.execute("UPDATE cases SET version = $2 WHERE case_id = $1", stream_id, keep)


async def edit_and_rechain(store: EventStore, stream_id: str, version: int, data: dict[str, object]) -> None:
    """Change one event's data, then recompute its hash and every hash after it, and the head."""
    events = await store.read_stream(stream_id)
    prev = GENESIS_HASH if version == 1 else events[version - 2].hash
    async with store.pool.acquire() as conn, conn.transaction():
        last = prev
        for e in events[version - 1:]:
            edited = e.model_copy(update={"data": data}) if e.version == version else e
            h = chain_hash(last, canonical_text(stream_id, e.version, edited))
            await conn.execute(
                "UPDATE events SET data = $3::text::jsonb, prev_hash = decode($4, 'hex'), hash = decode($5, 'hex') "
                "WHERE stream_id = $1 AND version = $2",
                stream_id, e.version, json.dumps(edited.data, ensure_ascii=False), last, h)
            prev, last = last, h
        await conn.execute(
            "UPDATE streams SET last_hash = decode($2, 'hex'), prev_hash = decode($3, 'hex') WHERE stream_id = $1",
            stream_id, last, prev)


async def remove_stream(store: EventStore, stream_id: str) -> None:
    async with store.pool.acquire() as conn, conn.transaction():
        for table, column in (("events", "stream_id"), ("streams", "stream_id"), ("cases", "case_id")):
            await conn.execute(f"DELETE FROM {table} WHERE {column} = $1", stream_id)
