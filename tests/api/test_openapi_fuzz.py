"""The API fuzzed from its own OpenAPI: every operation, every check of schemathesis, a bounded and reproducible
number of examples, on the real app (PostgreSQL, the Temporal dev server and a worker running the cases).

Each operation is one test (`test_operation[GET /v1/cases]`...). Schemathesis draws requests from the
operation's schema (its explicit examples, the coverage phase's boundary and invalid values, then
`MAX_EXAMPLES` Hypothesis examples, valid and invalid), sends each with a token of a role that may call the
operation, and runs all its checks on the answer: no 5xx; a status code, content type, headers and body the
OpenAPI declares; invalid input refused with a 4xx, valid input not refused with 422; a request without a token
or with a wrong one answered 401; a method the path does not have answered 405. Derandomized: a run draws the
same requests every time.

What a schema cannot state, the fuzz supplies instead of exempting (`supply`): valid requests carry the
opaque cursors of real pages (in their order), a date range in order, a report's table with its CSV format, a
petition received in the past and an Idempotency-Key of their own (no schema relates two parameters, knows
today, or ties a key to a request); half of the case ids and refs in paths name real cases (a complaint and a
plan task opened here), a command going to a case of a kind that takes it, so that valid requests reach the
case's decider and Temporal instead of a 404; a repair job's target is the fuzz's own petition, so that its jobs
touch no other test's case. One
operation's valid requests may be refused by rules of data, not of shape: a plan document naming bodies the
bodies' registry does not hold (`ACCEPTED_REFUSALS`).

No operation is excluded. The feed's long poll (`GET /v1/events?wait=`) is fuzzed as it is, bounded by the
app's `DANVAN_FEED_WAIT_MAX`, set low here (`FEED_WAIT_MAX`), which the OpenAPI states as its maximum.

The app under test is built by `create_app` as production builds it and runs in schemathesis' own in-process
ASGI client (its own event loop, in a thread, with its own pool and Temporal client). The worker that runs the
cases is the session's, on the session's event loop: the sync tests here would leave that loop idle, so the
module runs it in a thread of its own while they run (`session_loop_running`).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import hashlib
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pytest
import pytest_asyncio
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from api.app import create_app
from api.command_body import public_types
from api.routes.petitions import KINDS
from danvan.settings import Settings
from domain.plan_cases import task_case_id
from eventstore import EventStore

from .support import Api, petition, small_plan, token, unique

#: Hypothesis examples per operation (the explicit examples and the coverage phase come on top).
MAX_EXAMPLES = 25
#: The feed's longest wait in the app under test (seconds), so that a fuzzed long poll stays short.
FEED_WAIT_MAX = "0.2"
#: The request deadline of the app under test (seconds; 5 by default). Importing the shipped plan on a fresh
#: database (`POST /v1/plan/import` with no body) starts its 43 task cases within the request, which takes some
#: 4 to 5 s here, more while the fuzz loads the machine: under the default deadline it answers 503 although the
#: import goes on and completes (sent again, it answers 200 `unchanged`).
REQUEST_TIMEOUT = "20"


def app_settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({**env, "DANVAN_FEED_WAIT_MAX": FEED_WAIT_MAX, "DANVAN_REQUEST_TIMEOUT": REQUEST_TIMEOUT})


#: The app whose OpenAPI is fuzzed, built as production builds it; only its schema is read here (no I/O): the
#: app the requests go to is built on the session's database by `fuzz_app`, and `test_the_schema_is_the_apps`
#: checks that both give the same OpenAPI.
SCHEMA_APP = create_app(app_settings({}), "postgresql://schema-only.invalid/danvan")

#: Refusals of valid requests that the schema cannot foresee, per operation: what and why.
ACCEPTED_REFUSALS = {
    # A plan document's bodies must be in the bodies' registry and in force on the plan's dates, its tasks'
    # ids unique: rules of the document against data, not of its shape (422, each problem named).
    "/v1/plan/import": 422,
    # A webhook URL must name a host whose every address is public (no loopback, private or danvan's own), and
    # a filter's bodies and kinds must exist: what the URL resolves to and the registry are data, not shape.
    "/v1/subscriptions": 422,
    "/v1/subscriptions/{subscription_id}": 422,
    # A body of blank lines holds no case to import (a line the rules refuse is reported in the 200's refusals).
    "/v1/import/cases": 422,
    # A file's type is read from its content and must be an allowed one: bytes drawn at random are not.
    "/v1/cases/{case_id}/attachments": 415,
    # A repair job names a body for a reassignment and none for a retry or a reset: a rule between two fields.
    "/v1/ops/jobs": 422,
}
CONFIG = schemathesis.Config.from_dict({
    "operations": [
        {"include-path": path,
         "checks": {"positive_data_acceptance": {
             "expected-statuses": ["2XX", "401", "403", "404", "409", str(status)]}},
         # The coverage phase's valid documents, one per bound of each of the plan's many fields (some 600 for
         # each of YAML and JSON), would all meet that refusal: its invalid ones only, and Hypothesis' valid ones.
         "phases": {"coverage": {"generation": {"mode": "negative"}}}}
        for path, status in ACCEPTED_REFUSALS.items()
    ],
})

@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """The import's JSON Lines body: the generated text as it is (its schema is a string). A value that is not a
    string has no JSON Lines form: it is sent as no line at all, which the import refuses (422)."""
    return value.encode("utf-8") if isinstance(value, str) else b"\n"


class AppSlot:
    """The ASGI app schemathesis calls, for every request and every check that sends one again: the operations
    are known when the module is collected, the app on the session's database only once `fuzz_app` builds it."""

    app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the app is set by the fuzz_app fixture"
        await self.app(scope, receive, send)


