"""What goes into the event store and what comes out of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

GENESIS_HASH = "0" * 64


class NewEvent(BaseModel):
    """An event to append. Its id is made by the caller, deterministically, so a retried append is a no-op."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    type: str = Field(min_length=1, max_length=200)
    schema_version: int = Field(default=1, ge=1)
    occurred_at: datetime
    actor: str | None = None
    reason: str | None = None
    legal_basis: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("occurred_at must carry a time zone")
        return value


class RecordedEvent(NewEvent):
    """An event as stored: its place in its stream and in the global feed, and its link in the hash chain."""

    stream_id: str
    version: int
    position: int
    transaction_id: int
    recorded_at: datetime
    prev_hash: str
    hash: str


class AppendResult(BaseModel):
    """What an append did. `duplicate` is true when the same events were already stored (a retried append)."""

    stream_id: str
    version: int
    duplicate: bool = False


class FeedCursor(BaseModel):
    """A place in the global feed: events are ordered by (transaction id, position) and read strictly after it.

    The order is by the writing transaction's id first, so a transaction that took a low position but
    committed late is still delivered after the cursor: see `EventStore.read_feed`.
    """

    model_config = ConfigDict(frozen=True)

    transaction_id: int = 0
    position: int = 0

    def encode(self) -> str:
        return f"{self.transaction_id}-{self.position}"

    @classmethod
    def decode(cls, text: str) -> FeedCursor:
        try:
            tx, pos = text.split("-", 1)
            return cls(transaction_id=int(tx), position=int(pos))
        except ValueError:
            raise ValueError(f"cursor {text!r}: must be TRANSACTION-POSITION, two integers") from None


class FeedPage(BaseModel):
    events: list[RecordedEvent]
    cursor: FeedCursor


class BrokenStream(BaseModel):
    """A stream that does not verify: the first version that is wrong, what is wrong (`kind`: edited, link,
    missing, head, truncated, rewritten, removed, temporal when Temporal's record of the case disagrees, or file
    when the bytes of a file the case holds no longer hash to what its event records),
    and in words."""

    stream_id: str
    first_bad_version: int
    kind: str
    problem: str


class StoredDocument(BaseModel):
    """A row of `rule_sets`: a document under the digest its writer named it by."""

    digest: str
    kind: str
    content: dict[str, Any]


class BrokenRuleSet(BaseModel):
    """A stored rule document (`rule_sets`) whose content does not hash to its digest."""

    digest: str
    kind: str
    problem: str


class VerifyReport(BaseModel):
    """The result of walking hash chains: every broken stream (`broken`, by stream id), and the first of them
    in `first_bad_*` (what a single case's integrity shows)."""

    stream_id: str | None
    streams_checked: int
    events_checked: int
    ok: bool
    first_bad_stream: str | None = None
    first_bad_version: int | None = None
    problem: str | None = None
    broken: list[BrokenStream] = Field(default_factory=list)
    #: The rule documents checked (every one, when every stream is), and those altered: `ok` is false then too.
    rule_sets_checked: int = 0
    broken_rule_sets: list[BrokenRuleSet] = Field(default_factory=list)


class CaseRow(BaseModel):
    """The `cases` read-model row of a case, written in the same transaction as the case's events."""

    kind: str
    status: str
    title: str | None = None
    lead_body: str | None = None
    bodies: list[str] = Field(default_factory=list)
    district: str | None = None
    commune: str | None = None
    source: str | None = None
    external_ref: str | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    overdue: bool = False
    summary: dict[str, Any] = Field(default_factory=dict)


class CaseRecord(CaseRow):
    """A `cases` row as read back."""

    case_id: str
    version: int
    created_at: datetime
    updated_at: datetime
