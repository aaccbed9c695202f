"""Properties of the plan-task decider over random command sequences (hypothesis).

Each example assigns a random task of the action plan on a random day of 2026: one or two lead bodies in force in
2026 (or the family of district commissions `BDV_HUYEN`, which owes one implementing plan per district), up to three
coordinators, issued and monitored by the commission BTGDV_TU. It then sends the task up to 30 random commands of
every type of `COMMAND_TYPES` plus the internal `deadline` timer mark (for keys the task holds), each from a random
actor: the body the command is about, another body, the commission, the system or an admin. Each command is judged
as the workflow's validator judges it: the authority table of `domain.authority` first, then `decide`. Most fields
are taken from the task's state (its bodies, requested reports, coordination requests, owed sub-plans) so that
commands are often accepted; the others are any plausible value. The clock only moves forward, up to the end of 2030.
`--hypothesis-show-statistics` shows how far the examples go.

What must hold whatever happens:
(a) a refused command (`DomainError`) emits nothing and changes nothing; `decide` never changes its input;
(b) an accepted command's events raise `version` by exactly their count, one each;
(c) the final state is the fold of every emitted event, from scratch;
(d) every event survives the event store's storage form (envelope columns + JSON payload) unchanged;
(e) a closed task refuses every further command (`task.closed`, or `authority.<command>` for a sender who may
    not send it at all);
(f) a body's staff (role "body") never act for another body unless their body is the commission's:
    acknowledge / respond / record_progress / submit_report / submit_subplan naming another body are refused, with
    `authority.<command>`; and no accepted command of theirs meets or cancels an obligation another body owes;
(g) after a reassignment the old body is neither lead nor coordinator and owes no pending `ack.`/`subplan.` deadline;
(h) `task_row(state)` is JSON-serialisable (its datetime columns as the `CaseRow` model writes them, its summary as
    is) and its `status` is one of the phases of docs/architecture.md, plan task.

The last tests pin decider bugs these properties led to (now fixed): a reassignment can leave an obligation
that no command can ever meet.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from activities.rules import PlanRulesRequest, RulesActivities
from domain import plan_tasks as pt
from domain.attachments import Attach
from domain.authority import PLAN_TASK, authorize, for_command, task_facts
from domain.calendar import VN_TZ
from domain.common import SYSTEM, Actor, DomainError, Event
from domain.coordination import CoordinationTarget, RequestCoordination, Respond
from domain.deadlines import MarkDeadline

RULES = asyncio.run(RulesActivities().load_plan_rules(PlanRulesRequest(start_on=date(2026, 1, 5),
                                                                       until=date(2030, 12, 31))))
COMMISSION_BODY = "BTGDV_TU"
#: Province bodies in force throughout 2026-2030 (none has an end date or a successor in `policy/bodies.yaml`).
IN_FORCE = ["UBND_TINH", "UBMTTQ_TINH", "SO_NOI_VU", "THANH_TRA_TINH", "HDND_TINH", "CA_TINH"]
FAMILY = "BDV_HUYEN"
assert RULES.case.bodies is not None
DISTRICTS = [b.code for b in RULES.case.bodies.instances(FAMILY)]
#: Body codes a command may name: bodies in force, the commission, a body dissolved in 2025 (BDV_TU), a body not
#: in the task, and one district commission.
NAMED = [*IN_FORCE, COMMISSION_BODY, "BDV_TU", "SO_TAI_NGUYEN", "BDV_HUYEN:nam-sach"]
#: Bodies whose staff may be "another body" (never the commission).
OTHERS = [*IN_FORCE, "SO_TAI_NGUYEN", "BDV_HUYEN:nam-sach", "BDV_HUYEN:chi-linh"]
PERIODS = [f"{year}{half}" for year in range(2026, 2031) for half in ("-H1", "")]
#: The phases of docs/architecture.md, plan task.
PHASES = {"assigned", "active", "report_due", "overdue_report", "urged", "report_submitted", "final_review", "closed"}
ALL_TYPES = [*pt.COMMAND_TYPES, "deadline"]
#: Commands naming the body they are done for: only that body's staff (or the commission's) may send them.
BODY_BOUND = (pt.Acknowledge, Respond, pt.RecordProgress, pt.SubmitReport, pt.SubmitSubplan)

COMMISSION = Actor(id="nguyen.van.binh", role="body", body=COMMISSION_BODY)
ADMIN = Actor(id="quan.tri", role="admin")

FIRST_ASSIGN = datetime(2026, 1, 5, 8, 0)
LAST_ASSIGN = datetime(2026, 12, 31, 17, 0)
LAST_INSTANT = datetime(2030, 12, 31, 23, 0, tzinfo=VN_TZ)

TEXTS = [
    "Tổ chức hội nghị quán triệt Nghị quyết về công tác dân vận",
    "Báo cáo kết quả thực hiện phong trào thi đua “Dân vận khéo”",
    "Phối hợp tiếp xúc cử tri, đối thoại với Nhân dân",
    "Kiểm tra, giám sát việc thực hiện Quy chế dân chủ ở cơ sở",
]

# -- strategies (built once: building them inside the loop costs more than the decider) ------------------------


def vietnamese() -> st.SearchStrategy[str]:
    """Vietnamese text, sometimes decomposed (NFD) the way some keyboards send it."""
    return st.builds(lambda text, form: unicodedata.normalize(form, text), st.sampled_from(TEXTS),
                     st.sampled_from(["NFC", "NFD"]))


@st.composite
def specs(draw: st.DrawFn) -> pt.TaskSpec:
    if draw(st.integers(0, 3), label="family lead") == 0:
        lead = [FAMILY]
        cadence = draw(st.sampled_from([["one_off_subplan", "semiannual", "annual"], ["one_off_subplan", "annual"],
                                        ["annual"]]), label="cadence")
    else:
        lead = draw(st.lists(st.sampled_from(IN_FORCE), min_size=1, max_size=2, unique=True), label="lead")
        cadence = draw(st.sampled_from([["semiannual", "annual"], ["annual"], ["one_off_subplan", "annual"]]),
                       label="cadence")
    others = [b for b in IN_FORCE if b not in lead]
    coordinators = draw(st.lists(st.sampled_from(others), max_size=3, unique=True), label="coordinators")
    return pt.TaskSpec(plan_id="KH-BTGDV-2026", task_id=draw(st.sampled_from(["II.2.1", "II.3.4", "III.2"])),
                       title_vi=draw(vietnamese()), title_en="A task of the action plan", lead=lead,
                       coordinators=coordinators, cadence=cadence, issuer=COMMISSION_BODY, monitor=COMMISSION_BODY)


assigned_at = st.datetimes(FIRST_ASSIGN, LAST_ASSIGN).map(lambda dt: dt.replace(tzinfo=VN_TZ))
#: An index into a list known only during the run (the task's bodies, its reports...), taken modulo its length.
index = st.integers(0, 1000)
#: Whether a field is taken from the task's state (mostly) or is any plausible value.
from_state = st.integers(0, 3).map(bool)
named = st.sampled_from(NAMED)
period = st.sampled_from(PERIODS)
stage = st.sampled_from(["approaching", "breached"])
doc_no = st.sampled_from(["15-CV/BTGDV", "7/TB-BTGDV", "2-KH/BDVHU"])
request_id = st.sampled_from(["R1", "R2", "R3"])
_target = st.builds(CoordinationTarget, body=named, side=st.sampled_from(["party", "state", "front"]),
                    days=st.integers(1, 45), unit=st.sampled_from(["calendar", "working"]))
FIXED: dict[str, st.SearchStrategy[Any]] = {
    "request_coordination": st.builds(RequestCoordination, subject=vietnamese(),
                                      bodies=st.lists(_target, min_size=1, max_size=3)),
    "request_report": st.builds(pt.RequestReport, period=period),
    "interim_review": st.builds(pt.InterimReview, summary=vietnamese()),
    "final_review": st.builds(pt.FinalReview, summary=vietnamese()),
    "close": st.builds(pt.Close, approval_no=st.sampled_from(["120-QĐ/TU", "45-TB/BTGDV"])),
    "attach": st.builds(Attach, name=st.sampled_from(["Báo cáo 6 tháng.docx", "biên bản.pdf"]),
                        media_type=st.sampled_from(["application/pdf", "image/png"]), size=st.integers(1, 10**7),
                        sha256=st.sampled_from(["c" * 64, "d" * 64])),
}
figures = st.dictionaries(st.sampled_from(["hoi_nghi", "luot_nguoi", "mo_hinh_dan_van_kheo"]),
                          st.integers(0, 5000).map(float), max_size=3)
summary = vietnamese()
verdict = st.sampled_from(["accepted", "returned"])
notes = st.sampled_from(["", "Bổ sung số liệu"])
evidence = st.lists(doc_no, max_size=2)
booleans = st.booleans()
#: A coordination request and a body it may have asked, as "R1|UBND_TINH".
any_asked = st.builds(lambda r, b: f"{r}|{b}", request_id, named)
reassign_reason = st.sampled_from([None, "", " "] + ["Sắp xếp tổ chức bộ máy theo Nghị quyết 18-NQ/TW"] * 6)
#: How often each type is drawn: the two that end a task are rarer, so that most examples live long.
WEIGHTED_TYPES = st.sampled_from(
    ["acknowledge"] * 4 + ["request_coordination"] * 2 + ["respond"] * 2 + ["record_progress"] * 2
    + ["request_report"] * 4 + ["submit_report"] * 4 + ["review_report"] * 2 + ["urge"] * 2 + ["interim_review"]
    + ["final_review"] + ["close"] + ["reassign"] * 4 + ["submit_subplan"] * 2 + ["deadline"] * 4
)
ANY_TYPE = st.sampled_from(ALL_TYPES)
#: After the final review, closing is likelier, so that some examples go on after it.
AFTER_FINAL_REVIEW = st.sampled_from(ALL_TYPES + ["close"] * 4)
ACTOR_KIND = st.sampled_from(["right"] * 3 + ["commission"] * 2 + ["other", "system", "admin"])
TIMER_ACTOR_KIND = st.sampled_from(["system"] * 5 + ["right", "commission", "other", "admin"])
CLOCK_STEP = st.one_of(
    st.integers(0, 180).map(lambda m: timedelta(minutes=m)),
    st.integers(1, 48).map(lambda h: timedelta(hours=h)),
    st.integers(1, 40).map(lambda d: timedelta(days=d)),
    st.integers(60, 240).map(lambda d: timedelta(days=d)),
)
COMMAND_COUNT = st.integers(0, 30)
#: The tests after the first only need some history before what they aim at.
PREFIX_COUNT = st.integers(0, 15)


def pick(data: st.DataObject, options: list[str], fallback: st.SearchStrategy[str], label: str) -> str:
    """Mostly one of `options` (taken from the state), otherwise any value of `fallback`."""
    if not options or not data.draw(from_state, label=f"{label} from state"):
        return data.draw(fallback, label=label)
    return options[data.draw(index, label=label) % len(options)]


def draw_command(data: st.DataObject, kind: str, state: pt.TaskState) -> pt.PlanTaskCommand:
    """Plausible random fields for a command of type `kind`, mostly taken from what the task holds."""
    if kind in FIXED:
        command: pt.PlanTaskCommand = data.draw(FIXED[kind], label="command")
        if isinstance(command, RequestCoordination) and data.draw(from_state, label="distinct bodies"):
            unique = {t.body: t for t in command.bodies}
            command = command.model_copy(update={"bodies": list(unique.values())})
        return command
    return DRAWN[kind](data, state)


def _pending(state: pt.TaskState) -> list[str]:
    return sorted(k for k, d in state.deadlines.items() if d.pending)


def _respond(data: st.DataObject, state: pt.TaskState) -> pt.PlanTaskCommand:
    asked = [f"{rid}|{b}" for rid, r in state.coordination.items() for b in r.bodies if b not in r.responses]
    rid, body = pick(data, asked, any_asked, "asked").split("|")
    return Respond(request_id=rid, body=body, response=data.draw(summary))


def _submit_report(data: st.DataObject, state: pt.TaskState) -> pt.PlanTaskCommand:
    open_reports = [p for p, r in state.reports.items() if r.submitted_at is None or r.verdict == "returned"]
    return pt.SubmitReport(period=pick(data, open_reports, period, "period"),
                           body=pick(data, state.lead, named, "body"), summary=data.draw(summary),
                           figures=data.draw(figures))


def _review_report(data: st.DataObject, state: pt.TaskState) -> pt.PlanTaskCommand:
    submitted = [p for p, r in state.reports.items() if r.submitted_at is not None]
    return pt.ReviewReport(period=pick(data, submitted, period, "period"), verdict=data.draw(verdict),
                           notes=data.draw(notes))


def _urge(data: st.DataObject, state: pt.TaskState) -> pt.PlanTaskCommand:
    missing = [p for p, r in state.reports.items() if r.submitted_at is None]
    return pt.Urge(period=pick(data, missing, period, "period"), doc_no=data.draw(doc_no))


def _submit_subplan(data: st.DataObject, state: pt.TaskState) -> pt.PlanTaskCommand:
    owed = [k.removeprefix("subplan.") for k in _pending(state) if k.startswith("subplan.")]
    return pt.SubmitSubplan(body=pick(data, owed, named, "body"), doc_ref=data.draw(doc_no))


def _deadline(data: st.DataObject, state: pt.TaskState) -> pt.PlanTaskCommand:
    keys, pending = sorted(state.deadlines), _pending(state)
    aim_at_pending: bool = data.draw(from_state, label="a pending key")
    if pending and aim_at_pending:
        keys = pending
    return MarkDeadline(key=keys[data.draw(index, label="key") % len(keys)], stage=data.draw(stage))


#: How the fields of each command not in `FIXED` are drawn from the task's state.
DRAWN: dict[str, Callable[[st.DataObject, pt.TaskState], pt.PlanTaskCommand]] = {
    "acknowledge": lambda data, state: pt.Acknowledge(
        body=pick(data, [b for b in state.bodies if b not in state.acknowledged], named, "body")),
    "respond": _respond,
    "record_progress": lambda data, state: pt.RecordProgress(
        body=pick(data, state.bodies, named, "body"), summary=data.draw(summary), evidence_refs=data.draw(evidence)),
    "submit_report": _submit_report,
    "review_report": _review_report,
    "urge": _urge,
    "reassign": lambda data, state: pt.Reassign(
        from_body=pick(data, state.bodies, named, "from body"), to_body=data.draw(named),
        reason=data.draw(reassign_reason)),
    "submit_subplan": _submit_subplan,
    "deadline": _deadline,
}


def subject_of(command: pt.PlanTaskCommand, state: pt.TaskState) -> str:
    """The body a command is about: the body it names, the body it takes a part from, or else the first lead."""
    if isinstance(command, pt.Reassign):
        return command.from_body
    body = getattr(command, "body", None)
    return body if isinstance(body, str) else state.lead[0]


def draw_actor(data: st.DataObject, command: pt.PlanTaskCommand, state: pt.TaskState) -> Actor:
    kinds = TIMER_ACTOR_KIND if isinstance(command, MarkDeadline) else ACTOR_KIND
    kind = data.draw(kinds, label="actor")
    subject = subject_of(command, state)
    if kind == "right":
        return Actor(id="can.bo", role="body", body=subject)
    if kind == "other":
        others = [b for b in OTHERS if b != subject]
        return Actor(id="can.bo.khac", role="body", body=others[data.draw(index, label="other body") % len(others)])
    return {"commission": COMMISSION, "system": SYSTEM, "admin": ADMIN}[kind]


def next_instant(data: st.DataObject, now: datetime, command: pt.PlanTaskCommand, state: pt.TaskState) -> datetime:
    """The clock moves forward: by minutes, hours, days or months, or (for a timer) to the moment it is set for."""
    later = now + data.draw(CLOCK_STEP, label="clock step")
    if isinstance(command, MarkDeadline) and data.draw(booleans, label="timer moment"):
        d = state.deadlines[command.key].deadline
        later = max(now, d.warn_at if command.stage == "approaching" else d.due_at + timedelta(seconds=1))
    return min(later, LAST_INSTANT)


# -- the checks ------------------------------------------------------------------------------------------------


def check_storage_round_trip(ev: Event) -> None:
    """(d): the event store keeps the envelope in columns and `payload()` as JSON; reading it back is lossless."""
    stored = json.loads(json.dumps(ev.payload()))
    back = pt.REGISTRY.parse(ev.event_type(), occurred_at=ev.occurred_at, actor=ev.actor, reason=ev.reason,
                             legal_basis=ev.legal_basis, data=stored)
    assert type(back) is type(ev)
    assert back == ev, ev.event_type()


def _columns(value: Any) -> str:
    # Only the row's datetime columns (`received_at`, `due_at`) are not JSON: `CaseRow` keeps them as timestamps.
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def check_row(state: pt.TaskState) -> None:
    """(h): the read-model row can be written, and its status is a phase of a plan task."""
    row = pt.task_row(state)
    assert {k for k, v in row.items() if isinstance(v, datetime)} <= {"received_at", "due_at"}
    json.dumps(row, default=_columns)
    json.dumps(row["summary"])
    assert row["status"] in PHASES, row["status"]
    assert row["summary"]["phase"] == row["status"]
    assert (row["status"] == "closed") == (state.status == pt.TaskStatus.CLOSED)


def snapshot(state: pt.TaskState) -> dict[str, Any]:
    return state.model_dump(exclude={"rules"})


def owner(key: str, state: pt.TaskState) -> set[str]:
    """The bodies that owe the obligation `key`: `ack.X`, `subplan.X`, `coordination.R1.X` are X's; a report and
    its urge are owed by the lead bodies together."""
    prefix, _, rest = key.partition(".")
    if prefix in ("ack", "subplan"):
        return {rest}
    if prefix == "coordination":
        return {rest.partition(".")[2]}
    return set(state.lead)


def check_not_for_another_body(state: pt.TaskState, command: pt.PlanTaskCommand, actor: Actor, now: datetime,
                               refusal: DomainError | None) -> None:
    """(f), first half: a body-bound command naming another body, sent by a body's staff, is refused."""
    if not (actor.role == "body" and actor.body != COMMISSION_BODY and isinstance(command, BODY_BOUND)
            and command.body != actor.body):
        return
    assert refusal is not None, f"{actor.label} acted for {command.body}: {command.type} was accepted"
    assert refusal.rule == f"authority.{command.type}", refusal.rule


