"""Receiving petitions and sending commands to cases.

`POST /v1/petitions` opens a case atomically (update-with-start): the answer comes once the case's first
event is stored, with its first deadline and legal basis. `POST /v1/cases/{id}/commands` sends one command as
a Temporal Update; the case's decider refuses what the law or its state does not allow (409 with the rule),
and an `Idempotency-Key` makes a retried command apply once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from pydantic import BaseModel, TypeAdapter

from activities.rules import known_rules
from danvan import waits
from danvan.settings import Settings
from domain import plan_tasks as pt
from domain.authority import TABLES, CaseFacts, Table, Unauthorized, authorize, for_command
from domain.common import Actor
from domain.idempotency import RULE as KEY_REUSED
from domain.idempotency import fingerprint, from_metadata
from domain.petitions import REGISTRY as PETITION_EVENTS
from domain.petitions.commands import INTERNAL, CommandRequest, PetitionCommand
from domain.petitions.decider import CLOCK_SKEW, same_petition
from domain.petitions.decider import fold as fold_petition
from domain.petitions.model import PetitionIntake, PetitionKind, PetitionState, PetitionStatus, petition_case_id
from domain.petitions.views import CaseView, DeadlineView, case_view
from domain.rulesets import with_rules
from eventstore import CaseRecord, EventStore
from workflows.client import CaseNotFound, CommandRefused, OutcomeUnknown, open_petition, send_case_command
from workflows.petition import CommandResult
from workflows.plan_task import TaskCommandResult, TaskView

from ..auth import check_case_access, require
from ..command_body import parse_command
from ..deps import Store, Temporal
from ..errors import ApiError, FieldError, error_responses
from ..filters import IdempotencyKey, key_reused
from ..identities import IdentityConflict, IdentityErased, IdentityVault
from ..limits import dates_out_of_range
from ..routing import ApiRoute
from ..tokens import Principal

router = APIRouter(tags=["petitions"], route_class=ApiRoute)

PETITION_KINDS = {k.value for k in PetitionKind}


@dataclass(frozen=True)
class CaseKindCommands:
    """How to send commands to one kind of case: their models, the Update's request and result."""

    commands: TypeAdapter[Any]
    request: type[Any]
    result: type[Any]
    internal: frozenset[str]
    authority: Table


KINDS = {
    # `attach` is sent by the upload route only (`api.routes.attachments`): not a command of the JSON route.
    "petition": CaseKindCommands(TypeAdapter(PetitionCommand), CommandRequest, CommandResult,
                                 INTERNAL | {"attach"}, TABLES["petition"]),
    pt.CASE_KIND: CaseKindCommands(TypeAdapter(pt.PlanTaskCommand), pt.TaskCommandRequest, TaskCommandResult,
                                   pt.INTERNAL | {"attach"}, TABLES[pt.CASE_KIND]),
}


class PetitionOpened(BaseModel):
    case_id: str
    status: str
    created: bool
    deadlines: list[DeadlineView]
    case: CaseView


class CommandAnswer(BaseModel):
    case_id: str
    status: str
    events: list[str]
    duplicate: bool
    case: CaseView | TaskView


def check_authority(kind: CaseKindCommands, case: CaseRecord, command: Any, actor: Actor,
                    principal: Principal) -> None:
    """403 with the rule (`authority.<command>`) unless the sender may send `command` to `case`, judged on the
    facts its projection row keeps. A row written before it kept them is held to the reading rule here, and
    the case's own validator judges the sender on its state."""
    stored = case.summary.get("authority")
    if not isinstance(stored, dict):
        check_case_access(principal, case)
        return
    try:
        authorize(kind.authority, command.type, actor,
                  for_command(kind.authority, command, CaseFacts.model_validate(stored)))
    except Unauthorized as exc:
        raise ApiError(403, exc.rule, exc.message) from exc


async def applied_before(store: EventStore, case_id: str, command_id: str | None, command: Any,
                         actor: Actor) -> bool:
    """Whether the case already applied this very request (same key, same command, same sender).

    A sender may lose the relation that let it send a command because of that command (a lead body that
    reassigns the case away); its retry under the same key must still learn the outcome, not a 403."""
    if not command_id:
        return False
    seen = from_metadata(await store.command_metadata(case_id, command_id) or {})
    return seen is not None and seen == fingerprint(command, actor)


