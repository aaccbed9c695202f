"""Calls out of danvan (webhooks): which URLs may be called, and an HTTP client that never calls another.

A webhook URL is given by a system around danvan, so it must not become a way into the network danvan runs in
(server-side request forgery). The rules, checked when a subscription is made or changed (`check_url`, a 422
naming the rule) and again on every connection a delivery opens (`GuardedBackend`), since a name may resolve
elsewhere by then:

- only `http` and `https`, with a host, without user name or password (they would be shown in every answer);
- the host is resolved, and every address it resolves to must be public: no loopback, private, link-local,
  shared (100.64/10), multicast, reserved or unspecified address, IPv4 inside IPv6 included;
- nor an address of danvan's own services (the API, Temporal, PostgreSQL), public or not;
- unless the host is allowed (`DANVAN_WEBHOOK_ALLOW_HOSTS`: a host name, or IP networks that every address
  falls in), for a receiver on the same machine or network on purpose.

The client (`webhook_client`) follows no redirect (a 3xx is a failed delivery: the next URL is not checked, and
may be anywhere), reads no proxy from the environment, and has a timeout on every call. The connection is made
to the address that was checked, by the host name, so TLS verifies the certificate of the name as usual.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from danvan.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL = 2000
#: IPv4's shared address space (carrier-grade NAT) is not `is_private` but is no more reachable from outside.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class UrlRefused(ValueError):
    """A URL that may not be called: `rule` names the rule (for a 422's `fields`), the message says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def address_problem(address: IPAddress) -> str | None:
    """Why `address` is not public (a word for the rule), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return address_problem(mapped)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "private"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


_WORDS = {"loopback": "a loopback address", "link_local": "a link-local address", "multicast": "a multicast address",
          "unspecified": "the unspecified address", "private": "a private address", "reserved": "a reserved address"}


@dataclass(frozen=True)
class OutboundPolicy:
    """Which hosts may be called although they are not public, and which are danvan's own."""

    #: Host names (lower case) and IP networks allowed whatever their addresses.
    allow_hosts: tuple[str, ...] = ()
    #: The hosts of danvan's own services (names or addresses), refused unless allowed.
    own_hosts: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        own = [settings.api_host, settings.temporal_host]
        if settings.database_url:
            host = urlsplit(settings.database_url).hostname
            if host:
                own.append(host)
        return cls(allow_hosts=settings.webhook_allow_hosts, own_hosts=tuple(dict.fromkeys(own)))

    @property
    def _networks(self) -> list[IPNetwork]:
        out = []
        for entry in self.allow_hosts:
            try:
                out.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        return out

    def allows(self, host: str, addresses: Iterable[IPAddress]) -> bool:
        """Whether `host` is allowed by name, or every one of its `addresses` by network."""
        if host.lower().rstrip(".") in self.allow_hosts:
            return True
        networks = self._networks
        found = list(addresses)
        return bool(found) and bool(networks) and all(any(a in n for n in networks if a.version == n.version)
                                                      for a in found)

    async def own_addresses(self) -> set[IPAddress]:
        """The addresses of danvan's own services (a service bound to every interface: this machine's)."""
        out: set[IPAddress] = set()
        for host in self.own_hosts:
            if host in ("0.0.0.0", "::"):
                out.update(await _resolve_quietly(socket.gethostname()))
                continue
            out.update(await _resolve_quietly(host))
        return out

    async def check(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of `host` a call may connect to; UrlRefused when any of them is refused."""
        addresses = await resolve(host, port)
        if self.allows(host, addresses):
            return addresses
        own = await self.own_addresses()
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                raise UrlRefused(f"url_{problem}", f"the URL's host {host} resolves to {address}, {_WORDS[problem]}; "
                                 "only public addresses may be called (DANVAN_WEBHOOK_ALLOW_HOSTS allows others)")
            if address in own:
                raise UrlRefused("url_own_service", f"the URL's host {host} resolves to {address}, an address of "
                                 "danvan's own services, which may not be called (DANVAN_WEBHOOK_ALLOW_HOSTS)")
        return addresses


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an address literal is itself); UrlRefused when it resolves to none."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused("url_unresolvable", f"the URL's host {host} does not resolve: {exc}") from None
    out: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    if not out:
        raise UrlRefused("url_unresolvable", f"the URL's host {host} resolves to no address")
    return out


async def _resolve_quietly(host: str) -> list[IPAddress]:
    try:
        return await resolve(host, 0)
    except UrlRefused:
        return []


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int


def parse_url(url: str) -> Target:
    """The parts of a webhook URL that are checked; UrlRefused for a URL that breaks a rule of its form."""
    if len(url) > MAX_URL:
        raise UrlRefused("url_too_long", f"the URL must be at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise UrlRefused("url_invalid", "the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("url_invalid", f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("url_scheme", f"the URL must be http:// or https://, not {parts.scheme or 'without a scheme'}")
    if not parts.hostname:
        raise UrlRefused("url_host", "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("url_credentials", "the URL must not carry a user name or password: they would be shown "
                         "wherever the subscription is; authenticate the request by its signature instead")
    if parts.fragment:
        raise UrlRefused("url_fragment", "the URL must not have a #fragment (it is never sent)")
    return Target(url=url, scheme=parts.scheme, host=parts.hostname,
                  port=port if port is not None else (443 if parts.scheme == "https" else 80))


async def check_url(url: str, policy: OutboundPolicy) -> Target:
    """`url` if it may be called under `policy` now; UrlRefused naming the rule otherwise."""
    target = parse_url(url)
    await policy.check(target.host, target.port)
    return target


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but a connection is opened only to a host whose addresses `policy` lets
    through, to one of those very addresses (never resolved twice)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.check(host, port)
        except UrlRefused as refused:
            raise httpcore.ConnectError(f"{refused.rule}: {refused.message}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(str(address), port, timeout=timeout,
                                                       local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through `GuardedBackend`."""

    def __init__(self, policy: OutboundPolicy, *, max_connections: int) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to give the network backend: the same pool, with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=max_connections,
            max_keepalive_connections=max_connections, keepalive_expiry=30.0, http1=True, http2=False,
            network_backend=GuardedBackend(policy),
        )


def webhook_client(policy: OutboundPolicy, *, timeout: float = 10.0, max_connections: int = 100) -> httpx.AsyncClient:
    """The client deliveries are sent with: guarded connections, no redirects, no proxy, a timeout on each call."""
    return httpx.AsyncClient(transport=_GuardedTransport(policy, max_connections=max_connections),
                             follow_redirects=False, trust_env=False, timeout=httpx.Timeout(timeout),
                             headers={"User-Agent": "danvan-webhooks/1"})
