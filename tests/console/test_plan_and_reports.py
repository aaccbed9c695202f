"""Plan progress by task and body, and the period reports with their CSV, for a plan imported through the API."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile

import openpyxl
import pytest_asyncio

from domain.plan_cases import task_case_id
from eventstore import EventStore

from ..api.support import Api, small_plan, token, unique
from .support import Tokens, command, signed_in, text_of


@pytest_asyncio.fixture(scope="module")
async def plan(api: Api, tokens: Tokens) -> tuple[str, str]:
    """A two-task plan imported through `POST /v1/plan/import`, its first task acknowledged and reported on;
    returns (plan id, period)."""
    plan_id = unique("KH-CONSOLE")
    imported = await api.http.post("/v1/plan/import", content=small_plan(plan_id).encode(),
                                   headers={"Authorization": f"Bearer {tokens.admin}",
                                            "Content-Type": "application/yaml"})
    assert imported.status_code == 200, imported.text
    task = task_case_id(plan_id, "II.1")
    for _ in range(150):  # the task case opens and the current period's cycle asks it for its report
        case = (await api.get(f"/v1/cases/{task}", tokens.supervisor)).json()
        if case.get("summary", {}).get("reports"):
            break
        await asyncio.sleep(0.1)
    period = next(iter(case["summary"]["reports"]))
    await command(api, tokens.lead, task, {"type": "acknowledge", "body": "UBND_TINH"})
    await command(api, tokens.lead, task, {"type": "submit_report", "period": period, "body": "UBND_TINH",
                                           "summary": "Báo cáo kết quả quán triệt", "figures": {"hoi_nghi": 2}})
    return plan_id, period


async def test_plan_progress_shows_each_task_and_each_body(
    api: Api, tokens: Tokens, store: EventStore, plan: tuple[str, str]
) -> None:
    plan_id, period = plan
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/plan")
    section = page.text.split(f"Kế hoạch {plan_id}")[1].split("</section>")[0]
    text = text_of(section)
    assert "Kế hoạch công tác dân vận thử nghiệm" in text
    assert "Quán triệt, triển khai Nghị quyết" in text and "II.1" in text and "III.3" in text
    assert f"{period}: đã nộp" in text
    assert "Ủy ban nhân dân tỉnh" in text  # bodies by name
    assert "2 nhiệm vụ (kế hoạch có 2)" in text
    bodies = section.split("Theo cơ quan")[1]
    row = re.search(r"<code>UBND_TINH</code></th>\s*<td>(\d+)</td>\s*<td>(\d+)</td>", bodies)
    assert row and row.groups() == ("1", "0")  # leads one task, coordinates none
    front = re.search(r"<code>UBMTTQ_TINH</code></th>\s*<td>(\d+)</td>\s*<td>(\d+)</td>", bodies)
    assert front and front.groups() == ("0", "1")

    # A body sees the tasks it has a tie to, nothing else: the People's Committee leads II.1 only; the Front
    # committee coordinates II.1 and, as the supervising Front, reads every task.
    lead_token = await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh")
    async with signed_in(api.app, lead_token) as member:
        mine = text_of((await member.page("/console/plan")).text)
    assert "II.1" in mine and "III.3" not in mine.split(f"Kế hoạch {plan_id}")[1]
    front_token = await token(store, "body", "UBMTTQ_TINH", label="cán bộ MTTQ")
    async with signed_in(api.app, front_token) as member:
        front_sees = text_of((await member.page("/console/plan")).text).split(f"Kế hoạch {plan_id}")[1]
    assert "II.1" in front_sees and "III.3" in front_sees


async def test_the_period_report_is_shown_and_downloads_as_the_apis_csv(
    api: Api, tokens: Tokens, plan: tuple[str, str]
) -> None:
    plan_id, period = plan
    as_of = "2030-01-01T00:00"
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/reports", params={"period": period, "plan": plan_id, "as_of": as_of})
        tasks = page.text.split('id="report-tasks"')[1].split("</table>")[0]
        assert "II.1" in tasks and "Nộp đúng hạn" in tasks
        href = re.search(r'<a href="([^"]+)" id="csv-link"', page.text)
        assert href
        download = await user.get(href.group(1).replace("&amp;", "&"))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert download.headers["content-disposition"] == f'attachment; filename="report-{period}-csv.zip"'
    from_api = await api.get(f"/v1/reports/{period}", tokens.supervisor,
                             params={"plan": plan_id, "as_of": "2030-01-01T00:00:00+07:00", "format": "csv"})
    assert download.content == from_api.content  # the very same file
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read(f"report-{period}-tasks.csv").decode("utf-8-sig"))))
    assert any(r["task_id"] == "II.1" and r["report"] == "submitted_on_time" for r in rows)
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/reports", params={"period": period, "plan": plan_id,
                                                            "as_of": "2030-01-01T00:00"})
        href = re.search(r'<a href="([^"]+)" id="xlsx-link"', page.text)
        assert href
        book = await user.get(href.group(1).replace("&amp;", "&"))
    assert book.status_code == 200 and book.headers["content-disposition"].endswith('.xlsx"')
    sheets = openpyxl.load_workbook(io.BytesIO(book.content)).sheetnames
    assert sheets == ["Thông tin", "Báo cáo của các nhiệm vụ", "Theo cơ quan chủ trì",
                      "Đơn thư theo loại và địa bàn", "Tổng hợp đơn thư theo loại", "Thời hạn quá hạn theo quy định"]

    async with signed_in(api.app, tokens.supervisor) as user:
        unknown = await user.get("/console/reports", params={"period": "2026-H3"})
        assert unknown.status_code == 422 and "period" in unknown.text
        bad_instant = await user.get("/console/reports", params={"period": period, "as_of": "hôm qua"})
        assert bad_instant.status_code == 422 and "30/06/2026 17:00" in bad_instant.text
        # As a clerk writes it, whatever the browser's language: the same report as the ISO instant gives.
        typed = await user.page("/console/reports", params={"period": period, "plan": plan_id,
                                                           "as_of": "01/01/2030 00:00"})
        assert typed.text.count("<td>") == page.text.count("<td>") and 'value="01/01/2030 00:00"' in typed.text
        default = await user.page("/console/reports")
        assert "Báo cáo định kỳ" in default.text and 'id="csv-link"' in default.text


async def test_a_body_sees_only_its_own_tasks_in_the_report(
    api: Api, tokens: Tokens, store: EventStore, plan: tuple[str, str]
) -> None:
    plan_id, period = plan
    stranger = await token(store, "body", "BTGDV_TU", label="Ban Tuyên giáo và Dân vận")
    async with signed_in(api.app, stranger) as user:
        page = await user.page("/console/reports", params={"period": period, "plan": plan_id})
        zipped = (await user.get(f"/console/reports/{period}/csv", params={"plan": plan_id})).content
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        csv_text = archive.read(f"report-{period}-tasks.csv").decode("utf-8")
    tasks = page.text.split("Báo cáo của các nhiệm vụ")[1].split("</table>")[0]
    assert "III.3" in tasks and "II.1" not in tasks
    assert "Chỉ gồm các nhiệm vụ do cơ quan" in page.text
    task_rows = list(csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff"))))
    assert [r["task_id"] for r in task_rows] == ["III.3"]
