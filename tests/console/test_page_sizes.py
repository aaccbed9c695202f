"""Pages that fit a screen, measured in a real headless Chromium at 1366x900: the case list with a full page of
cases and the counts of many groups, and the plan page with every task of the shipped action plan (their real
titles and bodies), each a few screens at most (they were 5,272 and 8,829 px). Screenshots go to
`tests/artifacts/console/`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from activities.plan_loader import load_plan
from eventstore import EventStore

from ..api.support import Api, seed_case, unique
from .browsing import ARTIFACTS, pytestmark  # noqa: F401
from .support import Tokens

#: The most a page may be tall (px) at 1366x900: about three screens.
MAX_HEIGHT = 2_800


async def signed_in_page(browser: Any, base_url: str, token: str) -> Any:
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = await context.new_page()
    await page.goto(f"{base_url}/console/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/console/cases")
    return page


async def height(page: Any) -> int:
    return int(await page.evaluate("document.documentElement.scrollHeight"))


async def test_the_case_list_and_the_plan_page_fit_in_a_few_screens(
    api: Api, store: EventStore, tokens: Tokens, browser: Any, base_url: str
) -> None:
    district = unique("Huyện Thanh Hà")
    statuses = ["received", "classified", "accepted", "verifying", "dialogue", "decided", "notified", "closed",
                "archived", "rejected", "forwarded", "redirected"]
    for i in range(60):
        await seed_case(store, kind=["complaint", "denunciation", "recommendation", "voter_petition"][i % 4],
                        status=statuses[i % len(statuses)], district=district, commune=f"Xã số {i % 15}",
                        lead_body=["UBND_TINH", "THANH_TRA_TINH", "SO_TAI_NGUYEN", "UBMTTQ_TINH"][i % 4],
                        title=f"Đơn số {i}: khiếu nại về việc thu hồi đất, bồi thường, hỗ trợ và tái định cư "
                              "khi thực hiện dự án mở rộng đường tỉnh lộ",
                        received_at=datetime.now(UTC) - timedelta(days=i), due_at=datetime.now(UTC) + timedelta(days=i))

    plan = load_plan()
    plan_id = unique("KH")
    for task in [*plan.tasks, *plan.standing_duties]:
        await seed_case(store, kind="plan_task", status="active", title=task.title_vi, source=plan_id,
                        lead_body=task.lead[0].code if task.lead else None,
                        summary={"plan_id": plan_id, "task_id": task.id, "title_en": task.title_en,
                                 "lead": [b.code for b in task.lead],
                                 "coordinators": [b.code for b in task.coordinators],
                                 "reports": {"2026-H1": {"submitted_at": None}, "2026": {"submitted_at": None}}})

    page = await signed_in_page(browser, base_url, tokens.supervisor)
    await page.goto(f"{base_url}/console/cases?district={district}")
    cases = await height(page)
    await page.screenshot(path=str(ARTIFACTS / "11-case-list-full-page.png"), full_page=True)
    await page.goto(f"{base_url}/console/plan?plan={plan_id}")
    tasks = await height(page)
    await page.screenshot(path=str(ARTIFACTS / "12-plan-full-plan.png"), full_page=True)
    print(f"case list {cases} px, plan {tasks} px for {len(plan.tasks) + len(plan.standing_duties)} tasks")
    assert cases <= MAX_HEIGHT, cases
    # 43 tasks and the table of the 30 bodies they name: a little more than the list, still a handful of screens.
    assert tasks <= 1.5 * MAX_HEIGHT, tasks