def check_obligations_of_others(before: pt.TaskState, after: pt.TaskState, actor: Actor) -> None:
    """(f), second half: an accepted command of a body's staff never meets or cancels another body's obligation."""
    if actor.role != "body" or actor.body == COMMISSION_BODY:
        return
    for key, d in before.deadlines.items():
        if d.pending and actor.body not in owner(key, before):
            assert after.deadlines[key].outcome == "pending", (actor.label, key, after.deadlines[key].outcome)


def check_reassignment(after: pt.TaskState, command: pt.Reassign) -> None:
    """(g): the old body has handed everything over."""
    old = command.from_body
    assert old not in after.lead and old not in after.coordinators, (old, after.lead, after.coordinators)
    for prefix in ("ack", "subplan"):
        d = after.deadlines.get(f"{prefix}.{old}")
        assert d is None or not d.pending, f"{old} still owes {prefix}"
    assert command.to_body in after.bodies


def unmeetable(state: pt.TaskState) -> list[str]:
    """Pending obligations that no command can ever meet (see the regression tests below): an acknowledgement owed by a
    body that has acknowledged or is no longer in the task, a sub-plan owed by a body that has submitted one."""
    stuck = []
    for key, d in state.deadlines.items():
        prefix, _, body = key.partition(".")
        if d.pending and prefix == "ack" and (body in state.acknowledged or body not in state.bodies):
            stuck.append(key)
        if d.pending and prefix == "subplan" and body in state.subplans:
            stuck.append(key)
    return stuck


