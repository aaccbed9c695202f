"""Properties of the petition decider over random command sequences (hypothesis).

Each example receives a petition of a random kind on a random day of 2025-2027 and then sends it up to 25 random
commands: every type of `COMMAND_TYPES` plus the workflow's internal `deadline` timer command, with plausible
fields (a few real body codes, Vietnamese text, sometimes in NFD) and a clock that moves forward by random hours
or days. Some commands are drawn from all types alike, the others from those that make sense in the case's
current status (every type is in some status's list), so that examples also reach decisions, notices, appeals,
closing and archiving. `--hypothesis-show-statistics` shows how far they go.

What must hold whatever happens:
(a) the final state is the fold of every emitted event, from scratch;
(b) an accepted command's events raise `version` by exactly one each, so versions strictly increase;
(c) a refused command (`DomainError`) emits nothing and changes nothing; `decide` never mutates its input;
(d) every event survives the event store's storage form (envelope columns + JSON payload) unchanged;
(e) no pending deadline falls due on a day that is not a working day of the case's calendar;
(f) an archived case refuses every further command;
(g) a denunciation received with only a sealed `ref` never carries the denouncer's identity in any event.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from activities.rules import build_calendar, load_calendar_overrides, load_deadline_policy
from domain import coordination as co
from domain.attachments import Attach
from domain.calendar import VN_TZ, local_date
from domain.common import SYSTEM, Actor, DomainError, Event
from domain.coordination import Respond
from domain.deadlines import CaseRules, MarkDeadline
from domain.petitions import COMMAND_TYPES, REGISTRY, decide, evolve, fold
from domain.petitions import commands as c
from domain.petitions.model import (
    Petitioner,
    PetitionIntake,
    PetitionKind,
    PetitionState,
    PetitionStatus,
)
from domain.petitions.views import case_row, case_view

S = PetitionStatus

RULES = CaseRules(policy=load_deadline_policy(), calendar=build_calendar(2025, 2027, load_calendar_overrides()))
RULES_DUMP = RULES.model_dump(mode="json")
CALENDAR = RULES.calendar

BODIES = ["UBND_TINH", "THANH_TRA_TINH", "UBMTTQ_TINH", "SO_TAI_NGUYEN"]
OFFICER = Actor(id="tran.thi.lan", role="body", body="THANH_TRA_TINH")
KINDS = list(PetitionKind)
ALL_TYPES = [*COMMAND_TYPES, "deadline"]

FIRST_RECEIPT = datetime(2025, 1, 2, 8, 0, tzinfo=VN_TZ)
LAST_RECEIPT = datetime(2027, 9, 30, 17, 0, tzinfo=VN_TZ)  # leaves room for the longest first period (60 days)
LAST_INSTANT = datetime(2027, 12, 31, 23, 0, tzinfo=VN_TZ)

#: The policy keys a case can hold, plus sub-deadline keys of coordination requests.
DEADLINE_KEYS = sorted(RULES.policy.rules) + [f"coordination.R{i}.{b}" for i in (1, 2) for b in BODIES]
OUTCOMES = ["upheld", "partly_upheld", "not_upheld", "violation_found", "no_violation", "answered"]
VALID_OUTCOMES = {
    PetitionKind.COMPLAINT: ["upheld", "partly_upheld", "not_upheld"],
    PetitionKind.DENUNCIATION: ["violation_found", "no_violation", "partly_upheld"],
    PetitionKind.RECOMMENDATION: ["answered"],
    PetitionKind.VOTER_PETITION: ["answered"],
}
HANDLING = {S.ACCEPTED, S.VERIFYING, S.DIALOGUE}
#: Commands that make sense in each status (the guided draws), weighted by repetition.
NATURAL: dict[PetitionStatus, list[str]] = {
    S.RECEIVED: ["classify"] * 10 + ["split", "forward", "redirect", "withdraw", "deadline", "suspend"],
    S.CLASSIFIED: ["accept"] * 8 + ["reject", "forward", "redirect", "split", "deadline", "assign"],
    S.ACCEPTED: ["record_verification"] * 3 + ["decide"] * 2 + [
        "request_coordination", "request_coordination", "respond", "extend", "extend", "notify", "suspend", "deadline",
        "appeal", "assign"],
    S.VERIFYING: ["decide"] * 4 + ["record_dialogue"] * 2 + ["respond"] * 2 + ["extend"] * 2 + [
        "record_verification", "notify", "deadline", "appeal", "suspend", "request_coordination"],
    S.DIALOGUE: ["decide"] * 4 + ["record_dialogue", "respond", "deadline", "withdraw", "extend"],
    S.DECIDED: ["notify"] * 4 + ["appeal", "appeal", "request_coordination", "deadline", "withdraw"],
    S.NOTIFIED: ["record_implementation", "record_implementation", "close", "appeal", "deadline", "respond"],
    S.IMPLEMENTING: ["record_implementation", "close", "close", "appeal", "request_coordination", "deadline"],
    S.FORWARDED: ["record_external_result", "close", "withdraw", "deadline"],
    S.CLOSED: ["archive", "archive", "appeal", "respond"],
}
#: The same without the commands that end a case early: examples in "deep" mode follow these.
PROGRESS: dict[PetitionStatus, list[str]] = {
    **NATURAL,
    S.RECEIVED: ["classify"],
    S.CLASSIFIED: ["accept"],
    S.ACCEPTED: ["record_verification", "request_coordination", "respond", "extend", "notify", "suspend", "deadline",
                 "assign", "decide", "start_front_supervision"],
    S.VERIFYING: ["decide", "decide", "record_verification", "record_dialogue", "respond", "extend", "notify",
                  "deadline", "request_coordination"],
    S.DIALOGUE: ["decide", "decide", "record_dialogue", "respond"],
    S.DECIDED: ["notify", "notify", "appeal", "deadline"],
    S.NOTIFIED: ["record_implementation", "appeal", "close"],
    S.IMPLEMENTING: ["close", "appeal", "record_implementation"],
}
ENDED_NATURAL = ["close", "archive"]
WHILE_SUSPENDED = ["resume", "resume", "withdraw", "assign", "deadline"]

TEXTS = [
    "Đơn khiếu nại quyết định thu hồi đất",
    "Tố cáo cán bộ địa chính xã nhận tiền",
    "Kiến nghị sửa chữa đường liên xã",
    "Đề nghị xem xét bồi thường, hỗ trợ tái định cư",
    "Ý kiến của Ủy ban Mặt trận Tổ quốc tỉnh",
    "Kết quả xác minh tại thực địa",
]
#: A denouncer's real identity, kept in the sealed table; it must never appear in a case's events.
SEALED_NAMES = ["Phạm Thị Thu Hường", "Lê Văn Quyết", "Đỗ Minh Khôi"]
IDENTITY_FIELDS = ("name", "address", "phone", "email", "id_number")


def vietnamese() -> st.SearchStrategy[str]:
    """Vietnamese text, sometimes decomposed (NFD) the way some keyboards send it."""
    return st.builds(
        lambda text, form: unicodedata.normalize(form, text), st.sampled_from(TEXTS), st.sampled_from(["NFC", "NFD"])
    )


bodies = st.sampled_from(BODIES)
doc_no = st.sampled_from(["12/QĐ-UBND", "7/TB-TTT", "45/KL-TTr", "3/CV-MTTQ"])
maybe_reason = st.one_of(st.none(), st.just(""), vietnamese())
booleans = st.booleans()
#: An index into a list known only during the run (asked bodies, pending deadlines), taken modulo its length.
index = st.integers(0, 1000)

# Strategies are built once: building them inside the loop costs more than running the decider.
_part = st.builds(c.SplitPart, kind=st.sampled_from(KINDS), subject=vietnamese(), content=vietnamese())
_target = st.builds(co.CoordinationTarget, body=bodies, side=st.sampled_from(["party", "state", "front"]),
                    days=st.integers(1, 30), unit=st.sampled_from(["calendar", "working"]))
_notify = {
    about: st.builds(c.Notify, about=st.just(about), recipients=st.lists(bodies, min_size=1, max_size=2),
                     channel=st.sampled_from(["post", "in_person", "email", "portal", "publication"]), doc_no=doc_no)
    for about in ("acceptance", "decision")
}
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "classify": st.builds(c.Classify, kind=st.one_of(st.none(), st.none(), st.sampled_from(KINDS)),
                          subject_category=st.one_of(st.none(), vietnamese()), complex=booleans,
                          remote_area=booleans, lead_body=st.one_of(bodies, st.none()), reason=maybe_reason),
    "split": st.builds(c.Split, parts=st.lists(_part, min_size=2, max_size=3)),
    "accept": st.builds(c.Accept, decision_no=doc_no, lead_body=st.one_of(st.none(), bodies)),
    "reject": st.builds(c.Reject, reasons=st.lists(vietnamese(), min_size=1, max_size=2),
                        notice_no=st.one_of(st.none(), doc_no)),
    "forward": st.builds(c.Forward, to_body=bodies, notice_no=doc_no),
    "redirect": st.builds(c.Redirect, guidance=vietnamese()),
    "assign": st.builds(c.Assign, body=bodies, officer=st.one_of(st.none(), st.sampled_from(["le.van.cuong", "an"]))),
    "request_coordination": st.builds(co.RequestCoordination, subject=vietnamese(),
                                      bodies=st.lists(_target, min_size=1, max_size=3)),
    "respond": st.builds(Respond, request_id=st.sampled_from(["R1", "R2", "R3"]), body=bodies,
                         response=vietnamese()),
    "record_verification": st.builds(c.RecordVerification, findings=vietnamese(),
                                     demand_matches_findings=st.sampled_from([None, True, False])),
    "record_dialogue": st.builds(c.RecordDialogue,
                                 held_on=st.dates(local_date(FIRST_RECEIPT), local_date(LAST_INSTANT)),
                                 participants=st.lists(st.sampled_from(["Nguyễn Văn An", "Trần Thị Lan"]), min_size=1,
                                                       max_size=2), summary=vietnamese()),
    "extend": st.builds(c.Extend, decision_no=doc_no, reason=maybe_reason),
    "suspend": st.builds(c.Suspend, reason=maybe_reason),
    "resume": st.builds(c.Resume, reason=maybe_reason),
    "withdraw": st.builds(c.Withdraw, signs_of_violation=booleans, coerced=booleans),
    "decide": st.builds(c.Decide, outcome=st.sampled_from(OUTCOMES), decision_no=doc_no, summary=vietnamese()),
    "notify": st.one_of(*_notify.values()),
    "record_implementation": st.builds(c.RecordImplementation, summary=vietnamese()),
    "record_external_result": st.builds(c.RecordExternalResult, result=vietnamese()),
    "appeal": st.builds(c.Appeal, to_body=st.one_of(st.none(), bodies)),
    "close": st.just(c.Close()),
    "archive": st.builds(c.Archive, archive_ref=st.sampled_from(["HS-2026-001", "LT/2027/15"])),
    "start_front_supervision": st.builds(c.StartFrontSupervision,
                                         trigger=st.sampled_from(["breach", "front_forwarded", "manual"])),
    "attach": st.builds(Attach, name=st.sampled_from(["Đơn tố cáo.pdf", "ảnh hiện trường.jpg"]),
                        media_type=st.sampled_from(["application/pdf", "image/jpeg"]), size=st.integers(1, 10**7),
                        sha256=st.sampled_from(["a" * 64, "b" * 64]),
                        category=st.sampled_from(["letter", "evidence", "decision", "other"])),
    "deadline": st.builds(MarkDeadline, key=st.sampled_from(DEADLINE_KEYS),
                          stage=st.sampled_from(["approaching", "breached"])),
}
assert set(STRATEGIES) == set(ALL_TYPES), "every command type needs a strategy"
GUIDED_DECIDE = {
    kind: st.builds(c.Decide, outcome=st.sampled_from(outcomes), decision_no=doc_no, summary=vietnamese())
    for kind, outcomes in VALID_OUTCOMES.items()
}
STAGE = st.sampled_from(["approaching", "breached"])
ANY_TYPE = st.sampled_from(ALL_TYPES)
NATURAL_TYPE = {status: st.sampled_from(types) for status, types in NATURAL.items()}
PROGRESS_TYPE = {status: st.sampled_from(types) for status, types in PROGRESS.items()}
ENDED_TYPE = st.sampled_from(ENDED_NATURAL)
SUSPENDED_TYPE = st.sampled_from(WHILE_SUSPENDED)
CLOCK_STEP = st.one_of(
    st.integers(0, 180).map(lambda m: timedelta(minutes=m)),
    st.integers(1, 48).map(lambda h: timedelta(hours=h)),
    st.integers(1, 40).map(lambda d: timedelta(days=d)),
)


def draw_command(data: st.DataObject, kind: str, state: PetitionState, guided: bool) -> c.PetitionCommand:
    """Plausible random fields for a command of type `kind`; `guided` leans towards what the state allows."""
    if guided and kind == "respond":
        asked = [(rid, b) for rid, r in state.coordination.items() for b in r.bodies]
        if asked:
            rid, body = asked[data.draw(index, label="asked") % len(asked)]
            return co.Respond(request_id=rid, body=body, response=TEXTS[4])
    if guided and kind == "deadline":
        pending = sorted(k for k, d in state.deadlines.items() if d.pending)
        if pending:
            key = pending[data.draw(index, label="pending") % len(pending)]
            return MarkDeadline(key=key, stage=data.draw(STAGE, label="stage"))
    if guided and kind == "decide":
        return data.draw(GUIDED_DECIDE[state.kind], label="command")
    if guided and kind == "notify":
        return data.draw(_notify["acceptance" if state.status in HANDLING else "decision"], label="command")
    if guided and kind == "request_coordination":
        # Each body once, and never the lead body, so that requests are mostly accepted.
        request: co.RequestCoordination = data.draw(STRATEGIES[kind], label="command")
        targets = {t.body: t for t in request.bodies if t.body != state.lead_body}
        if not targets:
            return request
        return request.model_copy(update={"bodies": list(targets.values())})
    command: c.PetitionCommand = data.draw(STRATEGIES[kind], label="command")
    if guided and kind in ("extend", "suspend") and not command.reason:
        # With a reason, so that they are mostly accepted.
        return command.model_copy(update={"reason": TEXTS[3]})
    return command


def next_instant(data: st.DataObject, now: datetime, command: c.PetitionCommand, state: PetitionState) -> datetime:
    """The clock moves forward: by minutes, hours or days, or (for a timer) to the moment it is set for."""
    later = now + data.draw(CLOCK_STEP, label="clock step")
    if isinstance(command, MarkDeadline) and command.key in state.deadlines and data.draw(booleans):
        d = state.deadlines[command.key].deadline
        later = max(now, d.warn_at if command.stage == "approaching" else d.due_at + timedelta(seconds=1))
    return min(later, LAST_INSTANT)


@dataclass
class Run:
    """What one example did: the state reached, every event, and how many commands were refused."""

    state: PetitionState
    events: list[Event] = field(default_factory=list)
    refused: int = 0
    versions: list[int] = field(default_factory=list)


def intake_strategy(kinds: list[PetitionKind], petitioners: st.SearchStrategy[Petitioner]
                    ) -> st.SearchStrategy[PetitionIntake]:
    return st.builds(
        PetitionIntake,
        source=st.just("mot-cua-tinh"),
        external_ref=st.sampled_from(["HD-2026-0001", "HP-2025-77"]),
        kind=st.sampled_from(kinds),
        channel=st.sampled_from(["post", "in_person", "front_forwarded", "deputy_forwarded", "online_portal"]),
        received_at=st.datetimes(FIRST_RECEIPT.replace(tzinfo=None), LAST_RECEIPT.replace(tzinfo=None)).map(
            lambda dt: dt.replace(tzinfo=VN_TZ)),
        petitioner=petitioners,
        subject=vietnamese(),
        content=vietnamese(),
        district=st.one_of(st.none(), st.just("Nam Sách")),
        forwarded_by_front=st.booleans(),
        receiving_body=st.one_of(st.none(), bodies),
    )


ANY_PETITIONER = st.one_of(
    st.just(Petitioner()),
    st.builds(Petitioner, name=st.just("Nguyễn Văn An"), address=st.just("Xã Nam Sách")),
    st.builds(Petitioner, ref=st.sampled_from(["sealed:7f3a9c", "sealed:00b1"])),
    st.builds(Petitioner, name=st.just("Trần Thị Lan"), phone=st.just("0912345678"), count=st.integers(1, 5)),
)


def check_storage_round_trip(ev: Event) -> None:
    """(d): the event store keeps the envelope in columns and `payload()` as JSON; reading it back is lossless."""
    stored = json.loads(json.dumps(ev.payload()))
    back = REGISTRY.parse(ev.event_type(), occurred_at=ev.occurred_at, actor=ev.actor, reason=ev.reason,
                          legal_basis=ev.legal_basis, data=stored)
    assert type(back) is type(ev)
    assert back == ev, ev.event_type()


def check_working_days(state: PetitionState) -> None:
    """(e): a pending deadline never falls due on a weekend or a day off."""
    for key, d in state.deadlines.items():
        if d.pending:
            assert CALENDAR.is_working_day(d.deadline.due_on), (key, d.deadline.due_on)


COMMAND_COUNT = st.integers(0, 25)
#: How an example picks its commands, so that some wander and others go deep: (how often a draw follows the
#: case's status rather than being any command type at all, and the lists it then follows).
GUIDANCE = st.sampled_from([
    (st.integers(0, 1).map(bool), NATURAL_TYPE),  # wander: one draw in two is any type
    (st.integers(0, 4).map(bool), NATURAL_TYPE),  # four in five follow the status
    (st.integers(0, 12).map(bool), PROGRESS_TYPE),  # deep: twelve in thirteen move the case on
])


def play(data: st.DataObject, intake: PetitionIntake) -> Run:
    """Receive `intake`, then send random commands, checking (b)-(f) after each one."""
    received_at = intake.received_at
    opening = decide(None, c.Receive(case_id="pet-prop-1", intake=intake, rules=RULES), SYSTEM, received_at)
    initial = fold(opening)
    assert initial is not None
    run = Run(state=initial, events=list(opening), versions=[initial.version])
    for ev in opening:
        check_storage_round_trip(ev)
    now = received_at
    guidance, lists = data.draw(GUIDANCE, label="guidance")
    for _ in range(data.draw(COMMAND_COUNT, label="commands")):
        state = run.state
        guided = data.draw(guidance, label="guided")
        if not guided:
            choice = ANY_TYPE
        elif state.suspended:
            choice = SUSPENDED_TYPE
        else:
            choice = lists.get(state.status, ENDED_TYPE)
        kind = data.draw(choice, label="type")
        command = draw_command(data, kind, state, guided)
        now = next_instant(data, now, command, state)
        actor = SYSTEM if kind == "deadline" else OFFICER
        before = state.model_dump(exclude={"rules"})
        archived = state.status == S.ARCHIVED
        try:
            events = decide(state, command, actor, now)
        except DomainError as refusal:
            # (c): a refusal emits nothing and leaves the state as it was.
            assert state.model_dump(exclude={"rules"}) == before
            run.refused += 1
            if archived:
                assert refusal.rule == "case.archived"
            continue
        # (f): nothing at all happens to an archived case.
        assert not archived, f"an archived case accepted `{kind}`"
        # (c): deciding reads the state and never changes it.
        assert state.model_dump(exclude={"rules"}) == before
        # (b): each event adds exactly one to the version.
        stepped = state
        for ev in events:
            after = evolve(stepped, ev)
            assert after.version == stepped.version + 1
            stepped = after
            check_storage_round_trip(ev)
        new = fold(events, state)
        assert new is not None
        assert new == stepped
        assert new.version == state.version + len(events)
        if events:
            assert new.version > run.versions[-1]
            run.versions.append(new.version)
        check_working_days(new)
        run.state = new
        run.events.extend(events)
    # (a): the state is the fold of everything that happened, from scratch.
    assert fold(run.events) == run.state
    assert run.state.version == len(run.events)
    assert run.state.rules.model_dump(mode="json") == RULES_DUMP
    return run


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), intake=intake_strategy(KINDS, ANY_PETITIONER))
def test_random_command_sequences_keep_the_event_sourcing_invariants(
    data: st.DataObject, intake: PetitionIntake
) -> None:
    run = play(data, intake)
    # Versions strictly increase over the whole run (b).
    assert run.versions == sorted(set(run.versions))
    # The views can be built from any reachable state.
    case_view(run.state)
    case_row(run.state)
    # Shown by --hypothesis-show-statistics: how far the examples go.
    event(f"final status: {run.state.status.value}")
    for name in sorted({ev.event_type() for ev in run.events}):
        event(f"emits {name}")


AFTER_ARCHIVE = st.integers(1, 10)


@SETTINGS
@given(
    data=st.data(),
    intake=intake_strategy(KINDS, ANY_PETITIONER),
    ending=st.sampled_from(["redirect", "reject", "withdraw", "forward_close", "decide_close", "split"]),
)
def test_an_archived_case_refuses_every_further_command(
    data: st.DataObject, intake: PetitionIntake, ending: str
) -> None:
    """(f), on cases driven to the archive along each way a case can end."""
    state = fold(decide(None, c.Receive(case_id="pet-prop-2", intake=intake, rules=RULES), SYSTEM,
                        intake.received_at))
    assert state is not None
    now = intake.received_at + timedelta(hours=1)
    lead = "THANH_TRA_TINH" if state.lead_body != "THANH_TRA_TINH" else "UBND_TINH"
    kind = intake.kind
    paths: dict[str, list[c.PetitionCommand]] = {
        "redirect": [c.Redirect(guidance="Gửi UBND xã.")],
        "reject": [c.Classify(lead_body=lead), c.Reject(reasons=["Quá thời hiệu"])],
        "withdraw": [c.Withdraw()],
        "forward_close": [c.Forward(to_body=lead, notice_no="1/PC"), c.Close()],
        "decide_close": [c.Classify(kind=kind, lead_body=lead), c.Accept(decision_no="1/QĐ"),
                         c.Decide(outcome=VALID_OUTCOMES[kind][0], decision_no="2/QĐ", summary="x"),
                         c.Notify(about="decision", recipients=["A"], doc_no="2/QĐ"), c.Close()],
        "split": [c.Split(parts=[c.SplitPart(kind=kind, subject="a", content="b")] * 2)],
    }
    path = paths[ending]
    for command in [*path, c.Archive(archive_ref="HS-1")]:
        try:
            events = decide(state, command, OFFICER, now)
        except DomainError:
            # Only an anonymous denunciation ends at its classification, before the rest of the path; it is
            # archived all the same.
            assert state.status == S.NOT_PROCESSED
            continue
        state = fold(events, state)
        assert state is not None
        now += timedelta(hours=2)
    assert state.status == S.ARCHIVED
    archived = state
    for _ in range(data.draw(AFTER_ARCHIVE, label="commands")):
        kind_name = data.draw(ANY_TYPE, label="type")
        command = draw_command(data, kind_name, state, data.draw(booleans, label="guided"))
        now = next_instant(data, now, command, state)
        try:
            decide(state, command, SYSTEM if kind_name == "deadline" else OFFICER, now)
        except DomainError as refusal:
            assert refusal.rule == "case.archived"
        else:
            raise AssertionError(f"an archived case accepted `{kind_name}`")
    assert state == archived


def _identity_leaks(value: Any, secrets: list[str], path: str = "") -> list[str]:
    """Where in `value` a secret occurs, or an identity field of a petitioner is filled in."""
    found: list[str] = []
    if isinstance(value, str):
        found += [f"{path}: {s}" for s in secrets if s in unicodedata.normalize("NFC", value)]
    elif isinstance(value, dict):
        if path.endswith("petitioner"):
            found += [f"{path}.{k}" for k in IDENTITY_FIELDS if value.get(k) is not None]
        for k, v in value.items():
            found += _identity_leaks(v, secrets, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _identity_leaks(v, secrets, f"{path}[{i}]")
    return found


@SETTINGS
@given(
    data=st.data(),
    intake=intake_strategy([PetitionKind.DENUNCIATION], st.builds(Petitioner, ref=st.just("sealed:7f3a9c"),
                                                                  count=st.integers(1, 3))),
    sealed_name=st.sampled_from(SEALED_NAMES),
)
def test_a_denunciation_received_with_a_sealed_reference_never_reveals_the_denouncer(
    data: st.DataObject, intake: PetitionIntake, sealed_name: str
) -> None:
    """(g): the API seals the denouncer's identity and hands on only `ref`; nothing downstream puts it back."""
    run = play(data, intake)
    secrets = [sealed_name, unicodedata.normalize("NFD", sealed_name)]
    for ev in run.events:
        stored = {"payload": ev.payload(), "actor": ev.actor, "reason": ev.reason, "legal_basis": ev.legal_basis}
        assert _identity_leaks(json.loads(json.dumps(stored)), secrets) == [], ev.event_type()
    received = run.events[0].payload()
    assert received["intake"]["petitioner"]["ref"] == "sealed:7f3a9c"
    # A sealed reference is an identified denouncer: never "not processed" as anonymous.
    assert "NotProcessed" not in {ev.event_type() for ev in run.events}
    row = json.loads(json.dumps(case_row(run.state), default=str))
    assert _identity_leaks(row, secrets) == []
    assert case_view(run.state).petitioner_ref == "sealed:7f3a9c"
