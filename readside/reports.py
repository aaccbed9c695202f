"""The period reports of the action plan (`2026-H1`, `2026-H2`, `2026`), counted from the event store; written
out as CSV, ZIP, XLSX or text by `readside.report_output`.

A report counts only events recorded up to `as_of` (the `recorded_at` column, set by the database when the
event was appended), so asking again later with the same `as_of` gives the same figures, whatever has been
appended since: that is what makes a past period's report reproducible. Every list is sorted in Python (not
by the database's collation), so two calls give byte-identical JSON on any server.

What is counted (petitions, by kind and district; Vietnam days, UTC+7, the period's days inclusive):

- received: a `PetitionReceived` whose `intake.received_at` falls in the period. A letter that was split
  (`PetitionSplit` recorded up to `as_of`) is not counted: each of its parts is a case of its own and counts.
  A second-instance complaint is a case of its own and counts when it is received.
- accepted: an `AcceptanceDecided` with `accepted: true` that occurred in the period.
- resolved: a `DecisionIssued` that occurred in the period; on time or late by its `resolution_outcome`
  (older events lack it: they count as resolved, neither on time nor late).
- kind: the latest `Classified` kind recorded up to `as_of`, else the intake's; district: the intake's.
- deadlines missed: the `DeadlineBreached` events of petitions that occurred in the period, by kind and rule
  (the deadline's key; every coordinating body's sub-deadline under `coordination`).

Plan tasks (optionally of one plan, `cases.source`): each task's events up to `as_of` folded by the plan task's
own `fold` (`domain.plan_tasks`), so the report reads the period's report entry exactly as the task's state holds
it (see `task_figures`), and per lead body the tasks it leads and how their reports stand.

Each figure is one SQL statement (one round trip), asyncpg-parameterised; the SQL text has no user value in it,
and the event types it counts are the domain's own classes' names, passed as parameters.

`recorded_at` is the start of the appending transaction, which becomes visible only when it commits: an `as_of`
of this very instant can miss an append still committing, which a later call with the same `as_of` would count.
Appends are single short statements, so an `as_of` a few seconds in the past is settled for good.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from domain import plan_tasks as pt
from domain.calendar import VN_TZ
from domain.deadlines import DeadlineBreached
from domain.petitions import events as pe
from domain.petitions.model import PetitionKind
from domain.reporting import (
    BodyFigures,
    DeadlineFigures,
    Period,
    PeriodReport,
    PetitionFigures,
    TaskReportFigures,
)
from domain.rulesets import RuleBook, RuleDocument, refs, with_rules
from eventstore import rulesets, translate_errors

log = logging.getLogger("danvan.reports")

#: The kind of the grand total row of `petition_totals`.
ALL_KINDS = "all"
#: The event type a report cycle stores its compiled report as, in stream `report-<plan>-<period>`.
COMPILED_EVENT = "ReportCompiled"

_PETITIONS_SQL = """
WITH petitions AS (
    SELECT r.stream_id,
           r.data #>> '{intake,kind}' AS intake_kind,
           r.data #>> '{intake,district}' AS district,
           (r.data #>> '{intake,received_at}')::timestamptz AS received_at
      FROM events r
     WHERE r.type = $4 AND r.recorded_at <= $3
),
facts AS (
    SELECT p.stream_id, 'received' AS fact
      FROM petitions p
     WHERE p.received_at >= $1 AND p.received_at < $2
       AND NOT EXISTS (SELECT 1 FROM events s
                        WHERE s.stream_id = p.stream_id AND s.type = $5 AND s.recorded_at <= $3)
    UNION ALL
    SELECT e.stream_id,
           CASE WHEN e.type = $6 THEN 'accepted'
                ELSE 'resolved:' || coalesce(e.data ->> 'resolution_outcome', '') END
      FROM events e
     WHERE e.type IN ($6, $7)
       AND e.occurred_at >= $1 AND e.occurred_at < $2 AND e.recorded_at <= $3
       AND (e.type = $7 OR (e.data ->> 'accepted')::boolean)
)
SELECT coalesce(k.kind, p.intake_kind) AS kind,
       p.district,
       count(*) FILTER (WHERE f.fact = 'received') AS received,
       count(*) FILTER (WHERE f.fact = 'accepted') AS accepted,
       count(*) FILTER (WHERE f.fact LIKE 'resolved:%') AS resolved,
       count(*) FILTER (WHERE f.fact = 'resolved:on_time') AS resolved_on_time,
       count(*) FILTER (WHERE f.fact = 'resolved:late') AS resolved_late
  FROM facts f
  JOIN petitions p ON p.stream_id = f.stream_id
  LEFT JOIN LATERAL (
        SELECT c.data ->> 'kind' AS kind
          FROM events c
         WHERE c.stream_id = p.stream_id AND c.type = $8 AND c.recorded_at <= $3
         ORDER BY c.version DESC
         LIMIT 1) k ON true
 GROUP BY 1, 2
"""

_MISSED_SQL = """
SELECT coalesce(k.kind, r.data #>> '{intake,kind}') AS kind,
       CASE WHEN b.data ->> 'key' LIKE 'coordination.%' THEN 'coordination' ELSE b.data ->> 'key' END AS rule,
       count(*) AS missed
  FROM events b
  JOIN events r ON r.stream_id = b.stream_id AND r.version = 1 AND r.type = $4
  LEFT JOIN LATERAL (
        SELECT c.data ->> 'kind' AS kind
          FROM events c
         WHERE c.stream_id = b.stream_id AND c.type = $5 AND c.recorded_at <= $3
         ORDER BY c.version DESC
         LIMIT 1) k ON true
 WHERE b.type = $6 AND b.occurred_at >= $1 AND b.occurred_at < $2 AND b.recorded_at <= $3
 GROUP BY 1, 2
"""

# Each plan task (of one plan, or all) that has an event recorded up to `as_of`, with every event of its kind
# recorded up to then in version order, to be folded; a task alone on its row when it has none of them.
_TASKS_SQL = """
SELECT c.case_id, c.external_ref, c.title, c.summary -> 'lead' AS summary_lead,
       e.type, e.occurred_at, e.actor, e.reason, e.legal_basis, e.data
  FROM cases c
  LEFT JOIN events e ON e.stream_id = c.case_id AND e.recorded_at <= $2 AND e.type = ANY($4::text[])
 WHERE c.kind = $3 AND ($1::text IS NULL OR c.source = $1)
   AND EXISTS (SELECT 1 FROM events f WHERE f.stream_id = c.case_id AND f.version = 1 AND f.recorded_at <= $2)
 ORDER BY c.case_id, e.version
"""

#: The event types the petition figures count, as the domain names them.
_PETITION_TYPES = (pe.PetitionReceived, pe.PetitionSplit, pe.AcceptanceDecided, pe.DecisionIssued, pe.Classified)
_MISSED_TYPES = (pe.PetitionReceived, pe.Classified, DeadlineBreached)

_COMPILED_SQL = """
SELECT e.stream_id, e.data
  FROM events e
 WHERE e.stream_id = $1 AND e.type = 'ReportCompiled'
 ORDER BY e.version DESC
 LIMIT 1
"""

# The report streams of a period, whatever the plan; two rows are enough to know there is more than one.
_COMPILED_ANY_PLAN_SQL = """
SELECT s.stream_id, last.data
  FROM streams s
 CROSS JOIN LATERAL (
        SELECT e.data FROM events e
         WHERE e.stream_id = s.stream_id AND e.type = 'ReportCompiled'
         ORDER BY e.version DESC
         LIMIT 1) last
 WHERE s.stream_id LIKE $1
 ORDER BY s.stream_id
 LIMIT 2
"""


def report_stream_id(plan_id: str, period_id: str) -> str:
    """The stream a report cycle stores its compiled report in."""
    return f"report-{plan_id}-{period_id}"


def period_bounds(period: Period) -> tuple[datetime, datetime]:
    """The period as instants: from the start of its first day to the start of the day after its last (excluded),
    in Vietnam time."""
    start = datetime.combine(period.starts_on, time(0), VN_TZ)
    end = datetime.combine(period.ends_on + timedelta(days=1), time(0), VN_TZ)
    return start, end


def _json(value: Any) -> Any:
    """A json/jsonb value: decoded already by the store's pool codecs, or text from a bare connection."""
    return json.loads(value) if isinstance(value, str) else value


def _aware(as_of: datetime) -> datetime:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of {as_of.isoformat()}: pass an aware datetime (UTC or ICT)")
    return as_of


async def period_report(pool: Any, period: Period, *, plan_id: str | None, as_of: datetime) -> PeriodReport:
    """The report of `period` from the events recorded up to `as_of` (of plan `plan_id`'s tasks, or of every
    plan's when None). `pool` is an asyncpg pool (`EventStore.pool`). Three statements, run side by side."""
    as_of = _aware(as_of)
    start, end = period_bounds(period)
    with translate_errors():
        petition_rows, task_rows, missed_rows = await asyncio.gather(
            pool.fetch(_PETITIONS_SQL, start, end, as_of, *(c.event_type() for c in _PETITION_TYPES)),
            pool.fetch(_TASKS_SQL, plan_id, as_of, pt.CASE_KIND, pt.REGISTRY.names),
            pool.fetch(_MISSED_SQL, start, end, as_of, *(c.event_type() for c in _MISSED_TYPES)),
        )
    petitions = sorted(
        (
            PetitionFigures(
                kind=r["kind"], district=r["district"], received=r["received"], accepted=r["accepted"],
                resolved=r["resolved"], resolved_on_time=r["resolved_on_time"], resolved_late=r["resolved_late"],
            )
            for r in petition_rows
        ),
        key=lambda f: (f.kind, f.district is None, f.district or ""),
    )
    tasks = await _tasks(pool, task_rows, period.id)
    return PeriodReport(
        period=period.id, title_vi=period.title_vi, starts_on=period.starts_on, ends_on=period.ends_on,
        due_on=period.due_on, plan_id=plan_id, as_of=as_of, compiled=False, tasks=tasks, bodies=body_figures(tasks),
        petitions=petitions, petition_totals=petition_totals(petitions),
        deadlines_missed=sorted((DeadlineFigures(kind=r["kind"], rule=r["rule"], missed=r["missed"])
                                 for r in missed_rows), key=lambda f: (f.kind, f.rule)),
    )


_COUNTS = ("received", "accepted", "resolved", "resolved_on_time", "resolved_late")


def petition_totals(petitions: Iterable[PetitionFigures]) -> list[PetitionFigures]:
    """The figures by kind across districts, every petition kind listed (zeros included, so a report always
    has the same rows), then any other kind found, then the grand total (kind `all`)."""
    sums: dict[str, dict[str, int]] = {k.value: dict.fromkeys(_COUNTS, 0) for k in PetitionKind}
    total = dict.fromkeys(_COUNTS, 0)
    for f in petitions:
        row = sums.setdefault(f.kind, dict.fromkeys(_COUNTS, 0))
        for name in _COUNTS:
            row[name] += getattr(f, name)
            total[name] += getattr(f, name)
    known = [k.value for k in PetitionKind]
    order = sorted(known) + sorted(k for k in sums if k not in known)
    return [PetitionFigures(kind=k, **sums[k]) for k in order] + [PetitionFigures(kind=ALL_KINDS, **total)]


def task_figures(state: pt.TaskState, period_id: str) -> TaskReportFigures:
    """One task's report for the period, as its state holds it: the bodies it was requested from (moved by any
    reassignment since, as the task's fold moves them), else the task's leads when it was not requested; a report
    submitted again after being returned counts as its last submission says (on time or late)."""
    entry = state.reports.get(period_id)
    if entry is None:
        report = "not_requested"
    elif entry.submitted_at is None:
        report = "missing"
    else:
        report = "submitted_on_time" if entry.on_time else "submitted_late"
    return TaskReportFigures(
        case_id=state.case_id, task_id=state.spec.task_id, title_vi=state.spec.title_vi,
        lead=list(entry.from_bodies if entry is not None else state.lead), report=report,
        due_on=date.fromisoformat(entry.due_on) if entry is not None else None,
        submitted_at=entry.submitted_at if entry is not None else None,
        submitted_by=entry.submitted_by if entry is not None else None,
        urged=entry.urged if entry is not None else 0, escalated=entry.escalated if entry is not None else False,
    )


_NUMBER = re.compile(r"(\d+)")


def task_order(task_id: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts `I.2` before `I.10` (runs of digits compare as numbers)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _NUMBER.split(task_id) if part)


async def _tasks(pool: Any, rows: Sequence[Mapping[str, Any]], period_id: str) -> list[TaskReportFigures]:
    """The figures of each task whose rows are `rows` (in case and version order), through its fold."""
    streams: dict[str, tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = {}
    for r in rows:
        _, events = streams.setdefault(r["case_id"], (r, []))
        if r["type"] is not None:
            events.append(r)
    parsed = {case_id: _parsed(events) for case_id, (_, events) in streams.items()}
    await _know_rules(pool, [e for events in parsed.values() if events is not None for e in events])
    tasks = [_one_task(first, parsed[case_id], period_id) for case_id, (first, _) in streams.items()]
    return sorted(tasks, key=lambda t: (task_order(t.task_id), t.task_id, t.case_id))


#: The rule documents the report has read (a digest always names the same content, so they are kept).
_BOOK = RuleBook()


async def _know_rules(pool: Any, events: Sequence[Any]) -> None:
    """Into `_BOOK`: the rule documents `events` name by digest (a task assigned since `rules-by-digest`) and it
    lacks, read from `rule_sets` and checked against their digests as the book takes them."""
    if missing := sorted(d for d in refs(events) if d not in _BOOK):
        for stored in await rulesets.fetch(pool, missing):
            try:
                _BOOK.add(RuleDocument.model_validate(stored.model_dump()))
            except ValueError as exc:  # altered (`danvan verify` names it): its tasks are reported from their rows
                log.error("report: rule document %s left out: %s", stored.digest, exc)


def _parsed(events: Sequence[Mapping[str, Any]]) -> list[Any] | None:
    """The task's events as its registry reads them (None: one cannot be read back)."""
    try:
        return [pt.REGISTRY.parse(e["type"], occurred_at=e["occurred_at"], actor=e["actor"], reason=e["reason"],
                                  legal_basis=e["legal_basis"], data=_json(e["data"])) for e in events]
    except Exception as exc:  # a foreign or damaged event: the task is reported from its row
        log.warning("report: an event of a plan task cannot be read back: %r", exc)
        return None


def _one_task(row: Mapping[str, Any], events: list[Any] | None, period_id: str) -> TaskReportFigures:
    """The task's figures from its fold; a stream that does not fold into a task (none of its events is the
    task's assignment, or one cannot be read back: `danvan verify` says why) counts as its `cases` row shows it,
    with no report requested, and is logged, so that the report still lists every task."""
    state = None
    if events is not None:
        try:
            state = pt.fold(with_rules(events, _BOOK))
        except Exception as exc:  # a stream that is no plan task's, or rules that cannot be read
            log.warning("report: the events of %s do not fold into a plan task: %r", row["case_id"], exc)
    if state is not None:
        return task_figures(state, period_id)
    return TaskReportFigures(
        case_id=row["case_id"], task_id=row["external_ref"] or row["case_id"], title_vi=row["title"] or "",
        lead=list(_json(row["summary_lead"]) or []), report="not_requested",
    )


def body_figures(tasks: Iterable[TaskReportFigures]) -> list[BodyFigures]:
    """Per lead body: the tasks of the report it leads (`tasks`), and how their reports stand. One report is
    owed per task, by its lead bodies together: when a task has two leads, its report counts for both. A task
    whose report was not requested counts in `tasks` only, so `tasks - on time - late - missing` is the number
    of tasks not asked for this period's report."""
    counts: dict[str, dict[str, int]] = {}
    for task in tasks:
        for body in dict.fromkeys(task.lead):
            row = counts.setdefault(body, {"tasks": 0, "submitted_on_time": 0, "submitted_late": 0, "missing": 0})
            row["tasks"] += 1
            if task.report != "not_requested":
                row[task.report] += 1
    return [BodyFigures(body=body, **counts[body]) for body in sorted(counts)]


# -- a compiled report ------------------------------------------------------------------------------------


def _stored_report(data: Any) -> PeriodReport:
    """The report a `ReportCompiled` event holds: its data is the report, or `{"report": <the report>}`."""
    data = _json(data)
    if isinstance(data, dict) and isinstance(data.get("report"), dict):
        data = data["report"]
    return PeriodReport.model_validate(data).model_copy(update={"compiled": True})


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def compiled_report(pool: Any, period_id: str, *, plan_id: str | None) -> PeriodReport | None:
    """The last report compiled for (`plan_id`, `period_id`), from stream `report-<plan>-<period>`; with no plan,
    the compiled report of the period when exactly one plan has one, else None. `compiled` is true."""
    with translate_errors():
        if plan_id is not None:
            rows = await pool.fetch(_COMPILED_SQL, report_stream_id(plan_id, period_id))
        else:
            rows = await pool.fetch(_COMPILED_ANY_PLAN_SQL, "report-%-" + _like_escape(period_id))
    if len(rows) != 1:
        return None
    return _stored_report(rows[0]["data"])


async def current_report(
    pool: Any, period: Period, *, plan_id: str | None, as_of: datetime | None, now: datetime
) -> PeriodReport:
    """What `GET /v1/reports/{period}` and `danvan report` give: the figures as of `as_of` when one is asked for;
    otherwise the compiled report of (plan, period) when there is one (see `compiled_report`), else the figures
    as of `now`."""
    if as_of is not None:
        return await period_report(pool, period, plan_id=plan_id, as_of=as_of)
    stored = await compiled_report(pool, period.id, plan_id=plan_id)
    if stored is not None:
        return stored
    return await period_report(pool, period, plan_id=plan_id, as_of=_aware(now))


def for_body(report: PeriodReport, body: str) -> PeriodReport:
    """The part of a report a body's staff see: the tasks it leads and its own row of `bodies`. The petition
    figures are counts by kind and district that name no case and no person, and stay whole."""
    return report.model_copy(update={
        "tasks": [t for t in report.tasks if body in t.lead],
        "bodies": [b for b in report.bodies if b.body == body],
    })
