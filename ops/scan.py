"""The scheduled stalled scan: a Temporal Schedule (`SCHEDULE_ID`, every `DANVAN_STALLED_SCAN_EVERY` seconds, 60 by
default) starts `StalledScanWorkflow` (`workflows.stalled_scan`), whose one activity runs `run_scan`: the scan of
`ops.stalled.find_stalled` (visibility, the worker's notes of failing steps, the idle cases in SQL), written into
`stalled_findings` (migration 0014) with each look in `stalled_scans`.

Readers never ask Temporal: the case list's `stalled` filter and its counts (`api.queries`), `GET /v1/ops/stalled`
and the console's queue read the table, each in one query (`recorded_stalls`). A finding keeps since when it is
stalled (`since`, from Temporal or the record), when the scan first and last saw it, how many looks saw it, and the
repairs recorded in the case's stream since it was first seen (`RepairRecorded`: who, why, when). A finding the
scan no longer sees is closed (`cleared_at`) and kept for `KEEP_CLEARED`; the looks are kept for `KEEP_SCANS`.

After a repair the API and the console look again at that one case (`refresh_case`: one describe and one SQL
query), so the queue shows the repair's effect without waiting for the next look.

The overlap policy is SKIP: a look still running when the next is due makes that one wait for the one after. A
look that fails (Temporal or PostgreSQL down) is recorded with its error and leaves the findings as they were;
`GET /v1/ops/stalled` says when the last look was and whether it failed.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from danvan.waits import rpc_timeout
from eventstore import EventStore

from .stalled import (
    DEFAULT_POLICY,
    ScanStats,
    Stalled,
    StallPolicy,
    Subject,
    find_stalled,
    idle_stalls,
    inspect_case,
)
from .subjects import one_subject

log = logging.getLogger("danvan.ops.scan")

SCHEDULE_ID = "danvan-stalled-scan"
#: The scan workflow's id (the Schedule appends the time of each look to it).
WORKFLOW_ID = "danvan-stalled-scan"
WORKFLOW_TYPE = "StalledScanWorkflow"
#: The task queue of the worker that runs it (`workflows.shared.TASK_QUEUE`, which imports the workflows, this
#: module among theirs: named here again, and a test keeps the two the same).
TASK_QUEUE = "danvan"
#: How long closed findings and the record of past looks are kept.
KEEP_CLEARED = timedelta(days=90)
KEEP_SCANS = timedelta(days=7)
#: A repair recorded this long after its finding was closed (a record written once the repaired step ended) is
#: still counted as done about it.
REPAIR_GRACE = timedelta(hours=1)


class ScanInput(BaseModel):
    """The policy of a scheduled look (`ops.stalled.StallPolicy`)."""

    min_attempts: int = Field(default=DEFAULT_POLICY.min_attempts, ge=2, le=100)
    idle_hours: float = Field(default=DEFAULT_POLICY.idle.total_seconds() / 3600, gt=0)

    def policy(self) -> StallPolicy:
        return StallPolicy(min_attempts=self.min_attempts, idle=timedelta(hours=self.idle_hours))


class ScanInfo(BaseModel):
    """One look of the scan: when, what it found, what it cost, or why it failed."""

    scan_id: int
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    found: int = Field(description="findings open after the look")
    opened: int = Field(description="findings the look saw first")
    cleared: int = Field(description="findings the look no longer saw")
    list_calls: int
    describe_calls: int
    history_calls: int
    flagged: int = Field(description="workflows Temporal's visibility flagged")
    noted: int = Field(description="workflows whose steps the worker noted failing")
    error: str | None = None
    deliveries_pruned: int = Field(default=0, description="webhook delivery attempts older than their retention "
                                   "deleted at this look")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rpcs(self) -> int:
        return self.list_calls + self.describe_calls + self.history_calls


def _key(s: Stalled) -> tuple[str, str, str]:
    return s.case_id, s.reason, s.activity_id or ""


UPSERT_SQL = """
INSERT INTO stalled_findings AS s (case_id, reason, step, kind, lead_body, since, detail, finding,
                                   first_seen, last_seen, times_seen, subject)
