"""Who may send each command, against the real API (Temporal dev server, PostgreSQL, the worker).

For each kind of case, every command is sent by the token of every relation (and role): 403 with
`authority.<command>` exactly where the table (`domain.authority`) refuses, and then nothing changes; otherwise
anything but 403 (a 409 from the state rules is fine). Each refusal is also sent around the API, straight to the
case's Update, to show that the workflow's validator refuses it too. Then the attacks of a coordinating body.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain import plan_tasks as pt
from domain.authority import PETITION, PLAN_TASK, Relation, Table
from domain.calendar import in_vietnam
from domain.common import Actor
from domain.petitions.commands import COMMAND_TYPES, CommandRequest
from domain.plan_cases import task_case_id
from eventstore import EventStore
from workflows.client import CommandRefused, send_case_command
from workflows.petition import CommandResult
from workflows.plan_task import TaskCommandResult

from ..authority_cases import (
    PETITION_BODIES,
    PETITION_LAST,
    PETITION_SAMPLES,
    STRANGER,
    TASK_BODIES,
    TASK_LAST,
    TASK_SAMPLES,
    Sample,
    in_sending_order,
)
from .support import Api, petition, token, unique

R = Relation


@dataclass
class Sender:
    relation: Relation
    token: str
    actor: Actor  # as the API makes it from the token


async def senders(store: EventStore, bodies: dict[Relation, str], source: str) -> list[Sender]:
    out = []
    for relation in Relation:
        if relation in bodies:
            label, role, body = f"can-bo-{relation.value}-{uuid.uuid4().hex[:6]}", "body", bodies[relation]
        elif relation == R.INTAKE:
            label, role, body = source, "intake", None
        elif relation in (R.SUPERVISOR, R.OPERATOR, R.ADMIN):
            label, role, body = unique(relation.value), relation.value, None
        else:
            continue  # the receiving body of a plan task; the system has no token
        out.append(Sender(relation, await token(store, role, body, label),
                          Actor(id=label, role=role, body=body)))
    return out


def by(senders_: list[Sender], relation: Relation) -> Sender:
    return next(s for s in senders_ if s.relation == relation)


async def send(api: Api, tok: str, case_id: str, payload: dict[str, Any]) -> Any:
    if payload["type"] == "attach":  # a file goes by the upload route: a new one each time
        data = b"%PDF-1.7\n" + uuid.uuid4().bytes
        return await api.post(f"/v1/cases/{case_id}/attachments", tok, headers={"Idempotency-Key": str(uuid.uuid4())},
                              files={"file": (payload["name"], data, "application/pdf")})
    return await api.post(f"/v1/cases/{case_id}/commands", tok, json=payload,
                          headers={"Idempotency-Key": str(uuid.uuid4())})


async def ok(api: Api, tok: str, case_id: str, payload: dict[str, Any]) -> None:
    answer = await send(api, tok, case_id, payload)
    assert answer.status_code == 200, (payload, answer.text)


async def around_the_api(env: WorkflowEnvironment, case_id: str, request: Any, result: type[Any]) -> str:
    """Send the Update straight to the case, as the API would; the rule it is refused with."""
    try:
        await send_case_command(env.client, case_id, request, result)
    except CommandRefused as exc:
        return exc.rule
    raise AssertionError(f"{request.actor.label}: {request.command.type} was accepted around the API")


async def play_matrix(api: Api, env: WorkflowEnvironment, store: EventStore, case_id: str, table: Table,
                      samples: dict[str, Sample], cast: list[Sender], last: list[str], request: type[Any],
                      result: type[Any], adapter: Any) -> dict[str, int]:
    counts = {"refused": 0, "sent on": 0}  # and, of those sent on, how many were answered 200 and 409
    for command_type in in_sending_order(table.commands, last):
        allowed = table.entry(command_type).allowed
        for sender in sorted(cast, key=lambda s: s.relation in allowed):  # the refused first
            payload = samples[command_type](sender.actor.body)
            before = await store.stream_version(case_id)
            answer = await send(api, sender.token, case_id, payload)
            where = (command_type, sender.relation.value, answer.text)
            if sender.relation in allowed:
                assert answer.status_code in (200, 201, 409), where  # done, or refused by the state rules
                counts["sent on"] += 1
                counts[str(answer.status_code)] = counts.get(str(answer.status_code), 0) + 1
                continue
            assert answer.status_code == 403, where
            error = answer.json()["error"]
            assert error["code"] == f"authority.{command_type}", where
            assert all(name in error["message"] for name in _named(allowed)), where
            command = adapter.validate_python(payload)
            rule = await around_the_api(env, case_id, request(command=command, actor=sender.actor,
                                                              command_id=str(uuid.uuid4())), result)
            assert rule == f"authority.{command_type}", where
            assert await store.stream_version(case_id) == before, where
            counts["refused"] += 1
    return counts


def _named(allowed: frozenset[Relation]) -> list[str]:
    from domain.authority import SHORT

    return [SHORT[r] for r in allowed]


@pytest_asyncio.fixture(scope="module")
async def petition_cast(store: EventStore) -> tuple[str, list[Sender]]:
    source = unique("authority-backoffice")
    return source, await senders(store, PETITION_BODIES, source)


async def open_handled_case(api: Api, source: str, cast: list[Sender], kind: str = "complaint") -> str:
    """A petition received by the reception board, accepted by the inspectorate, the land department asked."""
    opened = await api.post("/v1/petitions", by(cast, R.INTAKE).token,
                            json=petition(source, kind=kind, receiving_body=PETITION_BODIES[R.RECEIVING]))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["case_id"])
    await ok(api, by(cast, R.RECEIVING).token, case_id, {"type": "classify", "lead_body": PETITION_BODIES[R.LEAD]})
    await ok(api, by(cast, R.LEAD).token, case_id, {"type": "accept", "decision_no": "1/QĐ-TTr"})
    await ok(api, by(cast, R.LEAD).token, case_id, {
        "type": "request_coordination", "subject": "Cung cấp hồ sơ đất",
        "bodies": [{"body": PETITION_BODIES[R.COORDINATING], "side": "state", "days": 5}]})
    return case_id


async def test_every_petition_command_from_every_relation(
    api: Api, temporal_env: WorkflowEnvironment, store: EventStore, petition_cast: tuple[str, list[Sender]]
) -> None:
    from pydantic import TypeAdapter

    from domain.petitions.commands import PetitionCommand

    source, cast = petition_cast
    case_id = await open_handled_case(api, source, cast)
    counts = await play_matrix(api, temporal_env, store, case_id, PETITION, PETITION_SAMPLES, cast, PETITION_LAST,
                               CommandRequest, CommandResult, TypeAdapter(PetitionCommand))
    assert PETITION.commands == COMMAND_TYPES
    allowed = sum(len(PETITION.entry(c).allowed & {s.relation for s in cast}) for c in PETITION.commands)
    assert (counts["refused"], counts["sent on"]) == (len(COMMAND_TYPES) * len(cast) - allowed, allowed)
    assert counts["200"] >= 8 and counts["409"] >= 10, counts  # both outcomes occur: the state rules did run
    assert (await api.get(f"/v1/cases/{case_id}/history", by(cast, R.SUPERVISOR).token)).json()["integrity"]["ok"]


async def test_every_plan_task_command_from_every_relation(
    api: Api, temporal_env: WorkflowEnvironment, store: EventStore
) -> None:
    from pydantic import TypeAdapter

    plan_id = unique("KH-AUTH")
    cast = await senders(store, TASK_BODIES, plan_id)
    imported = await api.http.post("/v1/plan/import", content=_plan(plan_id).encode(), headers={
        "Authorization": f"Bearer {by(cast, R.ADMIN).token}", "Content-Type": "application/yaml"})
    assert imported.status_code == 200, imported.text
    case_id = task_case_id(plan_id, "II.1")
    # The task case opens in the background, and the current period's report cycle asks it for its report: wait
    # for both, so that the stream's version moves only by the commands sent here.
    for _ in range(600):
        case = await store.get_case(case_id)
        if case is not None and "authority" in case.summary and case.summary.get("reports"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the task case {case_id} did not open and get its report request in 30 s")
    await ok(api, by(cast, R.LEAD).token, case_id, {
        "type": "request_coordination", "subject": "Số liệu hội nghị",
        "bodies": [{"body": TASK_BODIES[R.COORDINATING], "side": "front", "days": 5}]})
    counts = await play_matrix(api, temporal_env, store, case_id, PLAN_TASK, TASK_SAMPLES, cast, TASK_LAST,
                               pt.TaskCommandRequest, TaskCommandResult, TypeAdapter(pt.PlanTaskCommand))
    allowed = sum(len(PLAN_TASK.entry(c).allowed & {s.relation for s in cast}) for c in PLAN_TASK.commands)
    assert (counts["refused"], counts["sent on"]) == (len(pt.COMMAND_TYPES) * len(cast) - allowed, allowed)
    assert counts["200"] >= 5 and counts["409"] >= 5, counts
    case = await store.get_case(case_id)
    assert case is not None and case.status == "closed"  # the commission closed it, last


async def test_a_coordinating_body_cannot_take_the_case_decide_it_extend_or_suspend_it_or_read_the_denouncer(
    api: Api, temporal_env: WorkflowEnvironment, store: EventStore, petition_cast: tuple[str, list[Sender]]
) -> None:
    source, cast = petition_cast
    case_id = await open_handled_case(api, source, cast, kind="denunciation")
    coordinating, lead = by(cast, R.COORDINATING), by(cast, R.LEAD)
    handle = temporal_env.client.get_workflow_handle(case_id)
    version = await store.stream_version(case_id)
    history = len((await handle.fetch_history()).events)
    attacks = [
        {"type": "assign", "body": PETITION_BODIES[R.COORDINATING], "officer": "Cán bộ Sở"},
        {"type": "decide", "outcome": "no_violation", "decision_no": "9/KL", "summary": "Không vi phạm"},
        {"type": "extend", "decision_no": "9/QĐ-GH", "reason": "Vụ việc phức tạp cần thêm thời gian",
             "especially_complex": True, "decision_date": in_vietnam(datetime.now(UTC)).date().isoformat()},
        {"type": "suspend", "reason": "Chờ kết quả giám định"},
    ]
    for payload in attacks:
        answer = await send(api, coordinating.token, case_id, payload)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == f"authority.{payload['type']}"
        assert "lead body" in answer.json()["error"]["message"]
        request = CommandRequest.model_validate({"command": payload, "actor": coordinating.actor})
        assert await around_the_api(temporal_env, case_id, request, CommandResult) == f"authority.{payload['type']}"
    assert await store.stream_version(case_id) == version
    assert len((await handle.fetch_history()).events) == history  # refused in the validator: no trace in Temporal
    case = await store.get_case(case_id)
    assert case is not None and case.lead_body == PETITION_BODIES[R.LEAD] and case.status == "accepted"

    # It reads the case it coordinates, and answers its own request; the denouncer's identity is not for it.
    assert (await api.get(f"/v1/cases/{case_id}", coordinating.token)).status_code == 200
    assert (await api.get(f"/v1/cases/{case_id}/history", coordinating.token)).status_code == 200
    purpose = {"purpose": "xác minh nội dung tố cáo"}
    refused = await api.get(f"/v1/cases/{case_id}/petitioner", coordinating.token, params=purpose)
    assert refused.status_code == 403 and "Nguyễn" not in refused.text
    assert (await api.get(f"/v1/cases/{case_id}/reads", coordinating.token)).status_code == 403
    await ok(api, coordinating.token, case_id, {"type": "respond", "request_id": "R1",
                                                "body": PETITION_BODIES[R.COORDINATING], "response": "Đã gửi"})
    # The same commands from the lead body go through: the refusals above were the sender's, not the state's.
    assert (await api.get(f"/v1/cases/{case_id}/petitioner", lead.token, params=purpose)).status_code == 200
    await ok(api, lead.token, case_id, attacks[2])
    await ok(api, lead.token, case_id, attacks[3])


def _plan(plan_id: str) -> str:
    return f"""
