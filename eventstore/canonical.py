"""The canonical form of an event and its chained SHA-256 hash.

The canonical form is the JSON text that the append sends to PostgreSQL and that `verify` rebuilds from a
stored row: sorted keys, no spaces, UTF-8 without escapes, every string in Unicode NFC, integral floats as
integers (jsonb keeps numbers as decimals, so 2.0 and 2 must hash alike). `recorded_at`, the global position
and the transaction id are assigned by the database and are not part of it.

    hash(event) = SHA-256(prev_hash_bytes || canonical_utf8)     prev_hash of version 1 = 32 zero bytes
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from .errors import InvalidEventError
from .models import NewEvent


def nfc(value: Any) -> Any:
    """Return `value` with every string (keys included) in NFC and integral floats turned into ints."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidEventError("text must not contain the NUL character")
        # Most text is NFC already; the check is much cheaper than normalising.
        if value.isascii() or unicodedata.is_normalized("NFC", value):
            return value
        return unicodedata.normalize("NFC", value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(f"number {value!r} cannot be stored (not finite)")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {nfc(str(k)): nfc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nfc(v) for v in value]
    raise InvalidEventError(f"value of type {type(value).__name__} is not JSON data")


def timestamp(value: datetime) -> str:
    """UTC, microseconds, `Z`: the one way a time is written in the canonical form."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_document(stream_id: str, version: int, event: NewEvent) -> dict[str, Any]:
    return {
        "stream_id": nfc(stream_id),
        "version": version,
        "event_id": str(event.event_id),
        "type": nfc(event.type),
        "schema_version": event.schema_version,
        "occurred_at": timestamp(event.occurred_at),
        "actor": nfc(event.actor),
        "reason": nfc(event.reason),
        "legal_basis": nfc(event.legal_basis),
        "data": nfc(event.data),
        "metadata": nfc(event.metadata),
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class _FloatSeen(Exception):
    pass


def _no_float(text: str) -> float:
    raise _FloatSeen


def _fast_text(document: dict[str, Any]) -> str | None:
    """The canonical text without walking the document, when nothing in it needs changing: every string is
    already NFC (NFC text contains NFC pieces, and JSON's own characters are ASCII) and there is no float
    to normalise. None when the slow path is needed."""
    try:
        text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    if "\\u0000" in text or not (text.isascii() or unicodedata.is_normalized("NFC", text)):
        return None
    try:
        json.loads(text, parse_float=_no_float)
    except _FloatSeen:
        return None
    return text


def canonical_text(stream_id: str, version: int, event: NewEvent) -> str:
    document = {
        "stream_id": stream_id,
        "version": version,
        "event_id": str(event.event_id),
        "type": event.type,
        "schema_version": event.schema_version,
        "occurred_at": timestamp(event.occurred_at),
        "actor": event.actor,
        "reason": event.reason,
        "legal_basis": event.legal_basis,
        "data": event.data,
        "metadata": event.metadata,
    }
    return _fast_text(document) or dumps(canonical_document(stream_id, version, event))


def chain_hash(prev_hash_hex: str, canonical: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + canonical.encode("utf-8")).hexdigest()


def case_text(case: BaseModel) -> str:
    """A projection row as JSON text, every string in NFC (checked on the whole text: much cheaper)."""
    text = case.model_dump_json()
    return text if text.isascii() or unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
