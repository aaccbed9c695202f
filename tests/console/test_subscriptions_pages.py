"""The webhook subscriptions in the console: the list and a subscription's deliveries (for operators and admins,
in Vietnamese or English, times at +07:00), linked from the operations page; a failing subscription and late
checkpoints in the stalled queue with their remedies' forms, a remedy sent from the queue recorded with the
signed-in operator; and the deliveries page in a real headless Chromium, screenshot kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from eventstore import EventStore

from ..api.support import Api, token, unique
from .browsing import ARTIFACTS, pytestmark  # noqa: F401
from .support import Tokens, csrf_of, signed_in, text_of


async def seeded_subscription(api: Api, store: EventStore, status: str = "failing") -> tuple[str, str]:
    """A subscription of an intake system with three attempts recorded (an answer 503, no answer, then 204); its id
    and the system's label."""
    source = unique("hệ-thống-nhận")
    intake = await token(store, "intake", label=source)
    made = await api.post("/v1/subscriptions", intake, json={"url": "http://127.0.0.1:9/hooks?token=bí-mật",
                                                             "status": "paused"})
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    start = datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC)  # 09:30:05 in Vietnam
    rows = [(503, None, 120.4), (None, "no answer within 10 s", 10001.0), (204, None, 35.2)]
    await store.pool.executemany(
        "INSERT INTO deliveries (subscription_id, event_id, case_id, event_type, attempt, status_code, error, "
        "started_at, latency_ms, feed_tx, feed_position, delivered_by) "
        "VALUES ($1, $2, 'pet-console-hook', 'Classified', $3, $4, $5, $6, $7, 1, 1, 'test')",
        [(sub_id, uuid.uuid4(), n + 1, code, error, start + timedelta(minutes=n), ms)
         for n, (code, error, ms) in enumerate(rows)])
    await store.pool.execute("UPDATE subscriptions SET status = $2, status_reason = $3 WHERE id = $1", sub_id,
                             status, "gave up after 40 attempts over 3.0 days: event x: attempt 40 answered HTTP 503"
                             if status == "failing" else None)
    return sub_id, source


