"""Client-side helpers to open and drive petition cases (used by the API, the CLI and tests).

Never imported by workflow code: these functions talk to the Temporal server.
"""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from danvan.waits import rpc_timeout
from domain.idempotency import update_id
from domain.petitions.commands import CommandRequest
from domain.petitions.model import PetitionIntake, petition_case_id

from .petition import CommandResult, PetitionStart, PetitionWorkflow, ReceiveRequest, search_attributes_for
from .shared import TASK_QUEUE

R = TypeVar("R")


class CommandRefused(Exception):
    """The case refused a command: `rule` names the rule, the message says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


class CaseNotFound(LookupError):
    pass


class OutcomeUnknown(Exception):
    """A command was sent but its answer did not come in time (Temporal slow or down, or the case waiting on
    PostgreSQL): it may have been applied or not. Sending it again with the same command id is safe: the case
    applies a command id once."""


#: Temporal's answers after which a command sent may or may not have reached the case.
_UNKNOWN = frozenset({RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE})


def _update_id(request: Any) -> str | None:
    """The Update id of a keyed command: the key and the request's digests (`domain.idempotency.update_id`)."""
    if not request.command_id:
        return None
    return update_id("cmd-", request.command_id, request.command, request.actor)


def _refusal(exc: WorkflowUpdateFailedError) -> CommandRefused:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return CommandRefused(cause.type or "refused", cause.message)
    return CommandRefused("refused", str(cause or exc))


async def open_petition(client: Client, intake: PetitionIntake, *, task_queue: str = TASK_QUEUE,
                        imported: list[Any] | None = None) -> CommandResult:
    """Start the case and wait until it is open, atomically (update-with-start).

    The same `source` + `external_ref` again answers with the same case (`created` false); with other
    content it is refused with rule `petition.conflict`. `imported`: the steps of a case imported open
    (`domain.petitions.imports`), stored with its receipt.
    """
    case_id = petition_case_id(intake.source, intake.external_ref)
    start = WithStartWorkflowOperation(
        PetitionWorkflow.run,
        PetitionStart(intake=intake, imported=imported),
        id=case_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=search_attributes_for(intake.kind.value),
    )
    try:
        return await client.execute_update_with_start_workflow(
            PetitionWorkflow.receive, ReceiveRequest(intake=intake), start_workflow_operation=start,
            rpc_timeout=rpc_timeout(),
        )
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise OutcomeUnknown(f"no answer from case {case_id} in time") from exc
    except RPCError as exc:
        if exc.status in _UNKNOWN:
            raise OutcomeUnknown(f"no answer from case {case_id} in time: {exc.message}") from exc
        raise


async def send_case_command(client: Client, case_id: str, request: Any, result_type: type[R]) -> R:
    """Send one command to any case workflow (an Update named after the command). With a `command_id`, a retry
    after a lost answer is applied once."""
    handle = client.get_workflow_handle(case_id)
    try:
        # Named after its command, so that Temporal's Web UI shows `classify`, `accept`... (the workflow's
        # dynamic `command` Update; `execute` stays for the histories and clients of before).
        result: R = await handle.execute_update(
            request.command.type, request, id=_update_id(request),
            result_type=result_type, rpc_timeout=rpc_timeout(),
        )
        return result
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise OutcomeUnknown(f"no answer from case {case_id} in time") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from exc
        if exc.status in _UNKNOWN:
            raise OutcomeUnknown(f"no answer from case {case_id} in time: {exc.message}") from exc
        raise


async def send_command(client: Client, case_id: str, request: CommandRequest) -> CommandResult:
    """Send one command to a petition case (`send_case_command`)."""
    return await send_case_command(client, case_id, request, CommandResult)
