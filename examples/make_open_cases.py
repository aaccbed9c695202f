"""Write `examples/open-cases.jsonl`: a few hundred open cases of every petition kind, for `danvan import cases`.

    .venv/bin/python examples/make_open_cases.py [--count 300] [--seed 2026] [--output examples/open-cases.jsonl]

Deterministic for a seed: the same file every time. Each case is received on a working day of 2026 before
1 October, and has the steps a case of its kind goes through so far (classified; accepted on a dated decision;
coordination asked; verified; a denunciation extended or suspended; decided; notified), each recorded one to
three days after the act it records is dated, as a clerk does.
"""

from __future__ import annotations

import argparse
import json
import random
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

VN = timezone(timedelta(hours=7))
DISTRICTS = ["Nam Sách", "Kinh Môn", "Chí Linh", "Thanh Hà", "Gia Lộc", "Tứ Kỳ", "Ninh Giang", "Cẩm Giàng"]
COMMUNES = ["Nam Hồng", "An Lâm", "Hiệp Cát", "Thái Tân", "Quốc Tuấn", "Đồng Lạc", "Nam Trung", "Phú Điền"]
NAMES = ["Nguyễn Văn An", "Trần Thị Bích", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Đức", "Vũ Thị Hằng",
         "Đặng Văn Hùng", "Bùi Thị Lan", "Đỗ Văn Minh", "Ngô Thị Nga", "Dương Văn Phúc", "Lý Thị Quỳnh"]
SUBJECTS = {
    "complaint": ["Khiếu nại quyết định thu hồi đất", "Khiếu nại mức bồi thường giải phóng mặt bằng",
                  "Khiếu nại việc cấp giấy chứng nhận quyền sử dụng đất"],
    "denunciation": ["Tố cáo cán bộ xã nhận tiền khi làm thủ tục", "Tố cáo việc san lấp đất nông nghiệp trái phép",
                     "Tố cáo sai phạm trong quản lý quỹ của thôn"],
    "recommendation": ["Kiến nghị sửa chữa đường liên thôn", "Phản ánh ô nhiễm từ cơ sở chăn nuôi",
                       "Kiến nghị lắp đèn chiếu sáng khu dân cư"],
    "voter_petition": ["Cử tri kiến nghị nâng cấp trạm y tế xã", "Cử tri kiến nghị nạo vét kênh tưới tiêu",
                       "Cử tri kiến nghị hỗ trợ hộ nghèo sửa nhà"],
}
KINDS = list(SUBJECTS)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def working_day(rng: random.Random, first: date, last: date) -> date:
    while True:
        day = first + timedelta(days=rng.randrange((last - first).days + 1))
        if day.weekday() < 5:
            return day


def moment(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(8, 16), rng.choice([0, 15, 30, 45])), tzinfo=VN)


class Steps:
    """The steps of one case: each act dated `on`, recorded a few days later, never before the last step."""

    def __init__(self, rng: random.Random, received: datetime) -> None:
        self.rng, self.on, self.last = rng, received.date(), received
        self.items: list[dict[str, Any]] = []

    def add(self, command: dict[str, Any], *, after: int = 1, dated: bool = True) -> None:
        self.on = self.on + timedelta(days=self.rng.randint(after, after + 4))
        recorded = moment(self.on + timedelta(days=self.rng.randint(0, 3)), self.rng)
        recorded = max(recorded, self.last + timedelta(minutes=30))
        self.on = min(self.on, recorded.date())
        self.last = recorded
        if dated:
            command = {**command, "dated": self.on.isoformat()}
        self.items.append({"at": recorded.isoformat(), "command": command})


def case(rng: random.Random, number: int, kind: str) -> dict[str, Any]:
    received = moment(working_day(rng, date(2026, 1, 5), date(2026, 9, 30)), rng)
    name = rng.choice(NAMES)
    district, commune = rng.choice(DISTRICTS), rng.choice(COMMUNES)
    intake = {
        "source": "mot-cua-tinh-cu", "external_ref": f"HD-2026-{number:05d}", "kind": kind,
        "channel": rng.choice(["post", "in_person", "online_portal", "email"]),
        "received_at": received.isoformat(),
        "petitioner": {"name": name, "address": f"Thôn {rng.randint(1, 9)}, xã {commune}, huyện {district}"},
        "subject": rng.choice(SUBJECTS[kind]),
        "content": f"Ông (bà) {name} trình bày: {rng.choice(SUBJECTS[kind]).lower()} tại xã {commune}.",
        "district": district, "commune": commune, "receiving_body": "UBND_TINH",
    }
    steps = Steps(rng, received)
    stage = rng.randint(0, 5)
    if stage >= 1:
        steps.add({"type": "classify", "lead_body": "UBND_TINH", "complex": kind == "denunciation" and stage > 3},
                  after=0, dated=False)
    if stage >= 2:
        steps.add({"type": "accept", "decision_no": f"{number}/QĐ-TL"}, after=1)
    if stage >= 3:
        if kind != "voter_petition":
            steps.add({"type": "record_verification", "findings": "Đã xác minh tại địa phương.",
                       "demand_matches_findings": True}, after=2, dated=False)
        if kind == "denunciation" and stage > 3:
            steps.add({"type": "extend", "decision_no": f"{number}/QĐ-GH", "reason": "Vụ việc phức tạp"}, after=3)
    if stage >= 4 and kind != "voter_petition":
        outcome = {"complaint": "partly_upheld", "denunciation": "no_violation"}.get(kind, "answered")
        steps.add({"type": "decide", "outcome": outcome, "decision_no": f"{number}/QĐ-GQ",
                   "summary": "Giải quyết theo quy định."}, after=3)
    if stage >= 5 and kind != "voter_petition":
        steps.add({"type": "notify", "about": "decision", "recipients": [name], "doc_no": f"{number}/TB"}, after=1)
    document: dict[str, Any] = json.loads(nfc(json.dumps({"intake": intake, "steps": steps.items},
                                                         ensure_ascii=False)))
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", default=str(Path(__file__).with_name("open-cases.jsonl")))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    lines = [json.dumps(case(rng, n, KINDS[n % len(KINDS)]), ensure_ascii=False) for n in range(1, args.count + 1)]
    Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} cases written to {args.output} ({datetime.now(UTC):%Y-%m-%d})")


if __name__ == "__main__":
    main()
