"""A case's page: state, deadlines with their legal basis, the coordination board, the timeline, the integrity
badge, the Temporal Web UI link; the read audit of denunciations and the denouncer's identity."""

from __future__ import annotations

import re
import unicodedata

from api.identities import IdentityVault
from domain.petitions.model import Petitioner
from eventstore import EventStore

from ..api.support import Api, seed_case, token, unique
from .support import Tokens, command, csrf_of, open_petition, signed_in, text_of

SECRET_NAME = "Lê Thị Giấu Tên"
SECRET_PHONE = "0912345678"


async def test_a_complaint_shows_its_state_deadlines_board_timeline_and_integrity(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens)
    await command(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH",
                                              "subject_category": "đất đai"})
    await command(api, tokens.lead, case_id, {"type": "accept", "decision_no": "15/QĐ-UBND"})
    await command(api, tokens.lead, case_id, {
        "type": "request_coordination", "subject": "Cung cấp hồ sơ thu hồi đất",
        "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5},
                   {"body": "UBMTTQ_TINH", "side": "front", "days": 7, "unit": "calendar"}]})
    await command(api, tokens.other_body, case_id, {"type": "respond", "request_id": "R1", "body": "SO_TAI_NGUYEN",
                                                    "response": "Đã gửi hồ sơ."})

    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page(f"/console/cases/{case_id}")
    html = page.text
    text = text_of(html)
    assert '<html lang="vi">' in html
    assert "Khiếu nại về bồi thường đất đai" in text  # the subject, as sent
    assert "Khiếu nại" in text and "Đã thụ lý" in text  # kind and status by name
    # The rule set the case is counted under: the one in force on its day of receipt.
    rules = html.split('id="case-rules">')[1].split("</dd>")[0]
    assert "phiên bản 4 (bộ gốc)" in rules and "Luật Khiếu nại 2011" in rules and "<code>" in rules
    # Deadlines with their legal basis, from the deadline policy.
    assert "Luật Khiếu nại 2011" in text
    deadlines = html.split('id="deadlines-title"')[1].split('id="board-title"')[0]
    assert "complaint.resolution" in deadlines and "Đúng hạn" in deadlines  # acceptance was met on time
    # The board: who owes what, by when, answered or not.
    board = html.split('id="board"')[1].split("</table>")[0]
    rows = re.findall(r"<tr.*?</tr>", board, re.S)
    by_body = {code: row for row in rows for code in ("SO_TAI_NGUYEN", "UBMTTQ_TINH") if f"<code>{code}</code>" in row}
    assert "Đã trả lời" in by_body["SO_TAI_NGUYEN"] and "Cung cấp hồ sơ thu hồi đất" in by_body["SO_TAI_NGUYEN"]
    assert "Chưa trả lời" in by_body["UBMTTQ_TINH"]
    # The timeline: every domain event in order, with actor and legal basis.
    timeline = html.split('id="timeline"')[1].split("</table>")[0]
    types = re.findall(r"<code>([A-Za-z]+)</code>", timeline)
    assert types == ["PetitionReceived", "Classified", "AcceptanceDecided", "CoordinationRequested",
                     "CoordinationResponded"]
    assert "Tiếp nhận đơn" in timeline and "Đề nghị phối hợp" in timeline and "chuyên viên UBND tỉnh" in timeline
    # Integrity and the Temporal Web UI.
    assert re.search(r'id="integrity"[^>]*>✔ Toàn vẹn: chuỗi băm của 5 sự kiện khớp', html)
    settings = api.app.state.settings
    link = re.search(r'id="temporal-link" href="([^"]+)"', html)
    assert link and link.group(1) == f"{settings.temporal_ui_url}/namespaces/default/workflows/{case_id}"

    # With the process: Temporal's steps merged into the same timeline.
    async with signed_in(api.app, tokens.operator) as operator:
        merged = await operator.page(f"/console/cases/{case_id}", params={"process": "true"})
    assert 'class="process"' in merged.text and "WorkflowExecutionStarted" in merged.text