async def test_the_subscriptions_and_their_deliveries_are_shown_to_operators_and_admins(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    sub_id, source = await seeded_subscription(api, store)
    async with signed_in(api.app, tokens.admin) as admin:
        ops = await admin.page("/console/ops")
        assert 'href="/console/subscriptions"' in ops.text
        listed = await admin.page("/console/subscriptions?status=failing")
        text = text_of(listed.text)
        assert "Đăng ký nhận sự kiện (webhook)" in text and "Đang lỗi" in text and source in text
        assert f'href="/console/subscriptions/{sub_id}"' in listed.text
        assert "bí-mật" not in listed.text and "http://127.0.0.1:9/hooks" in listed.text  # the query is not shown
        page = await admin.page(f"/console/subscriptions/{sub_id}")
        text = text_of(page.text)
        assert "Các lượt gửi, mới nhất trước" in text
        # Newest first: 204, then no answer, then 503; each start to the second at +07:00.
        table = text_of(page.text.split('id="deliveries"')[1])
        assert table.index("HTTP 204") < table.index("không trả lời") < table.index("HTTP 503")
        assert "04/12/2026 09:30:05 +07:00" in text and "04/12/2026 09:32:05 +07:00" in text
        assert "no answer within 10 s" in text and "120 ms" in text and "10001 ms" in text
        english = await admin.page(f"/console/subscriptions/{sub_id}?lang=en")
        text = text_of(english.text)
        assert "Delivery attempts, newest first" in text and "2026-12-04 09:30:05 +07:00" in text
        assert "Failing" in text
    async with signed_in(api.app, tokens.operator) as operator:
        await operator.page(f"/console/subscriptions/{sub_id}")
    for other in (tokens.supervisor, tokens.lead):
        async with signed_in(api.app, other) as reader:
            assert (await reader.get("/console/subscriptions")).status_code == 403
            assert (await reader.get(f"/console/subscriptions/{sub_id}")).status_code == 403
    async with signed_in(api.app, tokens.admin) as admin:
        assert (await admin.get("/console/subscriptions/sub_00000000000000000000")).status_code == 404
        assert (await admin.get("/console/subscriptions?status=lost")).status_code == 422


async def test_a_failing_subscription_and_a_late_checkpoint_are_in_the_queue_and_remedied_from_it(
    api: Api, store: EventStore, tokens: Tokens
) -> None:
    sub_id, _ = await seeded_subscription(api, store)
    signer = unique("console-signer")
    await store.pool.execute(
        "INSERT INTO checkpoint_signers (signer, log_path, every_seconds, started_at, last_signed_at, last_seq) "
        "VALUES ($1, '/nowhere', 300, now() - interval '1 day', now() - interval '1 day', 4)", signer)
    try:
        assert (await api.post("/v1/ops/stalled/scan", tokens.operator)).status_code == 200
        async with signed_in(api.app, tokens.operator) as operator:
            page = await operator.page("/console/stalled")
            text = text_of(page.text)
            assert "Webhook không gửi được" in text and "Mốc ký số bị trễ" in text
            assert "ngừng gửi" in text and "mỗi 300 giây một lần" in text
            # The reason the workflow wrote in English, said in Vietnamese; as written beside, as code.
            assert "đã ngừng sau 40 lần thử trong 3.0 ngày; lần cuối: bên nhận trả lời HTTP 503" in text
            assert '<code class="failure">gave up after 40 attempts' in page.text
            assert f'action="/console/stalled/subjects/subscription/{sub_id}/retry"' in page.text
            assert f'action="/console/stalled/subjects/subscription/{sub_id}/replay"' in page.text
            assert 'name="cursor"' in page.text and "Gửi lại ngay" in text and "Ký mốc ngay" in text
            assert f'href="/console/subscriptions/{sub_id}"' in page.text
            why = "Bên nhận đã khắc phục sự cố máy chủ"
            form = {"csrf": csrf_of(page.text), "nonce": uuid.uuid4().hex, "reason": why}
            sent = await operator.post_form(f"/console/stalled/subjects/subscription/{sub_id}/retry", form)
            assert sent.status_code == 303
            back = await operator.page(sent.headers["location"])
            assert "đã ghi lại người thực hiện và lý do" in text_of(back.text)
            again = await operator.post_form(f"/console/stalled/subjects/subscription/{sub_id}/retry", form)
            assert again.status_code == 303  # the same form sent twice: recorded once
            short = await operator.post_form(f"/console/stalled/subjects/subscription/{sub_id}/pause",
                                             {**form, "nonce": uuid.uuid4().hex, "reason": "ngắn"})
            assert "ít nhất" in text_of((await operator.page(short.headers["location"])).text)
        rows = await store.pool.fetch("SELECT action, actor, actor_role, reason FROM ops_remedies "
                                      "WHERE subject_id = $1", sub_id)
        assert [dict(r) for r in rows] == [{"action": "retry", "actor": "vận hành", "actor_role": "operator",
                                            "reason": why}]
        assert await store.pool.fetchval("SELECT status FROM subscriptions WHERE id = $1", sub_id) == "active"
        async with signed_in(api.app, tokens.supervisor) as supervisor:
            page = await supervisor.page("/console/stalled?reason=checkpoint_late")
            assert signer in page.text and "/console/stalled/subjects/" not in page.text  # no forms to read-only
            forbidden = await supervisor.post_form(f"/console/stalled/subjects/checkpoint/{signer}/checkpoint",
                                                   {"csrf": csrf_of(page.text) if "csrf" in page.text else "",
                                                    "reason": "Ký mốc ngay bây giờ"})
            assert forbidden.status_code == 403
    finally:
        await store.pool.execute("DELETE FROM checkpoint_signers WHERE signer = $1", signer)
        await api.post("/v1/ops/stalled/scan", tokens.operator)


async def test_the_deliveries_page_in_a_browser(api: Api, store: EventStore, tokens: Tokens, browser: Any,
                                                base_url: str) -> None:
    sub_id, _ = await seeded_subscription(api, store, status="active")
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    tab = await context.new_page()
    await tab.goto(f"{base_url}/console/login")
    await tab.fill("#token", tokens.admin)
    await tab.click("button[type=submit]")
    await tab.wait_for_url(f"{base_url}/console/cases")
    await tab.goto(f"{base_url}/console/ops")
    await tab.click("#subscriptions-link")
    await tab.wait_for_url(f"{base_url}/console/subscriptions")
    await tab.click(f"a[href='/console/subscriptions/{sub_id}']")
    await tab.wait_for_url(f"{base_url}/console/subscriptions/{sub_id}")
    rows = tab.locator("#deliveries tbody tr")
    assert await rows.count() == 3
    assert "HTTP 204" in await rows.nth(0).inner_text()
    assert "+07:00" in await rows.nth(2).inner_text()
    assert await tab.locator("#sub-status").inner_text() == "Đang gửi"
    await tab.screenshot(path=str(ARTIFACTS / "20-subscription-deliveries.png"), full_page=True)
    await context.close()


def test_the_reasons_the_engine_writes_for_a_failing_subscription_are_said_in_the_pages_language() -> None:
    from api.console.i18n import Translator
    from api.console.views import subscription_reason

    vi, en = Translator("vi"), Translator("en")
    failed = "gave up after 7 attempts over 2.5 hours: event 1f: attempt 7 failed: no answer within 10 s"
    assert subscription_reason(failed, vi) == "đã ngừng sau 7 lần thử trong 2.5 giờ; lần cuối: không có trả lời"
    assert subscription_reason(failed, en) == "gave up after 7 attempts over 2.5 hours; the last: no answer"
    revoked = ("the owner (intake 'hệ thống A') has no active token left: nothing is delivered until it has one "
               "and the subscription is resumed")
    assert subscription_reason(revoked, vi) == "chủ đăng ký không còn mã truy cập nào còn hiệu lực"
    assert subscription_reason("something else", vi) is None and subscription_reason(None, vi) is None
