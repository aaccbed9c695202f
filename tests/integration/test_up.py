"""`danvan up` as a user runs it: a subprocess with its own DANVAN_HOME, on the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from temporalio.client import Client

from tests.conftest import free_port

pytestmark = pytest.mark.slow


class UpProcess:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "danvan.cli", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []

    def wait_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("danvan up exited early:\n" + "".join(self.output) + self._logs())
            self.output.append(line)
            if line.startswith("Press Ctrl-C"):
                return
        raise AssertionError("danvan up did not come up in time:\n" + "".join(self.output) + self._logs())

    def _logs(self) -> str:
        logs = self.home / "logs"
        return "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in logs.glob("*.log")) if logs.exists() else ""

    def descendants(self) -> list[psutil.Process]:
        found = psutil.Process(self.proc.pid).children(recursive=True)
        pid_file = self.home / "pgdata" / "postmaster.pid"
        if pid_file.exists():  # pg_ctl detaches the postmaster: find it by its pid file
            found.append(psutil.Process(int(pid_file.read_text().split()[0])))
        return list(found)

    def interrupt(self, timeout: float = 90) -> int:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=timeout)
        self.output.append(out)
        return self.proc.returncode


@pytest.fixture
def up_env(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the embedded default
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    env.update(
        DANVAN_HOME=str(home),
        TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
        DANVAN_TEMPORAL_UI_PORT=str(ui_port),
        DANVAN_API_PORT=str(api_port),
        DANVAN_LOG_LEVEL="WARNING",
    )
    yield home, env


def test_up_serves_the_stack_stops_every_process_and_keeps_its_data(up_env: tuple[Path, dict[str, str]]) -> None:
    home, env = up_env
    api = f"http://127.0.0.1:{env['DANVAN_API_PORT']}"
    ui = f"http://127.0.0.1:{env['DANVAN_TEMPORAL_UI_PORT']}"
    workflow_id = f"up-persists-{uuid.uuid4().hex[:8]}"

    first = UpProcess(home, env)
    try:
        first.wait_up()
        banner = "".join(first.output)
        assert api in banner and ui in banner
        assert httpx.get(f"{api}/readyz", timeout=5).status_code == 200
        assert httpx.get(ui, timeout=5).status_code == 200

        tokens_file = home / "tokens.json"
        assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
        tokens = json.loads(tokens_file.read_text())
        assert set(tokens) == {"intake", "body", "supervisor", "operator", "admin"}
        assert all(token in banner for token in tokens.values())
        auth = {"Authorization": f"Bearer {tokens['supervisor']}"}
        assert httpx.get(f"{api}/v1/cases", headers=auth, timeout=5).status_code == 200
        created = httpx.post(
            f"{api}/v1/tokens",
            json={"role": "supervisor", "label": "kept across restarts"},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
            timeout=5,
        )
        assert created.status_code == 201, created.text
        extra_token = created.json()["token"]

        async def start_workflow() -> None:
            client = await Client.connect(env["TEMPORAL_ADDRESS"])
            await client.start_workflow("NoSuchWorkflow", id=workflow_id, task_queue="nobody-polls-this")

        asyncio.run(start_workflow())
        children = first.descendants()
        assert len(children) >= 5  # temporal, worker, api, checkpoint, postgres (and its helpers)

        # The regular checkpoint: its first one at start, signed with a key of the owner's only.
        log = home / "checkpoints" / "checkpoints.log"
        assert str(log) in banner
        for _ in range(100):
            if log.exists() and log.read_bytes().endswith(b"\n"):
                break
            time.sleep(0.1)
        assert json.loads(log.read_text().splitlines()[0])["seq"] == 1
        assert stat.S_IMODE((home / "checkpoint.key").stat().st_mode) == 0o600
        assert (home / "checkpoint.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")

        # The stalled scan's Schedule, created by `up`, has made its first look (at once) and written it.
        assert "Stalled scan     every 60 s (Temporal Schedule danvan-stalled-scan, created)" in banner
        for _ in range(150):
            scan = httpx.get(f"{api}/v1/ops/stalled", headers=auth, timeout=5).json()["scan"]
            if scan is not None:
                break
            time.sleep(0.2)
        assert scan is not None and scan["error"] is None, scan
    finally:
        code = first.interrupt()
    assert code == 0, "".join(first.output)
    time.sleep(0.5)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"

    second = UpProcess(home, env)
    try:
        second.wait_up()
        assert json.loads((home / "tokens.json").read_text()) == tokens
        auth = {"Authorization": f"Bearer {extra_token}"}
        assert httpx.get(f"{api}/v1/cases", headers=auth, timeout=5).status_code == 200

        async def describe() -> str:
            client = await Client.connect(env["TEMPORAL_ADDRESS"])
            return (await client.get_workflow_handle(workflow_id).describe()).id

        assert asyncio.run(describe()) == workflow_id
    finally:
        assert second.interrupt() == 0
