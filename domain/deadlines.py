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

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.bodies import BodyRegistry, RoutingTable
from domain.calendar import DayUnit, WorkingCalendar, end_of_day, local_date
from domain.common import Event, Text, content_digest

#: The verification marks of docs/legal-reference.md: ✅ verified, ⚠️ partial, ❌ unverified.
Mark = Literal["verified", "partial", "unverified"]
#: How complex a case is, for the number of extensions a rule allows (Luật Tố cáo 2018, Điều 30 khoản 1).
Complexity = Literal["ordinary", "complex", "especially_complex"]

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
    #: How many of the `max_extensions` a case of each complexity may have; a complexity left out may have
    #: none. Empty (as in policies recorded before it existed): every case may have `max_extensions`.
    extension_limits: dict[Complexity, int] = Field(default_factory=dict)
    #: The article that sets the extensions (shown with a refusal), when it is not `legal_basis`.
    extension_basis: str = ""
    note: str = ""

    @field_validator("title_vi", "title_en", "legal_basis", "extension_basis", "note")
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
        for complexity, limit in self.extension_limits.items():
            if not 0 <= limit <= (self.max_extensions or 0):
                raise ValueError(f"{self.key}: extension_limits.{complexity} must lie in 0..max_extensions "
                                 f"({self.max_extensions or 0}), not {limit}")
        return self

    def extensions_allowed(self, complexity: Complexity | None = None) -> int:
        """How many extensions a case of `complexity` may have (None: any case, the rule's maximum)."""
        most = self.max_extensions or 0
        if complexity is None or not self.extension_limits:
            return most
        return self.extension_limits.get(complexity, 0)

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


class SuspensionRule(BaseModel):
    """Whether the time a case of one kind is suspended (tạm đình chỉ) counts in its periods, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: False: the clock stops on the day of the suspension and the rest of each period runs from the day of
    #: the resumption. True: the periods run on while the case is suspended.
    counts: bool
    legal_basis: str = ""
    rule_ref: str = Field(min_length=1)
    statutory: bool
    mark: Mark
    note: str = ""

    @field_validator("legal_basis", "note")
    @classmethod
    def _nfc(cls, value: str) -> str:
        return unicodedata.normalize("NFC", value.strip())


RuleSetStatus = Literal["in_force", "draft"]


class DeadlinePolicy(BaseModel):
    """One set of deadline rules of the policy file: the base set, or a dated set (`valid_from`) that amends the
    one before it. A case records the set in force on the day it was received (`RuleSets.in_force`), with its
    `digest`, and is counted under it to the end, whatever sets are published later."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    rules: dict[str, DeadlineRule]
    #: By kind of case: whether suspension time counts. Empty in policies recorded before it existed (their
    #: periods ran on while suspended).
    suspension: dict[str, SuspensionRule] = Field(default_factory=dict)
    #: The first day of receipt the set applies to; None: the base set, from the beginning.
    valid_from: date | None = None
    #: `draft`: published in the file for review (its text not yet read) but applied to no case.
    status: RuleSetStatus = "in_force"
    #: The texts the set follows, as users read them, and what to know of the set.
    title: str = ""
    note: str = ""
    #: SHA-256 of the set's content (`set_digest`), set when the file is loaded; empty in sets recorded before.
    digest: str = ""

    @field_validator("title", "note")
    @classmethod
    def _nfc_title(cls, value: str) -> str:
        return unicodedata.normalize("NFC", value.strip())

    def suspension_counts(self, kind: str) -> SuspensionRule | None:
        """The suspension rule of `kind`, None when the policy has none (the periods run on)."""
        return self.suspension.get(kind)

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


def set_digest(policy: DeadlinePolicy) -> str:
    """The digest that names a rule set: SHA-256 of its content in canonical form, its own digest left out."""
    return content_digest(policy.model_dump(mode="json", exclude={"digest"}))


