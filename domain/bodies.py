"""The bodies of the province, dated, and the default routing of a petition to one of them (docs/legal-reference.md
§0, §2, §6).

The 2025 reorganisation means no body is forever: the district tier ended on 1 Jul 2025, the Ban Dân vận and
the Ban Tuyên giáo of the Provincial Party Committee were merged, district inspectorates were abolished. A `Body`
therefore has a validity window (`valid_from` inclusive, `valid_to` exclusive) and may name a `successor`. A case
keeps the body that existed when its event happened; only new work is sent to the successor.

Bodies of the district tier are *families*: one generic entry (`UBND_HUYEN`) with name templates, from which the
registry makes one instance per district (`UBND_HUYEN:nam-sach`). The registry is recorded in event data (in
`CaseRules`), so it serialises as written in `policy/bodies.yaml` (families, not their instances; no default
values) and rebuilds the instances when read back.

`RoutingTable` maps what a classified petition is about (kind, subject, level, district) to the body that should
handle it by default, on a given day. Both are data a province corrects without a release; nothing here names a
body.

Pure: standard library and pydantic only; no clock, no I/O.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from datetime import date
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

#: A body's code, as commands carry it (`domain.petitions.commands.BodyCode`): `FAMILY` or `FAMILY:instance`.
BODY_CODE_PATTERN = r"^[A-Z0-9_]+(:[A-Za-z0-9_.-]+)?$"
#: A district's key in instance codes: lower-case ASCII words joined by hyphens ("nam-sach").
DISTRICT_SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
#: A routing rule's body: a code, or a family's instance for the petition's district (`UBND_HUYEN:{district}`).
ROUTED_BODY_PATTERN = r"^[A-Z0-9_]+(:([A-Za-z0-9_.-]+|\{district\}))?$"

DISTRICT_PLACEHOLDER = "{district}"
WILDCARD = "*"

#: Which system a body belongs to. The Party is neither "government" nor "Front" (docs/legal-reference.md §6).
Side = Literal["party", "state", "front", "armed_forces", "cross"]
#: `central` is for the few central bodies the plan names (Ban Dân vận Trung ương).
Level = Literal["central", "province", "district", "commune"]
RoutingKind = Literal["complaint", "denunciation", "recommendation", "voter_petition", "*"]
RoutingLevel = Literal["province", "district", "commune", "*"]

#: The fields of a district that a family's name templates may use.
_TEMPLATE_FIELDS = frozenset({"name", "unit_vi", "unit_en", "party_committee_vi"})


# --- errors -------------------------------------------------------------------------------------------------


class BodyError(Exception):
    """Base of the errors about bodies and routing."""


class UnknownBody(BodyError, KeyError):
    """The registry has no body with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownDistrict(BodyError, ValueError):
    """A district given to routing is not one the registry lists."""

    def __init__(self, district: str, known: Iterable[str]) -> None:
        self.district = district
        super().__init__(f"district {district!r} is not in the registry (known: {', '.join(known) or 'none'})")


class BodyNotEffective(BodyError, ValueError):
    """The body does not exist on that day (not yet, or no longer, and no successor that does)."""

    def __init__(self, body: Body, on: date, reason: str = "") -> None:
        self.code = body.code
        self.on = on
        self.valid_from = body.valid_from
        self.valid_to = body.valid_to
        self.successor = body.successor
        successor = f"; its successor is {body.successor}" if body.successor else "; no successor is recorded"
        super().__init__(
            f"body {body.code} ({body.name_vi}) is not in force on {on.isoformat()}: it exists {body.window()}"
            f"{successor}{'; ' + reason if reason else ''}"
        )


class NoRoute(BodyError, LookupError):
    """No routing rule matches a petition on that day."""

    def __init__(
        self, kind: str, subject_category: str | None, level: str, district: str | None, on: date, version: str
    ) -> None:
        self.kind = kind
        self.subject_category = subject_category
        self.level = level
        self.district = district
        self.on = on
        super().__init__(
            f"no routing rule (routing version {version!r}) for kind={kind!r}, subject_category={subject_category!r},"
            f" level={level!r}, district={district!r} on {on.isoformat()}; name the competent body explicitly or "
            f"add a rule to policy/routing.yaml"
        )


