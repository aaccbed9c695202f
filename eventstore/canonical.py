"""The canonical form of an event and its chained SHA-256 hash.

The canonical form is the JSON text that the append sends to PostgreSQL and that `verify` rebuilds from a
stored row: sorted keys, no spaces, UTF-8 without escapes, every string in Unicode NFC, integral floats as
integers (jsonb keeps numbers as decimals, so 2.0 and 2 must hash alike). Integers of any size up to Python's
text limit (4,300 digits; beyond it an append is refused by name) are exact: the store's JSON decoder
(`eventstore.store.loads`) reads them beyond 64 bits without going through a float. `recorded_at`, the global
position and the transaction id are assigned by the database and are not part of it.

    hash(event) = SHA-256(prev_hash_bytes || canonical_utf8)     prev_hash of version 1 = 32 zero bytes
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel

from .errors import InvalidEventError
from .models import CaseRow, NewEvent


def nfc(value: Any) -> Any:
    """Return `value` with every string (keys included) in NFC and integral floats turned into ints."""
    if isinstance(value, str):
        return _nfc_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return _checked_int(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        return {nfc(str(k)): nfc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nfc(v) for v in value]
    raise InvalidEventError(f"value of type {type(value).__name__} is not JSON data")


def _nfc_text(value: str) -> str:
    if "\x00" in value:
        raise InvalidEventError("text must not contain the NUL character")
    # Most text is NFC already; the check is much cheaper than normalising.
    if value.isascii() or unicodedata.is_normalized("NFC", value):
        return value
    return unicodedata.normalize("NFC", value)


def _checked_int(value: int) -> int:
    if not -_INT_LIMIT < value < _INT_LIMIT:
        raise InvalidEventError(f"integer of more than {_INT_DIGITS} digits cannot be stored")
    return value


def _number(value: float) -> int | float:
    if not math.isfinite(value):
        raise InvalidEventError(f"number {value!r} cannot be stored (not finite)")
    # An integral float is written as the exact integer it is (1e300 as its 301 digits), which jsonb keeps
    # exactly and `eventstore.store.loads` reads back exactly.
    return int(value) if value.is_integer() else value


_NO_OFFSET = timedelta(0)
# Python writes and reads integers of at most this many digits as text (`sys.int_info`), the only way JSON has.
_INT_DIGITS = sys.int_info.default_max_str_digits
_INT_LIMIT = 10**_INT_DIGITS


def timestamp(value: datetime) -> str:
    """UTC, microseconds, `Z`: the one way a time is written in the canonical form."""
    if value.utcoffset() == _NO_OFFSET:  # in UTC already (the usual case): written once, not converted first
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
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


_SCALARS = frozenset({str, int, bool, type(None)})
_SORTED = orjson.OPT_SORT_KEYS
_SORTED_UTC_Z = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def _plain(document: dict[str, Any]) -> bool:
    """True when `document` holds nothing but str, int, bool, None, lists and dicts (no float, no subclass,
    nothing another encoder would write its own way): JSON that orjson writes exactly as `dumps` does
    (checked for every code point, and the 64-bit integer range, in `tests/eventstore`)."""
    pending: list[Any] = [document]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is dict:
            items = value.values()
        elif kind is list:
            items = value
        else:
            return False
        for item in items:
            if type(item) not in _SCALARS:
                pending.append(item)
    return True


def _fast_text(stream_id: str, version: int, event: NewEvent) -> tuple[bytes, bytes, bytes] | None:
    """The canonical form, and the JSON of data and of metadata, without normalising anything, when nothing
    needs it: data and metadata are plain JSON data (no float to normalise) and the whole text is NFC already
    (NFC text contains NFC pieces, and JSON's own characters are ASCII). orjson writes it in a twentieth of the
    time `json.dumps` takes; data and metadata are written once, for the text and for their columns. None when
    the slow path is needed."""
    data, metadata = event.data, event.metadata
    try:
        if not (_plain(data) and _plain(metadata)):
            return None
        data_json = orjson.dumps(data, option=_SORTED)
        metadata_json = orjson.dumps(metadata, option=_SORTED)
        # The other fields are validated by `NewEvent`: str (or None), int and a UUID, which orjson writes
        # as `str(uuid)`; a str or int subclass is written as its value, by both encoders. A time in UTC
        # with a fraction of a second is written by orjson as `timestamp` writes it (with none, orjson
        # leaves out the `.000000`).
        occurred_at = event.occurred_at
        when: datetime | str = (
            occurred_at if occurred_at.microsecond and occurred_at.utcoffset() == _NO_OFFSET else timestamp(occurred_at)
        )
        text = orjson.dumps(
            {
                "stream_id": stream_id,
                "version": version,
                "event_id": event.event_id,
                "type": event.type,
                "schema_version": event.schema_version,
                "occurred_at": when,
                "actor": event.actor,
                "reason": event.reason,
                "legal_basis": event.legal_basis,
                "data": orjson.Fragment(data_json),
                "metadata": orjson.Fragment(metadata_json),
            },
            option=_SORTED_UTC_Z,
        )
    except (orjson.JSONEncodeError, RecursionError):  # an integer beyond 64 bits, very deep nesting
        return None
    if b"\\u0000" in text or not (text.isascii() or unicodedata.is_normalized("NFC", text.decode())):
        return None
    return text, data_json, metadata_json


def event_params(stream_id: str, version: int, event: NewEvent) -> tuple[Any, ...]:
    """An event as the append stores it: its canonical form in UTF-8 (the bytes that are hashed), then its
    columns as that form has them (every string in NFC): event_id, type, schema_version, occurred_at, actor,
    reason, legal_basis, and data and metadata as JSON text. `stream_id` must be in NFC already."""
    fast = _fast_text(stream_id, version, event)
    if fast is not None:
        text, data_json, metadata_json = fast
        return (
            text,
            event.event_id,
            event.type,
            event.schema_version,
            event.occurred_at,
            event.actor,
            event.reason,
            event.legal_basis,
            data_json.decode(),
            metadata_json.decode(),
        )
    document = canonical_document(stream_id, version, event)
    return (
        dumps(document).encode(),
        event.event_id,
        document["type"],
        event.schema_version,
        event.occurred_at,
        document["actor"],
        document["reason"],
        document["legal_basis"],
        dumps(document["data"]),
        dumps(document["metadata"]),
    )


def canonical_text(stream_id: str, version: int, event: NewEvent) -> str:
    """The canonical form of `event` at `version` of `stream_id` (in NFC already)."""
    fast = _fast_text(stream_id, version, event)
    return fast[0].decode() if fast is not None else dumps(canonical_document(stream_id, version, event))


def chain_hash(prev_hash_hex: str, canonical: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + canonical.encode("utf-8")).hexdigest()


def nfc_text(text: str | None) -> str | None:
    """`text` in NFC (the check alone, for the text that is NFC already)."""
    if text is None or text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def case_params(case: CaseRow) -> tuple[Any, ...]:
    """A projection row as the typed parameters of the single-event append (`eventstore.store`), every string
    in NFC: kind, status, title, lead_body, bodies, district, commune, source, external_ref, received_at,
    due_at, overdue, and the summary as JSON text."""
    try:
        summary = orjson.dumps(case.summary).decode()
    except (orjson.JSONEncodeError, RecursionError):
        summary = json.dumps(case.model_dump(mode="json")["summary"], ensure_ascii=False)
    texts = (case.kind, case.status, case.title, case.lead_body, case.district, case.commune, case.source,
             case.external_ref)
    # One check over every string: a line break composes with nothing and reorders nothing, so the joined
    # text is NFC exactly when each piece is.
    joined = "\n".join([*(t for t in texts if t is not None), *case.bodies, summary])
    if not (joined.isascii() or unicodedata.is_normalized("NFC", joined)):
        fixed = [nfc_text(t) for t in texts]
        return (*fixed[:4], [nfc_text(b) for b in case.bodies], *fixed[4:], case.received_at, case.due_at,
                case.overdue, nfc_text(summary))
    kind, status, title, lead_body, district, commune, source, external_ref = texts
    return (kind, status, title, lead_body, case.bodies, district, commune, source, external_ref, case.received_at,
            case.due_at, case.overdue, summary)


def case_text(case: BaseModel) -> str:
    """A projection row as JSON text, every string in NFC (checked on the whole text: much cheaper)."""
    text = case.model_dump_json()
    return text if text.isascii() or unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
