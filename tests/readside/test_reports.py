"""Period reports counted from the event store (real PostgreSQL): petitions by kind and district, plan tasks'
reports by task and body, reproducibility for a fixed `as_of`, and the files it is written to (CSV, ZIP, XLSX, text).

The events are made by the real deciders (petitions and plan tasks, on the real policy files) and stored as a
workflow stores them. The session database is shared, so every test uses its own district names, case ids and
plan id, and asserts only on its own rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
import zipfile
from datetime import UTC, date, datetime
from typing import Any

import openpyxl
import pytest

from activities.reports import CompileReportRequest, ReportActivities
from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy, load_report_calendar
from domain import plan_tasks as pt
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Actor, Event
from domain.deadlines import CaseRules, MarkDeadline
from domain.petitions import commands as c
from domain.petitions.decider import decide, fold
from domain.petitions.model import Petitioner, PetitionIntake, PetitionKind, PetitionState
from domain.petitions.views import case_row
from domain.reporting import PeriodReport, PetitionFigures
from eventstore import CaseRow, EventStore, NewEvent
from readside.report_output import COLUMNS, TABLES, report_table, report_xlsx, report_zip, table_csv
from readside.reports import compiled_report, current_report, period_report, report_stream_id

RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2025, 2027, load_calendar_overrides()))
CALENDAR = load_report_calendar()
H1 = CALENDAR.period("2026-H1")
YEAR = CALENDAR.period("2026")
OFFICER = Actor(id="tran.thi.lan", role="body", body="THANH_TRA_TINH")
NAMED = Petitioner(name="Nguyễn Văn An", address="Thôn Đông, xã Nam Sách, Hải Dương", phone="0912345678")
K = PetitionKind


def vn(day: str, hour: int = 9, minute: int = 0) -> datetime:
    """An instant in Vietnam time (UTC+7)."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=VN_TZ).replace(hour=hour,
                                                                                               minute=minute)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def stored(events: list[Event]) -> list[NewEvent]:
    """Domain events as a workflow appends them: the envelope in columns, the rest as data."""
    return [
        NewEvent(event_id=uuid.uuid4(), type=ev.event_type(), occurred_at=ev.occurred_at, actor=ev.actor,
                 reason=ev.reason, legal_basis=ev.legal_basis, data=ev.payload())
        for ev in events
    ]


async def db_now(store: EventStore) -> datetime:
    """The database's clock (what `recorded_at` is taken from), then a moment's pause so that anything
    appended afterwards is recorded strictly later."""
    now: datetime = await store.pool.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(0.01)
    return now


class Petition:
    """A petition case decided by the real decider and stored event by event."""

    def __init__(self, store: EventStore, district: str, kind: PetitionKind = K.COMPLAINT) -> None:
        self.store, self.district, self.kind = store, district, kind
        self.case_id = unique("pet-report")
        self.state: PetitionState | None = None
        self.version = 0

    async def receive(self, at: datetime) -> Petition:
        intake = PetitionIntake(source="test-reports", external_ref=self.case_id, kind=self.kind, received_at=at,
                                petitioner=NAMED, subject="Đơn về việc thu hồi đất", content="Nội dung đơn.",
                                district=self.district)
        await self._store(decide(None, c.Receive(case_id=self.case_id, intake=intake, rules=RULES), SYSTEM, at))
        return self

    async def do(self, command: c.PetitionCommand, at: datetime) -> Petition:
        assert self.state is not None
        await self._store(decide(self.state, command, OFFICER, at))
        return self

    async def classify(self, at: datetime, kind: PetitionKind | None = None) -> Petition:
        return await self.do(c.Classify(kind=kind, lead_body="UBND_TINH", subject_category="đất đai"), at)

    async def accept(self, at: datetime) -> Petition:
        return await self.do(c.Accept(decision_no="12/QĐ-UBND"), at)

    async def resolve(self, at: datetime) -> Petition:
        assert self.state is not None
        await self.do(c.RecordVerification(findings="Kết quả xác minh.", demand_matches_findings=True), at)
        outcome = {K.COMPLAINT: "not_upheld", K.DENUNCIATION: "no_violation"}.get(self.state.kind, "answered")
        return await self.do(c.Decide(outcome=outcome, decision_no="45/QĐ-UBND", summary="Trả lời."), at)

    async def _store(self, events: list[Event]) -> None:
        assert events
        state = fold(events, self.state)
        assert state is not None
        await self.store.append(self.case_id, self.version, stored(events), CaseRow.model_validate(case_row(state)))
        self.state, self.version = state, self.version + len(events)