class RoutingTableError(BodyError, ValueError):
    """Routing rules that do not fit a registry: each problem with the index of its rule."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"rules[{index}]: {message}" for index, message in problems))


# --- helpers ------------------------------------------------------------------------------------------------


def _nfc(value: str) -> str:
    # Vietnamese typed on some systems arrives decomposed (NFD); compare and display it composed.
    return unicodedata.normalize("NFC", value.strip())


def _fold(text: str) -> str:
    """`text` for comparison: NFC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _window(valid_from: date | None, valid_to: date | None) -> str:
    if valid_from is None and valid_to is None:
        return "with no start or end date"
    if valid_to is None:
        return f"from {valid_from.isoformat()}" if valid_from else "always"
    end = f"until {valid_to.isoformat()} (exclusive)"
    return f"from {valid_from.isoformat()} {end}" if valid_from else end


def _in_window(on: date, valid_from: date | None, valid_to: date | None) -> bool:
    return (valid_from is None or valid_from <= on) and (valid_to is None or on < valid_to)


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class _Compact(BaseModel):
    """Serialises without the fields that hold their default value: registries and routing tables travel in
    event data of every case, and most bodies have no dates, successor, parent or note."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        fields = type(self).model_fields

        def keep(key: str, value: Any) -> bool:
            field = fields.get(key)
            return field is None or field.is_required() or value != field.get_default(call_default_factory=True)

        return {key: value for key, value in data.items() if keep(key, value)}


# --- bodies -------------------------------------------------------------------------------------------------


class District(_Compact):
    """A district-level unit (huyện, thị xã, thành phố thuộc tỉnh) whose bodies the families instantiate."""

    slug: str = Field(pattern=DISTRICT_SLUG_PATTERN)
    #: The proper name, with diacritics: "Nam Sách".
    name: str = Field(min_length=1)
    #: "huyện", "thị xã" or "thành phố".
    unit_vi: str = Field(min_length=1)
    #: "district", "town" or "city".
    unit_en: str = Field(min_length=1)
    #: The name of its Party committee: "Huyện ủy", "Thị ủy" or "Thành ủy".
    party_committee_vi: str = Field(min_length=1)
    note: str = ""

    @field_validator("name", "unit_vi", "unit_en", "party_committee_vi", "note")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return _nfc(value)

    def names(self) -> list[str]:
        """How people write this district: the slug, the name, and the name with its unit ("huyện Nam Sách")."""
        return [self.slug, self.name, f"{self.unit_vi} {self.name}", f"{self.name} {self.unit_en}"]


class Body(_Compact):
    """One body (cơ quan, tổ chức) with the days it exists and the body that took over from it."""

    code: str = Field(pattern=BODY_CODE_PATTERN, min_length=2, max_length=64)
    name_vi: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    side: Side
    level: Level
    parent: str | None = Field(default=None, pattern=BODY_CODE_PATTERN)
    #: First day in force (inclusive); None: since before any record the system holds.
    valid_from: date | None = None
    #: First day no longer in force (exclusive); None: still in force.
    valid_to: date | None = None
    #: The body that took over this one's duties on `valid_to`; None when none is known (see `note`).
    successor: str | None = Field(default=None, pattern=BODY_CODE_PATTERN)
    predecessors: list[str] = Field(default_factory=list)
    #: For a group code (CTXH_ALL): the bodies it stands for.
    members: list[str] = Field(default_factory=list)
    #: For a district family: how its instances are named, with {name}, {unit_vi}, {unit_en}, {party_committee_vi}.
    instance_name_vi: str | None = None
    instance_name_en: str | None = None
    note: str = ""

    @field_validator("name_vi", "name_en", "note", "instance_name_vi", "instance_name_en")
    @classmethod
    def _normalise(cls, value: str | None) -> str | None:
        return None if value is None else _nfc(value)

    @model_validator(mode="after")
    def _consistent(self) -> Body:
        problems = [*self._window_problems(), *self._relation_problems(), *self._family_problems()]
        if problems:
            raise ValueError(f"{self.code}: " + "; ".join(problems))
        return self

    def _window_problems(self) -> list[str]:
        problems = []
        if not self.name_vi or not self.name_en:
            problems.append("name_vi and name_en must not be empty")
        if self.valid_from is not None and self.valid_to is not None and self.valid_from >= self.valid_to:
            problems.append(f"valid_from {self.valid_from} must be before valid_to {self.valid_to}")
        if self.successor is not None and self.valid_to is None:
            problems.append(f"successor {self.successor} given but no valid_to: when did it take over?")
        return problems

    def _relation_problems(self) -> list[str]:
        problems = [f"{name} is the body itself" for name, value in (("successor", self.successor),
                                                                      ("parent", self.parent)) if value == self.code]
        if self.code in self.predecessors or self.code in self.members:
            problems.append("a body cannot be its own predecessor or member")
        for name, values in (("predecessors", self.predecessors), ("members", self.members)):
            problems += [f"{name}: {value!r} is not a body code" for value in values
                         if not re.match(BODY_CODE_PATTERN, value)]
            if len(set(values)) != len(values):
                problems.append(f"{name} lists a body twice")
        return problems

    def _family_problems(self) -> list[str]:
        problems = []
        if (self.instance_name_vi is None) != (self.instance_name_en is None):
            problems.append("instance_name_vi and instance_name_en go together (both or neither)")
        if self.instance_name_vi is None:
            return problems
        if ":" in self.code:
            problems.append("an instance cannot itself be a family (no instance_name_* on X:suffix codes)")
        if self.level != "district":
            problems.append(f"a family has one instance per district, so its level is district, not {self.level}")
        for template in (self.instance_name_vi, self.instance_name_en or ""):
            unknown = _template_fields(template) - _TEMPLATE_FIELDS
            if unknown:
                problems.append(
                    f"instance name {template!r} uses {', '.join(sorted(unknown))}; "
                    f"allowed: {', '.join('{' + f + '}' for f in sorted(_TEMPLATE_FIELDS))}"
                )
        return problems

    @property
    def family(self) -> str:
        """The family code: `X` for `X:suffix`, the code itself otherwise."""
        return self.code.split(":", 1)[0]

    @property
    def is_family(self) -> bool:
        """Whether the registry makes one instance of this body per district."""
        return self.instance_name_vi is not None

    def is_effective(self, on: date) -> bool:
        """Whether the body exists on `on` (`valid_from` <= on < `valid_to`)."""
        return _in_window(on, self.valid_from, self.valid_to)

    def window(self) -> str:
        """The validity window in words, for messages."""
        return _window(self.valid_from, self.valid_to)


class BodyRegistry(_Compact):
    """All bodies of one version of `policy/bodies.yaml`, with the district instances of every family.

    Validated when built (so a bad file stops the worker at start): unique codes; every parent, successor,
    predecessor and member exists; no cycle of successors or parents; a successor in force when its predecessor
    ends; a predecessor that has ended.
    """

    version: str = Field(min_length=1)
    districts: tuple[District, ...] = ()
    #: As written in the file: bodies, families and any instance written out to override a generated one.
    bodies: tuple[Body, ...]

    _index: dict[str, Body] = PrivateAttr(default_factory=dict)
    _districts: dict[str, District] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _build(self) -> BodyRegistry:
        problems: list[str] = []
        districts = self._district_index(problems)
        explicit = self._explicit_codes(problems)
        where = {code: f"bodies[{index}] ({code})" for code, index in explicit.items()}
        index_ = self._expand(districts, explicit, where)
        problems += self._reference_problems(index_, where)
        if not problems:
            problems += self._check_chains(index_, where)
        if problems:
            listing = "".join(f"\n    {problem}" for problem in problems)
            raise ValueError(f"bodies version {self.version!r}, {len(problems)} problem(s):{listing}")
        self._index = index_
        self._districts = districts
        return self

    def _district_index(self, problems: list[str]) -> dict[str, District]:
        districts: dict[str, District] = {}
        for index, district in enumerate(self.districts):
            if district.slug in districts:
                problems.append(f"districts[{index}] ({district.slug}): the district is listed twice")
            districts[district.slug] = district
        return districts

    def _explicit_codes(self, problems: list[str]) -> dict[str, int]:
        """Each code written in the file, with the index of its first entry."""
        explicit: dict[str, int] = {}
        for index, body in enumerate(self.bodies):
            if body.code in explicit:
                problems.append(f"bodies[{index}] ({body.code}): duplicate code, already bodies[{explicit[body.code]}]")
            else:
                explicit[body.code] = index
        return explicit

    def _expand(self, districts: dict[str, District], explicit: dict[str, int], where: dict[str, str]
                ) -> dict[str, Body]:
        """Every body by code: those written, and each family's instance for every district not written out."""
        families = {body.code for body in self.bodies if body.is_family}
        index_: dict[str, Body] = {}
        for body in self.bodies:
            index_.setdefault(body.code, body)
            if not body.is_family:
                continue
            for district in districts.values():
                instance = f"{body.code}:{district.slug}"
                if instance not in explicit:
                    index_[instance] = self._instance(body, district, families)
                    where[instance] = f"{instance} (made from the family {body.code})"
        return index_

    @staticmethod
    def _reference_problems(index_: dict[str, Body], where: dict[str, str]) -> list[str]:
        """Each family, parent, successor, predecessor and member named by a body that is not in the registry."""
        problems: list[str] = []
        for code, body in index_.items():
            if ":" in code and body.family not in index_:
                problems.append(f"{where[code]}: its family {body.family!r} is not a body of the registry")
            named = [("parent", body.parent), ("successor", body.successor),
                     *(("predecessor", p) for p in body.predecessors), *(("member", m) for m in body.members)]
            problems += [f"{where[code]}: {name} {value!r} is not a body of the registry"
                         for name, value in named if value is not None and value not in index_]
        return problems

    @staticmethod
    def _instance(family: Body, district: District, families: set[str]) -> Body:
        """The instance of `family` for `district`: named by the templates, dated like its family; a parent or
        successor that is itself a family becomes that family's instance for the same district."""
        values = {
            "name": district.name,
            "unit_vi": district.unit_vi,
            "unit_en": district.unit_en,
            "party_committee_vi": district.party_committee_vi,
        }

        def localise(code: str | None) -> str | None:
            if code is None or ":" in code:
                return code
            return f"{code}:{district.slug}" if code in families else code

        return Body(
            code=f"{family.code}:{district.slug}",
            name_vi=(family.instance_name_vi or "").format_map(values),
            name_en=(family.instance_name_en or "").format_map(values),
            side=family.side,
            level=family.level,
            parent=localise(family.parent),
            valid_from=family.valid_from,
            valid_to=family.valid_to,
            successor=localise(family.successor),
        )

    @staticmethod
    def _check_chains(index: dict[str, Body], where: dict[str, str]) -> list[str]:
        problems = [*_cycles(index, where, "successor"), *_cycles(index, where, "parent")]
        for code, body in index.items():
            problems += _succession_problems(index, body, where[code])
        return problems

    # -- lookups --------------------------------------------------------------------------------------------

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._index

    def codes(self) -> list[str]:
        """Every code, instances included, in file order (each family followed by its instances)."""
        return list(self._index)

    def get(self, code: str) -> Body:
        """The body `code`, whatever the date; `UnknownBody` naming the code if there is none."""
        try:
            return self._index[code]
        except KeyError:
            pass
        family, _, suffix = code.partition(":")
        if suffix and family in self._index:
            hint = (
                f"; {family} has instances for {', '.join(self._districts) or 'no district'}"
                if self._index[family].is_family
                else f"; {family} is not a district family"
            )
        else:
            hint = ""
        raise UnknownBody(code, f"unknown body {code!r} (bodies version {self.version!r}){hint}")

    def effective(self, code: str, on: date) -> Body:
        """The body `code` if it is in force on `on`; `BodyNotEffective` (naming the code, the day, its window and
        its successor) if it is not, `UnknownBody` if there is no such body."""
        body = self.get(code)
        if not body.is_effective(on):
            raise BodyNotEffective(body, on)
        return body

    def is_effective(self, code: str, on: date) -> bool:
        """Whether `code` is in force on `on`. An unknown code is an error, not False: a typo must not pass."""
        return self.get(code).is_effective(on)

    def successor_on(self, code: str, on: date) -> str:
        """The body that does `code`'s work on `on`: `code` itself while it is in force, otherwise the first body
        along its successor chain that is. `BodyNotEffective` if `on` is before the body existed, or the chain
        ends with no body in force on that day."""
        body = self.get(code)
        seen = {body.code}
        while not body.is_effective(on):
            via = "" if body.code == code else f"reached from {code} along the successor chain"
            if body.valid_from is not None and on < body.valid_from:
                raise BodyNotEffective(body, on, via or "the day is before the body existed")
            if body.successor is None:
                raise BodyNotEffective(body, on, via)
            body = self.get(body.successor)
            if body.code in seen:  # cannot happen after validation; kept so a bad snapshot cannot loop forever
                raise BodyNotEffective(body, on, f"successor cycle through {code}")
            seen.add(body.code)
        return body.code

    def by_side(self, side: Side, on: date) -> list[Body]:
        """The bodies of `side` in force on `on`, in file order."""
        return [body for body in self._index.values() if body.side == side and body.is_effective(on)]

    def resolve_family(self, code: str) -> str:
        """The family of `code`: `X` for `X:suffix`, `code` for a body that is not an instance. `UnknownBody` if
        the family is not in the registry."""
        family = code.split(":", 1)[0]
        self.get(family)
        return family

    def instances(self, family: str) -> list[Body]:
        """The district instances of `family` (generated or written out), in district order."""
        return [self._index[f"{family}:{slug}"] for slug in self._districts if f"{family}:{slug}" in self._index]

    def district_slugs(self) -> list[str]:
        """The slugs of the registry's districts, in file order."""
        return list(self._districts)

    def district(self, slug: str) -> District:
        """The district with this slug; `UnknownDistrict` if there is none."""
        try:
            return self._districts[slug]
        except KeyError:
            raise UnknownDistrict(slug, self._districts) from None

    def find_district(self, text: str) -> District | None:
        """The district `text` names, by slug or by name with or without its unit ("Nam Sách", "huyện Nam
        Sách", "nam-sach"); None if none does. For the free-text `district` of a petition's intake."""
        wanted = _fold(text)
        for district in self._districts.values():
            if wanted in {_fold(name) for name in district.names()}:
                return district
        return None


