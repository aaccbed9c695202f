"""`GET /metrics`: scraped and read by Prometheus' own text parser, the series moving after a command, the
case gauges read from PostgreSQL at scrape time within a bound, and who may scrape."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from api.metrics import route_template
from eventstore import EventStore

from .support import Api, petition, seed_case, token, unique, unique_body


async def scrape(api: Api, tok: str) -> dict[str, list[Sample]]:
    response = await api.get("/metrics", tok)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = text_string_to_metric_families(response.text)
    return {family.name: family.samples for family in families}


def value(families: dict[str, list[Sample]], family: str, sample: str, **labels: str) -> float:
    """The value of the sample named `sample` of `family` whose labels include `labels` (0 when absent)."""
    return sum(s.value for s in families.get(family, [])
               if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_a_command_moves_the_request_counter_and_the_append_histogram(api: Api, store: EventStore) -> None:
    source, body = unique("metrics-intake"), unique_body("M")
    supervisor = await token(store, "supervisor")
    intake = await token(store, "intake", label=source)
    staff = await token(store, "body", body)
    opened = await api.post("/v1/petitions", intake, json=petition(source, receiving_body=body))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]

    before = await scrape(api, supervisor)
    command = {"type": "assign", "body": "UBND_TINH", "officer": unique("officer")}
    sent = await api.post(f"/v1/cases/{case_id}/commands", staff, json=command)
    assert sent.status_code == 200, sent.text
    after = await scrape(api, supervisor)

    route = {"method": "POST", "route": "/v1/cases/{case_id}/commands"}
    requests = ("danvan_http_requests", "danvan_http_requests_total")
    assert value(after, *requests, **route, status="200") == value(before, *requests, **route, status="200") + 1
    latency = ("danvan_http_request_duration_seconds", "danvan_http_request_duration_seconds_count")
    assert value(after, *latency, **route) == value(before, *latency, **route) + 1
    # The route's template, never the raw path: no series names the case.
    assert not any(case_id in str(s.labels) for samples in after.values() for s in samples)
    appends = ("danvan_eventstore_append_duration_seconds", "danvan_eventstore_append_duration_seconds_count")
    assert value(after, *appends, outcome="appended") >= value(before, *appends, outcome="appended") + 1
    sums = ("danvan_eventstore_append_duration_seconds", "danvan_eventstore_append_duration_seconds_sum")
    assert value(after, *sums) > value(before, *sums)
    assert "danvan_eventstore_append_conflicts" in after
    assert after["danvan_cases_scrape_ok"][0].value == 1


async def test_a_conflict_is_counted(api: Api, store: EventStore) -> None:
    from eventstore import ConcurrencyError

    supervisor = await token(store, "supervisor")
    case_id = await seed_case(store)
    before = await scrape(api, supervisor)
    with pytest.raises(ConcurrencyError):
        await seed_case(store, case_id=case_id)  # a first event for a stream that has one
    after = await scrape(api, supervisor)
    conflicts = ("danvan_eventstore_append_conflicts", "danvan_eventstore_append_conflicts_total")
    assert value(after, *conflicts) == value(before, *conflicts) + 1
    counts = ("danvan_eventstore_append_duration_seconds", "danvan_eventstore_append_duration_seconds_count")
    assert value(after, *counts, outcome="conflict") == value(before, *counts, outcome="conflict") + 1


async def test_the_case_gauges_count_open_overdue_and_breached_cases(api: Api, store: EventStore) -> None:
    supervisor = await token(store, "supervisor")
    kind = "complaint"
    before = await scrape(api, supervisor)
    past = datetime.now(UTC) - timedelta(days=3)
    await seed_case(store, kind=kind, status="metrics_probe", due_at=past, overdue=True)
    await seed_case(store, kind=kind, status="metrics_probe", due_at=past)  # past due, breach not recorded yet
    await seed_case(store, kind=kind, status="metrics_probe", due_at=datetime.now(UTC) + timedelta(days=3))
    await seed_case(store, kind=kind, status="archived", due_at=past, overdue=True)  # ended: not counted
    after = await scrape(api, supervisor)
    assert value(after, "danvan_cases_open", "danvan_cases_open", kind=kind, status="metrics_probe") == 3
    assert value(after, "danvan_cases_open", "danvan_cases_open", status="archived") == 0
    assert value(after, "danvan_cases_overdue", "danvan_cases_overdue", kind=kind) == value(
        before, "danvan_cases_overdue", "danvan_cases_overdue", kind=kind) + 1
    assert value(after, "danvan_cases_breached", "danvan_cases_breached", kind=kind) == value(
        before, "danvan_cases_breached", "danvan_cases_breached", kind=kind) + 2


async def test_the_jobs_in_progress_are_counted_by_state(api: Api, store: EventStore) -> None:
    import secrets

    from domain.common import Actor
    from ops.job_types import ActionRecord, JobSpec, job_id_from
    from ops.jobs import insert_job, record_action

    supervisor = await token(store, "supervisor")
    jobs = ("danvan_repair_jobs_in_progress", "danvan_repair_jobs_in_progress")
    before = await scrape(api, supervisor)
    specs = [JobSpec(job_id=job_id_from(secrets.token_bytes(8)), action="nudge", reason="Nhắc cơ quan chậm trả lời",
                     rate=1, case_ids=["pet-metrics-probe"], requester=Actor(id="vận hành", role="operator"),
                     requested_at=datetime.now(UTC), needs_approval=approval) for approval in (True, False, False)]
    for spec in specs:
        await insert_job(store.pool, spec)
    await record_action(store.pool, ActionRecord(job_id=specs[2].job_id, seq=1, action="pause", actor="operator:x",
                                                 reason="Tạm dừng để kiểm tra", at=datetime.now(UTC), state="paused"))
    after = await scrape(api, supervisor)
    for state in ("awaiting_approval", "running", "paused"):
        assert value(after, *jobs, state=state) == value(before, *jobs, state=state) + 1, state
    await record_action(store.pool, ActionRecord(job_id=specs[1].job_id, seq=1, action="complete", actor="system",
                                                 at=datetime.now(UTC), state="completed", finished=True))
    ended = await scrape(api, supervisor)
    assert value(ended, *jobs, state="running") == value(before, *jobs, state="running")


async def test_a_scrape_is_answered_in_bounded_time_while_the_cases_table_is_locked(
    api: Api, store: EventStore, database_url: str
) -> None:
    supervisor = await token(store, "supervisor")
    await scrape(api, supervisor)  # the token is cached: the lock below holds up only the gauges
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            families = await scrape(api, supervisor)
            took = time.monotonic() - started
    finally:
        await conn.close()
    assert took < 3.5
    assert families["danvan_cases_scrape_ok"][0].value == 0
    assert "danvan_cases_open" not in families
    assert "danvan_http_requests" in families  # the rest is served all the same
    # and the next scrape reads them again
    assert (await scrape(api, supervisor))["danvan_cases_scrape_ok"][0].value == 1


async def test_an_unmatched_path_is_counted_under_one_label(api: Api, store: EventStore) -> None:
    supervisor = await token(store, "supervisor")
    for n in range(3):
        assert (await api.get(f"/no-such-path-{n}")).status_code == 404
    families = await scrape(api, supervisor)
    assert value(families, "danvan_http_requests", "danvan_http_requests_total", route="unmatched",
                 status="404") >= 3
    assert not any("no-such-path" in str(s.labels) for samples in families.values() for s in samples)


async def test_console_pages_are_counted_under_their_mounted_template(api: Api, store: EventStore) -> None:
    supervisor = await token(store, "supervisor")
    await api.get("/console/login")
    await api.get("/console/static/console.css")
    families = await scrape(api, supervisor)
    routes = {s.labels["route"] for s in families["danvan_http_requests"]}
    assert "/console/login" in routes
    assert "/console/static/{path}" in routes


@pytest.mark.parametrize("role", ["intake", "body"])
async def test_only_readers_of_everything_may_scrape(api: Api, store: EventStore, role: str) -> None:
    tok = await token(store, role, unique_body() if role == "body" else None)
    response = await api.get("/metrics", tok)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert (await api.get("/metrics")).status_code == 401


def test_a_route_template_without_a_route_is_unmatched() -> None:
    assert route_template({"type": "http", "root_path": ""}, "") == "unmatched"


async def test_scrapes_in_parallel_all_answer(api: Api, store: EventStore) -> None:
    supervisor = await token(store, "supervisor")
    results = await asyncio.gather(*(scrape(api, supervisor) for _ in range(5)))
    assert all(r["danvan_cases_scrape_ok"][0].value == 1 for r in results)


async def test_the_queue_subscriptions_and_checkpoints_have_their_gauges(api: Api, store: EventStore) -> None:
    """A failing subscription and a late checkpoint, once the scan has looked, move the stalled gauge by subject
    and reason, the subscriptions by status and the late checkpoints."""
    supervisor, operator, admin = [await token(store, r) for r in ("supervisor", "operator", "admin")]
    made = await api.post("/v1/subscriptions", admin, json={"url": "http://127.0.0.1:9/hook", "status": "paused"})
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    signer = unique("metrics-signer")
    before = await scrape(api, supervisor)
    await store.pool.execute("UPDATE subscriptions SET status = 'failing', status_reason = 'probe' WHERE id = $1",
                             sub_id)
    await store.pool.execute(
        "INSERT INTO checkpoint_signers (signer, log_path, every_seconds, started_at, last_signed_at, last_seq) "
        "VALUES ($1, '/nowhere', 60, now() - interval '1 hour', now() - interval '1 hour', 3)", signer)
    try:
        assert (await api.post("/v1/ops/stalled/scan", operator)).status_code == 200
        after = await scrape(api, supervisor)
        failing = {"subject": "subscription", "reason": "subscription_failing", "kind": ""}
        assert value(after, "danvan_stalled", "danvan_stalled", **failing) == value(
            before, "danvan_stalled", "danvan_stalled", **failing) + 1
        assert value(after, "danvan_subscriptions", "danvan_subscriptions", status="failing") == value(
            before, "danvan_subscriptions", "danvan_subscriptions", status="failing") + 1
        assert value(after, "danvan_subscriptions", "danvan_subscriptions", status="paused") == value(
            before, "danvan_subscriptions", "danvan_subscriptions", status="paused") - 1
        assert value(after, "danvan_checkpoints_late", "danvan_checkpoints_late") == value(
            before, "danvan_checkpoints_late", "danvan_checkpoints_late") + 1
        late = {"subject": "checkpoint", "reason": "checkpoint_late", "kind": ""}
        assert value(after, "danvan_stalled", "danvan_stalled", **late) >= 1
        assert after["danvan_checkpoint_last_signed_timestamp_seconds"][0].value > 0
    finally:
        await store.pool.execute("DELETE FROM checkpoint_signers WHERE signer = $1", signer)
        await store.pool.execute("DELETE FROM subscriptions WHERE id = $1", sub_id)
        await api.post("/v1/ops/stalled/scan", operator)


async def test_webhook_deliveries_are_counted_by_outcome_and_status_class_and_timed(
    api: Api, store: EventStore
) -> None:
    from tests.receiver import Receiver

    from .test_webhooks import append, until

    answers = iter([500])
    receiver = await Receiver(answer=lambda _: next(answers, 204)).start()
    try:
        supervisor = await token(store, "supervisor")
        source = unique("metrics-hooks")
        intake = await token(store, "intake", label=source)
        before = await scrape(api, supervisor)
        made = await api.post("/v1/subscriptions", intake, json={"url": receiver.url})
        assert made.status_code == 201, made.text
        await append(store, unique("metrics-hook-case"), 0, source)
        await until(lambda: bool(receiver.accepted), "the event to be delivered after a 500", 60)
        after = await scrape(api, supervisor)
    finally:
        await receiver.stop()
    counts = ("danvan_webhook_deliveries", "danvan_webhook_deliveries_total")
    assert value(after, *counts, outcome="failed", status_class="5xx") == value(
        before, *counts, outcome="failed", status_class="5xx") + 1
    assert value(after, *counts, outcome="delivered", status_class="2xx") == value(
        before, *counts, outcome="delivered", status_class="2xx") + 1
    timed = ("danvan_webhook_delivery_duration_seconds", "danvan_webhook_delivery_duration_seconds_count")
    assert value(after, *timed) == value(before, *timed) + 2
