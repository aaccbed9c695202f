"""The event feed over HTTP (`GET /v1/events`, `GET /v1/cases/{id}/events`): cursors, filters, scope, waiting.

The feed is the store's global feed (`EventStore.read_feed`): events ordered by (writing transaction id,
position), read only below the oldest transaction still running, so that a transaction that took a low
position and committed late is never skipped. This module adds what an HTTP consumer needs on top:

- an opaque cursor (`CursorCodec`): the (transaction id, position) of the last event delivered, with an HMAC
  under a key derived from the installation's secret, so a cursor is stable (the same place always gives the
  same text, across restarts) and one that was edited or made up is refused (422, field `after`);
- filters by case kind, event type and body, and the token's scope (a body reads the events of the cases it
  may read, `api.auth.may_access_case`; intake those it sent), all in SQL over the `cases` projection, so a
  page is never cut short behind the consumer's back. A scoped or filtered page reads a bounded window of
  the feed (`SCAN_WINDOW`): when the window holds fewer matching events than asked, the page is short and says
  so (`caught_up` false) and its cursor moves to the end of the window, so the next page goes on from there
  and a consumer whose filter rarely matches does not rescan the feed from its last match on every poll;
- event data as a case's history shows it (`api.identities.shown_events`: an identity recorded in clear before
  sealing is withheld; sealed identities are only ever refs), and a read of a case under the denunciation
  regime recorded in `case_reads` as a read of its history is (`what`: `feed` or `events`);
- waiting (`FeedWatcher`): a request that finds nothing new may wait for the next commit. One task per API
  process polls the feed's head while anyone waits (every `POLL_INTERVAL`) and wakes every waiter when it
  moves; nobody polls when nobody waits. Not LISTEN/NOTIFY: a transaction that notifies takes a lock shared by
  the whole cluster while it commits, which would put every append in one line (the store's appends are
  tuned to run side by side, `bench/README.md`), and a listener connection would be held out of the pool.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from danvan.keys import derive_key
from domain import front_supervision, plan_cases, plan_tasks, report_cycles
from domain.petitions.events import REGISTRY as PETITION_REGISTRY
from eventstore import FeedCursor, Pool, RecordedEvent
from eventstore.store import _EVENT_COLUMNS, _event, translate_errors

from .identities import _DENUNCIATION_EVENTS, PETITION_KINDS, shown_events
from .queries import _Params, _readable_by
from .tokens import Principal

#: The key of the cursors' HMAC, derived from the installation's secret (`danvan.keys`).
CURSOR_KEY_LABEL = b"danvan feed cursor v1"
_CURSOR_PREFIX = "f1."
_CURSOR_LAYOUT = struct.Struct(">QQ")
_CURSOR_MAC = 12  # bytes of HMAC-SHA256 kept: 96 bits, nothing to gain from guessing one
#: Every event type a case can record: the registries of all case kinds (`GET /v1/events?types=` takes these).
EVENT_TYPES: frozenset[str] = frozenset(
    name
    for registry in (PETITION_REGISTRY, plan_tasks.REGISTRY, plan_cases.REGISTRY, report_cycles.REGISTRY,
                     front_supervision.REGISTRY)
    for name in registry.names
)
#: A scoped or filtered page reads at most this many events of the feed (times `limit`, within the bounds).
SCAN_FACTOR = 20
SCAN_MIN = 5_000
SCAN_MAX = 50_000
#: How often the watcher looks at the feed's head while a request waits (seconds).
POLL_INTERVAL = 0.1


class CursorCodec:
    """Opaque, stable feed cursors: `f1.` and base64url of the (transaction id, position) and their HMAC."""

    def __init__(self, secret: bytes) -> None:
        self._key = derive_key(secret, CURSOR_KEY_LABEL)

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).digest()[:_CURSOR_MAC]

    def encode(self, cursor: FeedCursor) -> str:
        raw = _CURSOR_LAYOUT.pack(cursor.transaction_id, cursor.position)
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw + self._mac(raw)).decode("ascii").rstrip("=")

    def decode(self, text: str) -> FeedCursor:
        """The place `text` names; ValueError when it is not a cursor this installation gave out."""
        if not text.startswith(_CURSOR_PREFIX) or len(text) > 64:
            raise ValueError("not a cursor of this feed")
        body = text[len(_CURSOR_PREFIX):]
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("not a cursor of this feed") from None
        if len(blob) != _CURSOR_LAYOUT.size + _CURSOR_MAC:
            raise ValueError("not a cursor of this feed")
        raw, mac = blob[: _CURSOR_LAYOUT.size], blob[_CURSOR_LAYOUT.size:]
        if not hmac.compare_digest(mac, self._mac(raw)):
            raise ValueError("the cursor was altered or was not given out by this installation")
        tx, position = _CURSOR_LAYOUT.unpack(raw)
        return FeedCursor(transaction_id=tx, position=position)


@dataclass(frozen=True)
class FeedFilter:
    """What a consumer asks for (None: no filter), and the scope of its token (`scope_of`)."""

    kinds: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    bodies: tuple[str, ...] | None = None
    #: Only the cases this body may read (a `body` token), or that this system sent (an `intake` token).
    reader: str | None = None
    source: str | None = None

    @property
    def plain(self) -> bool:
        """Nothing to filter: the whole feed."""
        return not (self.kinds or self.types or self.bodies or self.reader or self.source
                    or self.refuses_all)

    @property
    def refuses_all(self) -> bool:
        return self.reader == "" or self.source == ""


def scope_of(principal: Principal) -> dict[str, str]:
    """The scope of `principal` as `FeedFilter` arguments: nothing for those who read everything."""
    if principal.role == "body":
        return {"reader": principal.body_id or ""}  # a body token without a body reads nothing
    if principal.role == "intake":
        return {"source": principal.label or ""}
    return {}


def _conditions(filters: FeedFilter, params: _Params) -> list[str]:
    """The SQL conditions of `filters` over `events e`, each value a parameter."""
    where: list[str] = []
    if filters.types:
        where.append(f"e.type = ANY({params.add(list(filters.types))}::text[])")
    case_where: list[str] = []
    if filters.kinds:
        case_where.append(f"kind = ANY({params.add(list(filters.kinds))}::text[])")
    if filters.bodies:
        p = params.add(list(filters.bodies))
        case_where.append(f"(lead_body = ANY({p}::text[]) OR bodies && {p}::text[])")
    if filters.reader:
        case_where.append(_readable_by(params.add(filters.reader)))
    if filters.source:
        case_where.append(f"source = {params.add(filters.source)}")
    if case_where:
        where.append("e.stream_id IN (SELECT case_id FROM cases WHERE " + " AND ".join(case_where) + ")")
    return where


_VISIBLE = "e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"


@dataclass(frozen=True)
class Page:
    events: list[RecordedEvent]
    cursor: FeedCursor
    #: Nothing more is committed after `cursor` that this filter could match, as of this read.
    caught_up: bool


async def read_page(pool: Pool, after: FeedCursor, limit: int, filters: FeedFilter) -> Page:
    """The next events of the feed strictly after `after` that `filters` lets through, at most `limit`."""
    if filters.refuses_all:
        return Page([], after, True)
    if filters.plain:
        with translate_errors():
            rows = await pool.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events e WHERE (e.tx_id, e.position) > ($1::text::xid8, $2) "
                f"AND {_VISIBLE} ORDER BY e.tx_id, e.position LIMIT $3",
                str(after.transaction_id), after.position, limit,
            )
        events = [_event(r) for r in rows]
        cursor = FeedCursor(transaction_id=events[-1].transaction_id, position=events[-1].position) if events \
            else after
        return Page(events, cursor, len(events) < limit)

    scan = max(SCAN_MIN, min(SCAN_MAX, limit * SCAN_FACTOR))
    params = _Params()
    lower_tx, lower_pos = params.add(str(after.transaction_id)), params.add(after.position)
    upper_tx, upper_pos = params.add(None), params.add(None)
    where = _conditions(filters, params)
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM events e WHERE (e.tx_id, e.position) > ({lower_tx}::text::xid8, {lower_pos}) "
        f"AND (e.tx_id, e.position) <= ({upper_tx}::text::xid8, {upper_pos}) AND " + " AND ".join(where)
        + f" ORDER BY e.tx_id, e.position LIMIT {params.add(limit)}"
    )
    with translate_errors():
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # One snapshot for both statements: the window's end is below the oldest running transaction,
            # so everything up to it is final, and the filtered read sees exactly the window's rows.
            scanned, end = await _window(conn, after, scan)
            if scanned == 0:
                return Page([], after, True)
            values = list(params.values)
            values[2], values[3] = str(end.transaction_id), end.position
            rows = await conn.fetch(sql, *values)
    events = [_event(r) for r in rows]
    if len(events) == limit:
        last = events[-1]
        return Page(events, FeedCursor(transaction_id=last.transaction_id, position=last.position), False)
    return Page(events, end, scanned < scan)


async def _window(conn: Any, after: FeedCursor, scan: int) -> tuple[int, FeedCursor]:
    """How many visible events follow `after`, up to `scan`, and the place of the last of them."""
    row = await conn.fetchrow(
        "WITH w AS MATERIALIZED (SELECT e.tx_id, e.position FROM events e "
        f"WHERE (e.tx_id, e.position) > ($1::text::xid8, $2) AND {_VISIBLE} "
        "ORDER BY e.tx_id, e.position LIMIT $3), "
        "l AS (SELECT tx_id, position FROM w ORDER BY tx_id DESC, position DESC LIMIT 1) "
        "SELECT (SELECT count(*) FROM w) AS n, (SELECT tx_id::text FROM l) AS tx, (SELECT position FROM l) AS pos",
        str(after.transaction_id), after.position, scan,
    )
    if not row["n"]:
        return 0, after
    return int(row["n"]), FeedCursor(transaction_id=int(row["tx"]), position=int(row["pos"]))


async def feed_head(pool: Pool) -> FeedCursor:
    """The place of the last event the feed can deliver now (the start when there is none)."""
    with translate_errors():
        row = await pool.fetchrow(
            f"SELECT e.tx_id::text AS tx, e.position FROM events e WHERE {_VISIBLE} "
            "ORDER BY e.tx_id DESC, e.position DESC LIMIT 1"
        )
    return FeedCursor(transaction_id=int(row["tx"]), position=int(row["position"])) if row else FeedCursor()


def _key(cursor: FeedCursor) -> tuple[int, int]:
    return cursor.transaction_id, cursor.position


class FeedWatcher:
    """Wakes the requests that wait for the feed to move past their cursor.

    While at least one request waits, one task reads the feed's head every `interval` seconds (`feed_head`,
    one short index scan) and, when it moved, wakes every waiter; each then reads its own page. Nothing is
    read when nobody waits.
    """

    def __init__(self, pool: Pool, *, interval: float = POLL_INTERVAL) -> None:
        self.pool = pool
        self.interval = interval
        self.waiters = 0
        self._head: tuple[int, int] | None = None
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def wait_past(self, cursor: FeedCursor, timeout: float) -> bool:
        """Wait until the feed's head is past `cursor`, at most `timeout` seconds; whether it is."""
        if timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.waiters += 1
        try:
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._watch(), name="danvan-feed-watcher")
            while True:
                if self._head is not None and self._head > _key(cursor):
                    return True
                left = deadline - loop.time()
                if left <= 0:
                    return False
                moved = self._moved
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await moved.wait()
        finally:
            self.waiters -= 1

    async def _watch(self) -> None:
        try:
            while self.waiters > 0:
                try:
                    head = _key(await feed_head(self.pool))
                except Exception:  # the store is down for a moment: the waiters time out, or the next read works
                    head = self._head or (0, 0)
                if head != self._head:
                    self._head = head
                    moved, self._moved = self._moved, asyncio.Event()
                    moved.set()
                await asyncio.sleep(self.interval)
        finally:
            self._head = None  # a new watch starts from a fresh read
            self._task = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# -- what is shown, and the read audit ------------------------------------------------------------------------