COMMISSION = Actor(id="phong-dthth", role="body", body="PHONG_DTHTH")


class Task:
    """A plan task decided by the real plan-task decider and stored event by event."""

    def __init__(self, store: EventStore, plan_id: str, task_id: str, lead: list[str],
                 title_vi: str = "Nâng cao chất lượng công tác dân vận chính quyền") -> None:
        self.store, self.plan_id, self.task_id, self.lead = store, plan_id, task_id, lead
        self.title_vi = title_vi
        self.case_id = f"task-{plan_id}-{task_id}"
        self.state: pt.TaskState | None = None
        self.version = 0

    async def assign(self, at: datetime) -> Task:
        spec = pt.TaskSpec(plan_id=self.plan_id, task_id=self.task_id, title_vi=self.title_vi, lead=self.lead,
                           cadence=["semiannual", "annual"], issuer="BDV_TU", monitor="PHONG_DTHTH")
        rules = pt.PlanRules(case=RULES, reports=CALENDAR)
        await self._store(pt.decide(None, pt.Assign(case_id=self.case_id, spec=spec, rules=rules), SYSTEM, at))
        return self

    async def do(self, command: pt.PlanTaskCommand, at: datetime, actor: Actor = SYSTEM) -> Task:
        assert self.state is not None
        await self._store(pt.decide(self.state, command, actor, at))
        return self

    async def request(self, period: str, at: datetime) -> Task:
        return await self.do(pt.RequestReport(period=period), at)

    async def submit(self, period: str, at: datetime, body: str | None = None) -> Task:
        body = body or self.lead[0]
        return await self.do(pt.SubmitReport(period=period, body=body, summary="Báo cáo sơ kết: đã triển khai."), at,
                             Actor(id="staff", role="body", body=body))

    async def _store(self, events: list[Event]) -> None:
        assert events
        state = pt.fold(events, self.state)
        assert state is not None
        await self.store.append(self.case_id, self.version, stored(events),
                                CaseRow.model_validate(pt.task_row(state)))
        self.state, self.version = state, self.version + len(events)


def rows_of(report: PeriodReport, district: str) -> dict[str, PetitionFigures]:
    return {f.kind: f for f in report.petitions if f.district == district}


def figures(f: PetitionFigures | None) -> tuple[int, int, int, int, int]:
    if f is None:
        return (0, 0, 0, 0, 0)
    return (f.received, f.accepted, f.resolved, f.resolved_on_time, f.resolved_late)


# -- petitions ------------------------------------------------------------------------------------------------


async def test_petitions_are_counted_by_kind_and_district_inside_the_period_only(store: EventStore) -> None:
    district, other = unique("Huyện Nam Sách"), unique("Thành phố Hải Dương")
    # Received in the period, accepted, resolved within the resolution period: on time.
    on_time = await Petition(store, district).receive(vn("2026-01-20"))
    await on_time.classify(vn("2026-01-20", 15))
    await on_time.accept(vn("2026-01-21", 10))
    await on_time.resolve(vn("2026-02-10"))
    # Received and accepted in the period, resolved long after its 30 days: late.
    late = await Petition(store, district).receive(vn("2026-02-02"))
    await late.classify(vn("2026-02-02", 15))
    await late.accept(vn("2026-02-03"))
    await late.resolve(vn("2026-06-01"))
    # Received before the period (23:00 on 31 December, Vietnam time), accepted and resolved in it.
    before = await Petition(store, district).receive(vn("2025-12-31", 23))
    await before.classify(vn("2026-01-02"))
    await before.accept(vn("2026-01-05"))
    # The last minutes of 30 June in Vietnam count; 00:30 on 1 July (still 30 June in UTC) does not.
    await Petition(store, district, K.RECOMMENDATION).receive(vn("2026-06-30", 23, 30))
    await Petition(store, district, K.RECOMMENDATION).receive(vn("2026-07-01", 0, 30))
    # Another district, another kind.
    await Petition(store, other, K.DENUNCIATION).receive(vn("2026-03-03"))
    # Accepted after the period.
    after = await Petition(store, other, K.DENUNCIATION).receive(vn("2026-06-29"))
    await after.classify(vn("2026-06-30"))
    await after.accept(vn("2026-07-02"))

    report = await period_report(store.pool, H1, plan_id=None, as_of=datetime.now(UTC))

    mine = rows_of(report, district)
    assert set(mine) == {"complaint", "recommendation"}
    assert figures(mine["complaint"]) == (2, 3, 2, 1, 1)  # received, accepted, resolved, on time, late
    assert figures(mine["recommendation"]) == (1, 0, 0, 0, 0)
    assert {k: figures(f) for k, f in rows_of(report, other).items()} == {"denunciation": (2, 0, 0, 0, 0)}

    year = await period_report(store.pool, YEAR, plan_id=None, as_of=datetime.now(UTC))
    assert figures(rows_of(year, district)["recommendation"]) == (2, 0, 0, 0, 0)
    assert figures(rows_of(year, other)["denunciation"]) == (2, 1, 0, 0, 0)


