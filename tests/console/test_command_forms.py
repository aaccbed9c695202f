"""A case page's command forms, over HTTP on the real app, worker, PostgreSQL and Temporal: the forms the signed-in
token may send now and no other, labelled in Vietnamese from the command models, bodies chosen by name, dates
written dd/mm/yyyy; a form sent goes the API's way (the same authority check, the Idempotency-Key from its nonce:
sent twice, applied once) and answers with a flash message, or with the case page again holding what was typed and
saying why (the input's problem, or the rule and its basis in the page's language)."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import datetime, timedelta

from domain.calendar import VN_TZ
from eventstore import EventStore

from ..api.support import Api
from .support import Person, Tokens, command, csrf_of, open_petition, signed_in, stream_types, text_of


def forms_of(page: str) -> dict[str, str]:
    """command -> the HTML of its form on the case page."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<details class="command" id="cmd-[^"]+" '
                                                          r'data-command="([a-z_]+)".*?</details>', page, re.S)}


def fields_of(form: str) -> dict[str, str]:
    """The hidden fields of a form (its CSRF token, its nonce, its fixed values) and its action."""
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)}
    action = re.search(r'<form method="post" action="([^"]+)"', form)
    assert action
    fields["_action"] = html.unescape(action.group(1))
    return fields


async def send(who: Person, page: str, command_type: str, values: dict[str, str]):  # type: ignore[no-untyped-def]
    fields = fields_of(forms_of(page)[command_type])
    action = fields.pop("_action")
    return await who.post_form(action, {**fields, **values})


async def test_a_lead_body_classifies_and_accepts_from_the_case_page_and_sees_only_what_it_may_do(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens, subject="Khiếu nại về cấp giấy chứng nhận quyền sử dụng đất")
    url = f"/console/cases/{case_id}"
    async with signed_in(api.app, tokens.lead) as lead:
        page = (await lead.page(url)).text
        forms = forms_of(page)
        assert {"classify", "forward", "redirect", "split", "assign", "suspend", "withdraw"} <= set(forms)
        assert not {"accept", "decide", "archive", "respond", "start_front_supervision"} & set(forms)
        classify = forms["classify"]
        assert "Phân loại đơn" in classify and "Cơ quan chủ trì giải quyết" in classify
        assert '<option value="UBND_TINH">Ủy ban nhân dân tỉnh</option>' in classify  # a body by its name
        assert '<option value="province">Cấp tỉnh</option>' in classify
        assert '<option value="denunciation">Tố cáo</option>' in classify
        assert 'type="checkbox"' in classify and "Đặc biệt phức tạp" in classify

        # Sent twice (a double click): applied once, and the page says what was recorded.
        values = {"lead_body": "UBND_TINH", "subject_category": "đất đai", "level": "province"}
        first, second = await asyncio.gather(send(lead, page, "classify", values),
                                             send(lead, page, "classify", values))
        assert first.status_code == second.status_code == 303, (first.text[:400], second.text[:400])
        assert first.headers["location"] == url
        page = (await lead.page(url)).text
        flash = text_of(page.split('id="flash"')[1].split("</div>")[0])
        assert "Đã ghi nhận “Phân loại đơn”" in flash and "Phân loại đơn (Classified)" in flash
        assert "Trạng thái hiện nay: Đã phân loại" in flash
        forms = forms_of(page)
        assert "classify" not in forms and {"accept", "reject"} <= set(forms)
        assert (await stream_types(store, case_id)).count("Classified") == 1
        classified = (await store.read_stream(case_id))[-1]
        assert classified.actor == "body:chuyên viên UBND tỉnh@UBND_TINH"
        assert classified.data["subject_category"] == "đất đai"

        async with signed_in(api.app, tokens.supervisor) as supervisor:  # reads the case, sends nothing to it
            assert 'id="commands"' not in (await supervisor.page(url)).text

        accepted = await send(lead, page, "accept", {"decision_no": "21/QĐ-UBND", "reason": "Đủ điều kiện thụ lý"})
        assert accepted.status_code == 303
        page = (await lead.page(url)).text
        assert "Trạng thái hiện nay: Đã thụ lý" in text_of(page)
        forms = forms_of(page)
        assert {"request_coordination", "record_verification", "decide", "notify"} <= set(forms)
        assert "extend" not in forms  # a complaint's period is not extended
        decide = forms["decide"]
        assert "Khiếu nại đúng" in decide and "Tố cáo đúng" not in decide  # the outcomes of a complaint
        notify = forms["notify"]
        assert '<option value="acceptance">Việc thụ lý</option>' in notify and 'value="decision"' not in notify
    stored = (await store.read_stream(case_id))[-1]
    assert stored.type == "AcceptanceDecided" and stored.reason == "Đủ điều kiện thụ lý"
    assert stored.data["decision_no"] == "21/QĐ-UBND"


