"""Deadline rules as data, and the deadlines computed from them (docs/legal-reference.md §3, §4 and Appendix A).

Every legal or policy period is a `DeadlineRule` loaded from `policy/deadlines.yaml`, never a constant in code,
so that a province can correct a value without a release. A `Deadline` is the value computed once, from a rule,
a start and a `WorkingCalendar` snapshot, and then recorded in an event: it is never recomputed on replay.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.bodies import BodyRegistry, RoutingTable
from domain.calendar import DayUnit, WorkingCalendar, end_of_day, local_date
from domain.common import Event, Text

#: The verification marks of docs/legal-reference.md: ✅ verified, ⚠️ partial, ❌ unverified.
Mark = Literal["verified", "partial", "unverified"]

_KEY_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"


class UnknownDeadlineRule(KeyError):
    """The policy has no rule with this key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown deadline rule"


class UnknownVariant(ValueError):
    """A variant was asked for by name and the rule does not define it."""


class ExtensionNotAllowed(ValueError):
    """The rule allows no (further) extension of this deadline."""


class DeadlineRule(BaseModel):
    """One period of the law or of province policy, with its legal basis and how sure we are of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=_KEY_PATTERN)
    title_vi: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    amount: int = Field(ge=0)
    unit: DayUnit
    #: Where the period comes from, in the words a user can look up ("Luật Khiếu nại 2011, Điều 28").
    legal_basis: str = ""
    #: A short, stable citation recorded with every deadline ("LKN2011:Art28").
    rule_ref: str = Field(min_length=1)
    #: False for a province SLA or policy value: it must never be shown to users as a legal deadline.
    statutory: bool
    mark: Mark
    #: Longer periods for complex cases, remote areas, or a named case such as "extended"; same unit.
    variants: dict[str, int] = Field(default_factory=dict)
    #: How many calendar days before the due date `DeadlineApproaching` fires.
    warn_before_days: int = Field(default=0, ge=0)
    max_extensions: int | None = Field(default=None, ge=1)
    extension_amount: int | None = Field(default=None, ge=1)
    note: str = ""

    @field_validator("title_vi", "title_en", "legal_basis", "note")
    @classmethod
    def _nfc(cls, value: str) -> str:
        # Vietnamese typed on some systems arrives decomposed (NFD); compare and display it composed.
        return unicodedata.normalize("NFC", value.strip())

    @field_validator("variants")
    @classmethod
    def _positive_variants(cls, value: dict[str, int]) -> dict[str, int]:
        for name, amount in value.items():
            if not name or amount < 0:
                raise ValueError(f"variant {name!r}: needs a name and an amount >= 0 (got {amount})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DeadlineRule:
        if self.statutory and not self.legal_basis:
            raise ValueError(f"{self.key}: a statutory rule needs a legal_basis")
        if (self.max_extensions is None) != (self.extension_amount is None):
            raise ValueError(f"{self.key}: max_extensions and extension_amount go together (both or neither)")
        return self

    def amount_for(self, variant: str | None) -> int:
        """The period length of `variant` (None: the base period)."""
        if variant is None:
            return self.amount
        try:
            return self.variants[variant]
        except KeyError:
            known = ", ".join(sorted(self.variants)) or "none"
            raise UnknownVariant(f"{self.key} has no variant {variant!r} (variants: {known})") from None

    def choose_variant(self, *, complex: bool = False, remote: bool = False) -> str | None:
        """Which variant applies to a case, None for the base period.

        The exact variant is preferred (`remote_complex`, `remote`, `complex`). When a rule lacks the exact
        one, a case gets the longest period among the variants that do apply to it (a remote complex case is
        at least a remote case and at least a complex case), and the base period when none does.
        """
        if complex and remote:
            wanted = ["remote_complex", "remote", "complex"]
        elif remote:
            wanted = ["remote"]
        elif complex:
            wanted = ["complex"]
        else:
            return None
        if wanted[0] in self.variants:
            return wanted[0]
        present = [name for name in wanted[1:] if name in self.variants]
        if not present:
            return None
        return max(present, key=lambda name: self.variants[name])


class DeadlinePolicy(BaseModel):
    """All deadline rules of one version of the policy file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    rules: dict[str, DeadlineRule]

    @model_validator(mode="before")
    @classmethod
    def _keys_from_mapping(cls, data: Any) -> Any:
        # In the policy file a rule's key is its mapping key; repeating it inside the rule is optional.
        if isinstance(data, dict) and isinstance(data.get("rules"), dict):
            rules = {}
            for key, rule in data["rules"].items():
                if isinstance(rule, dict) and "key" not in rule:
                    rule = {"key": key, **rule}
                rules[key] = rule
            data = {**data, "rules": rules}
        return data

    @model_validator(mode="after")
    def _keys_match(self) -> DeadlinePolicy:
        for key, rule in self.rules.items():
            if rule.key != key:
                raise ValueError(f"rule listed under {key!r} says key {rule.key!r}")
        return self

    def rule(self, key: str) -> DeadlineRule:
        """The rule named `key`; `UnknownDeadlineRule` if the policy has none."""
        try:
            return self.rules[key]
        except KeyError:
            raise UnknownDeadlineRule(
                f"no deadline rule {key!r} in policy version {self.version!r} (known: {', '.join(sorted(self.rules))})"
            ) from None