SLOT = AppSlot()
schema = schemathesis.openapi.from_dict(SCHEMA_APP.openapi(), config=CONFIG)
schema.app = SLOT

#: The role each operation is called with: one that may call it, so the fuzz reaches past authentication.
ROLE = {
    "POST /v1/tokens": "admin",
    "POST /v1/petitions": "admin",  # any `source`; an intake token sends only under its own label
    "POST /v1/cases/{case_id}/commands": "admin",
    "POST /v1/plan/import": "admin",
    "POST /v1/import/cases": "admin",
    "POST /v1/identities/{ref}/erase": "admin",
    "GET /v1/ops/stalled": "operator",
    "POST /v1/ops/retry": "operator",
    "POST /v1/ops/cases/{case_id}/retry": "operator",
    "POST /v1/ops/cases/{case_id}/reset": "operator",
    "POST /v1/ops/cases/{case_id}/nudge": "operator",
    "POST /v1/ops/cases/{case_id}/reassign": "operator",
    "POST /v1/ops/stalled/scan": "operator",
    "POST /v1/ops/jobs": "operator",
    **{f"POST /v1/ops/jobs/{{job_id}}/{d}": "operator" for d in ("approve", "reject", "pause", "resume", "cancel")},
    "POST /v1/subscriptions": "admin",
    "GET /v1/subscriptions": "admin",
    "GET /v1/subscriptions/{subscription_id}": "admin",
    "PATCH /v1/subscriptions/{subscription_id}": "admin",
    "DELETE /v1/subscriptions/{subscription_id}": "admin",
    "POST /v1/subscriptions/{subscription_id}/replay": "admin",
    "GET /v1/subscriptions/{subscription_id}/deliveries": "admin",
    # The intake system that sent the seeded petition: it may attach files to it.
    "POST /v1/cases/{case_id}/attachments": "intake",
    "POST /v1/ops/subscriptions/{subscription_id}/retry": "operator",
    "POST /v1/ops/subscriptions/{subscription_id}/pause": "operator",
    "POST /v1/ops/subscriptions/{subscription_id}/replay": "operator",
    "POST /v1/ops/checkpoints": "operator",
}
#: The operations that need no token.
OPEN = frozenset({"GET /healthz", "GET /readyz"})

#: A moment of the past, in the schema's form, for a receipt generated in the future.
NOW = datetime.now(UTC).replace(microsecond=0).isoformat()
#: The system that sends the seeded petition (its intake token may attach files to it).
SEED_SOURCE = unique("fuzz-seed")
#: What the fuzz uses in place of what it cannot invent: real cases, a sealed identity's ref, real cursors.
REAL: dict[str, str] = {}


def role_of(label: str) -> str | None:
    return None if label in OPEN else ROLE.get(label, "supervisor")


