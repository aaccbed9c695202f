"""Who may send each command of a case: one table per kind of case, as data, and one check.

The deciders (`domain.petitions.decider`, `domain.plan_tasks`) hold the legal and state rules: what may happen
to a case now. This module holds the other half: who may make it happen. A command is allowed when the sender
holds at least one of the relations its table entry lists. A relation is either a tie of the sender's body to
the case (it received the case, leads it, coordinates it, supervises it for the Front, is the commission or the
lead's superior) or, for tokens that belong to no body, the role itself (supervisor, operator, admin, and the
system's own actors).

The facts a relation is read from (`CaseFacts`) come from the case's state (`petition_facts`, `task_facts`). The
workflow checks them in its Update validator, on the state it holds; the API checks them before it sends the
Update, on the copy the `cases` projection keeps (`CaseRow.summary["authority"]`). A refusal is an
`Unauthorized` error whose rule is `authority.<command>`.

Where the relations come from:

- intake: an `intake` token whose label is the case's `source` (the system that sent it);
- receiving: the body the petition was addressed to (`intake.receiving_body`);
- lead: the body competent at the case's current instance (a petition's `lead_body`; a plan task's lead bodies,
  and the district instances of a lead that names a family of district bodies);
- coordinating: a body asked for its part by a coordination request (and, for a plan task, the coordinating
  bodies the plan names); on a `respond`, only a body asked in that very request;
- front: the supervising Fatherland Front committee (`FRONT_BODY`, Ủy ban MTTQ tỉnh) and any successor;
- commission: the Ban Dân vận (`COMMISSION_BODY`), the bodies that succeeded it and their divisions; for a plan
  task, the commission that issued the plan and the division that monitors it, with their successors;
- superior: the `parent` of the lead body in the case's recorded body registry, and that parent's successors.

A command that speaks for a body (`respond`, and a plan task's `acknowledge`, `record_progress`,
`submit_report`, `submit_subplan`, whose `body` field names who answers) gives a body's own ties (receiving,
lead, coordinating) only to the staff of that very body: a body acts for itself. Pure: standard library,
pydantic and `domain` only.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import plan_tasks as pt
from .bodies import BodyRegistry
from .common import Actor, DomainError
from .front_supervision import FRONT_BODY
from .petitions.commands import COMMAND_TYPES as PETITION_COMMANDS
from .petitions.model import PetitionState

#: The commission of the Provincial Party Committee this engine serves (Ban Dân vận Tỉnh ủy).
COMMISSION_BODY = "BDV_TU"


class Relation(StrEnum):
    """A sender's relation to a case, or the role of a token that belongs to no body."""

    INTAKE = "intake"
    RECEIVING = "receiving"
    LEAD = "lead"
    COORDINATING = "coordinating"
    FRONT = "front"
    COMMISSION = "commission"
    SUPERIOR = "superior"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    ADMIN = "admin"
    SYSTEM = "system"


R = Relation

#: How a relation is named in messages and in the README's table.
DESCRIPTION: dict[Relation, str] = {
    R.INTAKE: "the intake system that sent the case (an `intake` token labelled with the case's `source`)",
    R.RECEIVING: "the body the petition was addressed to (`receiving_body`)",
    R.LEAD: "the body competent at the case's current instance (`lead_body`); for a plan task, its lead bodies "
            "and each district's instance of a lead that names a family of district bodies",
    R.COORDINATING: "a body asked in a coordination request; for a plan task, also the coordinating bodies the "
                    "plan names",
    R.FRONT: "the supervising Front committee (Ủy ban MTTQ tỉnh, `UBMTTQ_TINH`) and its successors",
    R.COMMISSION: "the Ban Dân vận (`BDV_TU`), its successors in the body registry and their divisions; for a plan "
                  "task, the commission that issued the plan and its monitoring division, with their successors",
    R.SUPERIOR: "the lead body's `parent` in the case's body registry, and that body's successors",
    R.SUPERVISOR: "a `supervisor` token",
    R.OPERATOR: "an `operator` token",
    R.ADMIN: "an `admin` token",
    R.SYSTEM: "the engine itself (report cycles, the reorganisation)",
}
SHORT: dict[Relation, str] = {
    R.INTAKE: "intake system", R.RECEIVING: "receiving body", R.LEAD: "lead body",
    R.COORDINATING: "coordinating body", R.FRONT: "Front committee", R.COMMISSION: "commission",
    R.SUPERIOR: "lead's superior", R.SUPERVISOR: "supervisor", R.OPERATOR: "operator", R.ADMIN: "admin",
    R.SYSTEM: "system",
}
#: The ties of a body to a case that a command speaking for another body does not carry.
OWN_TIES = frozenset({R.RECEIVING, R.LEAD, R.COORDINATING})


