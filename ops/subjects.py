"""What the operators' stalled queue holds besides cases: webhook subscriptions that gave up delivering, and
checkpoints that are late.

* `subscription_failing`: a subscription whose event was not accepted for its policy's `retry_for` (3 days by
  default), or whose owner has no active token left (`workflows.subscription`). Nothing more is delivered to it
  until it is tried again (`retry`: its event again now), delivered from another cursor (`replay`, skipping or
  going back), or stopped (`pause`).
* `checkpoint_late`: a checkpoint signer that has not signed for `integrity.signers.LATE_INTERVALS` of its
  intervals (`integrity.signers.late_signers`, the one rule). Its remedy asks the signer for a checkpoint now.

Each is one SQL query, made by the stalled scan at every look (`ops.scan`) and written into `stalled_findings`
with `subject` set, so the queue, `GET /v1/ops/stalled` and the metrics read cases and these in one statement.
A finding's `case_id` is then the subscription's id or the signer's. The remedies applied are kept in
`ops_remedies` (`record_remedy`, with who and why, under an `Idempotency-Key`), as a case's repairs are kept
in its stream.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from domain.idempotency import RULE as KEY_REUSED
from domain.idempotency import digest
from eventstore import EventStore, Pool
from integrity.signers import late_detail, late_signers

from .stalled import REMEDIES, Stalled, Subject

FAILING_SQL = """
SELECT id, url, owner_role, owner_label, status_reason, status_changed_at
  FROM subscriptions
 WHERE status = 'failing' AND ($1::text IS NULL OR id = $1)
 ORDER BY status_changed_at, id
"""


def shown_url(url: str) -> str:
    """A subscription's URL as the queue shows it: scheme, host and path (a query may hold a receiver's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


async def failing_subscriptions(pool: Pool, subscription_id: str | None = None) -> list[Stalled]:
    rows = await pool.fetch(FAILING_SQL, subscription_id)
    return [Stalled(case_id=r["id"], subject="subscription", reason="subscription_failing",
                    since=r["status_changed_at"], remedies=list(REMEDIES["subscription_failing"]),
                    detail=(f"webhooks of {r['owner_role']} {r['owner_label']!r} to {shown_url(r['url'])} stopped: "
                            f"{r['status_reason'] or 'failing'}"),
                    failure=r["status_reason"], owner=f"{r['owner_role']} {r['owner_label']}",
                    target=shown_url(r["url"])) for r in rows]


async def late_checkpoints(pool: Pool, now: datetime) -> list[Stalled]:
    return [Stalled(case_id=s.signer, subject="checkpoint", reason="checkpoint_late", since=s.due_since,
                    remedies=list(REMEDIES["checkpoint_late"]), detail=late_detail(s, now), failure=s.last_error,
                    last_action=s.last_signed_at, every_seconds=s.every_seconds)
            for s in await late_signers(pool, now)]


async def subject_stalls(store: EventStore, *, now: datetime | None = None) -> list[Stalled]:
    """Every failing subscription and late checkpoint."""
    now = now or datetime.now(UTC)
    return [*await failing_subscriptions(store.pool), *await late_checkpoints(store.pool, now)]


async def one_subject(store: EventStore, subject: Subject, subject_id: str) -> list[Stalled]:
    """What is stalled of one subscription (or of the checkpoints' signers, `subject_id` the signer's)."""
    if subject == "subscription":
        return await failing_subscriptions(store.pool, subject_id)
    return [s for s in await late_checkpoints(store.pool, datetime.now(UTC)) if s.case_id == subject_id]


# -- the remedies' record -----------------------------------------------------------------------------------


class Remedy(BaseModel):
    """A remedy applied to a subscription or to the checkpoints, as recorded: who, why, when, and (a request
    the checkpoint signer carries out) when it was done and how it went."""

    id: int
    subject: Subject
    subject_id: str
    action: str
    actor: str
    actor_role: str
    reason: str
    detail: dict[str, Any]
    recorded_at: datetime
    done_at: datetime | None = None
    outcome: str | None = None
    duplicate: bool = False


class RemedyKeyReused(Exception):
    """The `Idempotency-Key` was used for another remedy, or by another operator."""

    rule = KEY_REUSED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_REMEDY_COLUMNS = ("id, subject, subject_id, action, actor, actor_role, reason, detail, recorded_at, done_at, "
                   "outcome, command_digest, sender_digest")


def _remedy(record: Any, duplicate: bool = False) -> Remedy:
    fields = dict(record)
    fields.pop("command_digest", None)
    fields.pop("sender_digest", None)
    if isinstance(fields["detail"], str):
        fields["detail"] = json.loads(fields["detail"])
    return Remedy(**fields, duplicate=duplicate)


def request_digests(action: str, reason: str, request: dict[str, Any], actor: str, role: str) -> tuple[str, str]:
    """The digests that make "the same request" under a key: the remedy asked for (its action, reason and
    parameters, not what the operator's tool saw), and who asks."""
    return digest({"action": action, "reason": reason, "request": request}), digest({"id": actor, "role": role})


async def remedy_under_key(pool: Pool, subject: Subject, subject_id: str, key: str | None, action: str,
                           reason: str, request: dict[str, Any], actor: str, role: str) -> Remedy | None:
    """The remedy already recorded under `key` for the same request (answered as a duplicate), None when there
    is none; `RemedyKeyReused` when the key was used for another request or by another operator."""
    if key is None:
        return None
    row = await pool.fetchrow(f"SELECT {_REMEDY_COLUMNS} FROM ops_remedies WHERE subject = $1 AND subject_id = $2 "
                              "AND command_id = $3", subject, subject_id, key)
    if row is None:
        return None
    command, sender = request_digests(action, reason, request, actor, role)
    differ = [what for what, same in (("the remedy", row["command_digest"] == command),
                                      ("the operator", row["sender_digest"] == sender)) if not same]
    if differ:
        raise RemedyKeyReused(f"Idempotency-Key {key!r} was used for another request: {' and '.join(differ)} "
                              "differ; nothing was done")
    return _remedy(row, duplicate=True)


async def record_remedy(pool: Pool, subject: Subject, subject_id: str, key: str | None, action: str, reason: str,
                        request: dict[str, Any], actor: str, role: str, seen: dict[str, Any] | None = None) -> Remedy:
    """Record a remedy (once under `key`: a concurrent request under the same key answers the one recorded);
    its `detail` is the request's parameters and what was `seen` (the status before...)."""
    command, sender = request_digests(action, reason, request, actor, role)
    detail = {**request, **(seen or {})}
    row = await pool.fetchrow(
        f"INSERT INTO ops_remedies (subject, subject_id, action, actor, actor_role, reason, detail, command_id, "
        f"command_digest, sender_digest) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10) "
        f"ON CONFLICT (subject, subject_id, command_id) WHERE command_id IS NOT NULL DO NOTHING "
        f"RETURNING {_REMEDY_COLUMNS}",
        subject, subject_id, action, actor, role, reason, json.dumps(detail, ensure_ascii=False), key, command,
        sender)
    if row is not None:
        return _remedy(row)
    again = await remedy_under_key(pool, subject, subject_id, key, action, reason, request, actor, role)
    assert again is not None
    return again


async def get_remedy(pool: Pool, remedy_id: int) -> Remedy | None:
    row = await pool.fetchrow(f"SELECT {_REMEDY_COLUMNS} FROM ops_remedies WHERE id = $1", remedy_id)
    return _remedy(row) if row is not None else None
