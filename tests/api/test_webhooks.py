"""Webhooks delivered for real: the API, the subscription workflows on the dev server's worker, PostgreSQL, and
a receiver of the test's own on 127.0.0.1 (`tests.receiver`) that answers 500 at random, hangs past the
timeout, redirects, and goes down for a while.

The app here has its own settings: a one-second request timeout and retries a fraction of a second apart, so
a receiver's bad moments cost seconds, not hours (the policy travels in each subscription's workflow input).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.outbound import OutboundPolicy, webhook_client
from api.subscriptions import verify
from danvan.settings import Settings
from eventstore import CaseRow, EventStore, NewEvent
from tests.receiver import Received, Receiver
from workflows.subscription import SubscriptionWorkflow, subscription_workflow_id

from .support import Api, auth, running, token, unique

FAST = {"DANVAN_WEBHOOK_TIMEOUT": "1", "DANVAN_WEBHOOK_BACKOFF_FIRST": "0.2", "DANVAN_WEBHOOK_BACKOFF_MAX": "1",
        "DANVAN_WEBHOOK_RETRY_FOR": "120"}


@pytest_asyncio.fixture(scope="module")
async def hooks(api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment, store: EventStore,
                case_worker: None) -> AsyncIterator[Api]:
    env = {"TEMPORAL_ADDRESS": api_settings.temporal_address, "DANVAN_DB_POOL_MAX": "4",
           "DANVAN_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", **FAST}
    app = create_app(Settings.from_env(env), database_url, temporal_client=temporal_env.client, token_cache_ttl=0.5)
    async with running(app) as client:
        yield client


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def until(check: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


async def append(store: EventStore, case_id: str, version: int, source: str, kind: str = "complaint",
                 n: int = 1) -> list[str]:
    """Append `n` events to a case (its row made on the first, sent by `source`); their ids."""
    events = [NewEvent(event_id=uuid.uuid4(), type="Classified", occurred_at=datetime.now(UTC), actor="tester",
                       data={"n": version + i + 1, "ghi_chú": "Phân loại đơn khiếu nại"}) for i in range(n)]
    await store.append(case_id, version, events, CaseRow(kind=kind, status="received", source=source))
    return [str(e.event_id) for e in events]


def body_of(request: Received) -> dict[str, Any]:
    return dict(json.loads(request.body))


def assert_signed(request: Received, secret: str) -> None:
    headers = request.headers
    assert verify(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), request.body,
                  headers["webhook-signature"]), headers
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
    assert headers["content-type"] == "application/json"


async def subscribe(hooks: Api, tok: str, url: str, **body: Any) -> dict[str, Any]:
    made = await hooks.post("/v1/subscriptions", tok, json={"url": url, **body})
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_every_event_is_delivered_in_order_despite_errors_timeouts_and_an_outage(
    hooks: Api, store: EventStore, receiver: Receiver
) -> None:
    source = unique("hooks-system")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    rng = random.Random(12)
    answered: list[int] = []

    def answer(request: Received) -> Any:
        if rng.random() < 0.05:
            return ("hang", 1.5)  # past the 1 s timeout: the attempt fails, the receiver may have seen it
        status = 500 if rng.random() < 0.2 else 200
        answered.append(status)
        return status

    receiver.answer = answer
    cases = [unique("hook-case") for _ in range(8)]
    others = [unique("hook-other") for _ in range(2)]  # sent by another system: never delivered here
    per_case = 10
    expected: dict[str, list[str]] = defaultdict(list)

    async def writer(case_id: str, mine: bool) -> None:
        for version in range(per_case):
            ids = await append(store, case_id, version, source if mine else unique("other"))
            if mine:
                expected[case_id] += ids
            await asyncio.sleep(rng.random() * 0.05)

    writing = asyncio.gather(*(writer(c, True) for c in cases), *(writer(c, False) for c in others))
    # Down for a while, once some have come in.
    await until(lambda: len(receiver.accepted) >= 15, "the first deliveries")
    await receiver.stop()
    await asyncio.sleep(3)
    await receiver.start()
    await writing
    wanted = {event_id for ids in expected.values() for event_id in ids}
    await until(lambda: wanted <= {r.headers["webhook-id"] for r in receiver.accepted}, "every event", 120)

    accepted = receiver.accepted
    assert {r.headers["webhook-id"] for r in accepted} == wanted  # nothing of the other system's cases
    for request in receiver.requests:
        assert_signed(request, sub["secret"])
    # A repeat is the same event: the same id, the same body.
    bodies: dict[str, bytes] = {}
    for request in receiver.requests:
        assert bodies.setdefault(request.headers["webhook-id"], request.body) == request.body
    # In order per case: a later event of a case never accepted before an earlier one.
    seen: dict[str, list[int]] = defaultdict(list)
    for request in accepted:
        data = body_of(request)["data"]
        seen[data["case_id"]].append(data["version"])
    for case_id, versions in seen.items():
        assert versions == sorted(versions), (case_id, versions)
        assert sorted(set(versions)) == list(range(1, per_case + 1))
    # The feed's order too: the requests follow the cursors.
    cursors = [body_of(r)["data"]["cursor"] for r in accepted]
    places = [hooks.app.state.feed_cursors.decode(c) for c in cursors]
    keys = [(p.transaction_id, p.position) for p in places]
    assert keys == sorted(keys)
    # Some things did go wrong, and were recorded.
    assert 500 in answered and any(r.status is None for r in receiver.requests)
    deliveries = []
    before = None
    while True:
        page = (await hooks.get(f"/v1/subscriptions/{sub['id']}/deliveries", tok,
                                params={"limit": 500, **({"before": before} if before else {})})).json()
        deliveries += page["items"]
        before = page["next_before"]
        if before is None:
            break
    assert len(deliveries) >= len(receiver.requests)
    assert {d["event_id"] for d in deliveries if d["ok"]} == wanted
    assert any(d["status_code"] == 500 for d in deliveries)
    assert any(d["error"] and "no answer within 1 s" in d["error"] for d in deliveries)
    assert any(d["error"] and "ConnectError" in d["error"] for d in deliveries), "the outage was not recorded"
    assert all(d["started_at"].endswith("+07:00") and d["latency_ms"] >= 0 for d in deliveries)
    retried = [d for d in deliveries if d["attempt"] > 1]
    assert retried

    async def progress_shown() -> bool:  # the row is told how far delivery got about once a second
        shown = (await hooks.get(f"/v1/subscriptions/{sub['id']}", tok)).json()
        return bool(shown["status"] == "active" and shown["delivered"] >= len(wanted)
                    and shown["cursor"] == cursors[-1])

    await until(progress_shown, "the subscription to show its progress", 10)


async def test_the_body_is_the_feeds_event_with_its_cursor(hooks: Api, store: EventStore, receiver: Receiver) -> None:
    source = unique("hooks-body")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    case_id = unique("hook-body")
    [event_id] = await append(store, case_id, 0, source)
    await until(lambda: len(receiver.accepted) == 1, "the delivery")
    request = receiver.accepted[0]
    body = body_of(request)
    assert request.method == "POST" and request.path == "/hooks"
    assert body["type"] == "Classified" and request.headers["webhook-id"] == event_id
    feed = (await hooks.get("/v1/events", tok, params={"limit": 1000})).json()
    [shown] = [e for e in feed["events"] if e["event_id"] == event_id]
    data = dict(body["data"])
    cursor = data.pop("cursor")
    assert data == shown
    assert data["data"]["ghi_chú"] == "Phân loại đơn khiếu nại"  # Vietnamese as written, in UTF-8
    assert "Phân loại".encode() in request.body
    # The cursor in the body is the feed's: replaying from it delivers what follows.
    later = await hooks.get("/v1/events", tok, params={"after": cursor})
    assert later.status_code == 200 and later.json()["events"] == []
    assert body["timestamp"] == shown["occurred_at"]
    assert sub["id"]


async def test_filters_narrow_what_is_delivered(hooks: Api, store: EventStore, receiver: Receiver) -> None:
    source = unique("hooks-filter")
    tok = await token(store, "intake", label=source)
    await subscribe(hooks, tok, url=receiver.url, kinds=["denunciation"], types=["Classified"])
    complaint, denunciation = unique("hook-k"), unique("hook-d")
    await append(store, complaint, 0, source, kind="complaint")
    [wanted] = await append(store, denunciation, 0, source, kind="denunciation")
    await until(lambda: len(receiver.accepted) >= 1, "the delivery")
    await asyncio.sleep(0.5)
    assert [r.headers["webhook-id"] for r in receiver.accepted] == [wanted]
    # A denunciation's event reaching the system is a read of the case, on record.
    reads = await store.pool.fetch("SELECT reader, what FROM case_reads WHERE case_id = $1", denunciation)
    assert [(r["reader"], r["what"]) for r in reads] == [(source, "webhook")]


async def test_pause_stops_delivery_and_resume_goes_on(hooks: Api, store: EventStore, receiver: Receiver) -> None:
    source = unique("hooks-pause")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    case_id = unique("hook-pause")
    await append(store, case_id, 0, source)
    await until(lambda: len(receiver.accepted) == 1, "the first delivery")
    paused = await hooks.http.patch(f"/v1/subscriptions/{sub['id']}", headers=auth(tok), json={"status": "paused"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    await append(store, case_id, 1, source, n=2)
    await asyncio.sleep(2)
    assert len(receiver.requests) == 1
    resumed = await hooks.http.patch(f"/v1/subscriptions/{sub['id']}", headers=auth(tok), json={"status": "active"})
    assert resumed.json()["status"] == "active"
    await until(lambda: len(receiver.accepted) == 3, "the events held while paused")
    assert [body_of(r)["data"]["version"] for r in receiver.accepted] == [1, 2, 3]


async def test_an_event_never_accepted_marks_the_subscription_failing_until_resumed(
    hooks: Api, store: EventStore, receiver: Receiver
) -> None:
    source = unique("hooks-failing")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    handle = hooks.app.state.temporal.client.get_workflow_handle_for(SubscriptionWorkflow.run,
                                                                    subscription_workflow_id(sub["id"]))
    receiver.answer = lambda _: 503
    case_id = unique("hook-failing")
    await append(store, case_id, 0, source)
    await until(lambda: len(receiver.requests) >= 3, "three attempts")
    progress = await handle.query(SubscriptionWorkflow.progress)
    assert progress.head is not None and progress.head.attempts >= 2 and "HTTP 503" in progress.head.last
    assert [body_of(r)["data"]["version"] for r in receiver.requests] == [1] * len(receiver.requests)
    receiver.answer = lambda _: 200
    await until(lambda: len(receiver.accepted) == 1, "the event accepted once the receiver is back")
    attempts = [d["attempt"] for d in (await hooks.get(f"/v1/subscriptions/{sub['id']}/deliveries", tok)).json()[
        "items"]]
    assert attempts == list(range(len(attempts), 0, -1))


async def test_giving_up_after_the_retry_window_then_resuming(api_settings: Settings, database_url: str,
                                                              temporal_env: WorkflowEnvironment, store: EventStore,
                                                              receiver: Receiver) -> None:
    env = {"TEMPORAL_ADDRESS": api_settings.temporal_address, "DANVAN_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
           **FAST, "DANVAN_WEBHOOK_RETRY_FOR": "2"}
    app = create_app(Settings.from_env(env), database_url, temporal_client=temporal_env.client)
    async with running(app) as short:
        source = unique("hooks-give-up")
        tok = await token(store, "intake", label=source)
        sub = await subscribe(short, tok, url=receiver.url)
        receiver.answer = lambda _: 500
        case_id = unique("hook-give-up")
        await append(store, case_id, 0, source)
        await append(store, case_id, 1, source)

        async def failing() -> bool:
            return bool((await short.get(f"/v1/subscriptions/{sub['id']}", tok)).json()["status"] == "failing")

        await until(failing, "the subscription to be marked failing", 30)
        shown = (await short.get(f"/v1/subscriptions/{sub['id']}", tok)).json()
        assert shown["status_reason"].startswith("gave up after ") and "HTTP 500" in shown["status_reason"]
        failing_ones = (await short.get("/v1/subscriptions", tok, params={"status": "failing"})).json()["items"]
        assert [s["id"] for s in failing_ones] == [sub["id"]]
        count = len(receiver.requests)
        await asyncio.sleep(1.5)
        assert len(receiver.requests) == count  # nothing more is tried while failing

        receiver.answer = lambda _: 200
        resumed = await short.http.patch(f"/v1/subscriptions/{sub['id']}", headers=auth(tok),
                                         json={"status": "active"})
        assert resumed.json()["status"] == "active" and resumed.json()["status_reason"] is None
        await until(lambda: len(receiver.accepted) == 2, "both events after the resume")
        assert [body_of(r)["data"]["version"] for r in receiver.accepted] == [1, 2]


async def test_replay_delivers_again_from_a_cursor_with_the_same_ids(hooks: Api, store: EventStore,
                                                                     receiver: Receiver) -> None:
    source = unique("hooks-replay")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    case_id = unique("hook-replay")
    ids = await append(store, case_id, 0, source, n=5)
    await until(lambda: len(receiver.accepted) == 5, "the five events")
    second = body_of(receiver.accepted[1])["data"]["cursor"]
    replayed = await hooks.post(f"/v1/subscriptions/{sub['id']}/replay", tok, params={"from": second})
    assert replayed.status_code == 200, replayed.text
    await until(lambda: len(receiver.accepted) == 8, "the three events after the second, again")
    assert [r.headers["webhook-id"] for r in receiver.accepted] == ids + ids[2:]
    # From the start of the feed: everything of this system's cases, again.
    again = await hooks.post(f"/v1/subscriptions/{sub['id']}/replay", tok)
    assert again.status_code == 200
    await until(lambda: len(receiver.accepted) == 13, "every event again")
    assert [r.headers["webhook-id"] for r in receiver.accepted][8:] == ids


async def test_a_redirect_is_not_followed(hooks: Api, store: EventStore, receiver: Receiver) -> None:
    source = unique("hooks-redirect")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    elsewhere = await Receiver().start()
    try:
        receiver.answer = lambda _: ("redirect", elsewhere.url)
        await append(store, unique("hook-redirect"), 0, source)
        await until(lambda: len(receiver.requests) >= 2, "two attempts")
        assert elsewhere.requests == []
        items = (await hooks.get(f"/v1/subscriptions/{sub['id']}/deliveries", tok)).json()["items"]
        assert items[0]["status_code"] == 302 and not items[0]["ok"] and "not followed" in items[0]["error"]
    finally:
        await elsewhere.stop()
        await hooks.http.delete(f"/v1/subscriptions/{sub['id']}", headers=auth(tok))


async def test_a_revoked_owner_receives_nothing_more(hooks: Api, store: EventStore, receiver: Receiver) -> None:
    from api.tokens import revoke_token

    source = unique("hooks-revoked")
    tok = await token(store, "intake", label=source)
    sub = await subscribe(hooks, tok, url=receiver.url)
    case_id = unique("hook-revoked")
    await append(store, case_id, 0, source)
    await until(lambda: len(receiver.accepted) == 1, "the first delivery")
    await revoke_token(store.pool, tok)
    await append(store, case_id, 1, source)

    async def failing() -> bool:
        row = await store.pool.fetchrow("SELECT status, status_reason FROM subscriptions WHERE id = $1", sub["id"])
        return bool(row["status"] == "failing" and "no active token" in row["status_reason"])

    await until(failing, "the subscription to stop")
    assert len(receiver.accepted) == 1


async def test_the_connection_is_refused_to_an_address_the_worker_does_not_allow(receiver: Receiver) -> None:
    """The check on every connection (not only when the URL is given): a host resolving elsewhere by then."""
    import httpx

    async with webhook_client(OutboundPolicy(), timeout=1) as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await http.post(receiver.url, content=b"{}")
    assert "url_loopback" in str(refused.value)
    assert receiver.requests == []
    async with webhook_client(OutboundPolicy(allow_hosts=("127.0.0.1/32",)), timeout=1) as http:
        answer = await http.post(receiver.url, content=b"{}")
    assert answer.status_code == 204 and len(receiver.requests) == 1