class Deadline(BaseModel):
    """A computed due date, as recorded in event data. Everything needed to explain it travels with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    #: The day of the triggering event (not itself counted).
    started_on: date
    #: The last day of the period, already moved off weekends and holidays.
    due_on: date
    #: The end of `due_on` in Vietnam (ICT): a breach is any instant after it.
    due_at: AwareDatetime
    #: When `DeadlineApproaching` fires.
    warn_at: AwareDatetime
    #: The period length used (of the chosen variant), before any extension.
    amount: int
    unit: DayUnit
    variant: str | None = None
    legal_basis: str
    rule_ref: str
    statutory: bool
    calendar_source: str
    #: How many extensions were granted, and how many days (in `unit`) they added in total.
    extensions: int = 0
    extended_by: int = 0


def _warn_at(started_on: date, due_on: date, warn_before_days: int) -> datetime:
    warn_on = max(due_on - timedelta(days=warn_before_days), started_on)
    return end_of_day(warn_on)


def compute_deadline(
    rule: DeadlineRule,
    start: date | datetime,
    calendar: WorkingCalendar,
    *,
    complex: bool = False,
    remote: bool = False,
    variant: str | None = None,
) -> Deadline:
    """The deadline of `rule` for an event on `start`, counted on `calendar`.

    `start` may be a date, or an aware datetime (its date in Vietnam is used). The variant is picked from the
    case's flags (see `DeadlineRule.choose_variant`), or named explicitly with `variant` (e.g. "extended" for the
    longer initial processing of a denunciation); the one used is recorded. Dates outside the calendar's years
    raise `CalendarRangeError`.
    """
    started_on = local_date(start) if isinstance(start, datetime) else start
    chosen = variant if variant is not None else rule.choose_variant(complex=complex, remote=remote)
    amount = rule.amount_for(chosen)
    due_on = calendar.add_days(started_on, amount, rule.unit)
    return Deadline(
        key=rule.key,
        started_on=started_on,
        due_on=due_on,
        due_at=end_of_day(due_on),
        warn_at=_warn_at(started_on, due_on, rule.warn_before_days),
        amount=amount,
        unit=rule.unit,
        variant=chosen,
        legal_basis=rule.legal_basis,
        rule_ref=rule.rule_ref,
        statutory=rule.statutory,
        calendar_source=calendar.source,
    )


def can_extend(deadline: Deadline, rule: DeadlineRule) -> bool:
    """Whether `rule` allows one more extension of `deadline`."""
    return (
        rule.key == deadline.key
        and rule.extension_amount is not None
        and rule.max_extensions is not None
        and deadline.extensions < rule.max_extensions
    )


def extend_deadline(deadline: Deadline, rule: DeadlineRule, calendar: WorkingCalendar) -> Deadline:
    """`deadline` extended once by the rule's `extension_amount`, counted from the current due date.

    This is the denunciation rule (Luật Tố cáo 2018 Art 30): each extension is at most 30 days and at most two
    are allowed. The extension is counted from the day the current period actually ends (`due_on`, after any
    move off a day off), in the rule's unit. Raises `ExtensionNotAllowed` when the rule allows no further one;
    the caller should check `can_extend` first and refuse the command with its own reason.
    """
    if rule.key != deadline.key:
        raise ExtensionNotAllowed(f"rule {rule.key!r} cannot extend a deadline of {deadline.key!r}")
    if rule.extension_amount is None or rule.max_extensions is None:
        raise ExtensionNotAllowed(f"{rule.key} ({rule.legal_basis or rule.rule_ref}) allows no extension")
    if deadline.extensions >= rule.max_extensions:
        raise ExtensionNotAllowed(
            f"{rule.key} allows at most {rule.max_extensions} extension(s); {deadline.extensions} already granted"
        )
    due_on = calendar.add_days(deadline.due_on, rule.extension_amount, deadline.unit)
    return deadline.model_copy(
        update={
            "due_on": due_on,
            "due_at": end_of_day(due_on),
            "warn_at": _warn_at(deadline.started_on, due_on, rule.warn_before_days),
            "extensions": deadline.extensions + 1,
            "extended_by": deadline.extended_by + rule.extension_amount,
            "calendar_source": calendar.source,
        }
    )


class CaseRules(BaseModel):
    """The deadline policy and working-day calendar in force when a case started, recorded in its first event
    so that every due date of the case is computed from the same data, on replay too."""

    model_config = ConfigDict(frozen=True)

    policy: DeadlinePolicy
    calendar: WorkingCalendar
    #: The bodies and default routing in force when the case started; None in cases recorded before they were.
    bodies: BodyRegistry | None = None
    routing: RoutingTable | None = None


class DeadlineState(BaseModel):
    """A deadline of a case and what became of it: warned, missed, met on time or late, or cancelled."""

    model_config = ConfigDict(frozen=True)

    deadline: Deadline
    approached: bool = False
    breached: bool = False
    met_at: datetime | None = None
    outcome: Literal["pending", "on_time", "late", "cancelled"] = "pending"

    @property
    def pending(self) -> bool:
        return self.outcome == "pending"


Deadlines = dict[str, DeadlineState]


def add_deadlines(deadlines: Deadlines, new: Iterable[Deadline]) -> Deadlines:
    """`deadlines` with `new` ones started (a deadline of the same key is replaced)."""
    out = dict(deadlines)
    for d in new:
        out[d.key] = DeadlineState(deadline=d)
    return out


def meet_deadlines(deadlines: Deadlines, keys: Iterable[str], at: datetime) -> Deadlines:
    """The pending deadlines among `keys` met at `at`: on time if not after their due instant, else late."""
    out = dict(deadlines)
    for key in keys:
        d = out.get(key)
        if d is not None and d.pending:
            outcome: Literal["on_time", "late"] = "on_time" if at <= d.deadline.due_at else "late"
            out[key] = d.model_copy(update={"met_at": at, "outcome": outcome})
    return out


def cancel_pending(deadlines: Deadlines, keys: Iterable[str] | None = None) -> Deadlines:
    """Pending deadlines (all, or those among `keys`) cancelled: the step they waited for will not come."""
    wanted = None if keys is None else set(keys)
    return {
        k: (d.model_copy(update={"outcome": "cancelled"}) if d.pending and (wanted is None or k in wanted) else d)
        for k, d in deadlines.items()
    }


def mark_deadline(deadlines: Deadlines, key: str, stage: Literal["approaching", "breached"]) -> Deadlines:
    """The deadline `key` marked as warned (approaching) or missed (breached, which implies warned)."""
    d = deadlines[key]
    update = {"approached": True} if stage == "approaching" else {"approached": True, "breached": True}
    return {**deadlines, key: d.model_copy(update=update)}


# -- the timer of a case's deadlines, the same for every kind of case -------------------------------------


class MarkDeadline(Text):
    """Internal: a durable timer fired (a deadline approaches or was missed); decided like any command."""

    type: Literal["deadline"] = "deadline"
    reason: str | None = None
    key: str = Field(min_length=1, max_length=200)
    stage: Literal["approaching", "breached"]


class DeadlineApproaching(Event):
    key: str
    due_at: str


class DeadlineBreached(Event):
    key: str
    due_at: str
