"""What the operators' stalled queue holds besides cases: a webhook subscription that gave up delivering, and a
checkpoint not signed in time; each found by the stalled scan, listed with its remedies, and remedied by an
operator with a reason, recorded with who and why under an `Idempotency-Key`.

Real PostgreSQL, the dev server's worker delivering to a receiver of the test's own (`tests.receiver`) that
refuses every event, and a real checkpoint signer (`danvan checkpoint --every`) signing into a log of the test's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.settings import Settings
from eventstore import EventStore
from integrity.commands import run_checkpoint
from integrity.signers import signer_id
from tests.receiver import Receiver

from .support import Api, running, token, unique
from .test_webhooks import append, until

#: Retries a fraction of a second apart, and a subscription failing after 2 s of refusals.
GIVES_UP = {"DANVAN_WEBHOOK_TIMEOUT": "1", "DANVAN_WEBHOOK_BACKOFF_FIRST": "0.2", "DANVAN_WEBHOOK_BACKOFF_MAX": "0.5",
            "DANVAN_WEBHOOK_RETRY_FOR": "2"}


@pytest_asyncio.fixture(scope="module")
async def quick(api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment, store: EventStore,
                case_worker: None) -> AsyncIterator[Api]:
    env = {"TEMPORAL_ADDRESS": api_settings.temporal_address, "DANVAN_DB_POOL_MAX": "4",
           "DANVAN_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", **GIVES_UP}
    app = create_app(Settings.from_env(env), database_url, temporal_client=temporal_env.client, token_cache_ttl=0.5)
    async with running(app) as client:
        yield client


@pytest_asyncio.fixture
async def refusing() -> AsyncIterator[Receiver]:
    r = await Receiver(answer=lambda _: 503).start()
    yield r
    await r.stop()


async def scan(api: Api, operator: str) -> None:
    done = await api.post("/v1/ops/stalled/scan", operator)
    assert done.status_code == 200, done.text


async def findings(api: Api, tok: str, **params: str) -> list[dict[str, Any]]:
    listed = await api.get("/v1/ops/stalled", tok, params=params)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def remedy(api: Api, tok: str, path: str, key: str | None = None, **body: Any) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post(f"/v1/ops/{path}", tok, json=body, headers=headers)


async def failing_subscription(api: Api, store: EventStore, receiver: Receiver) -> tuple[str, str]:
    """A subscription of an intake system whose receiver refuses everything, until it is marked failing; its id
    and the system's label."""
    source = unique("failing-system")
    intake = await token(store, "intake", label=source)
    made = await api.post("/v1/subscriptions", intake, json={"url": receiver.url})
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    await append(store, unique("failing-case"), 0, source)

    async def failing() -> bool:
        shown = await api.get(f"/v1/subscriptions/{sub_id}", intake)
        return bool(shown.json()["status"] == "failing")

    await until(failing, "the subscription to be marked failing", 60)
    return sub_id, source


async def test_a_failing_subscription_is_in_the_queue_with_its_remedies_and_is_retried_by_an_operator(
    quick: Api, store: EventStore, refusing: Receiver
) -> None:
    operator, supervisor = await token(store, "operator"), await token(store, "supervisor")
    sub_id, source = await failing_subscription(quick, store, refusing)
    await scan(quick, operator)

    mine = [f for f in await findings(quick, supervisor) if f["case_id"] == sub_id]
    assert len(mine) == 1, mine
    found = mine[0]
    assert found["subject"] == "subscription" and found["reason"] == "subscription_failing"
    assert found["remedies"] == ["retry", "replay", "pause"]
    assert source in found["detail"] and "HTTP 503" in found["detail"] and found["since"].endswith("+07:00")
    assert [f["case_id"] for f in await findings(quick, supervisor, reason="subscription_failing")].count(sub_id) == 1
    # Not a case: the case list's stalled filter and a kind filter leave it out.
    assert sub_id not in [f["case_id"] for f in await findings(quick, supervisor, kind="complaint")]
    cases = await quick.get("/v1/cases", supervisor, params={"stalled": "true", "limit": 200})
    assert sub_id not in [c["case_id"] for c in cases.json()["items"]]

    # A supervisor reads the queue and may not remedy; an intake system may not either.
    why = "Bên nhận đã sửa xong lỗi, gửi lại ngay"
    assert (await remedy(quick, supervisor, f"subscriptions/{sub_id}/retry", reason=why)).status_code == 403
    intake = await token(store, "intake", label=source)
    assert (await remedy(quick, intake, f"subscriptions/{sub_id}/retry", reason=why)).status_code == 403
    short = await remedy(quick, operator, f"subscriptions/{sub_id}/retry", reason="short")
    assert short.status_code == 422 and short.json()["error"]["fields"][0]["field"] == "reason"

    refusing.answer = lambda _: 204  # the receiver is fixed
    key = str(uuid.uuid4())
    done = await remedy(quick, operator, f"subscriptions/{sub_id}/retry", key, reason=why)
    assert done.status_code == 200, done.text
    record = done.json()
    assert record["action"] == "retry" and record["actor_role"] == "operator" and record["reason"] == why
    assert record["subject"] == "subscription" and record["subject_id"] == sub_id and not record["duplicate"]
    assert record["recorded_at"].endswith("+07:00")
    # Looked at again at once: it is out of the queue, and the event it gave up on is delivered.
    assert sub_id not in [f["case_id"] for f in await findings(quick, supervisor)]
    await until(lambda: bool(refusing.accepted), "the event to be delivered after the retry", 30)

    again = await remedy(quick, operator, f"subscriptions/{sub_id}/retry", key, reason=why)
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == record["id"]
    other = await remedy(quick, operator, f"subscriptions/{sub_id}/retry", key, reason=why + " (lần hai)")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency.key_reused"
    count = await store.pool.fetchval("SELECT count(*) FROM ops_remedies WHERE subject_id = $1", sub_id)
    assert count == 1
    # Active now: nothing to retry.
    active = await remedy(quick, operator, f"subscriptions/{sub_id}/retry", reason=why)
    assert active.status_code == 409 and active.json()["error"]["code"] == "subscription.not_stopped"


