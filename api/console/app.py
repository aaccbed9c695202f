"""The console as an application of its own, mounted on the API app at `/console`.

A mounted application keeps the console's errors out of the API's: here every failure is an HTML page in the
reader's language (a missing session a redirect to the sign-in form), while `/v1/...` keeps its JSON error
format untouched. The console shares the API app's `state` (settings, event store, Temporal connection, token
cache, identity vault), so it runs on the same pool and the same token rules.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventstore import EventStoreError, StoreUnavailableError

from ..errors import DRIVER_ERRORS, ApiError, field_errors, unavailable_service
from ..metrics import RouteNote
from ..temporal import TemporalUnavailableError
from .commands import router as commands_router
from .i18n import LANG_COOKIE, LANGS, Translator, language_of
from .jobs import router as jobs_router
from .ops import router as ops_router
from .pages import router
from .queue import router as queue_router
from .render import NO_STORE, render
from .session import ConsoleError, SignInRequired, clear_session, root_of
from .stalled import router as stalled_router
from .subscriptions import router as subscriptions_router

log = logging.getLogger("danvan.console")

#: Where the console is mounted on the API app.
PREFIX = "/console"
STATIC = Path(__file__).resolve().parent / "static"

#: No script, no frame, no foreign origin: the console needs none of them.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
     b"base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class ConsoleMiddleware:
    """Three small things every console request needs, at the ASGI level:

    - an HTML form sends every field, blank or not; a blank query parameter is dropped, so that it means
      "no filter" to `CaseQuery` instead of an invalid value;
    - `?lang=vi|en` is kept in the `lang` cookie;
    - the security headers above on every answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pieces = [p for p in scope.get("query_string", b"").split(b"&") if p.partition(b"=")[2]]
        scope = {**scope, "query_string": b"&".join(pieces)}
        chosen = next((p[5:].decode() for p in pieces if p in (b"lang=vi", b"lang=en")), None)
        root = scope.get("root_path", "") or "/"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                given = {name.lower() for name, _ in headers}  # a file's answer sets some of its own
                headers += [h for h in SECURITY_HEADERS if h[0] not in given]
                if chosen in LANGS:
                    cookie = f"{LANG_COOKIE}={chosen}; Max-Age=31536000; Path={root}; SameSite=Lax; HttpOnly"
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error_page(request: Request, status: int, message: str | None, *, detail: str | None = None,
                fields: list[str] | None = None, values: dict[str, Any] | None = None) -> Response:
    """An error page: a title for `status`, a catalogue message (with `values`), a technical detail, fields."""
    t = Translator(language_of(request))
    title_key = f"error.title.{status}"
    return render(request, "error.html", {
        "status": status, "title": t(title_key), "message": t(message, **(values or {})) if message else None,
        "detail": detail, "fields": fields or [],
    }, status=status, headers=NO_STORE)


async def _on_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = root_of(request) + "/login"
    query = []
    if request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query.append("next=" + quote(here, safe="/"))
    if exc.ended:
        query.append("ended=1")
    response = RedirectResponse(target + ("?" + "&".join(query) if query else ""), status_code=303)
    if exc.ended:
        clear_session(response, request)
    return response


async def _on_console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    return _error_page(request, exc.status, exc.message, values=exc.values)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    # Raised by the API code the pages reuse (case scoping, the body filter): its message is in English and
    # technical, so it is shown as the detail under a message of the page's language.
    assert isinstance(exc, ApiError)
    message = {403: "error.forbidden", 404: "error.not_found"}.get(exc.status)
    return _error_page(request, exc.status, message, detail=exc.message)


async def _on_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [f"{f.field}: {f.message}" for f in field_errors(exc.errors())]
    return _error_page(request, 422, "error.fields", fields=fields)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return _error_page(request, exc.status_code, "error.not_found" if exc.status_code == 404 else None)


async def _on_store_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailableError):
        log.warning("%s %s: PostgreSQL is unavailable: %s", request.method, request.url.path, exc)
        return _error_page(request, 503, "error.store_down")
    log.error("%s %s: event store error", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "error.internal")


async def _on_temporal_down(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return _error_page(request, 503, "error.temporal_down")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    service = unavailable_service(exc)
    if service is not None:
        log.warning("%s %s: %s does not answer: %r", request.method, request.url.path, service, exc)
        return _error_page(request, 503, "error.store_down" if service == "PostgreSQL" else "error.temporal_down")
    log.error("%s %s: unhandled error", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "error.internal")


def build_console() -> FastAPI:
    """The console application (its pages, its static file, its error pages and middleware)."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.include_router(router)
    console.include_router(stalled_router)
    console.include_router(queue_router)
    console.include_router(commands_router)
    console.include_router(ops_router)
    console.include_router(jobs_router)
    console.include_router(subscriptions_router)
    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    console.add_exception_handler(SignInRequired, _on_sign_in)
    console.add_exception_handler(ConsoleError, _on_console_error)
    console.add_exception_handler(ApiError, _on_api_error)
    console.add_exception_handler(RequestValidationError, _on_invalid)
    console.add_exception_handler(StarletteHTTPException, _on_http)
    console.add_exception_handler(EventStoreError, _on_store_error)
    console.add_exception_handler(TemporalUnavailableError, _on_temporal_down)
    for kind in DRIVER_ERRORS:
        console.add_exception_handler(kind, _on_unexpected)
    console.add_exception_handler(Exception, _on_unexpected)
    console.add_middleware(RouteNote)  # innermost: tells the API's request metrics which page answered
    console.add_middleware(ConsoleMiddleware)
    return console


def mount_console(app: FastAPI) -> None:
    """Serve the console at `/console` of `app`, sharing its state."""
    console = build_console()
    console.state = app.state
    app.mount(PREFIX, console, name="console")
