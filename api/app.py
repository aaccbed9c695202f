"""The FastAPI application: `create_app` wires settings, the event store and Temporal into the routes.

Building the app does no I/O; the lifespan opens the PostgreSQL pool (the API does not start without
PostgreSQL) and makes the Temporal client lazily (the API starts while Temporal is down, `/readyz` says
so, and the next use retries). Everything routes need is on `app.state`: `settings`, `store`, `temporal`
(an `api.temporal.TemporalConnection`) and `token_cache`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
from fastapi import FastAPI
from temporalio.client import Client

from danvan.codec import EncryptionCodec
from danvan.keys import check_installation_secret, settings_key
from danvan.metrics import observe_appends
from danvan.settings import Settings
from danvan.tracing import api_telemetry
from eventstore import EventStore
from eventstore.blobs import PostgresBlobStore
from integrity.checkpoints import CheckpointLog
from integrity.lookup import SignedHeads

from . import errors, openapi
from .attachments import AttachmentFiles
from .auth import TokenCache
from .console import mount_console
from .deadline import RequestDeadline
from .feed import CursorCodec, FeedWatcher
from .identities import IdentityVault
from .limits import BodyLimits
from .metrics import RequestMetrics
from .routes import attachments, cases, codec, events, health, identities, jobs, ops, petitions, plan, reports, tokens
from .routes import imports as imports_route
from .routes import metrics as metrics_route
from .routes import subscriptions as subscriptions_route
from .subscriptions import SecretBox
from .temporal import TemporalConnection

DESCRIPTION = """\
The case engine of the provincial Mass Mobilization Commission (Ban Dân vận Tỉnh ủy): plan tasks and
citizen petitions as event-sourced Temporal workflows.

Every request but `/healthz` and `/readyz` carries `Authorization: Bearer <token>`. Roles: `intake`
(a back-office system), `body` (staff of one body), `supervisor` (reads everything), `operator`
(repairs), `admin` (issues tokens). No token: 401; wrong role or body: 403.

Every error answer has one shape: `{"error": {"code", "message", "fields"?}}`; on 422 `fields` names
each bad field and the rule it breaks.
"""


def upload_limit(settings: Settings) -> int:
    """The most bytes one upload may send: as many files as it may carry, each of the largest size, a JSON part
    of the body limit, and room for the parts' headers."""
    return settings.attachment_max_files * (settings.attachment_max_bytes + 4096) + settings.max_body_bytes


def create_app(
    settings: Settings,
    database_url: str,
    *,
    temporal_client: Client | None = None,
    token_cache_ttl: float = 5.0,
    temporal_timeout: float | None = None,
) -> FastAPI:
    """The API app. Pass `temporal_client` to use an existing client (it is then never replaced);
    `token_cache_ttl` bounds how long a revoked token keeps working (seconds; 0 disables the cache).

    Every request is answered within `settings.request_timeout` (`api.deadline`); each wait under it (a
    connection, a checkout, a statement, connecting to Temporal) is bounded by a share of that, and
    `temporal_timeout` (seconds) when given.
    """
    wait_bound = settings.request_timeout * 0.8

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await EventStore.open(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                                      timeout=wait_bound)
        secret = settings_key(settings)
        try:
            # Another secret than the installation's: the API refuses to start (`danvan.keys`).
            await check_installation_secret(store.pool, secret)
        except asyncpg.UndefinedTableError:
            pass  # not migrated yet: `/readyz` says so, and nothing is served that needs the secret
        except BaseException:
            await store.close()
            raise
        temporal = TemporalConnection(
            settings.temporal_address,
            settings.temporal_namespace,
            client=temporal_client,
            timeout=temporal_timeout if temporal_timeout is not None else min(2.0, wait_bound),
            secret=secret,
        )
        app.state.store = store
        app.state.temporal = temporal
        app.state.vault = IdentityVault(store.pool, secret)
        app.state.attachments = AttachmentFiles(store.pool, PostgresBlobStore(store.pool), secret)
        app.state.codec = EncryptionCodec(secret)
        app.state.feed_cursors = CursorCodec(secret)
        app.state.feed_watcher = FeedWatcher(store.pool)
        app.state.webhook_secrets = SecretBox(secret)
        warm_up = asyncio.create_task(temporal.warm_up(), name="danvan-api-temporal-warm-up")
        try:
            yield
        finally:
            warm_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warm_up
            await app.state.feed_watcher.close()
            # A Temporal client holds no resource that needs closing; dropping it is enough.
            await store.close()

    app = FastAPI(
        title="danvan",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        telemetry=api_telemetry(),  # FastAPI's own HTTP spans, when traces are on (`danvan.tracing`)
    )
    app.state.settings = settings
    app.state.signed_heads = SignedHeads(CheckpointLog(settings.checkpoint_log, settings.checkpoint_key))
    app.state.token_cache = TokenCache(ttl=token_cache_ttl)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(cases.router)
    app.include_router(events.router)
    app.include_router(tokens.router)
    app.include_router(petitions.router)
    app.include_router(attachments.router)
    app.include_router(reports.router)
    app.include_router(plan.router)
    app.include_router(imports_route.router)
    app.include_router(ops.router)
    app.include_router(jobs.router)  # the repair jobs, /v1/ops/jobs
    app.include_router(identities.router)
    app.include_router(subscriptions_route.router)  # webhooks out
    app.include_router(codec.router)  # Temporal's remote codec, /codec (and /console/codec: see CodecGate)
    mount_console(app)  # the web console, /console
    openapi.install(app)  # the OpenAPI as the server enforces it: the command union (`api.openapi`)
    app.add_middleware(codec.CodecGate, origins=codec.ui_origins(settings.temporal_ui_url))
    # Before any route reads a body: its size, type, encoding, depth and text (`api.limits`).
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       upload_limit=upload_limit(settings))
    # Outermost but for Starlette's own last-resort handler: the deadline covers authentication too. The bulk
    # retries pace themselves over many cases on purpose, and the plan import starts a case per task; each of
    # their RPCs is still bounded.
    app.add_middleware(RequestDeadline, timeout=settings.request_timeout,
                       exempt={("POST", "/v1/ops/retry"), ("POST", "/console/stalled/retry-all"),
                               # Starts a case per task of the plan (43 for the shipped one), idempotently.
                               ("POST", "/v1/plan/import"),
                               # Starts a case per line, each bounded, a few at a time.
                               ("POST", "/v1/import/cases")})
    if settings.trusted_proxies:
        # `X-Forwarded-Proto` and `X-Forwarded-For` believed from these peers only (the console's cookie is
        # Secure behind an HTTPS proxy); uvicorn itself is run without proxy headers (`danvan api`).
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    # Metrics (`api.metrics`): `/metrics` for a supervisor, operator or admin token; requests counted outermost,
    # so the deadline's 503 and the console's answers are counted too; this process's appends counted as well.
    app.include_router(metrics_route.router)
    app.add_middleware(RequestMetrics)
    observe_appends()
    return app
