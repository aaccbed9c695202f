"""A period's report (`domain.reporting.PeriodReport`) written out: one CSV per table, a ZIP of them, an XLSX
workbook with one sheet per table, and plain-text tables for a terminal.

The report has five tables, each a list of the JSON report: `tasks` (each plan task's report for the period),
`bodies` (per lead body), `petitions` (by kind and district), `petition_totals` (by kind, with the grand
total) and `deadlines_missed` (by kind and rule). Each goes in a file, or a sheet, of its own, with the columns
that belong to it.

- CSV (`table_csv`), for programs: UTF-8 with a byte order mark (so spreadsheet software shows Vietnamese
  diacritics), CRLF line ends, a header row of the JSON field names, codes as the JSON has them. The first two
  columns, `period` and `as_of`, repeat on every row, so a row taken out of its file still says what it counts.
  Dates are ISO 8601, `as_of` and `submitted_at` at Vietnam's offset (+07:00); `lead` joins the lead bodies with
  `; `; `escalated` is `true` or `false`.
- ZIP (`report_zip`): the five CSVs, `report-<period>-<table>.csv`, with fixed entry times, so the same report
  gives the same bytes.
- XLSX (`report_xlsx`), for people: a sheet `Thông tin` saying what the report is, then one sheet per table with
  Vietnamese column heads and values (`Nộp đúng hạn`, `Khiếu nại`), numbers as numbers, dates as dates
  (dd/mm/yyyy) and instants in Vietnam's time; a header row that stays in view and filters on every column.
  Written with openpyxl, the library for the format (a workbook is a ZIP of XML parts: not a thing to write by hand).
- Text (`report_table`), for a terminal: the same Vietnamese heads and values; a task's title on the lines under
  its row, wrapped to the width, and heads and lead lists wrapped when a table would be wider than that.

A text cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return)
is written with a `'` before it in a CSV, and as a plain string, never a formula, in an XLSX.
"""

from __future__ import annotations

import csv
import io
import textwrap
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from domain.calendar import VN_TZ
from domain.reporting import BodyFigures, DeadlineFigures, PeriodReport, PetitionFigures, TaskReportFigures

TableName = Literal["tasks", "bodies", "petitions", "petition_totals", "deadlines_missed"]
TABLES: tuple[TableName, ...] = get_args(TableName)

#: Vietnamese names of the codes the tables hold (the console's words for them, `api.console.i18n.LABELS`).
REPORT_VI = {"submitted_on_time": "Nộp đúng hạn", "submitted_late": "Nộp trễ", "missing": "Chưa nộp",
             "not_requested": "Chưa yêu cầu"}
KIND_VI = {"complaint": "Khiếu nại", "denunciation": "Tố cáo", "recommendation": "Kiến nghị, phản ánh",
           "voter_petition": "Kiến nghị cử tri", "all": "Tổng cộng"}

#: What each table is called where people read it (sheet names: at most 31 characters).
TABLE_TITLES_VI: dict[TableName, str] = {
    "tasks": "Báo cáo của các nhiệm vụ",
    "bodies": "Theo cơ quan chủ trì",
    "petitions": "Đơn thư theo loại và địa bàn",
    "petition_totals": "Tổng hợp đơn thư theo loại",
    "deadlines_missed": "Thời hạn quá hạn theo quy định",
}
INFO_SHEET = "Thông tin"

Kind = Literal["text", "code", "int", "date", "instant", "bool"]


@dataclass(frozen=True)
class Column:
    """One column of a table: its CSV name (the JSON field), its Vietnamese head, and how a row gives its value."""

    name: str
    head_vi: str
    kind: Kind
    value: Callable[[Any], Any]
    #: For `code` columns: the Vietnamese name of each code (a code it lacks is shown as it is).
    labels: dict[str, str] | None = None


def _lead(t: TaskReportFigures) -> str:
    return "; ".join(t.lead)


