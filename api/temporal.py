"""The API's Temporal client, made lazily so that the API starts (and says so on /readyz) while Temporal is down."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from danvan import waits
from danvan.client import connect

log = logging.getLogger("danvan.api")


class TemporalUnavailableError(Exception):
    """Temporal cannot be reached right now; the API answers 503 and the caller may retry."""


class TemporalConnection:
    """Holds the API's Temporal client and makes it on first use (`danvan.client.connect`, so with the
    project's data converter). A failed attempt is not remembered: the next `get()` tries again.

    A client given at construction (tests, an embedding process) is used as is and never replaced.
    """

    def __init__(self, address: str, namespace: str, *, client: Client | None = None, timeout: float = 2.0,
                 secret: bytes | None = None) -> None:
        self.address = address
        self.secret = secret  # of the payload codec; None: the installation's, from the environment
        self.namespace = namespace
        self.timeout = timeout
        self._client = client
        self._lock = asyncio.Lock()

    def _bound(self) -> float:
        """`timeout`, or a share of the request's time left when that is shorter (`danvan.waits`)."""
        return min(self.timeout, waits.time_left(self.timeout) or self.timeout)

    @property
    def client(self) -> Client | None:
        """The client if it has been made (no I/O)."""
        return self._client

    async def get(self) -> Client:
        """The client, connecting first if needed; TemporalUnavailableError within `timeout` seconds if not."""
        if self._client is not None:
            return self._client
        try:
            async with asyncio.timeout(self._bound()), self._lock:
                if self._client is None:
                    self._client = await connect(self.address, self.namespace, secret=self.secret)
                    log.info("connected to Temporal at %s (namespace %s)", self.address, self.namespace)
        except TimeoutError:
            raise TemporalUnavailableError(
                f"no answer from Temporal at {self.address} within {self.timeout:g} s"
            ) from None
        except Exception as exc:  # the SDK raises RuntimeError, RPCError...; all mean "not now"
            raise TemporalUnavailableError(f"cannot connect to Temporal at {self.address}: {exc}") from exc
        return self._client

    async def check(self) -> None:
        """Raise TemporalUnavailableError unless the frontend answers for our namespace within `timeout`.

        Describing the namespace is cheap (served from the frontend's cache) and, unlike a bare health
        check, also catches a namespace that does not exist.
        """
        client = await self.get()
        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=client.namespace), timeout=timedelta(seconds=self._bound())
            )
        except Exception as exc:
            raise TemporalUnavailableError(f"Temporal at {self.address} does not answer: {exc}") from exc

    async def warm_up(self) -> None:
        """Try to connect once, in the background at start; failures are only logged (readyz reports them)."""
        try:
            await self.get()
        except TemporalUnavailableError as exc:
            log.warning("%s; the API starts anyway and retries on use", exc)