# -- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one example did: the state reached, every event, and how many commands were refused."""

    state: pt.TaskState
    events: list[Event] = field(default_factory=list)
    refused: int = 0
    refusals: set[str] = field(default_factory=set)


def assign(spec: pt.TaskSpec, at: datetime) -> tuple[pt.TaskState, list[Event]]:
    opening = pt.decide(None, pt.Assign(case_id=f"task-{spec.plan_id}-{spec.task_id}", spec=spec, rules=RULES),
                        SYSTEM, at)
    state = pt.fold(opening)
    assert state is not None and state.version == len(opening) == 1
    return state, opening


def validated(state: pt.TaskState, command: pt.PlanTaskCommand, actor: Actor, now: datetime) -> list[Event]:
    """What the workflow's validator does with a command from outside: the authority table, then `decide`."""
    if command.type not in pt.INTERNAL:
        authorize(PLAN_TASK, command.type, actor, for_command(PLAN_TASK, command, task_facts(state)))
    return pt.decide(state, command, actor, now)


def step(run: Run, command: pt.PlanTaskCommand, actor: Actor, now: datetime) -> None:
    """Send one command and check (a), (b), (d)-(h) on what it did."""
    state = run.state
    before = snapshot(state)
    closed = state.status == pt.TaskStatus.CLOSED
    try:
        events = validated(state, command, actor, now)
    except DomainError as refusal:
        # (a): a refusal emits nothing and leaves the state as it was.
        assert snapshot(state) == before
        # (e): nothing at all happens to a closed task.
        if closed:
            assert refusal.rule in ("task.closed", f"authority.{command.type}"), refusal.rule
        check_not_for_another_body(state, command, actor, now, refusal)
        run.refused += 1
        run.refusals.add(refusal.rule)
        return
    assert not closed, f"a closed task accepted `{type(command).__name__}`"
    check_not_for_another_body(state, command, actor, now, None)
    # (a): deciding reads the state and never changes it.
    assert snapshot(state) == before
    # (b): each event adds exactly one to the version.
    stepped = state
    for ev in events:
        after = pt.evolve(stepped, ev)
        assert after.version == stepped.version + 1
        assert after.phase in PHASES, after.phase
        stepped = after
        check_storage_round_trip(ev)
    new = pt.fold(events, state)
    assert new is not None and new == stepped
    assert new.version == state.version + len(events)
    check_obligations_of_others(state, new, actor)
    if isinstance(command, pt.Reassign):
        check_reassignment(new, command)
        event("reassigned")
    check_row(new)
    for key in unmeetable(new):
        event(f"known bug: an unmeetable {key.partition('.')[0]} obligation")
    run.state = new
    run.events.extend(events)