async def test_a_tampered_event_turns_the_badge_red_and_names_the_version(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await seed_case(store, events=4, lead_body="UBND_TINH")
    async with signed_in(api.app, tokens.lead) as user:
        assert "✔" in (await user.page(f"/console/cases/{case_id}")).text
        await store.pool.execute(
            """UPDATE events SET data = data || '{"n": 99}'::jsonb WHERE stream_id = $1 AND version = 3""", case_id)
        page = await user.page(f"/console/cases/{case_id}")
        badge = text_of(page.text.split('id="integrity"')[1].split("</span>")[0])
        assert "✘ KHÔNG toàn vẹn từ sự kiện số 3" in badge
        english = await user.page(f"/console/cases/{case_id}", params={"lang": "en"})
        assert "NOT verified from event 3" in english.text


async def test_reading_a_denunciation_through_the_console_is_recorded_like_the_api(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens, kind="denunciation",
                                  petitioner={"name": SECRET_NAME, "address": "Số 3 phố Vắng", "phone": SECRET_PHONE})
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        page = await supervisor.page(f"/console/cases/{case_id}")
        assert "Lượt xem hồ sơ tố cáo này đã được ghi vào nhật ký truy cập." in page.text
        assert SECRET_NAME not in page.text and SECRET_PHONE not in page.text
    async with signed_in(api.app, tokens.lead) as lead:
        await lead.page(f"/console/cases/{case_id}", params={"process": "true"})
    async with signed_in(api.app, tokens.other_body) as other:  # refused: not a read
        assert (await other.get(f"/console/cases/{case_id}")).status_code == 403
    await api.get(f"/v1/cases/{case_id}", tokens.supervisor)  # and the API's own read, for comparison

    reads = (await api.get(f"/v1/cases/{case_id}/reads", tokens.supervisor)).json()["reads"]
    seen = [(r["reader"], r["role"], r["body"], r["what"]) for r in reads]
    assert seen == [
        ("giám sát viên Ban Dân vận", "supervisor", None, "case"),
        ("chuyên viên UBND tỉnh", "body", "UBND_TINH", "console+process"),
        ("giám sát viên Ban Dân vận", "supervisor", None, "console"),
    ]  # newest first
    assert reads[0]["token_id"] == reads[2]["token_id"] and len(reads[1]["token_id"]) == 12

    complaint = await seed_case(store, kind="complaint", lead_body="UBND_TINH")
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        await supervisor.page(f"/console/cases/{complaint}")
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads WHERE case_id = $1", complaint) == 0


async def identity_reads(store: EventStore, case_id: str) -> list[tuple[str, str, str | None, str]]:
    rows = await store.pool.fetch("SELECT reader, role, body, purpose FROM identity_reads WHERE case_id = $1 "
                                  "ORDER BY id", case_id)
    return [(r["reader"], r["role"], r["body"], r["purpose"]) for r in rows]


async def test_the_denouncers_identity_is_shown_only_to_the_lead_body_and_supervisors_with_a_recorded_purpose(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    vault: IdentityVault = api.app.state.vault
    case_id = unique("pet-sealed")
    sealed = await vault.seal(case_id, tokens.source, unique("ref"), Petitioner(name=SECRET_NAME, phone=SECRET_PHONE))
    await seed_case(store, case_id=case_id, kind="denunciation", lead_body="UBND_TINH", bodies=["SO_TAI_NGUYEN"],
                    summary={"petitioner_ref": sealed.ref}, title="Tố cáo cán bộ địa chính")
    purpose = "Thông báo thụ lý tố cáo cho người tố cáo"

    # A coordinating body and an operator read the case but are not offered the identity, and are refused it.
    for tok in (tokens.other_body, tokens.operator):
        async with signed_in(api.app, tok) as reader:
            page = await reader.page(f"/console/cases/{case_id}")
            assert "Bạn không được xem danh tính người tố cáo" in page.text and 'name="purpose"' not in page.text
            refused = await reader.post_form(f"/console/cases/{case_id}/identity",
                                             {"csrf": csrf_of(page.text), "purpose": purpose})
            assert refused.status_code == 403
            assert sealed.ref is not None
            assert SECRET_NAME not in refused.text and sealed.ref not in refused.text
    assert await identity_reads(store, case_id) == []

    async with signed_in(api.app, tokens.lead) as lead:
        page = await lead.page(f"/console/cases/{case_id}")
        assert 'name="purpose"' in page.text and SECRET_NAME not in page.text
        csrf = csrf_of(page.text)
        # Without the CSRF token, or with too short a purpose, nothing is revealed or recorded.
        forged = await lead.post_form(f"/console/cases/{case_id}/identity", {"purpose": purpose})
        assert forged.status_code == 403 and SECRET_NAME not in forged.text
        short = await lead.post_form(f"/console/cases/{case_id}/identity", {"csrf": csrf, "purpose": "xem"})
        assert short.status_code == 422 and SECRET_NAME not in short.text
        assert await identity_reads(store, case_id) == []
        shown = await lead.post_form(f"/console/cases/{case_id}/identity", {"csrf": csrf, "purpose": purpose})
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        assert SECRET_NAME in shown.text and SECRET_PHONE in shown.text
        assert "Lần xem danh tính này đã được ghi lại cùng mục đích." in shown.text
        # Reloading the case page does not show it again.
        assert SECRET_NAME not in (await lead.page(f"/console/cases/{case_id}")).text
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        page = await supervisor.page(f"/console/cases/{case_id}")
        shown = await supervisor.post_form(f"/console/cases/{case_id}/identity",
                                           {"csrf": csrf_of(page.text), "purpose": "Kiểm tra việc bảo vệ người tố cáo"})
        assert SECRET_NAME in shown.text
    assert await identity_reads(store, case_id) == [
        ("chuyên viên UBND tỉnh", "body", "UBND_TINH", purpose),
        ("giám sát viên Ban Dân vận", "supervisor", None, "Kiểm tra việc bảo vệ người tố cáo"),
    ]
    assert all(unicodedata.is_normalized("NFC", p) for *_, p in await identity_reads(store, case_id))


async def test_a_plan_task_shows_what_each_body_owes(api: Api, tokens: Tokens, store: EventStore) -> None:
    # A plan task case as its projection row describes it (the plan import itself is covered by test_plan_and_reports).
    case_id = unique("task-console")
    await seed_case(store, case_id=case_id, kind="plan_task", status="report_due", lead_body="UBND_TINH",
                    bodies=["UBND_TINH", "UBMTTQ_TINH"], title="Quán triệt, triển khai Nghị quyết", summary={
                        "plan_id": "KH-01", "task_id": "II.1", "lead": ["UBND_TINH"], "coordinators": ["UBMTTQ_TINH"],
                        "acknowledged": ["UBND_TINH"],
                        "reports": {"2026-H1": {"period": "2026-H1", "due_on": "2026-06-15",
                                                "from_bodies": ["UBND_TINH"], "submitted_at": None}},
                        "deadlines": [
                            {"key": "ack.UBMTTQ_TINH", "due_on": "2020-01-10", "legal_basis": "Kế hoạch, mục III",
                             "statutory": False, "outcome": "pending", "breached": True},
                            {"key": "ack.UBND_TINH", "due_on": "2020-01-10", "legal_basis": "Kế hoạch, mục III",
                             "statutory": False, "outcome": "on_time", "breached": False},
                            {"key": "report.2026-H1", "due_on": "2026-06-15", "legal_basis": "Kế hoạch, mục III",
                             "statutory": False, "outcome": "pending", "breached": False},
                        ]})
    other = await token(store, "body", "UBMTTQ_TINH", label="cán bộ MTTQ tỉnh")
    async with signed_in(api.app, other) as front:
        page = await front.page(f"/console/cases/{case_id}")
    board = page.text.split('id="board"')[1].split("</table>")[0]
    rows = re.findall(r"<tr.*?</tr>", board, re.S)[1:]
    assert len(rows) == 3
    late = next(r for r in rows if "<code>UBMTTQ_TINH</code>" in r)
    assert 'class="overdue"' in late and "Xác nhận nhận nhiệm vụ" in late and "Chưa trả lời" in late
    assert any("Báo cáo kỳ 2026-H1" in r and "<code>UBND_TINH</code>" in r for r in rows)
    assert "không phải thời hạn luật định" in page.text


async def test_a_complaints_petitioner_is_offered_to_its_lead_body_and_a_reclassified_one_is_shown_as_a_denouncer(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_petition(api, tokens, petitioner={"name": SECRET_NAME, "address": "Số 5 phố Hàng",
                                                           "phone": SECRET_PHONE})
    await command(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    await command(api, tokens.lead, case_id, {"type": "accept", "decision_no": "16/QĐ-UBND"})
    await command(api, tokens.lead, case_id, {"type": "request_coordination", "subject": "Hồ sơ đất",
                                              "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5}]})
    async with signed_in(api.app, tokens.other_body) as other:
        page = await other.page(f"/console/cases/{case_id}")
        assert "Bạn không được xem danh tính người gửi đơn" in page.text and 'name="purpose"' not in page.text
        assert SECRET_NAME not in page.text and SECRET_PHONE not in page.text
    async with signed_in(api.app, tokens.lead) as lead:
        page = await lead.page(f"/console/cases/{case_id}")
        assert "Người gửi đơn" in page.text and SECRET_NAME not in page.text
        shown = await lead.post_form(f"/console/cases/{case_id}/identity",
                                     {"csrf": csrf_of(page.text), "purpose": "Mời người khiếu nại đối thoại"})
        assert shown.status_code == 200 and SECRET_NAME in shown.text and SECRET_PHONE in shown.text
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads WHERE case_id = $1", case_id) == 0

    denounced = await open_petition(api, tokens, petitioner={"name": SECRET_NAME, "address": "Số 5 phố Hàng"})
    await command(api, tokens.lead, denounced, {"type": "classify", "kind": "denunciation", "lead_body": "UBND_TINH"})
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        page = await supervisor.page(f"/console/cases/{denounced}")
        assert "Người tố cáo" in page.text and "Lượt xem hồ sơ tố cáo này đã được ghi" in page.text
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads WHERE case_id = $1", denounced) == 1
