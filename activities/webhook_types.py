"""What the webhook activities (`activities.webhooks`) and `workflows.subscription` exchange: plain models,
importable by workflow code (nothing here reaches the API, the network or the database)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from danvan.settings import Settings
from eventstore.models import FeedCursor


class WebhookPolicy(BaseModel):
    """How a subscription is delivered: its timeouts, its retries, the size of its batches. The API gives each
    new subscription the installation's (`from_settings`); it then travels in the workflow's input."""

    request_timeout: float = Field(default=10.0, gt=0, description="seconds a request may take")
    backoff_first: float = Field(default=5.0, gt=0, description="seconds before the second attempt of an event")
    backoff_max: float = Field(default=3600.0, gt=0, description="the longest wait between attempts")
    retry_for: float = Field(default=3 * 86400.0, gt=0, description="how long an event is tried before the "
                             "subscription is marked failing")
    batch: int = Field(default=100, ge=1, le=1000, description="events read per batch")
    wait: float = Field(default=30.0, gt=0, description="seconds a batch waits for a new event")
    busy: float = Field(default=60.0, gt=0, description="seconds a batch goes on delivering")
    recheck: float = Field(default=600.0, gt=0, description="seconds between looks at a paused or failing one")
    continue_after: int = Field(default=500, ge=1, description="batches per run before continuing as new")

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPolicy:
        return cls(request_timeout=settings.webhook_timeout, backoff_first=settings.webhook_backoff_first,
                   backoff_max=max(settings.webhook_backoff_max, settings.webhook_backoff_first),
                   retry_for=settings.webhook_retry_for)


class BatchInput(BaseModel):
    subscription_id: str
    cursor: FeedCursor
    policy: WebhookPolicy
    #: The event tried before without success, and the number of this attempt of it.
    head_event_id: str | None = None
    head_attempt: int = Field(default=1, ge=1)


class Failure(BaseModel):
    """The event a batch stopped at: the receiver did not accept it."""

    event_id: str
    case_id: str
    attempt: int
    status_code: int | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.status_code is not None:
            return f"event {self.event_id}: attempt {self.attempt} answered HTTP {self.status_code}"
        return f"event {self.event_id}: attempt {self.attempt} failed: {self.error}"


class BatchResult(BaseModel):
    cursor: FeedCursor
    delivered: int = 0
    #: What the subscription is, as its row says: `gone` when it was deleted.
    state: Literal["active", "paused", "failing", "gone"] = "active"
    failure: Failure | None = None
    caught_up: bool = False


class Progress(BaseModel):
    """A batch's heartbeat: where it is, so a retried attempt goes on from there."""

    cursor: FeedCursor
    delivered: int


class MarkFailing(BaseModel):
    subscription_id: str
    reason: str