async def test_a_decision_without_a_resolution_outcome_is_resolved_but_neither_on_time_nor_late(
    store: EventStore,
) -> None:
    district = unique("Huyện Kim Thành")
    p = await Petition(store, district).receive(vn("2026-03-02"))
    await p.classify(vn("2026-03-02", 14))
    await p.accept(vn("2026-03-03"))
    await p.do(c.RecordVerification(findings="Đã xác minh.", demand_matches_findings=True), vn("2026-03-10"))
    # A decision recorded before `resolution_outcome` existed: the field is absent from its data.
    assert p.state is not None
    old = decide(p.state, c.Decide(outcome="not_upheld", decision_no="7/QĐ", summary="Cũ."), OFFICER,
                 vn("2026-03-20"))
    event = stored(old)[0]
    data = {k: v for k, v in event.data.items() if k != "resolution_outcome"}
    await store.append(p.case_id, p.version, [event.model_copy(update={"data": data})])

    report = await period_report(store.pool, H1, plan_id=None, as_of=datetime.now(UTC))
    assert figures(rows_of(report, district)["complaint"]) == (1, 1, 1, 0, 0)


async def test_reclassification_moves_a_petition_to_its_new_kind_from_when_it_is_recorded(store: EventStore) -> None:
    district = unique("Huyện Thanh Hà")
    p = await Petition(store, district, K.COMPLAINT).receive(vn("2026-04-01"))
    before = await db_now(store)
    await p.classify(vn("2026-04-01", 16), kind=K.RECOMMENDATION)
    await p.accept(vn("2026-04-02"))

    now = await period_report(store.pool, H1, plan_id=None, as_of=datetime.now(UTC))
    assert {k: figures(f) for k, f in rows_of(now, district).items()} == {"recommendation": (1, 1, 0, 0, 0)}
    # As of before the reclassification was recorded it was still the complaint of its intake.
    then = await period_report(store.pool, H1, plan_id=None, as_of=before)
    assert {k: figures(f) for k, f in rows_of(then, district).items()} == {"complaint": (1, 0, 0, 0, 0)}


async def test_a_split_letter_counts_as_its_parts(store: EventStore) -> None:
    district = unique("Huyện Gia Lộc")
    letter = await Petition(store, district).receive(vn("2026-05-04"))
    await letter.do(c.Split(parts=[c.SplitPart(kind=K.COMPLAINT, subject="Phần 1", content="Khiếu nại."),
                                   c.SplitPart(kind=K.DENUNCIATION, subject="Phần 2", content="Tố cáo.")]),
                    vn("2026-05-04", 11))
    for kind in (K.COMPLAINT, K.DENUNCIATION):
        await Petition(store, district, kind).receive(vn("2026-05-04"))  # the parts, as the workflow starts them
    report = await period_report(store.pool, H1, plan_id=None, as_of=datetime.now(UTC))
    assert {k: f.received for k, f in rows_of(report, district).items()} == {"complaint": 1, "denunciation": 1}


