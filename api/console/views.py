"""What the console's pages show, shaped from what the API already reads: the `cases` projection row of a case
(its `summary` carries the deadlines of every kind of case), its recorded events, and the reference data of
`policy/` (deadline titles, body names). No SQL here: the pages read through `api.queries`, the event store
and `readside.reports`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fastapi import Request

from activities.rules import RULE_BOOK, load_bodies, load_deadline_policy
from domain.bodies import BodyRegistry, UnknownBody
from domain.coordination import SUB_DEADLINE_BASIS
from domain.deadlines import DeadlinePolicy
from eventstore import CaseRecord, Pool, RecordedEvent
from ops.stalled import Stalled
from readside.reports import task_order

from ..queries import LOCAL_TZ, CaseCursor, CaseFilter, list_cases
from ..timeline import DomainEntry, ProcessEntry
from .i18n import Lang, Translator

log = logging.getLogger("danvan.console")

#: The plan page reads at most this many plan task cases (the shipped plan has a few dozen).
MAX_PLAN_TASKS = 2000


# -- reference data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The deadline policy and the body registry, for titles and names. Either may be missing (the file did
    not load): the pages then show keys and codes."""

    policy: DeadlinePolicy | None
    bodies: BodyRegistry | None

    def body_name(self, code: str | None, lang: Lang) -> str:
        if not code:
            return "—"
        if self.bodies is None:
            return code
        try:
            body = self.bodies.get(code)
        except UnknownBody:
            return code
        return body.name_vi if lang == "vi" else body.name_en

    def body_codes(self) -> list[str]:
        return self.bodies.codes() if self.bodies is not None else []


def reference(request: Request) -> Reference:
    """`policy/deadlines.yaml` and `policy/bodies.yaml`, read on first use and kept for the life of the app."""
    found: Reference | None = getattr(request.app.state, "console_reference", None)
    if found is None:
        policy: DeadlinePolicy | None = None
        bodies: BodyRegistry | None = None
        try:
            policy = load_deadline_policy()
        except Exception as exc:  # a bad file stops workers at start; the console only loses titles
            log.warning("console: deadline titles unavailable: %s", exc)
        try:
            bodies = load_bodies()
        except Exception as exc:
            log.warning("console: body names unavailable: %s", exc)
        found = Reference(policy=policy, bodies=bodies)
        request.app.state.console_reference = found
    return found


# -- small conversions --------------------------------------------------------------------------------------


def as_datetime(value: Any) -> datetime | None:
    """A datetime from a projection's JSON (ISO 8601 text) or a datetime; None when there is none."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def today_local() -> date:
    return datetime.now(LOCAL_TZ).date()


# -- deadlines and the coordination board --------------------------------------------------------------------

@dataclass(frozen=True)
class DeadlineRow:
    """One deadline of a case as the page shows it."""

    key: str
    title: str
    due_on: date | None
    legal_basis: str
    statutory: bool
    state: str
    breached: bool
    approaching: bool
    #: Still running and its day has passed (or the breach was recorded): the overdue mark.
    overdue: bool
    extensions: int
    met_at: datetime | None


def deadline_title(key: str, t: Translator, ref: Reference) -> str:
    """A deadline's name: the policy rule's title, or what the key says for the keys a case makes itself
    (a body's part of a coordination request, an acknowledgement, a sub-plan, a period's report)."""
    lang = t.lang
    if ref.policy is not None and key in ref.policy.rules:
        rule = ref.policy.rules[key]
        return rule.title_vi if lang == "vi" else rule.title_en
    head, _, rest = key.partition(".")
    if head == "coordination" and "." in rest:
        request_id, _, body = rest.partition(".")
        return t("deadline.key.coordination", body=ref.body_name(body, lang), request=request_id)
    if head == "ack" and rest:
        return t("deadline.key.ack", body=ref.body_name(rest, lang))
    if head == "subplan" and rest:
        return t("deadline.key.subplan", body=ref.body_name(rest, lang))
    if head == "report" and rest:
        if rest.endswith(".urge"):
            return t("deadline.key.report_urge", period=rest.removesuffix(".urge"))
        return t("deadline.key.report", period=rest)
    return key


def _deadline_dicts(case: CaseRecord) -> list[Mapping[str, Any]]:
    items = case.summary.get("deadlines")
    return [d for d in items if isinstance(d, Mapping) and d.get("key")] if isinstance(items, list) else []


def basis_text(basis: str, t: Translator) -> str:
    """A deadline's recorded basis as the page shows it: a law's citation as written, the sub-deadline a lead
    body set in the page's language."""
    return t("deadline.basis.sub_deadline") if basis == SUB_DEADLINE_BASIS else basis


