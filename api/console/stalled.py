"""The stalled-cases queue (the scheduled scan's findings, `ops.scan.recorded_stalls`) and the operators' repairs
(`ops.repairs`), as pages. The queue is one query of the table the scan writes, with the time of its last look;
after a repair the case is looked at again (`ops.scan.refresh_after_repair`), so the queue shows it at once.

Who: `supervisor`, `operator` and `admin` read the queue (the roles of `GET /v1/ops/stalled`); only `operator` and
`admin` repair (those of `POST /v1/ops/...`, `domain.repairs.REPAIR_ROLES`). A supervisor sees the queue without
its forms, and a repair posted by any other role is a 403 page before its form is even read.

Every repair is a POST form carrying the session's CSRF token and a reason of at least `MIN_REASON` characters
(the API's rule, checked here first so that the answer names the field). It is done by the same functions as the
API, with the operator taken from the token, never from the form. The answer is a redirect (303) back to the
queue with its filters, and a flash message (`api.console.flash`) saying what happened: done and recorded, done
and accepted (recorded when the running step ends), or refused with its rule and message. A refused or invalid
form changes nothing. A reset is first a dry run, shown on a page of its own whose confirm form does it, pinned to
the point that was shown. Each repair form carries a nonce that becomes the repair's command id, so the same form
sent twice (a double click, a resubmission) is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from temporalio.client import Client
from temporalio.service import RPCError

from domain.bodies import BODY_CODE_PATTERN
from domain.common import Actor
from domain.repairs import MIN_REASON, REPAIR_ACTIONS, RepairAction
from eventstore import CaseRecord, EventStore
from ops import repairs
from ops.repairs import RepairOutcome, RepairRefused
from ops.scan import recorded_stalls, refresh_after_repair
from ops.stalled import DEFAULT_POLICY, REMEDIES, Stalled, StallReason, idle_stalls, inspect_case

from ..deps import Store, Temporal
from ..filters import CaseKind
from ..queries import CaseFilter
from ..temporal import TemporalConnection, TemporalUnavailableError
from ..tokens import Principal, Role
from .flash import clear_flash, fit, set_flash, take_flash
from .i18n import LABELS, Translator, language_of
from .nav import QUEUE_ROLES
from .render import NO_STORE, render, url_with
from .session import check_session_csrf, read_form, signed_in
from .views import all_cases, reference

log = logging.getLogger("danvan.console")

router = APIRouter()

#: Who repairs (`domain.repairs.REPAIR_ROLES`; a test keeps the two the same). Who reads the queue:
#: `api.console.nav.QUEUE_ROLES`.
REPAIRERS: tuple[Role, ...] = ("operator", "admin")
#: When a case counts as stalled: the policy of `GET /v1/ops/stalled` without parameters.
POLICY = DEFAULT_POLICY
#: The reasons a bulk retry acts on (`ops.repairs.bulk_retry` retries failing and paused steps).
BULK_REASONS: tuple[StallReason, ...] = ("activity_failing", "activity_paused")
BULK_PER_SECOND = 5.0
BULK_LIMIT = 100
BULK_MAX = 1000
#: The API's bounds of a reason and a body code (`api.routes.ops`, `domain.repairs.RecordRepair`).
MAX_REASON = 2000
MAX_BODY = 100
#: How long the case page waits for Temporal to say whether the case is stuck before showing the page without.
BANNER_TIMEOUT = 3.0
#: A form's nonce (made by `new_nonce`), which becomes its repair's command id.
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: The rules `ops.repairs.reset` refuses by before it resets anything. Any other refusal of a reset comes from
#: recording it, after the workflow was reset (the case's workflow refusing the `repair` Update, e.g.
#: `case.opening` when the reset point is before the case was opened): the page then says that the reset was done
#: and not recorded, not that nothing changed.
REFUSED_BEFORE_RESET = frozenset({
    "repair.role", "repair.reason", "repair.not_found", "repair.not_running", "repair.reset.nothing_failing",
    "repair.reset.no_good_point", "repair.reset.point", "repair.reset.refused",
})
KINDS = tuple(LABELS["kind"])
REASONS: tuple[str, ...] = tuple(REMEDIES)

Watcher = Annotated[Principal, Depends(signed_in(*QUEUE_ROLES))]
Repairer = Annotated[Principal, Depends(signed_in(*REPAIRERS))]
CaseId = Annotated[str, Path(min_length=1, max_length=200)]
KindFilter = Annotated[CaseKind | None, Query()]
LeadFilter = Annotated[str | None, Query(alias="body", min_length=2, max_length=64, pattern=BODY_CODE_PATTERN,
                                         description="the lead body")]
ReasonFilter = Annotated[StallReason | None, Query(alias="reason")]


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters, as `find_stalled` takes them; they travel in the query of every form of the page, so
    that the answer to a form goes back to the queue as it was."""

    kind: str | None = None
    body: str | None = None
    reason: str | None = None

    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("kind", self.kind), ("body", self.body), ("reason", self.reason)) if v}

    def query(self) -> str:
        """`?kind=...&body=...` to append to a form's action (empty without filters)."""
        params = self.params()
        return "?" + urlencode(params) if params else ""

    def url(self, request: Request) -> str:
        return url_with(request, "/stalled", **self.params())

    def bulk_applies(self) -> bool:
        return self.reason is None or self.reason in BULK_REASONS


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def actor_of(principal: Principal) -> Actor:
    """The operator a repair names: the token's holder (as `api.routes.ops` does)."""
    return Actor(id=principal.label, role=principal.role, body=principal.body_id)


