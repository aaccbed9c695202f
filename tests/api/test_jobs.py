"""Repair jobs through the HTTP API, on the real PostgreSQL and Temporal dev server: made from a filter or a list,
shown exactly by a dry run, run to the end with each outcome, approved by a second operator only, named by an
Idempotency-Key, and refused with the field and the rule when the request is wrong."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import pytest_asyncio

from eventstore import EventStore

from .support import Api, petition, token, unique

REASON = "Nhắc các cơ quan chậm trả lời trong đợt rà soát"


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    intake: str
    source: str
    body: str
    supervisor: str
    operator: str
    other_operator: str
    admin: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("jobs-backoffice")
    return Tokens(
        intake=await token(store, "intake", label=source), source=source,
        body=await token(store, "body", "UBND_TINH", label="chuyên viên UBND tỉnh"),
        supervisor=await token(store, "supervisor", label="giám sát viên"),
        operator=await token(store, "operator", label="Trực vận hành Hoàng Minh"),
        other_operator=await token(store, "operator", label="Trực vận hành Lê Thu"),
        admin=await token(store, "admin", label="quản trị"),
    )


async def open_cases(api: Api, tokens: Tokens, n: int, district: str) -> list[str]:
    ids = []
    for _ in range(n):
        opened = await api.post("/v1/petitions", tokens.intake,
                                json=petition(tokens.source, receiving_body="UBND_TINH", district=district))
        assert opened.status_code == 201, opened.text
        case_id = str(opened.json()["case_id"])
        answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.body,
                                json={"type": "classify", "lead_body": "UBND_TINH"})
        assert answer.status_code == 200, answer.text
        ids.append(case_id)
    return ids


async def until_ended(api: Api, tokens: Tokens, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = await api.get(f"/v1/ops/jobs/{job_id}", tokens.supervisor)
        assert answer.status_code == 200, answer.text
        if answer.json()["job"]["state"] in ("completed", "cancelled", "rejected"):
            return dict(answer.json())
        assert asyncio.get_running_loop().time() < deadline, answer.json()
        await asyncio.sleep(0.3)


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


@pytest.mark.parametrize("role, get_status, post_status", [
    (None, 401, 401), ("intake", 403, 403), ("body", 403, 403), ("supervisor", 200, 403),
])
async def test_jobs_are_read_by_operators_supervisors_and_admins_and_made_by_operators_and_admins(
    api: Api, tokens: Tokens, role: str | None, get_status: int, post_status: int
) -> None:
    bearer = getattr(tokens, role) if role else None
    assert (await api.get("/v1/ops/jobs", bearer)).status_code == get_status
    made = await api.post("/v1/ops/jobs", bearer, json={"action": "nudge", "reason": REASON,
                                                        "target": {"case_ids": ["pet-x"]}, "dry_run": True})
    assert made.status_code == post_status, made.text
    decided = await api.post("/v1/ops/jobs/job_00000000000000000000/approve", bearer, json={"reason": REASON})
    assert decided.status_code == post_status, decided.text


@pytest.mark.parametrize("body, field, rule", [
    ({"action": "nudge", "target": {}}, "target", "target.one_of"),
    ({"action": "nudge", "target": {"case_ids": ["a"], "filter": {}}}, "target", "target.one_of"),
    ({"action": "reassign", "target": {"case_ids": ["a"]}}, "body", "job.body_required"),
    ({"action": "retry", "body": "UBND_TINH", "target": {"case_ids": ["a"]}}, "body", "job.body_unused"),
    ({"action": "nudge", "target": {"case_ids": ["a"]}, "rate": 0}, "rate", "greater_than_equal"),
    ({"action": "nudge", "target": {"case_ids": ["a"]}, "rate": 51}, "rate", "less_than_equal"),
    ({"action": "nudge", "target": {"case_ids": []}}, "target.case_ids", "too_short"),
    ({"action": "nudge", "target": {"filter": {"kind": "x"}}}, "target.filter.kind", "enum"),
    ({"action": "nudge", "target": {"filter": {"reason": "bored"}}}, "target.filter.reason", "literal_error"),
    ({"action": "fix", "target": {"case_ids": ["a"]}}, "action", "literal_error"),
    ({"action": "nudge", "target": {"case_ids": ["pet-no-such-case"]}}, "target.case_ids", "case_unknown"),
])
async def test_a_wrong_job_request_is_refused_naming_the_field_and_the_rule(
    api: Api, tokens: Tokens, body: dict[str, Any], field: str, rule: str
) -> None:
    answer = await api.post("/v1/ops/jobs", tokens.operator, json={"reason": REASON, **body})
    assert answer.status_code == 422, answer.text
    fields = answer.json()["error"]["fields"]
    assert any(f["field"] == field and f["rule"] == rule for f in fields), fields
    short = await api.post("/v1/ops/jobs", tokens.operator, json={"action": "nudge", "reason": "ngắn",
                                                                  "target": {"case_ids": ["a"]}})
    assert short.status_code == 422 and short.json()["error"]["fields"][0]["field"] == "reason"


async def test_a_dry_run_shows_the_exact_cases_of_the_filter_and_the_job_repairs_each_once(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    district = unique("Huyện Thử")
    case_ids = await open_cases(api, tokens, 3, district)
    request = {"action": "nudge", "reason": REASON, "rate": 20, "target": {"filter": {"district": district}}}
    dry = await api.post("/v1/ops/jobs", tokens.operator, json={**request, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["case_ids"] == case_ids and dry.json()["job"] is None
    assert dry.json()["needs_approval"] is False and dry.json()["threshold"] == 20
    for case_id in case_ids:  # the dry run changed nothing
        assert [e.type for e in await store.read_stream(case_id)] == ["PetitionReceived", "Classified"]

    headers = key()
    made = await api.post("/v1/ops/jobs", tokens.operator, json=request, headers=headers)
    assert made.status_code == 200, made.text
    job_id = made.json()["job"]["job_id"]
    assert made.json()["job"]["state"] == "running" and made.json()["case_ids"] == case_ids
    again = await api.post("/v1/ops/jobs", tokens.operator, json=request, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["job"]["job_id"] == job_id and again.json()["case_ids"] == case_ids
    other = await api.post("/v1/ops/jobs", tokens.operator, json={**request, "rate": 10}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency.key_reused"

    detail = await until_ended(api, tokens, job_id)
    job = detail["job"]
    assert (job["state"], job["total"], job["done"], job["refused"], job["failed"], job["pending"]) == (
        "completed", 3, 3, 0, 0, 0)
    assert job["requested_by"] == "operator:Trực vận hành Hoàng Minh" and job["reason"] == REASON
    assert job["requested_at"].endswith("+07:00") and job["finished_at"].endswith("+07:00")
    assert [c["case_id"] for c in detail["cases"]] == case_ids
    assert {c["outcome"] for c in detail["cases"]} == {"done"}
    assert [a["action"] for a in detail["actions"]] == ["request", "complete"]
    for case_id in case_ids:
        types = [e.type for e in await store.read_stream(case_id)]
        assert types == ["PetitionReceived", "Classified", "RepairRecorded", "BodyNudged"]
    page = await api.get(f"/v1/ops/jobs/{job_id}?limit=2", tokens.operator)
    assert [c["case_id"] for c in page.json()["cases"]] == case_ids[:2] and page.json()["next_after"] == 1
    rest = await api.get(f"/v1/ops/jobs/{job_id}?limit=2&after=1", tokens.operator)
    assert [c["case_id"] for c in rest.json()["cases"]] == case_ids[2:] and rest.json()["next_after"] is None
    listed = await api.get("/v1/ops/jobs?state=completed&limit=200", tokens.supervisor)
    assert job_id in [j["job_id"] for j in listed.json()["items"]]
    assert job_id not in [j["job_id"] for j in (await api.get("/v1/ops/jobs?state=running", tokens.admin)
                                                ).json()["items"]]


async def test_a_reset_waits_for_a_second_operator_and_its_requester_cannot_approve_it(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    (case_id,) = await open_cases(api, tokens, 1, unique("Huyện Đặt lại"))
    made = await api.post("/v1/ops/jobs", tokens.operator, headers=key(), json={
        "action": "reset", "reason": "Chạy lại sau khi triển khai bản sửa", "target": {"case_ids": [case_id]}})
    assert made.status_code == 200, made.text
    job = made.json()["job"]
    assert job["state"] == "awaiting_approval" and job["needs_approval"] is True
    job_id = job["job_id"]

    own = await api.post(f"/v1/ops/jobs/{job_id}/approve", tokens.operator, json={"reason": "Tôi tự duyệt việc này"})
    assert own.status_code == 403 and own.json()["error"]["code"] == "job.self_approval", own.text
    early = await api.post(f"/v1/ops/jobs/{job_id}/pause", tokens.other_operator, json={"reason": "Tạm dừng đã"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "job.state"
    assert (await api.post("/v1/ops/jobs/job_00000000000000000000/approve", tokens.other_operator,
                           json={"reason": REASON})).status_code == 404
    approved = await api.post(f"/v1/ops/jobs/{job_id}/approve", tokens.other_operator,
                              json={"reason": "Đã xem kế hoạch đặt lại, đồng ý"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["decided_by"] == "operator:Trực vận hành Lê Thu"

    detail = await until_ended(api, tokens, job_id)
    assert detail["job"]["state"] == "completed" and detail["job"]["refused"] == 1
    (outcome,) = detail["cases"]
    # The case's workflow is not failing: the reset is refused with its rule and nothing is changed.
    assert outcome["outcome"] == "refused" and outcome["rule"] == "repair.reset.nothing_failing"
    assert [(a["action"], a["actor"]) for a in detail["actions"]] == [
        ("request", "operator:Trực vận hành Hoàng Minh"), ("approve", "operator:Trực vận hành Lê Thu"),
        ("complete", "system:danvan")]
    assert [e.type for e in await store.read_stream(case_id)] == ["PetitionReceived", "Classified"]
    ended = await api.post(f"/v1/ops/jobs/{job_id}/cancel", tokens.other_operator, json={"reason": REASON})
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "job.state"
