"""Sending a command from a form: the path of `POST /v1/cases/{id}/commands`, for a signed-in page.

The form is read back into the command's values (`api.console.forms`) and then goes the API's way, step by step
and with the API's own functions (`api.routes.petitions`): the command model validates it (`CaseKindCommands`),
dates outside the calendar's years are refused (`api.limits.dates_out_of_range`), the sender is judged by the
authority table on the facts the projection keeps (`check_authority`, letting through a retry of the very request
the case holds, `applied_before`), and the command is sent as the case's Update (`send_to_opened_case`, i.e.
`workflows.client.send_case_command`) as the token's holder (`actor_of`), under the Idempotency-Key made from the
form's nonce. The case judges it again on its own state.

Applied: a redirect (303) to the case page, or to the work queue it came from, with a flash message naming what
was recorded. Anything else shows the case page again with the form open, holding what was typed: the problem of
each input (422), or the refusal with its rule and basis in the page's language (403 by the authority table, 409
by the case's rules), or, when the case's answer did not come in time, that sending the same form again is safe
(503). Nothing is changed by a form that is not applied.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from domain.idempotency import RULE as KEY_REUSED
from eventstore import CaseRecord
from workflows.client import CaseNotFound, CommandRefused, OutcomeUnknown
from workflows.petition import CommandResult

from ..auth import check_case_access
from ..deps import AppSettings, Store, Temporal
from ..errors import ApiError
from ..limits import dates_out_of_range
from ..routes.petitions import actor_of, applied_before, check_authority, send_to_opened_case
from ..tokens import Principal
from .actions import Attempt, command_key, new_nonce
from .flash import set_flash
from .forms import error_places, error_text, input_names, problem_text, read_values
from .i18n import Translator, language_of
from .nav import READERS
from .offers import CaseKind, kind_of
from .pages import _case_page
from .refusals import Refusal, law_of, refusal
from .session import ConsoleError, check_session_csrf, read_form, root_of, signed_in

log = logging.getLogger("danvan.console")

router = APIRouter()

Reader = Annotated[Principal, Depends(signed_in(*READERS))]
CaseId = Annotated[str, Path(min_length=1, max_length=200)]
CommandName = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
Back = Annotated[Literal["case", "queue"], Query(description="where the answer goes: the case page or the queue")]


def back_url(request: Request, case_id: str, back: str) -> str:
    root = root_of(request)
    return f"{root}/queue" if back == "queue" else f"{root}/cases/{quote(case_id, safe='')}"


def done_payload(command: str, case_id: str, result: Any) -> dict[str, Any]:
    view = result.case if isinstance(result, CommandResult) else result.task
    status = getattr(view, "status", None) if isinstance(result, CommandResult) else getattr(view, "phase", None)
    return {"kind": "command", "command": command, "case_id": case_id, "events": list(result.events),
            "status": status, "duplicate": bool(result.duplicate)}




def _parsed(t: Translator, attempt: Attempt, kind: Any, model: Any, command: str, values: dict[str, Any],
            settings: Any) -> Any | None:
    """The command the form's values make, or None with the attempt's errors set (the model's rules, or a date
    outside the calendar's years)."""
    try:
        parsed = kind.adapter.validate_python({"type": command, **values})
    except ValidationError as exc:
        _invalid(t, attempt, error_places(exc, input_names(model), skip=1))
        return None
    out_of_range = dates_out_of_range(parsed, settings.calendar_first_year, settings.calendar_last_year)
    if out_of_range:
        _invalid(t, attempt, [(p.field, {"type": "date_out_of_range"}) for p in out_of_range])
        return None
    return parsed


async def _deliver(client: Any, case_id: str, sent: Any, t: Translator, attempt: Attempt, kind: Any, case: Any,
                   principal: Any) -> tuple[int, Any | None]:
    """(200, the case's answer), or (status, None) with the attempt's refusal set when the case refused the
    command, did not answer in time, or is not running."""
    command = attempt.command
    try:
        return 200, await send_to_opened_case(client, case_id, sent, kind.commands.result)
    except CommandRefused as exc:
        status = 422 if exc.rule == KEY_REUSED else 403 if exc.rule.startswith("authority.") else 409
        attempt.refusal = _refusal(t, kind, case, command, exc.rule, exc.message, status=status)
        return status, None
    except OutcomeUnknown as exc:
        log.warning("console: %s of %s sent by %s: no answer in time: %s", command, case_id, principal.label, exc)
        attempt.refusal = _refusal(t, kind, case, command, "unavailable", str(exc), status=503,
                                   headline="commands.unknown_outcome")
        return 503, None
    except CaseNotFound:
        attempt.refusal = _refusal(t, kind, case, command, "not_found", f"no running case {case_id}",
                                   status=404, headline="commands.not_running")
        return 404, None


@router.post("/cases/{case_id}/commands/{command}")
async def send_command(
    request: Request,
    case_id: CaseId,
    command: CommandName,
    store: Store,
    settings: AppSettings,
    temporal: Temporal,
    principal: Reader,
    back: Back = "case",
) -> Response:
    """One command from its form. See the module."""
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    case = await store.get_case(case_id)
    if case is None:
        raise ConsoleError(404, "error.no_case", case_id=case_id)
    check_case_access(principal, case)
    kind = kind_of(case)
    if kind is None or command not in kind.public():
        raise ConsoleError(404, "commands.unknown", command=command)
    t = Translator(language_of(request))
    model = kind.models[command]

    async def again(status: int) -> Response:
        """The case page with the form shown again: what it held, its problems or its refusal."""
        return await _case_page(request, case_id, store, settings, temporal, principal, attempt=attempt,
                                status=status)

    nonce = form.get("nonce", "")
    key = command_key(nonce)
    if key is None:
        nonce = new_nonce()
        key = command_key(nonce)
    values, problems = read_values(model, form)
    attempt = Attempt(command=command, values=form, nonce=nonce,
                      errors={name: problem_text(t, code) for name, code in problems.items()})
    parsed = None if attempt.errors else _parsed(t, attempt, kind, model, command, values, settings)
    if parsed is None:
        return await again(422)

    actor = actor_of(principal)
    try:
        check_authority(kind.commands, case, parsed, actor, principal)
    except ApiError as exc:
        if not await applied_before(store, case_id, key, parsed, actor):
            attempt.refusal = _refusal(t, kind, case, command, exc.code, exc.message, status=exc.status)
            return await again(exc.status)
    sent = kind.commands.request(command=parsed, actor=actor, command_id=key)
    status, result = await _deliver(await temporal.get(), case_id, sent, t, attempt, kind, case, principal)
    if result is None:
        return await again(status)
    response = RedirectResponse(back_url(request, case_id, back), status_code=303)
    set_flash(response, request, done_payload(command, case_id, result))
    return response


def _invalid(t: Translator, attempt: Attempt, places: Sequence[tuple[str | None, Mapping[str, Any]]]) -> None:
    for name, err in places:
        text = error_text(t, err)
        if name is None:
            attempt.form_errors.append(text)
        else:
            attempt.errors.setdefault(name, text)


def _refusal(t: Translator, kind: CaseKind, case: CaseRecord, command: str, rule: str, message: str,
             **extra: Any) -> Refusal:
    return refusal(t, command, rule, message, table=kind.table, law=law_of(kind, case), **extra)