def play(data: st.DataObject, spec: pt.TaskSpec, at: datetime, *, count: st.SearchStrategy[int] = COMMAND_COUNT,
         store_opening: bool = True) -> Run:
    state, opening = assign(spec, at)
    # (d) for `TaskAssigned`, which carries the whole rules (the slowest to store and read back): the tests after
    # the first, which assign tasks the same way, leave it out.
    for ev in opening if store_opening else []:
        check_storage_round_trip(ev)
    check_row(state)
    run = Run(state=state, events=list(opening))
    now = at
    for _ in range(data.draw(count, label="commands")):
        types = AFTER_FINAL_REVIEW if run.state.status == pt.TaskStatus.FINAL_REVIEW else WEIGHTED_TYPES
        command = draw_command(data, data.draw(types, label="type"), run.state)
        actor = draw_actor(data, command, run.state)
        now = next_instant(data, now, command, run.state)
        step(run, command, actor, now)
    # (c): the state is the fold of everything that happened, from scratch.
    assert pt.fold(run.events) == run.state
    assert run.state.version == len(run.events)
    return run


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), spec=specs(), at=assigned_at)
def test_random_command_sequences_keep_the_event_sourcing_invariants(
    data: st.DataObject, spec: pt.TaskSpec, at: datetime
) -> None:
    run = play(data, spec, at)
    # Shown by --hypothesis-show-statistics: how far the examples go.
    event(f"final phase: {run.state.phase}")
    event(f"lead: {'family' if spec.lead == [FAMILY] else len(spec.lead)}")
    for name in sorted({ev.event_type() for ev in run.events}):
        event(f"emits {name}")
    for rule in sorted(run.refusals):
        event(f"refused: {rule}")


