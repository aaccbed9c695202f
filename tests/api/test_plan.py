"""The action plan end to end through HTTP on the dev server: import, acknowledge, coordinate, report."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import pytest_asyncio

from domain.plan_cases import task_case_id
from eventstore import EventStore

from .support import Api, small_plan, token, unique


class Tokens:
    def __init__(self, admin: str, lead: str, front: str, supervisor: str) -> None:
        self.admin, self.lead, self.front, self.supervisor = admin, lead, front, supervisor


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    return Tokens(admin=await token(store, "admin"), lead=await token(store, "body", "UBND_TINH", label="UBND tỉnh"),
                  front=await token(store, "body", "UBMTTQ_TINH", label="MTTQ tỉnh"),
                  supervisor=await token(store, "supervisor"))


async def import_(api: Api, tok: str, text: str, **params: str) -> httpx.Response:
    return await api.http.post("/v1/plan/import", content=text.encode(), params=params,
                               headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/yaml"})


async def command(api: Api, tok: str, case_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/cases/{case_id}/commands", tok, json=body)


async def test_an_imported_plan_is_acknowledged_coordinated_reported_and_its_period_report_served(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    plan_id = unique("KH-E2E")
    text = small_plan(plan_id)
    first = await import_(api, tokens.admin, text)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "imported" and len(first.json()["task_case_ids"]) == 2
    again = await import_(api, tokens.admin, text)
    assert again.json()["outcome"] == "unchanged"
    edited = text.replace('title_vi: "Quán triệt, triển khai Nghị quyết"', 'title_vi: "Quán triệt Nghị quyết"', 1)
    refused = await import_(api, tokens.admin, edited)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "plan.changed"
    assert "II.1" in refused.json()["error"]["message"]
    assert (await import_(api, tokens.admin, edited, apply_changes="true")).json()["outcome"] == "amended"

    task = task_case_id(plan_id, "II.1")
    for _ in range(100):  # the task case opens, and the current period's cycle asks it for its report
        case = (await api.get(f"/v1/cases/{task}", tokens.supervisor)).json()
        if case.get("summary", {}).get("reports"):
            break
        await asyncio.sleep(0.1)
    period = next(iter(case["summary"]["reports"]))
    assert case["status"] == "report_due"

    wrong = await command(api, tokens.front, task, {"type": "acknowledge", "body": "UBND_TINH"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "authority.acknowledge"
    assert (await command(api, tokens.lead, task, {"type": "acknowledge", "body": "UBND_TINH"})).status_code == 200
    asked = await command(api, tokens.lead, task, {"type": "request_coordination", "subject": "Số liệu tiếp xúc",
                                                   "bodies": [{"body": "UBMTTQ_TINH", "side": "front", "days": 5}]})
    assert asked.status_code == 200, asked.text
    answered = await command(api, tokens.front, task, {"type": "respond", "request_id": "R1", "body": "UBMTTQ_TINH",
                                                       "response": "Đã gửi số liệu của Mặt trận"})
    assert answered.status_code == 200, answered.text
    submitted = await command(api, tokens.lead, task, {
        "type": "submit_report", "period": period, "body": "UBND_TINH",
        "summary": "Báo cáo kết quả thực hiện nhiệm vụ", "figures": {"hoi_nghi": 4}})
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "report_submitted"

    report = await api.get(f"/v1/reports/{period}", tokens.supervisor, params={"plan": plan_id})
    assert report.status_code == 200, report.text
    rows = {t["task_id"]: t for t in report.json()["tasks"]}
    assert rows["II.1"]["report"] == "submitted_on_time"
    as_csv = await api.get(f"/v1/reports/{period}", tokens.supervisor,
                           params={"plan": plan_id, "format": "csv", "table": "tasks"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    text_csv = as_csv.content.decode("utf-8-sig")
    tasks = list(csv.DictReader(io.StringIO(text_csv)))
    assert any(r["task_id"] == "II.1" and r["report"] == "submitted_on_time" for r in tasks)
    assert "Quán triệt Nghị quyết" in text_csv or "Quán triệt, triển khai Nghị quyết" in text_csv

    history = (await api.get(f"/v1/cases/{task}/history", tokens.supervisor)).json()
    types = [e["type"] for e in history["events"]]
    assert types[0] == "TaskAssigned" and "ReportSubmitted" in types and history["integrity"]["ok"]
