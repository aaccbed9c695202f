"""Crash test: the worker process is killed with SIGKILL while 50 complaints are being driven, then started again.

Real Temporal dev server, real PostgreSQL, the real `danvan worker` command as a separate OS process on the test's
own task queue and database. A back-office client drives every case through its steps concurrently and, as a real
one does with its Idempotency-Key, sends the same `command_id` again whenever a call fails or gets no answer in
time. Mid-flight, the worker's whole process group gets SIGKILL; a new worker process takes over. Every case must
then end archived with exactly the events its commands call for, each command applied once, every hash chain
verifying, and each workflow's state equal to the fold of its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.rules import known_rules
from danvan.codec import opened
from domain.calendar import local_date
from domain.common import Actor
from domain.petitions import REGISTRY, Petitioner, PetitionIntake, fold
from domain.petitions.commands import CommandRequest
from domain.petitions.model import PetitionStatus, petition_case_id
from domain.petitions.views import CaseView, case_view
from domain.rulesets import with_rules
from eventstore import EventStore, RecordedEvent
from tests.conftest import ROOT, binary, migrated_database, secret_env
from workflows.client import CommandRefused, open_petition, send_command
from workflows.petition import PetitionWorkflow

pytestmark = pytest.mark.slow

CASES = 50
#: The worker is killed once this share of all commands has been answered.
KILL_AT = 0.1
#: How many cases have their next append caught in PostgreSQL when the worker is killed.
HELD_CASES = 5
#: How long one call may go unanswered before the client sends it again (same command id).
ATTEMPT_TIMEOUT = 4.0
#: How long a case may take from its first call to its last answer before the test calls it stuck. An append
#: that was running in the killed worker is retried only when its 30 s start-to-close timeout runs out.
CASE_DEADLINE = 150.0

OFFICER = Actor(id="can-bo-tiep-dan-07", role="body", body="UBND_TINH")
T = TypeVar("T")

# -- the petitions: 50 complaints as a provincial reception office receives them ------------------------------

PEOPLE = [
    "Nguyễn Văn Hùng", "Trần Thị Mai", "Lê Văn Thắng", "Phạm Thị Hoa", "Hoàng Văn Nam",
    "Vũ Thị Lan", "Đặng Văn Tuấn", "Bùi Thị Hằng", "Đỗ Văn Long", "Ngô Thị Thu",
]
PLACES = [
    ("Nam Sách", "Nam Hồng"), ("Kinh Môn", "Hiến Thành"), ("Chí Linh", "Hoàng Tân"), ("Thanh Hà", "Thanh Hồng"),
    ("Gia Lộc", "Gia Tân"), ("Cẩm Giàng", "Cẩm Điền"), ("Tứ Kỳ", "Quang Khải"), ("Ninh Giang", "Hồng Phúc"),
    ("Kim Thành", "Kim Xuyên"), ("Bình Giang", "Thái Học"),
]
GRIEVANCES = [
    ("đất đai", "Khiếu nại về mức bồi thường khi thu hồi đất nông nghiệp",
     "không đồng ý với đơn giá bồi thường đối với 1.200 m² đất trồng lúa bị thu hồi để xây dựng cụm công nghiệp, "
     "đề nghị áp dụng bảng giá đất năm 2026 và hỗ trợ chuyển đổi nghề nghiệp.",
     "Đơn giá bồi thường áp dụng theo bảng giá cũ, chưa tính hệ số điều chỉnh giá đất năm 2026."),
    ("trật tự xây dựng", "Khiếu nại quyết định cưỡng chế tháo dỡ công trình",
     "cho rằng quyết định cưỡng chế tháo dỡ nhà kho xây trên đất vườn là trái pháp luật vì công trình đã tồn tại "
     "trước thời điểm quy hoạch được phê duyệt.",
     "Công trình xây dựng năm 2019, sau khi quy hoạch chi tiết được phê duyệt và công bố công khai."),
    ("đất đai", "Khiếu nại việc chậm cấp giấy chứng nhận quyền sử dụng đất",
     "đã nộp đủ hồ sơ đề nghị cấp giấy chứng nhận quyền sử dụng đất ở từ tháng 3 nhưng đến nay chưa được giải "
     "quyết, không nhận được văn bản trả lời.",
     "Hồ sơ bị thất lạc tại bộ phận một cửa cấp xã; thời hạn giải quyết đã bị vi phạm."),
    ("chính sách xã hội", "Khiếu nại về việc cắt trợ cấp người có công",
     "bị cắt trợ cấp hằng tháng của thân nhân liệt sĩ mà không được thông báo lý do, đề nghị khôi phục chế độ và "
     "truy lĩnh phần trợ cấp bị cắt.",
     "Việc dừng chi trả do nhầm lẫn khi rà soát danh sách, hồ sơ gốc vẫn còn hiệu lực."),
    ("môi trường", "Khiếu nại quyết định xử phạt vi phạm hành chính về bảo vệ môi trường",
     "không đồng ý với quyết định xử phạt về xả nước thải chăn nuôi vì hộ gia đình đã lắp hầm biogas đạt chuẩn.",
     "Kết quả quan trắc cho thấy nước thải sau hầm biogas vẫn vượt quy chuẩn về chỉ số COD."),
]
OUTCOMES = ["upheld", "partly_upheld", "not_upheld"]


@dataclass
class Step:
    command_id: str
    payload: dict[str, Any]
    events: list[str]


@dataclass
class CasePlan:
    index: int
    intake: PetitionIntake
    steps: list[Step]

    @property
    def case_id(self) -> str:
        return petition_case_id(self.intake.source, self.intake.external_ref)

    @property
    def expected(self) -> list[tuple[str, str]]:
        """(event type, command id) of every event the stream must hold, in order."""
        return [("PetitionReceived", "receive")] + [(ev, s.command_id) for s in self.steps for ev in s.events]


def plan_case(i: int, source: str, received_at: datetime) -> CasePlan:
    name = PEOPLE[i % len(PEOPLE)]
    district, commune = PLACES[(i // len(PEOPLE)) % len(PLACES)]
    category, subject, content, findings = GRIEVANCES[i % len(GRIEVANCES)]
    petitioner = Petitioner(name=name, address=f"Thôn {i % 7 + 1}, xã {commune}, huyện {district}")
    intake = PetitionIntake(
        source=source, external_ref=f"KN-2026-{i + 1:04d}", kind="complaint", channel="post",
        received_at=received_at, petitioner=petitioner, subject=subject,
        content=f"Ông/bà {name} ({commune}, {district}) {content}", district=district, commune=commune,
        receiving_body="UBND_TINH",
    )
    # Half of the complaints find the demand and the verification at odds: the law then needs a dialogue first.
    differs = i % 2 == 1
    payloads: list[tuple[dict[str, Any], list[str]]] = [
        ({"type": "classify", "lead_body": "UBND_TINH", "subject_category": category, "complex": i % 5 == 0},
         ["Classified"]),
        ({"type": "accept", "decision_no": f"{100 + i}/QĐ-UBND"}, ["AcceptanceDecided"]),
        ({"type": "assign", "body": "UBND_TINH", "officer": f"Cán bộ {PEOPLE[(i + 3) % len(PEOPLE)]}"},
         ["Assigned"]),
        ({"type": "record_verification", "findings": findings, "demand_matches_findings": not differs},
         ["VerificationStep"]),
    ]
    if differs:
        payloads.append((
            {"type": "record_dialogue", "held_on": local_date(received_at).isoformat(),
             "participants": [name, "Thanh tra tỉnh", "UBND xã " + commune],
             "summary": "Đối thoại công khai tại trụ sở tiếp công dân; hai bên trình bày ý kiến và chứng cứ."},
            ["DialogueHeld"]))
    payloads += [
        ({"type": "decide", "outcome": OUTCOMES[i % len(OUTCOMES)], "decision_no": f"{200 + i}/QĐ-GQKN",
          "summary": "Quyết định giải quyết khiếu nại lần đầu."}, ["DecisionIssued"]),
        ({"type": "notify", "about": "decision", "recipients": [name, "Thanh tra tỉnh"], "doc_no": f"{300 + i}/TB"},
         ["NotificationSent"]),
        ({"type": "close", "reason": "Đã giải quyết xong"}, ["Closed"]),
        ({"type": "archive", "archive_ref": f"HS-KN-2026-{i + 1:04d}"}, ["Archived"]),
    ]
    steps = [Step(command_id=str(uuid.uuid4()), payload=p, events=evs) for p, evs in payloads]
    return CasePlan(index=i, intake=intake, steps=steps)


# -- worker processes ---------------------------------------------------------------------------------------


class WorkerProcesses:
    """`danvan worker` processes, each in its own session (process group) with its log in a file."""

    def __init__(self, logs: Path, env: dict[str, str], task_queue: str) -> None:
        self.logs = logs
        self.env = env
        self.task_queue = task_queue
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.started) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary("danvan"), "worker", "--task-queue", self.task_queue],
                env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((proc, log))
        return proc

    async def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
        """Until the worker says it polls its task queue."""
        log = next(path for p, path in self.started if p is proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "worker polling task queue" in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                raise AssertionError(f"the worker exited with {proc.returncode}:\n{self.tail()}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"the worker did not start in {timeout} s:\n{self.tail()}")

    @staticmethod
    def signal_group(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process's whole group (its own session, made at start). Only while the leader is not yet
        reaped: until then its id, which is the group's, cannot be given to anyone else."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.signal_group(proc)
        proc.wait(timeout=10)

    def kill_all(self) -> None:
        for proc, _ in self.started:
            self.signal_group(proc)
        for proc, _ in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        return "".join(f"\n--- {log.name}\n{log.read_text(errors='replace')[-chars:]}" for _, log in self.started)


@pytest.fixture
def worker_env(tmp_path: Path, temporal_env: WorkflowEnvironment) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DANVAN_", "TEMPORAL_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        DANVAN_HOME=str(tmp_path / "home"),
        DANVAN_LOG_LEVEL="INFO",
        DANVAN_DB_POOL_MAX="10",
        **secret_env(),  # the payload codec's key of the tests' clients
        PYTHONUNBUFFERED="1",
        # The worker runs the code under test: a venv shared by several checkouts installs one of them.
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    return env


@pytest_asyncio.fixture
async def crash_database(new_database: Callable[[], Awaitable[str]]) -> str:
    """The test's own database, migrated."""
    return await migrated_database(new_database)


