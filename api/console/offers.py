"""Which commands a case page offers its reader now: the one place that decides it.

A command is offered when the signed-in token may send it (the case kind's authority table, `domain.authority`,
judged on the facts the case's projection keeps, as `api.routes.petitions.check_authority` judges them) and the
case would take it in its present state: the domain's own `decide` is tried on the state folded from the case's
events, with a sample of the command. Nothing here repeats a rule of the deciders; a rule the domain adds or
changes is followed by the console as it is by the case.

The sample is made from the command's model (`api.console.forms.Shape`): a short text for each required text, the
day for a date, a body in force other than the lead for a body, and, for the fields whose values the case itself
decides, each value in turn:

- a choice (`Literal`, an enum): the values the case would take are the ones the form's select offers (a notice
  about the decision once there is a decision; the outcomes of the case's kind);
- `request_id`: the case's coordination requests (a body is offered `respond` only for a request that asked it and
  that it has not answered);
- `period`: the report periods of the task and those due around today;
- `body` of a command that speaks for a body (`domain.authority.Entry.speaks_for_body`): the sender's own body and
  the case's bodies; a body that may speak only for itself gets the field fixed to its own body.

`SAMPLE_OVERRIDES` holds the few sample values that must be the permissive ones for the probe to ask the right
question (an extension decision may find the case especially complex, which allows a second extension).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from activities.rules import RULE_BOOK
from domain import plan_tasks as pt
from domain.authority import (
    CaseFacts,
    Table,
    Unauthorized,
    authorize,
    for_command,
    petition_facts,
    task_facts,
)
from domain.bodies import BodyRegistry
from domain.calendar import local_date
from domain.common import Actor, DomainError, Event, EventRegistry
from domain.petitions import REGISTRY as PETITION_EVENTS
from domain.petitions.commands import PetitionCommand
from domain.petitions.decider import LAW
from domain.petitions.decider import decide as decide_petition
from domain.petitions.decider import fold as fold_petition
from domain.petitions.model import PetitionKind
from domain.rulesets import with_rules
from eventstore import CaseRecord, RecordedEvent

from ..identities import PETITION_KINDS
from ..routes.petitions import KINDS, CaseKindCommands
from .forms import MISSING, REASON, Shape, field_shapes

log = logging.getLogger("danvan.console")

#: The text of a sample (never shown, never sent).
SAMPLE_TEXT = "mẫu thử của biểu mẫu"
#: Sample values that differ from the default one (kind of case, command) -> field -> value.
SAMPLE_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("petition", "extend"): {"especially_complex": True},
}
#: Fields whose values the case decides, not the model: how to list them.
CASE_CHOICE_FIELDS = ("request_id", "period")
#: At most this many samples of one command are tried together; beyond, each field's values one at a time.
MAX_SAMPLES = 64


def _models(union: Any) -> dict[str, type[BaseModel]]:
    """The command models of a discriminated union, by their `type`."""
    members = get_args(get_args(union)[0])
    return {str(m.model_fields["type"].default): m for m in members}


@dataclass(frozen=True)
class CaseKind:
    """What the console needs of one kind of case that takes commands."""

    name: str
    commands: CaseKindCommands
    models: Mapping[str, type[BaseModel]]
    events: EventRegistry
    fold: Callable[[Iterable[Event]], Any]
    decide: Callable[[Any, Any, Actor, datetime], list[Event]]
    facts: Callable[[Any], CaseFacts]
    bodies: Callable[[Any], BodyRegistry | None]
    #: The law a refusal of this kind of case rests on when its rule names no article of its own.
    law: Callable[[CaseRecord], str]

    @property
    def table(self) -> Table:
        return self.commands.authority

    @property
    def adapter(self) -> TypeAdapter[Any]:
        return self.commands.commands

    def public(self) -> list[str]:
        """The commands a sender may send (the authority table's), in the table's order."""
        return [c for c in self.table.commands if c not in self.commands.internal and c in self.models]


def _petition_law(case: CaseRecord) -> str:
    try:
        return LAW[PetitionKind(case.kind)]
    except ValueError:
        return ""


CASE_KINDS: dict[str, CaseKind] = {
    "petition": CaseKind(
        name="petition", commands=KINDS["petition"], models=_models(PetitionCommand), events=PETITION_EVENTS,
        fold=fold_petition, decide=decide_petition, facts=petition_facts,
        bodies=lambda state: state.rules.bodies, law=_petition_law,
    ),
    pt.CASE_KIND: CaseKind(
        name=pt.CASE_KIND, commands=KINDS[pt.CASE_KIND], models=_models(pt.PlanTaskCommand), events=pt.REGISTRY,
        fold=pt.fold, decide=pt.decide, facts=task_facts, bodies=lambda state: state.rules.case.bodies,
        law=lambda case: pt.PLAN_BASIS,
    ),
}


def kind_of(case: CaseRecord | None) -> CaseKind | None:
    """The console's description of the case's kind (None: a kind that takes no commands)."""
    if case is None:
        return None
    return CASE_KINDS.get("petition" if case.kind in PETITION_KINDS else case.kind)


def fold_events(kind: CaseKind, events: Sequence[RecordedEvent]) -> Any | None:
    """The case's state folded from its recorded events (None when they cannot be read back: the page then
    offers the commands by authority alone, and the case refuses what its state does not allow). The rules the
    events name by digest are taken from `RULE_BOOK`, which the page fills first (`known_rules`)."""
    try:
        parsed = [kind.events.parse(e.type, occurred_at=e.occurred_at, actor=e.actor, reason=e.reason,
                                    legal_basis=e.legal_basis, data=e.data) for e in events]
        return kind.fold(with_rules(parsed, RULE_BOOK))
    except Exception as exc:  # an old or foreign event: the forms fall back on authority alone
        log.warning("console: cannot fold the events of %s: %r", events[0].stream_id if events else "?", exc)
        return None


def case_facts(kind: CaseKind, case: CaseRecord, state: Any | None) -> CaseFacts | None:
    """The facts authority is judged on: those the projection keeps (as the API judges), else the state's."""
    stored = case.summary.get("authority")
    if isinstance(stored, dict):
        try:
            return CaseFacts.model_validate(stored)
        except ValidationError:
            log.warning("console: the authority facts of %s cannot be read", case.case_id)
    return kind.facts(state) if state is not None else None


