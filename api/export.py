"""The case list as a file: CSV (UTF-8 with a byte-order mark, so that a spreadsheet opens Vietnamese as
written) or XLSX (one sheet, written by openpyxl, the library that writes the format), with column heads in
Vietnamese or English. Every string cell holding what a spreadsheet would run as a formula (`=`, `+`, `-`, `@`
first) is written as text, so that a case's subject can never become a formula in a clerk's spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from domain.calendar import VN_TZ
from eventstore import CaseRecord

Lang = Literal["vi", "en"]

#: (column, Vietnamese head, English head)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("case_id", "Mã hồ sơ", "Case id"),
    ("kind", "Loại", "Kind"),
    ("status", "Trạng thái", "Status"),
    ("title", "Trích yếu", "Subject"),
    ("lead_body", "Cơ quan chủ trì", "Lead body"),
    ("bodies", "Cơ quan liên quan", "Bodies"),
    ("district", "Địa bàn", "District"),
    ("commune", "Xã, phường", "Commune"),
    ("source", "Hệ thống gửi", "Source"),
    ("external_ref", "Số hiệu", "Reference"),
    ("received_at", "Ngày nhận (giờ Việt Nam)", "Received (Vietnam time)"),
    ("due_at", "Hạn tiếp theo (giờ Việt Nam)", "Next due (Vietnam time)"),
    ("overdue", "Quá hạn", "Overdue"),
)
#: The most rows one export holds; a larger list is refused, to be narrowed by its filters.
MAX_ROWS = 20_000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(case: CaseRecord, column: str, lang: Lang) -> Any:
    value = getattr(case, column)
    if isinstance(value, datetime):
        return value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return ("Có" if value else "Không") if lang == "vi" else ("yes" if value else "no")
    if isinstance(value, list):
        return "; ".join(value)
    return value


def _safe(value: Any) -> Any:
    """A string a spreadsheet would read as a formula, written as text."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def rows(cases: Iterable[CaseRecord], lang: Lang) -> Iterable[list[Any]]:
    index = 1 if lang == "vi" else 2
    yield [c[index] for c in COLUMNS]
    for case in cases:
        yield [_safe(_cell(case, c[0], lang)) for c in COLUMNS]


def as_csv(cases: Sequence[CaseRecord], lang: Lang) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows(cases, lang):
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(cases: Sequence[CaseRecord], lang: Lang) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Hồ sơ" if lang == "vi" else "Cases")
    for row in rows(cases, lang):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
