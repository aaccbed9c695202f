"""The PostgreSQL event store (asyncpg): append, read, the global feed, verification.

This module is the one boundary where asyncpg's errors become the project's own (`eventstore.errors`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from . import canonical, hooks
from .errors import (
    ConcurrencyError,
    EventIdConflictError,
    EventStoreError,
    InvalidEventError,
    StoreUnavailableError,
)
from .models import (
    GENESIS_HASH,
    AppendResult,
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

if TYPE_CHECKING:
    from . import rulesets
from .pool import Pool

#: The largest version a stream can reach (`events.version` is a PostgreSQL `integer`).
MAX_VERSION = 2**31 - 1
_EVENT_COLUMNS = """
    stream_id, version, position, tx_id::text::bigint AS transaction_id, event_id, type, schema_version,
    occurred_at, recorded_at, actor, reason, legal_basis, data, metadata,
    encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash
"""

# A stream's head as `_ChainChecker` compares it with the stream's last event.
_HEAD_COLUMNS = "stream_id, version, encode(last_hash, 'hex') AS last_hash, encode(prev_hash, 'hex') AS prev_hash"

_CASE_COLUMNS = """
    case_id, kind, status, title, lead_body, bodies, district, commune, source, external_ref,
    received_at, due_at, overdue, version, summary, created_at, updated_at
"""

# One event, the common append, in one statement instead of a call of `danvan_append` (a quarter less server
# work: one plan instead of PL/pgSQL statements run one by one, and every column typed instead of JSON to take
# apart; `bench/README.md` has the counts). Parameters: $1 stream, $2 expected version, $3 the event's
# canonical form in UTF-8 (hashed exactly as the function hashes it), $4-$12 its columns
# (`canonical.event_params`), $13-$25 the `cases` row (`canonical.case_params`; all NULL: no row). The
# statement does only the plain case: the stream is at $2 (or, for the first event, does not exist yet). It
# then appends and returns the new version; otherwise it writes nothing and returns no row, and
# `EventStore.append` calls the function, which tells a retry from a conflict under the stream's lock. Same
# rows, hashes and errors either way: `tests/eventstore` holds both paths to one contract. Each statement is
# marked `danvan_append` for whoever reads pg_stat_activity.
_GENESIS = "'\\x" + "00" * 32 + "'::bytea"
_APPEND_EVENT = """
    e AS (
        INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at,
                            actor, reason, legal_basis, data, metadata, prev_hash, hash)
        SELECT $1, h.version, $4::uuid, $5::text, $6::integer, $7::timestamptz, $8::text, $9::text, $10::text,
               $11::text::jsonb, $12::text::jsonb, h.prev, h.hash
          FROM head h),
    c AS (
        INSERT INTO cases (case_id, kind, status, title, lead_body, bodies, district, commune, source,
                           external_ref, received_at, due_at, overdue, version, summary)
        SELECT $1, $13::text, $14::text, $15::text, $16::text, $17::text[], $18::text, $19::text, $20::text,
               $21::text, $22::timestamptz, $23::timestamptz, $24::boolean, h.version, $25::text::jsonb
          FROM head h WHERE $13::text IS NOT NULL
        ON CONFLICT (case_id) DO UPDATE SET
            kind = EXCLUDED.kind, status = EXCLUDED.status, title = EXCLUDED.title,
            lead_body = EXCLUDED.lead_body, bodies = EXCLUDED.bodies, district = EXCLUDED.district,
            commune = EXCLUDED.commune, source = EXCLUDED.source, external_ref = EXCLUDED.external_ref,
            received_at = EXCLUDED.received_at, due_at = EXCLUDED.due_at, overdue = EXCLUDED.overdue,
            version = EXCLUDED.version, summary = EXCLUDED.summary, updated_at = now())
    SELECT version FROM head
