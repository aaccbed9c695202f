"""What every case kind shares: who acts, how a rule refuses, and how events are named and stored.

Pure: standard library and pydantic only. Time and ids are passed in by the caller.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["intake", "body", "supervisor", "operator", "admin", "system"]


class DomainError(Exception):
    """A command the law or the case's state does not allow. `rule` names the rule, for people and machines."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


def require(condition: bool, rule: str, message: str) -> None:
    """Refuse with `DomainError(rule, message)` unless `condition` holds."""
    if not condition:
        raise DomainError(rule, message)


def envelope(command: Any, actor: Actor, now: datetime, legal_basis: str | None = None) -> dict[str, Any]:
    """The envelope fields of the events a command produces: when, who, the person's reason, the legal basis."""
    return {"occurred_at": now, "actor": actor.label, "reason": getattr(command, "reason", None),
            "legal_basis": legal_basis}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfc_deep(value: Any) -> Any:
    """`value` with every string in it (dictionary keys too) in Unicode NFC."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, dict):
        return {nfc_deep(k): nfc_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nfc_deep(v) for v in value]
    return value


class Text(BaseModel):
    """Base of commands and inputs: every string arrives in Unicode NFC, whatever the sender used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _nfc(cls, data: Any) -> Any:
        return nfc_deep(data) if isinstance(data, dict) else data


class Actor(Text):
    """Who acts: taken from the caller's login by the API (never from the request body), or the system."""

    id: str = Field(min_length=1, max_length=200)
    role: Role
    body: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.id}" + (f"@{self.body}" if self.body else "")


SYSTEM = Actor(id="danvan", role="system")


class Event(BaseModel):
    """A domain event: immutable, named in the past tense, with who, when, why and on what legal basis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SCHEMA_VERSION: ClassVar[int] = 1
    ENVELOPE: ClassVar[frozenset[str]] = frozenset({"occurred_at", "actor", "reason", "legal_basis"})

    occurred_at: datetime
    actor: str
    reason: str | None = None
    legal_basis: str | None = None

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__

    def payload(self) -> dict[str, Any]:
        """The event's own data, without the envelope fields that the event store keeps in columns."""
        return self.model_dump(mode="json", exclude=set(self.ENVELOPE))


class EventRegistry:
    """Maps stored event type names back to their classes (one registry per case kind)."""

    def __init__(self, *classes: type[Event]) -> None:
        self._by_name: dict[str, type[Event]] = {c.event_type(): c for c in classes}

    def parse(
        self,
        type_name: str,
        *,
        occurred_at: datetime,
        actor: str | None,
        reason: str | None,
        legal_basis: str | None,
        data: dict[str, Any],
    ) -> Event:
        cls = self._by_name.get(type_name)
        if cls is None:
            raise ValueError(f"unknown event type {type_name!r}")
        return cls.model_validate(
            {**data, "occurred_at": occurred_at, "actor": actor or "", "reason": reason, "legal_basis": legal_basis}
        )

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)


def content_digest(document: Any) -> str:
    """SHA-256 of a JSON-able document in canonical form (sorted keys, NFC): same content, same digest."""

    text = json.dumps(nfc_deep(document), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