def positive(case: schemathesis.Case[Any], location: str) -> bool:
    meta = case.meta
    if meta is None:
        return False
    info = next((i for loc, i in meta.components.items() if loc.value == location), None)
    return info is not None and info.mode == GenerationMode.POSITIVE


def half(value: object) -> bool:
    """Deterministically one value in two (Python's `hash` of a string changes with every process)."""
    return zlib.crc32(repr(value).encode()) % 2 == 0


def command_case(body: Any) -> str:
    """A real case whose kind takes the command in `body` (the complaint when no kind does)."""
    takes = [name for name, kind in KINDS.items() if _valid(kind.commands, body)]
    if not takes and isinstance(body, dict):  # an invalid command: to a kind that has its `type`, if any
        takes = [name for name, kind in KINDS.items() if body.get("type") in public_types(kind)]
    name = takes[zlib.crc32(repr(body).encode()) % len(takes)] if takes else "petition"
    return REAL["plan_task" if name == "plan_task" else "petition"]


def _valid(adapter: Any, body: Any) -> bool:
    try:
        adapter.validate_python(body)
    except ValidationError:
        return False
    return True


def in_the_future(moment: Any) -> bool:
    try:
        parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else None
    except ValueError:
        return False
    return parsed is not None and parsed.tzinfo is not None and parsed > datetime.now(UTC)


def supply(case: schemathesis.Case[Any]) -> None:
    """Put in `case` what the fuzz cannot invent (see the module); in place, before it is sent (the cases of
    the explicit and coverage phases are drawn when the module is collected, before the fixtures make these)."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    query = case.query if isinstance(case.query, dict) else None
    if query is not None and positive(case, "query"):
        if isinstance(query.get("cursor"), str):
            query["cursor"] = REAL["cases_cursor"]
            query.pop("sort", None)  # a cursor pages the order it was made in: the default one
        if isinstance(query.get("table"), str):
            query["format"] = "csv"  # a report's table is chosen only for its CSV
        if label == "GET /v1/events" and isinstance(query.get("after"), str):
            query["after"] = REAL["feed_cursor"]
        start, end = query.get("received_from"), query.get("received_to")
        if isinstance(start, str) and isinstance(end, str) and end < start:
            query["received_from"], query["received_to"] = end, start  # a range's end not before its start
    body = case.body
    if label == "POST /v1/ops/subscriptions/{subscription_id}/replay" and isinstance(body, dict) and \
            isinstance(body.get("cursor"), str) and positive(case, "body"):
        body["cursor"] = REAL["feed_cursor"]  # a cursor is opaque: only a real one is valid
    if case.operation.path == "/v1/petitions" and isinstance(body, dict) and positive(case, "body"):
        if in_the_future(body.get("received_at")):
            body["received_at"] = NOW  # a petition is received in the past (no schema knows today)
    if label == "POST /v1/ops/jobs" and isinstance(body, dict) and positive(case, "body"):
        body["target"] = {"case_ids": [REAL["petition"]]}  # a job of the fuzz's own case, never of the others'
    path = case.path_parameters
    if isinstance(path, dict) and positive(case, "path"):
        if "case_id" in path and half(path["case_id"]):
            if label == "POST /v1/cases/{case_id}/commands":
                path["case_id"] = command_case(case.body)
            else:
                path["case_id"] = REAL["plan_task" if half(label) else "petition"]
        if "ref" in path and half(path["ref"]):
            path["ref"] = REAL["ref"]
    headers = case.headers
    if headers is not None and isinstance(headers.get("idempotency-key"), str) and positive(case, "header"):
        # A key names one request: the same key for another request is refused (422 idempotency.key_reused),
        # so each distinct request gets its own, and the same request sent again the same one.
        seen = repr((case.operation.label, case.path_parameters, case.body))
        headers["idempotency-key"] = f"fuzz-{hashlib.sha256(seen.encode()).hexdigest()[:32]}"


@pytest_asyncio.fixture(scope="module")
async def fuzz_tokens(store: EventStore) -> dict[str, str]:
    tokens = {role: await token(store, role, label=unique(f"fuzz-{role}"))
              for role in ("admin", "supervisor", "operator")}
    return {**tokens, "intake": await token(store, "intake", label=SEED_SOURCE)}


@pytest_asyncio.fixture(scope="module")
async def seeded(api: Api, fuzz_tokens: dict[str, str]) -> None:
    """Real cases, opened through the API, and real cursors, for `map_case`."""
    admin, supervisor = fuzz_tokens["admin"], fuzz_tokens["supervisor"]
    opened = await api.post("/v1/petitions", admin, json=petition(SEED_SOURCE))
    assert opened.status_code == 201, opened.text
    REAL["petition"] = opened.json()["case_id"]
    plan_id = unique("KH-FUZZ")
    imported = await api.http.post("/v1/plan/import", content=small_plan(plan_id).encode(),
                                   headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/yaml"})
    assert imported.status_code == 200, imported.text
    REAL["plan_task"] = task_case_id(plan_id, "II.1")
    for _ in range(100):
        if (await api.get(f"/v1/cases/{REAL['plan_task']}", supervisor)).status_code == 200:
            break
        await asyncio.sleep(0.1)
    case = (await api.get(f"/v1/cases/{REAL['petition']}", supervisor)).json()
    REAL["ref"] = case["summary"]["petitioner_ref"]
    page = (await api.get("/v1/cases", supervisor, params={"limit": 1})).json()
    REAL["cases_cursor"] = page["next_cursor"]
    feed = (await api.get("/v1/events", supervisor, params={"limit": 1})).json()
    REAL["feed_cursor"] = feed["next_cursor"]


@pytest_asyncio.fixture(scope="module")
async def session_loop(seeded: None) -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


@pytest.fixture(scope="module")
def session_loop_running(session_loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The session's event loop, run in a thread while this module's sync tests run: the worker on it
    (`case_worker`) keeps running the cases the fuzzed requests open and command. Every async fixture the
    module needs is set up before (`seeded` and what it needs), and none after."""
    thread = threading.Thread(target=session_loop.run_forever, name="session-loop", daemon=True)
    with one_ast_parse_at_a_time():
        thread.start()
        try:
            yield
        finally:
            session_loop.call_soon_threadsafe(session_loop.stop)
            thread.join(timeout=30)
            assert not thread.is_alive(), "the session's event loop did not stop"


