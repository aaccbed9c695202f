"""The operations page: what is down, the latest checkpoint, and charts drawn as SVG on the server with their
tables beside them, over cases seeded in PostgreSQL; and the page in a real headless Chromium, screenshot kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from eventstore import EventStore

from ..api.support import Api, seed_case, unique
from .browsing import ARTIFACTS, pytestmark  # noqa: F401
from .support import Tokens, signed_in, text_of


async def test_the_charts_and_their_tables_show_the_same_figures(api: Api, store: EventStore, tokens: Tokens,
                                                                 browser: Any, base_url: str) -> None:
    district = unique("Huyện")
    now = datetime.now(UTC)
    for i in range(6):
        await seed_case(store, kind="complaint" if i % 2 else "recommendation", status="accepted",
                        district=district, received_at=now - timedelta(days=7 * (i % 3)),
                        lead_body="UBND_TINH", overdue=i < 4)
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/ops")
        text = text_of(page.text)
        assert "Tình hình vận hành" in text and "PostgreSQL: đang chạy" in text and "Temporal: đang chạy" in text
        # Each chart is an SVG image named by its caption, its bars titled with their figures.
        # (the on-time chart draws only when some petition was resolved in the period)
        assert page.text.count('<svg viewBox=') >= 2 and 'role="img"' in page.text
        overdue = page.text.split('id="overdue-table"')[1].split("</table>")[0]
        ubnd = re.search(r"Ủy ban nhân dân tỉnh</th><td>(\d+)</td>", overdue)
        assert ubnd and int(ubnd.group(1)) >= 4
        assert f"Ủy ban nhân dân tỉnh — Quá hạn: {ubnd.group(1)}</title>" in page.text
        intake = page.text.split('id="intake-table"')[1].split("</table>")[0]
        assert len(re.findall(r"<tr><th scope=\"row\">", intake)) == 12  # twelve weeks
    async with signed_in(api.app, tokens.lead) as body:
        assert (await body.get("/console/ops")).status_code == 403
        assert 'href="/console/ops"' not in (await body.page("/console/cases")).text

    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    tab = await context.new_page()
    await tab.goto(f"{base_url}/console/login")
    await tab.fill("#token", tokens.supervisor)
    await tab.click("button[type=submit]")
    await tab.wait_for_url(f"{base_url}/console/cases")
    await tab.goto(f"{base_url}/console/ops")
    assert await tab.locator("figure.chart svg rect").count() > 0
    await tab.screenshot(path=str(ARTIFACTS / "13-operations-charts.png"), full_page=True)
    await context.close()