AFTER_CLOSE = st.integers(1, 15)


@SETTINGS
@given(data=st.data(), spec=specs(), at=assigned_at)
def test_a_closed_task_refuses_every_further_command(data: st.DataObject, spec: pt.TaskSpec, at: datetime) -> None:
    """(e), on tasks that lived a while, then were reviewed and closed by the commission."""
    run = play(data, spec, at, count=PREFIX_COUNT, store_opening=False)
    now = max((ev.occurred_at for ev in run.events), default=at)
    for ending in (pt.FinalReview(summary="Tổng kết nhiệm kỳ"), pt.Close(approval_no="120-QĐ/TU")):
        if run.state.status != pt.TaskStatus.CLOSED:
            step(run, ending, COMMISSION, now)
    assert run.state.status == pt.TaskStatus.CLOSED and run.state.phase == "closed"
    assert not any(d.pending for d in run.state.deadlines.values())
    closed = run.state
    for _ in range(data.draw(AFTER_CLOSE, label="commands after closing")):
        command = draw_command(data, data.draw(ANY_TYPE, label="type"), closed)
        actor = draw_actor(data, command, closed)
        now = next_instant(data, now, command, closed)
        with pytest.raises(DomainError) as refused:
            pt.decide(closed, command, actor, now)
        assert refused.value.rule == "task.closed"
    assert run.state == closed