id: {plan_id}
version: "1"
title_vi: "Kế hoạch thử quyền gửi lệnh"
title_en: "A plan to test who may send commands"
issuer: BTGDV_TU
signer: {{name: "Nguyễn Văn A", position_vi: "Trưởng ban", position_en: "Head"}}
term_start: 2026-01-01
term_end: 2030-12-31
source: "test"
tasks:
  - id: "II.1"
    title_vi: "Công tác dân vận của chính quyền"
    title_en: "Mass mobilisation by the government"
    text_vi: "Công tác dân vận của chính quyền"
    lead: [{{code: {TASK_BODIES[R.LEAD]}, basis: explicit}}]
    coordinators: [{{code: {TASK_BODIES[R.COORDINATING]}, basis: inferred}}]
    cadence: [semiannual, annual]
standing_duties:
  - id: "III.3"
    title_vi: "Theo dõi, đôn đốc; định kỳ 6 tháng, 1 năm tổng hợp báo cáo"
    title_en: "Monitor, urge and compile the reports"
    text_vi: "Theo dõi, đôn đốc; định kỳ 6 tháng, 1 năm tổng hợp báo cáo"
    lead: [{{code: BTGDV_TU, basis: explicit}}]
    cadence: [continuous_monitoring, semiannual, annual]
