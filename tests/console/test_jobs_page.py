"""The repair jobs in the console: the operations page lists those in progress, a job's page shows its progress,
its decisions and its cases' outcomes, in Vietnamese; an operator decides through CSRF-guarded forms, the
requester's own approval refused with its rule; a supervisor reads without forms; and the approval in a real
headless Chromium, screenshot kept."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from ..api.support import Api
from .browsing import ARTIFACTS, pytestmark  # noqa: F401
from .support import Tokens, csrf_of, open_case, signed_in, text_of
from .test_vietnamese_pages import english_in

REASON = "Chạy lại sau khi triển khai bản sửa lỗi"


async def reset_job(api: Api, tokens: Tokens, case_id: str) -> str:
    """A reset of the case, asked by the console's operator: it waits for a second operator's approval."""
    made = await api.post("/v1/ops/jobs", tokens.operator, headers={"Idempotency-Key": str(uuid.uuid4())},
                          json={"action": "reset", "reason": REASON, "target": {"case_ids": [case_id]}})
    assert made.status_code == 200, made.text
    assert made.json()["job"]["state"] == "awaiting_approval"
    return str(made.json()["job"]["job_id"])


async def until_state(api: Api, tokens: Tokens, job_id: str, state: str) -> None:
    for _ in range(150):
        if (await api.get(f"/v1/ops/jobs/{job_id}", tokens.supervisor)).json()["job"]["state"] == state:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} never became {state}")


async def test_a_job_is_read_and_decided_on_in_the_console(api: Api, tokens: Tokens) -> None:
    case_id = await open_case(api, tokens)
    job_id = await reset_job(api, tokens, case_id)

    async with signed_in(api.app, tokens.supervisor) as supervisor:
        ops = await supervisor.page("/console/ops")
        in_progress = ops.text.split('id="jobs-in-progress"')[1].split("</table>")[0]
        assert job_id in in_progress and "Chờ duyệt" in in_progress
        assert 'href="/console/ops/jobs"' in ops.text
        page = text_of((await supervisor.page(f"/console/ops/jobs/{job_id}")).text)
        assert f"Đợt sửa {job_id}" in page and "Chạy lại từ điểm tốt" in page and "đang chờ một cán bộ" in page
        assert "0 xong, 0 bị từ chối, 0 lỗi, trên tổng số 1" in page and "Chỉ cán bộ vận hành" in page
        assert 'id="decide-approve"' not in (await supervisor.page(f"/console/ops/jobs/{job_id}")).text
        listed = (await supervisor.page("/console/ops/jobs?state=awaiting_approval")).text
        assert job_id in listed
        assert (await supervisor.get("/console/ops/jobs?state=bored")).status_code == 422
        assert (await supervisor.post_form(f"/console/ops/jobs/{job_id}/approve", {
            "csrf": csrf_of(ops.text), "reason": REASON})).status_code == 403  # a supervisor decides nothing
    async with signed_in(api.app, tokens.lead) as body:
        assert (await body.get(f"/console/ops/jobs/{job_id}")).status_code == 403

    async with signed_in(api.app, tokens.operator) as requester:
        job_page = (await requester.page(f"/console/ops/jobs/{job_id}")).text
        assert 'id="decide-approve"' in job_page and 'id="decide-reject"' in job_page
        assert 'id="decide-pause"' not in job_page
        missing = await requester.post_form(f"/console/ops/jobs/{job_id}/approve", {"reason": REASON})
        assert missing.status_code == 403  # no CSRF token
        own = await requester.post_form(f"/console/ops/jobs/{job_id}/approve",
                                        {"csrf": csrf_of(job_page), "reason": "Tôi tự duyệt đợt này"})
        assert own.status_code == 303
        flash = text_of((await requester.page(own.headers["location"])).text)
        assert "Không thực hiện được: Duyệt" in flash and "job.self_approval" in flash
        assert "Người đề nghị không được tự duyệt" in flash
        short = await requester.post_form(f"/console/ops/jobs/{job_id}/approve",
                                          {"csrf": csrf_of(job_page), "reason": "ngắn"})
        assert "lý do phải có từ 10" in text_of((await requester.page(short.headers["location"])).text)

    async with signed_in(api.app, tokens.admin) as approver:
        job_page = (await approver.page(f"/console/ops/jobs/{job_id}")).text
        done = await approver.post_form(f"/console/ops/jobs/{job_id}/approve",
                                        {"csrf": csrf_of(job_page), "reason": "Đã xem kế hoạch, đồng ý chạy"})
        assert "Đã ghi nhận: Duyệt" in text_of((await approver.page(done.headers["location"])).text)
        await until_state(api, tokens, job_id, "completed")
        page = text_of((await approver.page(f"/console/ops/jobs/{job_id}")).text)
        assert "Đã xong" in page and "admin:quản trị" in page and "Đã xem kế hoạch, đồng ý chạy" in page
        assert "repair.reset.nothing_failing" in page and "Mã quy trình không lỗi" in page
        assert "0 xong, 1 bị từ chối, 0 lỗi, trên tổng số 1" in page
        assert english_in((await approver.page(f"/console/ops/jobs/{job_id}")).text) == []
        english = text_of((await approver.page(f"/console/ops/jobs/{job_id}", cookies={"lang": "en"})).text)
        assert f"Repair job {job_id}" in english and "1 refused" in english and "Completed" in english


async def test_a_job_is_approved_in_a_real_browser(api: Api, tokens: Tokens, browser: Any, base_url: str) -> None:
    job_id = await reset_job(api, tokens, await open_case(api, tokens))
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    tab = await context.new_page()
    await tab.goto(f"{base_url}/console/login")
    await tab.fill("#token", tokens.admin)
    await tab.click("button[type=submit]")
    await tab.wait_for_url(f"{base_url}/console/cases")
    await tab.goto(f"{base_url}/console/ops")
    await tab.click(f"#jobs-in-progress a:has-text('{job_id}')")
    await tab.wait_for_url(f"{base_url}/console/ops/jobs/{job_id}")
    await tab.fill("#reason-approve", "Đã kiểm tra danh sách, đồng ý")
    await tab.click("#decide-approve button[type=submit]")
    await tab.wait_for_selector("#flash")
    assert "Đã ghi nhận: Duyệt" in await tab.locator("#flash").inner_text()
    await until_state(api, tokens, job_id, "completed")
    await tab.reload()
    assert await tab.locator("#job-state").get_attribute("data-state") == "completed"
    await tab.screenshot(path=str(ARTIFACTS / "20-repair-job.png"), full_page=True)
    await context.close()
