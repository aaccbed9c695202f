"""A case's history with its process: domain events merged with Temporal's history of every run.

Real petitions on the dev server (opened through `POST /v1/petitions`, driven through the commands endpoint),
and the pure conversion over the recorded histories of `tests/replay/histories`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from api.timeline import merge, process_entries, run_info
from domain.petitions.model import PetitionIntake
from eventstore import EventStore
from workflows.petition import PetitionStart, PetitionWorkflow
from workflows.shared import TASK_QUEUE

from .support import Api, petition, seed_case, token, unique

HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories"
ROOT = Path(__file__).resolve().parent.parent.parent


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    intake: str
    source: str
    body: str
    other_body: str
    supervisor: str
    operator: str
    admin: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("timeline-backoffice")
    return Tokens(
        intake=await token(store, "intake", label=source), source=source,
        body=await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh"),
        other_body=await token(store, "body", "SO_TAI_NGUYEN", label="cán bộ Sở TN&MT"),
        supervisor=await token(store, "supervisor", label="giám sát viên"),
        operator=await token(store, "operator"), admin=await token(store, "admin"),
    )


async def open_case(api: Api, tokens: Tokens, **overrides: Any) -> str:
    opened = await api.post("/v1/petitions", tokens.intake,
                            json=petition(tokens.source, receiving_body="UBND_TINH", **overrides))
    assert opened.status_code == 201, opened.text
    return str(opened.json()["case_id"])


async def command(api: Api, tok: str, case_id: str, body: dict[str, Any]) -> None:
    answer = await api.post(f"/v1/cases/{case_id}/commands", tok, json=body,
                            headers={"Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 200, answer.text


async def timeline_of(api: Api, tok: str, case_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/cases/{case_id}/history", tok, params={"include": "process"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def process(history: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in history["timeline"] if e["kind"] == "process"]


async def test_the_process_timeline_interleaves_each_domain_event_inside_the_activity_that_stored_it(
    api: Api, tokens: Tokens
) -> None:
    case_id = await open_case(api, tokens)
    await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    await command(api, tokens.body, case_id, {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Hoà"})
    history = await timeline_of(api, tokens.supervisor, case_id)

    # The domain side is unchanged, and every event is in the timeline once, in version order.
    assert [e["type"] for e in history["events"]] == ["PetitionReceived", "Classified", "Assigned"]
    assert history["integrity"]["ok"] is True
    domain = [e for e in history["timeline"] if e["kind"] == "domain"]
    assert [(e["version"], e["type"]) for e in domain] == [(1, "PetitionReceived"), (2, "Classified"),
                                                           (3, "Assigned")]
    assert domain[1]["actor"] == history["events"][1]["actor"]

    steps = process(history)
    assert steps[0]["event"] == "WorkflowExecutionStarted" and "PetitionWorkflow" in steps[0]["summary"]
    assert [s["event_id"] for s in steps] == sorted(s["event_id"] for s in steps)  # one run, in event order
    events = [s["event"] for s in steps]
    assert events.count("WorkflowExecutionUpdateAccepted") >= 3  # receive, classify, assign
    updates = {s["update"] for s in steps if s["event"] == "WorkflowExecutionUpdateAccepted"}
    assert updates == {"receive", "classify", "assign"}  # each command under its own name
    started = [s for s in steps if s["event"] == "ActivityTaskStarted"]
    assert {s["activity"] for s in started} >= {"case_rules_ref", "append_events"}
    assert all(s["attempt"] == 1 and s["failure"] is None for s in started)
    assert "TimerStarted" in events
    assert history["process"]["found"] is True and history["process"]["complete"] is True
    assert [r["status"] for r in history["process"]["runs"]] == ["running"]
    assert any("never enter" in note for note in history["process"]["notes"])  # refused updates: said so

    # Each domain event sits between the start and the completion of the append activity that stored it.
    timeline = history["timeline"]
    for i, entry in enumerate(timeline):
        if entry["kind"] != "domain":
            continue
        before = next(e for e in reversed(timeline[:i]) if e["kind"] == "process")
        after = next(e for e in timeline[i + 1:] if e["kind"] == "process")
        assert (before["event"], before["activity"]) == ("ActivityTaskStarted", "append_events"), entry
        assert (after["event"], after["activity_id"]) == ("ActivityTaskCompleted", before["activity_id"]), entry
    times = [e["at"] for e in timeline]
    assert [datetime.fromisoformat(t) for t in times] == sorted(datetime.fromisoformat(t) for t in times)


async def test_no_payload_of_the_process_reaches_the_timeline(api: Api, tokens: Tokens) -> None:
    secret = "Số nhà 17 ngõ Kín"
    case_id = await open_case(api, tokens, petitioner={"name": "Trần Văn Riêng", "address": secret},
                              content=f"Nội dung riêng tư {secret}")
    await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    history = await timeline_of(api, tokens.supervisor, case_id)
    shown = json.dumps({"timeline": history["timeline"], "process": history["process"]}, ensure_ascii=False)
    for private in (secret, "Trần Văn Riêng", "Nội dung riêng tư", "Khiếu nại về bồi thường"):
        assert private not in shown


async def test_a_deadline_timer_that_fires_is_in_the_timeline_before_the_event_it_caused(
    api: Api, tokens: Tokens
) -> None:
    # Received weeks ago: the acceptance deadline has passed, so the case's first timer waits one second.
    received = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    case_id = await open_case(api, tokens, received_at=received)
    history: dict[str, Any] = {}
    for _ in range(100):
        history = await timeline_of(api, tokens.supervisor, case_id)
        if any(s["event"] == "TimerFired" for s in process(history)) and len(history["events"]) > 1:
            break
        await asyncio.sleep(0.1)
    timeline = history["timeline"]
    fired = next(i for i, e in enumerate(timeline) if e.get("event") == "TimerFired")
    started = next(e for e in timeline if e.get("event") == "TimerStarted")
    assert started["timer_id"] == timeline[fired]["timer_id"] and started["fire_after_seconds"] == 1
    caused = [e for e in timeline[fired:] if e["kind"] == "domain"]
    assert caused and caused[0]["type"].startswith("Deadline"), caused


async def test_a_case_continued_as_new_shows_every_run_oldest_first(
    api: Api, tokens: Tokens, temporal_env: WorkflowEnvironment, store: EventStore
) -> None:
    case_id = unique("pet-long")
    intake = PetitionIntake.model_validate(petition(tokens.source, receiving_body="UBND_TINH"))
    await temporal_env.client.start_workflow(
        PetitionWorkflow.run, PetitionStart(intake=intake, history_limit=50), id=case_id, task_queue=TASK_QUEUE
    )
    for _ in range(100):
        if await store.stream_version(case_id) > 0:
            break
        await asyncio.sleep(0.1)
    await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    for n in range(8):
        await command(api, tokens.body, case_id, {"type": "assign", "body": "UBND_TINH", "officer": f"Cán bộ {n}"})
    history: dict[str, Any] = {}
    for _ in range(100):
        history = await timeline_of(api, tokens.supervisor, case_id)
        if len(history["process"]["runs"]) > 1:
            break
        await asyncio.sleep(0.1)
    runs = history["process"]["runs"]
    assert len(runs) >= 2
    assert runs[0]["status"] == "continued_as_new" and runs[-1]["status"] == "running"
    steps = process(history)
    assert [s["run_id"] for s in steps if s["event"] == "WorkflowExecutionStarted"] == [r["run_id"] for r in runs]
    handover = next(i for i, s in enumerate(steps) if s["event"] == "WorkflowExecutionContinuedAsNew")
    assert steps[handover]["run_id"] == runs[0]["run_id"]
    assert steps[handover + 1]["event"] == "WorkflowExecutionStarted"
    assert runs[0]["run_id"] in steps[handover + 1]["summary"]
    assert [e["version"] for e in history["timeline"] if e["kind"] == "domain"] == list(
        range(1, len(history["events"]) + 1))


async def test_a_case_temporal_does_not_know_gives_its_domain_events_and_says_so(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await seed_case(store, events=2, lead_body="UBND_TINH")
    history = await timeline_of(api, tokens.supervisor, case_id)
    assert history["process"]["found"] is False and history["process"]["runs"] == []
    assert [e["version"] for e in history["timeline"]] == [1, 2]
    plain = (await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)).json()
    assert plain["timeline"] is None and plain["process"] is None


async def test_who_may_read_the_process_is_who_may_read_the_history(api: Api, tokens: Tokens) -> None:
    case_id = await open_case(api, tokens)
    for tok in (tokens.supervisor, tokens.operator, tokens.admin, tokens.body):
        response = await api.get(f"/v1/cases/{case_id}/history", tok, params={"include": "process"})
        assert response.status_code == 200, response.text
    refused = await api.get(f"/v1/cases/{case_id}/history", tokens.other_body, params={"include": "process"})
    assert refused.status_code == 403 and "timeline" not in refused.text
    assert (await api.get(f"/v1/cases/{case_id}/history", tokens.intake,
                          params={"include": "process"})).status_code == 403
    assert (await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor)).status_code == 200
    bad = await api.get(f"/v1/cases/{case_id}/history", tokens.supervisor, params={"include": "payloads"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "include"


async def test_the_cli_prints_the_same_merged_timeline(
    api: Api, tokens: Tokens, database_url: str, temporal_env: WorkflowEnvironment
) -> None:
    case_id = await open_case(api, tokens)
    await command(api, tokens.body, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    env = {**os.environ, "DATABASE_URL": database_url,
           "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "danvan.cli", "history", case_id, "--process", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    lines = text.splitlines()
    received = next(i for i, line in enumerate(lines) if "PetitionReceived" in line)
    classified = next(i for i, line in enumerate(lines) if "Classified" in line)
    assert received < classified
    assert "· " in lines[received - 1] and "activity append_events started" in lines[received - 1]
    assert any("workflow PetitionWorkflow started" in line for line in lines[:received])
    assert "update classify accepted" in text and "integrity: ok" in text and "note:" in text

    as_json = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "danvan.cli", "history", case_id, "--process", "--json", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await as_json.communicate()
    assert as_json.returncode == 0, err.decode()
    doc = json.loads(out)
    api_history = await timeline_of(api, tokens.supervisor, case_id)
    assert [(e["kind"], e.get("version"), e.get("event_id")) for e in doc["timeline"]] == [
        (e["kind"], e.get("version"), e.get("event_id")) for e in api_history["timeline"]
    ][: len(doc["timeline"])]


# -- the pure conversion over recorded histories ----------------------------------------------------------


def recorded(name: str) -> WorkflowHistory:
    data = json.loads(gzip.decompress((HISTORIES / f"{name}.json.gz").read_bytes()))
    workflow_id = data["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    return WorkflowHistory.from_json(workflow_id, data)


def test_a_recorded_continue_as_new_converts_to_two_runs_that_link_up() -> None:
    first, second = recorded("long_case_first_run_continued_as_new"), recorded("long_case_continued_run")
    first_id = first.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    second_id = second.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    entries = process_entries(first_id, first.events) + process_entries(second_id, second.events)
    handover = next(e for e in entries if e.event == "WorkflowExecutionContinuedAsNew")
    assert second_id in handover.summary
    restarted = next(e for e in entries if e.run_id == second_id)
    assert restarted.event == "WorkflowExecutionStarted" and first_id in restarted.summary
    assert run_info(first_id, first.events, running=False).status == "continued_as_new"
    assert run_info(second_id, second.events, running=True).status == "running"


def test_recorded_timers_children_and_updates_convert_without_bookkeeping_or_payloads() -> None:
    history = recorded("complaint_received_weeks_ago_breaches_its_deadline")
    entries = process_entries("run", history.events)
    kinds = [e.event for e in entries]
    assert "TimerFired" in kinds and "StartChildWorkflowExecutionInitiated" in kinds
    assert not {"WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted",
                "UpsertWorkflowSearchAttributes"} & set(kinds)
    child = next(e for e in entries if e.event == "ChildWorkflowExecutionStarted")
    assert child.workflow_id and child.workflow_id.endswith("-front")
    shown = json.dumps([e.model_dump(mode="json") for e in entries], ensure_ascii=False)
    start = history.events[0].workflow_execution_started_event_attributes
    intake = json.loads(start.input.payloads[0].data)["intake"]
    for private in (intake["subject"], intake["content"], intake["petitioner"].get("name") or "\x00"):
        assert private not in shown


@pytest.mark.parametrize("name", ["complaint_from_receipt_to_archive", "letter_split_into_two_cases"])
def test_merging_keeps_each_side_in_its_own_order(name: str) -> None:
    from api.timeline import DomainEntry

    history = recorded(name)
    entries = process_entries("run", history.events)
    # Domain entries stamped at the activity completions, in reverse order of nothing: version order stays.
    completions = [e.at for e in entries if e.event == "ActivityTaskCompleted"]
    domain = [DomainEntry(at=at - timedelta(microseconds=1), occurred_at=at, version=i, type=f"E{i}", actor=None,
                          reason=None, legal_basis=None) for i, at in enumerate(completions, start=1)]
    merged = merge(domain, entries)
    assert [e.version for e in merged if isinstance(e, DomainEntry)] == list(range(1, len(domain) + 1))
    assert [e.event_id for e in merged if not isinstance(e, DomainEntry)] == [e.event_id for e in entries]
    for i, entry in enumerate(merged):
        if isinstance(entry, DomainEntry):
            assert merged[i + 1].event == "ActivityTaskCompleted"  # type: ignore[union-attr]


def test_activity_attempts_failures_and_a_failing_workflow_task_show_without_stack_or_details() -> None:
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp
    from temporalio.api.common.v1 import ActivityType, Payload, Payloads
    from temporalio.api.enums.v1 import (
        EventType,
        PendingActivityState,
        RetryState,
        WorkflowExecutionStatus,
        WorkflowTaskFailedCause,
    )
    from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
    from temporalio.api.history.v1 import (
        ActivityTaskFailedEventAttributes,
        ActivityTaskScheduledEventAttributes,
        ActivityTaskStartedEventAttributes,
        HistoryEvent,
        TimerStartedEventAttributes,
        WorkflowTaskFailedEventAttributes,
    )
    from temporalio.api.workflow.v1 import PendingActivityInfo, PendingWorkflowTaskInfo
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

    from api.timeline import pending_entries

    def at(seconds: int) -> Timestamp:
        return Timestamp(seconds=1_790_000_000 + seconds)

    secret = Payloads(payloads=[Payload(data=b'{"name": "Nguyen Van Bi Mat"}')])
    failure = Failure(message="PostgreSQL unavailable: connection refused", stack_trace="Traceback: secret frames",
                      application_failure_info=ApplicationFailureInfo(type="StoreUnavailableError", details=secret))
    events = [
        HistoryEvent(event_id=5, event_time=at(5), event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                     activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
                         activity_id="2", activity_type=ActivityType(name="append_events"), input=secret)),
        HistoryEvent(event_id=6, event_time=at(9), event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                     activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(
                         scheduled_event_id=5, attempt=3, last_failure=failure, identity="1@worker")),
        HistoryEvent(event_id=7, event_time=at(10), event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                     activity_task_failed_event_attributes=ActivityTaskFailedEventAttributes(
                         scheduled_event_id=5, started_event_id=6, failure=failure,
                         retry_state=RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE)),
        HistoryEvent(event_id=8, event_time=at(11), event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                     workflow_task_failed_event_attributes=WorkflowTaskFailedEventAttributes(
                         cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
                         failure=Failure(message="[TMPRL1100] Nondeterminism error", stack_trace="frames"))),
        HistoryEvent(event_id=9, event_time=at(12), event_type=EventType.EVENT_TYPE_TIMER_STARTED,
                     timer_started_event_attributes=TimerStartedEventAttributes(
                         timer_id="4", start_to_fire_timeout=Duration(seconds=3 * 86400))),
    ]
    entries = process_entries("run-1", events)
    started, failed, task, timer = entries[1], entries[2], entries[3], entries[4]
    assert (started.attempt, started.failure_type) == (3, "StoreUnavailableError")
    assert "attempt 3" in started.summary and "connection refused" in started.summary
    assert (failed.event, failed.attempt, failed.retry_state) == ("ActivityTaskFailed", 3, "non_retryable_failure")
    assert failed.activity == "append_events" and failed.activity_id == "2"
    assert task.cause == "non_deterministic_error" and "Nondeterminism" in (task.failure or "")
    assert timer.fire_after_seconds == 3 * 86400 and "3.0 days" in timer.summary

    description = DescribeWorkflowExecutionResponse(
        pending_activities=[PendingActivityInfo(
            activity_id="3", activity_type=ActivityType(name="append_events"), attempt=7, maximum_attempts=0,
            state=PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, last_failure=failure,
            last_attempt_complete_time=at(20), next_attempt_schedule_time=at(80), heartbeat_details=secret)],
        pending_workflow_task=PendingWorkflowTaskInfo(attempt=4, scheduled_time=at(21)),
    )
    description.workflow_execution_info.status = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    description.workflow_execution_info.execution.run_id = "run-1"
    pending = pending_entries(description)
    assert [(p.event, p.attempt) for p in pending] == [("PendingActivity", 7), ("PendingWorkflowTask", 4)]
    assert "attempt 7" in pending[0].summary and "next attempt at" in pending[0].summary
    shown = json.dumps([e.model_dump(mode="json") for e in entries + pending])
    assert "Bi Mat" not in shown and "Traceback" not in shown and "frames" not in shown
    description.workflow_execution_info.status = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
    assert pending_entries(description) == []
