"""Bulk repairs as jobs: what is stored of them (migration 0016) and how one case of a job is repaired.

A job (`ops.job_types.JobSpec`) is one repair of a fixed list of cases. Its workflow (`workflows.repair_job`)
works through the list at the job's rate and hands each case to `repair_case`, the job's activity, which calls
the per-case repair of `ops.repairs` with the requester as the operator and a command id made of the job and the
case's place in it (`case_key`). The case keeps the keys it has applied, so a repair retried after a crash is
recorded once; and before acting, the activity looks for that key in the case's stream, so a repair whose record
is already there is not done again. When an earlier attempt acted on Temporal (a retry, a reset) and was stopped
before recording it, the repair now finds nothing to do: that earlier act is then what is recorded.

Each case's outcome is written once (`finish_case`): `done`, `refused` with its rule, or `failed` with its error,
and the job's counts move in the same statement. Who asked, who decided and why is in `repair_job_actions`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.service import RPCError

from eventstore import EventStore, Pool, translate_errors

from . import repairs
from .job_types import (
    ActionRecord,
    CaseResult,
    CaseTask,
    JobSpec,
    JobState,
    Outcome,
    case_key,
)
from .repairs import RepairOutcome, RepairRefused

#: Refusals met when an earlier attempt of the same case already acted (its record was lost with its worker).
ACTED_BEFORE = frozenset({"repair.retry.nothing_failing", "repair.reset.nothing_failing"})
#: How long a job's repair waits for its record before counting it as accepted (recorded when the step ends).
RECORD_WAIT = 10.0

INSERT_JOB = """
INSERT INTO repair_jobs (job_id, action, body, target, reason, rate, state, needs_approval, requested_by,
                         requester_id, requested_at, idempotency_key, request_digest, total)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id
