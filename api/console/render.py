"""Rendering the console's pages: one Jinja2 environment (autoescape on for every template), and the context
every page gets (language, catalogue, navigation, the signed-in principal, the sign-out form's CSRF token).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..queries import LOCAL_TZ
from ..tokens import Principal
from .i18n import Lang, Translator, language_of
from .nav import nav_for
from .session import root_of, session_csrf
from .views import as_date, as_datetime, reference, stall_text, subscription_reason

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Pages that show case data are not kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template, whatever its name: nothing from a case may become markup
    undefined=StrictUndefined,  # a misspelt variable is an error in the tests, not a blank on a page
    trim_blocks=True,
    lstrip_blocks=True,
)


def environment() -> Environment:
    return _environment


def format_size(size: int, lang: Lang) -> str:
    """A file's size as people read it: `340 B`, `12,5 KB`, `3,2 MB` in Vietnamese (decimal comma), with a
    decimal point in English (1 KB = 1,000 bytes)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            text = f"{size / scale:.1f}"
            return f"{text.replace('.', ',') if lang == 'vi' else text} {unit}"
    return f"{size} B"


def format_datetime(value: datetime | str | None, lang: Lang) -> str:
    """An instant in Vietnam time: `30/06/2026 17:00` in Vietnamese, `2026-06-30 17:00` in English."""
    moment = as_datetime(value)
    if moment is None:
        return "—"
    if moment.tzinfo is not None:
        moment = moment.astimezone(LOCAL_TZ)
    return moment.strftime("%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M")


def format_date(value: date | str | None, lang: Lang) -> str:
    day = as_date(value.astimezone(LOCAL_TZ) if isinstance(value, datetime) and value.tzinfo else value)
    if day is None:
        return "—"
    return day.strftime("%d/%m/%Y" if lang == "vi" else "%Y-%m-%d")


def url_with(request: Request, path: str | None = None, **params: str | None) -> str:
    """The current page's URL (or `path` under the console) with `params` replaced (None removes one)."""
    query: dict[str, str] = dict(request.query_params) if path is None else {}
    for name, value in params.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    target = request.url.path if path is None else root_of(request) + path
    return target + ("?" + urlencode(query) if query else "")


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    section: str | None = None,
    principal: Principal | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The page `template` with the shared context; `principal` defaults to the one the request signed in as."""
    lang = language_of(request)
    t = Translator(lang)
    ref = reference(request)
    if principal is None:
        principal = getattr(request.state, "principal", None)
    other: Lang = "en" if lang == "vi" else "vi"
    shared: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "t": t,
        "root": root_of(request),
        "principal": principal,
        "nav": nav_for(principal),
        "section": section,
        "csrf": session_csrf(request) if principal is not None else None,
        "switch_lang_url": url_with(request, lang=other),
        "when": lambda value: format_datetime(value, lang),
        "day": lambda value: format_date(value, lang),
        "file_size": lambda value: format_size(int(value), lang),
        "body_name": lambda code: ref.body_name(code, lang),
        "stall_text": lambda stall: stall_text(stall, t),
        "sub_reason": lambda reason: subscription_reason(reason, t),
        "url_with": lambda **params: url_with(request, **params),
        "q": lambda value: quote(str(value), safe=""),
    }
    html = environment().get_template(template).render({**shared, **(context or {})})
    return HTMLResponse(html, status_code=status, headers=dict(headers) if headers else None)
