"""Rule documents recorded once, by digest: a case names the rules it is counted under instead of copying them.

The rules a case starts with (`CaseRules`: a deadline rule set, a working calendar, the bodies, the routing
table) are four documents, each named by the SHA-256 of its content in canonical form (`content_digest`). A
document is stored once, in the `rule_sets` table, and shipped with the worker (the policy files); a case's
first event records a `RulesRef`, the four digests, where it recorded the four documents in full before. A
digest always names the same content, so resolving one is deterministic wherever it is done: a `RuleBook`
holds the documents it was given, each checked against its digest, and builds the `CaseRules` of a ref.

Events that record rules (`RecordsRules`) accept both shapes: the rules in full (cases recorded before) and
the ref. Read back from the store, an event with a ref holds no content until `with_rules` gives it the
resolved rules; the content is never part of what the event stores (`payload`), nor of its hash.

Pure: pydantic and the standard library; the `RuleBook` is an in-memory map, filled by its owner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .bodies import BodyRegistry, RoutingTable
from .calendar import WorkingCalendar
from .common import Event, content_digest
from .deadlines import CaseRules, DeadlinePolicy
from .reporting import ReportCalendar

RuleKind = Literal["policy", "calendar", "bodies", "routing", "reports"]
Digest = str
_DIGEST = r"^[0-9a-f]{64}$"

_MODELS: dict[str, type[BaseModel]] = {
    "policy": DeadlinePolicy, "calendar": WorkingCalendar, "bodies": BodyRegistry, "routing": RoutingTable,
    "reports": ReportCalendar,
}


class RuleDigestMismatch(ValueError):
    """A rule document whose content does not hash to the digest it is stored under (it was altered)."""

    def __init__(self, digest: str, found: str) -> None:
        self.digest = digest
        self.found = found
        super().__init__(f"rule document {digest}: its content hashes to {found}, not to its digest")


class UnknownRules(LookupError):
    """Rule documents named by a case that the book does not hold (yet)."""

    def __init__(self, digests: Iterable[str]) -> None:
        self.digests = sorted(digests)
        super().__init__(f"rule documents not known here: {', '.join(self.digests)}")


class RuleDocument(BaseModel):
    """One rule document as the `rule_sets` table and the fetch activity carry it."""

    model_config = ConfigDict(frozen=True)

    kind: RuleKind
    digest: Digest = Field(pattern=_DIGEST)
    content: dict[str, Any]


def document(kind: RuleKind, model: BaseModel) -> RuleDocument:
    """`model` as a rule document. A rule set's own `digest` field is left out of its content: its digest is
    the hash of the rest (`set_digest`), the one every case view already shows."""
    content = model.model_dump(mode="json", exclude={"digest"} if kind == "policy" else None)
    return RuleDocument(kind=kind, digest=content_digest(content), content=content)


def read_document(doc: RuleDocument) -> BaseModel:
    """The model of `doc`, once its content is checked against its digest (`RuleDigestMismatch` otherwise)."""
    found = content_digest(doc.content)
    if found != doc.digest:
        raise RuleDigestMismatch(doc.digest, found)
    model = _MODELS[doc.kind].model_validate(doc.content)
    return model.model_copy(update={"digest": doc.digest}) if doc.kind == "policy" else model


class RulesRef(BaseModel):
    """The rules a case is counted under, by the digests of their four documents."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: Digest = Field(pattern=_DIGEST)
    calendar: Digest = Field(pattern=_DIGEST)
    bodies: Digest = Field(pattern=_DIGEST)
    routing: Digest = Field(pattern=_DIGEST)

    def documents(self) -> dict[Digest, RuleKind]:
        return {self.policy: "policy", self.calendar: "calendar", self.bodies: "bodies", self.routing: "routing"}