SELECT f.case_id, f.reason, f.step, f.kind, f.lead_body, f.since, f.detail, f.finding::jsonb, $9, $9, 1, f.subject
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
              $8::text[], $10::text[]) AS f (case_id, reason, step, kind, lead_body, since, detail, finding, subject)
    ON CONFLICT (case_id, reason, step) WHERE cleared_at IS NULL DO UPDATE
   SET kind = EXCLUDED.kind, lead_body = EXCLUDED.lead_body, detail = EXCLUDED.detail,
       since = CASE WHEN s.reason = 'deadline_idle' THEN EXCLUDED.since ELSE least(s.since, EXCLUDED.since) END,
       finding = EXCLUDED.finding, last_seen = EXCLUDED.last_seen, times_seen = s.times_seen + 1
RETURNING (xmax = 0) AS opened
"""
#: Close the open findings (of one case, or of all: $4 NULL) the look did not see.
CLEAR_SQL = """
UPDATE stalled_findings s SET cleared_at = $5
 WHERE s.cleared_at IS NULL AND ($4::text IS NULL OR s.case_id = $4)
   AND NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[], $3::text[]) AS k (case_id, reason, step)
                    WHERE k.case_id = s.case_id AND k.reason = s.reason AND k.step = s.step)
"""
#: The repairs recorded in each case's stream while its findings were open (or soon after they closed).
REPAIRS_SQL = """
UPDATE stalled_findings f SET repairs = r.repairs
  FROM (SELECT o.finding_id,
               jsonb_agg(jsonb_build_object('action', e.data->>'action', 'actor', e.actor, 'reason', e.reason,
                                            'recorded_at', e.recorded_at, 'version', e.version)
                         ORDER BY e.version) AS repairs
          FROM stalled_findings o
          JOIN events e ON e.stream_id = o.case_id AND e.type = 'RepairRecorded' AND e.recorded_at >= o.first_seen
                       AND (o.cleared_at IS NULL OR e.recorded_at <= o.cleared_at + $2::interval)
         WHERE (o.cleared_at IS NULL OR o.cleared_at > $1::timestamptz - $2::interval)
           AND ($3::text IS NULL OR o.case_id = $3) AND o.subject = 'case'
         GROUP BY o.finding_id) r
 WHERE f.finding_id = r.finding_id AND f.repairs IS DISTINCT FROM r.repairs
"""
#: The same for the findings about a subscription or the checkpoints: their remedies are in `ops_remedies`.
SUBJECT_REPAIRS_SQL = """
UPDATE stalled_findings f SET repairs = r.repairs
  FROM (SELECT o.finding_id,
               jsonb_agg(jsonb_build_object('action', m.action, 'actor', m.actor, 'reason', m.reason,
                                            'recorded_at', m.recorded_at) ORDER BY m.id) AS repairs
          FROM stalled_findings o
          JOIN ops_remedies m ON m.subject = o.subject AND m.subject_id = o.case_id AND m.recorded_at >= o.first_seen
                             AND (o.cleared_at IS NULL OR m.recorded_at <= o.cleared_at + $2::interval)
         WHERE (o.cleared_at IS NULL OR o.cleared_at > $1::timestamptz - $2::interval)
           AND ($3::text IS NULL OR o.case_id = $3) AND o.subject <> 'case'
         GROUP BY o.finding_id) r
 WHERE f.finding_id = r.finding_id AND f.repairs IS DISTINCT FROM r.repairs
"""
SCAN_SQL = """
INSERT INTO stalled_scans (started_at, finished_at, found, opened, cleared, list_calls, describe_calls,
                           history_calls, flagged, noted, error)
