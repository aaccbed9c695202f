"""The route class of every API router: answers at +07:00 (`api.times`) and a query string of declared
parameters only.

A query parameter the operation does not declare (a misspelt filter: `?stauts=accepted`) would otherwise be
ignored, and the client would read an unfiltered list as the filtered one. It is refused with 422 naming it
(rule `extra_forbidden`), as an unknown field of a body is.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from .times import VietnamTimeRoute


def query_names(dependant: Dependant) -> frozenset[str]:
    """The names of every query parameter of `dependant` and of its dependencies, as clients write them."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_names(sub)
    return frozenset(names)


class ApiRoute(VietnamTimeRoute):
    """An API route: moments at +07:00, and 422 for a query parameter it does not declare."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = query_names(self.dependant)

        async def declared_only(request: Request) -> Response:
            unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
            if unknown:
                allowed = ", ".join(sorted(known)) or "none"
                raise RequestValidationError([
                    {"type": "extra_forbidden", "loc": ("query", name), "input": request.query_params.get(name),
                     "msg": f"unknown query parameter; this operation takes: {allowed}"} for name in unknown])
            return await handler(request)

        return declared_only