# -- the offer ------------------------------------------------------------------------------------------------


@dataclass
class Offer:
    """A command the reader may send now: the values its case-decided fields may take (`choices`, field ->
    values in order) and the fields fixed by who sends it (`fixed`, field -> value)."""

    command: str
    model: type[BaseModel]
    choices: dict[str, list[str]] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """Everything a sample of a command is judged with."""

    kind: CaseKind
    state: Any
    facts: CaseFacts
    actor: Actor
    now: datetime
    registry: BodyRegistry | None

    @property
    def today(self) -> date:
        return local_date(self.now)


def _bodies_of(facts: CaseFacts) -> list[str]:
    return list(dict.fromkeys([*([facts.receiving] if facts.receiving else []), *facts.lead, *facts.coordinating]))


def sample_body(probe: Probe) -> str | None:
    """A body in force today that is neither the case's lead nor the sender (a body a form could name)."""
    taken = {*probe.facts.lead, probe.actor.body}
    registry = probe.registry
    if registry is None:
        return None
    for code in registry.codes():
        body = registry.get(code)
        if code not in taken and not body.is_family and not body.members and body.is_effective(probe.today):
            return code
    return None


def sample_value(name: str, shape: Shape, probe: Probe) -> Any:
    """A value of the field for the probe: one the form could hold; MISSING for an optional field left blank."""
    kind = shape.kind
    if kind == "body":
        return sample_body(probe) or MISSING
    if kind == "date":
        return probe.today
    if kind == "int" and not shape.required:
        # A number the form may leave blank is given its least value: blank asks a narrower question (a
        # coordinating body's period, which the rules give only for some kinds of case).
        return shape.ge if shape.ge is not None else 1
    if not shape.required and name != REASON:
        return MISSING
    if kind == "list_model":
        assert shape.model is not None
        row = {n: v for n, s in field_shapes(shape.model).items()
               if (v := sample_value(n, s, probe)) is not MISSING}
        return [row] * max(1, shape.min_length or 1)
    sample = _SAMPLES.get(kind)
    return sample(shape) if sample is not None else MISSING


#: A value of a required field of each simple kind.
_SAMPLES: dict[str, Callable[[Shape], Any]] = {
    "str": lambda shape: SAMPLE_TEXT,
    "bool": lambda shape: False,
    "int": lambda shape: shape.ge if shape.ge is not None else 1,
    "float": lambda shape: 0.0,
    "choice": lambda shape: shape.choices[0],
    "list_str": lambda shape: [SAMPLE_TEXT] * max(1, shape.min_length or 1),
    "dict_float": lambda shape: {},
}


def _periods(probe: Probe) -> list[str]:
    state = probe.state
    reports = list(getattr(state, "reports", {}) or {})
    calendar = getattr(getattr(state, "rules", None), "reports", None)
    around = calendar.periods_between(probe.today - timedelta(days=366), probe.today + timedelta(days=366)) \
        if calendar is not None else []
    return list(dict.fromkeys([*reports, *(p.id for p in around)]))


