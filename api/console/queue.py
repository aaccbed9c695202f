"""A body's work queue: its open cases by what it owes and by when, and the coordination requests waiting for its
answer, each with the form to answer it.

Who: `body` tokens (the queue is a body's; other roles have no body to owe anything). The cases are those the
body may read (`api.queries.open_cases_of`, the same scope as the case list) that have not ended: a petition
until it is archived, a plan task until it is closed. A case is listed when the body leads it or owes it
something now. What a body owes is read from the case's running deadlines, by whose they are:

- `coordination.<request>.<body>`, `ack.<body>`, `subplan.<body>`: that body's;
- `report.<period>`: the task's lead bodies';
- every other deadline (acceptance, resolution, notices...): the lead body's.

Overdue first (a deadline of the body's that is breached, or whose day has passed), then by the nearest due day.
The answer form of a request is the `respond` command's form (`api.console.actions`), posted to the same command
route as a case page's, and coming back here with its flash message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from domain import plan_tasks as pt
from domain.petitions.model import PetitionKind, PetitionStatus
from eventstore import CaseRecord, EventStore

from ..deps import Store
from ..queries import open_cases_of
from ..tokens import Principal
from .actions import FormView, command_flash, form_view
from .flash import clear_flash, take_flash
from .i18n import Translator, language_of
from .nav import BODY_ROLES
from .offers import CASE_KINDS, Offer, kind_of
from .render import NO_STORE, render
from .session import signed_in
from .views import as_date, deadline_title, reference, today_local

router = APIRouter()

BodyStaff = Annotated[Principal, Depends(signed_in(*BODY_ROLES))]
#: The kinds of case a body works on through the console (those that take commands), and when each is over.
KINDS: list[str] = [k.value for k in PetitionKind] + [pt.CASE_KIND]
ENDED: list[tuple[str, str]] = [(k.value, PetitionStatus.ARCHIVED.value) for k in PetitionKind] + [
    (pt.CASE_KIND, pt.TaskStatus.CLOSED.value)]
#: The queue reads at most this many cases.
MAX_CASES = 500


@dataclass(frozen=True)
class Owed:
    """One running deadline the body must meet."""

    key: str
    title: str
    due_on: date | None
    overdue: bool


@dataclass
class QueueRow:
    case: CaseRecord
    part: str
    owed: list[Owed]

    @property
    def overdue(self) -> bool:
        return any(o.overdue for o in self.owed)

    @property
    def next_due(self) -> date | None:
        days = [o.due_on for o in self.owed if o.due_on is not None]
        return min(days) if days else None


@dataclass
class RequestRow:
    """A coordination request the body has not answered, with the form to answer it."""

    case: CaseRecord
    request_id: str
    subject: str
    due_on: date | None
    overdue: bool
    form: FormView | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def leads_of(case: CaseRecord) -> list[str]:
    """The case's lead bodies (a task's district instances of a family included)."""
    facts = case.summary.get("authority")
    if isinstance(facts, Mapping) and isinstance(facts.get("lead"), list):
        return [str(b) for b in facts["lead"]]
    lead = case.summary.get("lead")
    if isinstance(lead, list):
        return [str(b) for b in lead]
    return [case.lead_body] if case.lead_body else []


def owners(key: str, case: CaseRecord) -> list[str]:
    """Whose deadline `key` of `case` is (the module says how)."""
    head, _, rest = key.partition(".")
    if head == "coordination" and "." in rest:
        return [rest.partition(".")[2]]
    if head in ("ack", "subplan") and rest:
        return [rest]
    return leads_of(case)


def owed_by(case: CaseRecord, body: str, today: date) -> list[Owed]:
    """The running deadlines of `case` that `body` must meet, the earliest first."""
    items = case.summary.get("deadlines")
    found = []
    for d in items if isinstance(items, list) else []:
        if not isinstance(d, Mapping) or not d.get("key") or (d.get("outcome") or "pending") != "pending":
            continue
        key = str(d["key"])
        if body not in owners(key, case):
            continue
        due_on = as_date(d.get("due_on"))
        found.append(Owed(key=key, title=key, due_on=due_on,
                          overdue=bool(d.get("breached")) or (due_on is not None and due_on < today)))
    return sorted(found, key=lambda o: (o.due_on or date.max, o.key))


def _subjects(case: CaseRecord) -> dict[str, str]:
    """request id -> subject, from a petition's projection (a plan task's come from its events)."""
    items = case.summary.get("coordination")
    return {str(i["request_id"]): str(i.get("subject") or "") for i in items
            if isinstance(i, Mapping) and i.get("request_id")} if isinstance(items, list) else {}


async def _task_subjects(store: EventStore, case_id: str) -> dict[str, str]:
    return {str(e.data.get("request_id")): str(e.data.get("subject") or "")
            for e in await store.read_stream(case_id) if e.type == "CoordinationRequested"}


@router.get("/queue")
async def queue_page(request: Request, store: Store, principal: BodyStaff) -> Response:
    """The body's queue (the module says what is in it) and the flash message of the last answer sent."""
    body = principal.body_id or ""
    t = Translator(language_of(request))
    ref = reference(request)
    today = today_local()
    cases, truncated = await open_cases_of(store.pool, body, kinds=KINDS, ended=ENDED, cap=MAX_CASES)
    rows: list[QueueRow] = []
    requests: list[RequestRow] = []
    for case in cases:
        owed = [Owed(o.key, deadline_title(o.key, t, ref), o.due_on, o.overdue) for o in owed_by(case, body, today)]
        lead = body in leads_of(case)
        if not lead and not owed:
            continue
        rows.append(QueueRow(case=case, part="lead" if lead else "coordinating", owed=owed))
        asked = [o for o in owed if o.key.startswith("coordination.")]
        if asked:
            subjects = _subjects(case) if case.kind != pt.CASE_KIND else await _task_subjects(store, case.case_id)
            for o in asked:
                request_id = o.key.split(".")[1]
                requests.append(RequestRow(case=case, request_id=request_id, subject=subjects.get(request_id, ""),
                                           due_on=o.due_on, overdue=o.overdue))
    rows.sort(key=lambda r: (not r.overdue, r.next_due or date.max, r.case.case_id))
    requests.sort(key=lambda r: (not r.overdue, r.due_on or date.max, r.case.case_id, r.request_id))
    for n, item in enumerate(requests, start=1):
        kind = kind_of(item.case) or CASE_KINDS["petition"]
        offer = Offer(command="respond", model=kind.models["respond"],
                      fixed={"request_id": item.request_id, "body": body})
        item.form = form_view(request, t, item.case.case_id, offer, None, key=f"respond-{n}", back="queue",
                              shown={"request_id": f"{item.request_id} — {item.subject}" if item.subject
                                     else item.request_id})
        item.form.open = True
    response = render(request, "queue.html", {
        "body": body, "body_title": ref.body_name(body, t.lang), "rows": rows, "requests": requests,
        "truncated": truncated, "max_cases": MAX_CASES, "flash": command_flash(take_flash(request), t),
    }, section="queue", headers=NO_STORE)
    clear_flash(response, request)
    return response
