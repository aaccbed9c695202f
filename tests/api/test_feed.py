"""The event feed over HTTP: `GET /v1/events` and `GET /v1/cases/{id}/events`, on the real stack."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio

from api.feed import CursorCodec, feed_head
from eventstore import CaseRow, EventStore, NewEvent, canonical

from .support import Api, petition, seed_case, token, unique, unique_body

SECRET_NAME = "Phạm Văn Kín Tiếng"
SECRET_PHONE = "0912000111"


def new_events(types: list[str], note: str = "ghi chú có dấu: Nguyễn Thị Hằng") -> list[NewEvent]:
    now = datetime.now(UTC)
    return [NewEvent(event_id=uuid.uuid4(), type=t, occurred_at=now, actor="chuyên viên", reason="thử nghiệm",
                     data={"n": i, "note": note}) for i, t in enumerate(types, start=1)]


async def head(api: Api, store: EventStore) -> str:
    """The cursor of the feed's end now: a test reads what it writes after this."""
    codec: CursorCodec = api.app.state.feed_cursors
    return codec.encode(await feed_head(store.pool))


async def page(api: Api, tok: str, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/events", tok, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def read_all(api: Api, tok: str, after: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every event after `after` until caught up, page by page."""
    events: list[dict[str, Any]] = []
    cursor = after
    for _ in range(10_000):
        answer = await page(api, tok, after=cursor, **params)
        events += answer["events"]
        cursor = answer["next_cursor"]
        if answer["caught_up"]:
            return events, cursor
    raise AssertionError("the feed never caught up")


def of(events: list[dict[str, Any]], cases: set[str]) -> list[tuple[str, int]]:
    return [(e["case_id"], e["version"]) for e in events if e["case_id"] in cases]


class Tokens:
    supervisor: str
    admin: str
    operator: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    t = Tokens()
    t.supervisor = await token(store, "supervisor", label="giám sát viên")
    t.admin = await token(store, "admin", label="quản trị")
    t.operator = await token(store, "operator", label="vận hành")
    return t


async def test_pages_deliver_every_event_once_in_commit_order_with_case_version_type_time_actor_data_hash(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    start = await head(api, store)
    cases = [await seed_case(store, events=5) for _ in range(3)]
    extra = new_events(["Assigned", "ProgressRecorded"])
    await store.append(cases[0], 5, extra)
    events, end = await read_all(api, tokens.supervisor, start, limit=4)
    mine = [e for e in events if e["case_id"] in set(cases)]
    assert of(mine, set(cases)) == [(c, v) for c in cases for v in range(1, 6)] + [(cases[0], 6), (cases[0], 7)]
    stored = {(e.stream_id, e.version): e for c in cases for e in await store.read_stream(c)}
    for e in mine:
        s = stored[(e["case_id"], e["version"])]
        assert (e["type"], e["actor"], e["data"], e["hash"], e["prev_hash"], e["event_id"]) == (
            s.type, s.actor, s.data, s.hash, s.prev_hash, str(s.event_id))
        assert datetime.fromisoformat(e["occurred_at"]) == s.occurred_at
        assert datetime.fromisoformat(e["recorded_at"]) == s.recorded_at
    assert mine[-1]["data"]["note"] == "ghi chú có dấu: Nguyễn Thị Hằng"  # NFC, diacritics kept
    # The cursor is stable: the same place gives the same text, and reading from it again gives the same events
    # (the end itself may have moved on: other tests' cases and workflows go on writing meanwhile).
    first = await page(api, tokens.supervisor, after=start, limit=4)
    assert (await page(api, tokens.supervisor, after=start, limit=4))["next_cursor"] == first["next_cursor"]
    again, _ = await read_all(api, tokens.supervisor, start, limit=4)
    assert of(again, set(cases)) == of(mine, set(cases))
    # Nothing more of these cases after the end (other tests' cases may go on writing meanwhile).
    assert [e for e in (await page(api, tokens.supervisor, after=end))["events"] if e["case_id"] in set(cases)] == []
    # The very first page starts at the beginning of the feed.
    first = await page(api, tokens.admin, limit=1)
    assert len(first["events"]) == 1 and first["events"][0]["version"] == 1


async def test_filters_by_kind_type_and_body_page_without_holes(api: Api, store: EventStore, tokens: Tokens) -> None:
    start = await head(api, store)
    complaint = await seed_case(store, kind="complaint", lead_body="UBND_TINH")
    task = await seed_case(store, kind="plan_task", lead_body="SO_TAI_NGUYEN", bodies=["UBND_TINH"])
    other = await seed_case(store, kind="plan_task", lead_body="SO_NOI_VU")
    for case_id in (complaint, task, other):
        await store.append(case_id, 1, new_events(["Assigned", "ProgressRecorded", "Assigned"]))
    mine = {complaint, task, other}

    # In commit order: the three first events, then the appends case by case (v2 Assigned, v3 Progress, v4 Assigned).
    order = [(c, 1) for c in (complaint, task, other)] + [(c, v) for c in (complaint, task, other) for v in (2, 3, 4)]

    def expected(cases: set[str], versions: set[int]) -> list[tuple[str, int]]:
        return [(c, v) for c, v in order if c in cases and v in versions]

    by_kind, _ = await read_all(api, tokens.supervisor, start, kind="plan_task", limit=2)
    assert of(by_kind, mine) == expected({task, other}, {1, 2, 3, 4})
    by_type, _ = await read_all(api, tokens.supervisor, start, type="Assigned", limit=1)
    assert of(by_type, mine) == expected(mine, {2, 4})
    by_both, _ = await read_all(api, tokens.supervisor, start, type=["Assigned", "ProgressRecorded"],
                                kind=["complaint", "plan_task"], limit=3)
    assert of(by_both, mine) == expected(mine, {2, 3, 4})
    by_body, _ = await read_all(api, tokens.supervisor, start, body="UBND_TINH")
    assert of(by_body, mine) == expected({complaint, task}, {1, 2, 3, 4})
    two_bodies, _ = await read_all(api, tokens.supervisor, start, body=["SO_NOI_VU", "SO_TAI_NGUYEN"])
    assert of(two_bodies, mine) == expected({task, other}, {1, 2, 3, 4})


async def test_unknown_filter_values_a_malformed_or_tampered_cursor_and_a_long_wait_are_422(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    good = await head(api, store)
    raw = good[3:]
    flipped = good[:3] + raw[:5] + ("A" if raw[5] != "A" else "B") + raw[6:]
    cases = [
        ({"kind": "petition"}, "kind.0", "enum"),
        ({"type": "NoSuchEvent"}, "type", "unknown_event_type"),
        ({"body": "KHONG_CO_CO_QUAN"}, "body", "unknown_body"),
        ({"after": "12-34"}, "after", "cursor_invalid"),
        ({"after": "f1.!!!"}, "after", "cursor_invalid"),
        ({"after": flipped}, "after", "cursor_invalid"),
        ({"after": CursorCodec(b"x" * 32).encode(await feed_head(store.pool))}, "after", "cursor_invalid"),
        ({"wait": "31"}, "wait", "less_than_equal"),
        ({"wait": "-1"}, "wait", "greater_than_equal"),
        ({"limit": "0"}, "limit", "greater_than_equal"),
    ]
    reads = await store.pool.fetchval("SELECT count(*) FROM case_reads")
    for params, field, rule in cases:
        response = await api.get("/v1/events", tokens.supervisor, params=params)
        assert response.status_code == 422, (params, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert [(f["field"], f["rule"]) for f in error["fields"]] == [(field, rule)], params
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads") == reads
    assert (await api.get("/v1/events")).status_code == 401


async def test_each_token_sees_only_the_events_of_the_cases_it_may_read(api: Api, store: EventStore) -> None:
    start_text = await head(api, store)
    lead, coordinator, stranger, front = unique_body("LEAD"), unique_body("COORD"), unique_body("NONE"), \
        unique_body("FRONT")
    source = unique("feed-backoffice")
    led = await seed_case(store, lead_body=lead, bodies=[coordinator], source=source, events=2)
    tied = await seed_case(store, lead_body=unique_body("X"), summary={"authority": {"front": [front]}}, events=2)
    elsewhere = await seed_case(store, lead_body=unique_body("Y"), source=unique("other-system"), events=2)
    mine = {led, tied, elsewhere}
    seen: dict[str, list[tuple[str, int]]] = {}
    for name, tok in {
        "lead": await token(store, "body", lead), "coordinator": await token(store, "body", coordinator),
        "front": await token(store, "body", front), "stranger": await token(store, "body", stranger),
        "intake": await token(store, "intake", label=source), "other intake": await token(store, "intake"),
        "supervisor": await token(store, "supervisor"), "operator": await token(store, "operator"),
    }.items():
        events, _ = await read_all(api, tok, start_text, limit=1)
        seen[name] = of(events, mine)
    both = [(led, 1), (led, 2)]
    assert seen["lead"] == both and seen["coordinator"] == both and seen["intake"] == both
    assert seen["front"] == [(tied, 1), (tied, 2)]
    assert seen["stranger"] == [] and seen["other intake"] == []
    everything = [(c, v) for c in (led, tied, elsewhere) for v in (1, 2)]
    assert seen["supervisor"] == everything and seen["operator"] == everything


async def test_sealed_identities_never_appear_and_reads_of_a_denunciation_are_recorded(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    start = await head(api, store)
    source = unique("feed-intake")
    intake = await token(store, "intake", label=source)
    body = petition(source, kind="denunciation", receiving_body="UBND_TINH",
                    petitioner={"name": SECRET_NAME, "address": "Ngõ Vắng", "phone": SECRET_PHONE})
    opened = await api.post("/v1/petitions", intake, json=body)
    assert opened.status_code == 201, opened.text
    denunciation = opened.json()["case_id"]
    # A petition recorded before every petitioner was sealed holds the identity in its first event.
    old = unique("pet-old")
    clear = new_events(["PetitionReceived"])[0].model_copy(update={"data": {"intake": {
        "kind": "complaint", "petitioner": {"name": SECRET_NAME, "phone": SECRET_PHONE, "count": 1}}}})
    await store.append(old, 0, [clear], CaseRow(kind="complaint", status="received", lead_body="UBND_TINH"))

    events: list[dict[str, Any]] = []
    for _ in range(100):  # the case's first events are appended by its workflow
        events, _ = await read_all(api, tokens.supervisor, start)
        seen = {e["case_id"] for e in events}
        if denunciation in seen and old in seen:  # a transaction still open elsewhere may hold either back
            break
        await asyncio.sleep(0.1)
    received = [e for e in events if e["case_id"] == denunciation and e["type"] == "PetitionReceived"]
    assert len(received) == 1
    assert received[0]["data"]["intake"]["petitioner"]["ref"].startswith("sealed-")
    shown_old = [e for e in events if e["case_id"] == old]
    assert shown_old[0]["data"]["intake"]["petitioner"]["withheld"] is True
    for tok in (tokens.supervisor, await token(store, "body", "UBND_TINH"), intake):
        text = (await api.get("/v1/events", tok, params={"after": start, "limit": 1000})).text
        assert SECRET_NAME not in text and SECRET_PHONE not in text
        text = (await api.get(f"/v1/cases/{old}/events", tokens.supervisor)).text
        assert SECRET_NAME not in text and SECRET_PHONE not in text
    reads = await store.pool.fetch("SELECT reader, role, what FROM case_reads WHERE case_id = $1 ORDER BY id",
                                   denunciation)
    assert {(r["role"], r["what"]) for r in reads} >= {("supervisor", "feed"), ("body", "feed"), ("intake", "feed")}
    # A page that holds no event of the case is not a read of it.
    before = len(reads)
    await page(api, tokens.supervisor, after=await head(api, store))
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads WHERE case_id = $1", denunciation) == before
    # Other cases are not audited.
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads WHERE case_id = $1", old) == 0


async def test_a_long_poll_answers_as_soon_as_an_event_is_committed_and_else_empty_after_the_wait(
    api: Api, store: EventStore
) -> None:
    source = unique("feed-poller")
    intake = await token(store, "intake", label=source)
    start = await head(api, store)
    t0 = time.monotonic()
    empty = await page(api, intake, after=start, wait=1)
    waited = time.monotonic() - t0
    assert empty["events"] == [] and empty["caught_up"] is True and empty["next_cursor"] == start
    assert 0.9 <= waited < 4, waited  # the wait, not the request's bound (5 s); generous for a loaded machine

    async def write_later() -> str:
        await asyncio.sleep(0.5)
        return await seed_case(store, source=source, events=2)

    t0 = time.monotonic()
    answer, case_id = await asyncio.gather(page(api, intake, after=start, wait=4), write_later())
    woke = time.monotonic() - t0
    assert of(answer["events"], {case_id}) == [(case_id, 1), (case_id, 2)]
    assert 0.45 <= woke < 3, woke  # woken by the commit, well before the end of the 4 s wait
    # Without a wait the answer is immediate, and waiting is bounded by the request's deadline.
    t0 = time.monotonic()
    assert (await page(api, intake, after=answer["next_cursor"]))["events"] == []
    assert time.monotonic() - t0 < 2  # no wait asked: none made (the 1 s and 4 s waits above are the contrast)
    t0 = time.monotonic()
    assert (await page(api, intake, after=answer["next_cursor"], wait=30))["events"] == []
    assert time.monotonic() - t0 < api.app.state.settings.request_timeout
    assert api.app.state.feed_watcher.waiters == 0


async def test_one_case_s_events_by_version_with_the_history_s_authority(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    lead = unique_body("LEAD")
    case_id = await seed_case(store, lead_body=lead, events=5, source=unique("sys"))
    first = (await api.get(f"/v1/cases/{case_id}/events", tokens.supervisor, params={"limit": 2})).json()
    assert [e["version"] for e in first["events"]] == [1, 2] and first["at_end"] is False
    assert first["next_after_version"] == 2 and first["events"][0]["case_id"] == case_id
    rest = (await api.get(f"/v1/cases/{case_id}/events", await token(store, "body", lead),
                          params={"after_version": 2})).json()
    assert [e["version"] for e in rest["events"]] == [3, 4, 5] and rest["at_end"] is True
    stored = await store.read_stream(case_id)
    assert [e["hash"] for e in first["events"] + rest["events"]] == [e.hash for e in stored]
    done = (await api.get(f"/v1/cases/{case_id}/events", tokens.operator, params={"after_version": 5})).json()
    assert done["events"] == [] and done["next_after_version"] == 5 and done["at_end"] is True
    assert (await api.get(f"/v1/cases/{case_id}/events", await token(store, "body", unique_body()))).status_code == 403
    assert (await api.get(f"/v1/cases/{case_id}/events", await token(store, "intake"))).status_code == 403
    assert (await api.get(f"/v1/cases/{unique('nope')}/events", tokens.supervisor)).status_code == 404
    bad = await api.get(f"/v1/cases/{case_id}/events", tokens.supervisor, params={"after_version": -1})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "after_version"


# -- the property: concurrent writers, late commits, a consumer that restarts from its stored cursor ------------


async def test_a_consumer_restarting_from_stored_cursors_gets_every_event_exactly_once_in_commit_order(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    rng = random.Random(20261203)
    source = unique("feed-writers")
    intake = await token(store, "intake", label=source)
    start = await head(api, store)
    written: set[tuple[str, int]] = set()
    writing = True
    # One late commit for certain, whatever the machine's load: a transaction takes its id, then waits for a
    # writer that came after it to commit before it writes its own events.
    position_taken, overtaken = asyncio.Event(), asyncio.Event()

    async def writer(n: int) -> None:
        streams = {f"{source}-w{n}-s{i}": 0 for i in range(3)}
        for step in range(12):
            stream = rng.choice(list(streams))
            count = rng.randint(1, 3)
            events = new_events(["ProgressRecorded"] * count)
            row = CaseRow(kind="plan_task", status="active", source=source, lead_body="UBND_TINH")
            expected = streams[stream]
            if n < 3 and step % 3 == 0:
                # Held open: the events take their positions now and commit after others that came later.
                texts = [canonical.canonical_text(stream, expected + i, e) for i, e in enumerate(events, start=1)]
                async with store.pool.acquire() as conn, conn.transaction():
                    if n == 0 and step == 0:
                        # This transaction's id comes first; its events' positions come after another
                        # writer's, which commits first: the feed must still give both, in its order.
                        await conn.fetchval("SELECT pg_current_xact_id()")
                        position_taken.set()
                        await asyncio.wait_for(overtaken.wait(), 10)
                    await conn.fetchrow("SELECT * FROM danvan_append($1, $2, $3, $4::text::jsonb)",
                                        stream, expected, texts, canonical.case_text(row))
                    await asyncio.sleep(rng.uniform(0.2, 0.6))
            else:
                await store.append(stream, expected, events, row)
            streams[stream] = expected + count
            written.update((stream, v) for v in range(expected + 1, expected + count + 1))
            await asyncio.sleep(rng.uniform(0, 0.05))

    async def consumer(tok: str, limit: int) -> list[tuple[str, int]]:
        stored_cursor = start  # what the consumer keeps on disk
        delivered: list[tuple[str, int]] = []
        while True:
            # A restart after every few pages: all the consumer keeps is its stored cursor.
            for _ in range(rng.randint(1, 4)):
                answer = await page(api, tok, after=stored_cursor, limit=limit, wait=0.3)
                delivered += [(e["case_id"], e["version"]) for e in answer["events"] if e["case_id"].startswith(source)]
                stored_cursor = answer["next_cursor"]
                if not writing and answer["caught_up"]:
                    return delivered

    async def overtaker() -> None:
        await asyncio.wait_for(position_taken.wait(), 10)
        stream = f"{source}-overtaker"
        await store.append(stream, 0, new_events(["ProgressRecorded"]),
                           CaseRow(kind="plan_task", status="active", source=source, lead_body="UBND_TINH"))
        written.add((stream, 1))
        overtaken.set()

    async def writers() -> None:
        nonlocal writing
        await asyncio.gather(*(writer(n) for n in range(8)), overtaker())
        writing = False

    _, scoped, everything = await asyncio.gather(writers(), consumer(intake, 7), consumer(tokens.supervisor, 5))
    for delivered in (scoped, everything):
        assert len(delivered) == len(set(delivered)), "an event was delivered twice"
        assert set(delivered) == written, "an event was skipped"
        # In commit order: by writing transaction, then position, as the store records them.
        rows = await store.pool.fetch(
            "SELECT stream_id, version, tx_id::text::bigint AS tx, position FROM events WHERE stream_id LIKE $1",
            source + "%")
        place = {(r["stream_id"], r["version"]): (r["tx"], r["position"]) for r in rows}
        order = [place[d] for d in delivered]
        assert order == sorted(order)
        # Late commits happened: an event with a lower position than one delivered before it.
        positions = [p for _, p in order]
        highest = [max(positions[: j + 1]) for j in range(len(positions))]
        assert any(p < h for p, h in zip(positions[1:], highest, strict=False))