@pytest_asyncio.fixture
async def crash_store(crash_database: str) -> AsyncIterator[EventStore]:
    store = await EventStore.open(crash_database, min_size=1, max_size=4)
    yield store
    await store.close()


@pytest.fixture
def workers(tmp_path: Path, worker_env: dict[str, str], crash_database: str,
            task_queue: str) -> Iterator[WorkerProcesses]:
    """Worker processes on the test's task queue and database; every one is killed at the end, pass or fail."""
    procs = WorkerProcesses(tmp_path, {**worker_env, "DATABASE_URL": crash_database}, task_queue)
    try:
        yield procs
    finally:
        procs.kill_all()


# -- the back-office client -----------------------------------------------------------------------------------


@dataclass
class Traffic:
    """What the clients did, shared by all the drivers."""

    total: int
    answered: int = 0
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    in_flight: set[str] = field(default_factory=set)
    kill_now: asyncio.Event = field(default_factory=asyncio.Event)
    progress: dict[str, str] = field(default_factory=dict)
    steps_done: Counter[str] = field(default_factory=Counter)
    last_answer: float = 0.0


async def with_retries(traffic: Traffic, key: str, call: Callable[[], Awaitable[T]], give_up_at: float) -> T:
    """Call until answered, sending the same request again after a failure or `ATTEMPT_TIMEOUT` without answer.
    A refusal is an answer and is raised: a command that was accepted once must never be refused on a retry."""
    traffic.in_flight.add(key)
    try:
        while True:
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    return await call()
            except CommandRefused:
                raise
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # the SDK turns a cancelled call into an error
                    raise asyncio.CancelledError from exc
                traffic.retries += 1
                traffic.retry_reasons[type(exc).__name__] += 1
                if time.monotonic() > give_up_at:
                    raise AssertionError(f"{key}: still unanswered after {CASE_DEADLINE} s") from exc
                await asyncio.sleep(0.2)
    finally:
        traffic.in_flight.discard(key)