def stall_text(stall: Stalled, t: Translator) -> str:
    """Why a case is stalled, in the page's language, from the facts the scan found (the message Temporal gave a
    failure is quoted as it is)."""
    lang = t.lang
    why = t("stall.detail.why", message=stall.failure) if stall.failure else ""
    step = stall.activity_type or "—"
    if stall.reason == "activity_paused":
        return t("stall.detail.activity_paused", step=step, why=why)
    if stall.reason == "activity_failing":
        return t("stall.detail.activity_failing", step=step, count=max((stall.attempts or 1) - 1, 0), why=why)
    if stall.reason == "workflow_task_failing":
        return t("stall.detail.workflow_task_failing", why=why)
    if stall.reason == "deadline_idle" and stall.overdue_since is not None:
        moment = "%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M"
        acted = (t("stall.detail.acted", at=stall.last_action.astimezone(LOCAL_TZ).strftime(moment))
                 if stall.last_action is not None else t("stall.detail.nobody"))
        return t("stall.detail.deadline_idle", due=_shown_day(stall.overdue_since.astimezone(LOCAL_TZ).date(), lang),
                 acted=acted)
    return _subject_text(stall, t, why)


def _subject_text(stall: Stalled, t: Translator, why: str) -> str:
    """A failing subscription's or a late checkpoint's words (the facts are in the finding's own fields). Their
    reason, written in English by the workflow or the signer, is said in the page's language when its shape is
    known (`subscription_reason`); the page shows it as it was written beside, as code."""
    if stall.reason == "subscription_failing":
        said = subscription_reason(stall.failure, t)
        return t("stall.detail.subscription_failing", owner=stall.owner or "—", url=stall.target or "—",
                 why=f": {said}" if said else "")
    if stall.reason == "checkpoint_late":
        moment = "%d/%m/%Y %H:%M" if t.lang == "vi" else "%Y-%m-%d %H:%M"
        since = (stall.last_action.astimezone(LOCAL_TZ).strftime(moment) if stall.last_action is not None
                 else t("stall.detail.checkpoint_never"))
        failed = t("stall.detail.checkpoint_failed") if stall.failure else ""
        return t("stall.detail.checkpoint_late", since=since, every=stall.every_seconds or "—", why=failed)
    return stall.detail


_GAVE_UP = re.compile(r"gave up after (\d+) attempts over ([0-9.]+) (days|hours|s): event \S+: attempt \d+ "
                      r"(?:answered HTTP (\d{3})|failed: .*)$", re.DOTALL)
_NO_TOKEN = re.compile(r"the owner \(.*\) has no active token left", re.DOTALL)


def subscription_reason(reason: str | None, t: Translator) -> str | None:
    """Why a subscription is failing, in the page's language, for the reasons the engine writes (it gave up on an
    event; its owner has no token left); None for another text (shown as it is, as code)."""
    if not reason:
        return None
    if (m := _GAVE_UP.match(reason)) is not None:
        attempts, span, unit, status = m.groups()
        last = t("subs.reason.answered", status=status) if status else t("subs.reason.no_answer")
        return t("subs.reason.gave_up", attempts=attempts, span=span, unit=t(f"subs.unit.{unit}"), last=last)
    if _NO_TOKEN.match(reason):
        return t("subs.reason.no_token")
    return None


def deadline_rows(case: CaseRecord, t: Translator, ref: Reference, today: date) -> list[DeadlineRow]:
    """The case's deadlines, in due order, from its projection (every kind of case keeps them in `summary`)."""
    rows = []
    for d in _deadline_dicts(case):
        due_on = as_date(d.get("due_on"))
        state = str(d.get("outcome") or "pending")
        breached = bool(d.get("breached"))
        pending = state == "pending"
        rows.append(DeadlineRow(
            key=str(d["key"]), title=deadline_title(str(d["key"]), t, ref), due_on=due_on,
            legal_basis=basis_text(str(d.get("legal_basis") or ""), t), statutory=bool(d.get("statutory", True)),
            state=state,
            breached=breached, approaching=bool(d.get("approached")),
            overdue=pending and (breached or (due_on is not None and due_on < today)),
            extensions=int(d.get("extensions") or 0), met_at=as_datetime(d.get("met_at")),
        ))
    return sorted(rows, key=lambda r: (r.due_on or date.max, r.key))