"""


async def test_every_body_with_a_tie_reads_finds_and_counts_the_case_and_a_stranger_does_not(
    api: Api, store: EventStore, petition_cast: tuple[str, list[Sender]]
) -> None:
    """Whoever the table lets send a command can find the case it commands: the receiving, lead and coordinating
    bodies, the Front, the commission and the lead's superior read it, list it and count it; a body with no tie
    neither reads nor finds it. The identity of a denouncer stays the lead's and the supervisors' alone."""
    source, cast = petition_cast
    case_id = await open_handled_case(api, source, cast, kind="denunciation")
    stranger = await token(store, "body", STRANGER, unique("can-bo-khac"))
    scope = {"kind": "denunciation"}
    for sender in [s for s in cast if s.relation in PETITION_BODIES]:
        for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/history"):
            answer = await api.get(path, sender.token)
            assert answer.status_code == 200, (sender.relation, path, answer.text)
        listed = await api.get("/v1/cases", sender.token, params={**scope, "limit": 200})
        assert listed.status_code == 200 and case_id in {c["case_id"] for c in listed.json()["items"]}, sender.relation
        counted = await api.get("/v1/cases/counts", sender.token, params=scope)
        assert counted.status_code == 200 and counted.json()["total"] >= 1, (sender.relation, counted.text)
        if sender.relation != R.LEAD:
            refused = await api.get(f"/v1/cases/{case_id}/petitioner", sender.token,
                                    params={"purpose": "xác minh nội dung tố cáo"})
            assert refused.status_code == 403, sender.relation
    for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/history"):
        assert (await api.get(path, stranger)).status_code == 403, path
    listed = await api.get("/v1/cases", stranger, params={**scope, "limit": 200})
    assert listed.status_code == 200 and case_id not in {c["case_id"] for c in listed.json()["items"]}
    # A body filtering by another body's cases finds, among those it may read, only these.
    commission = by(cast, R.COMMISSION).token
    led = await api.get("/v1/cases", commission, params={**scope, "body": PETITION_BODIES[R.LEAD], "limit": 200})
    assert led.status_code == 200 and case_id in {c["case_id"] for c in led.json()["items"]}
    assert all(c["lead_body"] == PETITION_BODIES[R.LEAD] or PETITION_BODIES[R.LEAD] in c["bodies"]
               for c in led.json()["items"])
