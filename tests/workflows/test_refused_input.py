"""A case is never broken by what it is given, even by a sender that reaches Temporal without the API: a petition
whose receipt cannot be recorded ends its run with the refusal and nothing stored, and a command whose text the
store cannot hold is refused while the case goes on. On the Temporal dev server and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.petitions.model import petition_case_id
from eventstore import EventStore
from worker import build_worker
from workflows.client import CommandRefused, open_petition, send_case_command
from workflows.petition import CommandResult, PetitionWorkflow

from .support import command, intake


async def test_a_receipt_the_case_cannot_record_ends_the_run_with_the_refusal_and_nothing_stored(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    client = temporal_env.client
    async with build_worker(client, store, task_queue=task_queue):
        for received_at, rule in ((datetime(1850, 1, 1, tzinfo=UTC), "calendar.out_of_range"),
                                  (datetime(2150, 1, 1, tzinfo=UTC), "calendar.out_of_range"),
                                  (datetime.now(UTC) + timedelta(days=2), "received_at.future")):
            petition = intake("complaint", received_at)
            case_id = petition_case_id(petition.source, petition.external_ref)
            with pytest.raises(CommandRefused) as refused:
                await open_petition(client, petition, task_queue=task_queue)
            assert refused.value.rule == rule, refused.value
            handle = client.get_workflow_handle(case_id)
            assert await handle.result() is None  # completed, not failed and not retrying a task for ever
            assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
            assert await store.stream_version(case_id) == 0 and await store.get_case(case_id) is None

            # The same petition, corrected, opens its case in a new run.
            corrected = petition.model_copy(update={"received_at": datetime.now(UTC)})
            opened = await open_petition(client, corrected, task_queue=task_queue)
            assert opened.created and opened.case.case_id == case_id
            assert await store.stream_version(case_id) == 1


async def test_text_the_store_cannot_hold_is_refused_by_the_case_itself_and_the_case_goes_on(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    client = temporal_env.client
    async with build_worker(client, store, task_queue=task_queue):
        with pytest.raises(CommandRefused) as refused:
            await open_petition(client, intake("complaint", datetime.now(UTC), subject="Khiếu\u0000nại"),
                                task_queue=task_queue)
        assert refused.value.rule == "text_nul" and "subject" in refused.value.message
        # Started with the Update anyway (update-with-start), the run refuses the same intake: no case opens.
        bell = intake("complaint", datetime.now(UTC), content="Nội dung\u0007")
        with pytest.raises(CommandRefused) as refused:
            await open_petition(client, bell, task_queue=task_queue)
        assert refused.value.rule == "text_control"
        bell_id = petition_case_id(bell.source, bell.external_ref)
        assert await client.get_workflow_handle(bell_id).result() is None
        assert await store.stream_version(bell_id) == 0 and await store.get_case(bell_id) is None

        petition = intake("complaint", datetime.now(UTC))
        opened = await open_petition(client, petition, task_queue=task_queue)
        case_id = opened.case.case_id
        version = await store.stream_version(case_id)
        for payload, rule in (
            ({"type": "classify", "lead_body": "UBND_TINH", "subject_category": "đất\u0000đai"}, "text_nul"),
            ({"type": "classify", "lead_body": "UBND_TINH", "reason": "chuông\u0007"}, "text_control"),
        ):
            with pytest.raises(CommandRefused) as refused:
                await send_case_command(client, case_id, command(payload), CommandResult)
            assert refused.value.rule == rule, refused.value
        assert await store.stream_version(case_id) == version
        done = await send_case_command(client, case_id, command({"type": "classify", "lead_body": "UBND_TINH"}),
                                       CommandResult)
        assert done.case.status == "classified"
        handle = client.get_workflow_handle_for(PetitionWorkflow.run, case_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