class Unauthorized(DomainError):
    """The sender holds none of the relations that may send this command (rule `authority.<command>`)."""


class CaseFacts(BaseModel):
    """What the relations of a case are read from. Kept in the `cases` projection (`summary["authority"]`) so the
    API can check a command before sending it; the workflow builds the same from its state."""

    model_config = ConfigDict(frozen=True)

    source: str | None = None
    receiving: str | None = None
    lead: list[str] = Field(default_factory=list)
    coordinating: list[str] = Field(default_factory=list)
    #: The bodies each coordination request asked, by request id.
    requests: dict[str, list[str]] = Field(default_factory=dict)
    front: list[str] = Field(default_factory=list)
    commission: list[str] = Field(default_factory=list)
    superiors: list[str] = Field(default_factory=list)
    #: The body a command speaks for (set by `for_command`): a body's own ties count only for that body.
    acting_for: str | None = None


@dataclass(frozen=True)
class Entry:
    """Who may send one command: the relations, and whether the command speaks for the body its `body` names."""

    command: str
    allowed: frozenset[Relation]
    speaks_for_body: bool = False
    note: str = ""


@dataclass(frozen=True)
class Table:
    """The authority of every command of one kind of case."""

    kind: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        names = [e.command for e in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.kind}: a command is listed twice")

    def entry(self, command_type: str) -> Entry:
        for entry in self.entries:
            if entry.command == command_type:
                return entry
        raise Unauthorized(f"authority.{command_type}", f"`{command_type}` is not a command of a {self.kind}")

    @property
    def commands(self) -> list[str]:
        return [e.command for e in self.entries]


def _entry(command: str, *allowed: Relation, speaks: bool = False, note: str = "") -> Entry:
    return Entry(command, frozenset(allowed), speaks, note)


PETITION = Table("petition case", (
    _entry("classify", R.RECEIVING, R.LEAD, note="the desk that received the letter sorts it"),
    _entry("split", R.RECEIVING, R.LEAD),
    _entry("accept", R.LEAD, note="thụ lý is the competent body's decision"),
    _entry("reject", R.LEAD),
    _entry("forward", R.RECEIVING, R.LEAD),
    _entry("redirect", R.RECEIVING, R.LEAD),
    _entry("assign", R.LEAD, R.SUPERIOR, R.COMMISSION, note="never a body that only coordinates"),
    _entry("request_coordination", R.LEAD),
    _entry("respond", R.COORDINATING, speaks=True, note="only a body asked in that request, for itself"),
    _entry("record_verification", R.LEAD),
    _entry("record_dialogue", R.LEAD),
    _entry("extend", R.LEAD, note="a decision of the competent body"),
    _entry("suspend", R.LEAD, note="a decision of the competent body"),
    _entry("resume", R.LEAD),
    _entry("withdraw", R.INTAKE, R.RECEIVING, R.LEAD, note="the petitioner withdraws where the letter was filed"),
    _entry("decide", R.LEAD, note="the decision, conclusion or answer of the competent body"),
    _entry("notify", R.LEAD),
    _entry("record_implementation", R.LEAD),
    _entry("record_external_result", R.RECEIVING, R.LEAD, note="the result of the body a petition was forwarded to"),
    _entry("appeal", R.INTAKE, R.RECEIVING, R.LEAD, R.SUPERIOR,
           note="a second complaint, or a denunciation repeated to the superior, as it is filed"),
    _entry("close", R.LEAD),
    _entry("archive", R.LEAD),
    _entry("start_front_supervision", R.FRONT),
    _entry("attach", R.INTAKE, R.RECEIVING, R.LEAD, R.COORDINATING, R.FRONT, R.COMMISSION, R.SUPERIOR,
           note="a file, by whoever takes part in the case (`POST .../attachments`)"),
))

PLAN_TASK = Table("plan task", (
    _entry("acknowledge", R.LEAD, R.COORDINATING, R.COMMISSION, speaks=True),
    _entry("request_coordination", R.LEAD, R.COMMISSION),
    _entry("respond", R.COORDINATING, speaks=True, note="only a body asked in that request, for itself"),
    _entry("record_progress", R.LEAD, R.COORDINATING, R.COMMISSION, speaks=True),
    _entry("request_report", R.COMMISSION, R.SYSTEM, note="sent by the period's report cycle"),
    _entry("submit_report", R.LEAD, R.COMMISSION, speaks=True),
    _entry("review_report", R.COMMISSION),
    _entry("urge", R.COMMISSION),
    _entry("interim_review", R.COMMISSION),
    _entry("final_review", R.COMMISSION),
    _entry("close", R.COMMISSION),
    _entry("reassign", R.COMMISSION, R.SYSTEM, note="the system passes a dissolved body's part to its successor"),
    _entry("submit_subplan", R.LEAD, R.COMMISSION, speaks=True),
    _entry("attach", R.LEAD, R.COORDINATING, R.COMMISSION,
           note="a file, by whoever takes part in the task (`POST .../attachments`)"),
))