# --- routing ------------------------------------------------------------------------------------------------


class RoutingRule(_Compact):
    """Where petitions of a kind, subject, level and district go by default, between two days.

    `*` matches anything. `body` may be `FAMILY:{district}`: the family's instance for the petition's district.
    """

    kind: RoutingKind = "*"
    subject_category: str = Field(default=WILDCARD, min_length=1)
    level: RoutingLevel = "*"
    district: str = WILDCARD
    body: str = Field(pattern=ROUTED_BODY_PATTERN)
    valid_from: date | None = None
    valid_to: date | None = None
    legal_basis: str = Field(min_length=1)
    note: str = ""

    @field_validator("subject_category", "legal_basis", "note")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return _nfc(value)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingRule:
        if self.district != WILDCARD and not re.match(DISTRICT_SLUG_PATTERN, self.district):
            raise ValueError(f"district {self.district!r} must be '*' or a district slug such as 'nam-sach'")
        if self.valid_from is not None and self.valid_to is not None and self.valid_from >= self.valid_to:
            raise ValueError(f"valid_from {self.valid_from} must be before valid_to {self.valid_to}")
        if self.uses_district_placeholder and self.level != "district":
            raise ValueError(f"body {self.body} needs the petition's district, so the rule's level must be district")
        return self

    @property
    def uses_district_placeholder(self) -> bool:
        """Whether `body` is `FAMILY:{district}`, the family's instance for the petition's district."""
        return self.body.endswith(":" + DISTRICT_PLACEHOLDER)

    @property
    def specificity(self) -> int:
        """How many of kind, subject_category, level and district the rule fixes (not `*`)."""
        return sum(value != WILDCARD for value in (self.kind, self.subject_category, self.level, self.district))

    def is_in_force(self, on: date) -> bool:
        """Whether the rule applies on `on` (`valid_from` <= on < `valid_to`)."""
        return _in_window(on, self.valid_from, self.valid_to)

    def matches(self, kind: str, subject_category: str | None, level: str, district: str | None) -> bool:
        """Whether the rule applies to a petition with these attributes (the day aside)."""
        if self.kind != WILDCARD and self.kind != kind:
            return False
        if self.subject_category != WILDCARD and (
            subject_category is None or _fold(self.subject_category) != _fold(subject_category)
        ):
            return False
        if self.level != WILDCARD and self.level != level:
            return False
        if self.district != WILDCARD and self.district != district:
            return False
        return not (self.uses_district_placeholder and district is None)

    def body_for(self, district: str | None) -> str:
        """The body code for a petition of `district` (the placeholder filled in)."""
        if self.uses_district_placeholder:
            if district is None:
                raise ValueError(f"rule body {self.body} needs a district")
            return self.body.replace(DISTRICT_PLACEHOLDER, district)
        return self.body


