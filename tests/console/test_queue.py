"""A body's work queue: its open cases by what it owes, overdue first; the coordination requests addressed to it,
answered from the queue through the same command path as the API (a double submission applied once). On the
real app, worker, PostgreSQL and Temporal."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from eventstore import EventStore

from ..api.support import Api, token
from .support import Tokens, command, csrf_of, open_petition, signed_in, stream_types, text_of


def _form_of(page: str, case_id: str, request_id: str) -> dict[str, str]:
    """The hidden fields of the answer form of `request_id` of `case_id` on the queue page."""
    article = page.split(f'data-case="{case_id}" data-request="{request_id}"')[1].split("</article>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', article))
    action = re.search(r'<form method="post" action="([^"]+)"', article)
    assert action, article
    fields["_action"] = action.group(1).replace("&amp;", "&")
    return fields


async def _breached(store: EventStore, case_id: str) -> None:
    for _ in range(100):  # the overdue case's breach is marked by its own timer, at once
        row = await store.get_case(case_id)
        if row is not None and row.overdue:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_id} never became overdue")


async def test_a_body_sees_its_open_cases_overdue_first_and_answers_a_request_from_its_queue(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    late = await open_petition(api, tokens, subject="Khiếu nại quá hạn về cấp sổ đỏ",
                               received_at=(datetime.now(UTC) - timedelta(days=40)).isoformat())
    asked = await open_petition(api, tokens, subject="Khiếu nại về thu hồi đất ở Nam Sách")
    for step in ({"type": "classify", "lead_body": "UBND_TINH"}, {"type": "accept", "decision_no": "7/QĐ-UBND"},
                 {"type": "request_coordination", "subject": "Cung cấp hồ sơ địa chính thửa đất",
                  "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5}]}):
        await command(api, tokens.lead, asked, step)
    await _breached(store, late)

    # The lead body: both cases, the overdue one first, with what it owes and by when.
    async with signed_in(api.app, tokens.lead) as lead:
        page = (await lead.page("/console/queue")).text
        assert 'href="/console/queue" aria-current="page"' in page  # in the navigation of a body
        rows = re.findall(r'<tr( class="overdue")? data-case="([^"]+)"', page)
        order = [case_id for _, case_id in rows]
        assert order.index(late) < order.index(asked)
        assert dict((c, o) for o, c in rows)[late] == ' class="overdue"'
        late_row = text_of(page.split(f'data-case="{late}"')[1].split("</tr>")[0])
        assert "Quá hạn" in late_row and "Chủ trì" in late_row
        asked_row = text_of(page.split(f'data-case="{asked}"')[1].split("</tr>")[0])
        assert "Thời hạn giải quyết khiếu nại" in asked_row or "complaint.resolution" not in asked_row
        assert "SO_TAI_NGUYEN" not in asked_row  # the department's part is the department's, not the lead's
        assert f'data-case="{asked}" data-request="R1"' not in page  # nothing asked of the lead

    # The department: the request addressed to it, with the form to answer, and the case as coordinating.
    async with signed_in(api.app, tokens.other_body) as department:
        page = (await department.page("/console/queue")).text
        text = text_of(page)
        assert "Cung cấp hồ sơ địa chính thửa đất" in text and "Hạn trả lời" in text
        assert late not in page  # it owes nothing there
        row = text_of(page.split(f'<tr data-case="{asked}"')[1].split("</tr>")[0])
        assert "Phối hợp" in row
        fields = _form_of(page, asked, "R1")
        assert fields["request_id"] == "R1" and fields["body"] == "SO_TAI_NGUYEN"
        answer = {**{k: v for k, v in fields.items() if k != "_action"},
                  "response": "Sở đã gửi bản sao hồ sơ địa chính và biên bản đo đạc.", "reason": ""}
        first, second = await asyncio.gather(department.post_form(fields["_action"], answer),
                                             department.post_form(fields["_action"], answer))
        assert first.status_code == second.status_code == 303, (first.text[:500], second.text[:500])
        assert first.headers["location"] == "/console/queue"
        after = await department.page("/console/queue")
        flash = text_of(after.text.split('id="flash"')[1].split("</div>")[0])
        assert "Đã ghi nhận “Trả lời đề nghị phối hợp”" in flash and "CoordinationResponded" in flash
        assert f'data-case="{asked}" data-request="R1"' not in after.text
        assert 'id="flash"' not in (await department.page("/console/queue")).text  # shown once

    types = await stream_types(store, asked)
    assert types.count("CoordinationResponded") == 1
    stored = (await store.read_stream(asked))[-1]
    assert stored.actor == "body:chuyên viên Sở Tài nguyên@SO_TAI_NGUYEN"
    assert stored.data["response"] == "Sở đã gửi bản sao hồ sơ địa chính và biên bản đo đạc."


async def test_the_queue_is_a_body_s_own(api: Api, tokens: Tokens, store: EventStore) -> None:
    case_id = await open_petition(api, tokens)
    async with signed_in(api.app, tokens.stranger) as stranger:
        assert case_id not in (await stranger.page("/console/queue")).text
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        denied = await supervisor.get("/console/queue")
        assert denied.status_code == 403
        assert 'href="/console/queue"' not in (await supervisor.page("/console/cases")).text
    # A body that has nothing: an empty queue, said in words.
    quiet = await token(store, "body", "HCCB", label="cán bộ Hội Cựu chiến binh")
    async with signed_in(api.app, quiet) as nobody:
        text = text_of((await nobody.page("/console/queue")).text)
        assert "Không có đề nghị phối hợp nào đang chờ cơ quan trả lời." in text
        assert "Cơ quan không có hồ sơ nào đang mở." in text


async def test_an_answer_refused_by_the_case_shows_the_rule_and_keeps_the_text(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens)
    for step in ({"type": "classify", "lead_body": "UBND_TINH"}, {"type": "accept", "decision_no": "8/QĐ-UBND"},
                 {"type": "request_coordination", "subject": "Ý kiến về phương án bồi thường",
                  "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5}]}):
        await command(api, tokens.lead, case_id, step)
    async with signed_in(api.app, tokens.other_body) as department:
        page = (await department.page("/console/queue")).text
        fields = _form_of(page, case_id, "R1")
        action = fields.pop("_action")
        # Answered meanwhile through the API: the form's answer is refused by the case's rule.
        await command(api, tokens.other_body, case_id, {"type": "respond", "request_id": "R1",
                                                        "body": "SO_TAI_NGUYEN", "response": "Đã trả lời."})
        refused = await department.post_form(action, {**fields, "response": "Ý kiến của Sở: đồng ý phương án."})
        assert refused.status_code == 409, refused.text[:300]
        text = text_of(refused.text)
        assert "Không thực hiện được “Trả lời đề nghị phối hợp”" in text
        assert "Cơ quan đã trả lời đề nghị này." in text and "respond.already" in text
        assert "Căn cứ: Luật Khiếu nại 2011" in text
        assert "Ý kiến của Sở: đồng ý phương án." in refused.text  # what was typed is kept
        assert csrf_of(refused.text)
        # Another body's answer cannot be sent under this body's token: refused by the authority table.
        other = await department.post_form(action, {**fields, "body": "UBMTTQ_TINH", "response": "Thay mặt."})
        assert other.status_code == 403, other.text[:300]
        assert "Bạn không có thẩm quyền gửi thao tác này cho hồ sơ." in text_of(other.text)
        assert "cơ quan được đề nghị phối hợp" in text_of(other.text)
    assert (await stream_types(store, case_id)).count("CoordinationResponded") == 1
