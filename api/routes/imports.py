"""Importing the cases already open: `POST /v1/import/cases` (admin), a JSON Lines body (docs/import.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from activities.rules import RulesActivities

from ..auth import require
from ..deps import Store, Temporal
from ..errors import ApiError, error_responses
from ..imports import Importer, ImportReport, read_lines
from ..routing import ApiRoute
from ..tokens import Principal

router = APIRouter(prefix="/v1/import", tags=["import"], route_class=ApiRoute)

#: The most lines one request may hold; a larger file is imported with `danvan import cases FILE`.
MAX_LINES = 2_000
NDJSON = "application/x-ndjson"


def case_rules(request: Request) -> RulesActivities:
    """The rules the workers load, read once per process, to decide each line before its case is started."""
    rules = getattr(request.app.state, "import_rules", None)
    if rules is None:
        settings = request.app.state.settings
        rules = RulesActivities(years=(settings.calendar_first_year, settings.calendar_last_year))
        request.app.state.import_rules = rules
    return rules


@router.post(
    "/cases",
    response_model=ImportReport,
    summary="Import cases already open",
    responses=error_responses(401, 403, 413, 415, 422, 503),
    openapi_extra={"requestBody": {"required": True, "content": {
        NDJSON: {"schema": {"type": "string", "description": "one case a line (docs/import.md)"}}}}},
)
async def import_cases(
    request: Request,
    temporal: Temporal,
    store: Store,
    principal: Annotated[Principal, Depends(require("admin"))],
) -> ImportReport:
    """Import a JSON Lines file of cases already open, each with its intake and its dated steps so far; each is
    replayed through its kind's rules at its dates, so its deadlines and state are those danvan would have
    computed. The same `source` + `external_ref` again finds its case (`already`); a line the rules refuse is in
    `refusals` with its number and rule, and nothing of it is stored. At most 2,000 lines (413 past it)."""
    lines = [line for line in read_lines(await request.body()) if line.strip()]
    if not lines:
        raise ApiError(422, "validation_failed", "invalid request: body", fields=None)
    if len(lines) > MAX_LINES:
        raise ApiError(413, "too_large", f"the body holds {len(lines)} lines; at most {MAX_LINES} are imported "
                                         "in one request (use `danvan import cases FILE` for more)")
    client = await temporal.get()
    vault = request.app.state.vault
    return await Importer(client, vault, case_rules(request), store=store).run(lines)
