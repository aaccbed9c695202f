"""`danvan up` keeps the stack up: a worker, an API and an embedded PostgreSQL killed with SIGKILL are started
again, said on the output and in `logs/up.log`, and the stack serves again; a child that keeps dying soon after
starting is reported; Ctrl-C still stops everything."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import httpx
import psutil
import pytest

from danvan.settings import Settings
from danvan.up import BACKOFF_CAP, BACKOFF_FIRST, FLAPPING, STABLE_AFTER, Restarts, Stack
from tests.api.support import petition
from tests.conftest import free_port

from .test_up import UpProcess

pytestmark = pytest.mark.slow


class Lines:
    """The output of `danvan up`, read in a thread so that waiting for a line has a deadline."""

    def __init__(self, up: UpProcess) -> None:
        self.up = up
        self.queue: Queue[str] = Queue()
        assert up.proc.stdout is not None
        stdout = up.proc.stdout
        def pump() -> None:
            for line in stdout:
                self.queue.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, *parts: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.5)
            except Empty:
                continue
            self.up.output.append(line)
            if all(part in line for part in parts):
                return line
        raise AssertionError(f"no line with {parts} within {timeout} s:\n{''.join(self.up.output)}{self.up._logs()}")


def child(up: UpProcess, command: str) -> psutil.Process:
    """The child of `danvan up` running `danvan.cli <command>`."""
    for proc in psutil.Process(up.proc.pid).children():
        if proc.cmdline()[-2:] == ["danvan.cli", command]:
            return proc
    raise AssertionError(f"no {command} process under danvan up")


def ready(api: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{api}/readyz", timeout=3)
            if answer.status_code == 200:
                return
            last = answer.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise AssertionError(f"not ready again within {timeout} s: {last}")


@pytest.fixture
def restart_env() -> Iterator[tuple[Path, dict[str, str]]]:
    """`test_up`'s environment, with DANVAN_HOME outside pytest's temporary directory: the embedded cluster runs
    as another user, who must traverse the path, and every pytest session starting on the machine makes that
    directory private again."""
    root = Path(tempfile.mkdtemp(prefix="danvan-up-restarts-"))
    root.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the embedded default
    env.update(DANVAN_HOME=str(root / "home"), TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
               DANVAN_TEMPORAL_UI_PORT=str(free_port()), DANVAN_API_PORT=str(free_port()),
               DANVAN_LOG_LEVEL="WARNING")
    try:
        yield root / "home", env
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_up_restarts_a_killed_worker_api_and_postgres_and_the_stack_serves_again(
    restart_env: tuple[Path, dict[str, str]],
) -> None:
    home, env = restart_env
    api = f"http://127.0.0.1:{env['DANVAN_API_PORT']}"
    up = UpProcess(home, env)
    try:
        up.wait_up()
        lines = Lines(up)
        tokens = json.loads((home / "tokens.json").read_text())
        intake = {"Authorization": f"Bearer {tokens['intake']}"}

        worker = child(up, "worker")
        worker.send_signal(signal.SIGKILL)
        lines.wait_for("worker exited with killed by SIGKILL", "restarting in")
        lines.wait_for("worker started again")
        assert child(up, "worker").pid != worker.pid
        ready(api)
        # The new worker does the work: a petition opens (the answer needs the case workflow to run).
        opened = httpx.post(f"{api}/v1/petitions", headers=intake, timeout=30,
                            json=petition("local-backoffice", receiving_body="UBND_TINH"))
        assert opened.status_code == 201, opened.text

        server = child(up, "api")
        server.send_signal(signal.SIGKILL)
        lines.wait_for("api exited with killed by SIGKILL", "restarting in")
        lines.wait_for("api started again")
        ready(api)

        postmaster = psutil.Process(int((home / "pgdata" / "postmaster.pid").read_text().split()[0]))
        postmaster.send_signal(signal.SIGKILL)
        lines.wait_for("postgres (embedded) is not running", "restarting in")
        lines.wait_for("postgres (embedded) started again")
        ready(api)
        answer = httpx.get(f"{api}/v1/cases/{opened.json()['case_id']}", headers=intake, timeout=10)
        assert answer.status_code == 200, answer.text  # the case, stored before the crash, is still there

        log = (home / "logs" / "up.log").read_text()
        for said in ("worker exited with killed by SIGKILL", "worker started again", "api started again",
                     "postgres (embedded) started again"):
            assert said in log, log
        assert "danvan up: starting worker again" in (home / "logs" / "worker.log").read_text()
        children = up.descendants()
    finally:
        code = up.interrupt()
    assert code == 0, "".join(up.output)
    time.sleep(0.5)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"


def test_the_pause_doubles_after_each_quick_death_up_to_the_cap_and_resets_after_a_stable_run() -> None:
    restarts = Restarts(started_at=0.0)
    now, delays = 0.0, []
    for _ in range(8):
        now += 1.0  # died a second after starting
        delays.append(restarts.died(now)[1])
        now = restarts.due or now
        restarts.restarted(now)
    assert delays == [min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** i) for i in range(8)]
    assert delays[-1] == BACKOFF_CAP
    lived, delay = restarts.died(now + STABLE_AFTER + 1)
    assert lived > STABLE_AFTER and delay == BACKOFF_FIRST


def test_a_child_that_keeps_dying_soon_after_starting_is_reported(tmp_path: Path) -> None:
    settings = Settings.from_env({"DANVAN_HOME": str(tmp_path)})
    said: list[str] = []
    stack = Stack(settings, said.append)
    stack.logs.mkdir(parents=True)
    stack._spawn("broken", [sys.executable, "-c", "raise SystemExit(3)"])
    try:
        broken = stack.children[0]
        for _ in range(FLAPPING):
            broken.proc.wait(10)
            stack.supervise_once(time.monotonic())  # notes the death
            assert broken.restarts.due is not None
            stack.supervise_once(broken.restarts.due)  # and starts it again when due
        assert broken.restarts.restarts == FLAPPING
        broken.proc.wait(10)
        stack.supervise_once(time.monotonic())
    finally:
        stack.stop()
    deaths = [line for line in said if "broken exited with status 3" in line]
    assert len(deaths) == FLAPPING + 1
    assert [line for line in said if "broken keeps dying" in line], said
    assert "broken keeps dying" in (tmp_path / "logs" / "up.log").read_text()
    assert len([line for line in said if "broken started again" in line]) == FLAPPING