class RuleSetAmendment(BaseModel):
    """A dated set as the policy file writes it: what changes from the set in force before it (a draft is never
    the ground of another set). A rule named here takes the fields given over the same rule of that set (or is
    new, and then complete); every other rule, and every suspension rule not named, is that set's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    valid_from: date
    status: RuleSetStatus = "in_force"
    title: str = ""
    note: str = ""
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    suspension: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PolicyFile(DeadlinePolicy):
    """The whole policy file: the base set (its top level) and the dated sets after it (`amendments`)."""

    amendments: list[RuleSetAmendment] = Field(default_factory=list)

    def rule_sets(self) -> RuleSets:
        """Every set, each amendment applied over the set before it; a `ValueError` names the amendment and the
        rule that breaks."""
        base = DeadlinePolicy.model_validate(self.model_dump(exclude={"amendments", "digest"}))
        if base.valid_from is not None or base.status != "in_force":
            raise ValueError("the base set (the top level) has no valid_from and is in force: it applies from "
                             "the beginning")
        sets = [base.model_copy(update={"digest": set_digest(base)})]
        for index, amendment in enumerate(self.amendments):
            previous = sets[-1]
            before = [s for s in sets if s.status == "in_force"][-1]
            where = f"amendments[{index}] (version {amendment.version!r})"
            if previous.valid_from is not None and amendment.valid_from <= previous.valid_from:
                raise ValueError(f"{where}: valid_from {amendment.valid_from.isoformat()} must come after "
                                 f"{previous.valid_from.isoformat()}, the set before's")
            if amendment.version in {s.version for s in sets}:
                raise ValueError(f"{where}: the version is already used by another set")
            rules = {k: r.model_dump() for k, r in before.rules.items()}
            for key, fields in amendment.rules.items():
                rules[key] = {**rules.get(key, {"key": key}), **fields}
            suspension = {k: r.model_dump() for k, r in before.suspension.items()}
            for kind, fields in amendment.suspension.items():
                suspension[kind] = {**suspension.get(kind, {}), **fields}
            try:
                amended = DeadlinePolicy.model_validate({
                    "version": amendment.version, "valid_from": amendment.valid_from, "status": amendment.status,
                    "title": amendment.title or before.title, "note": amendment.note, "rules": rules,
                    "suspension": suspension})
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"{where}: {problems}") from None
            sets.append(amended.model_copy(update={"digest": set_digest(amended)}))
        return RuleSets(sets=tuple(sets))


class RuleSets(BaseModel):
    """The dated rule sets of the policy file, oldest first."""

    model_config = ConfigDict(frozen=True)

    sets: tuple[DeadlinePolicy, ...] = Field(min_length=1)

    def in_force(self, on: date) -> DeadlinePolicy:
        """The set a case received on `on` is counted under: the latest set in force (not a draft) whose
        `valid_from` is on or before that day."""
        found = [s for s in self.sets if s.status == "in_force" and (s.valid_from is None or s.valid_from <= on)]
        if not found:
            raise ValueError(f"no rule set is in force on {on.isoformat()}")
        return found[-1]

    @property
    def latest(self) -> DeadlinePolicy:
        """The set in force for a case received on the latest day any set names (today's, once it has come)."""
        return [s for s in self.sets if s.status == "in_force"][-1]


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
    #: Days (in `unit`) the period was suspended and that do not count in it (Luật Tố cáo 2018, Điều 34 khoản 2).
    suspended_days: int = 0


def period_end(deadline: Deadline, calendar: WorkingCalendar, more: int = 0) -> date:
    """The last day of `deadline`'s period lengthened by `more` days, counted from its original start.

    The whole length (the period, its extensions, its suspended days and `more`) is counted from `started_on`
    and only the final end is moved off a day off (BLDS 2015 Art 148): an end moved off a holiday before an
    extension does not lengthen the extension.
    """
    total = deadline.amount + deadline.extended_by + deadline.suspended_days + more
    return calendar.add_days(deadline.started_on, total, deadline.unit)


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


def can_extend(deadline: Deadline, rule: DeadlineRule, complexity: Complexity | None = None) -> bool:
    """Whether `rule` allows one more extension of `deadline`, for a case of `complexity` (None: any case)."""
    return (
        rule.key == deadline.key
        and rule.extension_amount is not None
        and rule.max_extensions is not None
        and deadline.extensions < rule.extensions_allowed(complexity)
    )


def extend_deadline(deadline: Deadline, rule: DeadlineRule, calendar: WorkingCalendar, *,
                    complexity: Complexity | None = None, from_start: bool = True) -> Deadline:
    """`deadline` extended once by the rule's `extension_amount`.

    This is the denunciation rule (Luật Tố cáo 2018 Art 30 khoản 1): an ordinary case is not extended, a
    complex one once and an especially complex one twice, each time by at most 30 days (`extension_limits`,
    for a case of `complexity`). The extension lengthens the period counted from its original start, and only
    the final end moves off a day off (`period_end`, BLDS 2015 Art 148). `from_start=False` is the count of
    cases recorded before that rule: from the current due date, already moved off a day off. Raises
    `ExtensionNotAllowed` when the rule allows no further one; the caller should check `can_extend` first and
    refuse the command with its own reason.
    """
    if rule.key != deadline.key:
        raise ExtensionNotAllowed(f"rule {rule.key!r} cannot extend a deadline of {deadline.key!r}")
    if rule.extension_amount is None or rule.max_extensions is None:
        raise ExtensionNotAllowed(f"{rule.key} ({rule.legal_basis or rule.rule_ref}) allows no extension")
    allowed = rule.extensions_allowed(complexity)
    if deadline.extensions >= allowed:
        raise ExtensionNotAllowed(
            f"{rule.key} allows at most {allowed} extension(s) of a {complexity or 'any'} case; "
            f"{deadline.extensions} already granted"
        )
    if from_start:
        due_on = period_end(deadline, calendar, rule.extension_amount)
    else:
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
    #: The date of the written act that met it, when it bears one (a decision signed before it was recorded).
    met_on: date | None = None
    outcome: Literal["pending", "on_time", "late", "cancelled"] = "pending"
    #: The day its clock stopped, while the case is suspended and its kind's suspension time does not count.
    stopped_on: date | None = None

    @property
    def pending(self) -> bool:
        return self.outcome == "pending"

    @property
    def running(self) -> bool:
        """Pending and its clock not stopped: its timers are set."""
        return self.pending and self.stopped_on is None


Deadlines = dict[str, DeadlineState]


def add_deadlines(deadlines: Deadlines, new: Iterable[Deadline]) -> Deadlines:
    """`deadlines` with `new` ones started (a deadline of the same key is replaced)."""
    out = dict(deadlines)
    for d in new:
        out[d.key] = DeadlineState(deadline=d)
    return out


def meet_deadlines(deadlines: Deadlines, keys: Iterable[str], at: datetime, on: date | None = None) -> Deadlines:
    """The pending deadlines among `keys` met at `at`: on time if not after their due instant, else late.

    `on`: the date of the written act that meets them, when it bears one: the act is judged by its own date
    (a decision signed on the due day and recorded the next morning is on time), and `at` stays the moment it
    was recorded."""
    out = dict(deadlines)
    for key in keys:
        d = out.get(key)
        if d is not None and d.pending:
            kept = on <= d.deadline.due_on if on is not None else at <= d.deadline.due_at
            outcome: Literal["on_time", "late"] = "on_time" if kept else "late"
            out[key] = d.model_copy(update={"met_at": at, "met_on": on, "outcome": outcome})
    return out


def cancel_pending(deadlines: Deadlines, keys: Iterable[str] | None = None) -> Deadlines:
    """Pending deadlines (all, or those among `keys`) cancelled: the step they waited for will not come."""
    wanted = None if keys is None else set(keys)
    return {
        k: (d.model_copy(update={"outcome": "cancelled"}) if d.pending and (wanted is None or k in wanted) else d)
        for k, d in deadlines.items()
    }


def stop_clocks(deadlines: Deadlines, at: datetime) -> list[str]:
    """The deadlines whose clock a suspension at `at` stops: the pending ones whose period has not ended."""
    return sorted(k for k, d in deadlines.items() if d.running and at <= d.deadline.due_at)


def stopped(deadlines: Deadlines, keys: Iterable[str], on: date) -> Deadlines:
    """`deadlines` with the clocks of `keys` stopped on `on` (the day of the suspension, which still counts)."""
    out = dict(deadlines)
    for key in keys:
        d = out.get(key)
        if d is not None and d.running:
            out[key] = d.model_copy(update={"stopped_on": on})
    return out


def restart_clock(state: DeadlineState, resumed_on: date, calendar: WorkingCalendar) -> Deadline:
    """The deadline of a stopped period once the case resumes on `resumed_on`.

    The days after the suspension day up to and including the resumption day do not count (Luật Tố cáo 2018,
    Điều 34 khoản 2): in calendar days `resumed_on - stopped_on`, in working days the working days among them.
    What remained of the period runs from the day after the resumption (BLDS 2015 Art 147), and the end moves
    off a day off (Art 148): the period counted from its original start, lengthened by the days not counted.
    """
    d = state.deadline
    assert state.stopped_on is not None, "only a stopped clock restarts"
    start = state.stopped_on
    if d.unit == "calendar":
        lost = max((resumed_on - start).days, 0)
    else:
        lost = calendar.working_days_between(start, resumed_on) if resumed_on > start else 0
    moved = d.model_copy(update={"suspended_days": d.suspended_days + lost})
    due_on = period_end(moved, calendar)
    warn_before = max((d.due_on - local_date(d.warn_at)).days, 0)
    return moved.model_copy(update={
        "due_on": due_on, "due_at": end_of_day(due_on), "warn_at": _warn_at(d.started_on, due_on, warn_before),
        "calendar_source": calendar.source,
    })


def restarted(deadlines: Deadlines, new: Iterable[Deadline]) -> Deadlines:
    """`deadlines` with the stopped ones running again on their recomputed dates (warned again before them)."""
    out = dict(deadlines)
    for d in new:
        old = out.get(d.key)
        if old is not None:
            out[d.key] = old.model_copy(update={"deadline": d, "stopped_on": None, "approached": False})
    return out


def mark_deadline(deadlines: Deadlines, key: str, stage: Literal["approaching", "breached"]) -> Deadlines:
    """The deadline `key` marked as warned (approaching) or missed (breached, which implies warned)."""
    d = deadlines[key]
    update = {"approached": True} if stage == "approaching" else {"approached": True, "breached": True}
    return {**deadlines, key: d.model_copy(update=update)}


# -- the timer of a case's deadlines, the same for every kind of case -------------------------------------


def timer_moments(deadlines: Deadlines) -> list[tuple[datetime, str, Literal["approaching", "breached"]]]:
    """When each pending deadline warns and is missed (a miss is any instant after `due_at`), in order. A
    deadline whose clock is stopped has no timer."""
    moments: list[tuple[datetime, str, Literal["approaching", "breached"]]] = []
    for key, d in deadlines.items():
        if not d.pending or d.stopped_on is not None:  # met, or its clock stopped while the case is suspended
            continue
        if not d.approached:
            moments.append((d.deadline.warn_at, key, "approaching"))
        if not d.breached:
            moments.append((d.deadline.due_at + timedelta(seconds=1), key, "breached"))
    return sorted(moments)


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
