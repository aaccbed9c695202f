"""Repair jobs (`ops.jobs`, `workflows.repair_job`): a bulk retry, reset, nudge or reassignment, with four eyes.

`POST /v1/ops/jobs` fixes the job's target set when it is made: the cases matching a filter (the case list's
filters and a stall reason, read in one query; a retry takes the cases with a failing or paused step, a reset
those whose workflow code is failing, as the stalled scan last found them) or a list of case ids. `dry_run`
answers that very set, and changes nothing. A reset of any case, or a job of more cases than
`DANVAN_JOB_APPROVAL_THRESHOLD`, waits for another operator's approval. An `Idempotency-Key` names the job: the
same request again answers the job made first; another request under the key is refused.

Decisions (`approve`, `reject`, `pause`, `resume`, `cancel`) are Updates of the job's workflow, each with its
operator (the token's holder) and reason, refused with their rule when they do not apply: `job.self_approval`
(403) when the requester approves their own job, `job.state` (409) when the job is not in a state that takes it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from temporalio.service import RPCError

from domain import idempotency
from domain.bodies import BODY_CODE_PATTERN
from domain.jsontypes import Boolean, Number
from domain.repairs import RepairAction
from ops.job_types import (
    DEFAULT_RATE,
    ID_PATTERN,
    MAX_CASES,
    MAX_RATE,
    MIN_RATE,
    SELF_APPROVAL,
    Decision,
    JobDecision,
    JobSpec,
    JobState,
    Outcome,
    job_id_from,
    needs_approval,
)
from ops.jobs import JobAction, JobCase, JobRow, get_job, insert_job, job_actions, job_cases, list_jobs
from ops.stalled import StallReason
from workflows.repair_job_client import JobRefused, decide, start_job

from ..auth import require
from ..deps import AppSettings, Store, Temporal
from ..errors import ApiError, FieldError, error_responses
from ..filters import STATUS_PATTERN, CaseKind, IdempotencyKey, key_reused
from ..queries import CaseFilter, existing_case_ids, matching_case_ids
from ..routing import ApiRoute
from ..tokens import Principal
from .ops import Operator, Reason, operator_actor, unavailable

router = APIRouter(prefix="/v1/ops/jobs", tags=["ops"], route_class=ApiRoute)

Reader = Annotated[Principal, Depends(require("operator", "supervisor", "admin"))]
JobId = Annotated[str, Path(pattern=ID_PATTERN, description="The job's id (`job_` and 20 letters or digits)")]
CaseIdText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
BodyText = Annotated[str, Field(min_length=2, max_length=64, pattern=BODY_CODE_PATTERN)]
#: The stall reasons a retry and a reset act on when the filter names none (those of `ops.repairs.bulk_retry`).
IMPLIED_REASONS: dict[str, tuple[str, ...]] = {"retry": ("activity_failing", "activity_paused"),
                                               "reset": ("workflow_task_failing",)}


class JobFilter(BaseModel):
    """The cases a job takes: the case list's filters (`GET /v1/cases`) and the reason the scan holds them stalled."""

    model_config = ConfigDict(extra="forbid")

    kind: CaseKind | None = None
    body: BodyText | None = Field(default=None, description="led by, or coordinated by, this body")
    status: str | None = Field(default=None, min_length=1, max_length=50, pattern=STATUS_PATTERN)
    district: str | None = Field(default=None, min_length=1, max_length=100)
    overdue: Boolean | None = None
    stalled: Boolean | None = None
    reason: StallReason | None = Field(default=None, description="stalled for this reason (default: a retry takes "
                                       "failing or paused steps, a reset failing workflow code)")


class JobTarget(BaseModel):
    """A filter or a list of case ids, not both."""

    model_config = ConfigDict(extra="forbid")

    filter: JobFilter | None = None
    case_ids: list[CaseIdText] | None = Field(default=None, min_length=1, max_length=MAX_CASES)

    @model_validator(mode="after")
    def _one(self) -> JobTarget:
        if (self.filter is None) == (self.case_ids is None):
            raise PydanticCustomError("target.one_of", "give either a filter or a list of case ids")
        return self


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: RepairAction
    body: BodyText | None = Field(default=None, description="the body to nudge (default: every body each case "
                                  "waits on), or to reassign the cases to (required)")
    target: JobTarget
    reason: Reason
    rate: Number = Field(default=DEFAULT_RATE, ge=MIN_RATE, le=MAX_RATE, description="cases a second")
    dry_run: Boolean = Field(default=False, description="answer the exact set of cases, and change nothing")

    @model_validator(mode="after")
    def _body(self) -> JobRequest:
        if self.action == "reassign" and self.body is None:
            raise PydanticCustomError("job.body_required", "a reassignment names the body the cases go to")
        if self.action in ("retry", "reset") and self.body is not None:
            raise PydanticCustomError("job.body_unused", "a retry or a reset names no body")
        return self