async def drive(client: Client, task_queue: str, case: CasePlan, traffic: Traffic) -> None:
    """Open the case, then send its commands one after the other, as a back office would."""
    give_up_at = time.monotonic() + CASE_DEADLINE
    case_id = case.case_id
    traffic.progress[case_id] = "opening"
    opened = await with_retries(traffic, f"{case_id}/open",
                                lambda: open_petition(client, case.intake, task_queue=task_queue), give_up_at)
    assert opened.case.case_id == case_id
    for step in case.steps:
        traffic.progress[case_id] = step.payload["type"]
        request = CommandRequest.model_validate(
            {"command": step.payload, "actor": OFFICER, "command_id": step.command_id}
        )
        result = await with_retries(traffic, f"{case_id}/{step.payload['type']}/{step.command_id}",
                                    functools.partial(send_command, client, case_id, request), give_up_at)
        # A retry of an applied command answers `duplicate` with no events; the first answer names them.
        assert result.duplicate or result.events == step.events, (case_id, step.payload, result)
        traffic.answered += 1
        traffic.steps_done[case_id] += 1
        if traffic.answered >= traffic.total * KILL_AT:
            traffic.kill_now.set()
    traffic.progress[case_id] = "done"
    traffic.last_answer = time.monotonic()


# -- what the case must be once driven ------------------------------------------------------------------------


