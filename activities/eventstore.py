"""Activities that reach the event store. Workflows append and read their case's stream only through these."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from eventstore import (
    AppendResult,
    CaseRow,
    ConcurrencyError,
    EventIdConflictError,
    EventStore,
    InvalidEventError,
    NewEvent,
    RecordedEvent,
)

#: The error kinds of a refused append, as a workflow meets them (the `type` of the activity's ApplicationError).
#: Recorded in histories: the values never change.
STREAM_CONFLICT = "ConcurrencyError"
EVENT_ID_CONFLICT = "EventIdConflictError"
INVALID_EVENT = "InvalidEventError"
#: None of them is helped by a retry.
FINAL_ERRORS = (STREAM_CONFLICT, EVENT_ID_CONFLICT, INVALID_EVENT)


class AppendEventsInput(BaseModel):
    stream_id: str
    expected_version: int = Field(ge=0)
    events: list[NewEvent] = Field(min_length=1)
    case: CaseRow | None = None


class ReadStreamInput(BaseModel):
    stream_id: str
    from_version: int = Field(default=1, ge=1)


class ReadStreamResult(BaseModel):
    events: list[RecordedEvent]


class EventStoreActivities:
    """Holds the event store; built once in `worker.py`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    @activity.defn(name="append_events")
    async def append_events(self, request: AppendEventsInput) -> AppendResult:
        """Append a workflow's events and its projection row in one transaction.

        Idempotent: event ids are made deterministically by the workflow, so a retry after a lost reply
        is a no-op that reports `duplicate`. A conflict or malformed event is final (non-retryable): retrying
        cannot help, and the workflow must know. A database outage is retried by Temporal.
        """
        try:
            return await self.store.append(
                request.stream_id, request.expected_version, request.events, request.case
            )
        except ConcurrencyError as exc:
            raise ApplicationError(str(exc), type=STREAM_CONFLICT, non_retryable=True) from exc
        except EventIdConflictError as exc:
            raise ApplicationError(str(exc), type=EVENT_ID_CONFLICT, non_retryable=True) from exc
        except InvalidEventError as exc:
            raise ApplicationError(str(exc), type=INVALID_EVENT, non_retryable=True) from exc

    @activity.defn(name="read_stream")
    async def read_stream(self, request: ReadStreamInput) -> ReadStreamResult:
        """Read a stream from a version on (used when a workflow must rebuild from the record)."""
        events = await self.store.read_stream(request.stream_id, from_version=request.from_version)
        return ReadStreamResult(events=events)
