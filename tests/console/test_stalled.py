"""The stalled-cases queue and its repairs over plain HTTP: who may open it and who may repair, CSRF, the reason's
rule, what a repair records and with whom as its operator, the flash messages, a reset's dry run and its
confirmation, the bulk retry's report, and the case page's banner while a real fault stalls a case."""

from __future__ import annotations

import asyncio
import re
import uuid
from urllib.parse import urlsplit

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from api.console.flash import MAX_VALUE_BYTES, _encode, fit
from api.console.stalled import REPAIRERS
from domain.repairs import REPAIR_ROLES
from eventstore import EventStore

from ..api.support import Api
from ..faults import AppendFault
from .support import (
    Person,
    Tokens,
    csrf_for,
    csrf_of,
    final_answer,
    open_case,
    signed_in,
    still_waiting,
    stream_types,
    stuck_command,
    text_of,
    wait_for_types,
)

REASON = "Cơ quan chưa trả lời quá hạn, nhắc xử lý"
#: A form's nonce, as the page makes them (it becomes the repair's command id).
NONCE = "n0nce-for-a-test-form-1"
#: Each repair's form fields besides csrf and reason.
ACTIONS = {"retry": {}, "reset": {"dry_run": "1"}, "nudge": {}, "reassign": {"body": "SO_NOI_VU"}}
ROLE_REFUSED = "không được mở trang này"


async def post_every_repair(user: Person, case_id: str, csrf: str) -> list[tuple[str, int, str]]:
    """Every repair form and the bulk retry, posted with `csrf` and a valid reason: (what, status, text)."""
    answers = []
    for action, fields in ACTIONS.items():
        response = await user.post_form(f"/console/stalled/cases/{case_id}/{action}",
                                        {"csrf": csrf, "reason": REASON, "nonce": NONCE, **fields})
        answers.append((action, response.status_code, text_of(response.text)))
    bulk = await user.post_form("/console/stalled/retry-all", {"csrf": csrf, "reason": REASON, "dry_run": "1"})
    answers.append(("bulk", bulk.status_code, text_of(bulk.text)))
    return answers


async def flash_after(user: Person, answer_location: str) -> str:
    """The text of the flash message on the page a form's answer sent the browser to."""
    page = await user.page(answer_location)
    found = re.search(r'<div class="flash [a-z]+" id="flash".*?</div>', page.text, re.S)
    assert found, "the queue shows no flash message"
    return text_of(found.group(0))


def test_the_console_lets_the_same_roles_repair_as_the_api() -> None:
    assert set(REPAIRERS) == REPAIR_ROLES


@pytest.mark.parametrize("who", ["intake", "lead"])
async def test_an_intake_system_or_a_body_gets_403_on_the_queue_and_on_every_repair(
    api: Api, tokens: Tokens, store: EventStore, who: str
) -> None:
    case_id = await open_case(api, tokens)
    before = await stream_types(store, case_id)
    async with signed_in(api.app, getattr(tokens, who)) as user:
        page = await user.get("/console/stalled")
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        assert f"Vai trò “{'intake' if who == 'intake' else 'body'}” {ROLE_REFUSED}" in text_of(page.text)
        for what, status, text in await post_every_repair(user, case_id, csrf_for(api.app, user)):
            assert status == 403 and ROLE_REFUSED in text, what
        if who == "lead":  # a body reads cases, but the queue is not in its navigation
            cases = await user.page("/console/cases")
            assert 'href="/console/stalled"' not in cases.text
            case_page = await user.page(f"/console/cases/{case_id}")
            assert 'id="stalled-banner"' not in case_page.text
    assert await stream_types(store, case_id) == before


