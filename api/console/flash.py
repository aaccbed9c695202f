"""A message carried across a redirect: a form that changed something answers 303 to the page it came from
(post, redirect, get: reloading the page never sends the form again), and that page says what was done.

The message travels in a short-lived cookie of its own (HttpOnly, SameSite=Strict, the console's path), as
compressed JSON of codes and values, never of sentences: the page it lands on words it in the reader's
language. The cookie is signed with an HMAC bound to the session (`session.session_mac`), so a message the
console did not write, or one written for another session, is ignored. The page that shows it deletes it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import zlib
from typing import Any

from fastapi import Request
from starlette.responses import Response

from .session import root_of, session_mac

FLASH_COOKIE = "dv_flash"
#: Long enough to follow the redirect; a message nobody came back for is gone after this.
FLASH_MAX_AGE = 120
#: The largest cookie value written: browsers keep a cookie of 4,096 bytes with its name and attributes.
MAX_VALUE_BYTES = 3_600
_PURPOSE = "flash"


def _encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def _decode(value: str) -> dict[str, Any] | None:
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), bufsize=16_384)
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def fit(payload: dict[str, Any], list_key: str) -> dict[str, Any]:
    """`payload` made small enough for its cookie by dropping entries from the end of its list `list_key`;
    how many were dropped is kept in `<list_key>_left_out`."""
    items = list(payload.get(list_key) or [])
    left_out = 0
    while True:
        candidate = {**payload, list_key: items, f"{list_key}_left_out": left_out}
        if len(_encode(candidate)) <= MAX_VALUE_BYTES or not items:
            return candidate
        cut = max(1, len(items) // 10)
        items = items[:-cut]
        left_out += cut


def set_flash(response: Response, request: Request, payload: dict[str, Any]) -> None:
    """Leave `payload` for the next page this session opens (nothing without a session)."""
    value = _encode(payload)
    mac = session_mac(request, _PURPOSE, value)
    if mac is None:
        return
    response.set_cookie(FLASH_COOKIE, f"{value}.{mac}", max_age=FLASH_MAX_AGE, path=root_of(request) or "/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")


def take_flash(request: Request) -> dict[str, Any] | None:
    """The message left for this session, if any and if its signature holds (the page then deletes it)."""
    cookie = request.cookies.get(FLASH_COOKIE)
    if not cookie:
        return None
    value, _, mac = cookie.rpartition(".")
    expected = session_mac(request, _PURPOSE, value)
    if not value or expected is None or not hmac.compare_digest(expected, mac):
        return None
    return _decode(value)


def clear_flash(response: Response, request: Request) -> None:
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=root_of(request) or "/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