COLUMNS: dict[TableName, tuple[Column, ...]] = {
    "tasks": (
        Column("task_id", "Nhiệm vụ", "text", lambda t: t.task_id),
        Column("title_vi", "Tên nhiệm vụ", "text", lambda t: t.title_vi),
        Column("lead", "Chủ trì", "text", _lead),
        Column("report", "Tình trạng báo cáo", "code", lambda t: t.report, REPORT_VI),
        Column("due_on", "Hạn nộp", "date", lambda t: t.due_on),
        Column("submitted_at", "Ngày nộp", "instant", lambda t: t.submitted_at),
        Column("submitted_by", "Cơ quan nộp", "text", lambda t: t.submitted_by),
        Column("urged", "Số lần đôn đốc", "int", lambda t: t.urged),
        Column("escalated", "Đã báo cáo cấp trên", "bool", lambda t: t.escalated),
        Column("case_id", "Mã hồ sơ", "text", lambda t: t.case_id),
    ),
    "bodies": (
        Column("body", "Cơ quan", "text", lambda b: b.body),
        Column("tasks", "Số nhiệm vụ", "int", lambda b: b.tasks),
        Column("submitted_on_time", "Nộp đúng hạn", "int", lambda b: b.submitted_on_time),
        Column("submitted_late", "Nộp trễ", "int", lambda b: b.submitted_late),
        Column("missing", "Chưa nộp", "int", lambda b: b.missing),
    ),
    "petitions": (
        Column("kind", "Loại", "code", lambda f: f.kind, KIND_VI),
        Column("district", "Địa bàn", "text", lambda f: f.district),
        Column("received", "Tiếp nhận", "int", lambda f: f.received),
        Column("accepted", "Thụ lý", "int", lambda f: f.accepted),
        Column("resolved", "Đã giải quyết", "int", lambda f: f.resolved),
        Column("resolved_on_time", "Đúng hạn", "int", lambda f: f.resolved_on_time),
        Column("resolved_late", "Trễ hạn", "int", lambda f: f.resolved_late),
    ),
}
COLUMNS["petition_totals"] = tuple(c for c in COLUMNS["petitions"] if c.name != "district")
COLUMNS["deadlines_missed"] = (
    Column("kind", "Loại", "code", lambda m: m.kind, KIND_VI),
    Column("rule", "Thời hạn", "text", lambda m: m.rule),
    Column("missed", "Số lần quá hạn", "int", lambda m: m.missed),
)


Row = TaskReportFigures | BodyFigures | PetitionFigures | DeadlineFigures


def table_rows(report: PeriodReport, table: TableName) -> Sequence[Row]:
    rows: Sequence[Row] = getattr(report, table)
    return rows


def check_table(name: str) -> TableName:
    """`name` if it is one of `TABLES`; else a ValueError listing them."""
    if name not in TABLES:
        raise ValueError(f"table {name!r}: must be one of {', '.join(TABLES)}")
    return name


# -- CSV and ZIP --------------------------------------------------------------------------------------------

# A text cell starting with one of these is read as a formula by spreadsheet software (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(column: Column, value: Any) -> str | int:
    if value is None:
        return ""
    if column.kind == "int":
        return int(value)
    if column.kind == "bool":
        return "true" if value else "false"
    if column.kind == "date":
        return str(value.isoformat())
    if column.kind == "instant":
        return str(value.astimezone(VN_TZ).isoformat())
    return _csv_text(str(value))


def table_csv(report: PeriodReport, table: TableName) -> str:
    """One table of the report as CSV (see the module); the BOM is the first character of the text."""
    columns = COLUMNS[table]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "as_of", *(c.name for c in columns)])
    common = [report.period, report.as_of.astimezone(VN_TZ).isoformat()]
    for row in table_rows(report, table):
        writer.writerow([*common, *(_csv_cell(c, c.value(row)) for c in columns)])
    return "\ufeff" + out.getvalue()


def csv_file_name(report: PeriodReport, table: TableName) -> str:
    return f"report-{report.period}-{table}.csv"