@dataclass(frozen=True)
class BoardRow:
    """One thing a body owes the case: its part of a coordination request, an acknowledgement, a sub-plan, a
    period's report. `answer` is `answered`, `answered_late`, `waiting` or `cancelled`."""

    body: str
    owes: str
    due_on: date | None
    answer: str
    overdue: bool


def _subjects(events: Iterable[RecordedEvent]) -> dict[str, str]:
    """request id -> subject, from the case's `CoordinationRequested` events."""
    return {str(e.data.get("request_id")): str(e.data.get("subject") or "")
            for e in events if e.type == "CoordinationRequested" and e.data.get("request_id")}


def _report_bodies(case: CaseRecord, period: str) -> list[str]:
    reports = case.summary.get("reports")
    entry = reports.get(period) if isinstance(reports, Mapping) else None
    if isinstance(entry, Mapping) and entry.get("from_bodies"):
        return [str(b) for b in entry["from_bodies"]]
    lead = case.summary.get("lead")
    if isinstance(lead, list) and lead:
        return [str(b) for b in lead]
    return [case.lead_body] if case.lead_body else []


def board_rows(case: CaseRecord, events: Sequence[RecordedEvent], deadlines: Sequence[DeadlineRow],
               t: Translator) -> list[BoardRow]:
    """The coordination board: for every deadline that a named body must meet, who, what, by when and whether
    it has answered. Built from the case's deadlines (its state) and the subjects of its coordination
    requests (its events); the same for petitions and plan tasks."""
    subjects = _subjects(events)
    answers = {"on_time": "answered", "late": "answered_late", "cancelled": "cancelled"}
    rows = []
    for d in deadlines:
        head, _, rest = d.key.partition(".")
        owed: list[tuple[str, str]] = []  # (body, what)
        if head == "coordination" and "." in rest:
            request_id, _, body = rest.partition(".")
            owed.append((body, t("board.owes.coordination", subject=subjects.get(request_id) or request_id)))
        elif head == "ack" and rest:
            owed.append((rest, t("board.owes.ack")))
        elif head == "subplan" and rest:
            owed.append((rest, t("board.owes.subplan")))
        elif head == "report" and rest and not rest.endswith(".urge"):
            owed += [(body, t("board.owes.report", period=rest)) for body in _report_bodies(case, rest)]
        for body, what in owed:
            rows.append(BoardRow(body=body, owes=what, due_on=d.due_on, answer=answers.get(d.state, "waiting"),
                                 overdue=d.overdue))
    return sorted(rows, key=lambda r: (r.due_on or date.max, r.body, r.owes))


# -- the timeline ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataField:
    """One field of an event's data as the page shows it: a label in the page's language and the value."""

    label: str
    value: str


#: Fields whose value is a body's code: shown by the body's name.
_BODY_FIELDS = frozenset({"body", "lead_body", "to_body", "from_body", "previous_body", "resolver", "receiving_body"})
#: Fields whose value is a code the catalogue names (`LABELS[group]`).
_CODED_FIELDS = {"kind": "kind", "case_kind": "kind", "from_status": "status", "side": "side"}
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _shown_day(value: date, lang: str) -> str:
    return value.strftime("%d/%m/%Y" if lang == "vi" else "%Y-%m-%d")


def _shown(name: str, value: Any, t: Translator, ref: Reference) -> str:
    """A value of the field `name`, in words: days as the page writes them, bodies by name, yes and no, a
    deadline by its title and due day, lists and records one item after another."""
    if isinstance(value, bool):
        return t("common.yes") if value else t("common.no")
    if isinstance(value, str):
        return _shown_text(name, value, t, ref)
    if isinstance(value, Mapping):
        return _shown_record(name, value, t, ref)
    if isinstance(value, list | tuple):
        return "; ".join(_shown(name, v, t, ref) for v in value)
    return str(value)


def _shown_text(name: str, value: str, t: Translator, ref: Reference) -> str:
    lang = t.lang
    if name in _BODY_FIELDS:
        return f"{ref.body_name(value, lang)} ({value})"
    if name in _CODED_FIELDS:
        return t.label(_CODED_FIELDS[name], value)
    if _ISO_DAY.match(value) and (day := as_date(value)) is not None:
        return _shown_day(day, lang)
    if _ISO_MOMENT.match(value) and (moment := as_datetime(value)) is not None:
        if moment.tzinfo is not None:
            moment = moment.astimezone(LOCAL_TZ)
        return moment.strftime("%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M")
    return value