@SETTINGS
@given(data=st.data(), spec=specs(), at=assigned_at,
       bound=st.sampled_from(["acknowledge", "respond", "record_progress", "submit_report", "submit_subplan"]))
def test_a_body_acts_only_for_itself_and_the_commission_for_any_body(
    data: st.DataObject, spec: pt.TaskSpec, at: datetime, bound: str
) -> None:
    """(f), aimed: after a random history, a body-bound command taken from the task's state is sent by another
    body's staff (refused, `authority.<command>`) and by the commission, whose staff may act for any body where
    the table lets the commission send the command at all: it then gets exactly what the decider gives."""
    run = play(data, spec, at, count=PREFIX_COUNT, store_opening=False)
    state = run.state
    command = draw_command(data, bound, state)
    assert isinstance(command, BODY_BOUND)
    now = next_instant(data, max(ev.occurred_at for ev in run.events), command, state)
    others = [b for b in OTHERS if b != command.body]
    stranger = Actor(id="can.bo.khac", role="body", body=others[data.draw(index, label="other body") % len(others)])
    try:
        validated(state, command, stranger, now)
    except DomainError as refusal:
        check_not_for_another_body(state, command, stranger, now, refusal)
    else:
        raise AssertionError(f"{stranger.label} acted for {command.body}: {command.type} was accepted")
    outcomes: list[list[dict[str, Any]] | str] = []
    for judge in (validated, pt.decide):
        try:
            outcomes.append([ev.model_dump() for ev in judge(state, command, COMMISSION, now)])
        except DomainError as refusal:
            outcomes.append(refusal.rule)
    judged, decided = outcomes
    if command.body == COMMISSION.body:
        # The command speaks for the commission's own division: its staff then act for their own body, by
        # whatever tie it has (the random sequences above check a body acting for itself), not as the commission.
        event(f"{bound}: speaks for the commission's division")
        return
    if "commission" in PLAN_TASK.entry(bound).allowed:
        assert judged == decided
    else:
        assert judged == f"authority.{bound}"
    event(f"{bound}: {'accepted' if isinstance(judged, list) else judged}")


