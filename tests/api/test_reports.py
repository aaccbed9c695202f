"""`GET /v1/reports/{period}`: JSON and CSV, compiled reports given back as stored, bad periods, roles."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import UTC, datetime

import openpyxl
import pytest
import pytest_asyncio

from domain.calendar import in_vietnam
from domain.reporting import PeriodReport, ReportCalendar
from eventstore import EventStore, NewEvent
from readside.report_output import COLUMNS, TABLE_TITLES_VI, TABLES
from readside.reports import period_report, report_stream_id
from tests.readside.test_reports import CALENDAR, H1, Petition, Task, db_now, vn

from .support import Api, token, unique

A, B = "BAN_TUYEN_GIAO", "UBND_TINH"
TITLE = "Đổi mới nội dung, phương thức công tác dân vận của hệ thống chính trị"


@pytest_asyncio.fixture(scope="module")
async def plan(store: EventStore) -> str:
    """A plan with three tasks: one led by A (on time), one by B (missing), one by both (not requested)."""
    plan_id = unique("KH-API")
    on_time = await Task(store, plan_id, "I.1", [A], title_vi=TITLE).assign(vn("2026-01-05"))
    await on_time.request("2026-H1", vn("2026-05-16"))
    await on_time.submit("2026-H1", vn("2026-06-02"))
    missing = await Task(store, plan_id, "I.2", [B]).assign(vn("2026-01-05"))
    await missing.request("2026-H1", vn("2026-05-16"))
    await Task(store, plan_id, "I.3", [A, B]).assign(vn("2026-01-05"))
    await Petition(store, unique("Huyện Bình Giang")).receive(vn("2026-02-02"))
    return plan_id


async def supervisor(store: EventStore) -> str:
    return await token(store, "supervisor")


async def test_the_report_as_json_holds_the_plans_tasks_bodies_and_petitions(api: Api, store: EventStore,
                                                                             plan: str) -> None:
    response = await api.get("/v1/reports/2026-H1", await supervisor(store), params={"plan": plan})
    assert response.status_code == 200, response.text
    report = PeriodReport.model_validate(response.json())
    assert (report.period, report.plan_id, report.compiled) == ("2026-H1", plan, False)
    assert report.title_vi == "Báo cáo sơ kết 6 tháng đầu năm"
    assert [(t.task_id, t.report) for t in report.tasks] == [
        ("I.1", "submitted_on_time"), ("I.2", "missing"), ("I.3", "not_requested")]
    assert report.tasks[0].title_vi == TITLE
    assert [(b.body, b.tasks, b.submitted_on_time, b.missing) for b in report.bodies] == [(A, 2, 1, 0), (B, 2, 0, 1)]
    assert report.petition_totals[-1].kind == "all" and report.petition_totals[-1].received >= 1


async def test_a_given_as_of_gives_the_figures_of_that_instant(api: Api, store: EventStore, plan: str) -> None:
    as_of = await db_now(store)
    await Task(store, plan, "I.9", [A]).assign(vn("2026-01-05"))  # recorded after as_of: not counted
    response = await api.get("/v1/reports/2026-H1", await supervisor(store),
                             params={"plan": plan, "as_of": as_of.isoformat()})
    assert response.status_code == 200, response.text
    expected = await period_report(store.pool, H1, plan_id=plan, as_of=as_of)
    assert response.json() == in_vietnam(expected).model_dump(mode="json")  # the same instants, at +07:00
    assert "I.9" not in [t["task_id"] for t in response.json()["tasks"]]


async def test_a_table_as_csv_is_an_attachment_of_its_own_with_a_bom_and_crlf(
    api: Api, store: EventStore, plan: str
) -> None:
    tok = await supervisor(store)
    as_of = datetime.now(UTC).isoformat()
    response = await api.get("/v1/reports/2026-H1", tok, params={"plan": plan, "format": "csv", "table": "tasks",
                                                                "as_of": as_of})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="report-2026-H1-tasks.csv"'
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw.count(b"\n")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == ["period", "as_of", *(c.name for c in COLUMNS["tasks"])]
    assert [r["task_id"] for r in rows][:3] == ["I.1", "I.2", "I.3"]
    assert TITLE in [r["title_vi"] for r in rows]

    every = await api.get("/v1/reports/2026-H1", tok, params={"plan": plan, "format": "csv", "as_of": as_of})
    assert every.status_code == 200, every.text
    assert every.headers["content-type"] == "application/zip"
    assert every.headers["content-disposition"] == 'attachment; filename="report-2026-H1-csv.zip"'
    with zipfile.ZipFile(io.BytesIO(every.content)) as archive:
        assert archive.namelist() == [f"report-2026-H1-{name}.csv" for name in TABLES]
        assert archive.read("report-2026-H1-tasks.csv") == raw  # the very same file

    book = await api.get("/v1/reports/2026-H1", tok, params={"plan": plan, "format": "xlsx", "as_of": as_of})
    assert book.status_code == 200, book.text
    assert book.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert book.headers["content-disposition"] == 'attachment; filename="report-2026-H1.xlsx"'
    sheets = openpyxl.load_workbook(io.BytesIO(book.content))
    assert sheets.sheetnames[1:] == [TABLE_TITLES_VI[name] for name in TABLES]
    assert TITLE in [row[1] for row in sheets[TABLE_TITLES_VI["tasks"]].iter_rows(min_row=2, values_only=True)]


@pytest.mark.parametrize(("params", "rule"), [
    ({"format": "csv", "table": "everything"}, "literal_error"),
    ({"format": "xlsx", "table": "tasks"}, "table_needs_csv"),
    ({"table": "tasks"}, "table_needs_csv"),
])
async def test_a_table_that_is_not_one_or_without_csv_is_422_naming_table(
    api: Api, store: EventStore, params: dict[str, str], rule: str
) -> None:
    response = await api.get("/v1/reports/2026-H1", await supervisor(store), params=params)
    assert response.status_code == 422, response.text
    (field,) = response.json()["error"]["fields"]
    assert (field["field"], field["rule"]) == ("table", rule)


async def test_the_second_half_of_the_year_is_a_period_too(api: Api, store: EventStore, plan: str) -> None:
    response = await api.get("/v1/reports/2026-H2", await supervisor(store), params={"plan": plan})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["starts_on"], report["ends_on"], report["due_on"]) == ("2026-07-01", "2026-12-31", "2026-12-15")
    assert report["title_vi"] == "Số liệu 6 tháng cuối năm"
    assert {t["report"] for t in report["tasks"]} == {"not_requested"}  # no report of its own is requested


def compiled_event(report: PeriodReport) -> NewEvent:
    """What a report cycle stores: a `ReportCompiled` event holding the report (`domain.report_cycles`)."""
    return NewEvent(event_id=uuid.uuid4(), type="ReportCompiled", occurred_at=datetime.now(UTC),
                    actor="system:danvan", data={"report": report.model_dump(mode="json")})


async def test_a_compiled_report_is_given_back_as_stored(api: Api, store: EventStore, plan: str) -> None:
    stored = (await period_report(store.pool, H1, plan_id=plan, as_of=await db_now(store))).model_copy(
        update={"compiled": True})
    await store.append(report_stream_id(plan, "2026-H1"), 0, [compiled_event(stored)])
    await Task(store, plan, "I.8", [A]).assign(vn("2026-01-05"))  # after the compilation: not in it

    response = await api.get("/v1/reports/2026-H1", await supervisor(store), params={"plan": plan})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["compiled"] is True
    assert body == in_vietnam(stored).model_dump(mode="json")
    assert "I.8" not in [t["task_id"] for t in body["tasks"]]
    # Asking for an instant computes, whatever is compiled.
    now = await api.get("/v1/reports/2026-H1", await supervisor(store),
                        params={"plan": plan, "as_of": datetime.now(UTC).isoformat()})
    assert now.json()["compiled"] is False and "I.8" in [t["task_id"] for t in now.json()["tasks"]]


async def test_without_a_plan_the_only_compiled_report_of_the_period_is_given(api: Api, store: EventStore) -> None:
    # Periods far from any other test's, so that the streams of the period are this test's only.
    year = 2040 + uuid.uuid4().int % 50
    period = str(year)
    first, second = unique("KH-ONE"), unique("KH-TWO")
    report = PeriodReport(period=period, title_vi="Báo cáo tổng kết năm", starts_on=f"{year}-01-01",
                          ends_on=f"{year}-12-31", due_on=f"{year}-12-15", plan_id=first,
                          as_of=datetime(year + 1, 1, 2, tzinfo=UTC), compiled=True)
    await store.append(report_stream_id(first, period), 0, [compiled_event(report)])
    tok = await supervisor(store)
    only = (await api.get(f"/v1/reports/{period}", tok)).json()
    assert (only["compiled"], only["plan_id"]) == (True, first)

    await store.append(report_stream_id(second, period), 0,
                       [compiled_event(report.model_copy(update={"plan_id": second}))])
    both = (await api.get(f"/v1/reports/{period}", tok)).json()
    assert (both["compiled"], both["plan_id"]) == (False, None)


@pytest.mark.parametrize("period", ["2026-H3", "26", "2026-h1", "2026-S1"])
async def test_a_malformed_period_is_422_naming_period(api: Api, store: EventStore, period: str) -> None:
    response = await api.get(f"/v1/reports/{period}", await supervisor(store))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert [f["field"] for f in error["fields"]] == ["period"]


async def test_a_period_the_calendar_does_not_know_is_422_naming_period(api: Api, store: EventStore) -> None:
    only_years = ReportCalendar.model_validate({
        **CALENDAR.model_dump(), "periods": {"year": CALENDAR.periods["year"].model_dump()}})
    previous = getattr(api.app.state, "report_calendar", None)
    api.app.state.report_calendar = only_years
    try:
        response = await api.get("/v1/reports/2026-H1", await supervisor(store))
    finally:
        api.app.state.report_calendar = previous
    assert response.status_code == 422, response.text
    (field,) = response.json()["error"]["fields"]
    assert (field["field"], field["rule"]) == ("period", "period_unknown")
    assert "H1" in field["message"]


@pytest.mark.parametrize("as_of", ["2026-07-01T00:00:00", "yesterday"])
async def test_an_as_of_without_offset_or_not_a_time_is_422_naming_as_of(api: Api, store: EventStore,
                                                                        as_of: str) -> None:
    response = await api.get("/v1/reports/2026-H1", await supervisor(store), params={"as_of": as_of})
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["as_of"]


async def test_a_body_sees_the_tasks_it_leads_and_its_own_row_with_the_petition_figures(
    api: Api, store: EventStore, plan: str
) -> None:
    everything = (await api.get("/v1/reports/2026-H1", await supervisor(store),
                                params={"plan": plan, "as_of": datetime.now(UTC).isoformat()})).json()
    response = await api.get("/v1/reports/2026-H1", await token(store, "body", B),
                             params={"plan": plan, "as_of": everything["as_of"]})
    assert response.status_code == 200, response.text
    mine = response.json()
    assert all(B in t["lead"] for t in mine["tasks"])
    assert {t["task_id"] for t in mine["tasks"]} >= {"I.2", "I.3"}
    assert "I.1" not in {t["task_id"] for t in mine["tasks"]}
    assert [b["body"] for b in mine["bodies"]] == [B]
    assert mine["petitions"] == everything["petitions"]
    assert mine["petition_totals"] == everything["petition_totals"]

    as_csv = await api.get("/v1/reports/2026-H1", await token(store, "body", B),
                           params={"plan": plan, "format": "csv", "table": "bodies"})
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"), newline="")))
    assert {r["body"] for r in rows} == {B}
    tasks = await api.get("/v1/reports/2026-H1", await token(store, "body", B),
                          params={"plan": plan, "format": "csv", "table": "tasks"})
    assert TITLE not in tasks.content.decode("utf-8")


async def test_an_intake_system_may_not_read_reports(api: Api, store: EventStore) -> None:
    response = await api.get("/v1/reports/2026", await token(store, "intake", label=unique("system")))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
