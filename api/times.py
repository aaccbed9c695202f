"""One time zone in every answer: each moment the API returns is written at Vietnam's offset (+07:00).

Cases hold moments from several clocks: Temporal's (UTC), PostgreSQL's (`timestamptz`, read back in UTC) and the
deadline calendar's (end of a Vietnamese working day, +07:00). Written as they come, one answer would mix `Z`
and `+07:00` for moments a reader compares side by side. The routes return their models as they are, and
`VietnamTimeRoute` moves every aware `datetime` in the returned object to +07:00 before FastAPI serializes it:
the same instant, written the way the deadlines and the console already write it. Only `datetime` values are
touched, never text: a petition's content that happens to look like a timestamp is data and stays as sent,
and an event's `data` in a history is the stored record, quoted as recorded so that its hash can be checked.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from domain.calendar import in_vietnam

__all__ = ["VietnamTimeRoute", "in_vietnam"]


def _wrap(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):
        @functools.wraps(endpoint)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return in_vietnam(await endpoint(*args, **kwargs))
        return run_async

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        return in_vietnam(endpoint(*args, **kwargs))
    return run


class VietnamTimeRoute(APIRoute):
    """An API route whose answer writes every moment at +07:00 (see the module)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _wrap(endpoint), **kwargs)