def actor_of(principal: Principal) -> Actor:
    """Who acts, from the login only: a request body can never name its own actor."""
    return Actor(id=principal.label, role=principal.role, body=principal.body_id)


async def vault_of(request: Request) -> IdentityVault:  # async: FastAPI runs a plain def in a thread pool
    vault: IdentityVault = request.app.state.vault
    return vault


@router.post(
    "/v1/petitions",
    response_model=PetitionOpened,
    status_code=201,
    summary="Receive a petition",
    responses={200: {"description": "the same petition was already received: the same case"},
               **error_responses(401, 403, 409, 422, 503)},
)
async def receive_petition(
    intake: PetitionIntake,
    request: Request,
    response: Response,
    store: Store,
    temporal: Temporal,
    vault: Annotated[IdentityVault, Depends(vault_of)],
    principal: Annotated[Principal, Depends(require("intake", "admin"))],
) -> PetitionOpened:
    """Open a case for a petition (complaint, denunciation, recommendation or voters' petition).

    201 with the case id and its first deadline; the same `source` + `external_ref` again gives 200 and the
    same case; with different content, 409. An `intake` token sends only for its own system (`source` = the
    token's label). The petitioner's identity is sealed before the case starts (see `api.identities`): the
    case holds only its `ref`.

    Sent as `multipart/form-data` instead, the petition is the JSON of the part `petition` and its files (the
    scanned letter, evidence) are the parts named `files`, each checked, stored and attached to the case as a
    `letter` (the README's "Attachments").
    """
    if principal.role == "intake" and intake.source != principal.label:
        raise ApiError(403, "forbidden", f"this token sends for {principal.label!r}, not {intake.source!r}")
    # Every petitioner is sealed, whatever the kind: a complaint may be reclassified as a denunciation, and
    # Temporal's history and the events are kept for years (see `api.identities`).
    check_intake(intake, request.app.state.settings)
    case_id = petition_case_id(intake.source, intake.external_ref)
    try:
        sealed = await vault.seal(case_id, intake.source, intake.external_ref, intake.petitioner)
    except IdentityConflict:
        raise ApiError(409, "petition.conflict",
                       "this source and external_ref were already received with another petitioner") from None
    except IdentityErased:
        raise ApiError(409, "identity.erased",
                       "this source and external_ref were received before and their petitioner's identity has "
                       "been erased: it cannot be received again") from None
    petitioner = intake.petitioner
    intake = intake.model_copy(update={"petitioner": sealed})
    archived = await archived_petition(store, case_id)
    if archived is not None:
        # Its workflow has ended: starting it again would open a new run of a closed case. The stored events
        # answer, as the running case would.
        if not same_petition(archived.intake, archived.intake_digest, intake):
            raise ApiError(409, "petition.conflict",
                           "this source and external_ref were already received with different content")
        response.status_code = 200
        view = case_view(archived)
        return PetitionOpened(case_id=view.case_id, status=view.status, created=False,
                              deadlines=view.deadlines, case=view)
    client = await temporal.get()
    retry = ("the petition may or may not have been received: send it again as it is; the same source and "
             "external_ref open one case")
    waits.note(retry)
    try:
        result = await open_petition(client, intake)
    except CommandRefused as exc:
        # Refused before its first event: no case holds the identity just sealed, and none is kept.
        if sealed.ref is not None:
            await vault.discard_unopened(sealed.ref, case_id)
        raise ApiError(409, exc.rule, exc.message) from exc
    except OutcomeUnknown as exc:
        service = await which_is_down(store)
        raise ApiError(503, "unavailable", f"{service} did not answer in time: {retry}",
                       headers={"Retry-After": "1"}) from exc
    if result.created:
        # A refused twin of this petition, sent at the same moment, may have discarded the identity this case
        # holds: sealing it again keeps it (the same identity gives the same ref).
        await vault.seal(case_id, intake.source, intake.external_ref, petitioner)
    else:
        response.status_code = 200
    view = result.case
    return PetitionOpened(case_id=view.case_id, status=view.status, created=result.created,
                          deadlines=view.deadlines, case=view)


