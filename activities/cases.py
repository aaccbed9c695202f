"""Activities that send commands to other cases (a workflow cannot send another workflow an Update itself).

Each command carries a fixed command id, so a retried activity applies nothing twice.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.rules import load_bodies
from domain.bodies import BodyError
from domain.common import Actor
from domain.idempotency import update_id
from domain.plan_tasks import Reassign, RequestReport, TaskCommandRequest
from eventstore import EventStore

CYCLE_ACTOR = Actor(id="report-cycle", role="system")
REORGANISATION_ACTOR = Actor(id="reorganisation", role="system")


class RequestReportsInput(BaseModel):
    period: str
    task_case_ids: list[str]


class RequestReportsResult(BaseModel):
    requested: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)


class ReplaceBodiesInput(BaseModel):
    on: date
    task_case_ids: list[str]


class ReplaceBodiesResult(BaseModel):
    replacements: list[dict[str, str]] = Field(default_factory=list)


class StartCasesInput(BaseModel):
    """Workflows to start by type name, each with its id and input (already JSON)."""

    workflow_type: str
    starts: list[tuple[str, dict[str, Any]]]


class StartCasesResult(BaseModel):
    started: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)


class CaseCommandActivities:
    """Holds the Temporal client and the event store; built once in `worker.py`."""

    def __init__(self, client: Client, store: EventStore, bodies_path: Path | str | None = None) -> None:
        self.client = client
        self.store = store
        self.bodies_path = bodies_path

    async def _send(self, case_id: str, request: TaskCommandRequest) -> str | None:
        """Send one command; None when applied (or already applied), else why it was not."""
        handle = self.client.get_workflow_handle(case_id)
        try:
            key = request.command_id
            await handle.execute_update(request.command.type, request,
                                        id=update_id("cmd-", key, request.command, request.actor) if key else None)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            return getattr(cause, "type", None) or str(cause or exc)
        except RPCError as exc:
            return f"unreachable: {exc.message}"
        return None

    @activity.defn(name="start_cases")
    async def start_cases(self, request: StartCasesInput) -> StartCasesResult:
        """Start case workflows (on this worker's task queue) that are not running yet. The ids are business keys,
        so a retry, or a second import, starts nothing twice. Started this way rather than as child workflows,
        the cases do not report back to the workflow that started them, whose history stays small."""
        result = StartCasesResult()
        task_queue = activity.info().task_queue
        for case_id, arguments in request.starts:
            try:
                await self.client.start_workflow(request.workflow_type, arguments, id=case_id, task_queue=task_queue)
                result.started.append(case_id)
            except WorkflowAlreadyStartedError:
                result.already.append(case_id)
            activity.heartbeat(case_id)
        return result

    @activity.defn(name="request_reports")
    async def request_reports(self, request: RequestReportsInput) -> RequestReportsResult:
        """Ask every task of a cycle for the period's report (tasks closed or refusing are listed, not fatal)."""
        result = RequestReportsResult()
        for case_id in request.task_case_ids:
            command = TaskCommandRequest(command=RequestReport(period=request.period), actor=CYCLE_ACTOR,
                                         command_id=f"report-{request.period}")
            why = await self._send(case_id, command)
            if why is None:
                result.requested.append(case_id)
            else:
                result.skipped[case_id] = why
            activity.heartbeat(case_id)
        return result

    @activity.defn(name="replace_bodies")
    async def replace_bodies(self, request: ReplaceBodiesInput) -> ReplaceBodiesResult:
        """Reassign the part of every body no longer in force on `request.on` to its successor.

        Reads the body registry as it is now (`policy/bodies.yaml`), not as the tasks recorded it: this is how a
        reorganisation announced after the plan was imported reaches its tasks.
        """
        try:
            registry = load_bodies(self.bodies_path)
        except Exception as exc:  # a broken file is an operator's problem; retrying will not mend it
            raise ApplicationError(str(exc), type="rules.bodies", non_retryable=True) from exc
        result = ReplaceBodiesResult()
        for case_id in request.task_case_ids:
            case = await self.store.get_case(case_id)
            if case is None or case.status == "closed":
                continue
            for body in list(dict.fromkeys(case.bodies)):
                if body not in registry or registry.is_effective(body, request.on):
                    continue
                try:
                    successor = registry.successor_on(body, request.on)
                except BodyError:
                    continue  # dissolved with no successor: the commission reassigns by hand
                if successor == body:
                    continue
                command = TaskCommandRequest(
                    command=Reassign(from_body=body, to_body=successor,
                                     reason=f"{body} không còn hoạt động từ ngày {request.on.isoformat()}; "
                                            f"kế thừa: {successor}"),
                    actor=REORGANISATION_ACTOR, command_id=f"replace-{body}-{successor}",
                )
                if await self._send(case_id, command) is None:
                    result.replacements.append({"case_id": case_id, "from": body, "to": successor})
            activity.heartbeat(case_id)
        return result