VALUES ($1, $2, (SELECT count(*) FROM stalled_findings WHERE cleared_at IS NULL), $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING scan_id, found
"""
PRUNE_SQL = """
WITH scans AS (DELETE FROM stalled_scans WHERE finished_at < $1)
DELETE FROM stalled_findings WHERE cleared_at < $2
"""


async def record(store: EventStore, found: list[Stalled] | None, stats: ScanStats, started: datetime, *,
                 case_id: str | None = None, error: str | None = None, began: float | None = None) -> ScanInfo:
    """Write a look's findings (`found`; None when it failed with `error`): open the new ones, count again those
    seen before, close those it no longer saw (of `case_id` only, when the look was of one case), gather their
    repairs; and record the look itself (not for a look of one case). One transaction."""
    finished = datetime.now(UTC)
    opened = cleared = 0
    scan_id, total = 0, 0
    async with store.pool.acquire() as conn, conn.transaction():
        if found is not None:
            unique = list({_key(s): s for s in found}.values())
            cols: list[list[Any]] = [[], [], [], [], [], [], [], [], []]
            for s in unique:
                for col, value in zip(cols, (s.case_id, s.reason, s.activity_id or "", s.kind, s.lead_body, s.since,
                                             s.detail, s.model_dump_json(), s.subject), strict=True):
                    col.append(value)
            rows = await conn.fetch(UPSERT_SQL, *cols[:8], finished, cols[8])
            opened = sum(1 for r in rows if r["opened"])
            status = await conn.execute(CLEAR_SQL, cols[0], cols[1], cols[2], case_id, finished)
            cleared = int(status.split()[-1])
            await conn.execute(REPAIRS_SQL, finished, REPAIR_GRACE, case_id)
            await conn.execute(SUBJECT_REPAIRS_SQL, finished, REPAIR_GRACE, case_id)
        if case_id is None:
            row = await conn.fetchrow(SCAN_SQL, started, finished, opened, cleared, stats.list_calls,
                                      stats.describe_calls, stats.history_calls, stats.flagged, stats.noted, error)
            assert row is not None
            scan_id, total = row["scan_id"], row["found"]
            await conn.execute(PRUNE_SQL, finished - KEEP_SCANS, finished - KEEP_CLEARED)
    elapsed = (time.perf_counter() - began) * 1000 if began is not None else (finished - started).total_seconds() * 1000
    return ScanInfo(scan_id=scan_id, started_at=started, finished_at=finished, duration_ms=round(elapsed, 1),
                    found=total, opened=opened, cleared=cleared, list_calls=stats.list_calls,
                    describe_calls=stats.describe_calls, history_calls=stats.history_calls, flagged=stats.flagged,
                    noted=stats.noted, error=error)


async def run_scan(client: Client, store: EventStore, policy: StallPolicy = DEFAULT_POLICY) -> ScanInfo:
    """One look: find every stalled case and write the stalled set. A look that fails is recorded with its error
    (the findings stay as they were), then raises."""
    started, began = datetime.now(UTC), time.perf_counter()
    stats = ScanStats()
    try:
        found = await find_stalled(client, store, policy, stats=stats)
    except Exception as exc:
        message = exc.message if isinstance(exc, RPCError) else str(exc)
        await record(store, None, stats, started, error=f"{type(exc).__name__}: {message}"[:1000], began=began)
        raise
    info = await record(store, found, stats, started, began=began)
    log.info("stalled scan %d: %d findings (%d new, %d cleared), %d Temporal RPCs, %.0f ms", info.scan_id,
             info.found, info.opened, info.cleared, info.rpcs, info.duration_ms)
    return info


async def refresh_case(client: Client, store: EventStore, case_id: str, policy: StallPolicy = DEFAULT_POLICY
                       ) -> list[Stalled]:
    """Look again at one case (after a repair) and write what is found: the queue shows it at once."""
    started = datetime.now(UTC)
    stats = ScanStats()
    found = await inspect_case(client, case_id, policy, stats)
    found += await idle_stalls(store, policy, case_ids=[case_id])
    await record(store, found, stats, started, case_id=case_id)
    return found


async def refresh_subject(store: EventStore, subject: Subject, subject_id: str) -> list[Stalled]:
    """Look again at one subscription (or checkpoint signer) after a remedy, and write what is found."""
    started = datetime.now(UTC)
    found = await one_subject(store, subject, subject_id)
    await record(store, found, ScanStats(), started, case_id=subject_id)
    return found


async def refresh_after_repair(client: Client, store: EventStore, case_id: str) -> None:
    """`refresh_case`, never failing the repair it follows (the next look of the scan writes it anyway)."""
    try:
        await refresh_case(client, store, case_id)
    except Exception as exc:
        log.warning("could not look again at %s after its repair: %s", case_id, exc)


# -- reading --------------------------------------------------------------------------------------------------

READ_SQL = """
SELECT s.scan_id, s.started_at, s.finished_at, s.found AS scan_found, s.opened, s.cleared, s.list_calls,
       s.describe_calls, s.history_calls, s.flagged, s.noted, s.error,
       f.finding, f.since, f.first_seen, f.last_seen, f.times_seen, f.repairs
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT * FROM stalled_scans ORDER BY scan_id DESC LIMIT 1) s ON true
  LEFT JOIN LATERAL (
        SELECT f.* FROM stalled_findings f
          LEFT JOIN cases c ON c.case_id = f.case_id
         WHERE f.cleared_at IS NULL
           AND ($1::text IS NULL OR f.kind = $1)
           AND ($2::text IS NULL OR f.lead_body = $2 OR (f.reason = 'deadline_idle' AND $2 = ANY (c.bodies)))
           AND ($3::text IS NULL OR f.reason = $3)
           AND ($4::text[] IS NULL OR f.case_id = ANY ($4))
         ORDER BY f.since NULLS LAST, f.case_id, f.reason, f.step
         LIMIT $5) f ON true