async def test_an_act_s_date_is_typed_dd_mm_yyyy_and_the_timeline_shows_it_beside_the_recording(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens, subject="Khiếu nại về việc cấp phép xây dựng")
    url = f"/console/cases/{case_id}"
    today = datetime.now(VN_TZ).date()
    async with signed_in(api.app, tokens.lead) as lead:
        page = (await lead.page(url)).text
        assert (await send(lead, page, "classify", {"lead_body": "UBND_TINH"})).status_code == 303
        page = (await lead.page(url)).text
        accept = forms_of(page)["accept"]
        assert "Ngày ký văn bản (để trống: hôm nay)" in accept and 'name="dated"' in accept
        assert accept.index('name="dated"') < accept.index('name="reason"')
        future = (today + timedelta(days=1)).strftime("%d/%m/%Y")
        refused = await send(lead, page, "accept", {"decision_no": "22/QĐ-UBND", "dated": future})
        assert refused.status_code == 409 and "không được sau ngày hôm nay" in text_of(refused.text)
        typed = today.strftime("%d/%m/%Y")
        assert (await send(lead, page, "accept", {"decision_no": "22/QĐ-UBND", "dated": typed})).status_code == 303
        stored = (await store.read_stream(case_id))[-1]
        assert stored.type == "AcceptanceDecided" and stored.data["dated"] == today.isoformat()
        page = (await lead.page(url + "?process=0")).text
        assert f"văn bản ngày {typed}" in text_of(page)