class RoutingDecision(BaseModel):
    """Where a petition goes by default, and why; recorded with the classification."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: str
    #: The index of the rule in the case's recorded routing table.
    rule_index: int
    legal_basis: str
    #: The body the rule names, when it was no longer in force and `body` is its successor.
    replaced_from: str | None = None


class RoutingTable(_Compact):
    """The routing rules of one version of `policy/routing.yaml`, in file order (order breaks ties)."""

    version: str = Field(min_length=1)
    rules: tuple[RoutingRule, ...]

    def check(self, registry: BodyRegistry) -> None:
        """`RoutingTableError` listing every rule that names a body or district the registry lacks, points to a
        body that ends (with no successor) inside the rule's window, or can never be chosen."""
        problems: list[tuple[int, str]] = []
        seen: dict[tuple[Any, ...], int] = {}
        for index, rule in enumerate(self.rules):
            slugs = registry.district_slugs()
            if rule.district != WILDCARD and rule.district not in slugs:
                problems.append((index, str(UnknownDistrict(rule.district, slugs))))
            if rule.uses_district_placeholder:
                code = rule.body.split(":", 1)[0]
                if code not in registry:
                    problems.append((index, f"body {rule.body}: {code!r} is not a body of the registry"))
                    continue
                if not registry.get(code).is_family:
                    problems.append((index, f"body {rule.body}: {code} is not a district family"))
                    continue
            else:
                code = rule.body
                if code not in registry:
                    problems.append((index, f"body {code!r} is not a body of the registry"))
                    continue
            problems += [(index, message) for message in self._window_problems(rule, registry.get(code), registry)]
            key = (rule.kind, _fold(rule.subject_category), rule.level, rule.district, rule.valid_from, rule.valid_to)
            if key in seen:
                problems.append((index, f"never chosen: rules[{seen[key]}] has the same conditions and comes first"))
            seen.setdefault(key, index)
        if problems:
            raise RoutingTableError(problems)

    @staticmethod
    def _window_problems(rule: RoutingRule, body: Body, registry: BodyRegistry) -> list[str]:
        # The rule must never send a petition to a body that does not exist on that day and has no successor.
        problems = []
        if body.valid_from is not None and (rule.valid_from is None or rule.valid_from < body.valid_from):
            problems.append(
                f"body {rule.body} exists only {body.window()}; give the rule valid_from {body.valid_from} or later"
            )
        last = body
        while last.successor is not None:
            last = registry.get(last.successor)
        if last.valid_to is not None and (rule.valid_to is None or rule.valid_to > last.valid_to):
            through = f" (through its successors, last {last.code})" if last is not body else ""
            problems.append(
                f"body {rule.body} ends on {last.valid_to}{through} with no successor; give the rule "
                f"valid_to {last.valid_to} or earlier and add a separate rule for later days"
            )
        return problems

    def route(
        self,
        kind: str,
        subject_category: str | None,
        level: str,
        district: str | None,
        on: date,
        registry: BodyRegistry,
    ) -> RoutingDecision:
        """The default body for a petition on day `on`.

        The rule in force on `on` that matches and fixes the most of kind, subject_category, level and district
        wins; among equally specific rules the first in the file. `district` may be a slug or a name the registry
        knows ("Nam Sách"). When the chosen body is no longer in force, its successor on `on` is returned and the
        rule's body is kept in `replaced_from`. `NoRoute` names the inputs when no rule matches; `UnknownDistrict`
        for a district the registry does not list; `BodyNotEffective` when the body ended with no successor.
        """
        slug: str | None = None
        if district is not None:
            found = registry.find_district(district)
            if found is None:
                raise UnknownDistrict(district, registry.district_slugs())
            slug = found.slug
        best: tuple[int, int] | None = None
        for index, rule in enumerate(self.rules):
            if rule.is_in_force(on) and rule.matches(kind, subject_category, level, slug):
                if best is None or rule.specificity > best[0]:
                    best = (rule.specificity, index)
        if best is None:
            raise NoRoute(str(kind), subject_category, level, district, on, self.version)
        index = best[1]
        rule = self.rules[index]
        code = rule.body_for(slug)
        actual = registry.successor_on(code, on)
        return RoutingDecision(
            body=actual,
            rule_index=index,
            legal_basis=rule.legal_basis,
            replaced_from=code if actual != code else None,
        )