# -- reading a repair's form ---------------------------------------------------------------------------------


class InvalidField(Exception):
    """A field of a repair's form that breaks its rule: `problem` is a key of `stalled.problem.*`."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def reason_of(form: Mapping[str, str]) -> str:
    """The reason, trimmed; the rule of `domain.repairs.RecordRepair` (at least `MIN_REASON` characters)."""
    reason = form.get("reason", "").strip()
    if len(reason) < MIN_REASON:
        raise InvalidField("reason", "reason_short")
    if len(reason) > MAX_REASON:
        raise InvalidField("reason", "reason_long")
    return reason


def body_of(form: Mapping[str, str], *, required: bool) -> str | None:
    body = form.get("body", "").strip()
    if not body:
        if required:
            raise InvalidField("body", "body_missing")
        return None
    if len(body) > MAX_BODY:
        raise InvalidField("body", "body_long")
    return body


def whole_number(form: Mapping[str, str], name: str, *, low: int, high: int, problem: str) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 12 or not low <= int(text) <= high:
        raise InvalidField(name, problem)
    return int(text)


def command_id_of(form: Mapping[str, str]) -> str | None:
    """The repair's command id from the form's nonce (None without a well-formed one: a new id is made)."""
    nonce = form.get("nonce", "")
    return f"console-{nonce}" if _NONCE.fullmatch(nonce) else None


# -- the flash messages ----------------------------------------------------------------------------------------


def _back(request: Request, filters: QueueFilters, payload: dict[str, Any]) -> RedirectResponse:
    response = RedirectResponse(filters.url(request), status_code=303)
    set_flash(response, request, payload)
    return response


def done_payload(outcome: RepairOutcome, body: str | None) -> dict[str, Any]:
    retried = outcome.detail.get("retried")
    steps = [str(step.get("activity_type")) for step in retried if isinstance(step, Mapping)] \
        if isinstance(retried, list) else []
    return {"kind": "done", "action": outcome.action, "case_id": outcome.case_id, "recorded": outcome.recorded,
            "version": outcome.version, "events": outcome.events, "body": body, "steps": steps,
            "point": outcome.detail.get("reset_to_event_id")}


def refused_payload(action: str, case_id: str | None, exc: RepairRefused, *, done: bool = False) -> dict[str, Any]:
    """A refusal; `done`: what was refused is only the record of a repair that was carried out."""
    return {"kind": "unrecorded" if done else "refused", "action": action, "case_id": case_id, "rule": exc.rule,
            "message": exc.message[:500]}


def failed_payload(action: str, case_id: str | None, exc: RPCError) -> dict[str, Any]:
    log.warning("console repair %s of %s: Temporal answered %s: %s", action, case_id, exc.status, exc.message)
    return {"kind": "failed", "action": action, "case_id": case_id, "rule": "temporal.error",
            "message": f"{exc.status.name if exc.status else 'error'}: {exc.message}"[:500]}


def invalid_payload(action: str, case_id: str | None, exc: InvalidField) -> dict[str, Any]:
    return {"kind": "invalid", "action": action, "case_id": case_id, "field": exc.name, "problem": exc.problem}


@dataclass
class FlashView:
    """A flash message in the reader's language: `tone` is good, warn or bad; `lines` its sentences; `rule` and
    `message` a refusal's; `items` the per-case report of a bulk retry (case, outcome, rule, detail)."""

    tone: str
    lines: list[str]
    rule: str | None = None
    rule_text: str | None = None
    message: str | None = None
    items: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    left_out: int = 0