async def test_a_form_with_bad_values_comes_back_with_each_problem_and_what_was_typed(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens)
    await command(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    await command(api, tokens.lead, case_id, {"type": "accept", "decision_no": "5/QĐ-UBND"})
    url = f"/console/cases/{case_id}"
    before = await stream_types(store, case_id)
    async with signed_in(api.app, tokens.lead) as lead:
        page = (await lead.page(url)).text
        bad = await send(lead, page, "request_coordination", {
            "subject": "", "bodies.0.body": "SO_TAI_NGUYEN", "bodies.0.side": "state", "bodies.0.days": "năm",
            "bodies.0.unit": "working", "reason": "Cần số liệu của Sở"})
        assert bad.status_code == 422
        form = forms_of(bad.text)["request_coordination"]
        assert " open>" in form.split(">")[0] + ">"
        assert "Chưa gửi “Đề nghị phối hợp”" in text_of(form)
        assert "Phải là một số nguyên." in text_of(form) and 'value="năm"' in form
        assert "Cần số liệu của Sở" in form  # what was typed is kept
        bad = await send(lead, page, "request_coordination", {
            "subject": "", "bodies.0.body": "SO_TAI_NGUYEN", "bodies.0.side": "state", "bodies.0.days": "5",
            "bodies.0.unit": "working"})
        assert bad.status_code == 422
        assert "Trường này là bắt buộc." in text_of(forms_of(bad.text)["request_coordination"])
        # A date that is no day, and then one written day first: read on the server, whatever the browser.
        verified = await send(lead, page, "record_verification", {"findings": "Diện tích đo đạc khác hồ sơ",
                                                                  "demand_matches_findings": "false"})
        assert verified.status_code == 303
        page = (await lead.page(url)).text
        assert "decide" not in forms_of(page)  # the demand and the findings differ: a dialogue comes first
        bad = await send(lead, page, "record_dialogue", {"held_on": "31/02/2027", "participants": "Bà Lan",
                                                         "summary": "Đối thoại"})
        assert bad.status_code == 422
        assert "Không có ngày này trong lịch." in text_of(forms_of(bad.text)["record_dialogue"])
        today = datetime.now(VN_TZ).date()
        held = await send(lead, page, "record_dialogue", {
            "held_on": today.strftime("%d/%m/%Y"), "participants": "Bà Nguyễn Thị Lan\r\nÔng Trần Văn Bình",
            "summary": "Hai bên thống nhất đo đạc lại"})
        assert held.status_code == 303, held.text[:500]
    dialogue = (await store.read_stream(case_id))[-1]
    assert dialogue.type == "DialogueHeld" and dialogue.data["held_on"] == today.isoformat()
    assert dialogue.data["participants"] == ["Bà Nguyễn Thị Lan", "Ông Trần Văn Bình"]
    assert (await stream_types(store, case_id))[:len(before)] == before


async def test_a_refused_form_says_the_rule_and_its_basis_in_the_page_s_language(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens)
    url = f"/console/cases/{case_id}"
    async with signed_in(api.app, tokens.lead) as lead:
        page = (await lead.page(url)).text
        fields = fields_of(forms_of(page)["classify"])
        action = fields.pop("_action")
        # Sent for a command the case takes in another state: refused by the case, with its rule and basis.
        dialogue = action.replace("/commands/classify", "/commands/record_dialogue")
        refused = await lead.post_form(dialogue, {**fields, "held_on": "01/03/2027", "participants": "Bà Lan",
                                                  "summary": "Nội dung đối thoại đã ghi"})
        assert refused.status_code == 409, refused.text[:300]
        text = text_of(refused.text)
        assert "Không thực hiện được “Ghi nhận đối thoại”. Hồ sơ không thay đổi." in text
        assert "Đối thoại được tổ chức sau khi xác minh." in text
        assert "Căn cứ: Luật Khiếu nại 2011, Điều 30" in text and "dialogue.state" in text
        assert "Nội dung đối thoại đã ghi" in refused.text
        assert '<html lang="vi">' in refused.text
        english = await lead.post_form(dialogue + "?lang=en", {**fields, "held_on": "01/03/2027",
                                                                "participants": "Bà Lan", "summary": "S"})
        assert "A dialogue follows verification." in text_of(english.text)
        assert "Basis: Luật Khiếu nại 2011, Điều 30" in text_of(english.text)
        # Without the session's CSRF token: refused before anything is read.
        forged = await lead.post_form(action, {"nonce": fields["nonce"], "lead_body": "UBND_TINH"})
        assert forged.status_code == 403
    async with signed_in(api.app, tokens.stranger) as stranger:
        assert (await stranger.get(url)).status_code == 403  # not its case: no page, no form
    assert await stream_types(store, case_id) == ["PetitionReceived"]
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        page = (await supervisor.page(url)).text
        # A supervisor reads the case and may send nothing to it: a form posted all the same is refused 403.
        refused = await supervisor.post_form(f"{url}/commands/accept",
                                             {"csrf": csrf_of(page), "decision_no": "1/QĐ"})
        assert refused.status_code == 403
        text = text_of(refused.text)
        assert "Bạn không có thẩm quyền gửi thao tác này cho hồ sơ." in text
        assert "Người được thực hiện: cơ quan chủ trì giải quyết." in text
    assert await stream_types(store, case_id) == ["PetitionReceived"]


async def test_the_forms_speak_the_page_s_language(api: Api, tokens: Tokens) -> None:
    case_id = await open_petition(api, tokens)
    async with signed_in(api.app, tokens.lead) as lead:
        page = (await lead.page(f"/console/cases/{case_id}", params={"lang": "en"})).text
    forms = forms_of(page)
    assert "Classify" in forms["classify"] and "Lead body" in forms["classify"]
    assert '<option value="UBND_TINH">Provincial People&#39;s Committee</option>' in forms["classify"]
    assert "day/month/year" in page or "record_dialogue" not in forms
    assert "Send: Classify" in forms["classify"]