class JobCreated(BaseModel):
    dry_run: bool
    needs_approval: bool
    threshold: int = Field(description="a job of more cases than this needs a second operator's approval")
    total: int
    case_ids: list[str] = Field(description="the job's cases, in the order it works through them")
    job: JobRow | None = Field(default=None, description="the job made (none on a dry run)")
    duplicate: bool = Field(default=False, description="the job was made by an earlier request under this key")


class JobList(BaseModel):
    items: list[JobRow]
    next_before: str | None = Field(description="the `before` of the next page (none: the last page)")


class JobDetail(BaseModel):
    job: JobRow
    actions: list[JobAction] = Field(description="who requested, decided, paused, resumed or cancelled it, and why")
    cases: list[JobCase] = Field(description="a page of the job's cases in its order, with their outcomes")
    next_after: int | None = Field(description="the `after` of the next page of cases (none: the last page)")


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


def _digest(payload: JobRequest) -> str:
    return idempotency.digest(payload.model_dump(mode="json", exclude={"dry_run"}, exclude_defaults=True))


async def _targets(store: Store, payload: JobRequest) -> list[str]:
    """The exact set of cases the job takes, in its order."""
    target = payload.target
    if target.case_ids is not None:
        ids = list(dict.fromkeys(target.case_ids))
        known = await existing_case_ids(store.pool, ids)
        unknown = [c for c in ids if c not in known]
        if unknown:
            message = f"no such case: {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else "")
            raise ApiError(422, "case_unknown", message,
                           fields=[FieldError(field="target.case_ids", rule="case_unknown", message=message)])
        return ids
    f = target.filter or JobFilter()
    reasons = (f.reason,) if f.reason else IMPLIED_REASONS.get(payload.action)
    filters = CaseFilter(kind=f.kind.value if f.kind else None, body=f.body, status=f.status, district=f.district,
                         overdue=f.overdue, stalled=f.stalled, stall_reasons=reasons)
    ids = await matching_case_ids(store.pool, filters, limit=MAX_CASES)
    if len(ids) > MAX_CASES:
        message = f"the filter matches more than {MAX_CASES} cases: narrow it, or make several jobs"
        raise ApiError(422, "job.too_many", message,
                       fields=[FieldError(field="target.filter", rule="job.too_many", message=message)])
    return ids


def _same_request(row: JobRow, principal: Principal, digest: str) -> JobRow:
    if row.requester_id != principal.label or row.request_digest != digest:
        raise key_reused("the Idempotency-Key was already used for another job request (another action, target, "
                         "reason or rate, or another operator): send a new key for a new job; nothing was changed")
    return row


@router.post("", response_model=JobCreated, summary="Make a repair job (or show its exact cases: dry_run)",
             responses=error_responses(401, 403, 409, 422, 503))
async def create_job(payload: JobRequest, store: Store, temporal: Temporal, principal: Operator,
                     settings: AppSettings, idempotency_key: IdempotencyKey = None) -> JobCreated:
    """A retry, reset, nudge or reassignment of every case of the target, fixed now, at `rate` cases a second.
    A reset, or more cases than the threshold, waits for another operator's approval. Roles: `operator`, `admin`."""
    threshold = settings.job_approval_threshold
    digest = _digest(payload)
    seed = f"{principal.label}\0{idempotency_key}" if idempotency_key else secrets.token_hex(16)
    job_id = job_id_from(seed.encode("utf-8"))
    if idempotency_key and not payload.dry_run and (first := await get_job(store.pool, job_id)) is not None:
        row = _same_request(first, principal, digest)
        return JobCreated(dry_run=False, needs_approval=row.needs_approval, threshold=threshold, total=row.total,
                          case_ids=[c.case_id for c in await job_cases(store.pool, job_id, limit=MAX_CASES)],
                          job=row, duplicate=True)
    case_ids = await _targets(store, payload)
    approval = needs_approval(payload.action, len(case_ids), threshold)
    answer = JobCreated(dry_run=payload.dry_run, needs_approval=approval, threshold=threshold, total=len(case_ids),
                        case_ids=case_ids)
    if payload.dry_run:
        return answer
    if not case_ids:
        raise ApiError(409, "job.no_cases", "no case matches the target: there is nothing to do")
    spec = JobSpec(job_id=job_id, action=payload.action, body=payload.body, reason=payload.reason,
                   rate=payload.rate, case_ids=case_ids, requester=operator_actor(principal),
                   requested_at=datetime.now(UTC), needs_approval=approval,
                   target=payload.target.model_dump(mode="json", exclude_none=True),
                   idempotency_key=idempotency_key, request_digest=digest)
    try:
        await start_job(await temporal.get(), spec)
    except RPCError as exc:
        raise unavailable(exc) from exc
    await insert_job(store.pool, spec)
    made = await get_job(store.pool, job_id)
    assert made is not None
    return answer.model_copy(update={"job": _same_request(made, principal, digest)})


