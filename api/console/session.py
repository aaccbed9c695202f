"""Signing in to the console: the session cookie, who it names, and the CSRF tokens of its forms.

Signing in checks the token with the API's own code (`api.auth.principal_of`: the same token table, revocation
and roles) and creates a server-side session (`api.sessions`): the cookie carries only its random id (HttpOnly,
SameSite=Strict, path `/console`, Secure when the console is reached over HTTPS), never the token. Every request
resolves the cookie in `session_principal`, the one place that does: signed out, idle for
`DANVAN_SESSION_IDLE` seconds, past `DANVAN_SESSION_ABSOLUTE` seconds after sign-in, or its token revoked, the
session opens nothing, so the console grants exactly what the API grants to that token, and no longer.

HTTPS is the request's own scheme, or `X-Forwarded-Proto: https` from a proxy named in `DANVAN_TRUSTED_PROXIES`
(uvicorn's proxy-headers middleware, installed by `api.app` for those peers only); the header from anyone else
changes nothing.

Every form that changes something is a POST carrying a CSRF token: an HMAC, under a key derived from the
server's sealing key, of the session cookie (or, for the sign-in form, of a random nonce kept in a cookie of
its own). A page of another site can neither read the cookie nor compute the HMAC; SameSite=Strict keeps the
browser from sending the cookie on a cross-site request in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from danvan.settings import Settings

from ..auth import principal_of
from ..errors import ApiError
from ..identities import IdentityVault
from ..sessions import create_session, end_session, resolve_session
from ..tokens import ROLES, Principal, Role, hash_token

SESSION_COOKIE = "dv_session"
#: The nonce the sign-in form's CSRF token is made from (there is no session yet to bind it to).
LOGIN_COOKIE = "dv_login"
LOGIN_MAX_AGE = 3600
#: A form body larger than this is refused. The largest field is a repair's reason: 2,000 characters, which
#: percent-encoded Vietnamese (up to 3 bytes a character, 3 characters a byte) makes up to 18 KiB.
MAX_FORM_BYTES = 32 * 1024
#: What a token may look like before it is looked up (issued tokens are `dv_` + urlsafe base64).
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_\-.~+/=]{1,512}")
#: What a session id looks like (`secrets.token_urlsafe`); anything else is not looked up.
_SESSION_SHAPE = re.compile(r"[A-Za-z0-9_\-]{20,100}")


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form. `ended`: a cookie was sent
    but its token is unknown or revoked."""

    def __init__(self, *, ended: bool = False) -> None:
        super().__init__("sign in required")
        self.ended = ended


