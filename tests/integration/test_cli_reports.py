"""`danvan report`: the text report with Vietnamese heads, one CSV per table (or a ZIP of them), an XLSX with a
sheet per table, and the second half-year as a period. Real PostgreSQL; the CLI's `main` called in-process."""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from pathlib import Path

import openpyxl

from danvan.cli import build_parser
from eventstore import EventStore
from readside.report_output import COLUMNS, TABLES
from tests.cli import Cli
from tests.readside.test_reports import Task, unique, vn

TITLE = ("Đổi mới nội dung, phương thức công tác dân vận của hệ thống chính trị, phát huy vai trò làm chủ của "
         "Nhân dân ở cơ sở")


def test_the_cli_offers_the_tables_the_report_has() -> None:
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    report = commands.choices["report"]
    table = next(a for a in report._actions if a.dest == "table")
    assert tuple(table.choices or ()) == TABLES


async def _plan(store: EventStore) -> str:
    plan = unique("KH-CLI")
    task = await Task(store, plan, "I.1", ["UBND_TINH"], title_vi=TITLE).assign(vn("2026-01-05"))
    await task.request("2026-H1", vn("2026-05-16"))
    return plan


async def test_the_text_report_of_either_half_has_vietnamese_heads(cli: Cli, store: EventStore) -> None:
    plan = await _plan(store)
    status, out, err = await cli.run_async("report", "2026-H1", "--plan", plan)
    assert status == 0, err
    assert out.startswith("Báo cáo sơ kết 6 tháng đầu năm — kỳ 2026-H1\n")
    assert "Báo cáo của các nhiệm vụ (1)" in out and "Chưa nộp" in out and "(giờ Việt Nam, +07:00)" in out
    assert " ".join(out.split()).count(TITLE) == 1  # wrapped over lines, whole
    status, out, err = await cli.run_async("report", "2026-H2", "--plan", plan)
    assert status == 0, err
    assert out.startswith("Số liệu 6 tháng cuối năm — kỳ 2026-H2\nTừ 01/07/2026 đến 31/12/2026; hạn nộp 15/12/2026")
    assert "Chưa yêu cầu" in out


async def test_csv_is_one_table_a_zip_all_of_them_and_xlsx_a_sheet_each(
    cli: Cli, store: EventStore, tmp_path: Path
) -> None:
    plan = await _plan(store)
    as_of = "2099-01-01T00:00:00+07:00"  # after everything recorded; the same as_of gives the same figures
    status, out, err = await cli.run_async("report", "2026-H1", "--plan", plan, "--as-of", as_of,
                                           "--format", "csv", "--table", "tasks")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"), newline="")))
    assert list(rows[0]) == ["period", "as_of", *(c.name for c in COLUMNS["tasks"])]
    assert [(r["task_id"], r["report"], r["title_vi"]) for r in rows] == [("I.1", "missing", TITLE)]
    assert cli.last_stdout_bytes.count(b"\r\n") == len(rows) + 1

    status, _, err = await cli.run_async("report", "2026-H1", "--plan", plan, "--as-of", as_of, "--format", "csv")
    assert status == 0, err
    with zipfile.ZipFile(io.BytesIO(cli.last_stdout_bytes)) as archive:
        assert archive.namelist() == [f"report-2026-H1-{name}.csv" for name in TABLES]
        assert archive.read("report-2026-H1-tasks.csv").decode("utf-8") == out

    target = tmp_path / "báo cáo.xlsx"
    status, out, err = await cli.run_async("report", "2026-H1", "--plan", plan, "--format", "xlsx",
                                           "--output", str(target))
    assert (status, out) == (0, "") and f"written to {target}" in err
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["Thông tin", "Báo cáo của các nhiệm vụ", "Theo cơ quan chủ trì",
                               "Đơn thư theo loại và địa bàn", "Tổng hợp đơn thư theo loại",
                               "Thời hạn quá hạn theo quy định"]

    status, out, err = await cli.run_async("report", "2026-H1", "--format", "xlsx", "--table", "tasks")
    assert (status, out) == (2, "") and "--table: only with --format csv" in err