#: The entry time of every file in a report's ZIP: fixed, so that the same report gives the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def report_zip(report: PeriodReport) -> bytes:
    """The four tables as CSV files in one ZIP (see the module)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in TABLES:
            entry = zipfile.ZipInfo(csv_file_name(report, table), date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, table_csv(report, table).encode("utf-8"))
    return buffer.getvalue()


# -- XLSX ---------------------------------------------------------------------------------------------------

DATE_FORMAT = "DD/MM/YYYY"
INSTANT_FORMAT = "DD/MM/YYYY HH:MM"


def _xlsx_value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind == "code":
        return (column.labels or {}).get(value, value)
    if column.kind == "bool":
        return "có" if value else "không"
    if column.kind == "instant":  # a workbook has no time zones: Vietnam's wall time, and the head says so
        return value.astimezone(VN_TZ).replace(tzinfo=None)
    return value


def _head(column: Column) -> str:
    return f"{column.head_vi} (giờ Việt Nam)" if column.kind == "instant" else column.head_vi


def _info_rows(report: PeriodReport) -> list[tuple[str, Any]]:
    return [
        ("Kỳ báo cáo", report.period),
        ("Tên báo cáo", report.title_vi),
        ("Từ ngày", report.starts_on),
        ("Đến ngày", report.ends_on),
        ("Hạn nộp", report.due_on),
        ("Kế hoạch", report.plan_id or "Tất cả các kế hoạch"),
        ("Số liệu tính đến (giờ Việt Nam, +07:00)", report.as_of.astimezone(VN_TZ).replace(tzinfo=None)),
        ("Đã tổng hợp chính thức", "có" if report.compiled else "không, số liệu tính tại thời điểm xem"),
    ]


def report_xlsx(report: PeriodReport) -> bytes:
    """The report as an XLSX workbook: `Thông tin`, then one sheet per table (see the module)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    bold = Font(bold=True)
    info = book.active
    assert info is not None
    info.title = INFO_SHEET
    for r, (label, value) in enumerate(_info_rows(report), start=1):
        _put(info.cell(row=r, column=1), label)
        info.cell(row=r, column=1).font = bold
        _put(info.cell(row=r, column=2), value)
    info.column_dimensions["A"].width = 42
    info.column_dimensions["B"].width = 50
    for table in TABLES:
        _table_sheet(book.create_sheet(TABLE_TITLES_VI[table]), report, table, bold)
    book.properties.title = f"{report.title_vi} — {report.period}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _put(cell: Any, value: Any) -> None:
    """`value` into an XLSX cell: text always as text (never a formula, whatever it starts with), dates and
    instants in the report's formats."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    elif isinstance(value, datetime):
        cell.number_format = INSTANT_FORMAT
    elif isinstance(value, date):
        cell.number_format = DATE_FORMAT


def _table_sheet(sheet: Any, report: PeriodReport, table: TableName, bold: Any) -> None:
    """One table of the report on `sheet`: its header row in bold and frozen, a filter, columns as wide as their
    text (up to 60)."""
    from openpyxl.utils import get_column_letter

    columns = COLUMNS[table]
    widths = [len(_head(c)) for c in columns]
    for i, column in enumerate(columns, start=1):
        _put(sheet.cell(row=1, column=i), _head(column))
        sheet.cell(row=1, column=i).font = bold
    for r, row in enumerate(table_rows(report, table), start=2):
        for i, column in enumerate(columns, start=1):
            value = _xlsx_value(column, column.value(row))
            _put(sheet.cell(row=r, column=i), value)
            shown = 16 if isinstance(value, date) else len(str(value)) if value is not None else 0
            widths[i - 1] = max(widths[i - 1], shown)
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(width + 2, 60)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(sheet.max_row, 1)}"


def xlsx_file_name(report: PeriodReport) -> str:
    return f"report-{report.period}.xlsx"


# -- a table for people -------------------------------------------------------------------------------------

#: The narrowest the last column (the lead bodies of a task) gets before the table is let run wider.
MIN_LAST_WIDTH = 16
#: How far a task's title is indented on the lines under its row.
TITLE_INDENT = 4


def _width(text: str) -> int:
    """Columns a text takes in a terminal: combining marks take none (stored text is NFC, but be safe)."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns, broken between words (a word longer than that is cut)."""
    return textwrap.wrap(text, width=max(width, 1), break_long_words=True, break_on_hyphens=False) or [""]


def _two_lines(head: str) -> int:
    """The narrowest width at which `head` takes at most two lines."""
    for width in range(max(_width(word) for word in head.split()), _width(head) + 1):
        if len(_wrap(head, width)) <= 2:
            return width
    return _width(head)


class _Row:
    """A row of a text table: its cells, and text printed under it across the table (a task's title)."""

    def __init__(self, cells: Sequence[str], under: str = "") -> None:
        self.cells, self.under = list(cells), under


