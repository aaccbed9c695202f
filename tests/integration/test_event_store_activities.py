"""The event-store activities on a real Temporal dev server and a real PostgreSQL, wired by `worker.py`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment

with workflow.unsafe.imports_passed_through():
    from activities.eventstore import AppendEventsInput, EventStoreActivities, ReadStreamInput
    from eventstore import CaseRow, EventStore, NewEvent
    from worker import build_worker


class DemoInput(BaseModel):
    stream_id: str
    text: str
    expected_version: int = 0


class DemoResult(BaseModel):
    first_version: int
    first_duplicate: bool
    retried_duplicate: bool
    read_back: list[str]
    error_type: str | None = None


@workflow.defn
class AppendThroughActivityWorkflow:
    """Appends one event, repeats the very same append (as a retry after a lost reply would), reads back."""

    @workflow.run
    async def run(self, request: DemoInput) -> DemoResult:
        timeout = timedelta(seconds=10)
        event = NewEvent(
            event_id=workflow.uuid4(), type="Noted", occurred_at=workflow.now(), actor="test",
            data={"text": request.text},
        )
        append = AppendEventsInput(
            stream_id=request.stream_id, expected_version=request.expected_version, events=[event],
            case=CaseRow(kind="complaint", status="received", title=request.text),
        )
        try:
            first = await workflow.execute_activity_method(
                EventStoreActivities.append_events, append,
                retry_policy=RetryPolicy(maximum_attempts=3), start_to_close_timeout=timeout,
            )
        except ActivityError as exc:
            cause = exc.cause
            return DemoResult(
                first_version=-1, first_duplicate=False, retried_duplicate=False, read_back=[],
                error_type=cause.type if isinstance(cause, ApplicationError) else None,
            )
        again = await workflow.execute_activity_method(EventStoreActivities.append_events, append,
                                                       start_to_close_timeout=timeout)
        read = await workflow.execute_activity_method(
            EventStoreActivities.read_stream, ReadStreamInput(stream_id=request.stream_id),
            start_to_close_timeout=timeout,
        )
        return DemoResult(
            first_version=first.version, first_duplicate=first.duplicate, retried_duplicate=again.duplicate,
            read_back=[e.data["text"] for e in read.events],
        )


async def test_a_workflow_appends_through_the_activity_and_a_repeated_append_is_a_no_op(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    worker = build_worker(
        temporal_env.client, store, task_queue=task_queue, workflows=[AppendThroughActivityWorkflow]
    )
    async with worker:
        result = await temporal_env.client.execute_workflow(
            AppendThroughActivityWorkflow.run,
            DemoInput(stream_id=f"wf-{task_queue}", text="Kiến nghị của cử tri xã Thanh Hà"),
            id=f"wf-{task_queue}",
            task_queue=task_queue,
        )
    assert (result.first_version, result.first_duplicate, result.retried_duplicate) == (1, False, True)
    assert result.read_back == ["Kiến nghị của cử tri xã Thanh Hà"]
    case = await store.get_case(f"wf-{task_queue}")
    assert case is not None and case.title == "Kiến nghị của cử tri xã Thanh Hà"


async def test_a_version_conflict_reaches_the_workflow_as_a_final_typed_failure(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    stream = f"wf-{task_queue}"
    await store.append(stream, 0, [NewEvent(event_id=uuid.uuid4(), type="Other",
                                            occurred_at=datetime(2026, 1, 5, tzinfo=UTC))])
    worker = build_worker(
        temporal_env.client, store, task_queue=task_queue, workflows=[AppendThroughActivityWorkflow]
    )
    async with worker:
        result = await temporal_env.client.execute_workflow(
            AppendThroughActivityWorkflow.run,
            DemoInput(stream_id=stream, text="x", expected_version=0),
            id=stream,
            task_queue=task_queue,
        )
    assert result.error_type == "ConcurrencyError"
    assert await store.stream_version(stream) == 1
