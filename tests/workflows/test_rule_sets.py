"""Publishing a rule set never changes a case already received: on Temporal's time-skipping server, a case
opened under one policy file keeps its set after the workers restart on a file with a new set in force from
before its receipt, while a case received after the restart follows the new set."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.rules import DEADLINES_FILE, RulesActivities, load_rule_sets
from domain.calendar import VN_TZ
from eventstore import EventStore
from worker import build_worker
from workflows.client import send_command
from workflows.petition import PetitionStart, PetitionWorkflow

from .support import OFFICER, case_view, command, intake

#: A set in force from Fri 1 Jan 2027: complaints accepted in 5 days and resolved in 40.
NEW_SET = '''
  - version: "6"
    valid_from: 2027-01-01
    title: "Bộ quy tắc công bố sau khi vụ việc đã được tiếp nhận"
    rules:
      complaint.acceptance: {amount: 5, mark: unverified}
      complaint.resolution: {amount: 40, variants: {complex: 50, remote: 50, remote_complex: 60}, mark: unverified}
'''


@pytest_asyncio.fixture
async def env(own_time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping_env


def vn(day: str, hour: int = 9) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=VN_TZ).replace(hour=hour)


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    assert now < moment, f"the time-skipping server is at {now}: move the scenario's dates past it"
    await env.sleep(moment - now)


async def open_case(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    petition = intake("complaint", await env.get_current_time())
    handle = await env.client.start_workflow(PetitionWorkflow.run, PetitionStart(intake=petition),
                                             id=f"pet-rs-{petition.external_ref}", task_queue=task_queue)
    for _ in range(200):
        try:
            if await handle.query(PetitionWorkflow.view) is not None:
                return handle
        except RPCError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the case did not open")


async def accept(env: WorkflowEnvironment, case_id: str) -> Any:
    await send_command(env.client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"}, OFFICER))
    return await send_command(env.client, case_id, command({"type": "accept", "decision_no": "1/QĐ-TL"}, OFFICER))


def key(view: Any, name: str) -> Any:
    return next(d for d in view.deadlines if d.key == name)


async def test_a_set_published_later_changes_no_open_case_and_applies_to_the_next_receipts(
    env: WorkflowEnvironment, store: EventStore, task_queue: str, tmp_path: Path
) -> None:
    before = tmp_path / "before.yaml"
    before.write_text(DEADLINES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    after = tmp_path / "after.yaml"
    after.write_text(before.read_text(encoding="utf-8") + NEW_SET, encoding="utf-8")
    old_set, new_set = load_rule_sets(before).latest, load_rule_sets(after).latest
    assert (old_set.version, new_set.version) == ("4", "6") and old_set.digest != new_set.digest

    await skip_to(env, vn("2027-01-04"))
    # No workflow cache, so no sticky queue: the next worker takes the case's tasks at once.
    async with build_worker(env.client, store, task_queue=task_queue, rules=RulesActivities(deadlines_path=before),
                            max_cached_workflows=0):
        received = await open_case(env, task_queue)
        view = await case_view(received)
        assert view.rules is not None
        assert (view.rules.version, view.rules.digest) == ("4", old_set.digest)
        assert key(view, "complaint.acceptance").amount == 10

    # The new set is published, in force from 1 Jan 2027 (before the open case's receipt), and the workers restart.
    async with build_worker(env.client, store, task_queue=task_queue, rules=RulesActivities(deadlines_path=after)):
        await skip_to(env, vn("2027-01-05"))
        result = await accept(env, received.id)
        # Mon 4 Jan's case keeps its set: accepted Tue 5 Jan + 30 = Thu 4 Feb, in Tết -> Thu 11 Feb.
        resolution = key(result.case, "complaint.resolution")
        assert (resolution.amount, resolution.due_on) == (30, "2027-02-11")
        assert (result.case.rules.version, result.case.rules.digest) == ("4", old_set.digest)
        row = await store.get_case(received.id)
        assert row is not None and row.summary["rules"]["digest"] == old_set.digest

        fresh = await open_case(env, task_queue)
        view = await case_view(fresh)
        assert view.rules is not None
        assert (view.rules.version, view.rules.valid_from, view.rules.digest) == ("6", "2027-01-01", new_set.digest)
        assert (key(view, "complaint.acceptance").amount, key(view, "complaint.acceptance").due_on) == (5, "2027-01-11")
        result = await accept(env, fresh.id)
        # Accepted Tue 5 Jan + 40 = Sun 14 Feb -> Mon 15 Feb.
        resolution = key(result.case, "complaint.resolution")
        assert (resolution.amount, resolution.due_on) == (40, "2027-02-15")
