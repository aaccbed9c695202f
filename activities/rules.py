"""The I/O side of deadlines: the policy files, the `holidays` package, and the activities that hand both to a case.

A workflow asks `case_rules_ref` once, when a case starts: the deadline rule set in force on its day of receipt,
a `WorkingCalendar` snapshot, and the bodies and routing table (`policy/bodies.yaml`, `policy/routing.yaml`),
each a rule document stored once in `rule_sets` and answered by its digest (`domain.rulesets.RulesRef`). The
workflow records the ref and resolves it from `RULE_BOOK`, this process's documents by digest, fetching with
`rule_documents` those it lacks. Its decider then computes every deadline from those rules with the pure
functions of `domain.deadlines`, so a replay never sees a newer policy file or a newer holiday table. Cases
started before rules were recorded by digest asked `load_case_rules`, which answers the rules in full.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.bodies import BodyRegistry, RoutingTable, RoutingTableError
from domain.calendar import CASE_YEARS, WorkingCalendar, is_weekend
from domain.common import content_digest
from domain.deadlines import CaseRules, DeadlinePolicy, PolicyFile, RuleSets
from domain.plan_tasks import PlanRules
from domain.reporting import ReportCalendar
from domain.rulesets import (
    PlanRulesRef,
    RuleBook,
    RuleDigestMismatch,
    RuleDocument,
    RulesRef,
    plan_rules_ref,
    rules_ref,
)
from eventstore import BrokenRuleSet, EventStore, StoredDocument

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
DEADLINES_FILE = POLICY_DIR / "deadlines.yaml"
OVERRIDES_FILE = POLICY_DIR / "calendar_overrides.yaml"
BODIES_FILE = POLICY_DIR / "bodies.yaml"
ROUTING_FILE = POLICY_DIR / "routing.yaml"
HOLIDAYS_VERSION = version("holidays")

log = logging.getLogger("danvan.rules")

#: The years a case's calendar covers: the year it was received and the next ones (long cases, 2nd instance).
CASE_CALENDAR_YEARS_AFTER = 2


class RulesFileError(ValueError):
    """A policy file is missing, not YAML, or breaks a rule; the message names the file and the entry."""


class CalendarOverrideError(ValueError):
    """An override entry does not fit the package's calendar (e.g. removing a day that is not off)."""


