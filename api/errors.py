"""The one error format of the HTTP API, and the handlers that produce it.

Every answer that is not 2xx has this body (``fields`` only on 422)::

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"field": "kind", "rule": "literal_error", "message": "Input should be ..."}]}}

`field` is the place of the bad value in the request, dot-joined, without the leading `body` / `query` /
`path` segment (a malformed JSON document is field `body`, rule `json_invalid`); `rule` is pydantic's error
type, so clients can switch on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from eventstore import (
    ConcurrencyError,
    EventIdConflictError,
    EventStoreError,
    InvalidEventError,
    StoreUnavailableError,
)

from .temporal import TemporalUnavailableError

log = logging.getLogger("danvan.api")

#: The loc segments FastAPI puts in front of the field name, which say where the value came from.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})

_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class FieldError(BaseModel):
    """One invalid value: where it is, the rule it breaks, and a sentence for people."""

    field: str
    rule: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """The body of every non-2xx answer (documented in the OpenAPI schema under this name)."""

    error: ErrorDetail


class ApiError(Exception):
    """Raise from a route to answer with `status` and the error format.

    `code` is a stable, machine-readable word (`forbidden`, `not_found`, `conflict`, a rule's name...);
    `message` is for people.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields) if fields is not None else None
        self.headers = dict(headers) if headers else None


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A response in the error format."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        detail["fields"] = [f.model_dump() for f in fields]
    return JSONResponse({"error": detail}, status_code=status, headers=dict(headers) if headers else None)


def field_name(loc: Sequence[int | str], rule: str) -> str:
    """The dot-joined place of a value, without the `body`/`query`/`path` prefix."""
    if rule == "json_invalid":
        # FastAPI puts the character offset after `body`; the offset is in the message, the field is the body.
        return "body"
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        source, parts = parts[0], parts[1:]
        if not parts:
            return str(source)
    return ".".join(str(p) for p in parts) or "body"


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """pydantic / FastAPI error dicts as `FieldError`s."""
    out = []
    for err in errors:
        rule = str(err.get("type", "value_error"))
        message = str(err.get("msg", "invalid value"))
        if rule == "json_invalid":
            ctx = err.get("ctx") or {}
            if ctx.get("error"):
                message = f"the body is not valid JSON: {ctx['error']}"
        out.append(FieldError(field=field_name(tuple(err.get("loc", ())), rule), rule=rule, message=message))
    return out


def validation_error(field: str, rule: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 for a value that FastAPI's own validation cannot check (a cursor, a date range...)."""
    return RequestValidationError([{"type": rule, "loc": ("query", field), "msg": message, "input": value}])


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = field_errors(exc.errors())
    names = ", ".join(dict.fromkeys(f.field for f in fields))
    return error_response(422, "validation_failed", f"invalid request: {names}", fields=fields)


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods the OpenAPI schema gives `path` (the table is built once per app, from the schema)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), frozenset(m.upper() for m in item if m in _METHODS)))
        app.state.allowed_methods = table
    return sorted({method for regex, methods in table if regex.match(path) for method in methods})


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if exc.status_code == 405:
        # Starlette names the methods of the first route of the path only; a path served by several routes
        # (GET and POST of /v1/subscriptions) allows all of theirs.
        allowed = allowed_methods(request.app, request.url.path)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), message, headers=headers or None)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = dict(exc.headers or {})
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=headers or None)


#: Temporal's answers that mean "not now" rather than "no".
_TEMPORAL_DOWN = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
                            RPCStatusCode.RESOURCE_EXHAUSTED})
_POSTGRES_DOWN: tuple[type[BaseException], ...] = (
    OSError,  # a refused or reset connection; TimeoutError too (a statement's or a checkout's bound)
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a connection the server said goodbye to while it was idle
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
)


def unavailable_service(exc: BaseException) -> str | None:
    """`PostgreSQL` or `Temporal` when `exc` (from a driver, unchanged) means that service did not answer in
    time or cannot be reached; None for any other error. Routes need not catch these: the API's and the
    console's last-resort handlers answer 503 naming the service instead of 500."""
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return "Temporal"
    if isinstance(exc, RPCError):
        return "Temporal" if exc.status in _TEMPORAL_DOWN else None
    if isinstance(exc, StoreUnavailableError | TemporalUnavailableError):
        return "PostgreSQL" if isinstance(exc, StoreUnavailableError) else "Temporal"
    if isinstance(exc, _POSTGRES_DOWN):
        return "PostgreSQL"
    return None


def unavailable(service: str, detail: str = "try again shortly") -> JSONResponse:
    """The 503 naming the service that did not answer."""
    return error_response(503, "unavailable", f"{service} is unavailable; {detail}", headers={"Retry-After": "1"})


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ConcurrencyError):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, EventIdConflictError):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, StoreUnavailableError):
        log.warning("%s %s: PostgreSQL is unavailable: %s", request.method, request.url.path, exc)
        return unavailable("PostgreSQL")
    if isinstance(exc, InvalidEventError):
        return error_response(422, "invalid_event", str(exc), fields=[])
    log.error("%s %s: event store error", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


async def _on_temporal_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return unavailable("Temporal")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    service = unavailable_service(exc)
    if service is not None:
        log.warning("%s %s: %s does not answer: %r", request.method, request.url.path, service, exc)
        return unavailable(service)
    # The details go to the log only: a traceback or a driver message can name tables, hosts or values.
    log.error("%s %s: unhandled error", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


async def _on_driver_error(request: Request, exc: Exception) -> JSONResponse:
    # Handled here rather than by the last-resort handler, which would also log it as a crash.
    return await _on_unexpected(request, exc)


#: The driver errors `unavailable_service` may name, handled before they reach the last resort.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    WorkflowUpdateRPCTimeoutOrCancelledError, RPCError,
    *(kind for kind in _POSTGRES_DOWN if issubclass(kind, Exception)),
)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error answer the one format."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(EventStoreError, _on_store_error)
    app.add_exception_handler(TemporalUnavailableError, _on_temporal_down)
    for kind in DRIVER_ERRORS:
        app.add_exception_handler(kind, _on_driver_error)
    app.add_exception_handler(Exception, _on_unexpected)


#: For routes' `responses=`: the error answers in the OpenAPI schema, with the real body schema.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "No token, a malformed Authorization header, or an unknown or revoked token",
        403: "The token's role or body may not do this",
        404: "Not found",
        409: "Refused: a conflict with the current state",
        410: "Gone: it was erased",
        422: "Invalid input; `fields` names each bad field and the rule it breaks",
        503: "A dependency (PostgreSQL, Temporal) is unavailable",
    }
    return {s: {"model": ErrorBody, "description": descriptions.get(s, "Error")} for s in statuses}