def shown(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """The events as a case's history shows them to anyone (`api.identities.shown_events`)."""
    return shown_events(events)


async def cases_under_denunciation_regime(pool: Pool, case_ids: Iterable[str]) -> set[str]:
    """Which of `case_ids` are under the denunciation regime (`api.identities.under_denunciation_regime`, the
    same rule for many cases in one statement: the case or a case of its family is a denunciation, or ever was
    one by its events)."""
    ids = sorted(set(case_ids))
    if not ids:
        return set()
    # The planner takes a recursive family for 10,000 cases, so it would hash the events of the whole store for
    # the last condition and compile the plan it thinks so costly (JIT): a second a page at 100,000 events. OFFSET 0
    # keeps that condition a look at each family member's own events (by its index); JIT is off for the statement.
    with translate_errors():
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute("SET LOCAL jit = off")
            rows = await conn.fetch(
                "WITH RECURSIVE roots AS ("
                "  SELECT c.case_id, c.kind FROM cases c WHERE c.case_id = ANY($1::text[]) AND c.kind = ANY($2::text[])"
                "), family(root, case_id) AS ("
                "  SELECT case_id, case_id FROM roots"
                "  UNION SELECT f.root, linked.value FROM family f JOIN cases c ON c.case_id = f.case_id,"
                "    jsonb_array_elements_text(coalesce(c.summary->'linked_cases', '[]'::jsonb)"
                "      || CASE WHEN c.summary->>'parent_case_id' IS NULL THEN '[]'::jsonb"
                "              ELSE jsonb_build_array(c.summary->'parent_case_id') END) AS linked(value)"
                ") SELECT case_id FROM roots WHERE kind = 'denunciation' "
                "UNION SELECT DISTINCT f.root FROM family f WHERE"
                "  EXISTS (SELECT 1 FROM cases c WHERE c.case_id = f.case_id AND c.kind = 'denunciation')"
                "  OR EXISTS (SELECT 1 FROM events e WHERE e.stream_id = f.case_id"
                f"            AND ({_DENUNCIATION_EVENTS}) OFFSET 0)",
                ids, sorted(PETITION_KINDS),
            )
    return {r["case_id"] for r in rows}


async def record_reads(pool: Pool, events: Sequence[RecordedEvent], principal: Principal, what: str) -> None:
    """Record in `case_reads` a read of every case of `events` under the denunciation regime, one row a case,
    before the answer is sent (as `GET /v1/cases/{id}/history` does): when it cannot be written, the read fails."""
    audited = await cases_under_denunciation_regime(pool, (e.stream_id for e in events))
    if not audited:
        return
    with translate_errors():
        await pool.execute(
            "INSERT INTO case_reads (case_id, reader, token_id, role, body, what) "
            "SELECT c, $2, $3, $4, $5, $6 FROM unnest($1::text[]) AS c",
            sorted(audited), principal.label, principal.id, principal.role, principal.body_id, what,
        )
