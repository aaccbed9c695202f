"""A case names its rules by digest: its first event is small, its rule documents are stored once in
`rule_sets`, a worker that lacks one fetches it by activity, and an altered document is found. On a real
Temporal dev server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.rules import DEADLINES_FILE, RULE_BOOK, RulesActivities, known_rules, load_rule_sets, rule_documents
from domain.common import content_digest
from domain.rulesets import RuleBook, RuleDigestMismatch, RulesRef, with_rules
from eventstore import EventStore
from integrity.database import with_rule_documents
from worker import build_worker, project_converter
from workflows import ALL_WORKFLOWS
from workflows.petition import PetitionStart, PetitionWorkflow
from workflows.rulebook import RULES_FETCHED

from ..cli import Cli
from .support import case_view, folded, intake

#: What the issue sets: a case's first event under 4 KB (it was about 39 KB with the rules in full).
FIRST_EVENT_LIMIT = 4 * 1024


async def open_case(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    petition = intake("complaint", datetime.now(UTC))
    handle = await env.client.start_workflow(PetitionWorkflow.run, PetitionStart(intake=petition),
                                             id=f"pet-rd-{petition.external_ref}", task_queue=task_queue)
    for _ in range(400):
        try:
            if await handle.query(PetitionWorkflow.view) is not None:
                return handle
        except RPCError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the case did not open")


async def first_event(store: EventStore, case_id: str) -> tuple[int, dict[str, Any]]:
    row = await store.pool.fetchrow(
        "SELECT length(data::text) AS size, data FROM events WHERE stream_id = $1 AND version = 1", case_id)
    assert row is not None
    return row["size"], row["data"]


def activities_of(history: object) -> list[str]:
    return [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events  # type: ignore[attr-defined]
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]


def markers_of(history: object) -> list[str]:
    return [str(e.marker_recorded_event_attributes) for e in history.events  # type: ignore[attr-defined]
            if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]


async def test_a_case_records_its_rules_by_digest_and_its_first_event_is_small(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        handle = await open_case(temporal_env, task_queue)
        view = await case_view(handle)
    size, data = await first_event(store, handle.id)
    assert size < FIRST_EVENT_LIMIT, f"the first event is {size} characters"
    assert "rules" not in data and set(data["rules_ref"]) == {"policy", "calendar", "bodies", "routing"}
    ref = RulesRef.model_validate(data["rules_ref"])

    # Each document is stored once, under the digest of its content, and the policy's is the set's digest.
    rows = await store.pool.fetch("SELECT digest, kind, content FROM rule_sets WHERE digest = ANY($1::text[])",
                                  list(ref.documents()))
    assert {r["digest"]: r["kind"] for r in rows} == ref.documents()
    assert all(content_digest(r["content"]) == r["digest"] for r in rows)
    in_force = load_rule_sets().latest
    assert ref.policy == in_force.digest
    # The case shows the set it follows as before: version, since when, title, digest.
    assert view.rules is not None
    assert (view.rules.version, view.rules.valid_from, view.rules.title, view.rules.digest) == (
        in_force.version, None, in_force.title, in_force.digest)

    # The case is found by its text, not by the digests of its rules.
    folded_text = await store.pool.fetchval("SELECT folded FROM case_search WHERE case_id = $1", handle.id)
    assert "nam sach" in folded_text and ref.policy not in folded_text

    # Read back from the store alone, the events fold to the same rules.
    state = await folded(store, handle.id)
    assert state.rules.policy == in_force and state.rules.calendar.covers(datetime.now(UTC).date())

    # Temporal's history no longer carries the rules: no event of the opening is near their 50 KB.
    history = await handle.fetch_history()
    assert activities_of(history) == ["case_rules_ref", "append_events"]
    largest = max(e.ByteSize() for e in history.events)
    assert largest < 8 * 1024, f"a history event of {largest} bytes"


async def test_a_worker_that_lacks_a_document_fetches_it_by_activity_and_the_history_replays(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str, tmp_path: Path
) -> None:
    # A set this process has never seen (its title is new), given by activities whose book is not the
    # workflow's: the workflow's worker lacks its document, as a worker would that started before it.
    policy = tmp_path / "deadlines.yaml"
    text = DEADLINES_FILE.read_text(encoding="utf-8")
    policy.write_text(text.replace('title: "', f'title: "Bản thử {uuid.uuid4().hex[:8]} — ', 1), encoding="utf-8")
    unseen = load_rule_sets(policy).latest
    assert unseen.digest not in RULE_BOOK
    activities = RulesActivities(deadlines_path=policy, book=RuleBook())
    async with build_worker(temporal_env.client, store, task_queue=task_queue, rules=activities):
        handle = await open_case(temporal_env, task_queue)
        view = await case_view(handle)
    assert view.rules is not None
    assert (view.rules.title, view.rules.digest) == (unseen.title, unseen.digest)
    assert unseen.digest in RULE_BOOK  # fetched, checked against its digest, kept

    history = await handle.fetch_history()
    assert activities_of(history)[:2] == ["case_rules_ref", "rule_documents"]
    assert RULES_FETCHED in str(markers_of(history))
    # The fetch is in the history: a replay takes it from there (and a replay of a run that did not fetch
    # never adds one, which the recorded histories show).
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=project_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, repr(result.replay_failure)


async def test_a_rule_document_is_never_changed_and_an_altered_one_is_found(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str, database_url: str, cli: Cli
) -> None:
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        handle = await open_case(temporal_env, task_queue)
    _, data = await first_event(store, handle.id)
    calendar = data["rules_ref"]["calendar"]
    # (The session's database holds other tests' streams, some broken on purpose: the rule documents are judged.)
    report = await with_rule_documents(store, await store.verify())
    assert report.broken_rule_sets == [] and report.rule_sets_checked >= 4

    # Written again, the same document changes nothing; UPDATE and DELETE are refused.
    [doc] = await rule_documents(store, [calendar])
    await store.store_rule_documents([doc])
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await store.pool.execute("UPDATE rule_sets SET content = '{}' WHERE digest = $1", calendar)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await store.pool.execute("DELETE FROM rule_sets WHERE digest = $1", calendar)

    # Whoever may disable the triggers can alter a row; its content then no longer hashes to its digest.
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE rule_sets DISABLE TRIGGER rule_sets_no_update")
            await conn.execute("UPDATE rule_sets SET content = jsonb_set(content, '{days_off}', '[]') "
                               "WHERE digest = $1", calendar)
            await conn.execute("ALTER TABLE rule_sets ENABLE TRIGGER rule_sets_no_update")
    finally:
        await conn.close()
    try:
        report = await with_rule_documents(store, await store.verify())
        assert not report.ok
        assert [(b.digest, b.kind) for b in report.broken_rule_sets] == [(calendar, "calendar")]
        # `danvan verify` names it and fails.
        status, out, err = await cli.run_async("verify", "--no-temporal")
        assert status == 1 and f"BROKEN rule document {calendar} [calendar]" in out, (out, err)
        assert "1 altered rule document(s)" in out
        with pytest.raises(RuleDigestMismatch):
            await rule_documents(store, [calendar])
        # A worker that lacks it refuses it too: the book takes no document that does not match its digest.
        with pytest.raises(RuleDigestMismatch):
            RuleBook().add(doc.model_copy(update={"content": {**doc.content, "days_off": []}}))
    finally:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await conn.execute("ALTER TABLE rule_sets DISABLE TRIGGER rule_sets_no_update")
                await conn.execute("UPDATE rule_sets SET content = $2::jsonb WHERE digest = $1", calendar,
                                   json.dumps(doc.content))
                await conn.execute("ALTER TABLE rule_sets ENABLE TRIGGER rule_sets_no_update")
        finally:
            await conn.close()
    assert (await with_rule_documents(store, await store.verify())).broken_rule_sets == []


async def test_the_fronts_supervision_names_the_rules_of_the_case_it_watches_by_digest(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    petition = intake("complaint", datetime.now(UTC), forwarded_by_front=True)
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        handle = await temporal_env.client.start_workflow(
            PetitionWorkflow.run, PetitionStart(intake=petition), id=f"pet-rd-{petition.external_ref}",
            task_queue=task_queue)
        supervision = f"{handle.id}-front"
        for _ in range(400):
            if await store.stream_version(supervision) >= 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the supervision did not open")
        child = temporal_env.client.get_workflow_handle(supervision)
        history = await child.fetch_history()
    _, case_data = await first_event(store, handle.id)
    size, data = await first_event(store, supervision)
    assert size < FIRST_EVENT_LIMIT and "rules" not in data and data["rules_ref"] == case_data["rules_ref"]
    # Its start input carries the ref, not the rules.
    assert max(e.ByteSize() for e in history.events) < 8 * 1024


async def test_a_plan_task_names_its_rules_and_report_calendar_by_digest(
    temporal_env: WorkflowEnvironment, store: EventStore, task_queue: str
) -> None:
    from domain import plan_tasks as pt
    from domain.plan_cases import task_case_id
    from workflows.plan_task import PlanTaskStart, PlanTaskWorkflow

    spec = pt.TaskSpec(task_id="rd-1", plan_id="KH-RD", title_vi="Công tác dân vận chính quyền",
                       title_en="Mass mobilisation by state bodies", lead=["UBND_TINH"], coordinators=["SO_NOI_VU"],
                       cadence=["semiannual"], issuer="BDV_TU", monitor="PHONG_DTHTH")
    case_id = task_case_id(spec.plan_id, f"rd-1-{task_queue}")
    async with build_worker(temporal_env.client, store, task_queue=task_queue):
        handle = await temporal_env.client.start_workflow(
            PlanTaskWorkflow.run, PlanTaskStart(spec=spec, term_end=datetime.now(UTC).date().replace(month=12, day=31)),
            id=case_id, task_queue=task_queue)
        for _ in range(400):
            if await store.stream_version(case_id) >= 1:
                break
            await asyncio.sleep(0.05)
        history = await handle.fetch_history()
    size, data = await first_event(store, case_id)
    assert size < FIRST_EVENT_LIMIT and "rules" not in data
    assert set(data["rules_ref"]) == {"case", "reports"}
    assert max(e.ByteSize() for e in history.events) < 8 * 1024
    # Read back from the store, the task's events fold to the rules it was given.
    rows = await store.read_stream(case_id)
    book = await known_rules(store, rows)
    events = with_rules([pt.REGISTRY.parse(r.type, occurred_at=r.occurred_at, actor=r.actor, reason=r.reason,
                                           legal_basis=r.legal_basis, data=r.data) for r in rows], book)
    state = pt.fold(events)
    assert state is not None and state.rules.reports == RulesActivities().report_calendar
    assert state.rules.case.policy.digest == data["rules_ref"]["case"]["policy"]