async def test_totals_sum_every_district_by_kind_with_a_grand_total(store: EventStore) -> None:
    district = unique("Huyện Tứ Kỳ")
    await Petition(store, district, K.VOTER_PETITION).receive(vn("2026-02-16"))
    report = await period_report(store.pool, H1, plan_id=None, as_of=datetime.now(UTC))
    totals = {f.kind: f for f in report.petition_totals}
    assert [f.kind for f in report.petition_totals] == [
        "complaint", "denunciation", "recommendation", "voter_petition", "all"]
    for kind, total in totals.items():
        rows = [f for f in report.petitions if kind in (f.kind, "all")]
        assert total.district is None
        for name in ("received", "accepted", "resolved", "resolved_on_time", "resolved_late"):
            assert getattr(total, name) == sum(getattr(f, name) for f in rows), (kind, name)
    assert totals["voter_petition"].received >= 1


# -- reproducibility ------------------------------------------------------------------------------------------


async def test_the_same_as_of_gives_byte_identical_figures_whatever_is_appended_later(store: EventStore) -> None:
    district = unique("Huyện Cẩm Giàng")
    plan = unique("KH-REPRO")
    done = await Petition(store, district).receive(vn("2026-01-12"))
    await done.classify(vn("2026-01-12", 15))
    await done.accept(vn("2026-01-13"))
    await done.resolve(vn("2026-01-30"))
    waiting = await Petition(store, district).receive(vn("2026-02-09"))
    await waiting.classify(vn("2026-02-09", 15))
    await waiting.accept(vn("2026-02-10"))
    task = await (await Task(store, plan, "I.1", ["UBND_TINH"]).assign(vn("2026-01-05"))).request(
        "2026-H1", vn("2026-05-16"))
    as_of = await db_now(store)

    first = await period_report(store.pool, H1, plan_id=plan, as_of=as_of)
    # Later, a late decision that took place inside the period is recorded, and the task's report comes in.
    await waiting.resolve(vn("2026-06-20"))
    await task.submit("2026-H1", vn("2026-06-25"))

    again = await period_report(store.pool, H1, plan_id=plan, as_of=as_of)
    assert again.model_dump_json() == first.model_dump_json()
    assert report_zip(again) == report_zip(first)
    assert figures(rows_of(first, district)["complaint"]) == (2, 2, 1, 1, 0)
    assert [t.report for t in first.tasks] == ["missing"]

    later = await period_report(store.pool, H1, plan_id=plan, as_of=datetime.now(UTC))
    assert later.model_dump_json() != first.model_dump_json()
    assert figures(rows_of(later, district)["complaint"]) == (2, 2, 2, 1, 1)
    assert [t.report for t in later.tasks] == ["submitted_late"]


# -- plan tasks -----------------------------------------------------------------------------------------------


async def test_deadlines_missed_in_the_period_are_counted_by_kind_and_rule(store: EventStore) -> None:
    def missed(report: PeriodReport) -> dict[tuple[str, str], int]:
        return {(f.kind, f.rule): f.missed for f in report.deadlines_missed}

    before = missed(await period_report(store.pool, H1, plan_id=None, as_of=await db_now(store)))
    district = unique("Thanh Hà")
    # A complaint accepted Tue 6 Jan 2026 misses its 30 days (Thu 5 Feb) and a denunciation concluded Mon 2 Mar
    # misses its publication (7 working days: Wed 11 Mar); a third misses its resolution after the period.
    complaint = await (await (await Petition(store, district).receive(vn("2026-01-05"))).classify(
        vn("2026-01-05"))).accept(vn("2026-01-06"))
    await complaint.do(MarkDeadline(key="complaint.resolution", stage="breached"), vn("2026-02-06", 0, 1))
    denunciation = await (await (await Petition(store, district, K.DENUNCIATION).receive(vn("2026-02-02"))).classify(
        vn("2026-02-02"))).accept(vn("2026-02-02"))
    await denunciation.resolve(vn("2026-03-02"))
    await denunciation.do(MarkDeadline(key="denunciation.publication", stage="breached"), vn("2026-03-12", 0, 1))
    later = await (await (await Petition(store, district).receive(vn("2026-06-01"))).classify(
        vn("2026-06-01"))).accept(vn("2026-06-02"))
    await later.do(MarkDeadline(key="complaint.resolution", stage="breached"), vn("2026-07-03", 0, 1))
    after = missed(await period_report(store.pool, H1, plan_id=None, as_of=await db_now(store)))
    added = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert added == {("complaint", "complaint.resolution"): 1, ("denunciation", "denunciation.publication"): 1}
    report = await period_report(store.pool, YEAR, plan_id=None, as_of=await db_now(store))
    assert "Thời hạn quá hạn theo quy định" in report_table(report) and "complaint.resolution" in report_table(report)
    rows = list(csv.DictReader(io.StringIO(table_csv(report, "deadlines_missed").removeprefix("\ufeff"))))
    assert list(rows[0]) == ["period", "as_of", "kind", "rule", "missed"]
    assert len(rows) == len(report.deadlines_missed)