async def check_case(client: Client, store: EventStore, case: CasePlan, replays: asyncio.Semaphore) -> list[str]:
    """What is wrong with a driven case: its stream (exactly the expected events in order, each command's once,
    versions 1..n, the hash chain, the projection row) and its workflow (completed, its state and result equal to
    the fold of the stream alone). Final once the workflow has completed: nothing else writes to its stream."""
    case_id = case.case_id
    handle = client.get_workflow_handle_for(PetitionWorkflow.run, case_id)
    result = await handle.result()
    events = await store.read_stream(case_id)
    problems = await stream_problems(store, case, events)
    return problems + await workflow_problems(store, handle, result, events, replays)


async def stream_problems(store: EventStore, case: CasePlan, events: list[RecordedEvent]) -> list[str]:
    """The stream: exactly the expected events in order, each command's once, versions 1..n, the hash chain and
    the projection row."""
    case_id = case.case_id
    problems: list[str] = []
    got = [(e.type, e.metadata.get("command_id")) for e in events]
    if got != case.expected:
        problems.append(f"{case_id}: events {got} != expected {case.expected}")
    if [e.version for e in events] != list(range(1, len(events) + 1)):
        problems.append(f"{case_id}: versions {[e.version for e in events]}")
    if len({e.event_id for e in events}) != len(events):
        problems.append(f"{case_id}: an event id appears twice")
    twice = {cid: n for cid, n in Counter(e.metadata.get("command_id") for e in events).items() if n != 1}
    if twice:
        problems.append(f"{case_id}: command ids not applied exactly once: {twice}")
    report = await store.verify(case_id)
    if not report.ok or report.events_checked != len(case.expected):
        problems.append(f"{case_id}: verify {report}")
    row = await store.get_case(case_id)
    if row is None or row.status != PetitionStatus.ARCHIVED.value or row.version != len(case.expected):
        problems.append(f"{case_id}: projection row {row}")
    return problems