def check_intake(intake: PetitionIntake, settings: Settings) -> None:
    """422 for what the case would refuse of its intake, before anything is sealed or started: dates outside
    the years a case may lie in, a receipt in the future."""
    problems = dates_out_of_range(intake, settings.calendar_first_year, settings.calendar_last_year)
    if intake.received_at > datetime.now(UTC) + CLOCK_SKEW:
        problems.append(FieldError(field="received_at", rule="received_at.future", message=(
            f"received_at ({intake.received_at.isoformat()}) is in the future: a petition is recorded once it "
            "has been received")))
    if problems:
        names = ", ".join(dict.fromkeys(p.field for p in problems))
        raise ApiError(422, "validation_failed", f"invalid request: {names}", fields=problems)


async def archived_petition(store: EventStore, case_id: str) -> PetitionState | None:
    """The state of an archived petition case, folded from its stored events (None: no such case, or one
    still open, whose workflow answers)."""
    row = await store.get_case(case_id)
    if row is None or row.status != PetitionStatus.ARCHIVED.value:
        return None
    rows = await store.read_stream(case_id)
    book = await known_rules(store, rows)
    events = [PETITION_EVENTS.parse(r.type, occurred_at=r.occurred_at, actor=r.actor, reason=r.reason,
                                    legal_basis=r.legal_basis, data=r.data)
              for r in rows]
    return fold_petition(with_rules(events, book))


async def which_is_down(store: EventStore) -> str:
    """Which service kept a command's answer: the case waits on PostgreSQL to store its events, so when it
    does not answer in time either may be the cause. One quick statement tells them apart; PostgreSQL
    answering, the answer was held in Temporal, or by a step of the case that keeps failing (an operator's
    `GET /v1/ops/stalled` says which)."""
    try:
        async with asyncio.timeout(waits.time_left(1.0) or 1.0):
            await store.pool.fetchval("SELECT 1")
    except Exception:
        return "PostgreSQL (the case could not store its events)"
    return "Temporal (or a step of the case it waits on)"


#: The refusal of a case whose first event is stored but whose workflow has not yet taken it in.
OPENING = "case.opening"
#: How long a command waits for such a case (it is refused before it enters the history, so resending is safe).
OPENING_WAIT = 2.0


async def send_to_opened_case(client: Any, case_id: str, request: Any, result: type[Any]) -> Any:
    """`send_case_command`, sent again for up to `OPENING_WAIT` seconds while the case is still opening: a case
    is listed as soon as its first event is stored, a moment before its workflow can take commands."""
    loop = asyncio.get_running_loop()
    until, pause = loop.time() + min(OPENING_WAIT, waits.time_left(OPENING_WAIT) or OPENING_WAIT), 0.05
    while True:
        try:
            return await send_case_command(client, case_id, request, result)
        except CommandRefused as exc:
            if exc.rule != OPENING or loop.time() + pause > until:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.4)


def outcome_unknown(case_id: str, key: str | None) -> str:
    """What a 503 says once a command has been sent: it may have been applied, and how to find out safely."""
    if key:
        return (f"the command may or may not have been applied: send it again with the same Idempotency-Key "
                f"({key}); the case applies a key once and answers a repeat with what it did")
    return (f"the command may or may not have been applied, and it carries no Idempotency-Key: read the case's "
            f"history (GET /v1/cases/{case_id}/history) before sending it again")