def _cycles(index: dict[str, Body], where: dict[str, str], attribute: str) -> list[str]:
    """Each cycle of `attribute` links (successor or parent) among the bodies of `index`, reported once."""
    problems: list[str] = []
    reported: set[str] = set()
    for start in index:
        seen: list[str] = []
        code: str | None = start
        while code is not None and code not in seen:
            seen.append(code)
            code = getattr(index[code], attribute)
        if code is None:
            continue
        cycle = seen[seen.index(code) :]
        if not reported & set(cycle):
            reported |= set(cycle)
            problems.append(f"{where[code]}: {attribute} cycle {' -> '.join([*cycle, code])}")
    return problems


def _succession_problems(index: dict[str, Body], body: Body, where: str) -> list[str]:
    """A successor not in force when `body` ends, or ended already; a predecessor that has not ended."""
    problems: list[str] = []
    if body.successor is not None:
        successor = index[body.successor]
        assert body.valid_to is not None  # Body's own validator
        if successor.valid_from is not None and successor.valid_from > body.valid_to:
            problems.append(
                f"{where}: ends on {body.valid_to} but its successor {successor.code} starts only on "
                f"{successor.valid_from}; nothing would be in force in between"
            )
        if successor.valid_to is not None and successor.valid_to <= body.valid_to:
            problems.append(f"{where}: its successor {successor.code} has already ended ({successor.window()})")
    problems += [f"{where}: predecessor {predecessor} has no valid_to (it has not ended)"
                 for predecessor in body.predecessors if index[predecessor].valid_to is None]
    return problems
