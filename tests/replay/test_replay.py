"""Recorded histories replay on today's workflow code, with the production data converter.

The histories in `histories/` were recorded by `tests/replay/record.py` from a real dev server and worker. A
failure here means a change to a workflow would break the cases already running in production: guard it with
`workflow.patched()`; do not re-record to make the failure go away.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities.rules import RULE_BOOK
from domain.common import Actor, Event
from domain.petitions.views import CaseView
from domain.rulesets import RuleDocument
from worker import project_converter
from workflows import ALL_WORKFLOWS
from workflows.petition import PetitionStart, PetitionWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
#: The rule documents the histories recorded since `rules-by-digest` name by digest (`record.py` keeps them).
RULE_SETS = Path(__file__).resolve().parent / "rule_sets"
#: Plain (`.json`, e.g. exported from the Web UI) or gzipped (`.json.gz`, as `record.py` writes them), in any
#: subfolder (e.g. `histories/<released version>/`).
FILES = sorted(p for p in HISTORIES.rglob("*") if p.name.endswith((".json", ".json.gz")))


def _front_supervision_workflow() -> type[Any] | None:
    try:
        from workflows.front_supervision import FrontSupervisionWorkflow
    except Exception:  # being written: replay the petitions without it
        return None
    return FrontSupervisionWorkflow


def _workflows() -> list[type[Any]]:
    """What the production worker registers, plus `FrontSupervisionWorkflow` when it exists."""
    found = list(ALL_WORKFLOWS)
    front = _front_supervision_workflow()
    if front is not None and front not in found:
        found.append(front)
    return found


def _name(path: Path) -> str:
    return str(path.relative_to(HISTORIES)).removesuffix(".gz").removesuffix(".json")


def _load(path: Path) -> WorkflowHistory:
    """The history in `path`, with the workflow id the server recorded in its first event."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    data = json.loads(raw)
    started = data["events"][0].get("workflowExecutionStartedEventAttributes", {})
    workflow_id = started.get("workflowId")
    assert workflow_id, f"{path.name}: the first event carries no workflowId (record it again with record.py)"
    return WorkflowHistory.from_json(workflow_id, data)


def _workflow_type(history: WorkflowHistory) -> str:
    return str(history.events[0].workflow_execution_started_event_attributes.workflow_type.name)


def _petition_histories() -> list[Path]:
    return [p for p in FILES if _workflow_type(_load(p)) == "PetitionWorkflow"]


@pytest.fixture(autouse=True, scope="module")
def _rule_documents() -> None:
    """The rule documents of the recordings in the process's book, as a worker has those of its files and of
    `rule_sets`: each is checked against its digest as it is added."""
    for path in sorted(RULE_SETS.glob("*.json")):
        RULE_BOOK.add(RuleDocument.model_validate_json(path.read_text(encoding="utf-8")))


# -- every recorded history replays -------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=_name)
async def test_a_recorded_history_replays_on_the_current_code(path: Path) -> None:
    history = _load(path)
    replayer = Replayer(workflows=_workflows(), data_converter=project_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure!r}"


def test_every_registered_workflow_has_recorded_histories() -> None:
    recorded = {_workflow_type(_load(p)) for p in FILES}
    # The registered name (`@workflow.defn(name=...)`), else the class name, as Temporal records it.
    names = {getattr(getattr(w, "__temporal_workflow_definition", None), "name", w.__name__) for w in ALL_WORKFLOWS}
    missing = names - recorded
    assert not missing, f"no recorded history of {sorted(missing)}: run `python -m tests.replay.record`"


def test_the_recorded_histories_cover_commands_timers_children_and_continue_as_new() -> None:
    """The histories are worth replaying only if they go through the workflow's branches."""
    kinds = set()
    for path in FILES:
        for event in _load(path).events:
            kinds.add(event.WhichOneof("attributes"))
    for needed in (
        "workflow_execution_update_accepted_event_attributes",  # commands (Updates)
        "activity_task_completed_event_attributes",  # appends and case rules
        "timer_fired_event_attributes",  # deadlines that came due
        "child_workflow_execution_started_event_attributes",  # split, appeal, Front supervision
        "workflow_execution_completed_event_attributes",  # archived cases
        "workflow_execution_continued_as_new_event_attributes",  # a long case handed over to a new run
    ):
        assert needed in kinds, f"no recorded history has a {needed.removesuffix('_event_attributes')}"


# -- an incompatible change is caught ---------------------------------------------------------------------


# The changed copies run unsandboxed: the sandbox would re-import this test module (which reads the histories
# folder as it loads). What catches the change is the core's matching of commands against the recorded events,
# which is the same with or without the sandbox; the real `PetitionWorkflow` above replays sandboxed.


@workflow.defn(name="PetitionWorkflow", sandboxed=False)
class PetitionWorkflowThatPausesBeforeAppending(PetitionWorkflow):
    """A change that looks harmless: wait a second before every append. It adds a timer ahead of the append
    activity, so every recorded case would fail on its next task after a deployment."""

    @workflow.run
    async def run(self, start: PetitionStart) -> CaseView | None:
        return await super().run(start)

    async def apply(self, command: Any, actor: Actor, command_id: str | None, keyed: Any = None) -> list[Event]:
        await workflow.sleep(timedelta(seconds=1))
        return await super().apply(command, actor, command_id, keyed)


@workflow.defn(name="PetitionWorkflow", sandboxed=False)
class PetitionWorkflowThatPausesBehindAPatch(PetitionWorkflow):
    """The same change done right: behind `workflow.patched`, recorded cases keep their old path."""

    @workflow.run
    async def run(self, start: PetitionStart) -> CaseView | None:
        return await super().run(start)

    async def apply(self, command: Any, actor: Actor, command_id: str | None, keyed: Any = None) -> list[Event]:
        if workflow.patched("pause-before-append"):
            await workflow.sleep(timedelta(seconds=1))
        return await super().apply(command, actor, command_id, keyed)


@pytest.mark.parametrize("path", _petition_histories(), ids=_name)
async def test_an_unpatched_change_to_the_petition_workflow_fails_replay_with_a_nondeterminism_error(
    path: Path,
) -> None:
    history = _load(path)
    # The same history, the same harness, the released code: it replays (so what fails below is the change).
    released = Replayer(workflows=[PetitionWorkflow], data_converter=project_converter())
    await released.replay_workflow(history)

    changed = Replayer(workflows=[PetitionWorkflowThatPausesBeforeAppending], data_converter=project_converter())
    with pytest.raises(workflow.NondeterminismError):
        await changed.replay_workflow(history)


@pytest.mark.parametrize("path", _petition_histories(), ids=_name)
async def test_the_same_change_behind_workflow_patched_replays(path: Path) -> None:
    patched = Replayer(workflows=[PetitionWorkflowThatPausesBehindAPatch], data_converter=project_converter())
    await patched.replay_workflow(_load(path))


def test_there_are_petition_histories_to_catch_a_change_with() -> None:
    assert len(_petition_histories()) >= 5
