"""Liveness and readiness probes (no token: orchestrators and load balancers call them)."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from danvan import waits
from eventstore.migrate import is_current

from ..deps import Store, Temporal
from ..errors import ErrorDetail
from ..routing import ApiRoute
from ..temporal import TemporalUnavailableError

log = logging.getLogger("danvan.api")

router = APIRouter(tags=["health"], route_class=ApiRoute)

#: Each readiness check gives up after this many seconds (or a share of the request's time left, when that is
#: shorter), so a probe always answers quickly, and in its own shape rather than the request deadline's.
CHECK_TIMEOUT = 2.0

Check = Literal["ok", "down", "pending", "unknown"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """`checks` names each dependency: `ok`, `down`, or for migrations `pending` (not all applied) or
    `unknown` (PostgreSQL is down, so they could not be checked). A 503 also carries the `error` object."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Check]
    error: ErrorDetail | None = None


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    """Always 200 while the process serves requests; needs no token and touches no dependency."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    summary="Readiness: PostgreSQL, migrations and Temporal",
    responses={503: {"model": Readiness, "description": "Something is down; `checks` names it"}},
)
async def readyz(store: Store, temporal: Temporal) -> JSONResponse:
    """200 when PostgreSQL answers, every migration is applied and Temporal answers; else 503 naming what
    is down. Unlike the rest of the API (all but `/healthz` need a token), this probe needs NO token,
    because orchestrators and load balancers probe it without credentials; it reveals nothing but the
    words ok / down / pending. A Temporal client that could not be made at start is retried here.
    """

    async def database() -> tuple[Check, Check]:
        try:
            async with asyncio.timeout(waits.time_left(CHECK_TIMEOUT)), store.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
                return "ok", ("ok" if await is_current(conn) else "pending")
        except Exception as exc:
            log.warning("readyz: PostgreSQL is down: %r", exc)
            return "down", "unknown"

    async def temporal_check() -> Check:
        try:
            await temporal.check()
            return "ok"
        except TemporalUnavailableError as exc:
            log.warning("readyz: %s", exc)
            return "down"

    (postgres, migrations), temporal_state = await asyncio.gather(database(), temporal_check())
    checks: dict[str, Check] = {"postgres": postgres, "migrations": migrations, "temporal": temporal_state}
    bad = [f"{name} {state}" for name, state in checks.items() if state != "ok"]
    if not bad:
        return JSONResponse(Readiness(status="ready", checks=checks).model_dump(exclude_none=True))
    body = Readiness(
        status="not_ready",
        checks=checks,
        error=ErrorDetail(code="not_ready", message="not ready: " + ", ".join(bad)),
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
