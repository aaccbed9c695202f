"""The PostgreSQL event store: hash-chained streams, a gap-free global feed, and read-model projections."""

from .errors import (
    ConcurrencyError,
    EventIdConflictError,
    EventStoreError,
    InvalidEventError,
    MigrationError,
    StoreUnavailableError,
)
from .migrate import migrate
from .models import (
    AppendResult,
    BrokenRuleSet,
    BrokenStream,
    CaseRecord,
    CaseRow,
    FeedCursor,
    FeedPage,
    NewEvent,
    RecordedEvent,
    StoredDocument,
    VerifyReport,
)
from .pool import Pool
from .store import EventStore, create_pool, translate_errors

__all__ = [
    "AppendResult",
    "BrokenRuleSet",
    "BrokenStream",
    "CaseRecord",
    "CaseRow",
    "ConcurrencyError",
    "EventIdConflictError",
    "EventStore",
    "EventStoreError",
    "FeedCursor",
    "FeedPage",
    "InvalidEventError",
    "MigrationError",
    "NewEvent",
    "Pool",
    "RecordedEvent",
    "StoreUnavailableError",
    "StoredDocument",
    "VerifyReport",
    "create_pool",
    "migrate",
    "translate_errors",
]