async def workflow_problems(store: EventStore, handle: WorkflowHandle[Any, Any], result: CaseView | None,
                            events: list[RecordedEvent], replays: asyncio.Semaphore) -> list[str]:
    """The workflow: completed, its state and result equal to the fold of the stream alone."""
    case_id = handle.id
    problems: list[str] = []
    status = (await handle.describe()).status
    if status != WorkflowExecutionStatus.COMPLETED:
        problems.append(f"{case_id}: workflow {status}")
    book = await known_rules(store, events)  # the rules the first event names by digest
    folded = fold(with_rules([
        REGISTRY.parse(e.type, occurred_at=e.occurred_at, actor=e.actor, reason=e.reason,
                       legal_basis=e.legal_basis, data=e.data)
        for e in events
    ], book))
    if folded is None:
        return [*problems, f"{case_id}: empty stream"]
    async with replays:  # a query of a completed workflow replays its whole history in the worker
        snapshot = await handle.query(PetitionWorkflow.state_snapshot)
    if snapshot is None or snapshot.model_dump(mode="json") != folded.model_dump(mode="json"):
        problems.append(f"{case_id}: workflow state {snapshot} != fold of the stream {folded}")
    if result is None or result.model_dump(mode="json") != case_view(folded).model_dump(mode="json"):
        problems.append(f"{case_id}: workflow result {result} != view of the fold {case_view(folded)}")
    return problems


# -- appends caught in PostgreSQL at the moment of the kill ----------------------------------------------------


class AppendHold:
    """Row locks on some cases' stream heads, held in an open transaction: the worker's next append to any of them
    (the one-statement append updates the head, `danvan_append` locks it `FOR UPDATE`; both are marked
    `danvan_append` in `pg_stat_activity`) waits in PostgreSQL, its update accepted and not completed. A
    database that is slow at the moment of the crash, with no change to the code under test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: asyncpg.Connection | None = None

    async def lock(self, case_ids: list[str]) -> None:
        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("BEGIN")
        await self.conn.fetch("SELECT stream_id FROM streams WHERE stream_id = ANY($1::text[]) FOR UPDATE", case_ids)

    async def blocked_appends(self, store: EventStore, want: int, timeout: float) -> int:
        """How many appends wait on the locks, once `want` of them do (or `timeout` has passed)."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = await store.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%danvan_append%'"
            )
            if waiting >= want or time.monotonic() > deadline:
                return int(waiting)
            await asyncio.sleep(0.02)

    async def release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()  # the transaction ends with the connection: the locks go


# -- what Temporal recorded -----------------------------------------------------------------------------------


@dataclass
class CrashEvidence:
    """Read from the workflows' histories: what the killed worker left for the new one."""

    #: Updates accepted (validated, recorded) by the killed worker and completed by the new one.
    updates_handed_over: list[str] = field(default_factory=list)
    #: Per case, how each append that ran again after the kill ended: `stored` (it found its very events stored
    #: already: a duplicate, changing nothing), `appended`, or `failed`.
    appends_retried: dict[str, list[str]] = field(default_factory=dict)
    task_timeouts: int = 0
    task_failures: list[str] = field(default_factory=list)


async def read_evidence(client: Client, case_ids: list[str], old: str, new: str) -> CrashEvidence:
    evidence = CrashEvidence()
    histories = await asyncio.gather(*(client.get_workflow_handle(c).fetch_history() for c in case_ids))
    for case_id, history in zip(case_ids, histories, strict=True):
        reader = HistoryEvidence(client, case_id, old, new, evidence)
        for ev in history.events:
            read = HistoryEvidence.READ.get(ev.event_type)
            if read is not None:
                read(reader, ev)
    return evidence


