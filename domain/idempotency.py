"""Idempotency keys: a key names one request, and is refused for any other.

A command sent with a key (`Idempotency-Key`, its `command_id`) is applied once; the same key with the same
request again answers as a duplicate. The same key with another request is refused with the rule
`idempotency.key_reused` (the API answers 422), as a payment API refuses it, rather than answering with the
first command's result as if the second had been applied: a client that reuses a key by mistake learns it.

"The same request" is judged by two digests, kept in the metadata of the events the first request wrote,
beside `command_id`:

* `command_digest`: SHA-256 of the command's canonical JSON (sorted keys, NFC text, no insignificant space):
  its `type` and every field whose value is not the field's default, so that a field added later with a default
  does not change the digest of a command sent before it, and an omitted field equals its default sent
  explicitly. A command class may leave fields out (`IDEMPOTENCY_EXCLUDE`): a repair's `detail` is what the
  operator's tool saw, which a retry sees differently.
* `sender_digest`: SHA-256 of the sender (`Actor`: its id, role and body), so a key another token used is
  refused too.

Events written before the digests were kept have only `command_id`: their key answers as a duplicate whatever
the request, as it did then. Pure functions: the workflows and the API's client both use them.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

from pydantic import BaseModel

from .common import Actor, DomainError

RULE = "idempotency.key_reused"


def _canonical(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {_canonical(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def digest(value: Any) -> str:
    """SHA-256 (hex) of `value`'s canonical JSON."""
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def command_digest(command: BaseModel) -> str:
    """The digest of a command: its `type` and its fields that are not at their default."""
    exclude = set(getattr(command, "IDEMPOTENCY_EXCLUDE", ()))
    body = command.model_dump(mode="json", exclude_defaults=True, exclude=exclude)
    return digest({"type": getattr(command, "type", type(command).__name__), "fields": body})


def sender_digest(actor: Actor) -> str:
    """The digest of who sends a command."""
    return digest({"id": actor.id, "role": actor.role, "body": actor.body})


class SeenCommand(BaseModel):
    """What a case keeps of a request it applied under a key: its two digests."""

    command: str
    sender: str


def fingerprint(command: BaseModel, actor: Actor) -> SeenCommand:
    return SeenCommand(command=command_digest(command), sender=sender_digest(actor))


def metadata(command_id: str, seen: SeenCommand) -> dict[str, str]:
    """The metadata of each event a keyed command writes."""
    return {"command_id": command_id, "command_digest": seen.command, "sender_digest": seen.sender}


def from_metadata(meta: dict[str, Any]) -> SeenCommand | None:
    """The digests an event's metadata holds (None for an event written before they were kept)."""
    command, sender = meta.get("command_digest"), meta.get("sender_digest")
    if isinstance(command, str) and isinstance(sender, str):
        return SeenCommand(command=command, sender=sender)
    return None


def key_reused(command_id: str, first: SeenCommand | None, now: SeenCommand) -> DomainError | None:
    """The refusal of a request under a key already used for another one (None: the same request, or a key
    whose first request kept no digests)."""
    if first is None or first == now:
        return None
    what = [name for name, differs in (("the command", first.command != now.command),
                                       ("the sender", first.sender != now.sender)) if differs]
    return DomainError(RULE, f"Idempotency-Key {command_id!r} was already used for another request ("
                             f"{' and '.join(what)} differ{'s' if len(what) == 1 else ''}): send a new key for a "
                             "new request; nothing was changed")


def update_id(prefix: str, command_id: str, command: BaseModel, actor: Actor) -> str:
    """The Temporal Update id of a keyed command. Temporal answers a repeated Update id with the first
    Update's outcome without running the validator, so the id holds the request's digests too: the same
    request again is the same Update, another one under the same key is a new Update the case refuses."""
    seen = fingerprint(command, actor)
    return f"{prefix}{command_id}#{seen.command[:16]}{seen.sender[:16]}"
