"""The API's metrics: requests by route template and status, and the case gauges read at scrape time.

`RequestMetrics` (ASGI middleware, outermost) counts and times every HTTP request under the template of the
route that answered it (`/v1/cases/{case_id}/commands`, `/console/cases/{case_id}`): a raw path would make one
series per case. A request no route matched is counted under `unmatched`.

`read_case_gauges` is what `GET /metrics` reads from PostgreSQL at each scrape: one statement over `cases`,
grouped by kind and status, one over `repair_jobs` (the jobs in progress, by state), and one each over the
stalled scan's open findings, the webhook subscriptions and the checkpoint signers (small tables), under its
own `statement_timeout` and within a bounded wait for a connection, so a scrape never hangs on a slow
database. When it does not answer in time the other series are still served, and `danvan_cases_scrape_ok`
says 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi.routing import APIRoute
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from danvan import waits
from danvan.logs import request_scope
from danvan.metrics import HTTP_LATENCY, HTTP_REQUESTS
from domain.petitions.model import ENDED
from eventstore import Pool
from integrity.signers import LATE_INTERVALS, LATE_SQL

log = logging.getLogger("danvan.api")

#: Statuses in which a case is over: a petition's ends, and `closed` of a plan task or a Front supervision.
ENDED_STATUSES: tuple[str, ...] = tuple(sorted({str(s) for s in ENDED} | {"closed"}))
#: The longest a scrape waits for the case gauges (seconds), connection and statement together.
CASES_TIMEOUT = 2.0
UNMATCHED = "unmatched"


#: The scope key of a request's `RouteNote`: shared by every copy a mounted app makes of the scope.
NOTE_KEY = "danvan.route"


class _Note:
    __slots__ = ("root", "template")

    def __init__(self, root: str) -> None:
        self.root = root
        self.template: str | None = None


def route_template(scope: Scope, root: str) -> str:
    """The template of the route that answered, with the prefix of any mount it is under (`root`: the
    scope's `root_path` as the request came in)."""
    route = scope.get("route")
    prefix = str(scope.get("root_path", ""))[len(root):]
    if isinstance(route, APIRoute):
        return prefix + route.path
    if prefix:  # a mounted app with no route of its own (static files): its prefix names it
        return prefix + "/{path}"
    return UNMATCHED


class RouteNote:
    """ASGI middleware for a mounted app that works on its own copy of the scope (the console): notes the
    template of the route that answered where `RequestMetrics`, outside the mount, finds it, and gives the log
    lines that copy to read the case from. Added first, so it runs innermost, on the scope the app's router
    fills in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The log lines of the page name its case (`danvan.logs`): this copy is where the router puts it.
        token = request_scope.set(scope) if scope["type"] == "http" else None
        try:
            await self.app(scope, receive, send)
        finally:
            if token is not None:
                request_scope.reset(token)
            note = scope.get(NOTE_KEY)
            if isinstance(note, _Note):
                template = route_template(scope, note.root)
                if template != UNMATCHED:
                    note.template = template


class RequestMetrics:
    """ASGI middleware: `danvan_http_requests_total` and `danvan_http_request_duration_seconds` for every HTTP
    request. A request that ends without an answer (the client left) is counted with status 499 when nothing
    was sent, as an error 500 when the app raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note = _Note(str(scope.get("root_path", "")))
        scope[NOTE_KEY] = note
        scope_token = request_scope.set(scope)  # the request's log lines name its case (`danvan.logs`)
        status = 0
        started = time.perf_counter()

        async def measured_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        except asyncio.CancelledError:
            status = status or 499
            raise
        except BaseException:
            status = status or 500
            raise
        finally:
            request_scope.reset(scope_token)
            route = note.template or route_template(scope, note.root)
            method = str(scope["method"])
            HTTP_REQUESTS.labels(method, route, str(status or 500)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


CASES_SQL = """/* danvan_metrics: open cases by kind and status */
SELECT kind, status, count(*) AS open,
       count(*) FILTER (WHERE overdue) AS overdue,
       count(*) FILTER (WHERE due_at < now()) AS breached
  FROM cases
 WHERE status <> ALL ($1::text[])
 GROUP BY kind, status
"""


JOBS_SQL = """/* danvan_metrics: repair jobs in progress by state */
SELECT state, count(*) AS n FROM repair_jobs WHERE state = ANY($1::text[]) GROUP BY state
"""
#: The states of a repair job in progress (`ops.job_types`): the gauge has a series for each, 0 included.
JOB_STATES_IN_PROGRESS: tuple[str, ...] = ("awaiting_approval", "running", "paused")
#: The open findings of the stalled scan, by subject, reason and kind (`ops.scan`).
STALLED_SQL = """/* danvan_metrics: stalled */
SELECT subject, reason, coalesce(kind, '') AS kind, count(*) AS n
  FROM stalled_findings WHERE cleared_at IS NULL GROUP BY 1, 2, 3
"""
SUBSCRIPTIONS_SQL = "/* danvan_metrics: subscriptions */ SELECT status, count(*) AS n FROM subscriptions GROUP BY 1"
#: Late checkpoints by the one rule (`integrity.signers.LATE_SQL`), and the last one signed.
CHECKPOINTS_SQL = f"""/* danvan_metrics: checkpoints */
SELECT (SELECT count(*) FROM ({LATE_SQL}) late) AS late,
       (SELECT extract(epoch FROM max(last_signed_at)) FROM checkpoint_signers) AS last_signed
"""
SUBSCRIPTION_STATUSES = ("active", "paused", "failing")


@dataclass(frozen=True)
class CaseGauges:
    """One scrape's reading of `cases`, `repair_jobs`, the stalled findings, the subscriptions and the
    checkpoint signers (`ok` False: PostgreSQL did not answer in time)."""

    ok: bool
    rows: tuple[tuple[str, str, int, int, int], ...] = ()
    seconds: float = 0.0
    jobs: tuple[tuple[str, int], ...] = ()
    stalled: tuple[tuple[str, str, str, int], ...] = ()
    subscriptions: tuple[tuple[str, int], ...] = ()
    checkpoints_late: int = 0
    checkpoint_signed_at: float | None = None


async def read_case_gauges(pool: Pool, *, timeout: float = CASES_TIMEOUT) -> CaseGauges:
    """Open cases by kind and status, with how many of them are overdue and breached, in one bounded query."""
    started = time.perf_counter()
    bound = waits.time_left(timeout)
    bound = timeout if bound is None else min(bound, timeout)
    try:
        async with asyncio.timeout(bound), pool.acquire() as conn, conn.transaction(readonly=True):
            # The server stops the statement itself too, so no scrape leaves a query running behind it.
            await conn.execute(f"SET LOCAL statement_timeout = {max(1, int(bound * 1000))}")
            rows = await conn.fetch(CASES_SQL, list(ENDED_STATUSES))
            jobs = await conn.fetch(JOBS_SQL, list(JOB_STATES_IN_PROGRESS))
            stalled = await conn.fetch(STALLED_SQL)
            subscriptions = await conn.fetch(SUBSCRIPTIONS_SQL)
            checkpoints = await conn.fetchrow(CHECKPOINTS_SQL, datetime.now(UTC))
    except Exception as exc:
        log.warning("metrics: the case gauges could not be read: %r", exc)
        return CaseGauges(ok=False, seconds=time.perf_counter() - started)
    assert checkpoints is not None
    signed = checkpoints["last_signed"]
    return CaseGauges(
        ok=True,
        rows=tuple((r["kind"], r["status"], r["open"], r["overdue"], r["breached"]) for r in rows),
        seconds=time.perf_counter() - started,
        jobs=tuple((r["state"], int(r["n"])) for r in jobs),
        stalled=tuple((r["subject"], r["reason"], r["kind"], r["n"]) for r in stalled),
        subscriptions=tuple((r["status"], r["n"]) for r in subscriptions),
        checkpoints_late=int(checkpoints["late"]),
        checkpoint_signed_at=float(signed) if signed is not None else None,
    )


class _Scrape(Collector):
    """What one scrape serves: the process's registry, then the case gauges it has just read."""

    def __init__(self, gauges: CaseGauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self._cases()

    def _cases(self) -> Iterator[GaugeMetricFamily]:
        g = self.gauges
        yield GaugeMetricFamily("danvan_cases_scrape_ok", "1 when the case gauges below were read from PostgreSQL "
                                "within the scrape's bound, 0 when they could not be", value=1 if g.ok else 0)
        yield GaugeMetricFamily("danvan_cases_scrape_duration_seconds", "Time to read the case gauges",
                                value=g.seconds)
        if not g.ok:
            return
        open_ = GaugeMetricFamily("danvan_cases_open", "Open cases (not ended), by kind and status",
                                  labels=["kind", "status"])
        overdue = GaugeMetricFamily("danvan_cases_overdue", "Open cases with a pending deadline recorded as "
                                    "breached (the list's overdue=true), by kind", labels=["kind"])
        breached = GaugeMetricFamily("danvan_cases_breached", "Open cases whose next due moment has passed, "
                                     "recorded or not yet, by kind", labels=["kind"])
        by_kind: dict[str, list[int]] = {}
        for kind, status, n, n_overdue, n_breached in g.rows:
            open_.add_metric([kind, status], n)
            totals = by_kind.setdefault(kind, [0, 0])
            totals[0] += n_overdue
            totals[1] += n_breached
        for kind, (n_overdue, n_breached) in sorted(by_kind.items()):
            overdue.add_metric([kind], n_overdue)
            breached.add_metric([kind], n_breached)
        yield open_
        yield overdue
        yield breached
        yield self._jobs()
        yield from self._ops()

    def _jobs(self) -> GaugeMetricFamily:
        jobs = GaugeMetricFamily("danvan_repair_jobs_in_progress", "Repair jobs not yet ended (`/v1/ops/jobs`), by "
                                 "state: awaiting approval, running, paused", labels=["state"])
        counts = dict(self.gauges.jobs)
        for state in JOB_STATES_IN_PROGRESS:
            jobs.add_metric([state], counts.get(state, 0))
        return jobs

    def _ops(self) -> Iterator[GaugeMetricFamily]:
        """What the operators' queue holds, the subscriptions by status, and the checkpoints' lateness."""
        g = self.gauges
        stalled = GaugeMetricFamily("danvan_stalled", "Open findings of the stalled scan, by subject (case, "
                                    "subscription, checkpoint), reason and case kind ('' for the others)",
                                    labels=["subject", "reason", "kind"])
        for subject, reason, kind, n in g.stalled:
            stalled.add_metric([subject, reason, kind], n)
        yield stalled
        subscriptions = GaugeMetricFamily("danvan_subscriptions", "Webhook subscriptions by status (failing: "
                                          "gave up on an event, waiting for a remedy)", labels=["status"])
        counted = dict(g.subscriptions)
        for status in sorted({*SUBSCRIPTION_STATUSES, *counted}):
            subscriptions.add_metric([status], counted.get(status, 0))
        yield subscriptions
        yield GaugeMetricFamily("danvan_checkpoints_late", "Checkpoint signers that have not signed for "
                                f"{LATE_INTERVALS} of their intervals", value=g.checkpoints_late)
        if g.checkpoint_signed_at is not None:
            yield GaugeMetricFamily("danvan_checkpoint_last_signed_timestamp_seconds", "When the latest checkpoint "
                                    "a signer noted was signed (Unix seconds)", value=g.checkpoint_signed_at)


def exposition(gauges: CaseGauges, accept: str | None) -> tuple[bytes, str]:
    """The process's registry and this scrape's case gauges, in the format the scraper asked for (`Accept`:
    OpenMetrics, or Prometheus' text format by default), with its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Scrape(gauges)), content_type
