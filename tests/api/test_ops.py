"""The operators' endpoints over HTTP: who may call them, what they refuse, and what they record."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from eventstore import EventStore

from ..faults import AppendFault
from .support import Api, petition, token, unique

REASON = "Cơ quan chưa trả lời quá hạn, nhắc xử lý"
ROOT = Path(__file__).resolve().parents[2]


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    intake: str
    source: str
    body: str
    supervisor: str
    operator: str
    admin: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("ops-backoffice")
    return Tokens(
        intake=await token(store, "intake", label=source), source=source,
        body=await token(store, "body", "UBND_TINH", label="chuyên viên UBND tỉnh"),
        supervisor=await token(store, "supervisor", label="giám sát viên"),
        operator=await token(store, "operator", label="Trực vận hành Hoàng Minh"),
        admin=await token(store, "admin", label="quản trị"),
    )


async def open_case(api: Api, tokens: Tokens) -> str:
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source, receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["case_id"])
    for command in ({"type": "classify", "lead_body": "UBND_TINH"}, {"type": "accept", "decision_no": "3/QĐ"}):
        answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.body, json=command)
        assert answer.status_code == 200, answer.text
    return case_id


@pytest.mark.parametrize("role, status", [
    (None, 401), ("intake", 403), ("body", 403), ("supervisor", 200), ("operator", 200), ("admin", 200),
])
async def test_the_stalled_list_is_for_operators_supervisors_and_admins(
    api: Api, tokens: Tokens, role: str | None, status: int
) -> None:
    response = await api.get("/v1/ops/stalled", getattr(tokens, role) if role else None)
    assert response.status_code == status, response.text
    if status == 200:
        assert isinstance(response.json()["items"], list)


async def test_the_stalled_list_validates_its_filters(api: Api, tokens: Tokens) -> None:
    response = await api.get("/v1/ops/stalled?reason=bored&min_attempts=1", tokens.operator)
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["error"]["fields"]} == {"reason", "min_attempts"}


@pytest.mark.parametrize("role", ["intake", "body", "supervisor"])
async def test_only_operators_and_admins_repair(api: Api, tokens: Tokens, store: EventStore, role: str) -> None:
    case_id = await open_case(api, tokens)
    before = len(await store.read_stream(case_id))
    for path, body in [("nudge", {"reason": REASON}), ("retry", {"reason": REASON}),
                       ("reassign", {"reason": REASON, "body": "SO_NOI_VU"}),
                       ("reset", {"reason": REASON, "dry_run": True})]:
        response = await api.post(f"/v1/ops/cases/{case_id}/{path}", getattr(tokens, role), json=body)
        assert response.status_code == 403, (path, response.text)
    assert (await api.post("/v1/ops/retry", getattr(tokens, role), json={"reason": REASON})).status_code == 403
    assert len(await store.read_stream(case_id)) == before


async def test_a_nudge_is_recorded_once_with_the_operator_from_the_token(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    key = uuid.uuid4().hex
    named = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator,
                           json={"reason": REASON, "actor": {"id": "kẻ mạo danh", "role": "admin"}})
    assert named.status_code == 422 and named.json()["error"]["fields"][0] == {
        "field": "actor", "rule": "extra_forbidden", "message": "Extra inputs are not permitted"}  # never taken
    body = {"reason": REASON}
    first = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator, json=body,
                           headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert first.json()["recorded"] and first.json()["events"] == ["RepairRecorded", "BodyNudged"]
    again = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator, json=body,
                           headers={"Idempotency-Key": key})
    assert again.status_code == 200
    stored = await store.read_stream(case_id)
    assert [e.type for e in stored].count("BodyNudged") == 1
    repair = next(e for e in stored if e.type == "RepairRecorded")
    assert repair.actor == "operator:Trực vận hành Hoàng Minh" and repair.reason == REASON
    history = await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)
    assert history.json()["integrity"]["ok"] is True


async def test_repairs_that_do_not_apply_are_refused_and_change_nothing(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    before = len(await store.read_stream(case_id))
    short = await api.post(f"/v1/ops/cases/{case_id}/nudge", tokens.operator, json={"reason": "vì"})
    assert short.status_code == 422 and short.json()["error"]["fields"][0]["field"] == "reason"
    nothing = await api.post(f"/v1/ops/cases/{case_id}/retry", tokens.operator, json={"reason": REASON})
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "repair.retry.nothing_failing"
    no_point = await api.post(f"/v1/ops/cases/{case_id}/reset", tokens.operator, json={"reason": REASON})
    assert no_point.status_code == 409 and no_point.json()["error"]["code"] == "repair.reset.nothing_failing"
    bad_point = await api.post(f"/v1/ops/cases/{case_id}/reset", tokens.operator,
                               json={"reason": REASON, "to_event_id": 1, "dry_run": True})
    assert bad_point.status_code == 409 and bad_point.json()["error"]["code"] == "repair.reset.point"
    missing = await api.post("/v1/ops/cases/no-such-case/retry", tokens.operator, json={"reason": REASON})
    assert missing.status_code == 404
    assert len(await store.read_stream(case_id)) == before


async def test_a_reset_dry_run_shows_the_commands_it_would_rerun(
    api: Api, tokens: Tokens, store: EventStore, temporal_env: WorkflowEnvironment
) -> None:
    case_id = await open_case(api, tokens)
    stalled = await api.get("/v1/ops/stalled", tokens.operator)
    assert case_id not in {s["case_id"] for s in stalled.json()["items"]}
    history = await temporal_env.client.get_workflow_handle(case_id).fetch_history()
    point = next(e.event_id for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    dry = await api.post(f"/v1/ops/cases/{case_id}/reset", tokens.operator,
                         json={"reason": REASON, "to_event_id": point, "dry_run": True})
    assert dry.status_code == 200, dry.text
    plan = dry.json()["plan"]
    assert [(u["name"], u["command_type"]) for u in plan["updates"]] == [
        ("receive", None), ("classify", "classify"), ("accept", "accept")]
    assert plan["stream_version"] == len(await store.read_stream(case_id)) == 3
    assert dry.json()["recorded"] is False


async def test_bulk_retry_reports_what_it_did(api: Api, tokens: Tokens) -> None:
    response = await api.post("/v1/ops/retry", tokens.operator,
                              json={"reason": REASON, "kind": "complaint", "dry_run": True, "limit": 5})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["matched"] == len(report["items"]) <= 5
    bad = await api.post("/v1/ops/retry", tokens.operator, json={"reason": REASON, "per_second": 0})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "per_second"


async def danvan(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "danvan.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_cli_lists_stalled_cases_and_records_repairs_with_the_login_as_operator(
    api: Api, tokens: Tokens, store: EventStore, database_url: str, temporal_env: WorkflowEnvironment
) -> None:
    case_id = await open_case(api, tokens)
    env = {**os.environ, "DATABASE_URL": database_url,
           "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host}
    status, out, err = await danvan(env, "stalled", "--json", "--kind", "complaint")
    assert status == 0, err
    assert case_id not in {s["case_id"] for s in json.loads(out)}
    status, out, err = await danvan(env, "nudge", case_id, "--reason", REASON)
    assert status == 0 and "nudge" in out and "recorded" in out, (out, err)
    repair = next(e for e in await store.read_stream(case_id) if e.type == "RepairRecorded")
    assert repair.actor == f"operator:{getpass.getuser()}@{socket.gethostname()}"
    status, out, err = await danvan(env, "retry", case_id, "--reason", REASON)
    assert status == 1 and "repair.retry.nothing_failing" in err
    status, out, err = await danvan(env, "reassign", case_id, "--reason", REASON)
    assert status == 2 and "--body" in err


async def test_a_case_stalled_by_a_database_fault_is_listed_filtered_and_retried_over_http(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    fault = AppendFault(store, case_id)
    await fault.inject()
    command = {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Đinh Thị Lan"}
    sent = asyncio.create_task(api.post(f"/v1/cases/{case_id}/commands", tokens.body, json=command,
                                        headers={"Idempotency-Key": f"assign-{case_id}"}))
    try:
        for _ in range(100):
            # What the scheduled scan does every minute, done now; the list reads what it wrote.
            scanned = await api.post("/v1/ops/stalled/scan", tokens.operator)
            assert scanned.status_code == 200, scanned.text
            listed = await api.get("/v1/ops/stalled?reason=activity_failing", tokens.supervisor)
            mine = [s for s in listed.json()["items"] if s["case_id"] == case_id]
            if mine:
                break
            await asyncio.sleep(0.3)
        assert mine and "tablespace offline" in mine[0]["detail"] and mine[0]["remedies"][0] == "retry"
        assert listed.json()["source"] == "scan" and listed.json()["scan"]["scan_id"] == scanned.json()["scan_id"]
        assert mine[0]["times_seen"] >= 1 and mine[0]["first_seen"].endswith("+07:00")
        live = await api.get("/v1/ops/stalled?reason=activity_failing&min_attempts=2", tokens.supervisor)
        assert live.json()["source"] == "live" and case_id in {s["case_id"] for s in live.json()["items"]}
        page = await api.get("/v1/cases?stalled=true&kind=complaint&limit=200", tokens.supervisor)
        assert case_id in {c["case_id"] for c in page.json()["items"]}
        others = await api.get("/v1/cases?stalled=false&kind=complaint&limit=200", tokens.supervisor)
        assert case_id not in {c["case_id"] for c in others.json()["items"]}
        # No answer yet, or only the bounded one: sent, its outcome unknown until the step can run.
        assert not sent.done() or "same Idempotency-Key" in sent.result().json()["error"]["message"]
    finally:
        await fault.remove()
    retried = await api.post(f"/v1/ops/cases/{case_id}/retry", tokens.operator, json={"reason": REASON})
    assert retried.status_code == 200, retried.text
    assert retried.json()["recorded"] and retried.json()["detail"]["retried"][0]["activity_type"] == "append_events"
    # The case was looked at again after its repair: no longer stalled, without waiting for the next look.
    after = await api.get("/v1/ops/stalled?reason=activity_failing", tokens.supervisor)
    assert case_id not in {s["case_id"] for s in after.json()["items"]}
    page = await api.get("/v1/cases?stalled=true&kind=complaint&limit=200", tokens.supervisor)
    assert case_id not in {c["case_id"] for c in page.json()["items"]}
    answer = await sent
    for _ in range(20):  # a 503 with its outcome unknown: sent again with the same key, as a client does
        if answer.status_code != 503:
            break
        answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.admin, json=command,
                                headers={"Idempotency-Key": f"assign-{case_id}"})
    assert answer.status_code == 200, answer.text
    types = [e.type for e in await store.read_stream(case_id)]
    assert types[-2:] == ["Assigned", "RepairRecorded"] and types.count("Assigned") == 1
    assert (await store.verify(case_id)).ok
