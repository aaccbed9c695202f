"""The API's edge: what a request must be before any route sees it.

`BodyLimits` reads the body of every request to the API (`/v1/`, `/codec/`) once, and refuses, with nothing
started or stored:

- a body over `DANVAN_MAX_BODY_BYTES` (1 MiB by default): 413 `too_large`, before more is read;
- a body that is not JSON (or, for the plan import, YAML): 415 `unsupported_media_type`, naming the type sent;
- bytes that are not UTF-8: 422 on `body`, rule `body_not_utf8`;
- JSON that is malformed, holds `NaN` or `Infinity`, an integer beyond 4,300 digits, or one key twice in an
  object: 422 on `body`, rule `json_invalid` or `json_duplicate_key`;
- JSON nested deeper than `DANVAN_MAX_JSON_DEPTH` (32): 422, rule `json_too_deep`;
- any string, key or value, holding a character no text may hold (`domain.text`): 422 on the field, rule
  `text_nul`, `text_surrogate` or `text_control`.

The path and the query string of every request (the console's too) are held to the same text rules, and a
query string must be UTF-8: a NUL in a filter never reaches SQL. The body read here is handed on unchanged.

Uploads (`multipart/form-data` to `POST /v1/cases/{id}/attachments` and `POST /v1/petitions`) are not read here:
they pass through as they arrive, for the route's parser to spool, and are counted on the way. One that declares,
or sends, more than its own limit (`upload_limit`: as many files as a request may carry, each of the largest
size, and a JSON part of the body limit) is refused with 413 `attachment.too_large` as soon as it does, naming
the limit; the route holds each file to its own size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.calendar import local_date
from domain.text import faults, text_fault

from .errors import FieldError, error_response

#: Media types a body may have; the plan import takes YAML as well.
JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
YAML_PATHS = frozenset({"/v1/plan/import"})
#: JSON Lines (one JSON document a line), taken by the import of open cases; each line is checked as it is read.
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl"})
NDJSON_PATHS = frozenset({"/v1/import/cases"})
#: Where the body rules apply: the HTTP API and Temporal's remote codec (the console posts forms).
BODY_PREFIXES = ("/v1/", "/codec/")
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: The routes that take files (`multipart/form-data`).
UPLOAD_PATHS = re.compile(r"^/v1/(petitions|cases/[^/]+/attachments)$")
MULTIPART = "multipart/form-data"
#: Where a `multipart/form-data` `POST /v1/petitions` is handled (`api.routes.attachments`).
PETITION_FILES_PATH = "/v1/petitions/multipart"


class UploadTooLarge(Exception):
    """An upload went past its limit while it was being read."""


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def _unprocessable(field: str, rule: str, message: str) -> Refusal:
    return Refusal(422, "validation_failed", f"invalid request: {field}",
                   [FieldError(field=field, rule=rule, message=message)])


def _place(parts: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in parts) or "body"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _unprocessable("body", "json_duplicate_key",
                                 f"the key {key!r} appears twice in one object: which one is meant is unclear")
        out[key] = value
    return out


def _depth_fault(value: Any, limit: int) -> tuple[str | int, ...] | None:
    """The place of the first value nested deeper than `limit`, or None."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        place, item = stack.pop()
        if isinstance(item, dict | list):
            if len(place) >= limit:
                return place
            items = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend(((*place, k), v) for k, v in items if isinstance(v, dict | list))
    return None