"""
INSERT_CASES = """
INSERT INTO repair_job_cases (job_id, position, case_id)
SELECT $1, p - 1, c FROM unnest($2::text[]) WITH ORDINALITY AS t (c, p)
ON CONFLICT DO NOTHING
"""
INSERT_ACTION = """
INSERT INTO repair_job_actions (job_id, seq, action, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
"""
UPDATE_STATE = """
UPDATE repair_jobs
   SET state = $3, state_seq = $2,
       decided_by = CASE WHEN $4 THEN $5 ELSE decided_by END,
       decision_reason = CASE WHEN $4 THEN $6 ELSE decision_reason END,
       decided_at = CASE WHEN $4 THEN $7 ELSE decided_at END,
       started_at = CASE WHEN $8 AND started_at IS NULL THEN $7 ELSE started_at END,
       finished_at = CASE WHEN $9 THEN $7 ELSE finished_at END,
       updated_at = now()
 WHERE job_id = $1 AND state_seq < $2
"""
START_CASE = """
UPDATE repair_job_cases SET attempts = attempts + 1, started_at = coalesce(started_at, now())
 WHERE job_id = $1 AND position = $2
RETURNING attempts - 1 AS before, outcome
"""
FINISH_CASE = """
WITH written AS (
    UPDATE repair_job_cases
       SET outcome = $3, rule = $4, error = $5, version = $6, detail = $7::jsonb, finished_at = now()
     WHERE job_id = $1 AND position = $2 AND outcome = 'pending'
 RETURNING outcome
)
UPDATE repair_jobs
   SET done = done + (SELECT count(*) FROM written WHERE outcome = 'done'),
       refused = refused + (SELECT count(*) FROM written WHERE outcome = 'refused'),
       failed = failed + (SELECT count(*) FROM written WHERE outcome = 'failed'),
       updated_at = now()
 WHERE job_id = $1
"""
#: The case's event written under the job's key, if there is one (the repair was recorded already).
RECORDED = """
SELECT max(version) FROM events WHERE stream_id = $1 AND metadata->>'command_id' = $2
"""


def initial_state(spec: JobSpec) -> JobState:
    return "awaiting_approval" if spec.needs_approval else "running"


async def insert_job(pool: Pool, spec: JobSpec) -> bool:
    """Write the job, its cases and its request (seq 0), unless they are there; True when this call wrote them."""
    with translate_errors():
        async with pool.acquire() as conn, conn.transaction():
            made = await conn.fetchval(
                INSERT_JOB, spec.job_id, spec.action, spec.body, json.dumps(spec.target, ensure_ascii=False),
                spec.reason, spec.rate, initial_state(spec), spec.needs_approval, spec.requester.label,
                spec.requester.id, spec.requested_at, spec.idempotency_key, spec.request_digest,
                len(spec.case_ids))
            if made is None:
                return False
            await conn.execute(INSERT_CASES, spec.job_id, spec.case_ids)
            await conn.execute(INSERT_ACTION, spec.job_id, 0, "request", spec.requester.label, spec.reason,
                               spec.requested_at)
            if not spec.needs_approval:
                await conn.execute("UPDATE repair_jobs SET started_at = $2 WHERE job_id = $1", spec.job_id,
                                   spec.requested_at)
    return True


async def record_action(pool: Pool, record: ActionRecord) -> None:
    """Write an action on a job and the state it leaves the job in (an older action never overwrites a newer)."""
    with translate_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(INSERT_ACTION, record.job_id, record.seq, record.action, record.actor, record.reason,
                               record.at)
            await conn.execute(UPDATE_STATE, record.job_id, record.seq, record.state, record.decided, record.actor,
                               record.reason, record.at, record.started, record.finished)


async def finish_case(pool: Pool, job_id: str, position: int, result: CaseResult,
                      detail: dict[str, Any] | None = None) -> None:
    """Write a case's outcome, once: a second write of the same case changes nothing."""
    with translate_errors():
        await pool.execute(FINISH_CASE, job_id, position, result.outcome, result.rule, result.error,
                           result.version, json.dumps(detail or {}, ensure_ascii=False, default=str))


# -- one case ----------------------------------------------------------------------------------------------


async def _act(client: Client, store: EventStore, task: CaseTask, key: str) -> RepairOutcome:
    """The per-case repair of `ops.repairs`, under the job's key for the case."""
    args = (client, task.case_id, task.requester, task.reason)
    common: dict[str, Any] = {"command_id": key, "wait": RECORD_WAIT, "note": task.note}
    if task.action == "retry":
        return await repairs.retry(*args, **common)
    if task.action == "reset":
        return await repairs.reset(client, store, task.case_id, task.requester, task.reason, **common)
    if task.action == "nudge":
        return await repairs.nudge(*args, body=task.body, **common)
    assert task.body is not None, "a reassignment names its body"
    return await repairs.reassign(*args, body=task.body, **common)


class CaseRun(BaseModel):
    """What `repair_case` did, for the activity to write and return."""

    result: CaseResult
    detail: dict[str, Any] = Field(default_factory=dict)


async def repair_case(client: Client, store: EventStore, task: CaseTask, *, last_attempt: bool) -> CaseRun:
    """Repair one case of a job, exactly once whatever was interrupted before. A Temporal RPC that fails is raised
    for the activity to be tried again, unless this is its `last_attempt`: the case then fails with the error."""
    key = case_key(task.job_id, task.position)
    with translate_errors():
        version = await store.pool.fetchval(RECORDED, task.case_id, key)
        started = await store.pool.fetchrow(START_CASE, task.job_id, task.position)
    if version is not None:
        return CaseRun(result=CaseResult(outcome="done", version=version), detail={"recorded_before": True})
    acted_before = started is not None and started["before"] > 0
    try:
        outcome = await _act(client, store, task, key)
    except RepairRefused as exc:
        if not (acted_before and exc.rule in ACTED_BEFORE):
            return CaseRun(result=CaseResult(outcome="refused", rule=exc.rule, error=exc.message))
        # An earlier attempt acted and was stopped before recording it: record that act, under the same key.
        outcome = await repairs.record(client, task.case_id, task.action, task.requester, task.reason,
                                       detail={**task.note, "acted_by_an_earlier_attempt": True},
                                       command_id=key, wait=RECORD_WAIT)
    except RPCError as exc:
        if not last_attempt:
            raise
        return CaseRun(result=CaseResult(outcome="failed", error=f"Temporal: {exc.message}"))
    return CaseRun(result=CaseResult(outcome="done", version=outcome.version),
                   detail={"recorded": outcome.recorded, **outcome.detail})


# -- reading -----------------------------------------------------------------------------------------------


class JobCase(BaseModel):
    position: int
    case_id: str
    outcome: Outcome
    rule: str | None = None
    error: str | None = None
    version: int | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobAction(BaseModel):
    seq: int
    action: str
    actor: str
    reason: str | None = None
    at: datetime


class JobRow(BaseModel):
    """A job as `GET /v1/ops/jobs` shows it."""

    job_id: str
    action: str
    body: str | None = None
    target: dict[str, Any]
    reason: str
    rate: float = Field(description="cases a second")
    state: JobState
    needs_approval: bool
    requested_by: str
    requested_at: datetime
    decided_by: str | None = Field(default=None, description="who approved or rejected it")
    decision_reason: str | None = None
    decided_at: datetime | None = None
    total: int
    done: int
    refused: int
    failed: int
    pending: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    requester_id: str = Field(exclude=True)
    request_digest: str = Field(exclude=True)


JOB_COLUMNS = """job_id, action, body, target, reason, rate, state, needs_approval, requested_by, requester_id,
requested_at, decided_by, decision_reason, decided_at, total, done, refused, failed,
total - done - refused - failed AS pending, started_at, finished_at, request_digest"""


def _job(row: Any) -> JobRow:
    values = dict(row)
    values["target"] = json.loads(values["target"]) if isinstance(values["target"], str) else values["target"]
    return JobRow(**values)


async def get_job(pool: Pool, job_id: str) -> JobRow | None:
    with translate_errors():
        row = await pool.fetchrow(f"SELECT {JOB_COLUMNS} FROM repair_jobs WHERE job_id = $1", job_id)
    return _job(row) if row is not None else None


async def list_jobs(pool: Pool, *, states: list[str] | None = None, limit: int = 50,
                    before: str | None = None) -> list[JobRow]:
    """Jobs newest first (`states`: only these), `limit + 1` rows at most, after the job `before`."""
    where: list[str] = ["TRUE"]
    args: list[Any] = []
    if states:
        args.append(states)
        where.append(f"state = ANY(${len(args)}::text[])")
    if before is not None:
        args.append(before)
        where.append(f"(requested_at, job_id) < (SELECT b.requested_at, b.job_id FROM repair_jobs b "
                     f"WHERE b.job_id = ${len(args)})")
    args.append(limit + 1)
    sql = (f"SELECT {JOB_COLUMNS} FROM repair_jobs WHERE {' AND '.join(where)} "
           f"ORDER BY requested_at DESC, job_id DESC LIMIT ${len(args)}")
    with translate_errors():
        rows = await pool.fetch(sql, *args)
    return [_job(r) for r in rows]


async def job_cases(pool: Pool, job_id: str, *, outcome: str | None = None, after: int = -1,
                    limit: int = 100) -> list[JobCase]:
    """The job's cases in its order, from the position after `after`, `limit + 1` rows at most."""
    with translate_errors():
        rows = await pool.fetch(
            """SELECT position, case_id, outcome, rule, error, version, attempts, started_at, finished_at
                 FROM repair_job_cases
                WHERE job_id = $1 AND position > $2 AND ($3::text IS NULL OR outcome = $3)
                ORDER BY position LIMIT $4""", job_id, after, outcome, limit + 1)
    return [JobCase(**dict(r)) for r in rows]


async def job_actions(pool: Pool, job_id: str) -> list[JobAction]:
    with translate_errors():
        rows = await pool.fetch("SELECT seq, action, actor, reason, at FROM repair_job_actions WHERE job_id = $1 "
                                "ORDER BY seq", job_id)
    return [JobAction(**dict(r)) for r in rows]


async def jobs_in_progress(pool: Pool) -> dict[str, int]:
    """How many jobs are in each state that is not an end (the metrics' gauge)."""
    with translate_errors():
        rows = await pool.fetch("SELECT state, count(*) AS n FROM repair_jobs "
                                "WHERE state IN ('awaiting_approval', 'running', 'paused') GROUP BY state")
    return {r["state"]: int(r["n"]) for r in rows}