class ConsoleError(Exception):
    """Answer with an error page: `status`, and a catalogue message with its values."""

    def __init__(self, status: int, message: str, **values: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.values = values


def root_of(request: Request) -> str:
    """The console's root path (`/console`, behind any root path the whole app is served under)."""
    root: str = request.scope.get("root_path", "")
    return root


def _key(request: Request) -> bytes:
    """The CSRF key: derived from the sealing key, so every API process of a deployment agrees on it."""
    key: bytes | None = getattr(request.app.state, "console_csrf_key", None)
    if key is None:
        vault: IdentityVault = request.app.state.vault
        key = hmac.new(vault.key, b"danvan console csrf v1", hashlib.sha256).digest()
        request.app.state.console_csrf_key = key
    return key


def _mac(request: Request, purpose: str, value: str) -> str:
    return hmac.new(_key(request), f"{purpose}\x1f{value}".encode(), hashlib.sha256).hexdigest()


def session_csrf(request: Request) -> str | None:
    """The CSRF token of the forms of a signed-in page (None without a session cookie)."""
    session = request.cookies.get(SESSION_COOKIE)
    return _mac(request, "session", session) if session else None


def login_csrf(request: Request, nonce: str) -> str:
    return _mac(request, "login", nonce)


def session_mac(request: Request, purpose: str, value: str) -> str | None:
    """An HMAC of `value` for `purpose`, bound to this session's cookie (None without a session): what the
    console signs for itself and must find unchanged when it comes back (a flash message)."""
    session = request.cookies.get(SESSION_COOKIE)
    return _mac(request, purpose, f"{session}\x1f{value}") if session else None


def _same(expected: str | None, given: str | None) -> bool:
    return expected is not None and given is not None and hmac.compare_digest(expected, given)


def check_session_csrf(request: Request, given: str | None) -> None:
    """Refuse (403 page) a form whose CSRF token is not the one of this session."""
    if not _same(session_csrf(request), given):
        raise ConsoleError(403, "error.csrf")


def check_login_csrf(request: Request, given: str | None) -> bool:
    """Whether the sign-in form carries the token of the nonce cookie it was served with."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    return nonce is not None and _same(login_csrf(request, nonce), given)


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def start_session(response: Response, request: Request, token: str) -> None:
    """Sign in as `token` (already checked): a new server-side session, its id in the cookie."""
    settings = _settings(request)
    session_id = await create_session(request.app.state.store.pool, hash_token(token.strip()),
                                      absolute=settings.session_absolute)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=settings.session_absolute,
                        path=root_of(request) or "/", httponly=True, samesite="strict", secure=_secure(request))


async def end_request_session(request: Request) -> None:
    """Sign out: the session of the request's cookie ends on the server (a replayed cookie opens nothing)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await end_session(request.app.state.store.pool, session_id)


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path=root_of(request) or "/", httponly=True, samesite="strict",
                           secure=_secure(request))


def set_login_nonce(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_MAX_AGE, path=root_of(request) or "/",
                        httponly=True, samesite="strict", secure=_secure(request))


def clear_login_nonce(response: Response, request: Request) -> None:
    response.delete_cookie(LOGIN_COOKIE, path=root_of(request) or "/", httponly=True, samesite="strict",
                           secure=_secure(request))


async def principal_of_token(request: Request, token: str) -> Principal | None:
    """The principal of `token` by the API's rules, or None when it is malformed, unknown or revoked."""
    token = token.strip()
    if not _TOKEN_SHAPE.fullmatch(token):
        return None
    try:
        return await principal_of(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))
    except ApiError as exc:
        if exc.status == 401:
            return None
        raise


async def session_principal(request: Request) -> Principal | None:
    """Who the session cookie signs in as: the one place a session is resolved (None: no cookie, or a session
    that is unknown, signed out, idle too long, past its absolute expiry, or whose token was revoked)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or not _SESSION_SHAPE.fullmatch(session_id):
        return None
    session = await resolve_session(request.app.state.store.pool, session_id, idle=_settings(request).session_idle)
    return session.principal if session is not None else None


def signed_in(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the signed-in principal, if its role is one of `roles` (all roles when none given).

    No session: `SignInRequired` (a redirect to the sign-in form). Another role: a 403 page naming the roles
    that may open the page.
    """
    allowed: tuple[Role, ...] = roles or ROLES

    async def dependency(request: Request) -> Principal:
        principal = await session_principal(request)
        if principal is None:
            raise SignInRequired(ended=SESSION_COOKIE in request.cookies)
        if principal.role not in allowed:
            raise ConsoleError(403, "error.role", role=principal.role, roles=", ".join(allowed))
        request.state.principal = principal
        return principal

    dependency.__name__ = f"console_{'_'.join(allowed)}"
    return dependency


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form's fields (the last value of a repeated name), text in NFC. The console's forms are
    all url-encoded; another body is refused with a 415 page, one over `MAX_FORM_BYTES` with 413. An empty body
    is a form without fields."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleError(413, "error.too_large")
    if not body:
        return {}  # an empty form: every field missing (a CSRF check then refuses it)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ConsoleError(415, "error.form_type")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(400, "error.form_type") from None
    return {name: unicodedata.normalize("NFC", value) for name, value in pairs}
