"""The stalled scan reads Temporal's side from visibility, on the real dev server: a case whose workflow code keeps
failing (`TemporalReportedProblems`), one with a paused step (`TemporalPauseInfo`) and one whose step keeps
failing (which Temporal does not flag: the worker's notes, `ops.steps`) are found, and a healthy case is never
described."""

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

from danvan import visibility
from domain.common import Event
from eventstore import EventStore
from ops.stalled import ScanStats, Stalled, describe_all_stalls, listed, temporal_stalls
from ops.steps import StepNotes
from worker import build_worker
from workflows import ALL_WORKFLOWS
from workflows.client import open_petition, send_command
from workflows.petition import PetitionStart, PetitionWorkflow

from ..faults import AppendFault
from ..workflows.support import command, intake
from .test_repairs import FAST, until


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
