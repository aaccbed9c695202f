"""What a task is waiting on, and how long it may still wait: the request deadline's record.

The API gives every request a deadline (`api.deadline`). When it passes, the request is cancelled, and the 503
must name what did not answer: PostgreSQL or Temporal. By then the stack has unwound, so the question is
answered at the moment the deadline fires, from a small mutable record that the request's task carries in a
context variable: the store's pool counts itself in while a checkout, a statement or the body of
`async with pool.acquire()` is under way (`eventstore.pool`). The record is mutable on purpose: a context
variable set and reset around each wait would already be reset when the deadline's handler looks, because
cancellation runs every `finally` first.

The same record gives each Temporal RPC its deadline (`rpc_timeout`): a share of the time the request has
left, so that the RPC fails, naming Temporal, before the request's own deadline passes. Code that runs outside
a request (the command line, the worker) has no record and gets the caller's default.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

#: The share of the request's time left that one wait may take: the rest is for answering.
WAIT_SHARE = 0.8
#: The least time a wait is given, even when the request's time is almost up.
MIN_WAIT = 0.05


@dataclass
class Waits:
    """One request: its deadline (event-loop time) and bound (seconds), how many PostgreSQL uses are under
    way, and what its 503 must add if the deadline passes now (`note`)."""

    deadline: float
    timeout: float
    postgres: int = 0
    note: str | None = None


#: The record of the current request's task, if it has one.
current: ContextVar[Waits | None] = ContextVar("danvan_waits", default=None)


def time_left(default: float | None) -> float | None:
    """Seconds one wait may take now: a share of what is left of the request's time; `default` outside a
    request."""
    record = current.get()
    if record is None:
        return default
    left = record.deadline - asyncio.get_running_loop().time()
    return max(MIN_WAIT, min(left, record.timeout) * WAIT_SHARE)


def rpc_timeout(default: float | None = None) -> timedelta | None:
    """The `rpc_timeout` of a Temporal call made now (None: the SDK's own, outside a request by default)."""
    seconds = time_left(default)
    return None if seconds is None else timedelta(seconds=seconds)


def note(message: str) -> None:
    """What a 503 of this request must say if it comes from now on (a command sent, its outcome unknown)."""
    record = current.get()
    if record is not None:
        record.note = message
