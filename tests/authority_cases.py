"""The cast and the commands of the authority tests (`tests/unit/test_authority.py`, `tests/api/test_authority.py`).

One body per relation, so that each sender holds exactly one relation to the case; and a sample of every command
of every kind, chosen so that a sender the table allows is refused by the state rules where it can be (409), and
otherwise changes nothing that decides a relation (no new lead, no new coordinating body).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.authority import Relation

R = Relation

#: A petition: received by the citizen reception board, led by the provincial inspectorate (whose superior is the
#: provincial People's Committee), the land department asked to coordinate.
PETITION_BODIES: dict[Relation, str] = {
    R.RECEIVING: "BAN_TCD", R.LEAD: "THANH_TRA_TINH", R.COORDINATING: "SO_TAI_NGUYEN", R.FRONT: "UBMTTQ_TINH",
    R.COMMISSION: "BTGDV_TU", R.SUPERIOR: "UBND_TINH",
}
#: A plan task: led by the home affairs department (superior: the People's Committee), the farmers' association
#: coordinating, issued by the commission.
TASK_BODIES: dict[Relation, str] = {
    R.LEAD: "SO_NOI_VU", R.COORDINATING: "HND", R.FRONT: "UBMTTQ_TINH", R.COMMISSION: "BTGDV_TU",
    R.SUPERIOR: "UBND_TINH",
}
#: A body with no tie to either case.
STRANGER = "CA_TINH"

Sample = Callable[[str | None], dict[str, Any]]
#: A file as the upload route records it (through the API it is sent as a file, never as this JSON).
ATTACH: dict[str, Any] = {"type": "attach", "name": "Biên bản xác minh.pdf", "media_type": "application/pdf",
                          "size": 1234, "sha256": "e" * 64, "category": "evidence"}


def _petition_samples(lead: str, coordinating: str) -> dict[str, Sample]:
    def own(body: str | None) -> str:
        return body or coordinating

    return {
        "classify": lambda b: {"type": "classify"},
        "split": lambda b: {"type": "split", "parts": [
            {"kind": "complaint", "subject": "Phần một", "content": "Nội dung một"},
            {"kind": "recommendation", "subject": "Phần hai", "content": "Nội dung hai"}]},
        "accept": lambda b: {"type": "accept", "decision_no": "1/QĐ-TTr"},
        "reject": lambda b: {"type": "reject", "reasons": ["Không thuộc thẩm quyền"]},
        "forward": lambda b: {"type": "forward", "to_body": "SO_NOI_VU", "notice_no": "2/TB"},
        "redirect": lambda b: {"type": "redirect", "guidance": "Đề nghị gửi đơn đến UBND xã"},
        "assign": lambda b: {"type": "assign", "body": lead},  # the same body, no officer: `assign.unchanged`
        "request_coordination": lambda b: {"type": "request_coordination", "subject": "Cung cấp hồ sơ",
                                           "bodies": [{"body": lead, "side": "state", "days": 5}]},
        "respond": lambda b: {"type": "respond", "request_id": "R1", "body": own(b), "response": "Đã gửi hồ sơ"},
        "record_verification": lambda b: {"type": "record_verification", "findings": "Đã xác minh tại thực địa"},
        "record_dialogue": lambda b: {"type": "record_dialogue", "held_on": "2026-11-25",
                                      "participants": ["Bà Lan"], "summary": "Đối thoại công khai"},
        "extend": lambda b: {"type": "extend", "decision_no": "3/QĐ", "reason": "Vụ việc phức tạp"},
        "suspend": lambda b: {"type": "suspend"},  # no reason: `suspend.reason`
        "resume": lambda b: {"type": "resume"},
        "withdraw": lambda b: {"type": "withdraw"},
        "decide": lambda b: {"type": "decide", "outcome": "answered", "decision_no": "4/QĐ", "summary": "Trả lời"},
        "notify": lambda b: {"type": "notify", "about": "acceptance", "recipients": ["Bà Lan"], "doc_no": "5/TB"},
        "record_implementation": lambda b: {"type": "record_implementation", "summary": "Đã thực hiện"},
        "record_external_result": lambda b: {"type": "record_external_result", "result": "Đã giải quyết"},
        "appeal": lambda b: {"type": "appeal"},
        "close": lambda b: {"type": "close"},
        "archive": lambda b: {"type": "archive", "archive_ref": "HS-2026-0001"},
        "start_front_supervision": lambda b: {"type": "start_front_supervision"},
        "attach": lambda b: ATTACH,
    }


def _task_samples(lead: str, coordinating: str) -> dict[str, Sample]:
    def own(body: str | None, default: str = lead) -> str:
        return body or default

    return {
        "acknowledge": lambda b: {"type": "acknowledge", "body": own(b)},
        "request_coordination": lambda b: {"type": "request_coordination", "subject": "Số liệu",
                                           "bodies": [{"body": lead, "side": "state", "days": 5}]},
        "respond": lambda b: {"type": "respond", "request_id": "R1", "body": own(b, coordinating),
                              "response": "Đã gửi số liệu"},
        "record_progress": lambda b: {"type": "record_progress", "body": own(b), "summary": "Đã tổ chức hội nghị"},
        "request_report": lambda b: {"type": "request_report", "period": "2026"},
        "submit_report": lambda b: {"type": "submit_report", "period": "2026", "body": own(b),
                                    "summary": "Báo cáo năm"},
        "review_report": lambda b: {"type": "review_report", "period": "2026", "verdict": "returned"},
        "urge": lambda b: {"type": "urge", "period": "2026", "doc_no": "1/CV-BDV"},
        "interim_review": lambda b: {"type": "interim_review", "summary": "Sơ kết"},
        "final_review": lambda b: {"type": "final_review", "summary": "Tổng kết"},
        "close": lambda b: {"type": "close", "approval_no": "9-QĐ/TU"},
        "reassign": lambda b: {"type": "reassign", "from_body": lead, "to_body": lead, "reason": "Sắp xếp"},
        "submit_subplan": lambda b: {"type": "submit_subplan", "body": own(b), "doc_ref": "KH-01"},
        "attach": lambda b: ATTACH,
    }


PETITION_SAMPLES = _petition_samples(PETITION_BODIES[R.LEAD], PETITION_BODIES[R.COORDINATING])
TASK_SAMPLES = _task_samples(TASK_BODIES[R.LEAD], TASK_BODIES[R.COORDINATING])

#: Sent last, in this order: they end the case (or its handling), after which only state refusals remain.
PETITION_LAST = ["withdraw", "close", "archive"]
TASK_LAST = ["final_review", "close"]


def in_sending_order(commands: list[str], last: list[str]) -> list[str]:
    return [c for c in commands if c not in last] + [c for c in last if c in commands]