def _table(header: Sequence[str], rows: Sequence[_Row], width: int) -> list[str]:
    """Left-aligned columns, two spaces apart, each as wide as its widest cell and its head. When that is wider
    than `width`, the heads wrap onto two lines, and the last column's cells wrap within what is left (at least
    `MIN_LAST_WIDTH`). A row's `under` text is wrapped to `width` below it, indented."""
    last = len(header) - 1
    widths = [max([_width(h), *(_width(r.cells[i]) for r in rows)]) for i, h in enumerate(header)]
    heads = [[h] for h in header]
    if sum(widths) + 2 * last > width:
        widths = [max([_two_lines(h), *(_width(r.cells[i]) for r in rows)]) for i, h in enumerate(header)]
        widths[last] = max(MIN_LAST_WIDTH, min(widths[last], width - sum(widths[:last]) - 2 * last))
        heads = [_wrap(h, widths[i]) for i, h in enumerate(header)]

    def lines(split: Sequence[Sequence[str]]) -> list[str]:
        out = []
        for n in range(max(len(c) for c in split)):
            parts = [c[n] if n < len(c) else "" for c in split]
            padded = [p + " " * (widths[i] - _width(p)) for i, p in enumerate(parts[:-1])]
            out.append("  ".join([*padded, parts[-1]]).rstrip())
        return out

    out = lines(heads)
    for row in rows:
        out += lines([[c] for c in row.cells[:last]] + [_wrap(row.cells[last], widths[last])])
        if row.under:
            out += [" " * TITLE_INDENT + line for line in _wrap(row.under, width - TITLE_INDENT)]
    return out if rows else [*out, "(không có)"]


def _day(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "-"


def _text_value(column: Column, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if column.kind == "code":
        return (column.labels or {}).get(value, str(value))
    if column.kind == "bool":
        return "có" if value else "không"
    if column.kind == "date":
        return _day(value)
    if column.kind == "instant":
        return f"{value.astimezone(VN_TZ):%d/%m/%Y %H:%M}"
    if column.name == "lead":
        return ", ".join(str(value).split("; "))
    return str(value)


#: The columns of each text table, in order: the lead bodies last (they wrap), a task's title under its row.
_TEXT_COLUMNS: dict[TableName, tuple[str, ...]] = {
    "tasks": ("task_id", "report", "due_on", "submitted_at", "submitted_by", "urged", "escalated", "lead"),
    "bodies": tuple(c.name for c in COLUMNS["bodies"]),
    "petitions": tuple(c.name for c in COLUMNS["petitions"]),
    "petition_totals": tuple(c.name for c in COLUMNS["petition_totals"]),
    "deadlines_missed": tuple(c.name for c in COLUMNS["deadlines_missed"]),
}


def _text_table(report: PeriodReport, table: TableName, width: int) -> list[str]:
    by_name = {c.name: c for c in COLUMNS[table]}
    columns = [by_name[name] for name in _TEXT_COLUMNS[table]]
    rows = [_Row([_text_value(c, c.value(row)) for c in columns],
                 under=row.title_vi if isinstance(row, TaskReportFigures) else "")
            for row in table_rows(report, table)]
    return _table([c.head_vi for c in columns], rows, width)


def report_table(report: PeriodReport, width: int = 120) -> str:
    """The report as plain-text tables for a terminal `width` columns wide (see the module): tasks (each with its
    title under it, wrapped), lead bodies, petitions by kind and district, petition totals. Vietnamese text is
    printed as it is; dates are dd/mm/yyyy, instants Vietnam's."""
    as_of = f"{report.as_of.astimezone(VN_TZ):%d/%m/%Y %H:%M}"
    out = [
        f"{report.title_vi} — kỳ {report.period}",
        f"Từ {_day(report.starts_on)} đến {_day(report.ends_on)}; hạn nộp {_day(report.due_on)}",
        f"Kế hoạch: {report.plan_id or 'tất cả các kế hoạch'}",
        f"Số liệu tính đến {as_of} (giờ Việt Nam, +07:00)",
        "Đã tổng hợp chính thức." if report.compiled else "Tính tại thời điểm xem, chưa tổng hợp chính thức.",
    ]
    for table in TABLES:
        title = TABLE_TITLES_VI[table] + (f" ({len(report.tasks)})" if table == "tasks" else "")
        out += ["", title, *_text_table(report, table, width)]
    return "\n".join(out) + "\n"