async def test_each_tasks_report_is_on_time_late_missing_or_not_requested_and_counted_per_body(
    store: EventStore,
) -> None:
    plan = unique("KH-BDV")
    a, b = "BAN_TUYEN_GIAO", "UBND_TINH"
    on_time = await Task(store, plan, "II.10", [a]).assign(vn("2026-01-05"))
    await on_time.request("2026-H1", vn("2026-05-16"))
    await on_time.submit("2026-H1", vn("2026-06-10"))
    late = await Task(store, plan, "II.2", [a, b], title_vi="Đổi mới phương thức dân vận khéo").assign(
        vn("2026-01-05"))
    await late.request("2026-H1", vn("2026-05-16"))
    await late.do(MarkDeadline(key="report.2026-H1", stage="breached"), vn("2026-06-16"))  # urged automatically
    await late.submit("2026-H1", vn("2026-06-18"), body=b)
    missing = await Task(store, plan, "I.1", [b]).assign(vn("2026-01-05"))
    await missing.request("2026-H1", vn("2026-05-16"))
    await missing.do(MarkDeadline(key="report.2026-H1", stage="breached"), vn("2026-06-16"))
    await missing.do(pt.Urge(period="2026-H1", doc_no="15/CV-BDV"), vn("2026-06-17"), COMMISSION)
    await missing.do(MarkDeadline(key="report.2026-H1.urge", stage="breached"), vn("2026-06-30"))
    await Task(store, plan, "III.1", [b]).assign(vn("2026-01-05"))  # never asked for this period's report
    # Another plan's task and another period's request are not this report's.
    await (await Task(store, unique("KH-OTHER"), "I.1", [a]).assign(vn("2026-01-05"))).request(
        "2026-H1", vn("2026-05-16"))
    await (await Task(store, plan, "IV.1", [a]).assign(vn("2026-01-05"))).request("2026", vn("2026-11-15"))

    report = await period_report(store.pool, H1, plan_id=plan, as_of=datetime.now(UTC))

    assert [t.task_id for t in report.tasks] == ["I.1", "II.2", "II.10", "III.1", "IV.1"]
    tasks = {t.task_id: t for t in report.tasks}
    assert {k: t.report for k, t in tasks.items()} == {
        "I.1": "missing", "II.2": "submitted_late", "II.10": "submitted_on_time", "III.1": "not_requested",
        "IV.1": "not_requested"}
    assert tasks["II.10"].due_on == date(2026, 6, 15) and tasks["II.10"].submitted_by == a
    assert tasks["II.10"].submitted_at == vn("2026-06-10") and tasks["II.10"].urged == 0
    assert tasks["II.2"].title_vi == "Đổi mới phương thức dân vận khéo" and tasks["II.2"].lead == [a, b]
    assert (tasks["II.2"].urged, tasks["II.2"].escalated, tasks["II.2"].submitted_by) == (1, False, b)
    assert (tasks["I.1"].urged, tasks["I.1"].escalated, tasks["I.1"].submitted_at) == (2, True, None)
    assert tasks["III.1"].due_on is None and tasks["III.1"].lead == [b]
    assert tasks["I.1"].case_id == missing.case_id
    bodies = {f.body: (f.tasks, f.submitted_on_time, f.submitted_late, f.missing) for f in report.bodies}
    assert bodies == {a: (3, 1, 1, 0), b: (3, 0, 1, 1)}
    assert [f.body for f in report.bodies] == sorted(bodies)
    assert report.plan_id == plan