"""
_APPEND_FIRST = f"""/* danvan_append: the first event of a stream */
    WITH head AS (
        INSERT INTO streams (stream_id, version, last_hash, prev_hash)
        SELECT $1, 1, sha256({_GENESIS} || $3::bytea), {_GENESIS} WHERE $2::integer = 0
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING version, prev_hash AS prev, last_hash AS hash),
    {_APPEND_EVENT}"""
# `prev_hash = last_hash` takes the old value: every SET expression reads the row as it was (migration 0007).
_APPEND_NEXT = f"""/* danvan_append: one event */
    WITH head AS (
        UPDATE streams SET version = $2 + 1, prev_hash = last_hash, last_hash = sha256(last_hash || $3::bytea),
                           updated_at = now()
         WHERE stream_id = $1 AND version = $2 AND $2 >= 0
        RETURNING version, prev_hash AS prev, last_hash AS hash),
    {_APPEND_EVENT}"""
_NO_CASE = (None,) * 13

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    # The server's farewell to an idle connection (a backend ending as the server goes down) leaves asyncpg's
    # protocol unable to follow, and the next statement on that connection fails with this.
    asyncpg.exceptions.InternalClientError,
)


# orjson reads an integer beyond 64 bits as a float (losing digits); the standard library reads it exactly.
_LONG_NUMBER = re.compile("[0-9]{19}")


def loads(text: str) -> Any:
    """JSON from the database: orjson's speed, and exact integers of any size (any run of 19 digits, in a
    number or in text, sends the document to `json.loads`, which is exact: rare, and correct either way)."""
    if _LONG_NUMBER.search(text) is not None:
        return json.loads(text)
    return orjson.loads(text)


async def init_connection(conn: asyncpg.Connection) -> None:
    """The JSON codecs of every connection of the store (and of the append benchmark's raw pool)."""
    # Decoding is orjson's (a long history is two JSON documents a row: a quarter less time to read than with
    # the standard library); encoding stays json's, whose text the tests and the hash chain were written with.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda v: json.dumps(v, ensure_ascii=False),
            decoder=loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float | None = None) -> Pool:
    """The store's pool (`eventstore.pool`), its connections speaking JSON for json/jsonb columns. With
    `timeout` (seconds), connecting, waiting for a free connection and every statement are bounded by it."""
    bounds: dict[str, float] = {}
    if timeout is not None:
        bounds = {"connect_timeout": timeout, "acquire_timeout": timeout, "command_timeout": timeout}
    try:
        return await Pool(dsn, min_size=min_size, max_size=max_size, init=init_connection, **bounds).open()
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc


class translate_errors:
    """Turn asyncpg's errors into the event store's own, once, here. (A class rather than a generator-based
    context manager: it wraps every call, and costs a fifth as much.)"""

    __slots__ = ("expected", "stream_id")

    def __init__(self, stream_id: str = "", expected: int = -1) -> None:
        self.stream_id = stream_id
        self.expected = expected

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            return
        if isinstance(exc, asyncpg.PostgresError):
            raise self._translated(exc) from exc
        if isinstance(exc, _UNAVAILABLE):
            raise StoreUnavailableError(f"PostgreSQL unavailable: {exc}") from exc

    def _translated(self, exc: asyncpg.PostgresError) -> EventStoreError:
        """The store's own error for a PostgreSQL one: the append's conflicts (DV001-DV003 and the unique keys),
        bad data (class 22), the database unavailable (classes 08, 57P, 53, and 57014: `statement_timeout`)."""
        stream_id, expected, state = self.stream_id, self.expected, exc.sqlstate
        if state == "DV001":
            return ConcurrencyError(stream_id, expected, int(getattr(exc, "detail", None) or "-1"))
        if state == "DV002":
            return EventIdConflictError(stream_id, str(exc))
        if state == "DV003" or (state and state.startswith("22")):  # 22: bad text, out-of-range values
            return InvalidEventError(str(exc))
        if isinstance(exc, asyncpg.UniqueViolationError):
            constraint = getattr(exc, "constraint_name", "")
            if constraint == "events_event_id_key":
                return EventIdConflictError(stream_id, "an event id is already stored in another place")
            if constraint == "events_stream_version_key":
                return ConcurrencyError(stream_id, expected, -1)
        if state and (state.startswith(("08", "57P", "53")) or state == "57014"):
            return StoreUnavailableError(str(exc))
        return EventStoreError(f"{type(exc).__name__}: {exc}")


