"""Webhook subscriptions: what is stored of them, their signing secrets, and the signature of a delivery.

A subscription (`subscriptions`, migration 0015) is a URL, a filter and an owner; each is delivered by its own
workflow (`workflows.subscription`). The owner is the principal that made it, an `admin` or an `intake` system,
and the events delivered are held to the owner's scope as the feed holds them (`api.feed.scope_of`): an intake
system receives the events of the cases it sent, and nothing once it has no active token left.

The signing secret follows the Standard Webhooks conventions: `whsec_` and the base64 of 32 random bytes, shown
once when the subscription is made. The signature of a delivery (`sign`) is `v1,` and the base64 of the
HMAC-SHA256, under those bytes, of `webhook-id.webhook-timestamp.body`. The secret is kept AES-256-GCM encrypted
under a key of its own derived from the installation's secret (`danvan.keys`), the subscription id as associated
data, so a row copied onto another subscription does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from danvan.keys import derive_key, key_id
from domain.idempotency import digest
from eventstore import FeedCursor, Pool
from eventstore.store import translate_errors

from .feed import EVENT_TYPES
from .filters import CaseKind
from .tokens import Principal

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
#: The key that encrypts the signing secrets, derived from the installation's secret.
SECRET_KEY_LABEL = b"danvan webhook signing secrets v1"
_ID_ALPHABET = string.digits + string.ascii_lowercase
ID_PATTERN = r"^sub_[0-9a-z]{20}$"
MAX_FILTER_VALUES = 50
#: The roles that may own a subscription.
OWNER_ROLES = ("intake", "admin")

Status = Literal["active", "paused", "failing"]


def new_subscription_id() -> str:
    return "sub_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_...` secret stands for."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of a delivery: `v1,` + base64(HMAC-SHA256(id.timestamp.body))."""
    mac = hmac.new(secret_bytes(secret), signed_content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether one of the space-separated signatures of `header` is the signature of this delivery."""
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


class SecretBox:
    """Encrypts and opens signing secrets under the key derived from the installation's secret."""

    def __init__(self, installation_secret: bytes) -> None:
        key = derive_key(installation_secret, SECRET_KEY_LABEL)
        self.key_id = key_id(key)
        self._aead = AESGCM(key)

    def seal(self, subscription_id: str, secret: str) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(12)
        return nonce, self._aead.encrypt(nonce, secret.encode("ascii"), subscription_id.encode("ascii"))

    def open(self, subscription_id: str, nonce: bytes, sealed: bytes) -> str:
        return self._aead.decrypt(nonce, sealed, subscription_id.encode("ascii")).decode("ascii")


# -- the API's models --------------------------------------------------------------------------------------


def _known_bodies() -> frozenset[str]:
    from .routes.events import known_bodies  # the feed's own list of body codes (policy/bodies.yaml)

    return known_bodies()


def _checked(values: list[str] | None, known: frozenset[str], rule: str, what: str) -> list[str] | None:
    if not values:
        return None
    for value in values:
        if value not in known:
            raise PydanticCustomError(rule, "{value} is not a known {what}", {"value": value, "what": what})
    return list(dict.fromkeys(values))


Kinds = Annotated[list[CaseKind] | None, Field(max_length=MAX_FILTER_VALUES, description="Only events of cases of "
                                               "these kinds (none: every kind)")]
Types = Annotated[list[str] | None, Field(max_length=MAX_FILTER_VALUES, description="Only events of these types "
                                          "(`PetitionReceived`, `Accepted`...; none: every type)")]
Bodies = Annotated[list[str] | None, Field(max_length=MAX_FILTER_VALUES, description="Only events of cases these "
                                           "bodies lead or coordinate (body codes; none: every body)")]
Url = Annotated[str, Field(min_length=1, max_length=2000, description="Where the events are POSTed: http:// or "
                           "https://, a public host (or one of DANVAN_WEBHOOK_ALLOW_HOSTS)")]


class _Filter(BaseModel):
    @field_validator("kinds", check_fields=False)
    @classmethod
    def _kinds(cls, kinds: list[CaseKind] | None) -> list[CaseKind] | None:
        return list(dict.fromkeys(kinds)) if kinds else None

    @field_validator("types", check_fields=False)
    @classmethod
    def _types(cls, types: list[str] | None) -> list[str] | None:
        return _checked(types, EVENT_TYPES, "unknown_event_type", "event type")

    @field_validator("bodies", check_fields=False)
    @classmethod
    def _bodies(cls, bodies: list[str] | None) -> list[str] | None:
        return _checked(bodies, _known_bodies(), "unknown_body", "body")


class SubscriptionRequest(_Filter):
    """`POST /v1/subscriptions`: where to deliver, and which events."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: Url
    kinds: Kinds = None
    types: Types = None
    bodies: Bodies = None
    after: str | None = Field(default=None, max_length=64, description="A feed cursor (a `next_cursor` of "
                              "`GET /v1/events`): deliver the events after it. None: those committed from now on")
    status: Literal["active", "paused"] = Field(default="active", description="`paused`: made, but nothing is "
                                                "delivered until it is resumed (`PATCH`)")


class SubscriptionChange(_Filter):
    """`PATCH /v1/subscriptions/{id}`: only the fields given change; `null` or `[]` for a filter removes it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Literal["active", "paused"] | None = Field(default=None, description="`paused` stops delivering; "
                                                       "`active` resumes (a failing subscription is tried again now)")
    url: Url | None = None
    kinds: Kinds = None
    types: Types = None
    bodies: Bodies = None


class Owner(BaseModel):
    role: str
    label: str


class Subscription(BaseModel):
    """A subscription as the API shows it (never its secret)."""

    id: str
    url: str
    kinds: list[str] | None
    types: list[str] | None
    bodies: list[str] | None
    owner: Owner
    status: Status
    #: Why it is failing (the last error of the event it gave up on), or paused by whom.
    status_reason: str | None
    status_changed_at: datetime
    #: Events delivered (accepted by the receiver with a 2xx) so far.
    delivered: int
    #: The feed cursor after the last event delivered: `replay?from=` takes it.
    cursor: str | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(Subscription):
    """The answer to `POST /v1/subscriptions`: the subscription and its signing secret, shown this once."""

    secret: str | None = Field(description="`whsec_...`: verify each delivery's `webhook-signature` with it "
                               "(Standard Webhooks). It is never shown again: null in the answer to a retry under "
                               "the same `Idempotency-Key` (`duplicate`)")
    duplicate: bool = Field(default=False, description="true: a retry of a create sent under the same "
                            "`Idempotency-Key`; the subscription is the one the first request made, and its secret "
                            "is not shown again (delete it and subscribe again if the first answer was lost)")


class SubscriptionPage(BaseModel):
    items: list[Subscription]
    #: Pass as `before` for the next (older) page; None at the end.
    next_before: str | None


class Delivery(BaseModel):
    """One attempt to deliver one event."""

    id: int
    event_id: str
    case_id: str
    event_type: str
    attempt: int
    #: The HTTP status of the answer; None when there was none (then `error` says why).
    status_code: int | None
    error: str | None
    ok: bool
    started_at: datetime
    latency_ms: float


class DeliveryPage(BaseModel):
    items: list[Delivery]
    #: Pass as `before` for the next (older) page; None at the end.
    next_before: int | None


# -- the table ----------------------------------------------------------------------------------------------


_COLUMNS = ("id, url, kinds, types, bodies, owner_role, owner_label, owner_token, secret_nonce, secret_sealed, "
            "secret_key_id, status, status_reason, status_changed_at, revision, delivered_count, delivered_tx, "
            "delivered_position, delivered_at, created_at, updated_at")


class SubscriptionRow(BaseModel):
    """A row of `subscriptions`."""

    id: str
    url: str
    kinds: list[str] | None
    types: list[str] | None
    bodies: list[str] | None
    owner_role: str
    owner_label: str
    owner_token: str | None
    secret_nonce: bytes
    secret_sealed: bytes
    secret_key_id: str
    status: Status
    status_reason: str | None
    status_changed_at: datetime
    revision: int
    delivered_count: int
    delivered_tx: int | None
    delivered_position: int | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def owner(self) -> Principal:
        """The owner as a principal, for its scope (`api.feed.scope_of`) and the read audit."""
        return Principal(role=self.owner_role, label=self.owner_label, id=self.owner_token or "subscription")

    @property
    def delivered_cursor(self) -> FeedCursor | None:
        if self.delivered_tx is None or self.delivered_position is None:
            return None
        return FeedCursor(transaction_id=self.delivered_tx, position=self.delivered_position)

    def shown(self, cursor: str | None) -> Subscription:
        return Subscription(
            id=self.id, url=self.url, kinds=self.kinds, types=self.types, bodies=self.bodies,
            owner=Owner(role=self.owner_role, label=self.owner_label), status=self.status,
            status_reason=self.status_reason, status_changed_at=self.status_changed_at,
            delivered=self.delivered_count, cursor=cursor, delivered_at=self.delivered_at,
            created_at=self.created_at, updated_at=self.updated_at,
        )


def _row(record: Any) -> SubscriptionRow:
    return SubscriptionRow.model_validate(dict(record))


def owns(principal: Principal, row: SubscriptionRow) -> bool:
    """An admin manages every subscription; an intake system those it made (by its label: its tokens may
    change)."""
    if principal.role == "admin":
        return True
    return principal.role == row.owner_role and principal.label == row.owner_label


async def insert_subscription(pool: Pool, box: SecretBox, owner: Principal, request: SubscriptionRequest,
                              secret: str, *, start: FeedCursor | None = None, key: KeyedRequest | None = None
                              ) -> SubscriptionRow | None:
    """Store a new subscription; None when `key` was taken meanwhile (a request sent twice at once: the other
    one made it)."""
    subscription_id = new_subscription_id()
    nonce, sealed = box.seal(subscription_id, secret)
    with translate_errors():
        record = await pool.fetchrow(
            f"INSERT INTO subscriptions (id, url, kinds, types, bodies, owner_role, owner_label, owner_token, "
            f"secret_nonce, secret_sealed, secret_key_id, status, status_reason, idempotency_key, request_digest, "
            f"sender_digest, start_tx, start_position) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) "
            f"ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING {_COLUMNS}",
            subscription_id, request.url, [k.value for k in request.kinds] if request.kinds else None,
            request.types, request.bodies, owner.role, owner.label, owner.id, nonce, sealed, box.key_id,
            request.status, f"made paused by {owner.label}" if request.status == "paused" else None,
            key.key if key else None, key.request if key else None, key.sender if key else None,
            start.transaction_id if start else None, start.position if start else None,
        )
    return _row(record) if record is not None else None


class KeyedRequest(BaseModel):
    """A create sent under an `Idempotency-Key`: the key, and the digests of the request and of its sender
    (`domain.idempotency`)."""

    key: str
    request: str
    sender: str

    @classmethod
    def of(cls, key: str, body: SubscriptionRequest, owner: Principal) -> KeyedRequest:
        fields = body.model_dump(mode="json", exclude_defaults=True)
        return cls(key=key, request=digest({"type": "subscribe", "fields": fields}),
                   sender=digest({"role": owner.role, "label": owner.label}))


class Keyed(BaseModel):
    """The subscription an `Idempotency-Key` made, and where it started delivering."""

    row: SubscriptionRow
    request_digest: str
    sender_digest: str
    start: FeedCursor | None


async def subscription_under_key(pool: Pool, key: str) -> Keyed | None:
    with translate_errors():
        record = await pool.fetchrow(
            f"SELECT {_COLUMNS}, request_digest, sender_digest, start_tx, start_position FROM subscriptions "
            "WHERE idempotency_key = $1", key)
    if record is None:
        return None
    fields = dict(record)
    start_tx, start_position = fields.pop("start_tx"), fields.pop("start_position")
    request_digest, sender_digest = fields.pop("request_digest"), fields.pop("sender_digest")
    start = (FeedCursor(transaction_id=start_tx, position=start_position)
             if start_tx is not None and start_position is not None else None)
    return Keyed(row=SubscriptionRow.model_validate(fields), request_digest=request_digest,
                 sender_digest=sender_digest, start=start)


async def get_subscription(pool: Pool, subscription_id: str) -> SubscriptionRow | None:
    with translate_errors():
        record = await pool.fetchrow(f"SELECT {_COLUMNS} FROM subscriptions WHERE id = $1", subscription_id)
    return _row(record) if record is not None else None


async def list_subscriptions(pool: Pool, owner: Principal | None, before: str | None, limit: int,
                             status: Status | None = None) -> list[SubscriptionRow]:
    """Newest first; `owner` None: every subscription, else those `owns` gives it; only of `status` if given."""
    where: list[str] = []
    args: list[Any] = []
    if owner is not None:
        args += [owner.role, owner.label]
        where.append("owner_role = $1 AND owner_label = $2")
    if status is not None:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if before is not None:
        args.append(before)
        n = len(args)
        where.append(f"(created_at, id) < (SELECT created_at, id FROM subscriptions WHERE id = ${n})")
    args.append(limit)
    sql = (f"SELECT {_COLUMNS} FROM subscriptions" + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY created_at DESC, id DESC LIMIT ${len(args)}")
    with translate_errors():
        records = await pool.fetch(sql, *args)
    return [_row(r) for r in records]


async def change_subscription(pool: Pool, subscription_id: str, change: SubscriptionChange, by: Principal
                              ) -> SubscriptionRow | None:
    """Apply the fields of `change` that were given; the row after, or None when there is none. A status set
    to what it was changes nothing but `updated_at`; any change raises `revision`."""
    sets: list[str] = []
    args: list[Any] = [subscription_id]

    def put(column: str, value: Any) -> None:
        args.append(value)
        sets.append(f"{column} = ${len(args)}")

    given = change.model_fields_set
    if "url" in given and change.url is not None:
        put("url", change.url)
    if "kinds" in given:
        put("kinds", [k.value for k in change.kinds] if change.kinds else None)
    if "types" in given:
        put("types", change.types)
    if "bodies" in given:
        put("bodies", change.bodies)
    if "status" in given and change.status is not None:
        put("status", change.status)
        n = len(args)
        reason = f"paused by {by.label}" if change.status == "paused" else None
        args.append(reason)
        sets.append(f"status_reason = CASE WHEN status = ${n} THEN status_reason ELSE ${len(args)} END")
        sets.append(f"status_changed_at = CASE WHEN status = ${n} THEN status_changed_at ELSE now() END")
    sets += ["revision = revision + 1", "updated_at = now()"]
    with translate_errors():
        record = await pool.fetchrow(
            f"UPDATE subscriptions SET {', '.join(sets)} WHERE id = $1 RETURNING {_COLUMNS}", *args)
    return _row(record) if record is not None else None


async def resume_after_replay(pool: Pool, subscription_id: str) -> SubscriptionRow | None:
    """A failing subscription is active again once its cursor was moved (the event it gave up on may be behind)."""
    with translate_errors():
        record = await pool.fetchrow(
            "UPDATE subscriptions SET status = CASE WHEN status = 'failing' THEN 'active' ELSE status END, "
            "status_reason = CASE WHEN status = 'failing' THEN NULL ELSE status_reason END, "
            "status_changed_at = CASE WHEN status = 'failing' THEN now() ELSE status_changed_at END, "
            f"revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            subscription_id,
        )
    return _row(record) if record is not None else None


async def delete_subscription(pool: Pool, subscription_id: str) -> bool:
    """Delete the subscription and its deliveries; its workflow finds it gone and ends."""
    with translate_errors():
        deleted = await pool.fetchval("DELETE FROM subscriptions WHERE id = $1 RETURNING true", subscription_id)
    return bool(deleted)


async def list_deliveries(pool: Pool, subscription_id: str, before: int | None, limit: int) -> list[Delivery]:
    with translate_errors():
        records = await pool.fetch(
            "SELECT id, event_id::text AS event_id, case_id, event_type, attempt, status_code, error, started_at, "
            "latency_ms FROM deliveries WHERE subscription_id = $1 AND ($2::bigint IS NULL OR id < $2) "
            "ORDER BY id DESC LIMIT $3",
            subscription_id, before, limit,
        )
    return [Delivery(ok=r["status_code"] is not None and 200 <= r["status_code"] < 300, **dict(r)) for r in records]


async def owner_active(pool: Pool, row: SubscriptionRow) -> bool:
    """Whether the owner still holds an active token of its role and label (an admin's subscription: any admin
    token). A system whose tokens were all revoked receives nothing more."""
    with translate_errors():
        found = await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE role = $1 AND revoked_at IS NULL "
            "AND ($1 = 'admin' OR label = $2))",
            row.owner_role, row.owner_label,
        )
    return bool(found)


#: Attempts deleted per statement, and statements per cleanup: a look of the scan deletes at most 100,000.
PRUNE_BATCH = 5_000
PRUNE_BATCHES = 20


async def prune_deliveries(pool: Pool, older_than: datetime, *, batch: int = PRUNE_BATCH,
                           batches: int = PRUNE_BATCHES) -> int:
    """Delete the delivery attempts that started before `older_than`, oldest first, `batch` rows a statement
    (each its own short transaction, so no lock is held long), at most `batches` statements; how many went.
    What is left is for the next cleanup."""
    deleted = 0
    for _ in range(batches):
        with translate_errors():
            status = await pool.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE started_at < $1 "
                "ORDER BY started_at LIMIT $2)", older_than, batch)
        n = int(status.split()[-1])
        deleted += n
        if n < batch:
            break
    return deleted