async def test_a_reassigned_lead_owes_the_report_in_place_of_the_body_it_replaced(store: EventStore) -> None:
    plan = unique("KH-REORG")
    task = await Task(store, plan, "I.1", ["SO_NOI_VU"]).assign(vn("2026-01-05"))
    await task.request("2026-H1", vn("2026-05-16"))
    await task.do(pt.Reassign(from_body="SO_NOI_VU", to_body="UBND_TINH", reason="Sắp xếp tổ chức bộ máy"),
                  vn("2026-05-20"), Actor(id="ops", role="operator"))
    report = await period_report(store.pool, H1, plan_id=plan, as_of=datetime.now(UTC))
    assert report.tasks[0].lead == ["UBND_TINH"]
    assert [(b.body, b.missing) for b in report.bodies] == [("UBND_TINH", 1)]


async def test_a_task_assigned_after_as_of_is_not_in_the_report(store: EventStore) -> None:
    plan = unique("KH-LATER")
    await Task(store, plan, "I.1", ["UBND_TINH"]).assign(vn("2026-01-05"))
    as_of = await db_now(store)
    await Task(store, plan, "I.2", ["UBND_TINH"]).assign(vn("2026-01-05"))
    report = await period_report(store.pool, H1, plan_id=plan, as_of=as_of)
    assert [t.task_id for t in report.tasks] == ["I.1"]


async def test_a_naive_as_of_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        await period_report(store.pool, H1, plan_id=None, as_of=datetime(2026, 7, 1))


# -- compiled reports -----------------------------------------------------------------------------------------


async def test_the_activity_compiles_the_same_figures_and_refuses_a_bad_period(store: EventStore) -> None:
    from temporalio.exceptions import ApplicationError

    plan = unique("KH-ACT")
    await (await Task(store, plan, "I.1", ["UBND_TINH"]).assign(vn("2026-01-05"))).request(
        "2026-H1", vn("2026-05-16"))
    as_of = await db_now(store)
    activities = ReportActivities(store)
    compiled = await activities.compile_report(CompileReportRequest(period="2026-H1", plan_id=plan, as_of=as_of))
    direct = await period_report(store.pool, H1, plan_id=plan, as_of=as_of)
    assert compiled.compiled is True
    assert compiled.model_copy(update={"compiled": False}).model_dump_json() == direct.model_dump_json()
    with pytest.raises(ApplicationError) as refused:
        await activities.compile_report(CompileReportRequest(period="2026-H3", plan_id=plan, as_of=as_of))
    assert refused.value.type == "report.period" and refused.value.non_retryable


@pytest.mark.parametrize("shape", ["report", "bare"])
async def test_a_stored_compiled_report_is_given_back_as_compiled(store: EventStore, shape: str) -> None:
    plan = unique("KH-COMPILED")
    await (await Task(store, plan, "I.1", ["UBND_TINH"]).assign(vn("2026-01-05"))).request(
        "2026-H1", vn("2026-05-16"))
    report = await period_report(store.pool, H1, plan_id=plan, as_of=await db_now(store))
    data: dict[str, Any] = report.model_dump(mode="json")
    event = NewEvent(event_id=uuid.uuid4(), type="ReportCompiled", occurred_at=datetime.now(UTC), actor="system:t",
                     data={"report": data} if shape == "report" else data)
    await store.append(report_stream_id(plan, "2026-H1"), 0, [event])

    found = await compiled_report(store.pool, "2026-H1", plan_id=plan)
    assert found is not None and found.compiled
    assert found.model_copy(update={"compiled": False}) == report
    given = await current_report(store.pool, H1, plan_id=plan, as_of=None, now=datetime.now(UTC))
    assert given == found
    # An explicit as_of always computes.
    computed = await current_report(store.pool, H1, plan_id=plan, as_of=report.as_of, now=datetime.now(UTC))
    assert computed == report
    assert await compiled_report(store.pool, "2026", plan_id=plan) is None


# -- CSV, ZIP, XLSX and text ----------------------------------------------------------------------------------