_EVENT_FIELDS = tuple(RecordedEvent.model_fields)  # in the model's order, which serialisation follows


def _event(row: asyncpg.Record) -> RecordedEvent:
    """An event from its row: every field is a column, typed by PostgreSQL and validated on the way in, so the
    model is built without validating anything again (what `model_construct` does, without its per-field pass
    over defaults, which costs more than the rest of reading a long stream). `tests/eventstore` checks that the
    result equals a validated model."""
    event: RecordedEvent = RecordedEvent.__new__(RecordedEvent)
    object.__setattr__(event, "__dict__", {name: row[name] for name in _EVENT_FIELDS})
    object.__setattr__(event, "__pydantic_fields_set__", set(_EVENT_FIELDS))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


class EventStore:
    """Streams of events with a hash chain each, a global feed, and the `cases` projection."""

    def __init__(self, pool: Pool, *, one_statement: bool = True) -> None:
        self.pool = pool
        # A single event goes through the one-statement append (`_APPEND_FIRST`, `_APPEND_NEXT`); off, every
        # append calls `danvan_append` (the contract tests run both ways).
        self.one_statement = one_statement

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float | None = None
                   ) -> EventStore:
        return cls(await create_pool(dsn, min_size=min_size, max_size=max_size, timeout=timeout))

    async def close(self) -> None:
        await self.pool.close()

    # -- writing ---------------------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        case: CaseRow | None = None,
    ) -> AppendResult:
        """Append `events` after `expected_version`, in one transaction with the case's projection row.

        Raises `ConcurrencyError` when the stream is elsewhere, `EventIdConflictError` when an id is stored
        with other content. Appending the very same events again (a retry after a lost acknowledgement)
        succeeds and changes nothing: the result says `duplicate=True`.

        Each append is reported to the observers of `eventstore.hooks` (its time and outcome), if any.
        """
        if not hooks.observed():
            return await self._append(stream_id, expected_version, events, case)
        started = time.perf_counter()
        try:
            result = await self._append(stream_id, expected_version, events, case)
        except ConcurrencyError:
            hooks.appended(time.perf_counter() - started, len(events), "conflict")
            raise
        except BaseException:
            hooks.appended(time.perf_counter() - started, len(events), "error")
            raise
        hooks.appended(time.perf_counter() - started, len(events), "duplicate" if result.duplicate else "appended")
        return result

    async def _append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        case: CaseRow | None,
    ) -> AppendResult:
        if not events:
            raise InvalidEventError("an append needs at least one event")
        if expected_version < 0:
            raise InvalidEventError("expected_version must be 0 (new stream) or more")
        stream_id = canonical.nfc(stream_id)
        if len(events) == 1 and self.one_statement:
            event = canonical.event_params(stream_id, expected_version + 1, events[0])
            params = canonical.case_params(case) if case is not None else _NO_CASE
            with translate_errors(stream_id, expected_version):
                version = await self.pool.fetchval(
                    _APPEND_FIRST if expected_version == 0 else _APPEND_NEXT,
                    stream_id,
                    expected_version,
                    *event,
                    *params,
                )
            if version is not None:
                return AppendResult(stream_id=stream_id, version=version, duplicate=False)
            # Not at the expected version: a retry or a conflict, which the function tells apart under the
            # stream's lock.
            texts = [event[0].decode()]
        else:
            texts = [
                canonical.canonical_text(stream_id, expected_version + i, event)
                for i, event in enumerate(events, start=1)
            ]
        case_json = canonical.case_text(case) if case is not None else None
        with translate_errors(stream_id, expected_version):
            row = await self.pool.fetchrow(
                "SELECT out_version, out_duplicate FROM danvan_append($1, $2, $3, $4::text::jsonb)",
                stream_id,
                expected_version,
                texts,
                case_json,
            )
        assert row is not None
        return AppendResult(stream_id=stream_id, version=row["out_version"], duplicate=row["out_duplicate"])

    # -- reading ---------------------------------------------------------------------------------------

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it does not exist."""
        with translate_errors(stream_id):
            version = await self.pool.fetchval("SELECT version FROM streams WHERE stream_id = $1", stream_id)
        return int(version or 0)

    async def read_stream(
        self, stream_id: str, *, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events in version order, from `from_version` on (none past the largest version a
        stream can reach, `MAX_VERSION`)."""
        if from_version > MAX_VERSION:
            return []
        with translate_errors(stream_id):
            rows = await self.pool.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 "
                "ORDER BY version LIMIT $3",
                stream_id,
                from_version,
                limit,
            )
        return [_event(r) for r in rows]

    async def command_metadata(self, stream_id: str, command_id: str) -> dict[str, Any] | None:
        """The metadata of the first event the command sent under `command_id` wrote in the stream (None: the
        stream holds no event of that key)."""
        with translate_errors(stream_id):
            meta = await self.pool.fetchval(
                "SELECT metadata FROM events WHERE stream_id = $1 AND metadata ->> 'command_id' = $2 "
                "ORDER BY version LIMIT 1",
                stream_id,
                command_id,
            )
        if meta is None:
            return None
        return dict(json.loads(meta) if isinstance(meta, str) else meta)

    async def read_feed(self, after: FeedCursor | None = None, *, limit: int = 500) -> FeedPage:
        """The next events of the global feed, strictly after `after`.

        Positions are taken at insert but transactions commit in any order, so paging on position alone
        skips an event whose transaction took a low position and committed late. The feed therefore
        orders by (writing transaction id, position) and returns only events of transactions older than
        the oldest one still running (`pg_snapshot_xmin`): every such transaction has finished, so nothing
        can ever appear before the cursor again. The price is latency: a long-running transaction holds
        the feed back until it ends. Events of one transaction are delivered together, in position order.
        """
        after = after or FeedCursor()
        with translate_errors():
            rows = await self.pool.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events "
                "WHERE (tx_id, position) > ($1::text::xid8, $2) "
                "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
                "ORDER BY tx_id, position LIMIT $3",
                str(after.transaction_id),
                after.position,
                limit,
            )
        events = [_event(r) for r in rows]
        cursor = (
            FeedCursor(transaction_id=events[-1].transaction_id, position=events[-1].position)
            if events
            else after
        )
        return FeedPage(events=events, cursor=cursor)

    async def tail(
        self, after: FeedCursor | None = None, *, poll_interval: float = 0.2, batch: int = 500
    ) -> AsyncIterator[RecordedEvent]:
        """Follow the global feed forever (until cancelled), every event exactly once, in feed order."""
        cursor = after or FeedCursor()
        while True:
            page = await self.read_feed(cursor, limit=batch)
            for event in page.events:
                yield event
            cursor = page.cursor
            if len(page.events) < batch:
                await asyncio.sleep(poll_interval)

    # -- the cases projection --------------------------------------------------------------------------

    async def get_case(self, case_id: str) -> CaseRecord | None:
        with translate_errors(case_id):
            row = await self.pool.fetchrow(f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1", case_id)
        return CaseRecord.model_validate(dict(row)) if row else None

    async def read_verified(
        self, stream_id: str, *, signed: tuple[int, str] | None = None, label: str = "the checkpoint"
    ) -> tuple[list[RecordedEvent], VerifyReport]:
        """The stream's events and the integrity of exactly those rows, read once in one snapshot (what a
        case's history shows: `read_stream` then `verify` would read the stream twice). `signed` is the
        (version, hash) a signed checkpoint holds for the stream, when there is one (`integrity`)."""
        checker = _ChainChecker({stream_id: signed} if signed else None, label)
        with translate_errors(stream_id):
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                head = await conn.fetchrow(f"SELECT {_HEAD_COLUMNS} FROM streams WHERE stream_id = $1", stream_id)
                rows = await conn.fetch(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version", stream_id
                )
        heads = dict([_head(head)]) if head else {}
        events = [_event(r) for r in rows]
        for event in events:
            checker.feed(event, heads)
        checker.finish(heads)
        return events, checker.report(stream_id)

    # -- integrity -------------------------------------------------------------------------------------

    async def verify(
        self,
        stream_id: str | None = None,
        *,
        signed: Mapping[str, tuple[int, str]] | None = None,
        label: str = "the checkpoint",
    ) -> VerifyReport:
        """Walk the hash chain of one stream (or of all) and name, for every stream that does not verify, its
        first version that does not.

        Detects an edited row (its hash no longer matches its content), a deleted row (a gap, or a head
        in `streams` beyond the last event), and reordered rows (a version whose `prev_hash` does not link
        to the event before it). With `signed`, the (version, hash) of each stream in a signed checkpoint
        (named `label` in the problems), also a chain recomputed after an edit, a stream truncated with its
        head rewound, and a stream removed.
        """
        if signed is not None and stream_id is not None:
            signed = {stream_id: signed[stream_id]} if stream_id in signed else {}
        checker = _ChainChecker(signed, label)
        with translate_errors(stream_id or ""):
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                heads: dict[str, tuple[int, str, str]] = dict(
                    _head(r)
                    for r in await conn.fetch(
                        f"SELECT {_HEAD_COLUMNS} FROM streams WHERE $1::text IS NULL OR stream_id = $1", stream_id
                    )
                )
                query = (
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE $1::text IS NULL OR stream_id = $1 "
                    "ORDER BY stream_id, version"
                )
                async for row in conn.cursor(query, stream_id, prefetch=1000):
                    checker.feed(_event(row), heads)
                checker.finish(heads)
        return checker.report(stream_id)

    # -- rule documents (`eventstore.rulesets`) ----------------------------------------------------------

    async def store_rule_documents(self, docs: Iterable[rulesets.Document]) -> None:
        """Store rule documents once by digest (those stored already are left as they are)."""
        from . import rulesets

        await rulesets.store(self.pool, docs)

    async def rule_documents(self, digests: Sequence[str]) -> list[StoredDocument]:
        """The stored rule documents among `digests`, as stored (checking them is their reader's)."""
        from . import rulesets

        return await rulesets.fetch(self.pool, digests)


def _head(row: asyncpg.Record) -> tuple[str, tuple[int, str, str]]:
    return row["stream_id"], (row["version"], row["last_hash"], row["prev_hash"])


class _ChainChecker:
    """Walks events ordered by (stream, version) and remembers the first break of every stream.

    `expected` maps a stream to the (version, hash) a signed checkpoint holds for it: the event at that
    version must carry that hash, and the stream must reach it. Then a chain recomputed after an edit, a
    truncation with its head rewound, and a stream deleted outright are found too, which the chain alone
    cannot show (whoever rewrites rows can rewrite hashes; they cannot sign a checkpoint).
    """

    def __init__(self, expected: Mapping[str, tuple[int, str]] | None = None, label: str = "the checkpoint") -> None:
        self.streams = 0
        self.events = 0
        self.current: str | None = None
        self.next_version = 1
        self.prev_hash = GENESIS_HASH  # the hash of the last event checked
        self.last_link = GENESIS_HASH  # and its prev_hash
        self.seen: set[str] = set()
        self.broken: dict[str, BrokenStream] = {}
        self.expected = expected or {}
        self.label = label
        self.current_bad = False

    @property
    def bad_stream(self) -> str | None:
        return next(iter(self.broken), None)

    def _fail(self, stream_id: str, version: int, problem: str, kind: str) -> None:
        if stream_id not in self.broken:
            self.broken[stream_id] = BrokenStream(stream_id=stream_id, first_bad_version=version, kind=kind,
                                                  problem=problem)
        if stream_id == self.current:
            self.current_bad = True

    def _close_stream(self, heads: Mapping[str, tuple[int, str, str]]) -> None:
        if self.current is None or self.current_bad:
            return
        last = self.next_version - 1
        expected = self.expected.get(self.current)
        if expected is not None and expected[0] > last:
            self._fail(self.current, last + 1, f"truncated: the events end at version {last}, but {self.label} "
                       f"holds version {expected[0]}", "truncated")
            return
        head = heads.get(self.current)
        if head is None:
            self._fail(self.current, last, "the stream has events but no head row in `streams`", "head")
        elif head[0] != last:
            self._fail(self.current, last + 1,
                       f"the head says version {head[0]} but the events end at version {last}", "head")
        elif head[1] != self.prev_hash:
            self._fail(self.current, last, "the head's hash does not match the last event's hash", "head")
        elif head[2] != self.last_link:
            self._fail(self.current, last, "the head's previous hash does not match the last event's prev_hash",
                       "head")

    def feed(self, event: RecordedEvent, heads: Mapping[str, tuple[int, str, str]]) -> None:
        if event.stream_id != self.current:
            self._close_stream(heads)
            self.current = event.stream_id
            self.current_bad = event.stream_id in self.broken
            self.seen.add(event.stream_id)
            self.streams += 1
            self.next_version = 1
            self.prev_hash = GENESIS_HASH
            self.last_link = GENESIS_HASH
        self.events += 1
        if self.current_bad:
            return
        if event.version != self.next_version:
            self._fail(event.stream_id, self.next_version, f"version {self.next_version} is missing", "missing")
            return
        if event.prev_hash != self.prev_hash:
            self._fail(event.stream_id, event.version, "prev_hash does not link to the event before it", "link")
            return
        expected = canonical.chain_hash(
            event.prev_hash, canonical.canonical_text(event.stream_id, event.version, event)
        )
        if expected != event.hash:
            self._fail(event.stream_id, event.version, "the stored content does not match its hash", "edited")
            return
        signed = self.expected.get(event.stream_id)
        if signed is not None and signed[0] == event.version and signed[1] != event.hash:
            self._fail(event.stream_id, event.version,
                       f"rewritten: the chain verifies but version {event.version} is not the one {self.label} "
                       "signed (an event at or before it was edited and the chain recomputed)", "rewritten")
            return
        self.last_link = event.prev_hash
        self.prev_hash = event.hash
        self.next_version += 1

    def finish(self, heads: Mapping[str, tuple[int, str, str]]) -> None:
        self._close_stream(heads)
        for stream_id, (version, _, _) in sorted(heads.items()):
            if stream_id not in self.seen and version > 0:
                self._fail(stream_id, 1, f"the head says version {version} but the stream has no events", "missing")
        for stream_id, (version, _) in sorted(self.expected.items()):
            if stream_id not in self.seen and stream_id not in heads:
                self._fail(stream_id, 1, f"removed: {self.label} holds it at version {version}, the database "
                           "has neither its events nor its head", "removed")

    def report(self, stream_id: str | None) -> VerifyReport:
        broken = sorted(self.broken.values(), key=lambda b: b.stream_id)
        first = broken[0] if broken else None
        return VerifyReport(
            stream_id=stream_id,
            streams_checked=self.streams,
            events_checked=self.events,
            ok=not broken,
            first_bad_stream=first.stream_id if first else None,
            first_bad_version=first.first_bad_version if first else None,
            problem=first.problem if first else None,
            broken=broken,
        )