class HistoryEvidence:
    """One case's history read into `evidence`: which worker accepted and completed each update, and how each
    append run again after the kill ended."""

    def __init__(self, client: Client, case_id: str, old: str, new: str, evidence: CrashEvidence) -> None:
        self.client, self.case_id, self.old, self.new, self.evidence = client, case_id, old, new, evidence
        self.identity = ""
        self.accepted_by: dict[str, str] = {}
        self.appends: set[int] = set()
        self.retried: set[int] = set()

    def task_completed(self, ev: HistoryEvent) -> None:
        self.identity = ev.workflow_task_completed_event_attributes.identity

    def task_timed_out(self, ev: HistoryEvent) -> None:
        self.evidence.task_timeouts += 1

    def task_failed(self, ev: HistoryEvent) -> None:
        attrs = ev.workflow_task_failed_event_attributes
        self.evidence.task_failures.append(f"{self.case_id}: {attrs.cause} {attrs.failure.message}")

    def update_accepted(self, ev: HistoryEvent) -> None:
        update_id = ev.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        self.accepted_by[update_id] = self.identity

    def update_completed(self, ev: HistoryEvent) -> None:
        update_id = ev.workflow_execution_update_completed_event_attributes.meta.update_id
        if self.accepted_by.get(update_id) == self.old and self.identity == self.new:
            self.evidence.updates_handed_over.append(f"{self.case_id}/{update_id}")

    def activity_scheduled(self, ev: HistoryEvent) -> None:
        if ev.activity_task_scheduled_event_attributes.activity_type.name == "append_events":
            self.appends.add(ev.event_id)

    def activity_started(self, ev: HistoryEvent) -> None:
        started = ev.activity_task_started_event_attributes
        if started.attempt > 1 and started.scheduled_event_id in self.appends:
            self.retried.add(started.scheduled_event_id)

    def activity_completed(self, ev: HistoryEvent) -> None:
        completed = ev.activity_task_completed_event_attributes
        if completed.scheduled_event_id in self.retried:
            # An AppendResult, as the worker wrote it: encrypted by the payload codec.
            result = json.loads(opened(self.client.data_converter, completed.result.payloads[0]).data)
            self.evidence.appends_retried.setdefault(self.case_id, []).append(
                "stored" if result["duplicate"] else "appended")

    def activity_failed(self, ev: HistoryEvent) -> None:
        failed = ev.activity_task_failed_event_attributes
        if failed.scheduled_event_id in self.retried:
            self.evidence.appends_retried.setdefault(self.case_id, []).append(
                f"failed: {failed.failure.message}")

    READ: ClassVar[dict[int, Callable[[HistoryEvidence, HistoryEvent], None]]] = {}


HistoryEvidence.READ.update({
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: HistoryEvidence.task_completed,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: HistoryEvidence.task_timed_out,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: HistoryEvidence.task_failed,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: HistoryEvidence.update_accepted,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: HistoryEvidence.update_completed,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: HistoryEvidence.activity_scheduled,
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: HistoryEvidence.activity_started,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: HistoryEvidence.activity_completed,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: HistoryEvidence.activity_failed,
})


def identity_of(pid: int) -> str:
    """The identity a worker process's Temporal client reports by default."""
    return f"{pid}@{socket.gethostname()}"


# -- the test -------------------------------------------------------------------------------------------------