HOSTILE = "=cmd|' /C calc'!A0"  # a value from a sender that a spreadsheet would run as a formula
LONG_TITLE = ("Tăng cường công tác dân vận của các cơ quan nhà nước, chính quyền các cấp; \"dân vận khéo\" ở cơ "
              "sở, gắn với thực hiện quy chế dân chủ và xây dựng hệ thống chính trị trong sạch, vững mạnh")


async def _report_with_every_table(store: EventStore) -> tuple[PeriodReport, str]:
    plan = unique("KH-CSV")
    district = unique("Huyện Ninh Giang")
    task = await Task(store, plan, "I.1", ["UBND_TINH"], title_vi=LONG_TITLE).assign(vn("2026-01-05"))
    await task.request("2026-H1", vn("2026-05-16"))
    await task.submit("2026-H1", vn("2026-06-01"))
    await Petition(store, district).receive(vn("2026-03-03"))
    await Petition(store, HOSTILE).receive(vn("2026-03-03"))
    return await period_report(store.pool, H1, plan_id=plan, as_of=datetime.now(UTC)), district


def _csv_rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw.count(b"\n")  # every line ends CRLF
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


async def test_each_table_is_a_csv_of_its_own_with_its_own_columns(store: EventStore) -> None:
    report, district = await _report_with_every_table(store)
    tables = {name: _csv_rows(table_csv(report, name)) for name in TABLES}
    for name, rows in tables.items():
        assert list(rows[0]) == ["period", "as_of", *(c.name for c in COLUMNS[name])], name
        assert len(rows) == len(getattr(report, name)), name
        assert {r["period"] for r in rows} == {"2026-H1"} and all(r["as_of"].endswith("+07:00") for r in rows)
    (task_row,) = tables["tasks"]
    assert task_row["title_vi"] == LONG_TITLE and "received" not in task_row
    assert (task_row["task_id"], task_row["report"], task_row["lead"]) == ("I.1", "submitted_on_time", "UBND_TINH")
    assert task_row["due_on"] == "2026-06-15" and task_row["escalated"] == "false"
    assert task_row["submitted_at"] == "2026-06-01T09:00:00+07:00"
    (mine,) = [r for r in tables["petitions"] if r["district"] == district]
    assert (mine["kind"], mine["received"], mine["resolved_late"]) == ("complaint", "1", "0")
    assert any(r["district"] == "'" + HOSTILE for r in tables["petitions"])
    assert [(b["body"], b["tasks"], b["submitted_on_time"]) for b in tables["bodies"]] == [("UBND_TINH", "1", "1")]
    assert "district" not in tables["petition_totals"][0] and tables["petition_totals"][-1]["kind"] == "all"


async def test_the_zip_holds_the_four_csvs_and_the_same_report_gives_the_same_bytes(store: EventStore) -> None:
    report, _ = await _report_with_every_table(store)
    data = report_zip(report)
    assert data == report_zip(report.model_copy())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [f"report-2026-H1-{name}.csv" for name in TABLES]
        for name in TABLES:
            assert archive.read(f"report-2026-H1-{name}.csv").decode("utf-8") == table_csv(report, name)


