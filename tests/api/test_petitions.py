"""Petitions end to end through HTTP, on the Temporal dev server and PostgreSQL: receipt to archive."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.rules import load_rule_sets
from eventstore import EventStore

from .support import Api, petition, token, unique


class Tokens:
    def __init__(self, intake: str, source: str, body: str, admin: str, supervisor: str, land: str) -> None:
        self.intake, self.source, self.body, self.admin, self.supervisor = intake, source, body, admin, supervisor
        self.land = land  # the land department's staff, asked to coordinate


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("backoffice")
    return Tokens(
        intake=await token(store, "intake", label=source), source=source,
        body=await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh"),
        admin=await token(store, "admin"), supervisor=await token(store, "supervisor"),
        land=await token(store, "body", "SO_TAI_NGUYEN", label="cán bộ Sở Tài nguyên"),
    )


async def command(api: Api, tok: str, case_id: str, body: dict[str, Any],
                  key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post(f"/v1/cases/{case_id}/commands", tok, json=body, headers=headers)


async def test_a_complaint_goes_from_receipt_to_archive_with_a_verifying_history(api: Api, tokens: Tokens) -> None:
    opened = await api.post("/v1/petitions", tokens.intake,
                            json=petition(tokens.source, receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    first = opened.json()["deadlines"][0]
    assert first["key"] == "complaint.acceptance" and "Khiếu nại" in first["legal_basis"]

    steps: list[dict[str, Any]] = [
        {"type": "classify", "lead_body": "UBND_TINH", "subject_category": "đất đai"},
        {"type": "accept", "decision_no": "15/QĐ-UBND"},
        {"type": "request_coordination", "subject": "Cung cấp hồ sơ thu hồi đất",
         "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5},
                    {"body": "UBMTTQ_TINH", "side": "front", "days": 7, "unit": "calendar"}]},
        {"type": "respond", "request_id": "R1", "body": "SO_TAI_NGUYEN", "response": "Đã gửi hồ sơ."},
        {"type": "record_verification", "findings": "Bồi thường chưa đúng đơn giá", "demand_matches_findings": False},
        {"type": "record_dialogue", "held_on": "2026-11-25", "participants": ["Bà Lan", "UBND tỉnh"],
         "summary": "Đối thoại công khai"},
        {"type": "decide", "outcome": "partly_upheld", "decision_no": "30/QĐ-GQKN", "summary": "Bồi thường bổ sung"},
        {"type": "notify", "about": "decision", "recipients": ["Bà Lan", "Thanh tra tỉnh"], "doc_no": "31/TB"},
        {"type": "close"},
        {"type": "archive", "archive_ref": "HS-2026-0042"},
    ]
    for step in steps:
        sender = tokens.land if step["type"] == "respond" else tokens.body  # a coordinating body answers for itself
        if step["type"] == "close":
            # The decision is carried out once it takes legal effect, 30 days after it is issued.
            early = await command(api, tokens.body, case_id, {"type": "record_implementation",
                                                               "summary": "Đã chi trả bổ sung"}, key=str(uuid.uuid4()))
            assert early.status_code == 409, early.text
            assert early.json()["error"]["code"] == "implementation.not_in_effect"
        answer = await command(api, sender, case_id, step, key=str(uuid.uuid4()))
        assert answer.status_code == 200, (step, answer.text)
    assert answer.json()["status"] == "archived"

    history = await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)
    assert history.status_code == 200
    body = history.json()
    assert body["integrity"]["ok"] is True
    events = body["events"]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    for prev, nxt in itertools.pairwise(events):
        assert nxt["prev_hash"] == prev["hash"]
    types = [e["type"] for e in events]
    assert types[:3] == ["PetitionReceived", "Classified", "AcceptanceDecided"]
    assert types[-2:] == ["Closed", "Archived"]
    assert all(e["actor"] for e in events)
    assert any("UBND_TINH" in (e["actor"] or "") for e in events[1:])

    case = (await api.get(f"/v1/cases/{case_id}", tokens.supervisor)).json()
    assert case["status"] == "archived" and case["title"] == "Khiếu nại về bồi thường đất đai"


async def test_a_command_retried_with_the_same_idempotency_key_is_applied_once(api: Api, tokens: Tokens) -> None:
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source, receiving_body="UBND_TINH"))
    case_id = opened.json()["case_id"]
    await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    key = str(uuid.uuid4())
    body = {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Hoà"}
    answers = await asyncio.gather(*(command(api, tokens.body, case_id, body, key=key) for _ in range(3)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    again = await command(api, tokens.body, case_id, body, key=key)
    assert again.status_code == 200
    history = (await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)).json()
    assert [e["type"] for e in history["events"]].count("Assigned") == 1


async def test_the_same_petition_sent_twice_is_the_same_case_and_other_content_is_refused(
    api: Api, tokens: Tokens
) -> None:
    body = petition(tokens.source)
    first = await api.post("/v1/petitions", tokens.intake, json=body)
    second = await api.post("/v1/petitions", tokens.intake, json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["case_id"] == second.json()["case_id"]
    changed = await api.post("/v1/petitions", tokens.intake, json={**body, "content": "Nội dung khác"})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "petition.conflict"


async def test_a_command_the_state_does_not_allow_is_refused_with_its_rule_and_changes_nothing(
    api: Api, tokens: Tokens
) -> None:
    case_id = (await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source,
                                                                             receiving_body="UBND_TINH"))).json()["case_id"]
    refused = await command(api, tokens.body, case_id, {"type": "accept", "decision_no": "1/QĐ"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "accept.state"
    history = (await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)).json()
    assert [e["type"] for e in history["events"]] == ["PetitionReceived"]


async def test_bad_petitions_and_commands_get_422_naming_each_field(api: Api, tokens: Tokens) -> None:
    bad = await api.post("/v1/petitions", tokens.intake,
                         json=petition(tokens.source, kind="gripe", received_at="yesterday", subject=""))
    assert bad.status_code == 422
    fields = {f["field"] for f in bad.json()["error"]["fields"]}
    assert {"kind", "received_at", "subject"} <= fields
    case_id = (await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source,
                                                                             receiving_body="UBND_TINH"))).json()["case_id"]
    for payload, field in [({"type": "teleport"}, "type"), ({"type": "accept"}, "decision_no"),
                           ({"type": "forward", "to_body": "not a code", "notice_no": "1"}, "to_body"),
                           ({"type": "deadline", "key": "x", "stage": "breached"}, "type")]:
        answer = await command(api, tokens.body, case_id, payload)
        assert answer.status_code == 422, answer.text
        assert field in {f["field"] for f in answer.json()["error"]["fields"]}, answer.text


async def test_a_denouncers_identity_never_reaches_temporal_or_the_event_store(
    api: Api, tokens: Tokens, store: EventStore, temporal_env: WorkflowEnvironment
) -> None:
    secret_name = "Phạm Thị Kín Danh"
    body = petition(tokens.source, kind="denunciation",
                    petitioner={"name": secret_name, "address": "Số 9 phố Bí Mật", "phone": "0912345678"})
    opened = await api.post("/v1/petitions", tokens.intake, json=body)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert secret_name not in opened.text and "0912345678" not in opened.text
    assert opened.json()["case"]["petitioner_ref"].startswith("sealed-")
    events = await store.read_stream(case_id)
    assert secret_name not in json.dumps([e.data for e in events], ensure_ascii=False)
    history = await temporal_env.client.get_workflow_handle(case_id).fetch_history()
    assert secret_name.encode() not in history.to_json().encode()
    assert "0912345678" not in history.to_json()
    sealed = await store.pool.fetchrow("SELECT ciphertext FROM sealed_identities WHERE case_id = $1", case_id)
    assert sealed is not None and secret_name.encode() not in sealed["ciphertext"]
    # Sent again, the same petition is the same case; with another denouncer it is refused.
    assert (await api.post("/v1/petitions", tokens.intake, json=body)).status_code == 200
    other = {**body, "petitioner": {"name": "Người khác", "address": "Nơi khác"}}
    assert (await api.post("/v1/petitions", tokens.intake, json=other)).status_code == 409


async def test_cases_are_listed_by_their_search_attributes_in_temporal(
    api: Api, tokens: Tokens, temporal_env: WorkflowEnvironment
) -> None:
    district = unique("Huyện")
    body = petition(tokens.source, district=district, receiving_body="UBND_TINH")
    case_id = (await api.post("/v1/petitions", tokens.intake, json=body)).json()["case_id"]
    query = f"CaseKind='complaint' AND District='{district}' AND CaseStatus='received' AND Overdue=false"
    for _ in range(50):
        found = [wf.id async for wf in temporal_env.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [case_id]


async def test_a_petition_started_and_driven_by_the_temporal_cli_behaves_like_one_from_the_api(
    api: Api, tokens: Tokens, temporal_env: WorkflowEnvironment, store: EventStore
) -> None:
    import uvicorn

    from tests.conftest import binary, free_port

    address = temporal_env.client.service_client.config.target_host
    case_id = unique("pet-cli")
    intake = petition(tokens.source, receiving_body="UBND_TINH")
    # Payloads are encrypted: the CLI reads and writes them through the API's codec endpoint, served here over
    # HTTP from the same app, with a supervisor's token.
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.05)
    codec = ["--codec-endpoint", f"http://127.0.0.1:{port}/codec", "--codec-auth", f"Bearer {tokens.supervisor}"]

    async def cli(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            binary("temporal"), *args, "--address", address, *codec,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode()

    try:
        await cli("workflow", "start", "--task-queue", "danvan", "--type", "PetitionWorkflow",
                  "--workflow-id", case_id, "--input", json.dumps({"intake": intake}, ensure_ascii=False))
        classify = {"command": {"type": "classify", "lead_body": "UBND_TINH"},
                    "actor": {"id": "cli-officer", "role": "body", "body": "UBND_TINH"}}
        for _ in range(50):  # the case opens when its first event is stored
            if await store.stream_version(case_id) > 0:
                break
            await asyncio.sleep(0.1)
        # Around the API, the case itself still judges who sends a command: an operator does not classify.
        by_operator = await asyncio.create_subprocess_exec(
            binary("temporal"), "workflow", "update", "execute", "--workflow-id", case_id, "--name", "execute",
            "--input", json.dumps({**classify, "actor": {"id": "cli-operator", "role": "operator"}}),
            "--address", address, *codec, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await by_operator.communicate()
        assert by_operator.returncode != 0 and b"authority.classify" in err
        out = await cli("workflow", "update", "execute", "--workflow-id", case_id, "--name", "execute",
                        "--input", json.dumps(classify))
        assert "classified" in out
        refused = await asyncio.create_subprocess_exec(
            binary("temporal"), "workflow", "update", "execute", "--workflow-id", case_id, "--name", "execute",
            "--input", json.dumps({**classify, "command": {"type": "close"}}), "--address", address, *codec,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await refused.communicate()
        assert refused.returncode != 0 and b"close.state" in err

        case = (await api.get(f"/v1/cases/{case_id}", tokens.supervisor)).json()
        assert case["status"] == "classified" and case["lead_body"] == "UBND_TINH"
        history = (await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)).json()
        assert [e["type"] for e in history["events"]] == ["PetitionReceived", "Classified"]
        assert history["integrity"]["ok"]
        assert history["events"][1]["actor"] == "body:cli-officer@UBND_TINH"
        answer = await command(api, tokens.body, case_id, {"type": "accept", "decision_no": "9/QĐ"})
        assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    finally:
        server.should_exit = True
        await serving


async def test_an_archived_petition_sent_again_answers_its_case_and_starts_no_new_run(
    api: Api, tokens: Tokens, temporal_env: WorkflowEnvironment
) -> None:
    sent = petition(tokens.source, receiving_body="UBND_TINH")
    opened = await api.post("/v1/petitions", tokens.intake, json=sent)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    for step in ({"type": "classify", "lead_body": "UBND_TINH"}, {"type": "accept", "decision_no": "16/QĐ-UBND"},
                 {"type": "record_verification", "findings": "Không có căn cứ", "demand_matches_findings": True},
                 {"type": "decide", "outcome": "not_upheld", "decision_no": "31/QĐ-GQKN", "summary": "Bác đơn"},
                 {"type": "notify", "about": "decision", "recipients": ["Ông Bình"], "doc_no": "32/TB"},
                 {"type": "close"},
                 {"type": "archive", "archive_ref": "HS-2026-0099"}):
        answer = await command(api, tokens.body, case_id, step, key=str(uuid.uuid4()))
        assert answer.status_code == 200, (step, answer.text)
    assert answer.status_code == 200 and answer.json()["status"] == "archived", answer.text
    handle = temporal_env.client.get_workflow_handle(case_id)
    await handle.result()  # the case's workflow has ended

    for _ in range(2):
        again = await api.post("/v1/petitions", tokens.intake, json=sent)
        assert again.status_code == 200, again.text
        body = again.json()
        assert (body["case_id"], body["status"], body["created"]) == (case_id, "archived", False)
    runs = [w async for w in temporal_env.client.list_workflows(f"WorkflowId = '{case_id}'")]
    assert len(runs) == 1, [r.run_id for r in runs]
    # Another content under the same source and reference is still a conflict.
    changed = await api.post("/v1/petitions", tokens.intake, json={**sent, "subject": "Nội dung khác hẳn"})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "petition.conflict", changed.text


async def test_a_recommendation_forwarded_by_the_reception_board_shows_and_meets_its_notice(
    api: Api, tokens: Tokens
) -> None:
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(
        tokens.source, "recommendation", channel="reception_forwarded", receiving_body="UBND_TINH",
        subject="Kiến nghị sửa đường liên xã", content="Ban tiếp công dân tỉnh chuyển kiến nghị của cử tri."))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    notice = next(d for d in opened.json()["deadlines"] if d["key"] == "reception.forwarder_notice")
    assert (notice["amount"], notice["unit"], notice["legal_basis"]) == (
        7, "working", "Luật Tiếp công dân 2013, Điều 27 khoản 2")
    assert notice["due_at"].endswith("+07:00")
    for step in ({"type": "classify", "lead_body": "UBND_TINH"}, {"type": "accept", "decision_no": "17/TL-KN"},
                 {"type": "notify", "about": "forwarder", "recipients": ["Ban tiếp công dân tỉnh"], "doc_no": "18/TB"}):
        answer = await command(api, tokens.body, case_id, step, key=str(uuid.uuid4()))
        assert answer.status_code == 200, (step, answer.text)
    view = answer.json()["case"]
    met = next(d for d in view["deadlines"] if d["key"] == "reception.forwarder_notice")
    assert met["outcome"] == "on_time" and not view["overdue"]
    row = (await api.get(f"/v1/cases/{case_id}", tokens.supervisor)).json()
    assert row["summary"]["channel"] == "reception_forwarded" and not row["overdue"]
    # The rule set it is counted under: the one in force on its day of receipt, by version and digest.
    in_force = load_rule_sets().latest
    assert row["summary"]["rules"] == {"version": in_force.version, "valid_from": None, "title": in_force.title,
                                       "digest": in_force.digest}
    early = await command(api, tokens.body, case_id, {"type": "notify", "about": "publication",
                                                       "recipients": ["Cổng TTĐT"], "doc_no": "19/TB"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "notify.about_kind", early.text
