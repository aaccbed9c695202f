"""The command forms of a page: each offered command (`api.console.offers`) as a form made from its model
(`api.console.forms`), with what was sent the last time and why it was refused, in the page's language.

Every form posts to `/console/cases/{case_id}/commands/{command}` (`api.console.commands`) with the session's CSRF
token and a nonce, which becomes the command's Idempotency-Key: the same form sent twice is applied once. A form
shown again after a refusal keeps its nonce, so a corrected form sent twice is still applied once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import Request

from eventstore import CaseRecord, RecordedEvent

from ..routes.petitions import actor_of
from ..tokens import Principal
from .forms import Group, Input, Options, choice_label, inputs_of
from .i18n import Translator, language_of
from .offers import Offer, kind_of, offers_on, probe_of
from .refusals import Refusal
from .session import root_of
from .stalled import FlashView
from .views import Reference, reference, today_local

#: A form's nonce: what `new_nonce` makes.
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def command_key(nonce: str | None) -> str | None:
    """The Idempotency-Key of a form's command, from its nonce (None without a well-formed one)."""
    return f"console-{nonce}" if nonce and NONCE.fullmatch(nonce) else None


@dataclass
class Attempt:
    """A form that was sent and is shown again: what it held, the problems of its inputs, the refusal."""

    command: str
    values: Mapping[str, str]
    nonce: str
    errors: dict[str, str] = field(default_factory=dict)
    form_errors: list[str] = field(default_factory=list)
    refusal: Refusal | None = None


@dataclass
class FormView:
    """One command's form as the template writes it."""

    key: str
    command: str
    title: str
    help: str
    action: str
    nonce: str
    inputs: list[Input | Group]
    open: bool = False
    invalid: bool = False
    form_errors: list[str] = field(default_factory=list)
    refusal: Refusal | None = None


def body_choices(ref: Reference, lang: str, on: date) -> list[tuple[str, str]]:
    """The bodies a form may name: those of the registry in force on `on`, by name (the code is the value)."""
    registry = ref.bodies
    if registry is None:
        return []
    found = []
    for code in registry.codes():
        body = registry.get(code)
        if body.is_effective(on):
            found.append((code, body.name_vi if lang == "vi" else body.name_en))
    return found


def _labelled(t: Translator, ref: Reference, name: str, values: Sequence[str], state: Any) -> list[tuple[str, str]]:
    """The values of a field the case decides, each with its name on the page."""
    return [(v, value_label(t, ref, name, v, state)) for v in values]


def value_label(t: Translator, ref: Reference, name: str, value: str, state: Any) -> str:
    if name == "body":
        return ref.body_name(value, t.lang)
    if name == "request_id":
        request = (getattr(state, "coordination", None) or {}).get(value)
        return f"{value} — {request.subject}" if request is not None else value
    if name == "period":
        calendar = getattr(getattr(state, "rules", None), "reports", None)
        try:
            period = calendar.period(value) if calendar is not None else None
        except ValueError:
            period = None
        if period is None:
            return value
        return f"{period.title_vi if t.lang == 'vi' else period.title_en} ({value})"
    return choice_label(t, name, value)


def form_view(request: Request, t: Translator, case_id: str, offer: Offer, state: Any, *, key: str | None = None,
              attempt: Attempt | None = None, back: str | None = None,
              shown: Mapping[str, str] | None = None) -> FormView:
    """The form of `offer` on the page of `case_id` (`back`: where its answer goes, the case page by default;
    `shown`: how the page names a fixed value, when the case's state is not at hand)."""
    ref = reference(request)
    mine = attempt if attempt is not None and attempt.command == offer.command else None
    options = Options(
        choices={name: _labelled(t, ref, name, values, state) for name, values in offer.choices.items()},
        fixed={name: (value, (shown or {}).get(name) or value_label(t, ref, name, value, state))
               for name, value in offer.fixed.items()},
        bodies=body_choices(ref, t.lang, today_local()),
    )
    action = f"{root_of(request)}/cases/{quote(case_id, safe='')}/commands/{offer.command}"
    if back:
        action += f"?back={quote(back, safe='')}"
    return FormView(
        key=key or offer.command, command=offer.command, title=t.label("command", offer.command),
        help=t.label("command_help", offer.command), action=action,
        nonce=mine.nonce if mine is not None else new_nonce(),
        inputs=inputs_of(offer.model, t, options, mine.values if mine else None, mine.errors if mine else None),
        open=mine is not None, invalid=bool(mine and (mine.errors or mine.form_errors)),
        form_errors=list(mine.form_errors) if mine else [], refusal=mine.refusal if mine else None,
    )


def case_forms(request: Request, case: CaseRecord | None, events: Sequence[RecordedEvent], principal: Principal,
               attempt: Attempt | None = None) -> list[FormView]:
    """The forms of the commands `principal` may send to `case` now, with the form last sent shown again."""
    if case is None or kind_of(case) is None:
        return []
    probe = probe_of(case, events, actor_of(principal), registry=reference(request).bodies)
    if probe is None:
        return []
    t = Translator(language_of(request))
    found = offers_on(probe)
    kind = probe.kind
    if attempt is not None and attempt.command not in {o.command for o in found} and attempt.command in kind.models:
        # Sent, refused, and not offered now: shown again all the same, so that what was typed is not lost.
        found.append(Offer(command=attempt.command, model=kind.models[attempt.command]))
    return [form_view(request, t, case.case_id, offer, probe.state, attempt=attempt) for offer in found]


def command_flash(payload: Mapping[str, Any] | None, t: Translator) -> FlashView | None:
    """The flash message of a command applied from a form (None for another kind of message, or none)."""
    if not payload or payload.get("kind") != "command":
        return None
    try:
        command = t.label("command", str(payload["command"]))
        events = [str(e) for e in payload.get("events") or []]
        status = t.label("status", str(payload.get("status") or "")) if payload.get("status") else "—"
        named = ", ".join(f"{t.label('event', e)} ({e})" for e in events)
        key = "commands.done" if events else "commands.done_nothing"
        lines = [t(key, command=command, case_id=str(payload["case_id"]), events=named, status=status)]
        if payload.get("duplicate"):
            lines.append(t("commands.duplicate"))
    except (KeyError, TypeError, ValueError):
        return None
    return FlashView(tone="good", lines=lines)
