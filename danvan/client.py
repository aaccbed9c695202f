"""The Temporal client of every process: `connect` makes it with the project's data converter (pydantic payloads
encrypted by the payload codec, `danvan.codec`, whose key comes from the installation's secret) and, when traces
are on, the tracing interceptors. The API, the CLI and the worker all get their client here; none of them
imports the workflows or the activities to do so."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from .codec import data_converter
from .keys import settings_key
from .settings import Settings
from .tracing import temporal_interceptors


def project_converter(secret: bytes | None = None) -> DataConverter:
    """The data converter of every client, worker and replayer: pydantic, with payloads encrypted under
    `secret` (default: the installation's, as `DANVAN_SECRET_KEY` or `$DANVAN_HOME/secret.key` give it)."""
    return data_converter(secret if secret is not None else settings_key(Settings.from_env()))


async def connect(address: str, namespace: str = "default", *, secret: bytes | None = None,
                  runtime: Runtime | None = None) -> Client:
    """A Temporal client with the project's data converter. Every client in the project comes from here.
    `runtime`: the SDK runtime whose telemetry the client and its workers report to (default: the SDK's). When
    traces are on (`danvan.tracing`), the client and its workers carry them through Temporal."""
    return await Client.connect(address, namespace=namespace, data_converter=project_converter(secret),
                                runtime=runtime, interceptors=temporal_interceptors())
