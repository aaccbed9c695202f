"""The operations page (`/console/ops`, supervisors, operators and admins): what is down, the latest signed
checkpoint and whether it is late, the repair jobs in progress (`api.console.jobs`), and three charts drawn on
the server (`api.console.charts`), each with its table: petitions received per week by kind, overdue cases by
lead body, and the on-time rate by district in a report period. Every figure is read from PostgreSQL in a bounded
statement; Temporal is only asked whether it answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from domain.petitions.model import PetitionKind
from integrity.signers import LATE_INTERVALS
from readside.reports import current_report

from ..deps import AppSettings, Store, Temporal
from ..queries import LOCAL_TZ
from ..routes.reports import report_calendar
from ..tokens import Principal
from .charts import bar_chart
from .i18n import Translator, language_of
from .jobs import jobs_in_progress
from .nav import QUEUE_ROLES
from .render import NO_STORE, render
from .session import signed_in
from .views import reference, today_local

router = APIRouter()

Watcher = Annotated[Principal, Depends(signed_in(*QUEUE_ROLES))]

PETITION_KINDS = [k.value for k in PetitionKind]
#: Weeks of intake the first chart shows, and the lead bodies the second one names (the rest are summed).
WEEKS = 12
LEAD_BODIES = 8

INTAKE_SQL = """
SELECT (date_trunc('week', received_at AT TIME ZONE 'Asia/Ho_Chi_Minh'))::date AS week, kind, count(*) AS n
  FROM cases
 WHERE kind = ANY($1::text[]) AND received_at >= $2
 GROUP BY 1, 2
"""
OVERDUE_SQL = """
SELECT lead_body, count(*) AS n FROM cases WHERE overdue GROUP BY lead_body ORDER BY n DESC, lead_body
"""


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def _temporal_answers(temporal: Any) -> bool:
    try:
        await asyncio.wait_for(temporal.check(), 2.0)
    except Exception:
        return False
    return True


@router.get("/ops")
async def ops_page(request: Request, store: Store, temporal: Temporal, settings: AppSettings,
                   principal: Watcher) -> Response:
    t = Translator(language_of(request))
    ref = reference(request)
    today = today_local()
    first_week = _monday(today) - timedelta(weeks=WEEKS - 1)
    since = datetime.combine(first_week, datetime.min.time(), LOCAL_TZ)
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 3000")
        intake_rows = await conn.fetch(INTAKE_SQL, PETITION_KINDS, since)
        overdue_rows = await conn.fetch(OVERDUE_SQL)
    temporal_up = await _temporal_answers(temporal)
    jobs = await jobs_in_progress(store)

    weeks = [first_week + timedelta(weeks=i) for i in range(WEEKS)]
    counts = {(r["week"], r["kind"]): int(r["n"]) for r in intake_rows}
    kinds = [t.label("kind", k) for k in PETITION_KINDS]
    week_labels = [w.strftime("%d/%m") for w in weeks]
    intake_values = [[counts.get((w, k), 0) for k in PETITION_KINDS] for w in weeks]

    named = overdue_rows[:LEAD_BODIES]
    rest = sum(int(r["n"]) for r in overdue_rows[LEAD_BODIES:])
    lead_labels = [ref.body_name(r["lead_body"], t.lang) if r["lead_body"] else t("counts.unset") for r in named]
    lead_values = [[int(r["n"])] for r in named]
    if rest:
        lead_labels.append(t("counts.rest", n=len(overdue_rows) - LEAD_BODIES))
        lead_values.append([rest])

    calendar = report_calendar(request)
    periods = calendar.periods_between(date(today.year - 1, 1, 1), date(today.year + 1, 12, 31))
    upcoming = [p for p in periods if p.due_on >= today]
    period = upcoming[0] if upcoming else periods[-1]
    report = await current_report(store.pool, period, plan_id=None, as_of=None, now=datetime.now(UTC))
    by_district: dict[str, list[int]] = {}
    for figures in report.petitions:
        entry = by_district.setdefault(figures.district or t("counts.unset"), [0, 0])
        entry[0] += figures.resolved_on_time
        entry[1] += figures.resolved_late
    districts = sorted(d for d, (on, late) in by_district.items() if on + late)
    rates = [[100.0 * by_district[d][0] / sum(by_district[d])] for d in districts]

    checkpoint = request.app.state.signed_heads.log.latest() if settings.checkpoint_log.exists() else None
    taken = datetime.fromisoformat(checkpoint.time.replace("Z", "+00:00")) if checkpoint is not None else None
    late_after = timedelta(seconds=LATE_INTERVALS * settings.checkpoint_interval)  # the queue's rule
    late = settings.checkpoint_interval > 0 and (taken is None or datetime.now(UTC) - taken > late_after)
    return render(request, "ops.html", {
        "temporal_up": temporal_up, "jobs": jobs,
        "checkpoint": checkpoint, "checkpoint_at": taken, "checkpoint_late": late,
        "intake": bar_chart(week_labels, kinds, intake_values),
        "intake_rows": list(zip(week_labels, intake_values, strict=True)), "kinds": kinds,
        "overdue": bar_chart(lead_labels, [t("ops.overdue_series")], lead_values),
        "overdue_rows": list(zip(lead_labels, [v[0] for v in lead_values], strict=True)),
        "on_time": bar_chart(districts, [t("ops.on_time_series")], rates, percent=True),
        "on_time_rows": [(d, by_district[d][0], by_district[d][1], rates[i][0]) for i, d in enumerate(districts)],
        "period": period,
    }, section="ops", headers=NO_STORE)
