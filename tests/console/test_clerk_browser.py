"""The clerk's work, entirely in the console, in a real headless Chromium on the real app, worker, PostgreSQL and
Temporal: a complaint received through the API is classified, accepted, sent to a department for its part (which
answers from its own work queue), verified, decided, notified, closed and archived; a denunciation is classified
complex, a first attempt refused with its rule and basis, then accepted and extended twice by an extension
decision that finds it especially complex, each with its number and its date typed dd/mm/yyyy in a browser set to
another locale, after which no further extension is offered. Screenshots of each step go to
`tests/artifacts/console/` (ignored by git)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from domain.calendar import VN_TZ
from eventstore import EventStore

from ..api.support import Api
from .browsing import ARTIFACTS, pytestmark  # noqa: F401
from .support import Tokens, open_petition, stream_types

Fill = Callable[[Any], Awaitable[None]]


class Clerk:
    """Someone at the console in a browser tab: signs in, opens pages, sends a command's form, takes screenshots."""

    def __init__(self, page: Any, base_url: str, name: str) -> None:
        self.page = page
        self.base_url = base_url
        self.name = name
        self.shots = 0
        for old in ARTIFACTS.glob(f"clerk-{name}-*.png"):  # the last run's, so that none is taken for this one's
            old.unlink()

    async def sign_in(self, token: str, path: str) -> None:
        await self.page.goto(f"{self.base_url}/console/login?next={path}")
        await self.page.get_by_label("Mã truy cập (bearer token)").fill(token)
        await self.page.get_by_role("button", name="Đăng nhập").click()
        await self.page.wait_for_url(f"{self.base_url}{path}")

    async def shot(self, what: str) -> None:
        self.shots += 1
        await self.page.screenshot(path=str(ARTIFACTS / f"clerk-{self.name}-{self.shots:02d}-{what}.png"),
                                   full_page=True)

    async def send(self, command: str, fill: Fill, *, where: Any = None, shot: str | None = None) -> str:
        """Open the form of `command`, fill it in (`shot`: and take a screenshot of it filled in), send it; the text
        of the flash message it answers with."""
        form = (where or self.page).locator(f'details.command[data-command="{command}"]')
        assert await form.count() == 1, f"no form for {command}"
        if await form.get_attribute("open") is None:
            await form.locator("summary").click()
        await fill(form)
        if shot:
            await self.shot(shot)
        async with self.page.expect_navigation():
            await form.get_by_role("button", name=re.compile("^Gửi: ")).click()
        flash = self.page.locator("#flash")
        return str(await flash.inner_text()) if await flash.count() else ""

    async def offered(self) -> list[str]:
        return [str(c) for c in await self.page.locator("details.command").evaluate_all(
            "nodes => nodes.map(n => n.dataset.command)")]


def today() -> str:
    return datetime.now(VN_TZ).strftime("%d/%m/%Y")