TABLES: dict[str, Table] = {"petition": PETITION, pt.CASE_KIND: PLAN_TASK}


# -- relations and the check ---------------------------------------------------------------------------------


def relations(actor: Actor, facts: CaseFacts) -> set[Relation]:
    """The relations `actor` holds to the case `facts` describe."""
    if actor.role == "intake":
        return {R.INTAKE} if facts.source is not None and actor.id == facts.source else set()
    if actor.role != "body":
        return {Relation(actor.role)}
    body = actor.body
    if body is None:
        return set()
    # The bodies that act on the case hold their relation for themselves only, never while another acts for them.
    acting = facts.acting_for is None or facts.acting_for == body
    held = [
        (R.RECEIVING, acting and body == facts.receiving),
        (R.LEAD, acting and body in facts.lead),
        (R.COORDINATING, acting and body in facts.coordinating),
        (R.FRONT, body in facts.front),
        (R.COMMISSION, body in facts.commission),
        (R.SUPERIOR, body in facts.superiors),
    ]
    return {relation for relation, holds in held if holds}


def for_command(table: Table, command: Any, facts: CaseFacts) -> CaseFacts:
    """The facts as they bear on `command`: on a `respond`, the coordinating bodies are those asked in its
    request; on a command that speaks for a body, that body is recorded as the one acting."""
    entry = table.entry(command.type)
    update: dict[str, Any] = {}
    if command.type == "respond":
        update["coordinating"] = list(facts.requests.get(command.request_id, []))
    if entry.speaks_for_body:
        update["acting_for"] = command.body
    return facts.model_copy(update=update) if update else facts


def who(actor: Actor) -> str:
    """The sender, as a refusal names it."""
    if actor.role == "body":
        return f"body {actor.body}"
    if actor.role == "intake":
        return f"intake system {actor.id!r}"
    return f"{actor.role} {actor.id!r}"


def authorize(table: Table, command_type: str, actor: Actor, facts: CaseFacts) -> set[Relation]:
    """The relations by which `actor` may send `command_type` to the case `facts` describe, or `Unauthorized`
    (rule `authority.<command_type>`) saying which relations may send it and which the sender holds."""
    entry = table.entry(command_type)
    held = relations(actor, facts)
    granted = held & entry.allowed
    if not granted:
        allowed = ", ".join(SHORT[r] for r in Relation if r in entry.allowed)
        mine = ", ".join(SHORT[r] for r in Relation if r in held) or "no relation that may send it"
        own = " (a body acting for itself)" if entry.speaks_for_body else ""
        acting = (f"; the command speaks for {facts.acting_for}"
                  if entry.speaks_for_body and facts.acting_for and facts.acting_for != actor.body else "")
        raise Unauthorized(f"authority.{command_type}",
                           f"`{command_type}` on a {table.kind} is sent by: {allowed}{own}; "
                           f"{who(actor)} is: {mine}{acting}")
    return granted


#: The facts that tie a body to a case, by relation: `readers` and the `cases` list's SQL read these same keys.
BODY_TIES: dict[Relation, str] = {
    R.RECEIVING: "receiving", R.LEAD: "lead", R.COORDINATING: "coordinating", R.FRONT: "front",
    R.COMMISSION: "commission", R.SUPERIOR: "superiors",
}


def readers(facts: CaseFacts) -> set[str]:
    """The bodies whose staff may read the case: every body with a tie to it (receiving, lead, coordinating,
    the Front, the commission, the lead's superior). Whoever the table lets send a command to a case can also
    find it and read it; reading a sealed identity is a rule of its own (`api.identities`)."""
    out: set[str] = set()
    for key in BODY_TIES.values():
        value = getattr(facts, key)
        out.update([value] if isinstance(value, str) else value or [])
    return out


# -- the facts of each kind of case ----------------------------------------------------------------------------


def _successors(registry: BodyRegistry | None, codes: Iterable[str]) -> list[str]:
    """`codes` and every body along their successor chains (a successor takes over the duties)."""
    out: list[str] = []
    for code in codes:
        while code not in out:
            out.append(code)
            if registry is None or code not in registry:
                break
            successor = registry.get(code).successor
            if successor is None:
                break
            code = successor
    return out


