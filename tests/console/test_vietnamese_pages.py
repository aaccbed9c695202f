"""A page in Vietnamese is Vietnamese throughout: what the engine writes in English for its logs and the API (a
stall's detail, a sub-deadline's basis, the notes of the rules in force) is shown in the page's language, and an
event's data as labelled fields, never as raw JSON. On the real app, worker, PostgreSQL and Temporal."""

from __future__ import annotations

import asyncio
import inspect
import re
from datetime import UTC, datetime, timedelta

from domain.common import Event
from eventstore import EventStore
from ops.stalled import REASSIGNABLE_KINDS, remedies_for
from workflows import ALL_WORKFLOWS
from workflows.case import CaseMachine

from ..api.support import Api
from .support import Tokens, command, open_petition, signed_in, text_of

#: Words of English that no Vietnamese sentence holds; found outside code (`<code>`), they are English text.
ENGLISH = re.compile(r"\b(the|and|is|of|has|by|since|nobody|not|this|with|from)\b", re.IGNORECASE)
_CODE = re.compile(r"<(code|script|style)\b.*?</\1>", re.DOTALL)


def english_in(page: str) -> list[str]:
    """The English phrases of a page's visible text, each with a little context."""
    text = text_of(_CODE.sub(" ", page))
    return [text[max(m.start() - 40, 0):m.end() + 40] for m in ENGLISH.finditer(text)]


async def test_every_vietnamese_page_a_clerk_a_supervisor_and_an_operator_see_is_in_vietnamese(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    overdue = await open_petition(api, tokens, received_at=(datetime.now(UTC) - timedelta(days=40)).isoformat())
    coordinated = await open_petition(api, tokens)
    for step in ({"type": "classify", "lead_body": "UBND_TINH", "subject_category": "đất đai"},
                 {"type": "accept", "decision_no": "3/QĐ-UBND"},
                 {"type": "request_coordination", "subject": "Cung cấp hồ sơ thu hồi đất",
                  "bodies": [{"body": "SO_TAI_NGUYEN", "side": "state", "days": 5}]}):
        await command(api, tokens.lead, coordinated, step)
    for _ in range(50):  # the overdue case's breach is marked by its own timer, at once
        row = await store.get_case(overdue)
        if row is not None and row.overdue:
            break
        await asyncio.sleep(0.1)
    # The queue reads what the scheduled stalled scan wrote: a look now, as it makes one every minute.
    assert (await api.post("/v1/ops/stalled/scan", tokens.operator)).status_code == 200
    pages = ["/console/cases", f"/console/cases/{overdue}", f"/console/cases/{coordinated}", "/console/plan",
             "/console/reports"]
    watching = ["/console/stalled", "/console/ops", "/console/ops/jobs"]
    for who, extra in ((tokens.supervisor, []), (tokens.lead, ["/console/queue"]), (tokens.operator, watching)):
        async with signed_in(api.app, who) as user:
            for path in pages + extra:
                page = await user.get(path)
                if page.status_code == 403:  # not this role's page
                    continue
                assert page.status_code == 200, (path, page.text[:300])
                assert '<html lang="vi">' in page.text
                assert english_in(page.text) == [], (who[:6], path)

    async with signed_in(api.app, tokens.supervisor) as user:
        case_page = (await user.page(f"/console/cases/{coordinated}")).text
        text = text_of(case_page)
        # The event's data as labelled fields: the intake's subject, the lead body by name, the sub-deadline.
        assert "Trích yếu" in text and "Cơ quan chủ trì" in text and "Lĩnh vực đất đai" in text
        assert "thời hạn do cơ quan chủ trì đặt" in text
        assert "Bộ quy tắc áp dụng" in text and "lịch làm việc" in text
        assert '"title_vi"' not in case_page and "<pre>" not in case_page  # no raw JSON, no rules' notes
        assert len(case_page) < 60_000, len(case_page)
        stalled = await user.get("/console/stalled")
    async with signed_in(api.app, tokens.operator) as operator:
        queue = text_of((await operator.page("/console/stalled")).text)
        assert "chưa có ai xử lý" in queue and "Quá hạn từ" in queue
        english = await operator.page("/console/cases", params={"lang": "en"})
        assert '<html lang="en">' in english.text
        assert "nobody has acted" in text_of((await operator.page("/console/stalled")).text)
    assert stalled.status_code in {200, 403}


def test_every_field_of_every_event_has_a_label_in_both_languages() -> None:
    from api.console.i18n import LABELS

    labels = LABELS["field"]
    missing = set()
    for module in ("domain.petitions.events", "domain.plan_tasks", "domain.front_supervision",
                   "domain.report_cycles", "domain.plan", "domain.repairs", "domain.coordination",
                   "domain.deadlines", "domain.plan_cases", "domain.attachments"):
        mod = __import__(module, fromlist=["_"])
        for cls in vars(mod).values():
            if inspect.isclass(cls) and issubclass(cls, Event) and cls is not Event:
                missing |= {f for f in cls.model_fields if f not in Event.ENVELOPE and f not in labels}
    assert missing == set()
    for vietnamese, english in labels.values():
        assert vietnamese and english and vietnamese != english


def test_reassignment_is_offered_only_for_the_kinds_whose_workflow_carries_it_out() -> None:
    cases = [wf for wf in ALL_WORKFLOWS if issubclass(wf, CaseMachine)]
    carried = {wf.__name__ for wf in cases if wf.reassign is not CaseMachine.reassign}
    assert carried == {"PetitionWorkflow", "PlanTaskWorkflow"}
    assert REASSIGNABLE_KINDS == {"complaint", "denunciation", "recommendation", "voter_petition", "plan_task"}
    assert remedies_for("deadline_idle", "front_supervision") == ["nudge"]
    assert remedies_for("deadline_idle", "complaint") == ["nudge", "reassign"]