@router.get("", response_model=JobList, summary="Repair jobs, newest first", responses=error_responses(401, 403, 422))
async def jobs(store: Store, principal: Reader,
               state: Annotated[list[JobState] | None, Query(description="only jobs in these states")] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50,
               before: Annotated[str | None, Query(pattern=ID_PATTERN, description="the job the page follows")] = None,
               ) -> JobList:
    """Every job with its state and counts: `state=running&state=paused` for those in progress.
    Roles: `operator`, `supervisor`, `admin`."""
    rows = await list_jobs(store.pool, states=list(state) if state else None, limit=limit, before=before)
    return JobList(items=rows[:limit], next_before=rows[limit - 1].job_id if len(rows) > limit else None)


@router.get("/{job_id}", response_model=JobDetail, summary="One repair job: progress, decisions, outcomes",
            responses=error_responses(401, 403, 404, 422))
async def job(job_id: JobId, store: Store, principal: Reader,
              outcome: Annotated[Outcome | None, Query(description="only the cases with this outcome")] = None,
              after: Annotated[int, Query(ge=-1, le=MAX_CASES, description="the position the page follows")] = -1,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JobDetail:
    """The job, who requested and decided on it and why, and a page of its cases with their outcomes (`done`,
    `refused` with the rule, `failed` with the error, `pending`). Roles: `operator`, `supervisor`, `admin`."""
    row = await get_job(store.pool, job_id)
    if row is None:
        raise ApiError(404, "not_found", f"there is no job {job_id}")
    cases = await job_cases(store.pool, job_id, outcome=outcome, after=after, limit=limit)
    return JobDetail(job=row, actions=await job_actions(store.pool, job_id), cases=cases[:limit],
                     next_after=cases[limit - 1].position if len(cases) > limit else None)


DECISION_STATUS: dict[str, int] = {SELF_APPROVAL: 403, "job.role": 403}


async def _decide(decision: Decision, job_id: str, payload: DecisionBody, store: Store, temporal: Temporal,
                  principal: Principal) -> JobRow:
    if await get_job(store.pool, job_id) is None:
        raise ApiError(404, "not_found", f"there is no job {job_id}")
    request = JobDecision(actor=operator_actor(principal), reason=payload.reason)
    try:
        await decide(await temporal.get(), job_id, decision, request)
    except JobRefused as exc:
        raise ApiError(DECISION_STATUS.get(exc.rule, 409), exc.rule, exc.message) from exc
    except RPCError as exc:
        raise unavailable(exc) from exc
    row = await get_job(store.pool, job_id)
    assert row is not None
    return row


def _decision_route(decision: Decision, summary: str, doc: str) -> None:
    async def endpoint(job_id: JobId, payload: DecisionBody, store: Store, temporal: Temporal,
                       principal: Operator) -> JobRow:
        return await _decide(decision, job_id, payload, store, temporal, principal)

    endpoint.__doc__ = doc + " Roles: `operator`, `admin`."
    endpoint.__name__ = f"{decision}_job"
    router.add_api_route(f"/{{job_id}}/{decision}", endpoint, methods=["POST"], response_model=JobRow,
                         summary=summary, responses=error_responses(401, 403, 404, 409, 422, 503))


for _decision, _summary, _doc in [
    ("approve", "Approve a job awaiting approval", "The job starts. Never by its requester (`job.self_approval`)."),
    ("reject", "Reject a job awaiting approval", "The job ends; no case is touched."),
    ("pause", "Pause a running job", "It stops before its next case."),
    ("resume", "Resume a paused job", "It goes on with its next case."),
    ("cancel", "Cancel a job", "It stops after the case under way; the rest stay pending."),
]:
    _decision_route(_decision, _summary, _doc)  # type: ignore[arg-type]