@contextlib.contextmanager
def one_ast_parse_at_a_time() -> Iterator[None]:
    """`ast.parse` one at a time while several threads run Python code. Python 3.11 keeps the depth of the tree
    it is converting in state shared by every conversion, so a second one started meanwhile, in another thread
    or in the same one (a finalizer run by the garbage collector logs a traceback, and traceback parses the line
    it shows), fails the first with `SystemError: AST constructor recursion depth mismatch`. Hypothesis parses
    the source of the lambdas it describes."""
    original = ast.parse
    lock = threading.Lock()

    def parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            enabled = gc.isenabled()
            gc.disable()
            try:
                return original(*args, **kwargs)
            finally:
                if enabled:
                    gc.enable()

    ast.parse = parse
    try:
        yield
    finally:
        ast.parse = original


@pytest.fixture(scope="module")
def fuzz_app(api_settings: Settings, database_url: str, session_loop_running: None) -> Iterator[FastAPI]:
    """The app the fuzz calls: production's `create_app` on the session's database and Temporal server (its
    own pool and Temporal client, made by its lifespan in schemathesis' event loop)."""
    settings = app_settings({"TEMPORAL_ADDRESS": api_settings.temporal_address, "DANVAN_DB_POOL_MAX": "4"})
    app = create_app(settings, database_url)
    SLOT.app = app
    try:
        yield app
    finally:
        shutdown_lifespans()  # the app's lifespan, started by schemathesis' client on the first request
        SLOT.app = None


def test_the_schema_is_the_apps(fuzz_app: FastAPI) -> None:
    assert fuzz_app.openapi() == SCHEMA_APP.openapi()


def test_every_operation_is_fuzzed() -> None:
    operations = [f"{m.upper()} {p}" for p, item in SCHEMA_APP.openapi()["paths"].items() for m in item]
    assert len(operations) == 50, operations
    assert set(ROLE) | OPEN <= set(operations)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation(case: schemathesis.Case[Any], fuzz_app: FastAPI, fuzz_tokens: dict[str, str]) -> None:
    role = role_of(f"{case.operation.method.upper()} {case.operation.path}")
    headers = {"Authorization": f"Bearer {fuzz_tokens[role]}"} if role else {}
    supply(case)
    case.call_and_validate(headers=headers)

