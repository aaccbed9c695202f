"""The console in a real headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright): sign in, filter
the list, open a case received through the API, read its timeline and integrity badge, switch to English, look
at plan progress, download a period report as CSV, sign out; and, as an operator, find a case stalled by a real
database fault in the stalled-cases queue and retry it once the fault is gone. Screenshots go to
`tests/artifacts/console/` (ignored by git).

Skipped, saying why, when Chromium or the Playwright package is missing (`.ci/install-system-deps` installs
Chromium; `pip install -e '.[dev]'` installs Playwright; no browser is ever downloaded).
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import zipfile
from pathlib import Path

import openpyxl
from playwright.async_api import Browser

from eventstore import EventStore

from ..api.support import Api, unique
from ..faults import AppendFault
from .browsing import ARTIFACTS, pytestmark  # noqa: F401
from .support import Tokens, command, final_answer, open_case, open_petition, still_waiting, stream_types, stuck_command


async def test_a_supervisor_signs_in_finds_a_case_reads_it_switches_language_and_downloads_a_report(
    api: Api, tokens: Tokens, base_url: str, browser: Browser, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    district = unique("Thanh Miện")
    case_id = await open_petition(api, tokens, district=district, subject="Khiếu nại về giải phóng mặt bằng")
    await command(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    await command(api, tokens.lead, case_id, {"type": "accept", "decision_no": "21/QĐ-UBND"})
    await command(api, tokens.lead, case_id, {
        "type": "request_coordination", "subject": "Cung cấp bản đồ địa chính",
        "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5}]})
    await open_petition(api, tokens, district=district, kind="recommendation", subject="Kiến nghị sửa đường")

    context = await browser.new_context(accept_downloads=True, viewport={"width": 1366, "height": 900},
                                        locale="vi-VN")
    page = await context.new_page()
    try:
        # Not signed in: the list sends the browser to the sign-in form.
        await page.goto(f"{base_url}/console/cases")
        assert page.url.startswith(f"{base_url}/console/login")
        assert await page.get_attribute("html", "lang") == "vi"
        await page.screenshot(path=str(ARTIFACTS / "01-sign-in.png"))
        await page.get_by_label("Mã truy cập (bearer token)").fill(tokens.supervisor)
        await page.get_by_role("button", name="Đăng nhập").click()
        await page.wait_for_url(f"{base_url}/console/cases")
        cookie = next(c for c in await context.cookies() if c["name"] == "dv_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

        # Filter the list: this district's complaints.
        await page.get_by_label("Loại hồ sơ").select_option("complaint")
        await page.get_by_label("Địa bàn (huyện, thị xã, thành phố)").fill(district)
        await page.get_by_role("button", name="Lọc", exact=True).click()
        await page.wait_for_load_state()
        links = page.locator("a.case-link")
        assert await links.count() == 1
        assert await page.locator("#count-total").inner_text() == "1"
        await page.screenshot(path=str(ARTIFACTS / "02-case-list-filtered.png"), full_page=True)

        # Open the case: its timeline and the integrity badge.
        await links.first.click()
        await page.wait_for_url(f"{base_url}/console/cases/{case_id}")
        assert "Khiếu nại về giải phóng mặt bằng" in await page.locator("#case-subject").inner_text()
        timeline = page.locator("#timeline tbody tr")
        assert await timeline.count() == 4
        events = await page.locator("#timeline tbody tr code").all_inner_texts()
        assert events == ["PetitionReceived", "Classified", "AcceptanceDecided", "CoordinationRequested"]
        badge = await page.locator("#integrity").inner_text()
        assert "Toàn vẹn" in badge and "4 sự kiện" in badge
        assert "Chưa trả lời" in await page.locator("#board").inner_text()
        assert "/workflows/" + case_id in (await page.get_attribute("#temporal-link", "href") or "")
        await page.screenshot(path=str(ARTIFACTS / "03-case-page.png"), full_page=True)

        # Switch to English: the same case, in English, and the choice is kept.
        await page.get_by_role("link", name="Switch to English").click()
        await page.wait_for_load_state()
        assert await page.get_attribute("html", "lang") == "en"
        assert "Verified" in await page.locator("#integrity").inner_text()
        assert await page.get_by_role("heading", name="Timeline").is_visible()
        await page.screenshot(path=str(ARTIFACTS / "04-case-page-english.png"), full_page=True)

        # Plan progress, in the same language.
        await page.get_by_role("link", name="Plan progress").click()
        await page.wait_for_url(f"{base_url}/console/plan")
        assert await page.get_by_role("heading", name="Plan progress").is_visible()
        await page.screenshot(path=str(ARTIFACTS / "05-plan-progress.png"), full_page=True)

        # The period reports, and their downloads: a ZIP of one CSV per table, and an XLSX with a sheet each.
        await page.get_by_role("link", name="Period reports").click()
        await page.wait_for_url(f"{base_url}/console/reports")
        assert await page.get_attribute("html", "lang") == "en"
        await page.screenshot(path=str(ARTIFACTS / "06-period-report.png"), full_page=True)
        async with page.expect_download() as info:
            await page.locator("#csv-link").click()
        download = await info.value
        assert download.suggested_filename.startswith("report-") and download.suggested_filename.endswith("-csv.zip")
        saved = tmp_path / download.suggested_filename
        await download.save_as(str(saved))
        shutil.copy(saved, ARTIFACTS / download.suggested_filename)
        with zipfile.ZipFile(saved) as archive:
            tasks = next(name for name in archive.namelist() if name.endswith("-tasks.csv"))
            content = archive.read(tasks)
        assert content.startswith("\ufeff".encode())
        header = next(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        assert header[:3] == ["period", "as_of", "task_id"]
        async with page.expect_download() as info:
            await page.locator("#xlsx-link").click()
        workbook = await info.value
        assert workbook.suggested_filename.startswith("report-") and workbook.suggested_filename.endswith(".xlsx")
        await workbook.save_as(str(tmp_path / workbook.suggested_filename))
        assert "Thông tin" in openpyxl.load_workbook(tmp_path / workbook.suggested_filename).sheetnames

        # Sign out: back to the sign-in form, and the list is closed again.
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(f"{base_url}/console/login?out=1")
        assert "You have signed out." in await page.locator("main").inner_text()
        await page.goto(f"{base_url}/console/cases")
        assert page.url.startswith(f"{base_url}/console/login")
        await page.screenshot(path=str(ARTIFACTS / "07-signed-out.png"))
    except Exception:
        await page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        raise
    finally:
        await context.close()


async def test_an_operator_finds_a_case_stalled_by_a_fault_in_the_queue_and_retries_it(
    api: Api, tokens: Tokens, store: EventStore, base_url: str, browser: Browser
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    reason = "Sự cố cơ sở dữ liệu đã khắc phục, thử lại bước ghi hồ sơ"
    case_id = await open_case(api, tokens)
    fault = AppendFault(store, case_id)
    await fault.inject()
    sent = await stuck_command(api, tokens.lead, case_id)  # its append fails until the fault is removed

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
    page = await context.new_page()
    try:
        await page.goto(f"{base_url}/console/login?next=/console/stalled")
        await page.get_by_label("Mã truy cập (bearer token)").fill(tokens.operator)
        await page.get_by_role("button", name="Đăng nhập").click()
        await page.wait_for_url(f"{base_url}/console/stalled")
        assert await page.get_by_role("link", name="Hồ sơ bị ách tắc").get_attribute("aria-current") == "page"

        # Filter the queue to failing steps of complaints, and wait until the case is listed.
        await page.get_by_label("Loại hồ sơ").select_option("complaint")
        await page.get_by_label("Lý do ách tắc").select_option("activity_failing")
        await page.get_by_role("button", name="Lọc", exact=True).click()
        await page.wait_for_url(lambda url: "kind=complaint" in url and "reason=activity_failing" in url)
        finding = page.locator(f'tbody.finding[data-case="{case_id}"]')
        for _ in range(100):
            if await finding.count():
                break
            await asyncio.sleep(0.3)
            # The queue reads what the scheduled stalled scan wrote: a look now, as it makes one every minute.
            assert (await api.post("/v1/ops/stalled/scan", tokens.operator)).status_code == 200
            await page.reload()
        assert await finding.count() == 1, "the stalled case never appeared in the queue"
        listed = await finding.inner_text()
        assert "Một bước xử lý liên tục lỗi" in listed and AppendFault.MESSAGE in listed and "append_events" in listed
        assert still_waiting(sent)
        await page.screenshot(path=str(ARTIFACTS / "08-stalled-queue.png"), full_page=True)

        # Its case page says it is stuck, and leads back to the queue.
        await finding.locator("a.case-link").click()
        await page.wait_for_url(f"{base_url}/console/cases/{case_id}")
        banner = await page.locator("#stalled-banner").inner_text()
        assert "Hồ sơ đang bị ách tắc: Một bước xử lý liên tục lỗi" in banner
        await page.screenshot(path=str(ARTIFACTS / "09-case-stalled-banner.png"), full_page=True)
        await page.locator("#stalled-queue-link").click()
        await page.wait_for_url(f"{base_url}/console/stalled?kind=complaint")

        # The fault is fixed: give the reason and retry the case from its row.
        await fault.remove()
        form = finding.locator("form.repair-retry")
        await form.get_by_role("textbox").fill(reason)
        await form.get_by_role("button", name="Thử lại ngay").click()
        await page.wait_for_url(f"{base_url}/console/stalled?kind=complaint")
        flash = await page.locator("#flash").inner_text()
        assert f"Đã thực hiện “Thử lại” cho hồ sơ {case_id} và đã ghi vào hồ sơ" in flash, flash
        assert "append_events" in flash
        await page.screenshot(path=str(ARTIFACTS / "10-stalled-retried.png"), full_page=True)
        assert await page.locator(f'tbody.finding[data-case="{case_id}"]').count() == 0
    except Exception:
        await page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        raise
    finally:
        await fault.remove()
        await context.close()

    answer = await final_answer(api, tokens.lead, case_id, sent)
    assert answer.status_code == 200, answer.text
    stored = await store.read_stream(case_id)
    types = await stream_types(store, case_id)
    assert types[-2:] == ["Assigned", "RepairRecorded"]
    assert types.count("Assigned") == 1 and types.count("RepairRecorded") == 1
    repair = stored[-1]
    assert repair.actor == "operator:vận hành" and repair.reason == reason and repair.data["action"] == "retry"
    assert (await store.verify(case_id)).ok