def candidates(name: str, shape: Shape, probe: Probe, speaks: bool) -> list[Any] | None:
    """The values to try for a field the case decides (None: a field sampled once)."""
    if name == "body" and speaks:
        return [b for b in dict.fromkeys([probe.actor.body, *_bodies_of(probe.facts)]) if b]
    if name == "request_id":
        return list(getattr(probe.state, "coordination", {}) or {})
    if name == "period":
        return _periods(probe)
    if shape.kind == "choice":
        return [*([MISSING] if not shape.required else []), *shape.choices]
    return None


def _judge(probe: Probe, model: type[BaseModel], values: Mapping[str, Any]) -> bool:
    """Whether the sender may send this sample and the case would take it now."""
    payload = {"type": model.model_fields["type"].default, **{k: v for k, v in values.items() if v is not MISSING}}
    try:
        command = probe.kind.adapter.validate_python(payload)
    except ValidationError as exc:
        log.debug("console: a sample of %s is not valid: %s", payload["type"], exc)
        return False
    try:
        authorize(probe.kind.table, command.type, probe.actor, for_command(probe.kind.table, command, probe.facts))
    except Unauthorized:
        return False
    if probe.state is None:
        return True
    try:
        probe.kind.decide(probe.state, command, probe.actor, probe.now)
    except DomainError:
        return False
    except Exception as exc:  # the case refuses what it cannot decide on (`command.invalid`): so does the page
        log.info("console: a sample of %s cannot be decided: %r", payload["type"], exc)
        return False
    return True


def _samples(fields: dict[str, list[Any]], base: dict[str, Any]) -> Iterable[dict[str, Any]]:
    names = list(fields)
    if not names:
        yield dict(base)
        return
    total = 1
    for values in fields.values():
        total *= max(1, len(values))
    if total <= MAX_SAMPLES:
        for combination in itertools.product(*(fields[n] for n in names)):
            yield {**base, **dict(zip(names, combination, strict=True))}
        return
    first = {n: v[0] for n, v in fields.items() if v}
    for name in names:
        for value in fields[name]:
            yield {**base, **first, name: value}


def offer_for(probe: Probe, command: str) -> Offer | None:
    """The offer of `command`, or None when it may not be sent now."""
    kind = probe.kind
    model = kind.models[command]
    entry = kind.table.entry(command)
    shapes = field_shapes(model)
    speaks = entry.speaks_for_body
    if command != "respond" and not speaks:
        try:  # the facts bear on this command as they are: one check is the whole answer
            authorize(kind.table, command, probe.actor, probe.facts)
        except Unauthorized:
            return None
    base = {name: sample_value(name, shape, probe) for name, shape in shapes.items()}
    base.update(SAMPLE_OVERRIDES.get((kind.name, command), {}))
    decided: dict[str, list[Any]] = {}
    for name, shape in shapes.items():
        values = candidates(name, shape, probe, speaks)
        if values is not None:
            if not values:
                return None  # nothing to answer, no period to report on
            decided[name] = values
    passing = [sample for sample in _samples(decided, base) if _judge(probe, model, sample)]
    if not passing:
        return None
    offer = Offer(command=command, model=model)
    for name in decided:
        seen = [v for v in dict.fromkeys(s[name] for s in passing) if v is not MISSING]
        if name in CASE_CHOICE_FIELDS or name == "body":
            if len(seen) == 1 and (name != "body" or seen[0] == probe.actor.body):
                offer.fixed[name] = str(seen[0])
            else:
                offer.choices[name] = [str(v) for v in seen]
        else:
            offer.choices[name] = [str(v) for v in seen]
    return offer


def offers_on(probe: Probe, *, only: str | None = None) -> list[Offer]:
    """The commands the probe's sender may send to its case now, in the authority table's order."""
    found = []
    for command in probe.kind.public():
        if only is not None and command != only:
            continue
        offer = offer_for(probe, command)
        if offer is not None:
            found.append(offer)
    return found


def probe_of(case: CaseRecord, events: Sequence[RecordedEvent], actor: Actor, *, now: datetime | None = None,
             registry: BodyRegistry | None = None) -> Probe | None:
    """What the commands of `case` are judged with (None: a case that takes no commands, or has no facts yet).
    `registry`: the bodies to sample from when the case's own recorded registry cannot be read."""
    kind = kind_of(case)
    if kind is None or not events:
        return None
    state = fold_events(kind, events)
    facts = case_facts(kind, case, state)
    if facts is None:
        return None
    recorded = kind.bodies(state) if state is not None else None
    return Probe(kind=kind, state=state, facts=facts, actor=actor, now=now or datetime.now(UTC),
                 registry=recorded or registry)