def _action_name(t: Translator, action: str) -> str:
    return t("stalled.bulk_action") if action == "bulk" else t.label("remedy", action)


def flash_view(payload: Mapping[str, Any] | None, t: Translator) -> FlashView | None:
    """What the page says of a flash payload (None when there is none or it cannot be read)."""
    if not payload:
        return None
    try:
        return _flash_view(payload, t)
    except (KeyError, TypeError, ValueError, IndexError):
        log.warning("console: a flash message that cannot be shown: %r", payload)
        return None


def _flash_view(payload: Mapping[str, Any], t: Translator) -> FlashView:
    kind = payload["kind"]
    view = _FLASHES.get("refused" if kind in ("refused", "unrecorded", "failed") else kind)
    if view is None:
        raise ValueError(f"unknown flash kind {kind!r}")
    return view(payload, t, _action_name(t, str(payload.get("action"))), str(payload.get("case_id") or ""))


def _done_flash(payload: Mapping[str, Any], t: Translator, action: str, case_id: str) -> FlashView:
    events = ", ".join(f"{t.label('event', e)} ({e})" for e in payload.get("events") or [])
    key = "stalled.flash.recorded" if payload.get("recorded") else "stalled.flash.accepted"
    lines = [t(key, action=action, case_id=case_id, events=events or "—", version=payload.get("version"))]
    if payload.get("steps"):
        lines.append(t("stalled.flash.steps", steps=", ".join(payload["steps"])))
    if payload.get("point"):
        lines.append(t("stalled.flash.point", event_id=payload["point"]))
    if payload.get("body"):
        lines.append(t("stalled.flash.body", body=payload["body"]))
    return FlashView(tone="good" if payload.get("recorded") else "warn", lines=lines)


def _refused_flash(payload: Mapping[str, Any], t: Translator, action: str, case_id: str) -> FlashView:
    kind = payload["kind"]
    rule = str(payload.get("rule"))
    key = {"refused": "stalled.flash.refused", "unrecorded": "stalled.flash.unrecorded"}.get(
        kind, "stalled.flash.failed")
    text = t.label("rule", rule)
    return FlashView(tone="bad", lines=[t(key, action=action, case_id=case_id)], rule=rule,
                     rule_text=text if text != rule else None, message=payload.get("message"))


def _invalid_flash(payload: Mapping[str, Any], t: Translator, action: str, case_id: str) -> FlashView:
    name = str(payload["field"])
    lines = [t("stalled.flash.invalid", action=action, case_id=case_id or "—",
               label=t(f"stalled.field.{name}"), field=name),
             t(f"stalled.problem.{payload['problem']}", min=MIN_REASON, max=_field_max(name))]
    return FlashView(tone="bad", lines=lines)


def _remedy_flash(payload: Mapping[str, Any], t: Translator, action: str, case_id: str) -> FlashView:
    lines = [t("stalled.flash.remedy", action=action, case_id=case_id)]
    if payload.get("outcome"):
        lines.append(t("stalled.flash.remedy_outcome", outcome=payload["outcome"]))
    if payload.get("pending"):
        lines.append(t("stalled.flash.remedy_pending"))
    return FlashView(tone="warn" if payload.get("pending") else "good", lines=lines)


def _bulk_flash(payload: Mapping[str, Any], t: Translator, action: str, case_id: str) -> FlashView:
    key = "stalled.flash.bulk_dry" if payload.get("dry_run") else "stalled.flash.bulk"
    lines = [t(key, matched=payload["matched"], retried=payload["retried"], refused=payload["refused"],
               failed=payload["failed"])]
    items = [(str(i[0]), str(i[1]), i[2], i[3]) for i in payload.get("items") or []]
    bad = payload["refused"] or payload["failed"]
    return FlashView(tone="warn" if bad else "good", lines=lines, items=items,
                     left_out=int(payload.get("items_left_out") or 0))


#: The flash of each kind of outcome (`refused` also for `unrecorded` and `failed`).
_FLASHES: dict[str, Callable[[Mapping[str, Any], Translator, str, str], FlashView]] = {
    "done": _done_flash, "refused": _refused_flash, "invalid": _invalid_flash, "remedy": _remedy_flash,
    "bulk": _bulk_flash,
}


def _field_max(name: str) -> int:
    return {"reason": MAX_REASON, "body": MAX_BODY, "limit": BULK_MAX, "cursor": 64}.get(name, 0)