async def test_the_xlsx_has_a_sheet_per_table_with_vietnamese_heads_typed_cells_and_no_formula(
    store: EventStore,
) -> None:
    report, district = await _report_with_every_table(store)
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(report)))
    assert book.sheetnames == ["Thông tin", "Báo cáo của các nhiệm vụ", "Theo cơ quan chủ trì",
                               "Đơn thư theo loại và địa bàn", "Tổng hợp đơn thư theo loại",
                               "Thời hạn quá hạn theo quy định"]
    assert [cell.value for cell in book["Thời hạn quá hạn theo quy định"][1]] == ["Loại", "Thời hạn", "Số lần quá hạn"]
    info = {row[0]: row[1] for row in book["Thông tin"].iter_rows(values_only=True)}
    assert info["Kỳ báo cáo"] == "2026-H1" and info["Tên báo cáo"] == "Báo cáo sơ kết 6 tháng đầu năm"
    assert info["Hạn nộp"] == datetime(2026, 6, 15)
    tasks = book["Báo cáo của các nhiệm vụ"]
    heads = [cell.value for cell in tasks[1]]
    assert heads[:4] == ["Nhiệm vụ", "Tên nhiệm vụ", "Chủ trì", "Tình trạng báo cáo"]
    assert "Ngày nộp (giờ Việt Nam)" in heads and tasks.freeze_panes == "A2" and tasks.auto_filter.ref
    row = dict(zip(heads, next(tasks.iter_rows(min_row=2, values_only=True)), strict=True))
    assert row["Tên nhiệm vụ"] == LONG_TITLE and row["Tình trạng báo cáo"] == "Nộp đúng hạn"
    assert row["Hạn nộp"] == datetime(2026, 6, 15) and row["Ngày nộp (giờ Việt Nam)"] == datetime(2026, 6, 1, 9, 0)
    assert row["Số lần đôn đốc"] == 0 and row["Đã báo cáo cấp trên"] == "không"
    petitions = book["Đơn thư theo loại và địa bàn"]
    assert [cell.value for cell in petitions[1]] == ["Loại", "Địa bàn", "Tiếp nhận", "Thụ lý", "Đã giải quyết",
                                                     "Đúng hạn", "Trễ hạn"]
    cells = {r[1].value: r for r in petitions.iter_rows(min_row=2)}
    assert cells[district][0].value == "Khiếu nại" and cells[district][2].value == 1
    assert cells[HOSTILE][1].data_type == "s"  # kept as text, never a formula
    totals = book["Tổng hợp đơn thư theo loại"]
    assert [r[0] for r in totals.iter_rows(min_row=2, values_only=True)][-1] == "Tổng cộng"


async def test_the_text_report_has_vietnamese_heads_and_wraps_long_titles(store: EventStore) -> None:
    report, district = await _report_with_every_table(store)
    table = report_table(report, width=100)
    lines = table.splitlines()
    assert lines[:3] == ["Báo cáo sơ kết 6 tháng đầu năm — kỳ 2026-H1",
                         "Từ 01/01/2026 đến 30/06/2026; hạn nộp 15/06/2026", f"Kế hoạch: {report.plan_id}"]
    assert lines[3].startswith("Số liệu tính đến ") and lines[3].endswith(" (giờ Việt Nam, +07:00)")
    assert max(len(line) for line in lines[:lines.index("Đơn thư theo loại và địa bàn")]) <= 100
    # The tasks' heads, on two lines since the whole heads would not fit; the title under its task, wrapped.
    start = lines.index("Báo cáo của các nhiệm vụ (1)") + 1
    heads = " ".join(lines[start:start + 2]).split()
    for head in ("Nhiệm vụ", "Tình trạng báo cáo", "Hạn nộp", "Ngày nộp", "Số lần đôn đốc", "Đã báo cáo cấp trên",
                 "Chủ trì"):
        assert all(word in heads for word in head.split()), head
    row = lines[start + 2]
    assert row.split()[:6] == ["I.1", "Nộp", "đúng", "hạn", "15/06/2026", "01/06/2026"] and "UBND_TINH" in row
    under = []
    for line in lines[start + 3:]:
        if not line.startswith("    "):
            break
        under.append(line)
    assert len(under) >= 2 and " ".join(under).split() == LONG_TITLE.split()
    for title, heads_ in (("Theo cơ quan chủ trì", ["Cơ quan", "Số nhiệm vụ", "Nộp đúng hạn", "Nộp trễ", "Chưa nộp"]),
                          ("Đơn thư theo loại và địa bàn", ["Loại", "Địa bàn", "Tiếp nhận", "Thụ lý", "Đã giải quyết",
                                                            "Đúng hạn", "Trễ hạn"])):
        at = lines.index(title) + 1
        words = " ".join(lines[at:at + 2]).split()  # on one line, or two when the table is wide
        assert lines[at].startswith(heads_[0].split()[0]) and all(w in words for h in heads_ for w in h.split())
    assert district in table and "Tổng cộng" in table and "Kiến nghị cử tri" in table and "Khiếu nại" in table
    narrow = report_table(report, width=70).splitlines()
    titles = [line for line in narrow if line.startswith("    ") and not line.startswith("     ")]
    assert titles and all(len(line) <= 70 for line in titles)  # the title wraps to the width
