"""The repair jobs (`ops.jobs`) as pages: `/console/ops/jobs`, every job with its state and counts, and
`/console/ops/jobs/{id}`, one job with its progress, who requested and decided on it and why, and its cases'
outcomes, a page at a time.

Who: `supervisor`, `operator` and `admin` read them (the roles of `GET /v1/ops/jobs`); operators and admins get
the forms of the decisions the job takes now (approve or reject while it awaits approval, pause while it runs,
resume while paused, cancel until it ends), each with a reason of at least `MIN_REASON` characters and the
session's CSRF token. A decision is sent as `POST /v1/ops/jobs/{id}/...` sends it, the operator taken from the
token; the answer goes back to the job's page with a flash message: done, or refused with its rule (the
requester approving their own job is `job.self_approval`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from temporalio.service import RPCError

from domain.repairs import MIN_REASON
from ops.job_types import DECISIONS, ID_PATTERN, Decision, JobDecision, JobState, Outcome
from ops.jobs import JobRow, get_job, job_actions, job_cases, list_jobs
from workflows.repair_job_client import JobRefused, decide

from ..deps import Store, Temporal
from ..tokens import Principal
from .flash import clear_flash, set_flash, take_flash
from .i18n import Translator, language_of
from .nav import QUEUE_ROLES
from .render import NO_STORE, render, url_with
from .session import ConsoleError, check_session_csrf, read_form, signed_in
from .stalled import MAX_REASON, REPAIRERS, FlashView, actor_of

router = APIRouter()

Watcher = Annotated[Principal, Depends(signed_in(*QUEUE_ROLES))]
Repairer = Annotated[Principal, Depends(signed_in(*REPAIRERS))]
JobId = Annotated[str, Path(pattern=ID_PATTERN)]
#: Jobs on the list page, and cases on a job's page.
PAGE = 50
CASES_PAGE = 200
#: The decisions each state takes (`workflows.repair_job`'s validators).
OFFERED: dict[str, tuple[Decision, ...]] = {
    "awaiting_approval": ("approve", "reject", "cancel"),
    "running": ("pause", "cancel"),
    "paused": ("resume", "cancel"),
}
IN_PROGRESS: list[str] = list(OFFERED)


async def jobs_in_progress(store: Store) -> list[JobRow]:
    """The jobs not yet ended, newest first (the operations page's list)."""
    return (await list_jobs(store.pool, states=IN_PROGRESS, limit=PAGE))[:PAGE]


@router.get("/ops/jobs")
async def jobs_page(request: Request, store: Store, principal: Watcher,
                    state: Annotated[JobState | None, Query()] = None,
                    before: Annotated[str | None, Query(pattern=ID_PATTERN)] = None) -> Response:
    rows = await list_jobs(store.pool, states=[state] if state else None, limit=PAGE, before=before)
    more = rows[PAGE - 1].job_id if len(rows) > PAGE else None
    return render(request, "jobs.html", {
        "jobs": rows[:PAGE], "state": state, "states": [*OFFERED, "completed", "cancelled", "rejected"],
        "next_url": url_with(request, "/ops/jobs", **({"state": state} if state else {}), before=more)
        if more else None,
    }, section="ops", headers=NO_STORE)


@router.get("/ops/jobs/{job_id}")
async def job_page(request: Request, job_id: JobId, store: Store, principal: Watcher,
                   outcome: Annotated[Outcome | None, Query()] = None,
                   after: Annotated[int, Query(ge=-1, le=100_000)] = -1) -> Response:
    job = await get_job(store.pool, job_id)
    if job is None:
        raise ConsoleError(404, "jobs.not_found", job_id=job_id)
    cases = await job_cases(store.pool, job_id, outcome=outcome, after=after, limit=CASES_PAGE)
    more = cases[CASES_PAGE - 1].position if len(cases) > CASES_PAGE else None
    t = Translator(language_of(request))
    response = render(request, "job.html", {
        "job": job, "actions": await job_actions(store.pool, job_id), "cases": cases[:CASES_PAGE],
        "outcome": outcome, "outcomes": ["pending", "done", "refused", "failed"],
        "next_url": url_with(request, f"/ops/jobs/{job_id}", **({"outcome": outcome} if outcome else {}),
                             after=str(more)) if more is not None else None,
        "decisions": OFFERED.get(job.state, ()) if principal.role in REPAIRERS else (),
        "can_decide": principal.role in REPAIRERS, "min_reason": MIN_REASON, "max_reason": MAX_REASON,
        "done_share": _share(job), "flash": _flash_view(take_flash(request), t),
    }, section="ops", headers=NO_STORE)
    clear_flash(response, request)
    return response


def _share(job: JobRow) -> int:
    """How much of the job is behind it, in percent."""
    return round(100 * (job.total - job.pending) / job.total) if job.total else 100


def _flash_view(payload: dict[str, Any] | None, t: Translator) -> FlashView | None:
    if not payload or payload.get("kind") not in ("job_done", "job_refused", "job_invalid"):
        return None
    decision = t.label("job_decision", str(payload.get("decision")))
    if payload["kind"] == "job_done":
        return FlashView(tone="good", lines=[t("jobs.flash.done", decision=decision,
                                               state=t.label("job_state", str(payload.get("state"))))])
    if payload["kind"] == "job_invalid":
        return FlashView(tone="bad", lines=[t("jobs.flash.invalid", decision=decision, min=MIN_REASON,
                                              max=MAX_REASON)])
    rule = str(payload.get("rule"))
    text = t.label("rule", rule)
    return FlashView(tone="bad", lines=[t("jobs.flash.refused", decision=decision)], rule=rule,
                     rule_text=text if text != rule else None, message=payload.get("message"))


@router.post("/ops/jobs/{job_id}/{decision}")
async def decide_job(request: Request, job_id: JobId,
                     decision: Annotated[Decision, Path(description=", ".join(DECISIONS))],
                     store: Store, temporal: Temporal, principal: Repairer) -> Response:
    """One decision on the job, then back to its page with the flash message of what happened."""
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    back = RedirectResponse(url_with(request, f"/ops/jobs/{job_id}"), status_code=303)
    reason = form.get("reason", "").strip()
    payload: dict[str, Any]
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        payload = {"kind": "job_invalid", "decision": decision}
    elif await get_job(store.pool, job_id) is None:
        payload = {"kind": "job_refused", "decision": decision, "rule": "not_found", "message": job_id}
    else:
        try:
            progress = await decide(await temporal.get(), job_id, decision,
                                    JobDecision(actor=actor_of(principal), reason=reason))
            payload = {"kind": "job_done", "decision": decision, "state": progress.state}
        except JobRefused as exc:
            payload = {"kind": "job_refused", "decision": decision, "rule": exc.rule, "message": exc.message[:500]}
        except RPCError as exc:
            payload = {"kind": "job_refused", "decision": decision, "rule": "temporal.error",
                       "message": exc.message[:500]}
    set_flash(back, request, payload)
    return back