@router.post(
    "/v1/cases/{case_id}/commands",
    response_model=CommandAnswer,
    summary="Send a command to a case",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def command_case(
    request: Request,
    case_id: Annotated[str, Path(min_length=1, max_length=200)],
    store: Store,
    temporal: Temporal,
    principal: Annotated[Principal, Depends(require())],
    payload: Annotated[dict[str, Any], Body(examples=[{"type": "accept", "decision_no": "12/QĐ-UBND"}])],
    idempotency_key: IdempotencyKey = None,
) -> CommandAnswer:
    """One command `{"type": ..., ...fields}`; the types of a petition case are listed in the README.

    Who may send each command is the case kind's authority table (`domain.authority`, published in the README
    as "Who may send each command"): the sender's relation to the case (intake system, receiving, lead or
    coordinating body, Front committee, commission, the lead's superior) or its role. Anyone else is refused
    with 403 and the rule, `authority.<command>`, before anything is sent; the case checks again on its own
    state. The actor recorded in the events is the token's holder. Send an `Idempotency-Key` header to make
    retries safe: the same key with the same command from the same sender returns the state without applying
    the command twice; the same key with another command or from another sender is refused with 422
    `idempotency.key_reused` and changes nothing (`domain.idempotency`).

    503 after the command was sent (Temporal, or the case's store, did not answer within the request's
    bound): its outcome is unknown, and the message says so. Send it again with the same `Idempotency-Key`:
    applied already, the answer is what it did then (the same events; `duplicate: true` once the case no
    longer keeps the first answer); not applied, it is applied now, once.
    """
    case, kind_name = await case_taking_commands(store, case_id, principal)
    if payload.get("type") == ATTACH:
        raise ApiError(422, "validation_failed", "invalid command", fields=[FieldError(
            field="type", rule="attachment.upload_route",
            message=f"a file is sent as a file: POST /v1/cases/{case_id}/attachments (multipart/form-data)")])
    command = parse_command(KINDS, kind_name, case.kind, payload)  # 422s: `api.command_body`
    settings: Settings = request.app.state.settings
    if problems := dates_out_of_range(command, settings.calendar_first_year, settings.calendar_last_year):
        raise ApiError(422, "validation_failed", "invalid command", fields=problems)
    return await deliver(store, temporal, principal, case, kind_name, command, idempotency_key)


#: The command the upload route sends (`api.routes.attachments`), never taken as JSON.
ATTACH = "attach"


async def case_taking_commands(store: EventStore, case_id: str, principal: Principal) -> tuple[CaseRecord, str]:
    """The case and the name of its kind in `KINDS`; 404 when there is no such case, 409 `command.kind` when its
    kind takes no commands (after the reading rule: a stranger learns nothing more than 403)."""
    case = await store.get_case(case_id)
    if case is None:
        raise ApiError(404, "not_found", f"no case {case_id}")
    kind_name = "petition" if case.kind in PETITION_KINDS else case.kind
    if kind_name not in KINDS:
        check_case_access(principal, case)
        raise ApiError(409, "command.kind", f"case {case_id} is a {case.kind}: it takes no commands")
    return case, kind_name


async def deliver(store: EventStore, temporal: Any, principal: Principal, case: CaseRecord, kind_name: str,
                  command: Any, idempotency_key: str | None) -> CommandAnswer:
    """Check the sender against the kind's authority table, then send `command` to the case as its Update;
    every refusal answered as `POST /v1/cases/{id}/commands` documents."""
    case_id = case.case_id
    kind = KINDS[kind_name]
    actor = actor_of(principal)
    try:
        check_authority(kind, case, command, actor, principal)
    except ApiError:
        if not await applied_before(store, case_id, idempotency_key, command, actor):
            raise
    request = kind.request(command=command, actor=actor, command_id=idempotency_key)
    client = await temporal.get()
    unknown = outcome_unknown(case_id, idempotency_key)
    waits.note(unknown)  # from here on, a 503 of the request deadline says so too
    try:
        result = await send_to_opened_case(client, case_id, request, kind.result)
    except CommandRefused as exc:
        if exc.rule == KEY_REUSED:
            raise key_reused(exc.message) from exc
        status = 403 if exc.rule.startswith("authority.") else 409
        raise ApiError(status, exc.rule, exc.message) from exc
    except OutcomeUnknown as exc:
        service = await which_is_down(store)
        raise ApiError(503, "unavailable", f"{service} did not answer in time: {unknown}",
                       headers={"Retry-After": "1"}) from exc
    except CaseNotFound as exc:
        raise ApiError(404, "not_found", f"no running case {case_id}") from exc
    view = result.case if isinstance(result, CommandResult) else result.task
    return CommandAnswer(case_id=case_id, status=view.status if isinstance(view, CaseView) else view.phase,
                         events=result.events, duplicate=result.duplicate, case=view)