class PlanRulesRef(BaseModel):
    """The rules a plan task runs on (`PlanRules`): its case rules and its report calendar, by digest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case: RulesRef
    reports: Digest = Field(pattern=_DIGEST)

    def documents(self) -> dict[Digest, RuleKind]:
        return {**self.case.documents(), self.reports: "reports"}


class RuleBook:
    """Rule documents by digest, each checked against its digest when added: a digest, once known, always gives
    the same content. Shared by the threads of a worker; adding the same document twice changes nothing."""

    def __init__(self) -> None:
        self._models: dict[Digest, BaseModel] = {}
        self._rules: dict[RulesRef, CaseRules] = {}
        self._lock = threading.Lock()
        #: Digests a case asked for and the book lacked: its owner fetches them (`activities.rulebook`).
        self.wanted: set[Digest] = set()

    def __contains__(self, digest: object) -> bool:
        return digest in self._models

    def add(self, doc: RuleDocument) -> None:
        """Keep `doc`, after checking its content against its digest."""
        if doc.digest not in self._models:
            model = read_document(doc)
            with self._lock:
                self._models.setdefault(doc.digest, model)
                self.wanted.discard(doc.digest)

    def keep(self, kind: RuleKind, model: BaseModel) -> RuleDocument:
        """Keep a document built here (from the policy files), and return it with its digest."""
        doc = document(kind, model)
        with self._lock:
            self._models.setdefault(doc.digest, model.model_copy(update={"digest": doc.digest})
                                    if kind == "policy" else model)
        return doc

    def missing(self, ref: RulesRef | PlanRulesRef) -> list[Digest]:
        return sorted(d for d in ref.documents() if d not in self._models)

    def model(self, digest: Digest) -> BaseModel:
        """The document of `digest`; `UnknownRules` (the digest noted in `wanted`) when the book lacks it."""
        found = self._models.get(digest)
        if found is None:
            with self._lock:
                self.wanted.add(digest)
            raise UnknownRules([digest])
        return found

    def case_rules(self, ref: RulesRef) -> CaseRules:
        """The rules `ref` names; `UnknownRules` (the digests noted in `wanted`) when the book lacks some."""
        found = self._rules.get(ref)
        if found is not None:
            return found
        missing = self.missing(ref)
        if missing:
            with self._lock:
                self.wanted.update(missing)
            raise UnknownRules(missing)
        rules = CaseRules(policy=self._models[ref.policy], calendar=self._models[ref.calendar],
                          bodies=self._models[ref.bodies], routing=self._models[ref.routing])
        with self._lock:
            self._rules.setdefault(ref, rules)
        return rules


def rules_ref(rules: CaseRules, book: RuleBook) -> tuple[RulesRef, list[RuleDocument]]:
    """The ref of `rules` and its four documents (kept in `book`)."""
    if rules.bodies is None or rules.routing is None:
        raise ValueError("rules without bodies or routing are recorded in full, as before")
    docs = [book.keep("policy", rules.policy), book.keep("calendar", rules.calendar),
            book.keep("bodies", rules.bodies), book.keep("routing", rules.routing)]
    return RulesRef(policy=docs[0].digest, calendar=docs[1].digest, bodies=docs[2].digest,
                    routing=docs[3].digest), docs


def plan_rules_ref(case: CaseRules, reports: ReportCalendar, book: RuleBook
                   ) -> tuple[PlanRulesRef, list[RuleDocument]]:
    """The ref of a plan task's rules (its case rules and report calendar) and their five documents."""
    ref, docs = rules_ref(case, book)
    calendar = book.keep("reports", reports)
    return PlanRulesRef(case=ref, reports=calendar.digest), [*docs, calendar]


class RecordsRules(Event):
    """An event that records the rules its case is counted under: in full (`rules`, as cases recorded before
    rules were recorded by digest have them), or by `rules_ref`, the content then held beside it in memory
    (given by the decider, or by `with_rules` to an event read back) and never stored. Subclasses declare both
    fields and say how a book resolves the ref (`resolved`)."""

    @model_validator(mode="after")
    def _one_shape(self) -> RecordsRules:
        if self._rules() is None and self._ref() is None:
            raise ValueError("an event that records rules holds them, or their ref")
        return self

    def _rules(self) -> Any:
        return getattr(self, "rules", None)

    def _ref(self) -> RulesRef | PlanRulesRef | None:
        return getattr(self, "rules_ref", None)

    def payload(self) -> dict[str, Any]:
        left_out = {"rules"} if self._ref() is not None else {"rules_ref"}
        return self.model_dump(mode="json", exclude=set(self.ENVELOPE) | left_out)

    def unresolved(self) -> set[Digest]:
        """The digests its ref names while it holds no content (read back from the store)."""
        ref = self._ref()
        return set(ref.documents()) if self._rules() is None and ref is not None else set()

    def resolved(self, book: RuleBook) -> RecordsRules:
        """The event with the content its ref names, from `book`."""
        raise NotImplementedError

    def held_rules(self) -> Any:
        """The rules, resolved: `UnknownRules` for an event read back without going through `with_rules`."""
        if self._rules() is None:
            raise UnknownRules(self.unresolved())
        return self._rules()


class RecordsCaseRules(RecordsRules):
    """An event that records a case's `CaseRules` (a petition's receipt, a supervision's opening)."""

    rules: CaseRules | None = None
    rules_ref: RulesRef | None = None

    def resolved(self, book: RuleBook) -> RecordsCaseRules:
        assert self.rules_ref is not None
        return self.model_copy(update={"rules": book.case_rules(self.rules_ref)})

    def case_rules(self) -> CaseRules:
        rules: CaseRules = self.held_rules()
        return rules


def refs(events: Iterable[Any]) -> set[Digest]:
    """The digests the rule-recording events among `events` name and do not hold the content of."""
    return {d for e in events if isinstance(e, RecordsRules) for d in e.unresolved()}


def with_rules(events: Iterable[Any], book: RuleBook) -> list[Any]:
    """`events` with the rules of every rule-recording one resolved from `book` (`UnknownRules` if it lacks some)."""
    return [e.resolved(book) if isinstance(e, RecordsRules) and e.unresolved() else e for e in events]
