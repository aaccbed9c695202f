"""A refused command as a page shows it: the rule, what it means in the page's language, and its basis.

The case's message is written in English for the API and the logs; the page says what the rule means from the
catalogue (`LABELS["rule"]`), and gives the basis the refusal rests on:

1. the law the case's message opens with (`Luật Khiếu nại 2011, Điều 28: ...`), when it cites one;
2. else the rule's own basis below (`RULE_BASIS`), for the rules whose article the deciders name elsewhere;
3. else, for a refusal by the authority table, that table, with who may send the command;
4. else the law the case's kind is handled under (`domain.petitions.decider.LAW`, the plan's basis for a task).

The case's own message is kept under a "technical detail" fold, marked as English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.authority import Relation, Table
from domain.idempotency import RULE as KEY_REUSED
from workflows.case import INVALID

from ..routes.petitions import OPENING
from .i18n import LABELS, Translator

#: A citation the deciders open a message with.
_CITATION = re.compile(r"^((?:Luật|Nghị quyết|Nghị định|NQLT|TT|Thông tư|Kế hoạch)\b[^:]{0,160}):\s")
#: The basis of rules whose messages cite no article, by rule (the articles the deciders record for the step).
RULE_BASIS: dict[str, str] = {
    "complaint.no_extension": "Luật Khiếu nại 2011, Điều 28",
    "complaint.dialogue_required": "Luật Khiếu nại 2011, Điều 30",
    "dialogue.kind": "Luật Khiếu nại 2011, Điều 30",
    "dialogue.state": "Luật Khiếu nại 2011, Điều 30",
    "appeal.kind": "Luật Khiếu nại 2011, Điều 33",
    "appeal.already": "Luật Khiếu nại 2011, Điều 33",
    "appeal.to_body": "Luật Tố cáo 2018, Điều 37",
    "notify.publication_state": "Luật Tố cáo 2018, Điều 40",
    "notify.suspension_state": "Luật Tố cáo 2018, Điều 34 khoản 4",
    "notify.termination_state": "Luật Tố cáo 2018, Điều 34 khoản 4",
    "classify.especially_complex_reason": "Luật Tố cáo 2018, Điều 30",
    "denunciation.withdraw_after_conclusion": "Luật Tố cáo 2018, Điều 33 khoản 1",
    "split.state": "TT 05/2021/TT-TTCP (xử lý đơn)",
    "forward.state": "TT 05/2021/TT-TTCP (chuyển đơn)",
    "forward.same_body": "TT 05/2021/TT-TTCP (chuyển đơn)",
    "redirect.state": "TT 05/2021/TT-TTCP (hướng dẫn)",
    "archive.state": "Luật Lưu trữ 2024; TT 10/2022/TT-BNV",
    "front.already": "Luật MTTQ 2015, Chương V",
    "front.state": "Luật MTTQ 2015, Chương V",
    "report.not_requested": "Kế hoạch, mục III.2",
    "report.already": "Kế hoạch, mục III.2",
    "report.not_lead": "Kế hoạch, mục III.2",
    "review.not_submitted": "Kế hoạch, mục III.3",
    "urge.nothing_missing": "Kế hoạch, mục III.3",
    "urge.not_due": "Kế hoạch, mục III.3",
    "subplan.not_required": "Kế hoạch, mục III.2",
    "subplan.already": "Kế hoạch, mục III.2",
}
#: Rules of the content sent, not of the law: no legal basis is given for them.
TECHNICAL = frozenset({
    INVALID, "command.internal", "command.unknown", "command.kind", OPENING, KEY_REUSED, "text_nul", "text_control",
    "text_surrogate", "policy.missing_rule", "calendar.out_of_range", "not_found", "refused", "unavailable",
})
#: Rules that refuse a body named in the command (unknown, or not in force on the day).
_BODY_RULES = re.compile(r"^[a-z_]+\.body$")


def rule_text(t: Translator, rule: str) -> str | None:
    """What `rule` means in the page's language (None when the catalogue has nothing for it)."""
    rules = LABELS["rule"]
    head, _, tail = rule.partition(".")
    for key in (rule, head if head == "authority" else None, "body" if _BODY_RULES.match(rule) else None,
                tail if tail in ("extension_not_allowed", "extension_limit") else None):
        if key and key in rules:
            return t.label("rule", key)
    return None


def basis_of(rule: str, message: str, law: str | None) -> str | None:
    """The basis a refusal rests on (see the module's order); None for a rule of the content sent."""
    found = _CITATION.match(message or "")
    if found:
        return found.group(1)
    if rule in RULE_BASIS:
        return RULE_BASIS[rule]
    if rule in TECHNICAL or rule.startswith("authority.") or rule.startswith("repair."):
        return None
    return law or None


def allowed_text(t: Translator, table: Table, command: str) -> str | None:
    """Who may send `command` by the authority table, in the page's language."""
    try:
        entry = table.entry(command)
    except Exception:
        return None
    return ", ".join(t.label("relation", r.value) for r in Relation if r in entry.allowed)


@dataclass(frozen=True)
class Refusal:
    """A refusal as the page shows it."""

    command: str
    rule: str
    text: str | None
    basis: str | None
    allowed: str | None
    message: str
    #: The HTTP status the page answers with (403 for authority, 409 for the case's rules, 503, 404).
    status: int = 409
    #: A line of the catalogue to say instead of "refused" (the outcome unknown, the workflow gone).
    headline: str | None = None


def refusal(t: Translator, command: str, rule: str, message: str, *, table: Table | None, law: str | None,
            status: int | None = None, headline: str | None = None) -> Refusal:
    authority = rule.startswith("authority.")
    basis = t("commands.authority_basis") if authority else basis_of(rule, message, law)
    return Refusal(command=command, rule=rule, text=rule_text(t, rule), basis=basis,
                   allowed=allowed_text(t, table, command) if authority and table is not None else None,
                   message=message[:1000], status=status or (403 if authority else 409), headline=headline)


def law_of(kind: Any, case: Any) -> str | None:
    """The law the case's kind is handled under, for the refusals whose rule names none."""
    if kind is None or case is None:
        return None
    return str(kind.law(case)) or None
