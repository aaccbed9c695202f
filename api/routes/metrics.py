"""`GET /metrics`: the API's metrics in the Prometheus text format, for a `supervisor`, `operator` or `admin`
token (a Prometheus job sends one as its bearer token; the README's "Operating" section shows how)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ..auth import require
from ..deps import Store
from ..errors import error_responses
from ..metrics import exposition, read_case_gauges
from ..routing import ApiRoute
from ..tokens import Principal

router = APIRouter(tags=["metrics"], route_class=ApiRoute)

Reader = Annotated[Principal, Depends(require("supervisor", "operator", "admin"))]


@router.get(
    "/metrics",
    summary="Metrics in the Prometheus text format",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}},
                     "description": "Prometheus' text format 0.0.4 (OpenMetrics when the `Accept` header asks)"},
               **error_responses(401, 403)},
)
async def metrics(request: Request, store: Store, _: Reader) -> Response:
    """Requests by route template and status with latency histograms, the event store's appends (latency by
    outcome, conflicts), and the open cases by kind and status with how many are overdue and breached, read from
    PostgreSQL now in one bounded statement (`danvan_cases_scrape_ok` is 0 when it did not answer in time; the
    rest is served all the same)."""
    gauges = await read_case_gauges(store.pool)
    body, content_type = exposition(gauges, request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
