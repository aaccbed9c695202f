"""Temporal's own record of a case, compared with its stream in PostgreSQL.

Temporal keeps its histories in another database, out of reach of whoever writes to PostgreSQL. A case's
workflow (its id is the stream's id) appends only through the `append_events` activity: each scheduled
append's input holds the stream, the expected version and the very events, and its completion the version
the stream reached. Every completed append of every run of the workflow (a reset starts a new run; the
earlier ones keep their histories) says which event belongs at which version. The stream must hold exactly
those: a version missing is a truncation, an event whose canonical form differs was edited (the chain
recomputed or not), and an event beyond what any run appended was not written by the case's workflow.

Payloads are decoded with the client's own data converter (`client.data_converter`), so a payload codec
(encryption) in front of Temporal changes nothing here. A workflow Temporal no longer knows (its retention
passed, or a stream written without one) is counted, not judged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from activities.eventstore import AppendEventsInput
from danvan import visibility
from eventstore import AppendResult, BrokenStream, EventStore, NewEvent, RecordedEvent
from eventstore.canonical import canonical_text

APPEND_ACTIVITY = "append_events"


@dataclass
class TemporalCheck:
    """What the comparison with Temporal found, over the streams it looked at."""

    checked: int = 0
    unknown: list[str] = field(default_factory=list)  # no workflow in Temporal
    broken: list[BrokenStream] = field(default_factory=list)


async def _run_ids(client: Client, workflow_id: str) -> list[str | None]:
    """Every run of the workflow that visibility lists; the latest alone when listing is not to be had."""
    try:
        query = visibility.query(WorkflowId=workflow_id)
    except visibility.UnsafeValue:
        return [None]  # an id no list filter can name exactly (see `danvan.visibility`): its latest run
    try:
        runs = [w.run_id async for w in client.list_workflows(query)]
    except RPCError:
        runs = []
    return list(runs) or [None]


async def recorded_appends(client: Client, stream_id: str) -> dict[int, NewEvent] | None:
    """Version -> event, for every event a completed append of the case's workflow wrote; None when Temporal
    has no workflow by that id."""
    record: dict[int, NewEvent] = {}
    found = False
    for run_id in await _run_ids(client, stream_id):
        handle = client.get_workflow_handle(stream_id, run_id=run_id)
        try:
            history = await handle.fetch_history()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        found = True
        await _appends_of_run(client.data_converter, stream_id, history.events, record)
    return record if found else None


async def _appends_of_run(converter: DataConverter, stream_id: str, events: Iterable[HistoryEvent],
                          record: dict[int, NewEvent]) -> None:
    """Into `record`: what each completed append of one run's history wrote to `stream_id`, by version."""
    scheduled: dict[int, AppendEventsInput] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == APPEND_ACTIVITY:
                [request] = await converter.decode(attrs.input.payloads, [AppendEventsInput])
                scheduled[event.event_id] = request
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            request = scheduled.get(done.scheduled_event_id)
            if request is None or request.stream_id != stream_id:
                continue
            [result] = await converter.decode(done.result.payloads, [AppendResult])
            if result.version != request.expected_version + len(request.events):
                continue  # not what this append wrote (cannot happen with the store's own append)
            for i, new in enumerate(request.events, start=1):
                record.setdefault(request.expected_version + i, new)


def compare(stream_id: str, stored: Iterable[RecordedEvent], record: dict[int, NewEvent]) -> BrokenStream | None:
    """The first version where the stored stream and Temporal's record of its appends disagree."""
    versions: dict[int, NewEvent] = {e.version: e for e in stored}
    last_recorded, last_stored = max(record, default=0), max(versions, default=0)
    for version in range(1, max(last_recorded, last_stored) + 1):
        mine, theirs = versions.get(version), record.get(version)
        if mine is None and theirs is not None:
            return BrokenStream(
                stream_id=stream_id, first_bad_version=version, kind="temporal",
                problem=f"truncated: the case's workflow appended up to version {last_recorded} (Temporal's "
                f"record), the stream ends at version {last_stored}")
        if mine is not None and theirs is None:
            if version > last_recorded:
                return BrokenStream(
                    stream_id=stream_id, first_bad_version=version, kind="temporal",
                    problem=f"inserted: the case's workflow appended up to version {last_recorded} (Temporal's "
                    f"record), the stream goes on to version {last_stored}")
            continue  # a version whose append Temporal no longer shows (a run past its retention)
        assert mine is not None and theirs is not None
        if canonical_text(stream_id, version, mine) != canonical_text(stream_id, version, theirs):
            return BrokenStream(
                stream_id=stream_id, first_bad_version=version, kind="temporal",
                problem=f"edited: version {version} is not the event the case's workflow appended "
                "(Temporal's record)")
    return None


async def check_streams(
    client: Client, store: EventStore, stream_ids: Iterable[str], *, concurrency: int = 16
) -> TemporalCheck:
    """Compare each stream with Temporal's record of its workflow, `concurrency` at a time."""
    out = TemporalCheck()
    gate = asyncio.Semaphore(concurrency)

    async def one(stream_id: str) -> None:
        async with gate:
            record = await recorded_appends(client, stream_id)
            if record is None:
                out.unknown.append(stream_id)
                return
            events = await store.read_stream(stream_id)
            out.checked += 1
            broken = compare(stream_id, events, record)
            if broken is not None:
                out.broken.append(broken)

    await asyncio.gather(*(one(s) for s in sorted(set(stream_ids))))
    out.broken.sort(key=lambda b: b.stream_id)
    out.unknown.sort()
    return out
