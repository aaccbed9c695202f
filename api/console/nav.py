"""The console's navigation: the one list of its pages, with the roles each is for.

EXTENSION POINT. To add a page:

1. write its route on an `APIRouter` and include that router in `api.console.app.build_console` (or add the
   route to `api.console.pages`), guarded by `signed_in(...)` with the page's roles;
2. write its template in `api/console/templates/`, starting with `{% extends "base.html" %}` and filling
   `{% block content %}` (the frame, navigation, language switch and sign-out come from `base.html`);
3. put its strings in `api/console/i18n.py` (Vietnamese and English);
4. add a `NavItem` to `NAV` below. Items are shown in order, to the roles they name.

The stalled-cases queue (`api.console.stalled`) was added this way: its own router, its templates
(`stalled.html`, `stalled_reset.html`), its `stalled.*` strings and the last item below.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tokens import Principal, Role

#: Who reads cases through the console: everyone but an intake system (a sending system has no staff here).
READERS: tuple[Role, ...] = ("body", "supervisor", "operator", "admin")
#: Who opens the stalled-cases queue (the roles of `GET /v1/ops/stalled`); of them, operators and admins repair.
QUEUE_ROLES: tuple[Role, ...] = ("supervisor", "operator", "admin")


@dataclass(frozen=True)
class NavItem:
    """One entry of the navigation bar."""

    #: The page's section name: the page that renders with `section=...` marks its item `aria-current`.
    section: str
    #: Its label, a key of the catalogue (`api.console.i18n.MESSAGES`).
    label: str
    #: Its path under the console's root (`/console`).
    path: str
    #: The roles that see the item (and may open the page).
    roles: tuple[Role, ...]


#: Who has a work queue (`api.console.queue`): the staff of a body.
BODY_ROLES: tuple[Role, ...] = ("body",)

NAV: tuple[NavItem, ...] = (
    NavItem("queue", "nav.queue", "/queue", BODY_ROLES),
    NavItem("cases", "nav.cases", "/cases", READERS),
    NavItem("plan", "nav.plan", "/plan", READERS),
    NavItem("reports", "nav.reports", "/reports", READERS),
    NavItem("stalled", "nav.stalled", "/stalled", QUEUE_ROLES),
    NavItem("ops", "nav.ops", "/ops", QUEUE_ROLES),
)


def nav_for(principal: Principal | None) -> list[NavItem]:
    """The items `principal` may open (none before signing in)."""
    if principal is None:
        return []
    return [item for item in NAV if principal.role in item.roles]