def _shown_record(name: str, value: Mapping[str, Any], t: Translator, ref: Reference) -> str:
    if name == "rules_ref":
        return _rules_ref_text(value, t)
    if name == "rules" or {"policy", "calendar"} <= value.keys():
        return _rules_text(value, t)
    if "key" in value and "due_on" in value:
        return _deadline_text(value, t, ref)
    parts = [f"{t.label('field', str(k))}: {_shown(str(k), v, t, ref)}" for k, v in value.items()
             if v not in (None, "", [], {})]
    return "; ".join(parts)


def _rules_text(rules: Mapping[str, Any], t: Translator) -> str:
    policy = rules.get("policy") or {}
    calendar = rules.get("calendar") or {}
    bodies = rules.get("bodies") or {}
    return t("timeline.rules", policy=str(policy.get("version", "—")), first=str(calendar.get("first_year", "—")),
             last=str(calendar.get("last_year", "—")), bodies=str(bodies.get("version", "—")))


def _rules_ref_text(ref: Mapping[str, Any], t: Translator) -> str:
    """The rules an event names by digest, told as the rules in full are (`_rules_text`): the page has put
    their documents in the book (`known_rules`); a document it lacks is named by the start of its digest."""
    inner = ref.get("case")
    case: Mapping[str, Any] = inner if isinstance(inner, Mapping) else ref

    def document(kind: str) -> dict[str, Any]:
        digest = case.get(kind)
        if isinstance(digest, str) and digest in RULE_BOOK:
            model = RULE_BOOK.model(digest)
            return {k: v for k in ("version", "first_year", "last_year") if (v := getattr(model, k, None)) is not None}
        return {"version": f"{digest[:12]}…"} if isinstance(digest, str) else {}

    return _rules_text({"policy": document("policy"), "calendar": document("calendar"),
                        "bodies": document("bodies")}, t)


def _deadline_text(deadline: Mapping[str, Any], t: Translator, ref: Reference) -> str:
    due = as_date(deadline.get("due_on"))
    return t("timeline.deadline", title=deadline_title(str(deadline.get("key")), t, ref),
             due=_shown_day(due, t.lang) if due else "—", amount=str(deadline.get("amount", "—")),
             unit=t.label("unit", str(deadline.get("unit") or "calendar")))


def event_fields(data: Mapping[str, Any], t: Translator, ref: Reference) -> list[DataField]:
    """An event's data as labelled fields in the page's language; empty values left out. The intake of a
    petition is shown field by field, the rules in force by their versions, deadlines by title and due day."""
    fields: list[DataField] = []
    for name, value in data.items():
        if value in (None, "", [], {}):
            continue
        if name == "intake" and isinstance(value, Mapping):
            fields += event_fields(value, t, ref)
            continue
        fields.append(DataField(label=t.label("field", name), value=_shown(name, value, t, ref)))
    return fields


@dataclass(frozen=True)
class TimelineRow:
    """A domain event (with its data as labelled fields) or, when asked for, a step of the process."""

    kind: str
    at: datetime
    version: int | None
    type: str
    #: The date the written act bears, shown next to the moment it was recorded.
    dated: date | None = None
    actor: str | None = None
    reason: str | None = None
    legal_basis: str | None = None
    fields: tuple[DataField, ...] = ()
    summary: str | None = None


def timeline_rows(entries: Sequence[DomainEntry | ProcessEntry], events: Sequence[RecordedEvent], t: Translator,
                  ref: Reference) -> list[TimelineRow]:
    """The rows of `api.timeline`'s entries (domain events alone, or merged with the process), each domain event
    with its recorded data as labelled fields."""
    data = {e.version: tuple(event_fields(e.data, t, ref)) for e in events}
    rows = []
    for entry in entries:
        if isinstance(entry, DomainEntry):
            rows.append(TimelineRow(kind="domain", at=entry.occurred_at, version=entry.version, type=entry.type,
                                    dated=entry.dated,
                                    actor=entry.actor, reason=entry.reason, legal_basis=entry.legal_basis,
                                    fields=data.get(entry.version, ())))
        else:
            rows.append(TimelineRow(kind="process", at=entry.at, version=None, type=entry.event,
                                    summary=entry.summary))
    return rows