"""


class RecordedStalls(BaseModel):
    """The stalled set as the last look of the scan wrote it, and that look (None: the scan never ran)."""

    items: list[Stalled]
    scan: ScanInfo | None


async def recorded_stalls(store: EventStore, *, kind: str | None = None, body: str | None = None,
                          reason: str | None = None, case_ids: list[str] | None = None,
                          limit: int = 10_000) -> RecordedStalls:
    """The open findings matching the filter, the longest stalled first, and the last look: one query."""
    rows = await store.pool.fetch(READ_SQL, kind, body, reason, case_ids, limit)
    scan = None
    first = rows[0]
    if first["scan_id"] is not None:
        scan = ScanInfo(scan_id=first["scan_id"], started_at=first["started_at"], finished_at=first["finished_at"],
                        duration_ms=round((first["finished_at"] - first["started_at"]).total_seconds() * 1000, 1),
                        found=first["scan_found"], opened=first["opened"], cleared=first["cleared"],
                        list_calls=first["list_calls"], describe_calls=first["describe_calls"],
                        history_calls=first["history_calls"], flagged=first["flagged"], noted=first["noted"],
                        error=first["error"])
    items = []
    for r in rows:
        if r["finding"] is None:
            continue
        finding = r["finding"] if isinstance(r["finding"], dict) else json.loads(r["finding"])
        repairs = r["repairs"] if isinstance(r["repairs"], list) else json.loads(r["repairs"])
        items.append(Stalled.model_validate({**finding, "since": r["since"], "first_seen": r["first_seen"],
                                             "last_seen": r["last_seen"], "times_seen": r["times_seen"],
                                             "repairs": repairs}))
    return RecordedStalls(items=items, scan=scan)


# -- the schedule ---------------------------------------------------------------------------------------------


def schedule_of(every: timedelta, task_queue: str = TASK_QUEUE, policy: ScanInput | None = None) -> Schedule:
    """The Schedule of the scan: a look every `every`, one at a time (SKIP)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(WORKFLOW_TYPE, policy or ScanInput(), id=WORKFLOW_ID,
                                           task_queue=task_queue, execution_timeout=timedelta(minutes=10)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
    )


async def ensure_schedule(client: Client, every_seconds: int, *, task_queue: str = TASK_QUEUE,
                          schedule_id: str = SCHEDULE_ID, policy: ScanInput | None = None
                          ) -> Literal["created", "updated", "deleted", "none"]:
    """Create the scan's Schedule (its first look at once), or bring an existing one to `every_seconds`;
    0 deletes it."""
    handle = client.get_schedule_handle(schedule_id)
    if every_seconds <= 0:
        try:
            await handle.delete(rpc_timeout=rpc_timeout())
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return "none"
            raise
        return "deleted"
    schedule = schedule_of(timedelta(seconds=every_seconds), task_queue, policy)
    try:
        await client.create_schedule(schedule_id, schedule, trigger_immediately=True, rpc_timeout=rpc_timeout())
        return "created"
    except ScheduleAlreadyRunningError:
        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(update, rpc_timeout=rpc_timeout())
        return "updated"