async def test_a_failing_subscription_is_paused_or_replayed_and_the_remedies_show_in_its_finding(
    quick: Api, store: EventStore, refusing: Receiver
) -> None:
    operator = await token(store, "operator")
    sub_id, _ = await failing_subscription(quick, store, refusing)
    paused = await remedy(quick, operator, f"subscriptions/{sub_id}/pause", reason="Tạm dừng trong khi chờ bên nhận")
    assert paused.status_code == 200, paused.text
    row = await store.pool.fetchrow("SELECT status, status_reason FROM subscriptions WHERE id = $1", sub_id)
    assert row["status"] == "paused"
    again = await remedy(quick, operator, f"subscriptions/{sub_id}/pause", reason="Tạm dừng trong khi chờ bên nhận")
    assert again.status_code == 409 and again.json()["error"]["code"] == "subscription.paused"
    bad = await remedy(quick, operator, f"subscriptions/{sub_id}/replay", reason="Bỏ qua sự kiện lỗi", cursor="nope")
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "cursor"
    unknown = await remedy(quick, operator, "subscriptions/sub_00000000000000000000/pause", reason="Không có gì cả")
    assert unknown.status_code == 404

    # Failing again, then replayed from the start of the feed: active, at its new place.
    await store.pool.execute("UPDATE subscriptions SET status = 'failing', status_reason = 'test' WHERE id = $1",
                             sub_id)
    await scan(quick, operator)
    replayed = await remedy(quick, operator, f"subscriptions/{sub_id}/replay", reason="Gửi lại từ đầu nguồn tin")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["detail"] == {"from": None}
    assert await store.pool.fetchval("SELECT status FROM subscriptions WHERE id = $1", sub_id) == "active"
    closed = await store.pool.fetchrow("SELECT cleared_at, repairs FROM stalled_findings WHERE case_id = $1 "
                                       "ORDER BY finding_id DESC LIMIT 1", sub_id)
    assert closed["cleared_at"] is not None
    repairs = closed["repairs"] if isinstance(closed["repairs"], list) else json.loads(closed["repairs"])
    assert [(r["action"], r["reason"]) for r in repairs] == [("replay", "Gửi lại từ đầu nguồn tin")]


async def test_a_late_checkpoint_is_in_the_queue_and_a_checkpoint_now_is_signed_by_the_running_signer(
    api: Api, store: EventStore, tmp_path: Path, database_url: str
) -> None:
    operator, supervisor = await token(store, "operator"), await token(store, "supervisor")
    settings = Settings.from_env({"DANVAN_HOME": str(tmp_path)})
    signer = signer_id(settings.checkpoint_log)
    # A signer that said it signs every minute, and last signed an hour ago (its process died).
    await store.pool.execute(
        "INSERT INTO checkpoint_signers (signer, log_path, every_seconds, started_at, last_try_at, last_signed_at, "
        "last_seq) VALUES ($1, $2, 60, now() - interval '2 hours', now() - interval '1 hour', "
        "now() - interval '1 hour', 7)", signer, str(settings.checkpoint_log))
    await scan(api, operator)
    mine = [f for f in await findings(api, supervisor, reason="checkpoint_late") if f["case_id"] == signer]
    assert len(mine) == 1, mine
    assert mine[0]["subject"] == "checkpoint" and mine[0]["remedies"] == ["checkpoint"]
    assert "checkpoint 7" in mine[0]["detail"] and "is its process running" in mine[0]["detail"]

    # Nobody signs: the request is recorded and answered as pending after a bounded wait.
    pending = await remedy(api, operator, "checkpoints", reason="Kiểm tra mốc ký số trước kỳ thanh tra")
    assert pending.status_code == 200, pending.text
    assert pending.json()["done_at"] is None and pending.json()["action"] == "checkpoint"
    assert (await remedy(api, supervisor, "checkpoints", reason="Kiểm tra mốc ký số")).status_code == 403

    # The signer starts again (as `danvan up` restarts it): it takes the pending request with its first
    # checkpoint, and the next request within a second.
    stop = asyncio.Event()
    running_signer = asyncio.create_task(run_checkpoint(settings, database_url, every=3600, stop=stop))
    try:
        async def first_signed() -> bool:
            return bool(await store.pool.fetchval("SELECT last_seq = 1 FROM checkpoint_signers WHERE signer = $1",
                                                  signer))

        await until(first_signed, "the signer's first checkpoint", 60)
        assert await store.pool.fetchval("SELECT outcome FROM ops_remedies WHERE id = $1",
                                         pending.json()["id"]) == "checkpoint 1 signed"
        key = str(uuid.uuid4())
        now = await remedy(api, operator, "checkpoints", key, reason="Ký một mốc mới ngay bây giờ")
        assert now.status_code == 200, now.text
        assert now.json()["outcome"] == "checkpoint 2 signed" and now.json()["done_at"] is not None
        assert signer not in [f["case_id"] for f in await findings(api, supervisor)]
        again = await remedy(api, operator, "checkpoints", key, reason="Ký một mốc mới ngay bây giờ")
        assert again.json()["duplicate"] and again.json()["outcome"] == "checkpoint 2 signed"
    finally:
        stop.set()
        await running_signer
    assert await store.pool.fetchval("SELECT stopped_at IS NOT NULL FROM checkpoint_signers WHERE signer = $1", signer)