async def test_a_complaint_from_receipt_to_archive_entirely_in_the_console(
    api: Api, tokens: Tokens, store: EventStore, base_url: str, browser: Any
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    case_id = await open_petition(api, tokens, subject="Khiếu nại về mức bồi thường khi thu hồi đất ở Nam Hồng")
    case_url = f"{base_url}/console/cases/{case_id}"
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
    page = await context.new_page()
    clerk = Clerk(page, base_url, "complaint")
    try:
        # The People's Committee's clerk: the new complaint is in its work queue.
        await clerk.sign_in(tokens.lead, "/console/queue")
        row = page.locator(f'table.queue tr[data-case="{case_id}"]')
        assert await row.count() == 1 and "Chủ trì" in await row.inner_text()
        await clerk.shot("queue")
        await row.locator("a.case-link").click()
        await page.wait_for_url(case_url)
        assert {"classify", "forward", "redirect"} <= set(await clerk.offered())
        assert "accept" not in await clerk.offered()
        await clerk.shot("received")

        async def classify(form: Any) -> None:
            await form.get_by_label("Cơ quan chủ trì giải quyết").select_option(label="Ủy ban nhân dân tỉnh")
            await form.get_by_label("Lĩnh vực").fill("Đất đai — bồi thường, hỗ trợ, tái định cư")
            await form.get_by_label("Cấp của nội dung đơn").select_option(label="Cấp tỉnh")
        flash = await clerk.send("classify", classify)
        assert "Đã ghi nhận “Phân loại đơn”" in flash and "Đã phân loại" in flash
        await clerk.shot("classified")

        async def accept(form: Any) -> None:
            await form.get_by_label("Số quyết định").fill("15/QĐ-UBND")
            await form.get_by_label("Lý do, ghi chú").fill("Đơn đủ điều kiện thụ lý theo Điều 27")
        assert "Đã thụ lý" in await clerk.send("accept", accept)
        assert "extend" not in await clerk.offered()  # a complaint's period is not extended
        await clerk.shot("accepted")

        async def coordinate(form: Any) -> None:
            await form.get_by_label("Nội dung", exact=False).first.fill("Cung cấp hồ sơ địa chính thửa đất số 112")
            rows = form.locator("fieldset.rows .row")
            await rows.nth(0).get_by_label("Cơ quan").select_option(label="Sở Tài nguyên và Môi trường")
            await rows.nth(0).get_by_label("Khối").select_option(label="Chính quyền")
            await rows.nth(0).get_by_label("Số ngày").fill("5")
        assert "Đề nghị phối hợp (CoordinationRequested)" in await clerk.send("request_coordination", coordinate,
                                                                         shot="coordination-form")
        assert "Chưa trả lời" in await page.locator("#board").inner_text()
        await clerk.shot("coordination-requested")

        # The department answers from its own work queue, in its own browser.
        other = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
        department = Clerk(await other.new_page(), base_url, "department")
        try:
            await department.sign_in(tokens.other_body, "/console/queue")
            request = department.page.locator(f'article.request[data-case="{case_id}"][data-request="R1"]')
            assert "Cung cấp hồ sơ địa chính thửa đất số 112" in await request.inner_text()
            await department.shot("queue-request")

            async def answer(form: Any) -> None:
                await form.get_by_label("Nội dung trả lời").fill(
                    "Sở gửi kèm bản sao hồ sơ địa chính và trích lục bản đồ thửa đất số 112.")
            flash = await department.send("respond", answer, where=request)
            assert "Đã ghi nhận “Trả lời đề nghị phối hợp”" in flash
            assert department.page.url == f"{base_url}/console/queue"
            assert await department.page.locator(f'article.request[data-case="{case_id}"]').count() == 0
            await department.shot("answered")
        finally:
            await other.close()

        await page.reload()
        assert "Đã trả lời" in await page.locator("#board").inner_text()

        async def verify(form: Any) -> None:
            findings = form.get_by_role("textbox", name=re.compile("^Kết quả xác minh"))
            await findings.fill("Diện tích thu hồi đúng như hồ sơ; đơn giá áp sai.")
            await form.get_by_label("Yêu cầu của người gửi đơn đúng với kết quả xác minh").select_option(label="Có")
        assert "Đang xác minh" in await clerk.send("record_verification", verify)

        async def decide(form: Any) -> None:
            outcome = form.get_by_label("Kết quả giải quyết")
            options = await outcome.locator("option").all_inner_texts()
            assert "Tố cáo đúng: có vi phạm" not in options  # the outcomes of a complaint only
            await outcome.select_option(label="Đúng một phần")
            await form.get_by_label("Số quyết định").fill("42/QĐ-UBND")
            await form.get_by_label("Tóm tắt").fill("Chấp nhận một phần: tính lại đơn giá bồi thường.")
        assert "Đã ra quyết định, kết luận" in await clerk.send("decide", decide)
        await clerk.shot("decided")

        async def notify(form: Any) -> None:
            about = form.get_by_label("Về việc")
            assert await about.locator("option").all_inner_texts() == ["Quyết định, kết luận"]
            await form.get_by_label("Nơi nhận").fill("Bà Nguyễn Thị Lan\nThanh tra tỉnh")
            await form.get_by_label("Hình thức gửi").select_option(label="Trực tiếp")
            await form.get_by_label("Số văn bản").fill("43/TB-UBND")
        assert "Đã thông báo" in await clerk.send("notify", notify)

        async def nothing(form: Any) -> None:
            return None
        assert "Đã kết thúc" in await clerk.send("close", nothing)
        assert await clerk.offered() == ["archive"]

        async def archive(form: Any) -> None:
            await form.get_by_label("Số lưu trữ").fill("HS-KN-2026-0112")
        assert "Đã lưu hồ sơ" in await clerk.send("archive", archive)
        assert await clerk.offered() == []
        assert "Lúc này bạn không có thao tác nào với hồ sơ này." in await page.locator("#commands").inner_text()
        assert "Toàn vẹn" in await page.locator("#integrity").inner_text()
        await clerk.shot("archived")
    except Exception:
        await clerk.shot("failure")
        raise
    finally:
        await context.close()

    assert await stream_types(store, case_id) == [
        "PetitionReceived", "Classified", "AcceptanceDecided", "CoordinationRequested", "CoordinationResponded",
        "VerificationStep", "DecisionIssued", "NotificationSent", "Closed", "Archived"]
    stored = {e.type: e for e in await store.read_stream(case_id)}
    assert stored["AcceptanceDecided"].reason == "Đơn đủ điều kiện thụ lý theo Điều 27"
    assert stored["NotificationSent"].data["recipients"] == ["Bà Nguyễn Thị Lan", "Thanh tra tỉnh"]
    assert stored["CoordinationResponded"].actor == "body:chuyên viên Sở Tài nguyên@SO_TAI_NGUYEN"
    assert {e.actor for t, e in stored.items() if t not in ("PetitionReceived", "CoordinationResponded")} == {
        "body:chuyên viên UBND tỉnh@UBND_TINH"}
    assert (await store.verify(case_id)).ok


async def test_a_denunciation_extended_as_especially_complex_entirely_in_the_console(
    api: Api, tokens: Tokens, store: EventStore, base_url: str, browser: Any
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    case_id = await open_petition(api, tokens, kind="denunciation",
                                  subject="Tố cáo cán bộ địa chính xã nhận tiền khi làm hồ sơ đất",
                                  petitioner={"name": "Trần Văn Bình", "address": "Thôn 5, xã Nam Hồng"})
    # A browser in American English: the day is still typed and read day first.
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = await context.new_page()
    clerk = Clerk(page, base_url, "denunciation")
    try:
        await clerk.sign_in(tokens.lead, f"/console/cases/{case_id}")
        assert await page.get_attribute("html", "lang") == "vi"

        # Found especially complex without saying why: refused by the law's rule, nothing recorded.
        async def especially(form: Any) -> None:
            await form.get_by_label("Cơ quan chủ trì giải quyết").select_option(label="Ủy ban nhân dân tỉnh")
            await form.get_by_label("Đặc biệt phức tạp").check()
        await clerk.send("classify", especially)
        refusal = page.locator("#refusal-classify")
        text = await refusal.inner_text()
        assert "Không thực hiện được “Phân loại đơn”" in text
        assert "Vụ việc được xác định là đặc biệt phức tạp phải nêu lý do." in text
        assert "Căn cứ: Luật Tố cáo 2018, Điều 30" in text and "classify.especially_complex_reason" in text
        await clerk.shot("refused")
        assert await stream_types(store, case_id) == ["PetitionReceived"]

        # Classified complex (once extended at most, unless a decision finds it especially complex), then accepted.
        async def complex_case(form: Any) -> None:
            await form.get_by_label("Đặc biệt phức tạp").uncheck()
            await form.get_by_label("Phức tạp", exact=True).check()
            await form.get_by_label("Lý do, ghi chú").fill("Nhiều người liên quan, nhiều giao dịch đất")
        assert "Đã phân loại" in await clerk.send("classify", complex_case)

        async def accept(form: Any) -> None:
            await form.get_by_label("Số quyết định").fill("9/QĐ-UBND")
        assert "Đã thụ lý" in await clerk.send("accept", accept)
        decide = page.locator('details.command[data-command="decide"]')
        assert "Tố cáo đúng: có vi phạm" in await decide.inner_html()
        assert "Khiếu nại đúng" not in await decide.inner_html()
        await clerk.shot("accepted")

        async def first_extension(form: Any) -> None:
            await form.get_by_label("Số quyết định").fill("31/QĐ-UBND")
            await form.get_by_label("Ngày quyết định").fill(today())
            await form.get_by_label("Đặc biệt phức tạp").check()
            await form.get_by_label("Lý do, ghi chú").fill("Phải giám định chữ ký trên 40 hồ sơ chuyển nhượng")
        flash = await clerk.send("extend", first_extension, shot="extension-form")
        assert "Gia hạn giải quyết (ExtensionGranted)" in flash
        assert "đã gia hạn 1 lần" in await page.locator("table.deadlines").inner_text()
        await clerk.shot("extended-once")

        async def reused(form: Any) -> None:  # the same decision cannot extend twice
            await form.get_by_label("Số quyết định").fill("31/QĐ-UBND")
            await form.get_by_label("Ngày quyết định").fill(today())
            await form.get_by_label("Lý do, ghi chú").fill("Gia hạn lần hai")
        await clerk.send("extend", reused)
        assert "Số quyết định này đã được dùng cho một lần gia hạn khác" in \
            await page.locator("#refusal-extend").inner_text()

        async def second_extension(form: Any) -> None:
            await form.get_by_label("Số quyết định").fill("47/QĐ-UBND")
            await form.get_by_label("Ngày quyết định").fill(today())
        assert "Gia hạn giải quyết (ExtensionGranted)" in await clerk.send("extend", second_extension)
        assert "đã gia hạn 2 lần" in await page.locator("table.deadlines").inner_text()
        assert "extend" not in await clerk.offered()  # an especially complex case is extended twice at most
        await clerk.shot("extended-twice")
    except Exception:
        await clerk.shot("failure")
        raise
    finally:
        await context.close()

    extensions = [e for e in await store.read_stream(case_id) if e.type == "ExtensionGranted"]
    day = datetime.now(VN_TZ).date().isoformat()
    assert [(e.data["decision_no"], e.data["decision_date"]) for e in extensions] == [
        ("31/QĐ-UBND", day), ("47/QĐ-UBND", day)]
    assert extensions[0].data["especially_complex"] is True
    assert extensions[0].reason == "Phải giám định chữ ký trên 40 hồ sơ chuyển nhượng"
    assert all(e.legal_basis and "Luật Tố cáo 2018" in e.legal_basis for e in extensions)