# -- the queue --------------------------------------------------------------------------------------------------


async def _cases_of(store: EventStore, found: list[Stalled]) -> dict[str, CaseRecord]:
    """The `cases` rows of the stalled cases (their subject and status), in one query."""
    ids = tuple(sorted({s.case_id for s in found}))
    if not ids:
        return {}
    rows, _ = await all_cases(store.pool, CaseFilter(in_ids=ids), cap=len(ids))
    return {row.case_id: row for row in rows}


def _filters_text(t: Translator, filters: QueueFilters) -> str:
    parts = []
    if filters.kind:
        parts.append(f"{t('stalled.kind')}: {t.label('kind', filters.kind)}")
    if filters.body:
        parts.append(f"{t('stalled.lead')}: {filters.body}")
    return "; ".join(parts) or t("stalled.bulk.no_filter")


@router.get("/stalled")
async def stalled_page(
    request: Request,
    store: Store,
    principal: Watcher,
    kind: KindFilter = None,
    lead: LeadFilter = None,
    reason: ReasonFilter = None,
) -> Response:
    """The stalled cases the scheduled scan last found for the filters, the longest stalled first, each with its
    reason, since when, how often the scan saw it, the repairs done, the detail, the attempts and the remedies
    that fit; when the scan last looked; for operators, the forms of those remedies and of the bulk retry; and
    the flash message of the last form sent."""
    filters = QueueFilters(kind, lead, reason)
    recorded = await recorded_stalls(store, kind=kind, body=lead, reason=reason)
    found = recorded.items
    t = Translator(language_of(request))
    response = render(request, "stalled.html", {
        "found": found, "scan": recorded.scan, "cases": await _cases_of(store, found), "filters": filters,
        "filter_query": filters.query(), "kinds": KINDS, "reasons": REASONS,
        "body_codes": reference(request).body_codes(), "can_repair": principal.role in REPAIRERS,
        "flash": flash_view(take_flash(request), t), "nonce": new_nonce, "min_reason": MIN_REASON,
        "max_reason": MAX_REASON, "bulk_limit": BULK_LIMIT, "bulk_max": BULK_MAX,
        "bulk_filters": _filters_text(t, filters), "bulk_per_second": f"{BULK_PER_SECOND:g}",
        "min_attempts": POLICY.min_attempts, "idle_hours": f"{POLICY.idle.total_seconds() / 3600:g}",
    }, section="stalled", headers=NO_STORE)
    clear_flash(response, request)
    return response


# -- the repairs --------------------------------------------------------------------------------------------


async def _run(action: RepairAction, client: Client, store: EventStore, case_id: str, actor: Actor,
               reason: str, form: Mapping[str, str]) -> tuple[RepairOutcome, str | None]:
    """Read the action's own fields and do it; the body it named goes back with the outcome."""
    command_id = command_id_of(form)
    if action == "retry":
        return await repairs.retry(client, case_id, actor, reason, command_id=command_id), None
    if action == "reset":
        to_event_id = whole_number(form, "to_event_id", low=1, high=2**62, problem="event_id")
        outcome = await repairs.reset(client, store, case_id, actor, reason, to_event_id=to_event_id,
                                      dry_run=form.get("dry_run") == "1", command_id=command_id)
        return outcome, None
    if action == "nudge":
        body = body_of(form, required=False)
        return await repairs.nudge(client, case_id, actor, reason, body=body, command_id=command_id), body
    body = body_of(form, required=True)
    assert body is not None
    return await repairs.reassign(client, case_id, actor, reason, body=body, command_id=command_id), body


@router.post("/stalled/cases/{case_id}/{action}")
async def repair_case(
    request: Request,
    case_id: CaseId,
    action: Annotated[RepairAction, Path(description=", ".join(REPAIR_ACTIONS))],
    store: Store,
    temporal: Temporal,
    principal: Repairer,
    kind: KindFilter = None,
    lead: LeadFilter = None,
    reason: ReasonFilter = None,
) -> Response:
    """One repair of one case (`retry`, `reset`, `nudge`, `reassign`), then back to the queue with its flash
    message. A reset with `dry_run=1` changes nothing: it answers with the preview page and its confirm form."""
    filters = QueueFilters(kind, lead, reason)
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    try:
        why = reason_of(form)
        client = await temporal.get()
        outcome, body = await _run(action, client, store, case_id, actor_of(principal), why, form)
    except InvalidField as exc:
        return _back(request, filters, invalid_payload(action, case_id, exc))
    except RepairRefused as exc:
        done = action == "reset" and form.get("dry_run") != "1" and exc.rule not in REFUSED_BEFORE_RESET
        if done:
            log.warning("console: case %s was reset by %s but its record was refused: %s", case_id,
                        principal.label, exc)
        return _back(request, filters, refused_payload(action, case_id, exc, done=done))
    except RPCError as exc:
        return _back(request, filters, failed_payload(action, case_id, exc))
    if outcome.dry_run:
        return _reset_preview(request, filters, outcome, why)
    await refresh_after_repair(client, store, case_id)
    return _back(request, filters, done_payload(outcome, body))