async def test_a_supervisor_sees_the_queue_without_its_forms_and_may_not_repair(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    before = await stream_types(store, case_id)
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        page = await supervisor.page("/console/stalled")
        assert re.search(r'<a href="/console/stalled" aria-current="page">Hồ sơ bị ách tắc</a>', page.text)
        assert 'id="read-only"' in page.text and 'id="bulk-form"' not in page.text
        assert 'action="/console/stalled/' not in page.text  # no repair form at all
        assert page.headers["cache-control"] == "no-store" and "<script" not in page.text.lower()
        for what, status, text in await post_every_repair(supervisor, case_id, csrf_of(page.text)):
            assert status == 403 and "Vai trò “supervisor” không được mở trang này" in text, what
        english = await supervisor.page("/console/stalled?lang=en")
        assert "Stalled cases" in english.text and "Supervisors see the queue" in english.text
    assert await stream_types(store, case_id) == before


async def test_a_repair_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    before = await stream_types(store, case_id)
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        someone_elses = csrf_of((await supervisor.page("/console/cases")).text)
    async with signed_in(api.app, tokens.operator) as operator:
        for csrf in (None, "0" * 64, someone_elses):
            fields = {"reason": REASON, "nonce": NONCE} | ({"csrf": csrf} if csrf else {})
            for action in ("nudge", "retry"):
                answer = await operator.post_form(f"/console/stalled/cases/{case_id}/{action}", fields)
                assert answer.status_code == 403, (csrf, action)
                assert "Biểu mẫu đã hết hạn hoặc không hợp lệ" in text_of(answer.text)
            bulk = await operator.post_form("/console/stalled/retry-all", fields)
            assert bulk.status_code == 403
        assert "dv_flash" not in operator.http.cookies
    assert await stream_types(store, case_id) == before


async def test_an_invalid_form_is_refused_naming_its_field_and_records_nothing(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    before = await stream_types(store, case_id)
    async with signed_in(api.app, tokens.operator) as operator:
        csrf = csrf_of((await operator.page("/console/stalled")).text)
        for reason in ("vì", "   ngắn    ", ""):
            answer = await operator.post_form(f"/console/stalled/cases/{case_id}/nudge?kind=complaint",
                                              {"csrf": csrf, "reason": reason, "nonce": NONCE})
            assert answer.status_code == 303 and answer.headers["location"] == "/console/stalled?kind=complaint"
            flash = await flash_after(operator, answer.headers["location"])
            assert f"Chưa thực hiện “Nhắc cơ quan” cho hồ sơ {case_id}" in flash
            assert "trường “Lý do” (reason) không hợp lệ" in flash and "ít nhất 10 ký tự" in flash
            assert "Không có gì thay đổi" in flash
        # The message is shown once.
        assert 'id="flash"' not in (await operator.page("/console/stalled?kind=complaint")).text
        no_body = await operator.post_form(f"/console/stalled/cases/{case_id}/reassign",
                                           {"csrf": csrf, "reason": REASON})
        assert "trường “Cơ quan” (body) không hợp lệ" in await flash_after(operator, no_body.headers["location"])
        bad_point = await operator.post_form(f"/console/stalled/cases/{case_id}/reset",
                                             {"csrf": csrf, "reason": REASON, "to_event_id": "ba", "dry_run": "1"})
        assert "(to_event_id)" in await flash_after(operator, bad_point.headers["location"])
        bad_limit = await operator.post_form("/console/stalled/retry-all?lang=en",
                                             {"csrf": csrf, "reason": REASON, "limit": "0"})
        assert bad_limit.headers["location"] == "/console/stalled"
        flash = await flash_after(operator, "/console/stalled?lang=en")
        assert "the field “At most this many cases” (limit) is not valid" in flash and "from 1 to 1000" in flash
    assert await stream_types(store, case_id) == before


async def test_a_nudge_through_the_form_is_recorded_once_with_the_operator_from_the_token(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    async with signed_in(api.app, tokens.operator) as operator:
        page = await operator.page("/console/stalled")
        assert 'id="bulk-form"' in page.text
        form = {"csrf": csrf_of(page.text), "reason": REASON, "nonce": NONCE,
                "actor": "admin:kẻ mạo danh"}  # a name in the form is not read
        answer = await operator.post_form(f"/console/stalled/cases/{case_id}/nudge?reason=deadline_idle", form)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/stalled?reason=deadline_idle"
        flash = await flash_after(operator, answer.headers["location"])
        assert f"Đã thực hiện “Nhắc cơ quan” cho hồ sơ {case_id} và đã ghi vào hồ sơ" in flash
        assert "(RepairRecorded)" in flash and "(BodyNudged)" in flash
        # The same form again (a double click, a resubmission): the same command id, recorded once.
        again = await operator.post_form(f"/console/stalled/cases/{case_id}/nudge", form)
        assert again.status_code == 303
        # Its nonce with another reason (a form edited and sent again) is another request: refused.
        edited = await operator.post_form(f"/console/stalled/cases/{case_id}/nudge?lang=en",
                                          {**form, "reason": REASON + " lần nữa"})
        flash = await flash_after(operator, edited.headers["location"])
        assert "idempotency.key_reused" in flash and "This form was already used for another request" in flash
    stored = await store.read_stream(case_id)
    types = [e.type for e in stored]
    assert types[-2:] == ["RepairRecorded", "BodyNudged"]
    assert types.count("RepairRecorded") == 1 and types.count("BodyNudged") == 1
    repair = stored[-2]
    assert repair.actor == "operator:vận hành" and repair.reason == REASON and repair.data["action"] == "nudge"
    assert (await store.verify(case_id)).ok
    # The case page's timeline names the repair.
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        case_page = await supervisor.page(f"/console/cases/{case_id}")
        assert "Ghi nhận xử lý sự cố" in case_page.text and "operator:vận hành" in case_page.text


async def test_a_repair_that_does_not_apply_shows_its_rule_and_message_and_changes_nothing(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    before = await stream_types(store, case_id)
    async with signed_in(api.app, tokens.operator) as operator:
        csrf = csrf_of((await operator.page("/console/stalled")).text)
        answer = await operator.post_form(f"/console/stalled/cases/{case_id}/retry", {"csrf": csrf, "reason": REASON})
        assert answer.status_code == 303
        flash = await flash_after(operator, answer.headers["location"])
        assert f"Không thực hiện “Thử lại” cho hồ sơ {case_id}: thao tác bị từ chối" in flash
        assert "Quy tắc repair.retry.nothing_failing" in flash and "Không có bước nào đang lỗi" in flash
        assert f"Chi tiết: no step of {case_id} is failing or paused" in flash
        missing = await operator.post_form("/console/stalled/cases/no-such-case/nudge?lang=en",
                                           {"csrf": csrf, "reason": REASON})
        flash = await flash_after(operator, missing.headers["location"] + "?lang=en")
        assert "Nudge: refused for case no-such-case" in flash and "Rule repair.not_found" in flash
        unknown = await operator.post_form(f"/console/stalled/cases/{case_id}/delete", {"csrf": csrf, "reason": REASON})
        assert unknown.status_code == 422
    assert await stream_types(store, case_id) == before


async def test_a_reset_is_previewed_then_confirmed_at_the_point_shown(
    api: Api, tokens: Tokens, store: EventStore, temporal_env: WorkflowEnvironment
) -> None:
    case_id = await open_case(api, tokens)
    before = await store.read_stream(case_id)
    point = await point_before_last_command(temporal_env, case_id)
    async with signed_in(api.app, tokens.operator) as operator:
        csrf = csrf_of((await operator.page("/console/stalled")).text)
        preview = await operator.post_form(f"/console/stalled/cases/{case_id}/reset?kind=complaint",
                                           {"csrf": csrf, "reason": REASON, "to_event_id": str(point),
                                            "dry_run": "1", "nonce": NONCE})
        assert preview.status_code == 200 and preview.headers["cache-control"] == "no-store"
        text = text_of(preview.text)
        assert "chưa có gì thay đổi" in text and f"Sự kiện số {point} của lịch sử quy trình" in text
        commands = preview.text.split('id="reset-commands"')[1].split("<tbody>")[1].split("</tbody>")[0]
        rows = [re.findall(r"<td>(?:<code>)?([^<]*)", row) for row in re.findall(r"<tr>(.*?)</tr>", commands, re.S)]
        assert [row[:2] for row in rows] == [["accept", "accept"]]
        assert await stream_types(store, case_id) == [e.type for e in before]  # a preview changes nothing
        # The language switch of the preview goes back to the queue, not to the form's address.
        assert 'href="/console/stalled?kind=complaint&amp;lang=en"' in preview.text

        confirm = preview.text.split('id="reset-confirm"')[1].split("</form>")[0]
        action = re.search(r'action="([^"]+)"', preview.text.split('<form method="post"')[-1])
        assert action and action.group(1) == f"/console/stalled/cases/{case_id}/reset?kind=complaint"
        fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', confirm))
        assert fields["to_event_id"] == str(point) and "dry_run" not in fields
        assert fields["nonce"] != NONCE and REASON in confirm
        done = await operator.post_form(action.group(1), {**fields, "reason": REASON})
        assert done.status_code == 303 and urlsplit(done.headers["location"]).query == "kind=complaint"
        flash = await flash_after(operator, done.headers["location"])
        assert f"Đã thực hiện “Chạy lại từ điểm tốt” cho hồ sơ {case_id}" in flash
        assert f"Chạy lại từ sự kiện số {point}" in flash
    types = await wait_for_types(store, case_id, ["RepairRecorded"])
    assert types == [e.type for e in before] + ["RepairRecorded"]
    after = await store.read_stream(case_id)
    assert [e.hash for e in after[:len(before)]] == [e.hash for e in before]  # the record was only appended to
    assert (await store.verify(case_id)).ok


async def point_before_last_command(temporal_env: WorkflowEnvironment, case_id: str) -> int:
    """The last completed workflow task before the case's last command was accepted (its `accept`)."""
    events = (await temporal_env.client.get_workflow_handle(case_id).fetch_history()).events
    last = max(e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    return max(e.event_id for e in events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < last)


async def test_a_reset_whose_record_is_refused_is_never_reported_as_changing_nothing(
    api: Api, tokens: Tokens, store: EventStore, temporal_env: WorkflowEnvironment
) -> None:
    """A reset to the first workflow task, before the case was opened: the workflow is reset, and `ops` then
    has its record refused (`case.opening`). The page must not say "nothing was changed"."""
    case_id = await open_case(api, tokens)
    client = temporal_env.client
    run_before = (await client.get_workflow_handle(case_id).describe()).run_id
    events = (await client.get_workflow_handle(case_id).fetch_history()).events
    first = next(e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    async with signed_in(api.app, tokens.operator) as operator:
        csrf = csrf_of((await operator.page("/console/stalled")).text)
        done = await operator.post_form(f"/console/stalled/cases/{case_id}/reset",
                                        {"csrf": csrf, "reason": REASON, "to_event_id": str(first), "nonce": NONCE})
        flash = await flash_after(operator, done.headers["location"])
    assert (await client.get_workflow_handle(case_id).describe()).run_id != run_before  # it was reset
    assert "Không có gì thay đổi" not in flash
    recorded = f"Đã thực hiện “Chạy lại từ điểm tốt” cho hồ sơ {case_id}" in flash
    unrecorded = "việc ghi nhận vào hồ sơ bị từ chối" in flash and "Quy tắc case.opening" in flash
    assert recorded or unrecorded, flash
    assert (await store.verify(case_id)).ok


async def test_a_case_stalled_by_a_fault_is_queued_bannered_and_retried_in_bulk_with_a_report(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_case(api, tokens)
    fault = AppendFault(store, case_id)
    await fault.inject()
    sent = await stuck_command(api, tokens.lead, case_id)
    queue = "/console/stalled?kind=complaint&reason=activity_failing"
    try:
        async with signed_in(api.app, tokens.operator) as operator:
            for _ in range(100):
                # What the scheduled scan does every minute, done now; the queue reads what it wrote.
                assert (await api.post("/v1/ops/stalled/scan", tokens.operator)).status_code == 200
                page = await operator.page(queue)
                if f'data-case="{case_id}"' in page.text:
                    break
                await asyncio.sleep(0.3)
            finding = page.text.split(f'data-case="{case_id}"')[1].split("</tbody>")[0]
            text = text_of(finding)
            assert "Một bước xử lý liên tục lỗi" in text and AppendFault.MESSAGE in text and "append_events" in text
            assert "Thử lại, Chạy lại từ điểm tốt" in text
            assert "repair-retry" in finding and "repair-reset" in finding and "repair-nudge" not in finding
            assert f'href="/console/cases/{case_id}"' in finding

            # The case page says it is stuck, with a link to the queue; a body sees why, not the machinery.
            case_page = await operator.page(f"/console/cases/{case_id}")
            banner = case_page.text.split('id="stalled-banner"')[1].split("</div>")[0]
            assert "Hồ sơ đang bị ách tắc: Một bước xử lý liên tục lỗi" in banner and AppendFault.MESSAGE in banner
            assert 'href="/console/stalled?kind=complaint"' in banner
            async with signed_in(api.app, tokens.lead) as lead:
                body_banner = (await lead.page(f"/console/cases/{case_id}")).text.split('id="stalled-banner"')[1]
                body_banner = body_banner.split("</div>")[0]
                assert "Một bước xử lý liên tục lỗi" in body_banner and "/console/stalled" not in body_banner
                assert AppendFault.MESSAGE not in body_banner

            # A bulk dry run lists it and does nothing.
            csrf = csrf_of(page.text)
            preview = await operator.post_form("/console/stalled/retry-all?kind=complaint&reason=activity_failing",
                                               {"csrf": csrf, "reason": REASON, "dry_run": "1"})
            assert preview.status_code == 303 and preview.headers["location"] == queue
            flash = await flash_after(operator, queue)
            assert "Chưa thực hiện gì" in flash and f"{case_id} Sẽ được thử lại" in flash
            assert still_waiting(sent)

            await fault.remove()
            bulk = await operator.post_form("/console/stalled/retry-all?kind=complaint&reason=activity_failing",
                                            {"csrf": csrf, "reason": REASON, "limit": "50"})
            flash = await flash_after(operator, bulk.headers["location"])
            assert re.search(r"Thử lại hàng loạt: \d+ hồ sơ khớp; \d+ đã thử lại", flash)
            assert f"{case_id} Đã thử lại" in flash
    finally:
        await fault.remove()
    answer = await final_answer(api, tokens.lead, case_id, sent)
    assert answer.status_code == 200, answer.text
    types = await wait_for_types(store, case_id, ["Assigned", "RepairRecorded"])
    assert types[-2:] == ["Assigned", "RepairRecorded"]
    assert types.count("Assigned") == 1 and types.count("RepairRecorded") == 1
    assert (await store.verify(case_id)).ok
    async with signed_in(api.app, tokens.operator) as operator:
        assert 'id="stalled-banner"' not in (await operator.page(f"/console/cases/{case_id}")).text


def test_a_long_bulk_report_is_cut_to_fit_its_cookie_and_says_how_many_were_left_out() -> None:
    items = [[f"pet-{uuid.uuid4().hex[:20]}", "refused", "repair.retry.nothing_failing",
              f"no step of a case is failing: {uuid.uuid4().hex * 3}"] for _ in range(400)]
    payload = fit({"kind": "bulk", "matched": 400, "items": items}, "items")
    assert len(_encode(payload)) <= MAX_VALUE_BYTES
    assert 0 < len(payload["items"]) < 400 and len(payload["items"]) + payload["items_left_out"] == 400
    assert payload["items"] == items[:len(payload["items"])]
    small = fit({"kind": "bulk", "items": items[:2]}, "items")
    assert small["items"] == items[:2] and small["items_left_out"] == 0
