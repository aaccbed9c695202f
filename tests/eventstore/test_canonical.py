"""The canonical text: the fast writer (orjson, for plain data) gives exactly the text of the reference writer
(`json.dumps` over the normalised document), or steps aside. A different byte would break every hash chain."""

from __future__ import annotations

import json
import random
import sys
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from eventstore import InvalidEventError, NewEvent
from eventstore.canonical import _fast_text, canonical_document, canonical_text, dumps, event_params

T0 = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC)


class IE(IntEnum):
    ONE = 1


class StrE(StrEnum):
    A = "Ấp 3"


def reference(stream_id: str, version: int, event: NewEvent) -> str:
    return dumps(canonical_document(stream_id, version, event))


def event(data: dict[str, Any], **fields: Any) -> NewEvent:
    return NewEvent(event_id=uuid.uuid4(), type="Noted", occurred_at=T0, data=data, **fields)


def test_every_code_point_is_written_as_json_dumps_writes_it() -> None:
    points = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        chunk = points[start : start + 4096]
        assert [orjson.dumps(c).decode() for c in chunk] == [json.dumps(c, ensure_ascii=False) for c in chunk]


@pytest.mark.parametrize("number", [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, True, False])
def test_integers_and_booleans_are_written_alike(number: int) -> None:
    assert orjson.dumps({"n": number}).decode() == json.dumps({"n": number}, separators=(",", ":"))


@pytest.mark.parametrize(
    "data",
    [
        {"tiêu_đề": "Đơn khiếu nại", "ghi chú": ["Ủy ban", "Mặt trận Tổ quốc"], "z": None, "a": {"b": [1, True]}},
        {"dòng": "một\ndòng\thai \"trích\" \\ / \x01 \x7f \u2028 \U0001f600 \ufeff"},
        {"\U0001f600": 1, "\uffff": 2, "é": 3, "e": 4, "E": 5, "": 6, "ee": 7},  # key order: code points
        {"n": 2**64, "m": -(2**63) - 1},  # beyond 64 bits: orjson refuses, the reference writer takes it
        {"x": 2.0, "y": [1.5, 1e16, -0.0, 3e-7]},  # floats: normalised by the reference path only
        {"nfd": unicodedata.normalize("NFD", "Nguyễn Thị Hằng")},
        {"t": ("a", 1)},
        {"inner": {1: "integer key"}},
        {"ie": IE.ONE, "se": StrE.A},
        {"deep": [[[[[[[[[["x"]]]]]]]]]]},
    ],
)
def test_the_fast_writer_matches_the_reference_or_steps_aside(data: dict[str, Any]) -> None:
    e = event(data, actor="cán bộ", reason=None, legal_basis="Luật Khiếu nại 2011, Điều 27", metadata={"k": "v"})
    assert canonical_text("Hồ-sơ-1", 3, e) == reference("Hồ-sơ-1", 3, e)


def test_random_documents_match_the_reference() -> None:
    rng = random.Random(20261127)
    alphabet = "aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯ \"\\/\n\t\x00\x1fàảãáạằẳẵắặầẩẫấậềểễếệ😀\u0301"

    def value(depth: int) -> Any:
        kind = rng.randrange(8 if depth < 4 else 5)
        if kind == 0:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        if kind == 1:
            return rng.choice([0, 1, -7, 2**40, 2**63 - 1, 2**70])
        if kind == 2:
            return rng.choice([True, False, None])
        if kind == 3:
            return rng.choice([0.5, 2.0, -1e-9, 1e22])
        if kind == 4:
            return "Đơn " + str(rng.randrange(1000))
        if kind in (5, 6):
            return {"".join(rng.choice(alphabet) for _ in range(4)): value(depth + 1) for _ in range(rng.randrange(4))}
        return [value(depth + 1) for _ in range(rng.randrange(4))]

    checked = 0
    for _ in range(2000):
        data = {"k": value(0), "l": value(0)}
        e = event(data)
        try:
            expected = reference("s", 1, e)
        except InvalidEventError:  # NUL in text: both refuse
            with pytest.raises(InvalidEventError):
                canonical_text("s", 1, e)
            continue
        assert canonical_text("s", 1, e) == expected
        checked += 1
    assert checked > 1000


