"""The stalled scan reads Temporal's side from visibility, on the real dev server: a case whose workflow code keeps
failing (`TemporalReportedProblems`), one with a paused step (`TemporalPauseInfo`) and one whose step keeps
failing (which Temporal does not flag: the worker's notes, `ops.steps`) are found, and a healthy case is never
described. The scan's Schedule writes the stalled set the case list reads, and keeps what was done about it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import PauseActivityRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.queries import CaseFilter, count_cases, list_cases
from danvan import visibility
from domain.common import Event
from eventstore import EventStore
from ops.repairs import retry
from ops.scan import ScanInput, ensure_schedule, recorded_stalls, refresh_case
from ops.stalled import ScanStats, Stalled, describe_all_stalls, listed, temporal_stalls
from ops.steps import StepNotes
from worker import build_worker
from workflows import ALL_WORKFLOWS
from workflows.client import open_petition, send_command
from workflows.petition import PetitionStart, PetitionWorkflow

from ..faults import AppendFault
from ..workflows.support import command, intake
from .test_repairs import FAST, OPERATOR, REASON, until


@workflow.defn(name="PetitionWorkflow", sandboxed=False)
class PetitionWorkflowWithABug(PetitionWorkflow):
    """A build with a bug: once a case is classified its workflow code raises, at every attempt."""

    @workflow.init
    def __init__(self, start: PetitionStart) -> None:
        super().__init__(start)

    @workflow.run
    async def run(self, start: PetitionStart) -> Any:
        return await super().run(start)

    async def after_append(self, events: list[Event]) -> None:
        await super().after_append(events)
        if any(ev.event_type() == "Classified" for ev in events):
            raise RuntimeError("bug: the classified case cannot be routed")


def buggy_build(client: Client, store: EventStore, task_queue: str) -> Any:
    others: Sequence[type[Any]] = [w for w in ALL_WORKFLOWS if w is not PetitionWorkflow]
    return build_worker(client, store, task_queue=task_queue, workflows=[PetitionWorkflowWithABug, *others])


@pytest_asyncio.fixture
async def client(temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str) -> AsyncIterator[Client]:
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        yield temporal_env.client


async def open_case(client: Client, task_queue: str) -> str:
    opened = await open_petition(client, intake("complaint", datetime.now(UTC)), task_queue=task_queue)
    return opened.case.case_id


def classify(client: Client, case_id: str) -> asyncio.Task[Any]:
    return asyncio.create_task(send_command(client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"})))


async def test_the_scan_finds_failing_code_a_paused_step_and_a_failing_step_and_never_describes_a_healthy_case(
    client: Client, store: EventStore, task_queue: str
) -> None:
    notes = StepNotes(store)
    healthy = await open_case(client, task_queue)
    await send_command(client, healthy, command({"type": "classify", "lead_body": "UBND_TINH"}))
    failing, paused = await open_case(client, task_queue), await open_case(client, task_queue)
    buggy_queue = f"{task_queue}-bug"
    fault = AppendFault(store, failing, paused, message="injected fault: the archive is unreachable")
    await fault.inject()
    sent: list[asyncio.Task[Any]] = []
    try:
        async with buggy_build(client, store, buggy_queue):
            broken = await open_case(client, buggy_queue)
            sent += [classify(client, case_id) for case_id in (failing, paused, broken)]

            async def step_of_paused() -> str | None:
                desc = await client.get_workflow_handle(paused).describe()
                steps = desc.raw_description.pending_activities
                return steps[0].activity_id if steps and steps[0].attempt >= 2 else None

            step = await until(step_of_paused, "the paused case's step to fail")
            await client.workflow_service.pause_activity(PauseActivityRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=paused), identity="ops-test",
                id=step, reason="chờ khôi phục kho lưu trữ"))
            looks: list[ScanStats] = []

            async def all_three() -> dict[str, list[Stalled]] | None:
                stats = ScanStats()
                found = await temporal_stalls(client, FAST, notes=notes, stats=stats)
                looks.append(stats)
                mine = {c: [s for s in found if s.case_id == c] for c in (broken, paused, failing)}
                return mine if all(mine.values()) else None

            mine = await until(all_three, "the scan to find the three stalled cases", timeout=60)
            assert [s.reason for s in mine[broken]] == ["workflow_task_failing"]
            assert "bug: the classified case cannot be routed" in mine[broken][0].detail
            assert [s.reason for s in mine[paused]] == ["activity_paused"]
            assert "chờ khôi phục kho lưu trữ" in mine[paused][0].detail
            assert [s.reason for s in mine[failing]] == ["activity_failing"]
            assert "injected fault: the archive is unreachable" in mine[failing][0].detail
            assert all(s.kind == "complaint" and s.lead_body for c in mine for s in mine[c])

            # The healthy case was never described, and a look costs what the stalled cases cost.
            assert all(healthy not in look.described for look in looks)
            last = looks[-1]
            assert {broken, paused, failing} <= last.described
            assert last.describe_calls == len(last.described) and last.list_calls == 1
            # Visibility flags the failing code and the paused step; the failing step only the worker's notes name.
            flagged = await listed(client, visibility.flagged(ExecutionStatus="Running"), 1000)
            assert {broken, paused} <= set(flagged) and failing not in flagged and healthy not in flagged
            assert failing in {s.workflow_id for s in await notes.retrying(1, 1000)}

            # Describing everything finds the same, at the cost of every running workflow.
            everything = ScanStats()
            found = await describe_all_stalls(client, FAST, stats=everything)
            assert {(s.case_id, s.reason) for s in found} >= {(c, s.reason) for c in mine for s in mine[c]}
            assert healthy in everything.described and everything.describe_calls > last.describe_calls
            await client.get_workflow_handle(broken).terminate("test over")
    finally:
        await fault.remove()
        for task in sent:
            task.cancel()
        for case_id in (failing, paused):
            with contextlib.suppress(Exception):
                await client.get_workflow_handle(case_id).terminate("test over")
    # Their steps are no longer pending: the next look forgets their notes.
    stats = ScanStats()
    await temporal_stalls(client, FAST, notes=notes, stats=stats)
    left = {s.workflow_id for s in await notes.retrying(1, 1000)}
    assert failing not in left and paused not in left and stats.forgotten >= 1


async def test_the_schedule_writes_the_stalled_set_the_list_reads_and_keeps_what_was_done(
    client: Client, store: EventStore, task_queue: str
) -> None:
    case_id = await open_case(client, task_queue)
    fault = AppendFault(store, case_id, message="injected fault: disk full on the archive")
    await fault.inject()
    sent = classify(client, case_id)
    schedule_id = f"stalled-scan-{task_queue}"
    assert await ensure_schedule(client, 1, task_queue=task_queue, schedule_id=schedule_id,
                                 policy=ScanInput(min_attempts=2)) == "created"
    try:
        async def seen_twice() -> Stalled | None:
            recorded = await recorded_stalls(store, case_ids=[case_id])
            found = [s for s in recorded.items if s.reason == "activity_failing"]
            return found[0] if found and (found[0].times_seen or 0) >= 2 else None

        finding = await until(seen_twice, "two looks of the schedule to see the failing step", timeout=60)
        assert finding.first_seen is not None and finding.last_seen is not None
        assert finding.first_seen < finding.last_seen
        assert finding.since is not None and finding.since <= finding.first_seen
        assert "disk full on the archive" in finding.detail and finding.kind == "complaint"
        described = await client.get_schedule_handle(schedule_id).describe()
        assert len(described.info.recent_actions) >= 2
        # The case list, its counts and the stalled filter read the table in their own statement.
        listed, _ = await list_cases(store.pool, CaseFilter(stalled=True, kind="complaint"), limit=200)
        assert case_id in {c.case_id for c in listed}
        others, _ = await list_cases(store.pool, CaseFilter(stalled=False, kind="complaint"), limit=200)
        assert case_id not in {c.case_id for c in others}
        assert (await count_cases(store.pool, CaseFilter(stalled=True))).total >= 1
        # An update of the schedule (another interval) keeps it; 0 deletes it.
        assert await ensure_schedule(client, 2, task_queue=task_queue, schedule_id=schedule_id,
                                     policy=ScanInput(min_attempts=2)) == "updated"
    finally:
        await fault.remove()
    try:
        outcome = await retry(client, case_id, OPERATOR, REASON)
        assert outcome.recorded  # the stuck classification was stored before the record
        sent.cancel()
        assert [e.type for e in await store.read_stream(case_id)] == ["PetitionReceived", "Classified",
                                                                      "RepairRecorded"]
        await refresh_case(client, store, case_id, FAST)  # what the API and the console do after a repair
        assert [s for s in (await recorded_stalls(store, case_ids=[case_id])).items] == []
        row = await store.pool.fetchrow("SELECT cleared_at, times_seen, repairs FROM stalled_findings "
                                        "WHERE case_id = $1 AND reason = 'activity_failing'", case_id)
        assert row["cleared_at"] is not None and row["times_seen"] >= 2
        (repair,) = row["repairs"]
        assert repair["action"] == "retry" and repair["actor"] == "operator:Nguyễn Thị Vận hành"
        assert repair["reason"] == REASON
    finally:
        assert await ensure_schedule(client, 0, schedule_id=schedule_id) == "deleted"