def _divisions(registry: BodyRegistry | None, codes: list[str]) -> list[str]:
    """The bodies whose `parent` is one of `codes` (a commission's divisions)."""
    if registry is None:
        return []
    return [c for c in registry.codes() if c not in codes and registry.get(c).parent in codes]


def _superiors(registry: BodyRegistry | None, leads: Iterable[str]) -> list[str]:
    if registry is None:
        return []
    parents = [registry.get(b).parent for b in leads if b in registry]
    return _successors(registry, [p for p in parents if p is not None])


#: `commission_of` per registry object, dropped with the registry: a case's registry is read back from its first
#: event once per run, and the walk over every body would otherwise cost each command a third of a millisecond.
_COMMISSIONS: dict[int, list[str]] = {}


def commission_of(registry: BodyRegistry | None) -> list[str]:
    """The commission: `COMMISSION_BODY`, its successors and their divisions."""
    if registry is None:
        return [COMMISSION_BODY]
    key = id(registry)
    found = _COMMISSIONS.get(key)
    if found is None:
        heads = _successors(registry, [COMMISSION_BODY])
        found = _COMMISSIONS[key] = heads + _divisions(registry, heads)
        weakref.finalize(registry, _COMMISSIONS.pop, key, None)
    return list(found)


def _asked(requests: Mapping[str, Any]) -> dict[str, list[str]]:
    return {rid: list(request.bodies) for rid, request in requests.items()}


def petition_facts(state: PetitionState) -> CaseFacts:
    """The relations' facts of a petition case."""
    registry = state.rules.bodies
    requests = _asked(state.coordination)
    lead = [state.lead_body] if state.lead_body else []
    return CaseFacts(
        source=state.intake.source, receiving=state.intake.receiving_body, lead=lead,
        coordinating=list(dict.fromkeys(b for bodies in requests.values() for b in bodies)), requests=requests,
        front=_successors(registry, [FRONT_BODY]), commission=commission_of(registry),
        superiors=_superiors(registry, lead),
    )


def _with_instances(registry: BodyRegistry | None, codes: Iterable[str]) -> list[str]:
    """`codes`, each family followed by its district instances (a family names every district's body)."""
    out: list[str] = []
    for code in codes:
        out.append(code)
        if registry is not None and code in registry and registry.get(code).is_family:
            out += [b.code for b in registry.instances(code)]
    return list(dict.fromkeys(out))


def task_facts(state: pt.TaskState) -> CaseFacts:
    """The relations' facts of a plan task case."""
    registry = state.rules.case.bodies
    requests = _asked(state.coordination)
    asked = [b for bodies in requests.values() for b in bodies]
    return CaseFacts(
        source=state.spec.plan_id, lead=_with_instances(registry, state.lead),
        coordinating=_with_instances(registry, [*state.coordinators, *asked]), requests=requests,
        front=_successors(registry, [FRONT_BODY]), commission=sorted(pt.commission(state)),
        superiors=_superiors(registry, state.lead),
    )


# -- the table, for people -------------------------------------------------------------------------------------


def render_markdown() -> str:
    """The tables as Markdown, as the README publishes them (a test keeps the two equal)."""
    columns = list(Relation)
    lines: list[str] = []
    for kind, table in TABLES.items():
        lines += [f"**{table.kind.capitalize()}** (`{kind}`)", ""]
        lines.append("| command | " + " | ".join(SHORT[r] for r in columns) + " | note |")
        lines.append("|---|" + "---|" * len(columns) + "---|")
        for e in table.entries:
            mark = "✓ own" if e.speaks_for_body else "✓"
            cells = [mark if r in e.allowed and r in OWN_TIES else "✓" if r in e.allowed else "" for r in columns]
            lines.append(f"| `{e.command}` | " + " | ".join(cells) + f" | {e.note} |")
        lines.append("")
    lines.append("Relations:")
    lines.append("")
    lines += [f"- {SHORT[r]}: {DESCRIPTION[r]}" for r in columns]
    lines.append("")
    lines.append("✓ own: the command's `body` names who acts, and a body's own tie counts only for that body.")
    return "\n".join(lines)


def _check_tables() -> None:
    """Each table lists exactly the commands its kind of case takes from outside."""
    for table, commands in ((PETITION, PETITION_COMMANDS), (PLAN_TASK, pt.COMMAND_TYPES)):
        if table.commands != list(commands):
            raise ValueError(f"the authority table of the {table.kind} does not list its commands: "
                             f"{sorted(set(commands) ^ set(table.commands))}")


_check_tables()