def test_the_fast_writer_steps_aside_for_what_it_cannot_write_exactly() -> None:
    def fast(data: dict[str, Any]) -> tuple[bytes, bytes, bytes] | None:
        return _fast_text("s", 1, event(data))

    assert fast({"x": 1.0}) is None  # a float: normalised by the reference path
    assert fast({"x": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=7)))}) is None
    assert fast({"x": uuid.UUID(int=1)}) is None
    assert fast({"x": "a\x00b"}) is None
    assert fast({"x": unicodedata.normalize("NFD", "Hằng")}) is None
    assert fast({"x": ["Hằng", 1, None, True, {"y": "z"}]}) is not None


def test_the_columns_are_those_of_the_canonical_form() -> None:
    """What the one-statement append stores in each column is what the hashed text says, on either path."""
    for data in ({"tên": "Nguyễn Thị Hằng", "n": [1, None]}, {"x": 2.0, "nfd": unicodedata.normalize("NFD", "Hằng")}):
        e = event(data, actor=unicodedata.normalize("NFD", "cán bộ"), metadata={"k": 1.5})
        text, event_id, type_, schema_version, occurred_at, actor, reason, legal_basis, data_json, meta_json = (
            event_params("Hồ-sơ-1", 2, e)
        )
        document = json.loads(text)
        assert text.decode() == reference("Hồ-sơ-1", 2, e)
        assert (str(event_id), type_, schema_version, actor, reason, legal_basis) == (
            document["event_id"], document["type"], document["schema_version"], document["actor"],
            document["reason"], document["legal_basis"],
        )
        assert occurred_at == datetime.fromisoformat(document["occurred_at"])
        assert (json.loads(data_json), json.loads(meta_json)) == (document["data"], document["metadata"])


@pytest.mark.parametrize(
    "when",
    [
        T0,
        T0.replace(microsecond=0),
        T0.replace(microsecond=1),
        T0.astimezone(timezone(timedelta(hours=7))),
        T0.replace(microsecond=0).astimezone(timezone(timedelta(hours=-3, minutes=-30))),
        datetime.fromisoformat("2026-03-02T08:30:15.120+00:00"),
        T0.replace(tzinfo=timezone(timedelta(0), "GMT")),
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("Europe/London")),  # winter: offset 0, named otherwise
        datetime(2026, 7, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("Europe/London")),  # summer: +01:00
    ],
)
def test_times_are_written_as_the_reference_writes_them(when: datetime) -> None:
    from pydantic import TypeAdapter

    for value in (when, TypeAdapter(datetime).validate_python(when.isoformat())):  # pydantic's own tzinfo too
        e = NewEvent(event_id=uuid.uuid4(), type="Noted", occurred_at=value, data={"a": "b"})
        assert canonical_text("s", 1, e) == reference("s", 1, e)


def test_a_time_in_any_zone_is_written_in_utc_with_microseconds() -> None:
    from eventstore.canonical import timestamp

    hanoi = timezone(timedelta(hours=7))
    assert timestamp(datetime(2026, 3, 2, 15, 30, tzinfo=hanoi)) == "2026-03-02T08:30:00.000000Z"
    assert timestamp(datetime(2026, 3, 2, 8, 30, 0, 5, tzinfo=UTC)) == "2026-03-02T08:30:00.000005Z"
    assert timestamp(datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(0), "GMT"))) == "2026-03-02T08:30:00.000000Z"


def test_values_that_are_not_json_are_refused() -> None:
    with pytest.raises(InvalidEventError):
        canonical_text("s", 1, event({"when": datetime(2026, 1, 1, tzinfo=UTC)}))
    with pytest.raises(InvalidEventError):
        canonical_text("s", 1, event({"x": float("nan")}))
