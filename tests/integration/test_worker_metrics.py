"""The worker's metrics on their own port: the real `danvan worker` process, started with
`DANVAN_WORKER_METRICS_PORT`, serves the Temporal SDK's `temporal_*` series and danvan's appends after it has
run a case, in Prometheus' text format."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from domain.petitions import Petitioner, PetitionIntake
from tests.conftest import ROOT, free_port, secret_env
from workflows.client import open_petition

pytestmark = pytest.mark.slow


def worker_env(tmp_path: Path, temporal_env: WorkflowEnvironment, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DANVAN_", "TEMPORAL_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        DATABASE_URL=database_url,
        DANVAN_HOME=str(tmp_path / "home"),
        DANVAN_WORKER_METRICS_PORT=str(port),
        DANVAN_LOG_LEVEL="INFO",
        **secret_env(),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_worker(log: Path, task_queue: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`danvan worker` in its own session, its output in `log`; `-m` from the repository, so it runs the code of
    this tree, as `danvan up` starts its worker."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "danvan.cli", "worker", "--task-queue", task_queue],
            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def scrape(url: str, timeout: float = 30) -> dict[str, list[Any]]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                response = await http.get(url)
                response.raise_for_status()
                return {f.name: f.samples for f in text_string_to_metric_families(response.text)}
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def test_a_worker_serves_temporal_and_danvan_series_after_running_a_case(
    tmp_path: Path, temporal_env: WorkflowEnvironment, database_url: str, task_queue: str
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    proc = start_worker(log, task_queue, worker_env(tmp_path, temporal_env, database_url, port))
    try:
        deadline = time.monotonic() + 90
        while "worker polling task queue" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            await asyncio.sleep(0.1)
        intake = PetitionIntake(
            source="metrics-test", external_ref=f"KN-{uuid.uuid4().hex[:10]}", kind="complaint", channel="post",
            received_at=datetime.now(UTC), petitioner=Petitioner(name="Trần Văn Bình"),
            subject="Khiếu nại", content="Nội dung khiếu nại để đo lường.", district="Nam Sách", commune="Nam Hồng",
            receiving_body="UBND_TINH",
        )
        result = await asyncio.wait_for(open_petition(temporal_env.client, intake, task_queue=task_queue), 60)
        families = await scrape(f"http://127.0.0.1:{port}/metrics")

        def total(family: str, sample: str, **labels: str) -> float:
            return float(sum(s.value for s in families.get(family, []) if s.name == sample
                             and all(s.labels.get(k) == v for k, v in labels.items())))

        # The SDK's own telemetry: workflow and activity task latencies of this worker's task queue.
        assert total("temporal_workflow_task_execution_latency", "temporal_workflow_task_execution_latency_count",
                     task_queue=task_queue) >= 1
        assert total("temporal_activity_execution_latency", "temporal_activity_execution_latency_count",
                     task_queue=task_queue) >= 1
        assert any(name.startswith("temporal_") and name.endswith("_total") for name in
                   (s.name for samples in families.values() for s in samples))
        # danvan's own, on the same port: the case's first append.
        assert total("danvan_eventstore_append_duration_seconds", "danvan_eventstore_append_duration_seconds_count",
                     outcome="appended") >= 1
        # Its log: JSON lines only (`danvan.logs`), the worker's own words among them.
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        messages = [r["message"] for r in records]
        assert f"worker metrics at http://127.0.0.1:{port}/metrics" in messages
        assert any(m.startswith("worker polling task queue") for m in messages)
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        await temporal_env.client.get_workflow_handle(result.case.case_id).terminate("the metrics test is done")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_second_worker_on_a_taken_port_runs_without_metrics() -> None:
    from danvan.settings import Settings
    from danvan.worker_metrics import worker_runtime

    port = free_port()
    settings = Settings.from_env({"DANVAN_WORKER_METRICS_PORT": str(port)})
    first = worker_runtime(settings)
    assert first.metrics_address == f"127.0.0.1:{port}"
    try:
        second = worker_runtime(settings)  # the port is the first one's: said in the log
        assert second.metrics_address is None
        second.close()
        off = worker_runtime(Settings.from_env({"DANVAN_WORKER_METRICS_PORT": "0"}))
        assert off.metrics_address is None
        off.close()
    finally:
        first.close()


def test_a_workers_port_serves_its_webhook_deliveries_by_outcome_and_status_class() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from activities import delivery_hooks
    from danvan.settings import Settings
    from danvan.worker_metrics import worker_runtime

    port = free_port()
    runtime = worker_runtime(Settings.from_env({"DANVAN_WORKER_METRICS_PORT": str(port)}))
    try:
        for seconds, status in ((0.05, 204), (0.2, 503), (1.0, None)):
            delivery_hooks.delivered(seconds, status)  # as the delivery activities report each attempt
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        runtime.close()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    counted = {(s.labels["outcome"], s.labels["status_class"]): s.value for s in samples
               if s.name == "danvan_webhook_deliveries_total"}
    assert counted == {("delivered", "2xx"): 1, ("failed", "5xx"): 1, ("failed", "none"): 1}
    timed = {s.labels["outcome"]: s.value for s in samples
             if s.name == "danvan_webhook_delivery_duration_seconds_count"}
    assert timed == {"delivered": 1, "failed": 2}
