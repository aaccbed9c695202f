"""Crash test of webhooks: the worker process is killed with SIGKILL in the middle of a delivery, then started
again. Nothing may be lost: every event reaches the receiver, in order per case, a repeat only ever with the same
`webhook-id` and body.

Real Temporal dev server, real PostgreSQL (the test's own database), the real `danvan worker` command as a
separate process on the test's own task queue, and a receiver of the test's own that takes a while to answer,
so that a request is under way when the worker dies.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.webhook_types import WebhookPolicy
from api.subscriptions import SecretBox, SubscriptionRequest, insert_subscription, new_secret, verify
from api.tokens import Principal, issue_token
from danvan.keys import settings_key
from danvan.settings import Settings
from eventstore import CaseRow, EventStore, FeedCursor, NewEvent
from tests.conftest import migrated_database
from tests.integration.test_worker_crash import WorkerProcesses
from tests.receiver import Received, Receiver
from workflows.subscription_client import start_subscription

pytestmark = pytest.mark.slow

CASES = 4
PER_CASE = 15
#: The worker is killed once this many events were accepted.
KILL_AFTER = 20


@pytest_asyncio.fixture
async def hook_database(new_database: Callable[[], Awaitable[str]]) -> str:
    return await migrated_database(new_database)


@pytest_asyncio.fixture
async def hook_store(hook_database: str) -> AsyncIterator[EventStore]:
    store = await EventStore.open(hook_database, min_size=1, max_size=4)
    yield store
    await store.close()


@pytest.fixture
def workers(tmp_path: Path, temporal_env: WorkflowEnvironment, hook_database: str,
            task_queue: str) -> Iterator[WorkerProcesses]:
    import os

    from tests.conftest import ROOT, secret_env

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DANVAN_", "TEMPORAL_"))}
    env.update(TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
               TEMPORAL_NAMESPACE=temporal_env.client.namespace, DANVAN_HOME=str(tmp_path / "home"),
               DANVAN_LOG_LEVEL="INFO", DANVAN_WORKER_METRICS_PORT="0", DATABASE_URL=hook_database,
               DANVAN_WEBHOOK_ALLOW_HOSTS="127.0.0.1", PYTHONUNBUFFERED="1", **secret_env(),
               PYTHONPATH=str(ROOT))  # this checkout's code, whichever the venv's `danvan` was installed from
    procs = WorkerProcesses(tmp_path, env, task_queue)
    try:
        yield procs
    finally:
        procs.kill_all()


async def test_a_worker_killed_mid_delivery_loses_nothing(temporal_env: WorkflowEnvironment,
                                                          hook_store: EventStore, workers: WorkerProcesses,
                                                          task_queue: str) -> None:
    receiver = await Receiver(answer=lambda _: ("delay", 0.1)).start()
    try:
        await issue_token(hook_store.pool, "admin", label="crash-admin")
        secret = new_secret()
        row = await insert_subscription(hook_store.pool, SecretBox(settings_key(Settings.from_env())),
                                        Principal(role="admin", label="crash-admin", id="crash"),
                                        SubscriptionRequest(url=receiver.url), secret)
        assert row is not None
        policy = WebhookPolicy(request_timeout=2, backoff_first=0.2, backoff_max=1)
        await start_subscription(temporal_env.client, row.id, FeedCursor(), policy, task_queue=task_queue)
        first = workers.start()
        await workers.wait_ready(first)

        expected: dict[str, list[str]] = defaultdict(list)

        async def writer(case_id: str) -> None:
            for version in range(PER_CASE):
                event = NewEvent(event_id=uuid.uuid4(), type="Classified", occurred_at=datetime.now(UTC),
                                 actor="tester", data={"n": version + 1})
                await hook_store.append(case_id, version, [event], CaseRow(kind="complaint", status="received"))
                expected[case_id].append(str(event.event_id))
                await asyncio.sleep(0.05)

        writing = asyncio.gather(*(writer(f"crash-hook-{n}-{uuid.uuid4().hex[:6]}") for n in range(CASES)))
        deadline = time.monotonic() + 60
        while len(receiver.accepted) < KILL_AFTER:
            assert time.monotonic() < deadline, workers.tail()
            await asyncio.sleep(0.02)
        in_flight = len(receiver.requests) - len(receiver.accepted)
        workers.kill(first)  # SIGKILL to the whole process group, mid-request most likely
        killed_at = len(receiver.requests)
        await writing
        second = workers.start()
        await workers.wait_ready(second)

        wanted = {event_id for ids in expected.values() for event_id in ids}
        deadline = time.monotonic() + 120  # the lost attempt is retried when its heartbeat times out (22 s)
        while not wanted <= {r.headers["webhook-id"] for r in receiver.accepted}:
            assert time.monotonic() < deadline, (len(receiver.accepted), workers.tail())
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
    finally:
        await receiver.stop()

    accepted = receiver.accepted
    assert {r.headers["webhook-id"] for r in accepted} == wanted
    bodies: dict[str, bytes] = {}
    for request in receiver.requests:
        headers = request.headers
        assert verify(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), request.body,
                      headers["webhook-signature"])
        assert bodies.setdefault(headers["webhook-id"], request.body) == request.body
    versions: dict[str, list[int]] = defaultdict(list)
    for request in accepted:
        data = json.loads(request.body)["data"]
        versions[data["case_id"]].append(data["version"])
    for case_id, seen in versions.items():
        assert seen == sorted(seen), (case_id, seen)
        assert sorted(set(seen)) == list(range(1, PER_CASE + 1))
    repeats = len(accepted) - len(wanted)
    print(f"{len(wanted)} events, {len(receiver.requests)} requests ({killed_at} before the kill, {in_flight} in "
          f"flight at the kill), {repeats} accepted twice")
    # The activity's heartbeat carried its progress: at most the request under way is sent again.
    assert repeats <= 1
    assert isinstance(accepted[0], Received)