def _utf8(raw: bytes) -> str:
    """The body as text; 422 `body_not_utf8` naming the first byte that starts no character."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unprocessable("body", "body_not_utf8",
                             f"the body is not UTF-8: byte {exc.start} ({raw[exc.start]:#04x}) starts no "
                             "character") from None


def check_json(raw: bytes, max_depth: int) -> None:
    """Refuse `raw` unless it is UTF-8 JSON within the depth, every string within the text rules."""
    text = _utf8(raw)
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except RecursionError:
        raise _unprocessable("body", "json_too_deep",
                             f"the JSON is nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise _unprocessable("body", "json_invalid",
                             f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                             ) from None
    except ValueError as exc:  # NaN, Infinity, an integer too long to read
        raise _unprocessable("body", "json_invalid", f"the body is not valid JSON: {exc}") from None
    deep = _depth_fault(document, max_depth)
    if deep is not None:
        raise _unprocessable(_place(deep), "json_too_deep", f"the JSON is nested deeper than {max_depth} levels")
    for place, rule, message in faults(document):
        raise _unprocessable(_place(place), rule, message)


def check_text_body(raw: bytes) -> None:
    """A body read as text (YAML): UTF-8, and within the text rules."""
    text = _utf8(raw)
    fault = text_fault(text)
    if fault is not None:
        raise _unprocessable("body", *fault)


def check_target(scope: Scope) -> None:
    """The path and the query string: UTF-8 and within the text rules."""
    path = scope.get("path", "")
    fault = text_fault(path)
    if fault is None and "%" in (raw_path := (scope.get("raw_path") or b"").decode("latin-1")):
        # Starlette decodes the path for routing; a %-escape it could not decode is checked here.
        try:
            fault = text_fault(unquote(raw_path, errors="strict"))
        except UnicodeDecodeError:
            raise _unprocessable("path", "text_not_utf8", "the path is not UTF-8 once %-decoded") from None
    if fault is not None:
        raise _unprocessable("path", *fault)
    query = scope.get("query_string") or b""
    if not query:
        return
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _unprocessable("query", "text_not_utf8", "the query string is not UTF-8 once %-decoded") from None
    for name, value in pairs:
        fault = text_fault(name) or text_fault(value)
        if fault is not None:
            raise _unprocessable(name if text_fault(name) is None else "query", *fault)


def _media_type(scope: Scope) -> tuple[str, str | None]:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            media, *params = value.decode("latin-1").split(";")
            charset = None
            for param in params:
                name, _, val = param.strip().partition("=")
                if name.lower() == "charset":
                    charset = val.strip().strip('"').lower()
            return media.strip().lower(), charset
    return "", None


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimits:
    """ASGI middleware: the edge's rules above, answered in the API's error format."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int, upload_limit: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.upload_limit = upload_limit if upload_limit is not None else max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope)
            path = scope["path"]
            if scope["method"] not in WITH_BODY or not path.startswith(BODY_PREFIXES):
                await self.app(scope, receive, send)
                return
            if _media_type(scope)[0] == MULTIPART and UPLOAD_PATHS.match(path):
                if path == "/v1/petitions":  # the petition with its files has a handler of its own
                    scope = {**scope, "path": PETITION_FILES_PATH, "raw_path": PETITION_FILES_PATH.encode()}
                await self._upload(scope, receive, send)
                return
            body = await self._read(scope, receive)
            if body:
                self._check(scope, path, body)
        except Refusal as refusal:
            response = error_response(refusal.status, refusal.code, refusal.message, fields=refusal.fields)
            await response(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an upload through, counted; 413 once it goes past `upload_limit` (declared or sent)."""
        declared = _declared_length(scope)
        if declared is not None and declared > self.upload_limit:
            raise self._upload_too_large()
        size = 0
        started = False

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.upload_limit:
                raise UploadTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except UploadTooLarge:
            if started:
                raise
            refusal = self._upload_too_large()
            await error_response(refusal.status, refusal.code, refusal.message, fields=refusal.fields)(
                scope, receive, send)

    def _upload_too_large(self) -> Refusal:
        message = (f"an upload may have at most {self.upload_limit} bytes in all (DANVAN_ATTACHMENT_MAX_FILES files "
                   "of DANVAN_ATTACHMENT_MAX_BYTES each, and the JSON part)")
        return Refusal(413, "attachment.too_large", message,
                       [FieldError(field="body", rule="attachment.too_large", message=message)])

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise self._too_large(declared)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large(None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, declared: int | None) -> Refusal:
        sent = f"{declared} bytes" if declared is not None else "more"
        return Refusal(413, "too_large", f"the body is {sent}; at most {self.max_bytes} bytes are accepted "
                                         "(DANVAN_MAX_BODY_BYTES)")

    def _check(self, scope: Scope, path: str, body: bytes) -> None:
        media, charset = _media_type(scope)
        if charset is not None and charset not in {"utf-8", "utf8"}:
            raise Refusal(415, "unsupported_media_type",
                          f"the body is declared as {charset}; send it as UTF-8 (charset=utf-8)")
        if (path in YAML_PATHS and media in YAML_TYPES) or (path in NDJSON_PATHS and media in NDJSON_TYPES):
            check_text_body(body)
            return
        if media not in JSON_TYPES and not (media.startswith("application/") and media.endswith("+json")):
            accepted = "application/json" + (" or application/yaml" if path in YAML_PATHS else "")
            sent = f"Content-Type {media}" if media else "no Content-Type"
            raise Refusal(415, "unsupported_media_type", f"the body was sent with {sent}; send it as {accepted}")
        check_json(body, self.max_depth)


def dates_out_of_range(value: Any, first_year: int, last_year: int,
                       where: tuple[str | int, ...] = ()) -> list[FieldError]:
    """A 422 field error for every date (or moment, by its day in Vietnam) in `value` outside the years a case
    may lie in (`DANVAN_CALENDAR_FIRST_YEAR` / `_LAST_YEAR`): the working calendar knows no other."""
    found: list[FieldError] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [(where, value)]
    while stack:
        place, item = stack.pop()
        if isinstance(item, date):
            day = local_date(item) if isinstance(item, datetime) and item.tzinfo is not None else item
            if not first_year <= day.year <= last_year:
                found.append(FieldError(field=_place(place), rule="date_out_of_range", message=(
                    f"{day.isoformat()} is outside the years a case may lie in: {first_year}-01-01 to "
                    f"{last_year}-12-31 (the working calendar knows no other; DANVAN_CALENDAR_FIRST_YEAR and "
                    "DANVAN_CALENDAR_LAST_YEAR set them)")))
        elif isinstance(item, BaseModel):
            stack.extend(((*place, name), getattr(item, name, None)) for name in type(item).model_fields)
        elif isinstance(item, dict):
            stack.extend(((*place, k), v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend(((*place, i), v) for i, v in enumerate(item))
    return sorted(found, key=lambda f: f.field)