def _reset_preview(request: Request, filters: QueueFilters, outcome: RepairOutcome, reason: str) -> Response:
    """The reset's plan, and the form that does it (at the point shown, with the same reason to confirm)."""
    assert outcome.plan is not None
    back = filters.url(request)
    lang = language_of(request)
    other = "en" if lang == "vi" else "vi"
    return render(request, "stalled_reset.html", {
        "case_id": outcome.case_id, "plan": outcome.plan, "reason": reason, "filter_query": filters.query(),
        "back_url": back, "nonce": new_nonce(), "min_reason": MIN_REASON, "max_reason": MAX_REASON,
        # The language switch of a POST answer goes back to the queue (the preview is not a page to reload).
        "switch_lang_url": url_with(request, "/stalled", **filters.params(), lang=other),
    }, section="stalled", headers=NO_STORE)


@router.post("/stalled/retry-all")
async def retry_all(
    request: Request,
    store: Store,
    temporal: Temporal,
    principal: Repairer,
    kind: KindFilter = None,
    lead: LeadFilter = None,
    reason: ReasonFilter = None,
) -> Response:
    """`ops.repairs.bulk_retry` over the queue's kind and lead body (`dry_run=1`: only list the cases), then
    back to the queue with its report: how many were retried, refused, failed, and what happened to each."""
    filters = QueueFilters(kind, lead, reason)
    form = await read_form(request)
    check_session_csrf(request, form.get("csrf"))
    dry_run = form.get("dry_run") == "1"
    try:
        why = reason_of(form)
        limit = whole_number(form, "limit", low=1, high=BULK_MAX, problem="limit") or BULK_LIMIT
        client = await temporal.get()
        report = await repairs.bulk_retry(client, store, actor_of(principal), why, policy=POLICY, kind=kind,
                                          body=lead, per_second=BULK_PER_SECOND, limit=limit, dry_run=dry_run)
    except InvalidField as exc:
        return _back(request, filters, invalid_payload("bulk", None, exc))
    except RepairRefused as exc:
        return _back(request, filters, refused_payload("bulk", None, exc))
    except RPCError as exc:
        return _back(request, filters, failed_payload("bulk", None, exc))
    for item in report.items if not dry_run else []:
        if item.outcome == "retried":
            await refresh_after_repair(client, store, item.case_id)
    # The cases that need a look first, so that they are the last to be left out of a long report.
    order = {"failed": 0, "refused": 1}
    items = sorted(report.items, key=lambda i: order.get(i.outcome, 2))
    payload = fit({"kind": "bulk", "action": "bulk", "dry_run": dry_run, "matched": report.matched,
                   "retried": report.retried, "refused": report.refused, "failed": report.failed,
                   "items": [[i.case_id, i.outcome, i.rule, (i.detail or "")[:300] or None] for i in items]},
                  "items")
    return _back(request, filters, payload)


# -- the case page's banner -------------------------------------------------------------------------------------


async def case_stalls(temporal: TemporalConnection, store: EventStore, case: CaseRecord | None,
                      case_id: str) -> list[Stalled]:
    """Why the case is stalled now, by the queue's rules: what Temporal shows to be stuck in it
    (`inspect_case`), and, when it is overdue, whether nobody has acted on it. Empty when it runs normally, and
    when Temporal does not answer within `BANNER_TIMEOUT` (the page is then shown without the banner)."""
    found: list[Stalled] = []
    try:
        async with asyncio.timeout(BANNER_TIMEOUT):
            found = await inspect_case(await temporal.get(), case_id, POLICY)
    except (TemporalUnavailableError, RPCError, TimeoutError) as exc:
        log.info("console: cannot tell whether %s is stalled: %s", case_id, exc)
    if case is not None and case.overdue:
        found += await idle_stalls(store, POLICY, case_ids=[case_id])
    return found
