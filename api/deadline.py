"""Every request answered within a bound: the request deadline, and the bounds of each wait under it.

Three layers, innermost first, so that the answer names what was slow:

- each wait has its own bound, a little under the request's: every Temporal RPC the API makes carries an
  `rpc_timeout` (`danvan.waits.rpc_timeout()`, a share of the time left), and every PostgreSQL connection,
  checkout and statement of the API's pool is bounded (`eventstore.pool`, `create_app`). Those fail with an
  error that says which service it was (`TemporalUnavailableError`, `StoreUnavailableError`), answered with 503;
- errors of the drivers that escape a route unchanged (a refused connection, a timed-out RPC) are answered
  with 503 naming the service too (`api.errors.unavailable_service`);
- the request as a whole has a deadline (`RequestDeadline`, `DANVAN_REQUEST_TIMEOUT`, 5 s by default). When
  it passes, the request is cancelled and answered with 503 naming PostgreSQL if the request was waiting on
  it at that moment (`danvan.waits`), else Temporal, the only other service the API waits on.

A command is the one case where "try again" needs care: its Update may have reached the case and be applied
after the answer was given up on. The command route sets the record's `note` before it sends one, so that a 503 then
says that the outcome is unknown and that the command is to be sent again with the same `Idempotency-Key`,
which the case recognises (it applies a key once, and answers the repeat with `duplicate: true`).

Bulk operations that pace themselves over many cases (`POST /v1/ops/retry`) are exempt from the request
deadline, not from the bounds of each of their RPCs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from danvan import waits

log = logging.getLogger("danvan.api")

class RequestDeadline:
    """ASGI middleware: answer every HTTP request within `timeout` seconds, with 503 naming the service the
    request was waiting on when it did not finish in time. `exempt`: (method, path) pairs not bounded."""

    def __init__(self, app: ASGIApp, *, timeout: float, exempt: Collection[tuple[str, str]] = ()) -> None:
        self.app = app
        self.timeout = timeout
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif (scope["method"], scope["path"]) in self.exempt:
            await self._unbounded(scope, receive, send)
        else:
            await self._bounded(scope, receive, send)

    async def _unbounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """No deadline for the whole, but each wait is still bounded as in any request."""
        token = waits.current.set(waits.Waits(float("inf"), self.timeout))
        try:
            await self.app(scope, receive, send)
        finally:
            waits.current.reset(token)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        state = waits.Waits(loop.time() + self.timeout, self.timeout)
        guard = _Guard(task, state, send)
        token = waits.current.set(state)
        timer = loop.call_at(state.deadline, guard.expire)
        try:
            await self.app(scope, receive, guard.send)
        except asyncio.CancelledError:
            if guard.named is None or task.cancelling() > 1:
                raise  # cancelled by someone else (the server shutting down)
        except Exception:
            if guard.named is None:
                raise
            # Cancellation that a library turned into an error of its own (the Temporal SDK does): the
            # deadline's answer still stands.
        finally:
            timer.cancel()
            waits.current.reset(token)
        if guard.named is None:
            return
        task.uncancel()
        log.warning("%s %s: no answer from %s within %g s", scope["method"], scope["path"], guard.named,
                    self.timeout)
        if guard.started:
            return  # the answer had begun before the deadline: nothing more can be said on this connection
        await _answer_unavailable(send, scope, guard.named, self.timeout, state.note)


class _Guard:
    """One bounded request: cancels it when its deadline passes, naming the service it was waiting on, and
    holds back what its unwinding would send once the deadline's answer is due."""

    def __init__(self, task: asyncio.Task[Any], state: waits.Waits, send: Send) -> None:
        self.task, self.state, self._send = task, state, send
        self.started = False
        self.named: str | None = None

    def expire(self) -> None:
        # Decided now, while the request still waits: once cancelled, its stack unwinds and counts out.
        self.named = "PostgreSQL" if self.state.postgres > 0 else "Temporal"
        self.task.cancel()

    async def send(self, message: Message) -> None:
        if self.named is not None and not self.started:
            return  # the deadline has passed: the 503 is the answer, not what unwinding produced
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def _answer_unavailable(send: Send, scope: Scope, named: str, timeout: float, note: str | None) -> None:
    message = f"no answer from {named} within {timeout:g} s; {note or 'try again shortly'}"
    if scope["path"].startswith("/console"):
        body = ("<!doctype html><meta charset=utf-8><title>503</title>"
                f"<p>Dịch vụ tạm thời không phản hồi ({named}). Vui lòng thử lại sau ít phút.</p>"
                f"<p lang=en>{named} did not answer in time. Please try again shortly.</p>").encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": {"code": "unavailable", "message": message}}, ensure_ascii=False).encode()
        content_type = b"application/json"
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode()), (b"retry-after", b"1"),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
