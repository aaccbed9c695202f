"""Who may call what: the bearer-token dependency, the role check and the case scoping rule.

Roles (the README's "The HTTP API"):
- `intake`: a back-office system that sends petitions; its token's label is the system's name.
- `body`: the staff of one body (the token's `body_id`); reads the cases it has a tie to (`may_access_case`) and
  sends the commands the authority table gives it (`domain.authority`).
- `supervisor`: reads everything. `operator`: repairs (and reads everything). `admin`: issues tokens.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.authority import CaseFacts, readers
from eventstore import CaseRecord, Pool

from .errors import ApiError
from .tokens import ROLES, Principal, Role, authenticate, hash_token

bearer = HTTPBearer(
    auto_error=False,  # a missing token is answered by `require`, in the API's own error format
    bearerFormat="dv_...",
    description="A token issued by `danvan token create`, `POST /v1/tokens`, or printed by `make up`.",
)

#: Roles that read every case.
SEE_ALL: frozenset[Role] = frozenset({"supervisor", "operator", "admin"})


class TokenCache:
    """Successful token lookups, kept `ttl` seconds so that a request does not always cost a query.

    Bounded (least recently used first out). Only active tokens are cached, keyed by the token's hash, so
    a revoked token stops working at most `ttl` seconds after `revoked_at` is set.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 1024) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        expires, principal = entry
        if time.monotonic() >= expires:
            del self._entries[token_hash]
            return None
        self._entries.move_to_end(token_hash)
        return principal

    def put(self, token_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        self._entries[token_hash] = (time.monotonic() + self.ttl, principal)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _unauthorized(message: str, error: str | None = None) -> ApiError:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


async def principal_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The principal of the request's bearer token, or a 401."""
    if credentials is None:
        if request.headers.get("Authorization"):
            raise _unauthorized("the Authorization header must be `Bearer <token>`", "invalid_request")
        raise _unauthorized("this endpoint needs a token: send `Authorization: Bearer <token>`")
    token = credentials.credentials.strip()
    cache: TokenCache = request.app.state.token_cache
    token_hash = hash_token(token)
    principal = cache.get(token_hash)
    if principal is None:
        pool: Pool = request.app.state.store.pool
        principal = await authenticate(pool, token)
        if principal is None:
            raise _unauthorized("unknown or revoked token", "invalid_token")
        cache.put(token_hash, principal)
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the request and admits only `roles` (all roles when none given).

    No token, a malformed header or an unknown/revoked token: 401 with `WWW-Authenticate: Bearer`.
    Another role: 403 naming the roles allowed. Returns the `Principal`.
    """
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"require(): unknown role {role!r}; roles are {', '.join(ROLES)}")
    allowed: tuple[Role, ...] = roles or ROLES

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        principal = await principal_of(request, credentials)
        if principal.role not in allowed:
            raise ApiError(
                403,
                "forbidden",
                f"a {principal.role!r} token may not do this; allowed roles: {', '.join(allowed)}",
            )
        return principal

    dependency.__name__ = f"require_{'_'.join(allowed)}"
    return dependency


def may_access_case(principal: Principal, case: CaseRecord) -> bool:
    """Whether `principal` may read `case` (who may send it a command is the kind's authority table,
    `domain.authority`, checked by the command route). The rule:

    - `supervisor`, `operator`, `admin`: every case.
    - `body`: the cases whose `lead_body` is its `body_id` or whose `bodies` contain it, and every case it has
      a tie to in the case's authority facts (`domain.authority.readers`: receiving, lead, coordinating, the
      Front, the commission, the lead's superior), so a body that may send a command can read the case.
      `api.queries` lists by the same rule in SQL.
    - `intake`: the cases it sent, i.e. whose `source` equals its token's label (the sending system's name).
    """
    if principal.role in SEE_ALL:
        return True
    if principal.role == "body":
        body = principal.body_id
        if body is None:
            return False
        if case.lead_body == body or body in case.bodies:
            return True
        stored = case.summary.get("authority")
        return isinstance(stored, dict) and body in readers(CaseFacts.model_validate(stored))
    if principal.role == "intake":
        return case.source is not None and case.source == principal.label
    return False


def check_case_access(principal: Principal, case: CaseRecord) -> None:
    """Raise 403 unless `principal` may touch `case` (the rule is `may_access_case`)."""
    if not may_access_case(principal, case):
        if principal.role == "body":
            message = f"case {case.case_id} is not a case of body {principal.body_id!r}"
        elif principal.role == "intake":
            message = f"case {case.case_id} was not sent by {principal.label!r}"
        else:
            message = f"a {principal.role!r} token may not access case {case.case_id}"
        raise ApiError(403, "forbidden", message)
