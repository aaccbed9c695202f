"""The event store's own errors. asyncpg's are translated into these once, in `eventstore.store`."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class StoreUnavailableError(EventStoreError):
    """PostgreSQL cannot be reached or the connection broke; the operation may be retried."""


class ConcurrencyError(EventStoreError):
    """The stream is not at the version the writer expected: someone else appended first."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id!r} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class EventIdConflictError(EventStoreError):
    """An event id is already stored with different content (or in another place of another stream)."""

    def __init__(self, stream_id: str, detail: str) -> None:
        super().__init__(f"stream {stream_id!r}: {detail}")
        self.stream_id = stream_id


class InvalidEventError(EventStoreError, ValueError):
    """An event cannot be stored as given (not serialisable, a naive timestamp, a NUL character...)."""


class MigrationError(EventStoreError):
    """The database schema does not match the migrations this code knows."""