class OverrideDay(BaseModel):
    """One entry of the province's table: a date, why, and the notice that announced it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: dt.date
    reason_vi: str = Field(min_length=1)
    source: str = Field(min_length=1)


class CalendarOverrides(BaseModel):
    """The province's corrections to the package's calendar (`policy/calendar_overrides.yaml`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days_off: tuple[OverrideDay, ...] = ()
    working_days: tuple[OverrideDay, ...] = ()
    remove_days_off: tuple[OverrideDay, ...] = ()
    #: Where the table came from (file and content digest); set by the loader, recorded in calendar sources.
    origin: str = "no overrides"

    @model_validator(mode="after")
    def _check(self) -> CalendarOverrides:
        seen: dict[date, str] = {}
        for name in ("days_off", "working_days", "remove_days_off"):
            entries: tuple[OverrideDay, ...] = getattr(self, name)
            for index, entry in enumerate(entries):
                where = f"{name}[{index}] ({entry.date.isoformat()}, {entry.date:%A})"
                if entry.date in seen:
                    raise ValueError(f"{where}: the date is already listed in {seen[entry.date]}")
                seen[entry.date] = f"{name}[{index}]"
                if name == "working_days" and not is_weekend(entry.date):
                    raise ValueError(f"{where}: a worked day in exchange must be a Saturday or Sunday")
                if name != "working_days" and is_weekend(entry.date):
                    raise ValueError(
                        f"{where}: weekend days are never worked unless listed in working_days; "
                        f"list the weekday that is taken off (or worked) instead"
                    )
        return self

    def years(self) -> set[int]:
        """The years the table mentions."""
        return {e.date.year for e in (*self.days_off, *self.working_days, *self.remove_days_off)}


class _NoDatesLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type stubs here
    """Safe YAML that leaves dates as strings, so that pydantic (not the YAML parser) reports a bad date and
    names the entry it is in."""


_NoDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _describe(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(POLICY_DIR.parent))
    except ValueError:
        return str(path)


def _read_yaml(path: Path) -> tuple[Any, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesFileError(f"{_describe(path)}: cannot read the file ({exc.strerror})") from exc
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_NoDatesLoader)
    except UnicodeDecodeError as exc:
        raise RulesFileError(f"{_describe(path)}: not UTF-8 text ({exc})") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{_describe(path)}: not valid YAML: {exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return data, f"{_describe(path)} sha256:{digest}"


def _entry(data: Any, loc: tuple[int | str, ...]) -> Any:
    """The innermost mapping of `data` along `loc` (the entry an error is about), for the error message."""
    found = None
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        if isinstance(node, dict):
            found = node
    return found


def _validation_message(path: Path, data: Any, exc: ValidationError) -> str:
    lines = [f"{_describe(path)}: {exc.error_count()} error(s)"]
    for error in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        line = f"  {loc or '(top level)'}: {error['msg']}"
        entry = _entry(data, error["loc"])
        if entry is not None:
            line += f" (entry: {entry!r})"
        lines.append(line)
    return "\n".join(lines)


def load_rule_sets(path: Path | str | None = None) -> RuleSets:
    """The dated rule sets of `path` (default: `policy/deadlines.yaml` of the repository), validated: the base
    set and each amendment applied over the set before it, each with its digest."""
    file = Path(path) if path is not None else DEADLINES_FILE
    data, _ = _read_yaml(file)
    try:
        return PolicyFile.model_validate(data).rule_sets()
    except ValidationError as exc:
        raise RulesFileError(_validation_message(file, data, exc)) from exc
    except ValueError as exc:
        raise RulesFileError(f"{_describe(file)}: {exc}") from exc


def load_deadline_policy(path: Path | str | None = None, on: date | None = None) -> DeadlinePolicy:
    """The rule set of `path` in force for a case received on `on` (default: the latest set in force)."""
    sets = load_rule_sets(path)
    return sets.in_force(on) if on is not None else sets.latest


def load_calendar_overrides(path: Path | str | None = None) -> CalendarOverrides:
    """The province's calendar overrides in `path` (default: `policy/calendar_overrides.yaml`), validated."""
    file = Path(path) if path is not None else OVERRIDES_FILE
    data, origin = _read_yaml(file)
    if data is None:
        data = {}  # an empty file is an empty table
    try:
        overrides = CalendarOverrides.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(_validation_message(file, data, exc)) from exc
    return overrides.model_copy(update={"origin": origin})


def load_bodies(path: Path | str | None = None) -> BodyRegistry:
    """The bodies of `path` (default: `policy/bodies.yaml`), with the district instances of every family,
    validated: unique codes, every parent, successor, predecessor and member present, no cycles, sane dates."""
    file = Path(path) if path is not None else BODIES_FILE
    data, _ = _read_yaml(file)
    try:
        return BodyRegistry.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(_validation_message(file, data, exc)) from exc


def load_routing(path: Path | str | None = None, registry: BodyRegistry | None = None) -> RoutingTable:
    """The routing rules of `path` (default: `policy/routing.yaml`), validated against `registry` (default: the
    bodies of `policy/bodies.yaml`): every body and district a rule names exists, and no rule sends petitions to
    a body on days it does not exist and has no successor."""
    file = Path(path) if path is not None else ROUTING_FILE
    data, _ = _read_yaml(file)
    try:
        table = RoutingTable.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(_validation_message(file, data, exc)) from exc
    bodies = registry if registry is not None else load_bodies()
    try:
        table.check(bodies)
    except RoutingTableError as exc:
        lines = [f"{_describe(file)}: {len(exc.problems)} error(s) against bodies version {bodies.version!r}"]
        for index, message in exc.problems:
            line = f"  rules[{index}]: {message}"
            entry = _entry(data, ("rules", index))
            if entry is not None:
                line += f" (entry: {entry!r})"
            lines.append(line)
        raise RulesFileError("\n".join(lines)) from exc
    return table


def _package_days(first_year: int, last_year: int) -> tuple[set[date], set[date]]:
    """(weekdays off, weekend days worked) of the range by the `holidays` package's Vietnam."""
    # One year either side, so that a day observed across a year boundary is known.
    package = holidays.country_holidays("VN", years=range(first_year - 1, last_year + 2))
    days_off: set[date] = set()
    working_days: set[date] = set()
    day, end = date(first_year, 1, 1), date(last_year, 12, 31)
    while day <= end:
        working = package.is_working_day(day)
        if is_weekend(day) and working:
            working_days.add(day)
        elif not is_weekend(day) and not working:
            days_off.add(day)
        day += timedelta(days=1)
    return days_off, working_days


def _apply_overrides(overrides: CalendarOverrides, first_year: int, last_year: int, days_off: set[date],
                     working_days: set[date]) -> None:
    """The overrides of the range applied: a day off the package lists removed (refused when it lists none), days
    off and worked weekend days added."""
    def in_range(day: date) -> bool:
        return first_year <= day.year <= last_year

    for index, entry in enumerate(overrides.remove_days_off):
        if not in_range(entry.date):
            continue
        if entry.date not in days_off:
            raise CalendarOverrideError(
                f"{overrides.origin}: remove_days_off[{index}] ({entry.date.isoformat()}): "
                f"holidays {HOLIDAYS_VERSION} does not list it as a day off; the entry is wrong or stale"
            )
        days_off.discard(entry.date)
    days_off.update(entry.date for entry in overrides.days_off if in_range(entry.date))
    working_days.update(entry.date for entry in overrides.working_days if in_range(entry.date))


def build_calendar(first_year: int, last_year: int, overrides: CalendarOverrides | None = None) -> WorkingCalendar:
    """A calendar snapshot for `first_year`..`last_year`: the `holidays` package's Vietnam plus the overrides.

    Every day of the range is asked of the package's public `is_working_day`, which knows public holidays,
    observed days, substituted days off and the weekend days worked in exchange. Overrides then add days off
    and worked weekend days, or remove a day off the package lists.
    """
    if first_year > last_year:
        raise ValueError(f"bad year range {first_year}..{last_year}")
    overrides = overrides or CalendarOverrides()
    days_off, working_days = _package_days(first_year, last_year)
    _apply_overrides(overrides, first_year, last_year, days_off, working_days)
    return WorkingCalendar(
        first_year=first_year,
        last_year=last_year,
        days_off=frozenset(days_off),
        working_days=frozenset(working_days),
        source=f"holidays {HOLIDAYS_VERSION} VN + {overrides.origin}",
    )


class CaseRulesRequest(BaseModel):
    """The day a case was received; its calendar covers that year and the next two (or up to `until`)."""

    model_config = ConfigDict(frozen=True)

    received_on: date
    until: date | None = None


class RuleDocumentsRequest(BaseModel):
    """The rule documents a case's workflow lacks, by digest."""

    model_config = ConfigDict(frozen=True)

    digests: list[str]


class RuleDocuments(BaseModel):
    documents: list[RuleDocument]


#: The rule documents this process knows, by digest: those of the policy files (read when a `RulesActivities` is
#: built), the calendars as they are built, and those fetched from `rule_sets`. A case workflow resolves the
#: rules its first event names here (`workflows.rulebook`).
RULE_BOOK = RuleBook()


class PlanRulesRequest(BaseModel):
    """A plan task starting on `start_on` and running until `until` (the end of the plan's term)."""

    model_config = ConfigDict(frozen=True)

    start_on: date
    until: date


def load_report_calendar(path: Path | str | None = None) -> ReportCalendar:
    """`policy/report_calendar.yaml`: when the plan's six-monthly and annual reports fall due."""
    file = Path(path) if path is not None else POLICY_DIR / "report_calendar.yaml"
    data, _ = _read_yaml(file)
    try:
        return ReportCalendar.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(_validation_message(file, data, exc)) from exc


class RulesActivities:
    """Reads the policy files once (the worker's start fails on a bad file) and serves case rules from memory.

    Built once in `worker.py`. Edits to the files apply after a worker restart.
    """

    def __init__(
        self,
        deadlines_path: Path | str | None = None,
        overrides_path: Path | str | None = None,
        bodies_path: Path | str | None = None,
        routing_path: Path | str | None = None,
        report_calendar_path: Path | str | None = None,
        years: tuple[int, int] = CASE_YEARS,
        store: EventStore | None = None,
        book: RuleBook = RULE_BOOK,
    ) -> None:
        #: The years a case may be received in (`DANVAN_CALENDAR_FIRST_YEAR` / `_LAST_YEAR`).
        self.years = years
        #: Every dated set of the deadline policy; a case is given the one in force on its day of receipt.
        self.rule_sets = load_rule_sets(deadlines_path)
        self.policy = self.rule_sets.latest
        self.report_calendar = load_report_calendar(report_calendar_path)
        self.overrides = load_calendar_overrides(overrides_path)
        self.bodies = load_bodies(bodies_path)
        self.routing = load_routing(routing_path, self.bodies)
        self._calendars: dict[tuple[int, int], WorkingCalendar] = {}
        #: Where rule documents are stored (`bind`), the book the documents built here go to, and the refs made.
        self.store = store
        self.book = book
        self._refs: dict[tuple[str, int, int], tuple[RulesRef, list[RuleDocument]]] = {}
        self._plan_refs: dict[tuple[str, int, int], tuple[PlanRulesRef, list[RuleDocument]]] = {}
        self._stored: set[str] = set()
        for rule_set in self.rule_sets.sets:
            book.keep("policy", rule_set)
        book.keep("bodies", self.bodies)
        book.keep("routing", self.routing)
        book.keep("reports", self.report_calendar)
        # Check every override against the package now rather than in the first case of that year.
        if overridden := self.overrides.years():
            self.calendar(min(overridden), max(overridden))

    def bind(self, store: EventStore) -> None:
        """Store the rule documents of the cases started from now on in `store` (`rule_sets`)."""
        if store is not self.store:
            self.store = store
            self._stored = set()

    def calendar(self, first_year: int, last_year: int) -> WorkingCalendar:
        """The calendar for a year range, built on first use and then kept."""
        key = (first_year, last_year)
        if key not in self._calendars:
            self._calendars[key] = build_calendar(first_year, last_year, self.overrides)
        return self._calendars[key]

    def case_rules(self, request: CaseRulesRequest) -> CaseRules:
        """The deadline rule set in force on `received_on` (the case keeps it whatever sets are published later),
        a working calendar from `received_on`'s year to two years later, the bodies and the routing table."""
        year = request.received_on.year
        last = max(year + CASE_CALENDAR_YEARS_AFTER, request.until.year if request.until else year)
        first_year, last_year = self.years
        if not first_year <= year <= last_year or last > last_year + CASE_CALENDAR_YEARS_AFTER:
            # The input's fault, not the moment's: retrying cannot help, the case refuses it.
            raise ApplicationError(
                f"{request.received_on.isoformat()} is outside the years a case may lie in: "
                f"{first_year}-01-01 to {last_year}-12-31 (its deadlines may run two years further)",
                type="calendar.out_of_range", non_retryable=True,
            )
        return CaseRules(
            policy=self.rule_sets.in_force(request.received_on),
            calendar=self.calendar(year, last),
            bodies=self.bodies,
            routing=self.routing,
        )

    @activity.defn(name="load_case_rules")
    async def load_case_rules(self, request: CaseRulesRequest) -> CaseRules:
        """The rules of `case_rules`, in full: what cases started before `rules-by-digest` recorded."""
        return self.case_rules(request)

    @activity.defn(name="case_rules_ref")
    async def case_rules_ref(self, request: CaseRulesRequest) -> RulesRef:
        """The rules of `case_rules` by digest, their documents stored in `rule_sets` first (once each), so that
        every reader of the case finds what its ref names."""
        rules = self.case_rules(request)
        key = (rules.policy.digest, rules.calendar.first_year, rules.calendar.last_year)
        if key not in self._refs:
            self._refs[key] = rules_ref(rules, self.book)
        ref, docs = self._refs[key]
        await self.store_documents(docs)
        return ref

    async def store_documents(self, docs: list[RuleDocument]) -> None:
        todo = [d for d in docs if d.digest not in self._stored]
        if not todo:
            return
        if self.store is None:
            raise RuntimeError("RulesActivities has no store to record rule documents in: bind() it first")
        await self.store.store_rule_documents(todo)
        self._stored.update(d.digest for d in todo)

    @activity.defn(name="rule_documents")
    async def rule_documents(self, request: RuleDocumentsRequest) -> RuleDocuments:
        """The stored rule documents of `digests`; refused for good when one is missing or was altered."""
        if self.store is None:
            raise RuntimeError("RulesActivities has no store to read rule documents from: bind() it first")
        try:
            docs = await rule_documents(self.store, request.digests)
        except RuleDigestMismatch as exc:
            raise ApplicationError(str(exc), type="rules.altered", non_retryable=True) from exc
        if missing := set(request.digests) - {d.digest for d in docs}:
            raise ApplicationError(f"rule documents not stored: {', '.join(sorted(missing))}",
                                   type="rules.unknown", non_retryable=True)
        return RuleDocuments(documents=docs)

    def plan_rules(self, request: PlanRulesRequest) -> PlanRules:
        """Deadline policy, a calendar from `start_on`'s year to the year after the term, bodies, report calendar."""
        case = self.case_rules(
            CaseRulesRequest(received_on=request.start_on, until=date(request.until.year + 1, 1, 1))
        )
        return PlanRules(case=case, reports=self.report_calendar)

    @activity.defn(name="load_plan_rules")
    async def load_plan_rules(self, request: PlanRulesRequest) -> PlanRules:
        """The rules of `plan_rules`, in full: what tasks assigned before `rules-by-digest` recorded."""
        return self.plan_rules(request)

    @activity.defn(name="plan_rules_ref")
    async def plan_rules_ref(self, request: PlanRulesRequest) -> PlanRulesRef:
        """The rules of `plan_rules` by digest, their documents stored in `rule_sets` first (once each)."""
        rules = self.plan_rules(request)
        case = rules.case
        key = (case.policy.digest, case.calendar.first_year, case.calendar.last_year)
        if key not in self._plan_refs:
            self._plan_refs[key] = plan_rules_ref(case, rules.reports, self.book)
        ref, docs = self._plan_refs[key]
        await self.store_documents(docs)
        return ref


async def load_rule_book(store: EventStore, book: RuleBook = RULE_BOOK) -> int:
    """Put every document of `rule_sets` in `book` (a worker does it before it polls, so that it replays the
    cases other workers started without lacking their documents); an altered one is left out, and said.
    Returns how many the book was given."""
    from eventstore import rulesets

    taken = 0
    for stored in await rulesets.fetch_all(store.pool):
        try:
            book.add(checked(stored))
        except RuleDigestMismatch as exc:
            log.error("rule document %s (%s) left out: %s", stored.digest, stored.kind, exc)
            continue
        taken += 1
    return taken


async def keep_rule_book(store: EventStore, book: RuleBook = RULE_BOOK, every: float = 1.0) -> None:
    """Fetch, every `every` seconds, the documents a case asked the book for and it lacked (`RuleBook.wanted`:
    a replay whose history holds no fetch), so that the case's retried workflow task finds them. Runs beside
    a worker until cancelled."""
    while True:
        if wanted := sorted(book.wanted):
            try:
                for doc in await rule_documents(store, wanted):
                    book.add(doc)
            except Exception as exc:  # the database away, or an altered row: said, and tried again
                log.warning("rule documents %s could not be fetched: %r", ", ".join(wanted), exc)
        await asyncio.sleep(every)


async def known_rules(store: EventStore, events: Iterable[Any], book: RuleBook = RULE_BOOK) -> RuleBook:
    """`book`, holding every rule document the stored `events` (`RecordedEvent`s) name by digest: those it
    lacks are fetched from `rule_sets` and checked. What a reader outside the workflow does before it folds a
    case's events (`domain.rulesets.with_rules`)."""
    wanted: set[str] = set()
    for event in events:
        ref = event.data.get("rules_ref") if isinstance(event.data, dict) else None
        if isinstance(ref, dict):
            wanted |= _digests(ref)
    if missing := sorted(d for d in wanted if d not in book):
        for doc in await rule_documents(store, missing):
            book.add(doc)
    return book


def checked(stored: StoredDocument) -> RuleDocument:
    """A stored rule document, once its content is found to hash to the digest it is stored under
    (`RuleDigestMismatch` otherwise: the row was altered)."""
    found = content_digest(stored.content)
    if found != stored.digest:
        raise RuleDigestMismatch(stored.digest, found)
    return RuleDocument.model_validate(stored.model_dump())


async def rule_documents(store: EventStore, digests: Sequence[str]) -> list[RuleDocument]:
    """The stored rule documents among `digests`, each checked against its digest."""
    return [checked(d) for d in await store.rule_documents(digests)]


async def check_rule_documents(store: EventStore) -> tuple[int, list[BrokenRuleSet]]:
    """How many rule documents are stored, and every one whose content does not hash to its digest (what
    `danvan verify` reports of them)."""
    from eventstore import rulesets

    count, broken = 0, []
    async for stored in rulesets.each(store.pool):
        count += 1
        found = content_digest(stored.content)
        if found != stored.digest:
            broken.append(BrokenRuleSet(digest=stored.digest, kind=stored.kind, problem=(
                f"the stored content hashes to {found}, not to its digest: the document was altered")))
    return count, broken


def _digests(ref: dict[str, Any]) -> set[str]:
    """The digests of a stored ref (a plan task's holds its case rules' ref within it)."""
    found: set[str] = set()
    for value in ref.values():
        if isinstance(value, dict):
            found |= _digests(value)
        elif isinstance(value, str):
            found.add(value)
    return found