# -- plan progress ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskProgress:
    case_id: str
    task_id: str
    title: str
    title_en: str | None
    lead: list[str]
    coordinators: list[str]
    phase: str
    acknowledged: list[str]
    progress_count: int
    #: (period, "submitted" | "submitted_late" | "open")
    reports: list[tuple[str, str]]
    due_at: datetime | None
    overdue: bool


@dataclass
class BodyProgress:
    body: str
    led: int = 0
    coordinating: int = 0
    ack_missing: int = 0
    reports_in: int = 0
    reports_open: int = 0
    overdue: int = 0


@dataclass
class PlanProgressView:
    plan_id: str
    title: str | None = None
    term_start: str | None = None
    term_end: str | None = None
    tasks_expected: int | None = None
    cycles_started: list[str] = field(default_factory=list)
    tasks: list[TaskProgress] = field(default_factory=list)
    bodies: list[BodyProgress] = field(default_factory=list)


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def task_progress(case: CaseRecord) -> TaskProgress:
    s = case.summary
    reports: list[tuple[str, str]] = []
    raw_reports = s.get("reports")
    if isinstance(raw_reports, Mapping):
        for period, entry in sorted(raw_reports.items()):
            if not isinstance(entry, Mapping):
                continue
            if entry.get("submitted_at"):
                reports.append((str(period), "submitted" if entry.get("on_time") is not False else "submitted_late"))
            else:
                reports.append((str(period), "open"))
    lead = _strings(s.get("lead")) or ([case.lead_body] if case.lead_body else [])
    return TaskProgress(
        case_id=case.case_id, task_id=str(s.get("task_id") or case.external_ref or case.case_id),
        title=case.title or "", title_en=s.get("title_en"), lead=lead, coordinators=_strings(s.get("coordinators")),
        phase=case.status, acknowledged=_strings(s.get("acknowledged")),
        progress_count=int(s.get("progress_count") or 0), reports=reports, due_at=case.due_at, overdue=case.overdue,
    )


def body_progress(tasks: Iterable[TaskProgress]) -> list[BodyProgress]:
    """Per body named by a task (lead or coordinating): how many it leads and coordinates, how many it has not
    acknowledged, the reports in and open of the tasks it leads, and how many of its tasks are overdue."""
    by_body: dict[str, BodyProgress] = {}
    for task in tasks:
        for body in dict.fromkeys(task.lead + task.coordinators):
            row = by_body.setdefault(body, BodyProgress(body=body))
            if body in task.lead:
                row.led += 1
                row.reports_in += sum(1 for _, state in task.reports if state != "open")
                row.reports_open += sum(1 for _, state in task.reports if state == "open")
            else:
                row.coordinating += 1
            if body not in task.acknowledged:
                row.ack_missing += 1
            if task.overdue:
                row.overdue += 1
    return sorted(by_body.values(), key=lambda b: b.body)


async def all_cases(pool: Pool, filters: CaseFilter, *, cap: int) -> tuple[list[CaseRecord], bool]:
    """Every case matching `filters` through `api.queries.list_cases`' cursor paging, at most `cap`; the second
    value says whether more were left out."""
    found: list[CaseRecord] = []
    after: CaseCursor | None = None
    while len(found) < cap:
        page, after = await list_cases(pool, filters, limit=min(200, cap - len(found)), after=after)
        found += page
        if after is None:
            return found, False
    return found, True


def plan_views(plans: Iterable[CaseRecord], tasks: Iterable[CaseRecord]) -> list[PlanProgressView]:
    """One view per plan that has tasks among `tasks`, with its header from the plan's own case when known."""
    headers = {str(p.summary.get("plan_id") or p.source): p for p in plans}
    views: dict[str, PlanProgressView] = {}
    for case in tasks:
        plan_id = str(case.summary.get("plan_id") or case.source or "")
        view = views.get(plan_id)
        if view is None:
            view = views[plan_id] = PlanProgressView(plan_id=plan_id)
            header = headers.get(plan_id)
            if header is not None:
                view.title = header.title
                view.term_start = header.summary.get("term_start")
                view.term_end = header.summary.get("term_end")
                expected = header.summary.get("tasks")
                view.tasks_expected = int(expected) if isinstance(expected, int) else None
                view.cycles_started = _strings(header.summary.get("cycles_started"))
        view.tasks.append(task_progress(case))
    for view in views.values():
        view.tasks.sort(key=lambda task: (task_order(task.task_id), task.task_id))
        view.bodies = body_progress(view.tasks)
    return sorted(views.values(), key=lambda v: v.plan_id)
