"""Webhook subscriptions through the API: made, shown, changed, deleted; the secret shown once and stored
encrypted; the URL checked (SSRF); who may see what; every refusal in the error format."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from typing import Any

import pytest

from api.feed import feed_head
from api.outbound import OutboundPolicy, UrlRefused, check_url, parse_url
from api.subscriptions import SecretBox, get_subscription, sign, verify
from eventstore import EventStore
from workflows.subscription import SubscriptionWorkflow, subscription_workflow_id

from .support import Api, auth, seed_case, token, unique

#: A URL of the tests' machine: allowed by `DANVAN_WEBHOOK_ALLOW_HOSTS` in the API tests' settings. Nothing
#: listens on the discard port: these subscriptions are made paused and never deliver.
NOWHERE = "http://127.0.0.1:9/hook"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


def assert_field(response: Any, field: str, rule: str) -> None:
    error = assert_error(response, 422, "validation_failed")
    assert {"field": field, "rule": rule} in [{"field": f["field"], "rule": f["rule"]} for f in error["fields"]], error


async def subscribe(api: Api, tok: str, **body: Any) -> Any:
    return await api.post("/v1/subscriptions", tok, json={"url": NOWHERE, "status": "paused", **body})


async def patch(api: Api, tok: str, subscription_id: str, body: dict[str, Any]) -> Any:
    return await api.http.patch(f"/v1/subscriptions/{subscription_id}", headers=auth(tok), json=body)


async def test_a_subscription_is_made_with_a_secret_shown_once_and_stored_encrypted(api: Api, store: EventStore
                                                                                    ) -> None:
    admin = await token(store, "admin")
    made = await subscribe(api, admin, kinds=["complaint", "complaint"], types=["PetitionReceived"],
                           bodies=["UBND_TINH"])
    assert made.status_code == 201, made.text
    sub = made.json()
    assert sub["id"].startswith("sub_") and len(sub["id"]) == 24
    assert sub["secret"].startswith("whsec_")
    assert len(base64.b64decode(sub["secret"].removeprefix("whsec_"))) == 32
    assert (sub["kinds"], sub["types"], sub["bodies"]) == (["complaint"], ["PetitionReceived"], ["UBND_TINH"])
    assert sub["status"] == "paused" and sub["delivered"] == 0 and sub["cursor"] is None
    assert sub["created_at"].endswith("+07:00")

    shown = await api.get(f"/v1/subscriptions/{sub['id']}", admin)
    assert shown.status_code == 200, shown.text
    assert "secret" not in shown.json()
    assert sub["secret"] not in shown.text
    listed = await api.get("/v1/subscriptions", admin, params={"limit": 200})
    assert sub["id"] in [s["id"] for s in listed.json()["items"]]
    assert sub["secret"] not in listed.text

    row = await get_subscription(store.pool, sub["id"])
    assert row is not None and row.owner_role == "admin"
    raw = await store.pool.fetchrow("SELECT * FROM subscriptions WHERE id = $1", sub["id"])
    assert sub["secret"].encode() not in b"".join(v for v in raw.values() if isinstance(v, bytes))
    assert SecretBox(api.app.state.vault.key).open(row.id, row.secret_nonce, row.secret_sealed) == sub["secret"]
    # Another subscription's row does not open under this one's id (the id is the associated data).
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        SecretBox(api.app.state.vault.key).open("sub_" + "0" * 20, row.secret_nonce, row.secret_sealed)

    # Its workflow runs.
    handle = api.app.state.temporal.client.get_workflow_handle_for(SubscriptionWorkflow.run,
                                                                    subscription_workflow_id(sub["id"]))
    assert (await handle.describe()).status is not None


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The example of the Standard Webhooks specification: its secret, id, timestamp, body and signature.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, timestamp = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    body = b'{"test": 2432232314}'
    assert sign(secret, msg_id, timestamp, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify(secret, msg_id, timestamp, body, "v1,bad v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    assert not verify(secret, msg_id, timestamp + 1, body, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


async def test_an_intake_system_manages_only_its_own_subscriptions(api: Api, store: EventStore) -> None:
    mine, other = unique("intake-sub"), unique("intake-sub-other")
    tok, other_tok = await token(store, "intake", label=mine), await token(store, "intake", label=other)
    second_tok = await token(store, "intake", label=mine)  # another token of the same system
    made = (await subscribe(api, tok)).json()
    theirs = (await subscribe(api, other_tok)).json()
    assert made["owner"] == {"role": "intake", "label": mine}

    listed = (await api.get("/v1/subscriptions", second_tok)).json()
    assert [s["id"] for s in listed["items"]] == [made["id"]]
    assert (await api.get(f"/v1/subscriptions/{made['id']}", second_tok)).status_code == 200
    for method, path in [("GET", ""), ("GET", "/deliveries"), ("PATCH", ""), ("DELETE", ""), ("POST", "/replay")]:
        response = await api.http.request(method, f"/v1/subscriptions/{theirs['id']}{path}", headers=auth(tok),
                                          json={"status": "paused"} if method == "PATCH" else None)
        error = assert_error(response, 403, "forbidden")
        assert mine in error["message"]
    admin = await token(store, "admin")
    everything = (await api.get("/v1/subscriptions", admin, params={"limit": 200})).json()["items"]
    assert {made["id"], theirs["id"]} <= {s["id"] for s in everything}


async def test_the_list_is_paged_newest_first(api: Api, store: EventStore) -> None:
    tok = await token(store, "intake", label=unique("intake-pages"))
    ids = [(await subscribe(api, tok)).json()["id"] for _ in range(3)]
    first = (await api.get("/v1/subscriptions", tok, params={"limit": 2})).json()
    assert [s["id"] for s in first["items"]] == ids[::-1][:2]
    second = (await api.get("/v1/subscriptions", tok, params={"limit": 2, "before": first["next_before"]})).json()
    assert [s["id"] for s in second["items"]] == [ids[0]] and second["next_before"] is None
    await patch(api, tok, ids[1], {"status": "active"})
    active = (await api.get("/v1/subscriptions", tok, params={"status": "active"})).json()
    assert [s["id"] for s in active["items"]] == [ids[1]]
    assert_field(await api.get("/v1/subscriptions", tok, params={"status": "gone"}), "status", "literal_error")


async def test_pause_resume_change_and_delete(api: Api, store: EventStore) -> None:
    admin = await token(store, "admin")
    sub = (await subscribe(api, admin)).json()
    changed = await patch(api, admin, sub["id"], {"status": "active", "types": ["AcceptanceDecided", "Classified"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "active" and changed.json()["types"] == ["AcceptanceDecided", "Classified"]
    assert changed.json()["kinds"] is None  # not given: unchanged
    paused = (await patch(api, admin, sub["id"], {"status": "paused", "types": None})).json()
    assert paused["status"] == "paused" and paused["types"] is None and "paused by" in paused["status_reason"]
    moved = (await patch(api, admin, sub["id"], {"url": "http://127.0.0.1:9/other"})).json()
    assert moved["url"] == "http://127.0.0.1:9/other" and moved["status"] == "paused"

    deleted = await api.http.delete(f"/v1/subscriptions/{sub['id']}", headers=auth(admin))
    assert deleted.status_code == 204, deleted.text
    assert_error(await api.get(f"/v1/subscriptions/{sub['id']}", admin), 404, "not_found")
    assert_error(await api.http.delete(f"/v1/subscriptions/{sub['id']}", headers=auth(admin)), 404, "not_found")
    # Its workflow finds it gone and ends.
    handle = api.app.state.temporal.client.get_workflow_handle_for(SubscriptionWorkflow.run,
                                                                    subscription_workflow_id(sub["id"]))
    ended = await handle.result()
    assert ended.subscription_id == sub["id"]


@pytest.mark.parametrize(("url", "rule"), [
    ("ftp://127.0.0.1/hook", "url_scheme"),
    ("127.0.0.1/hook", "url_scheme"),
    ("http:///hook", "url_host"),
    ("http://user:secret@127.0.0.1:9/hook", "url_credentials"),
    ("http://127.0.0.1:9/hook#part", "url_fragment"),
    ("http://127.0.0.1:99999/hook", "url_invalid"),
    ("http://10.1.2.3/hook", "url_private"),
    ("http://192.168.1.10/hook", "url_private"),
    ("http://100.64.0.1/hook", "url_private"),
    ("http://169.254.169.254/latest/meta-data", "url_link_local"),
    ("http://[::1]:8000/hook", "url_loopback"),
    ("http://[::ffff:10.0.0.1]/hook", "url_private"),
    ("http://[fe80::1]/hook", "url_link_local"),
    ("http://0.0.0.0/hook", "url_unspecified"),
    ("http://224.0.0.1/hook", "url_multicast"),
    ("http://no-such-host.invalid/hook", "url_unresolvable"),
])
async def test_a_url_that_may_not_be_called_is_422_naming_the_rule(api: Api, store: EventStore, url: str,
                                                                   rule: str) -> None:
    admin = await token(store, "admin")
    assert_field(await subscribe(api, admin, url=url), "url", rule)
    sub = (await subscribe(api, admin)).json()
    assert_field(await patch(api, admin, sub["id"], {"url": url}), "url", rule)


async def test_loopback_and_danvans_own_addresses_are_refused_unless_allowed() -> None:
    nothing_allowed = OutboundPolicy(own_hosts=("8.8.8.8",))
    with pytest.raises(UrlRefused) as refused:
        await check_url("http://127.0.0.1:8000/v1/events", nothing_allowed)
    assert refused.value.rule == "url_loopback"
    with pytest.raises(UrlRefused) as refused:  # a public address, but danvan's own
        await check_url("https://8.8.8.8/hook", nothing_allowed)
    assert refused.value.rule == "url_own_service"
    assert (await check_url("https://8.8.4.4/hook", nothing_allowed)).port == 443
    allowed = OutboundPolicy(allow_hosts=("127.0.0.1/32", "hooks.internal"), own_hosts=("127.0.0.1",))
    assert (await check_url("http://127.0.0.1:8000/hook", allowed)).port == 8000
    assert allowed.allows("hooks.internal", [ipaddress.ip_address("10.0.0.5")])
    assert not allowed.allows("other.internal", [ipaddress.ip_address("10.0.0.5")])
    assert parse_url("HTTPS://Example.ORG/x?y=1").host == "example.org"


async def test_bad_filters_and_fields_are_422_naming_them(api: Api, store: EventStore) -> None:
    admin = await token(store, "admin")
    assert_field(await subscribe(api, admin, kinds=["petition"]), "kinds.0", "enum")
    assert_field(await subscribe(api, admin, types=["NoSuchEvent"]), "types", "unknown_event_type")
    assert_field(await subscribe(api, admin, bodies=["NO_SUCH_BODY"]), "bodies", "unknown_body")
    assert_field(await subscribe(api, admin, types=["Classified"] * 51), "types", "too_long")
    assert_field(await subscribe(api, admin, after="f1.made-up"), "after", "cursor_invalid")
    assert_field(await subscribe(api, admin, colour="blue"), "colour", "extra_forbidden")
    assert_field(await api.post("/v1/subscriptions", admin, json={}), "url", "missing")
    sub = (await subscribe(api, admin)).json()
    assert_field(await patch(api, admin, sub["id"], {"status": "failing"}), "status", "literal_error")
    assert_field(await patch(api, admin, sub["id"], {"url": None}), "url", "missing")
    assert_field(await api.post(f"/v1/subscriptions/{sub['id']}/replay", admin, params={"from": "nope"}),
                 "from", "cursor_invalid")
    assert_field(await api.get("/v1/subscriptions/sub_short", admin), "subscription_id", "string_too_short")
    assert_error(await api.get("/v1/subscriptions/sub_" + "0" * 20, admin), 404, "not_found")


async def test_a_new_subscription_starts_at_the_feeds_head_or_at_a_cursor(api: Api, store: EventStore) -> None:
    admin = await token(store, "admin")
    await seed_case(store, events=2)
    page = (await api.get("/v1/events", admin, params={"limit": 1})).json()
    assert page["events"]
    made = await subscribe(api, admin, after=page["next_cursor"])
    assert made.status_code == 201, made.text
    handle = api.app.state.temporal.client.get_workflow_handle_for(SubscriptionWorkflow.run,
                                                                    subscription_workflow_id(made.json()["id"]))
    progress = await handle.query(SubscriptionWorkflow.progress)
    assert api.app.state.feed_cursors.encode(progress.cursor) == page["next_cursor"]
    for _ in range(100):  # its first batch finds it paused
        progress = await handle.query(SubscriptionWorkflow.progress)
        if progress.waiting == "paused":
            break
        await asyncio.sleep(0.1)
    assert progress.waiting == "paused" and progress.delivered == 0
    assert api.app.state.feed_cursors.encode(progress.cursor) == page["next_cursor"]

    head = await api.post("/v1/subscriptions", admin, json={"url": NOWHERE, "status": "paused"})
    progress = await api.app.state.temporal.client.get_workflow_handle_for(
        SubscriptionWorkflow.run, subscription_workflow_id(head.json()["id"])).query(SubscriptionWorkflow.progress)
    assert progress.cursor == await feed_head(store.pool)


async def test_a_create_retried_under_its_idempotency_key_answers_the_same_subscription_without_its_secret(
    api: Api, store: EventStore
) -> None:
    source = unique("keyed-system")
    intake = await token(store, "intake", label=source)
    other_token = await token(store, "intake", label=source)  # the same system, another of its tokens
    key = unique("create-key")
    body = {"url": NOWHERE, "status": "paused", "kinds": ["complaint"], "types": ["PetitionReceived"]}
    first = await api.post("/v1/subscriptions", intake, json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["secret"].startswith("whsec_") and made["duplicate"] is False

    # The same request again (a lost answer; two at once): the same subscription, 200, the secret not shown.
    again = await asyncio.gather(*(api.post("/v1/subscriptions", t, json=body, headers={"Idempotency-Key": key})
                                   for t in (intake, other_token)))
    for answer in again:
        assert answer.status_code == 200, answer.text
        shown = answer.json()
        assert shown["id"] == made["id"] and shown["duplicate"] is True and shown["secret"] is None
    assert await store.pool.fetchval("SELECT count(*) FROM subscriptions WHERE owner_label = $1", source) == 1

    # The same key with another request, or from another owner: refused, nothing made.
    other = await api.post("/v1/subscriptions", intake, json={**body, "kinds": ["denunciation"]},
                           headers={"Idempotency-Key": key})
    error = assert_error(other, 422, "idempotency.key_reused")
    assert error["fields"] == [{"field": "idempotency-key", "rule": "idempotency.key_reused",
                                "message": error["message"]}]
    admin = await token(store, "admin")
    stranger = await api.post("/v1/subscriptions", admin, json=body, headers={"Idempotency-Key": key})
    assert "the owner" in assert_error(stranger, 422, "idempotency.key_reused")["message"]
    assert await store.pool.fetchval("SELECT count(*) FROM subscriptions WHERE idempotency_key = $1", key) == 1
    bad = await api.post("/v1/subscriptions", intake, json=body, headers={"Idempotency-Key": " spaced "})
    assert_field(bad, "idempotency-key", "string_pattern_mismatch")


async def test_a_retried_create_starts_the_workflow_the_first_request_never_started(api: Api, store: EventStore,
                                                                                    temporal_env: Any) -> None:
    """The first request stored its row and was lost (the API killed) before starting the workflow: the retry
    under its key starts it, at the cursor the first request chose."""
    from api.subscriptions import KeyedRequest, SubscriptionRequest, insert_subscription, new_secret
    from api.tokens import Principal
    from eventstore import FeedCursor

    source = unique("lost-system")
    intake = await token(store, "intake", label=source)
    key = unique("lost-key")
    body = {"url": NOWHERE, "status": "paused"}
    request = SubscriptionRequest.model_validate(body)
    owner = Principal(role="intake", label=source, id="first-token")
    row = await insert_subscription(store.pool, api.app.state.webhook_secrets, owner, request, new_secret(),
                                    start=FeedCursor(), key=KeyedRequest.of(key, request, owner))
    assert row is not None
    again = await api.post("/v1/subscriptions", intake, json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == row.id, again.text
    progress = await temporal_env.client.get_workflow_handle_for(
        SubscriptionWorkflow.run, subscription_workflow_id(row.id)).query(SubscriptionWorkflow.progress)
    assert progress.subscription_id == row.id


async def test_delivery_attempts_older_than_the_retention_are_deleted_in_bounded_batches(
    api: Api, store: EventStore, temporal_env: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from activities.stalled import StalledScanActivities
    from api.subscriptions import prune_deliveries

    admin = await token(store, "admin")
    made = await subscribe(api, admin)
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    now = datetime.now(UTC)
    ages = [timedelta(days=d) for d in (40, 39, 38, 37, 36, 35, 34)] + [timedelta(days=1), timedelta(minutes=5)]
    await store.pool.executemany(
        "INSERT INTO deliveries (subscription_id, event_id, case_id, event_type, attempt, status_code, started_at, "
        "latency_ms, feed_tx, feed_position, delivered_by) "
        "VALUES ($1, gen_random_uuid(), 'case', 'Classified', 1, 200, $2, 1.0, 1, $3, 'test')",
        [(sub_id, now - age, n) for n, age in enumerate(ages)])

    async def left() -> int:
        return int(await store.pool.fetchval("SELECT count(*) FROM deliveries WHERE subscription_id = $1", sub_id))

    # Two batches of three: six of the seven old ones, the oldest first; the rest at the next cleanup.
    assert await prune_deliveries(store.pool, now - timedelta(days=30), batch=3, batches=2) == 6
    oldest = await store.pool.fetchval("SELECT min(started_at) FROM deliveries WHERE subscription_id = $1", sub_id)
    assert now - oldest < timedelta(days=34, hours=1)
    assert await left() == 3
    # The scan's activity does it at each look, with the worker's retention.
    activities = StalledScanActivities(temporal_env.client, store, keep_deliveries=timedelta(days=30))
    assert await activities.prune() >= 1
    assert await left() == 2
    shown = await api.get(f"/v1/subscriptions/{sub_id}/deliveries", admin)
    assert len(shown.json()["items"]) == 2


def test_the_retention_of_deliveries_is_a_setting_in_days() -> None:
    from danvan.settings import ConfigError, Settings

    assert Settings.from_env({}).webhook_keep_days == 30
    assert Settings.from_env({"DANVAN_WEBHOOK_KEEP_DAYS": "7"}).webhook_keep_days == 7
    with pytest.raises(ConfigError, match="DANVAN_WEBHOOK_KEEP_DAYS"):
        Settings.from_env({"DANVAN_WEBHOOK_KEEP_DAYS": "0"})