# -- reassignment bugs the properties found (fixed; kept as regression tests) ----------------------------------

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=VN_TZ)


def _task(lead: list[str], coordinators: list[str], cadence: list[str]) -> pt.TaskState:
    spec = pt.TaskSpec(plan_id="KH-BTGDV-2026", task_id="II.2.1", title_vi=TEXTS[0], lead=lead,
                       coordinators=coordinators, cadence=cadence, issuer=COMMISSION_BODY, monitor=COMMISSION_BODY)
    return assign(spec, T0)[0]


def _apply(state: pt.TaskState, command: pt.PlanTaskCommand, actor: Actor = COMMISSION) -> pt.TaskState:
    new = pt.fold(pt.decide(state, command, actor, T0 + timedelta(hours=1)), state)
    assert new is not None
    return new


@pytest.mark.parametrize("scenario", ["onto_acknowledged", "acknowledged_onto_pending", "onto_subplan_submitted"])
def test_after_a_reassignment_every_pending_obligation_can_still_be_met(scenario: str) -> None:
    if scenario == "onto_acknowledged":
        # SO_NOI_VU's part passes to UBMTTQ_TINH, which had already acknowledged the task.
        state = _task(["UBND_TINH"], ["UBMTTQ_TINH", "SO_NOI_VU"], ["annual"])
        state = _apply(state, pt.Acknowledge(body="UBMTTQ_TINH"))
        state = _apply(state, pt.Reassign(from_body="SO_NOI_VU", to_body="UBMTTQ_TINH", reason="Sắp xếp"))
    elif scenario == "acknowledged_onto_pending":
        # SO_NOI_VU had acknowledged; UBMTTQ_TINH, which takes its part over, had not yet.
        state = _task(["UBND_TINH"], ["UBMTTQ_TINH", "SO_NOI_VU"], ["annual"])
        state = _apply(state, pt.Acknowledge(body="SO_NOI_VU"))
        state = _apply(state, pt.Reassign(from_body="SO_NOI_VU", to_body="UBMTTQ_TINH", reason="Sắp xếp"))
    else:
        # HDND_TINH's lead passes to UBND_TINH, which had already submitted its implementing plan.
        state = _task(["UBND_TINH", "HDND_TINH"], [], ["one_off_subplan", "annual"])
        state = _apply(state, pt.SubmitSubplan(body="UBND_TINH", doc_ref="KH-01/UBND"))
        state = _apply(state, pt.Reassign(from_body="HDND_TINH", to_body="UBND_TINH", reason="Sắp xếp"))
    assert unmeetable(state) == []


def test_reassigning_a_family_lead_hands_over_its_districts_implementing_plans() -> None:
    state = _task([FAMILY], [], ["one_off_subplan", "annual"])
    assert sum(k.startswith(f"subplan.{FAMILY}:") for k in state.deadlines) == len(DISTRICTS)
    state = _apply(state, pt.Reassign(from_body=FAMILY, to_body="UBND_TINH", reason="Bỏ cấp huyện từ 01/7/2025"))
    owed = sorted(k for k, d in state.deadlines.items() if d.pending and k.startswith(f"subplan.{FAMILY}"))
    assert owed == []