async def test_a_worker_killed_mid_flight_loses_and_repeats_no_command(
    temporal_env: WorkflowEnvironment, crash_database: str, crash_store: EventStore, workers: WorkerProcesses
) -> None:
    client = temporal_env.client
    store = crash_store
    source = f"mot-cua-{uuid.uuid4().hex[:8]}"
    received_at = datetime.now(UTC)
    cases = [plan_case(i, source, received_at) for i in range(CASES)]
    traffic = Traffic(total=sum(len(c.steps) for c in cases))
    hold = AppendHold(crash_database)
    replays = asyncio.Semaphore(8)

    async def drive_and_check(case: CasePlan) -> list[str]:
        await drive(client, workers.task_queue, case, traffic)
        return await check_case(client, store, case, replays)

    first = workers.start()
    await workers.wait_ready(first)
    tasks = [asyncio.create_task(drive_and_check(case)) for case in cases]
    try:
        async with asyncio.timeout(60):
            await traffic.kill_now.wait()
        # Catch some appends inside PostgreSQL, then crash: no shutdown, no drain, no goodbye to the server. The
        # cases held are the furthest along: once their append has run again, they have the least left to do.
        held = [c for c, _ in traffic.steps_done.most_common() if traffic.progress[c] != "done"][:HELD_CASES]
        await hold.lock(held)
        blocked_at_kill = await hold.blocked_appends(store, want=len(held), timeout=10)
        in_flight_at_kill = sorted(traffic.in_flight)
        answered_at_kill = traffic.answered
        workers.kill(first)
        killed_at = time.monotonic()
        # The killed worker's database sessions outlive it, each in the middle of its append: let them go on.
        await hold.release()
        second = workers.start()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hold.release()
    assert first.returncode == -signal.SIGKILL
    failures = [(case.case_id, traffic.progress.get(case.case_id), r)
                for case, r in zip(cases, results, strict=True) if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} case(s) failed: {failures[:5]}\n{workers.tail()}"

    # The kill came mid-flight: commands were sent and not answered, appends were running, work was left to do.
    assert in_flight_at_kill, "no command was in flight when the worker was killed"
    assert blocked_at_kill >= 1, "no append was running in PostgreSQL when the worker was killed"
    assert answered_at_kill < traffic.total
    assert traffic.retries > 0, "no client had to retry: the kill was not felt"

    # Every case archived, with exactly its events, each command applied once, and its workflow's state equal to
    # the fold of its stream.
    problems = [p for found in results if isinstance(found, list) for p in found]
    assert not problems, "\n".join(problems[:10])

    # What the killed worker left was finished by the new one: updates it had accepted (validated and recorded in
    # the history) were completed by the second worker, every append caught in PostgreSQL ran again, and no
    # workflow task failed on replay.
    evidence = await read_evidence(client, [c.case_id for c in cases], identity_of(first.pid),
                                   identity_of(second.pid))
    assert evidence.updates_handed_over, "no update accepted by the killed worker was completed by the new one"
    assert not evidence.task_failures, evidence.task_failures[:5]
    retried = evidence.appends_retried
    assert sum(map(len, retried.values())) >= blocked_at_kill, retried
    if blocked_at_kill == len(held):
        assert set(held) <= set(retried), (held, retried)
        # PostgreSQL carries on with a statement whose client has gone (unless told to check the connection), so
        # each held append was committed by the dead worker's session, unacknowledged: its retry must have found
        # its events stored and added nothing.
        if await store.pool.fetchval("SHOW client_connection_check_interval") == "0":
            assert all("stored" in retried[c] for c in held), (
                "a retried append did not recognise the events its first attempt stored "
                f"(are event ids still deterministic?): { {c: retried[c] for c in held} }"
            )
    found_stored = sum(outcome == "stored" for outcomes in retried.values() for outcome in outcomes)
    print(
        f"\ncrash: killed after {answered_at_kill}/{traffic.total} commands answered, with "
        f"{len(in_flight_at_kill)} call(s) in flight and {blocked_at_kill} append(s) inside PostgreSQL; every case "
        f"done {traffic.last_answer - killed_at:.1f} s after the kill; {traffic.retries} client retries "
        f"{dict(traffic.retry_reasons)}; {len(evidence.updates_handed_over)} accepted update(s) completed by the new "
        f"worker; {sum(map(len, retried.values()))} append(s) run again, {found_stored} of them found already "
        f"stored; {evidence.task_timeouts} workflow task timeout(s)"
    )
