"""The action plan as a document: its tasks, subtasks and standing duties, who leads and who coordinates each,
and how often each reports (docs/legal-reference.md §5; docs/architecture.md, plan task).

Every task of section II of the plan (II.1 … II.4.c) and every standing duty of section III (III.1 … III.3)
becomes one long-running case. The plan is data (`plan/action_plan.yaml`): a province edits it, or imports
another plan of the same shape, without a release. This module is the document and its rules; reading the file
is `activities.plan_loader`.

Shape. `tasks` and `standing_duties` are flat lists; a task's parent is its id without the last part ("II.2.1.a"
→ "II.2.1", "II.2.1" → "II.2", "II.2" → none). A subtask that does not give its own `lead`, `coordinators` or
`cadence` takes its parent's; this is resolved when the document is validated, and `inherited` records which of
the three came from the parent. A document is exported as written: inherited values are left out and the mark
kept, so an export reads back the same and an edit of the parent reaches the subtask.

Bodies. Each body a task names is a `BodyRef`: a code of the body registry (`policy/bodies.yaml`) and whether
the plan names it (`explicit`) or we infer it (`inferred`: to be confirmed with the client). The plan names the
bodies of its 2020–2025 term; a body that no longer exists (the district tier, the Ban Dân vận before its 2025
merger) stays here as the plan names it, and the workflows hand its work to the successor.

Errors. Every problem is a `PlanProblem` naming the task, the rule it breaks (`RULES`) and where; all problems
of a document are reported together in one `PlanError`.

Pure: standard library, pydantic and `domain`; no clock, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.bodies import BODY_CODE_PATTERN, BodyRegistry, UnknownBody
from domain.common import content_digest

#: How often a task reports or acts (docs/legal-reference.md §5). The plan itself sets only 6-monthly and annual reports
#: (III.2–3); the others describe tasks that run differently (II.2.4.c, II.2.5.c, II.2.7, III.2, III.3).
Cadence = Literal[
    "semiannual",  # a report every 6 months
    "annual",  # a report every year
    "one_off_subplan",  # the body issues its own implementing plan once (III.2)
    "continuous_monitoring",  # follows the situation all the time (II.2.4.c, III.3)
    "ad_hoc",  # work arrives when a superior assigns it (II.2.7)
    "ad_hoc_report",  # reports when something arises (II.2.4.c)
    "event_driven",  # acts on dates and occasions: holidays, festivals (II.2.5.c)
]
#: `explicit`: the plan's text names the body; `inferred`: we infer it (confirm with the client).
Basis = Literal["explicit", "inferred"]
#: Which other cases feed a task's reports: petitions, voters' petitions, Front supervision.
Link = Literal["petitions", "voters_petitions", "front_supervision"]
#: The fields a subtask takes from its parent when it does not give its own.
InheritableField = Literal["lead", "coordinators", "cadence"]
INHERITABLE: tuple[InheritableField, ...] = ("lead", "coordinators", "cadence")

#: A task id: the plan's section in Roman numerals, its numbers, and a letter for a bullet
#: ("II.1", "II.2.1", "II.2.1.a", "II.4.c", "III.2").
TASK_ID_PATTERN = r"^[IVX]+(\.[1-9][0-9]*)+(\.[a-z])?$"
#: The plan's own id: letters, digits and - _ . ("KH-BDVTU-DH17").
PLAN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

#: Every rule a plan can break, with what it asks. Errors name one of these keys.
RULES: dict[str, str] = {
    "id_format": "a task id is the section, its numbers and an optional letter: II.1, II.2.1, II.2.1.a, III.2",
    "id_unique": "no id is used twice (tasks and standing duties together)",
    "parent_matches_id": "a task's parent, if given, is its id without the last part",
    "parent_exists": "a subtask's parent is in the same list (tasks or standing_duties)",
    "section": "all tasks are of one section of the plan, all standing duties of another",
    "nfc": "all text is in Unicode NFC (composed), as the seed is",
    "text_format": "titles and texts are not empty and have no leading or trailing whitespace; titles are one line",
    "cadence_known": "a cadence is one of: " + ", ".join(get_args(Cadence)),
    "basis_known": "a basis is explicit or inferred",
    "link_known": "a link is one of: " + ", ".join(get_args(Link)),
    "field_known": "only the fields of the format are allowed (see plan/README.md)",
    "field_required": "required fields are present",
    "field_value": "a field's value has the right type",
    "body_code": "a body code is written A-Z, 0-9 and _ (FAMILY or FAMILY:district)",
    "body_known": "every body is in the body registry (policy/bodies.yaml)",
    "body_in_term": "every body named exists on some day of the plan's term",
    "no_repeats": "a list names nothing twice, and no body both leads and coordinates one task",
    "lead_required": "every task has a lead, its own or its parent's",
    "cadence_required": "every task has a cadence, its own or its parent's",
    "inherited": "only a subtask inherits, only lead/coordinators/cadence, and an inherited value is its parent's",
    "same_as_exists": "same_as names another task of the plan",
    "reporting_task_exists": "a reporting line's task is a task or standing duty of the plan",
    "term_order": "the term starts before it ends",
}

_LITERAL_RULES = {"cadence": "cadence_known", "basis": "basis_known", "links": "link_known", "inherited": "inherited"}


# --- problems -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanProblem:
    """One problem of a plan: the task it is about (None: the plan itself), the rule, where, and what."""

    task_id: str | None
    rule: str
    message: str
    #: Where in the document: "tasks[12].cadence[0]"; empty when the task id says enough.
    where: str = ""

    def __str__(self) -> str:
        where = f" at {self.where}" if self.where else ""
        return f"{self.task_id or '(plan)'}: [{self.rule}]{where} {self.message}"


class PlanError(ValueError):
    """A plan that breaks rules; `problems` lists every one, each naming its task and rule."""

    def __init__(self, problems: Iterable[PlanProblem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the plan: " + "; ".join(map(str, self.problems)))


class UnknownTask(KeyError):
    """The plan has no task with this id."""

    def __init__(self, task_id: str, plan_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"plan {plan_id} has no task {task_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


# --- field types --------------------------------------------------------------------------------------------


def _fail(rule: str, detail: str) -> PydanticCustomError:
    # The detail goes in the context, so that braces in it are never read as a template.
    return PydanticCustomError(rule, "{detail}", {"detail": detail})


def _nfc_only(value: str) -> str:
    if unicodedata.normalize("NFC", value) != value:
        raise _fail("nfc", "the text is not in Unicode NFC (composed): normalise it, e.g. re-type or convert it")
    return value


def _text(value: str) -> str:
    _nfc_only(value)
    if not value.strip():
        raise _fail("text_format", "the text is empty")
    if value != value.strip():
        raise _fail("text_format", "the text has leading or trailing whitespace")
    return value


def _line(value: str) -> str:
    _text(value)
    if "\n" in value or "\r" in value:
        raise _fail("text_format", "a title is one line (no line breaks)")
    return value


def _task_id(value: str) -> str:
    if not re.match(TASK_ID_PATTERN, value):
        raise _fail("id_format", f"{value!r} is not a task id (II.1, II.2.1, II.2.1.a, III.2)")
    return value


def _body_code(value: str) -> str:
    if not re.match(BODY_CODE_PATTERN, value):
        raise _fail("body_code", f"{value!r} is not a body code (A-Z, 0-9, _; FAMILY:district for an instance)")
    return value


#: Free text that may be empty or span lines: NFC only.
Note = Annotated[str, AfterValidator(_nfc_only)]
#: Text that is not empty and not padded, NFC.
Text = Annotated[str, AfterValidator(_text)]
#: A one-line `Text`.
Line = Annotated[str, AfterValidator(_line)]
TaskId = Annotated[str, AfterValidator(_task_id)]
BodyCode = Annotated[str, AfterValidator(_body_code)]


def parent_of(task_id: str) -> str | None:
    """The parent of a task id: the id without its last part, or None for a top-level task ("II.1", "III.2")."""
    parts = task_id.split(".")
    return ".".join(parts[:-1]) if len(parts) > 2 else None


def section_of(task_id: str) -> str:
    """The plan section of a task id: "II" for "II.2.1.a"."""
    return task_id.split(".", 1)[0]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the document -------------------------------------------------------------------------------------------


class BodyRef(_Model):
    """A body a task names, and whether the plan's text names it (`explicit`) or we infer it (`inferred`)."""

    code: BodyCode
    basis: Basis
    #: Why, or where the text names it ("named in III.1").
    note: Note = ""


class PlanTask(_Model):
    """One task, subtask or standing duty of the plan: one case (docs/architecture.md, plan task)."""

    id: TaskId
    #: Derived from the id when not given.
    parent: TaskId | None = None
    #: The seed's own wording: the heading, or the first sentence of a paragraph or bullet.
    title_vi: Line
    title_en: Line
    #: The whole heading, paragraph or bullet, as in the seed.
    text_vi: Text
    lead: list[BodyRef] = Field(default_factory=list)
    coordinators: list[BodyRef] = Field(default_factory=list)
    #: Who assigns the work, for tasks whose work arrives from outside (II.2.7).
    assigners: list[BodyRef] = Field(default_factory=list)
    cadence: list[Cadence] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    #: Another task with the same scope (II.4.a is II.2.6).
    same_as: TaskId | None = None
    note: Note = ""
    #: Which of lead, coordinators and cadence came from the parent (set when the document is validated).
    inherited: list[InheritableField] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _derive_parent(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parent" not in data:
            task_id = data.get("id")
            if isinstance(task_id, str) and re.match(TASK_ID_PATTERN, task_id):
                return {**data, "parent": parent_of(task_id)}
        return data

    @property
    def is_subtask(self) -> bool:
        """Whether the task has a parent (a bullet, or a heading under another heading)."""
        return self.parent is not None

    def bodies(self) -> list[BodyRef]:
        """Lead, coordinators and assigners, in that order."""
        return [*self.lead, *self.coordinators, *self.assigners]


class Signer(_Model):
    """Who signed the plan."""

    name: Line
    position_vi: Line
    position_en: Line


class ReportingLine(_Model):
    """A standing reporting duty: who reports to whom, how often (plan III.2, III.3)."""

    #: The standing duty (or task) that sets it.
    task: TaskId | None = None
    from_body: BodyCode
    to_body: BodyCode
    #: Who within `to_body` receives it, when the plan says.
    to_role: Note = ""
    cadence: list[Cadence]
    basis: Basis
    note: Note = ""


class PlanDocument(_Model):
    """The whole plan: what it is, who issued it, its term, its reporting lines, its tasks and standing duties."""

    id: str = Field(pattern=PLAN_ID_PATTERN)
    #: Bump with every edit; cases record it with `digest()`.
    version: Line
    #: The plan's number and date of issue (số, ngày): None while unknown (the seed text carries neither).
    number: Line | None = None
    issued_on: date | None = None
    title_vi: Line
    title_en: Line
    issuer: BodyCode
    signer: Signer
    term_start: date
    term_end: date
    #: Where the text comes from.
    source: Note = ""
    note: Note = ""
    reporting: list[ReportingLine] = Field(default_factory=list)
    #: Section II: tasks and subtasks, flat; parents are found from the ids.
    tasks: list[PlanTask]
    #: Section III: the standing duties of implementation (III.1–III.3).
    standing_duties: list[PlanTask] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A document is exported as written: a subtask's inherited values are left out (its `inherited` stays), so
        # that an exported plan reads back the same, and an edit of a parent in the export reaches its subtasks.
        data = handler(self)
        if isinstance(data, dict):
            for name in ("tasks", "standing_duties"):
                for entry in data.get(name) or []:
                    if isinstance(entry, dict):
                        for field in entry.get("inherited") or []:
                            entry.pop(field, None)
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _resolve(cls, data: Any, handler: ModelWrapValidatorHandler[PlanDocument]) -> PlanDocument:
        document: PlanDocument = handler(data)
        return document._checked()

    # -- validation -------------------------------------------------------------------------------------------

    def _checked(self) -> PlanDocument:
        """This document with inheritance resolved, or `PlanError` with every problem the rules find."""
        lists = {"tasks": self.tasks, "standing_duties": self.standing_duties}
        problems: list[PlanProblem] = []
        if self.term_start >= self.term_end:
            problems.append(
                PlanProblem(None, "term_order", f"term_start {self.term_start} is not before term_end {self.term_end}")
            )
        first = _id_problems(lists, problems)
        problems += _section_problems(lists)
        resolved: dict[str, list[PlanTask]] = {}
        for name, tasks in lists.items():
            other = "standing_duties" if name == "tasks" else "tasks"
            resolved[name] = _resolved(name, tasks, lists[other], other, problems)
        problems += _same_as_problems(resolved, set(first))
        problems += self._reporting_problems(set(first))
        if problems:
            raise PlanError(problems)
        return self.model_copy(update={"tasks": resolved["tasks"], "standing_duties": resolved["standing_duties"]})

    def _reporting_problems(self, all_ids: set[str]) -> list[PlanProblem]:
        problems: list[PlanProblem] = []
        for index, line in enumerate(self.reporting):
            if line.task is not None and line.task not in all_ids:
                problems.append(
                    PlanProblem(
                        None, "reporting_task_exists", f"task {line.task} is not in the plan", f"reporting[{index}]"
                    )
                )
            if len(set(line.cadence)) != len(line.cadence):
                problems.append(PlanProblem(None, "no_repeats", "cadence lists a value twice", f"reporting[{index}]"))
        return problems

    @classmethod
    def from_data(cls, data: Any, registry: BodyRegistry | None = None) -> PlanDocument:
        """The plan in `data` (parsed YAML or JSON), validated, with inheritance resolved, and checked against
        `registry` when given. `PlanError` lists every problem, each with its task and rule."""
        try:
            document = cls.model_validate(data)
        except ValidationError as exc:
            raise PlanError(problems_from_validation(exc, data)) from exc
        if registry is not None:
            document.check_bodies(registry)
        return document

    def body_problems(self, registry: BodyRegistry) -> list[PlanProblem]:
        """The bodies this plan names that `registry` does not know, or that exist on no day of the term.
        Inherited bodies are checked once, on the task that names them."""
        problems: list[PlanProblem] = []

        def check(code: str, task_id: str | None, where: str) -> None:
            try:
                body = registry.get(code)
            except UnknownBody as exc:
                problems.append(PlanProblem(task_id, "body_known", str(exc), where))
                return
            if not (
                (body.valid_from is None or body.valid_from <= self.term_end)
                and (body.valid_to is None or self.term_start < body.valid_to)
            ):
                problems.append(
                    PlanProblem(
                        task_id,
                        "body_in_term",
                        f"{code} ({body.name_vi}) exists {body.window()}, on no day of the plan's term "
                        f"{self.term_start}..{self.term_end}",
                        where,
                    )
                )

        check(self.issuer, None, "issuer")
        for index, line in enumerate(self.reporting):
            check(line.from_body, line.task, f"reporting[{index}].from_body")
            check(line.to_body, line.task, f"reporting[{index}].to_body")
        for name, tasks in (("tasks", self.tasks), ("standing_duties", self.standing_duties)):
            for index, task in enumerate(tasks):
                for field in ("lead", "coordinators", "assigners"):
                    if field in task.inherited:
                        continue
                    refs: list[BodyRef] = getattr(task, field)
                    for position, ref in enumerate(refs):
                        check(ref.code, task.id, f"{name}[{index}].{field}[{position}]")
        return problems

    def check_bodies(self, registry: BodyRegistry) -> None:
        """`PlanError` if any body of the plan is unknown to `registry` or exists on no day of the term."""
        problems = self.body_problems(registry)
        if problems:
            raise PlanError(problems)

    # -- reading ----------------------------------------------------------------------------------------------

    def all_tasks(self) -> list[PlanTask]:
        """Every task, then every standing duty, each parent before its subtasks (subtasks in file order)."""
        return [*_preorder(self.tasks), *_preorder(self.standing_duties)]

    def task(self, task_id: str) -> PlanTask:
        """The task or standing duty `task_id`; `UnknownTask` if there is none."""
        for task in (*self.tasks, *self.standing_duties):
            if task.id == task_id:
                return task
        raise UnknownTask(task_id, self.id)

    def subtasks(self, task_id: str) -> list[PlanTask]:
        """The direct subtasks of `task_id`, in file order."""
        parent = self.task(task_id)
        return [task for task in (*self.tasks, *self.standing_duties) if task.parent == parent.id]

    def is_standing_duty(self, task_id: str) -> bool:
        """Whether `task_id` is a standing duty (section III) rather than a task."""
        self.task(task_id)
        return any(task.id == task_id for task in self.standing_duties)

    def digest(self) -> str:
        """SHA-256 of the document in canonical JSON (sorted keys, NFC; fields at their default and inherited
        values left out): the same plan always has the same digest, whatever the file's layout, comments or key
        order, and a new optional field does not change the digest of plans that do not use it."""
        return content_digest(self.model_dump(mode="json", exclude_defaults=True))

    def diff(self, other: PlanDocument) -> PlanDiff:
        """What `other` (e.g. an imported plan) changes in this one: tasks added, removed, and changed (with
        the fields that differ), and the plan's own fields that differ."""
        mine = {task.id: task for task in self.all_tasks()}
        theirs = {task.id: task for task in other.all_tasks()}
        changed: list[TaskChange] = []
        for task_id, task in mine.items():
            if task_id not in theirs:
                continue
            before = task.model_dump(mode="json")
            after = theirs[task_id].model_dump(mode="json")
            before["standing_duty"] = self.is_standing_duty(task_id)
            after["standing_duty"] = other.is_standing_duty(task_id)
            fields = [key for key in before if before[key] != after[key]]
            if fields:
                changed.append(
                    TaskChange(
                        id=task_id,
                        fields=fields,
                        before={key: before[key] for key in fields},
                        after={key: after[key] for key in fields},
                    )
                )
        skip = {"tasks", "standing_duties"}
        own_before = self.model_dump(mode="json", exclude=skip)
        own_after = other.model_dump(mode="json", exclude=skip)
        return PlanDiff(
            added=[task_id for task_id in theirs if task_id not in mine],
            removed=[task_id for task_id in mine if task_id not in theirs],
            changed=changed,
            plan_fields=[key for key in own_before if own_before[key] != own_after[key]],
        )


class TaskChange(_Model):
    """A task both plans have, with the fields that differ and their values before and after."""

    id: str
    fields: list[str]
    before: dict[str, Any]
    after: dict[str, Any]


class PlanDiff(_Model):
    """What differs between two plans, by task id (parents first) and by the plan's own fields."""

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[TaskChange] = Field(default_factory=list)
    plan_fields: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether the two plans have the same content."""
        return not (self.added or self.removed or self.changed or self.plan_fields)

    def summary(self) -> str:
        """The differences in a few lines, for an import's report."""
        if self.empty:
            return "no differences"
        lines = []
        if self.plan_fields:
            lines.append("plan fields changed: " + ", ".join(self.plan_fields))
        if self.added:
            lines.append("tasks added: " + ", ".join(self.added))
        if self.removed:
            lines.append("tasks removed: " + ", ".join(self.removed))
        lines.extend(f"task {change.id} changed: {', '.join(change.fields)}" for change in self.changed)
        return "\n".join(lines)


# --- helpers ------------------------------------------------------------------------------------------------


def _preorder(tasks: Sequence[PlanTask]) -> list[PlanTask]:
    """`tasks` with each parent before its subtasks; siblings (and top-level tasks) keep their order."""
    ids = {task.id for task in tasks}
    children: dict[str | None, list[PlanTask]] = defaultdict(list)
    for task in tasks:
        children[task.parent if task.parent in ids else None].append(task)

    def walk(parent: str | None) -> Iterator[PlanTask]:
        for child in children.get(parent, []):
            yield child
            yield from walk(child.id)

    seen: set[str] = set()
    ordered = []
    for task in walk(None):
        if task.id not in seen:  # a duplicate id would otherwise be walked twice
            seen.add(task.id)
            ordered.append(task)
    ordered.extend(task for task in tasks if task.id not in seen)
    return ordered


def _inherit(task: PlanTask, parent: PlanTask | None, where: str) -> tuple[PlanTask, list[PlanProblem]]:
    """`task` with the lead, coordinators and cadence it does not give taken from its (resolved) parent."""
    problems: list[PlanProblem] = []
    marked = set(task.inherited)
    if parent is None:
        if task.parent is None and marked:
            problems.append(
                PlanProblem(
                    task.id, "inherited", "a top-level task has no parent to inherit from: remove `inherited`", where
                )
            )
        return task, problems
    update: dict[str, Any] = {}
    inherited: list[InheritableField] = []
    for field in INHERITABLE:
        given = field in task.model_fields_set
        if given and field not in marked:
            continue
        value = getattr(parent, field)
        if given and getattr(task, field) != value:
            problems.append(
                PlanProblem(
                    task.id,
                    "inherited",
                    f"{field} is marked inherited but differs from {parent.id}'s: to give the subtask its own "
                    f"{field}, remove it from `inherited`",
                    where,
                )
            )
        update[field] = value
        inherited.append(field)
    update["inherited"] = inherited
    return task.model_copy(update=update), problems


def _task_problems(task: PlanTask, where: str, orphan: bool = False) -> list[PlanProblem]:
    """The rules of one resolved task: a lead and a cadence (unless its parent is missing, which is reported
    already), and nothing listed twice."""
    problems = []
    if not orphan and not task.lead:
        problems.append(
            PlanProblem(task.id, "lead_required", "the task has no lead, and no parent to take one from", where)
        )
    if not orphan and not task.cadence:
        problems.append(
            PlanProblem(task.id, "cadence_required", "the task has no cadence, and no parent to take one from", where)
        )
    for field in ("lead", "coordinators", "assigners"):
        codes = [ref.code for ref in getattr(task, field)]
        for code in sorted({code for code in codes if codes.count(code) > 1}):
            problems.append(PlanProblem(task.id, "no_repeats", f"{field} lists {code} twice", where))
    both = sorted({ref.code for ref in task.lead} & {ref.code for ref in task.coordinators})
    if both:
        problems.append(
            PlanProblem(
                task.id,
                "no_repeats",
                f"{', '.join(both)} both lead(s) and coordinate(s) the task"
                + (
                    " (coordinators are inherited: give the subtask its own)"
                    if "coordinators" in task.inherited
                    else ""
                ),
                where,
            )
        )
    for field in ("cadence", "links"):
        values: list[str] = getattr(task, field)
        if len(set(values)) != len(values):
            problems.append(PlanProblem(task.id, "no_repeats", f"{field} lists a value twice", where))
    return problems


def _path(loc: Sequence[int | str]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def problems_from_validation(exc: ValidationError, data: Any) -> list[PlanProblem]:
    """The problems of a pydantic `ValidationError` of a `PlanDocument`, each with its task id and rule."""
    problems: list[PlanProblem] = []
    for error in exc.errors():
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, PlanError):
            problems.extend(original.problems)
            continue
        loc = tuple(error["loc"])
        task_id = None
        if len(loc) >= 2 and loc[0] in ("tasks", "standing_duties") and isinstance(loc[1], int):
            entries = data.get(loc[0]) if isinstance(data, dict) else None
            entry = entries[loc[1]] if isinstance(entries, list) and 0 <= loc[1] < len(entries) else None
            raw_id = entry.get("id") if isinstance(entry, dict) else None
            task_id = raw_id if isinstance(raw_id, str) else f"{loc[0]}[{loc[1]}]"
        field = next((part for part in reversed(loc) if isinstance(part, str)), "")
        kind = error["type"]
        message = error["msg"]
        if kind in RULES:
            rule = kind
        elif kind == "literal_error":
            rule = _LITERAL_RULES.get(field, "field_value")
            message = f"{error.get('input')!r}: {message}"
        elif kind == "extra_forbidden":
            rule, message = "field_known", f"unknown field {field!r}"
        elif kind == "missing":
            rule, message = "field_required", f"{field!r} is required"
        else:
            rule = "field_value"
        problems.append(PlanProblem(task_id, rule, message, _path(loc)))
    return problems


def _id_problems(lists: dict[str, list[PlanTask]], problems: list[PlanProblem]) -> dict[str, str]:
    """Where each id is first used; a repeated id and a parent that the id does not imply are `problems`."""
    first: dict[str, str] = {}
    for name, tasks in lists.items():
        for index, task in enumerate(tasks):
            where = f"{name}[{index}]"
            if task.id in first:
                problems.append(PlanProblem(task.id, "id_unique", f"the id is already used at {first[task.id]}", where))
            else:
                first[task.id] = where
            if task.parent != parent_of(task.id):
                expected = parent_of(task.id) or "none (a top-level task)"
                problems.append(
                    PlanProblem(task.id, "parent_matches_id", f"parent is {task.parent}, the id says {expected}", where)
                )
    return first


def _section_problems(lists: dict[str, list[PlanTask]]) -> list[PlanProblem]:
    """Each list is of one section (that of its first task), and no two lists share one."""
    problems: list[PlanProblem] = []
    sections: dict[str, str] = {}
    for name, tasks in lists.items():
        if not tasks:
            continue
        section = section_of(tasks[0].id)
        problems += [
            PlanProblem(task.id, "section", f"{name} are of section {section} (from {tasks[0].id}), this one is of "
                        f"{section_of(task.id)}", f"{name}[{index}]")
            for index, task in enumerate(tasks) if section_of(task.id) != section
        ]
        if section in sections:
            problems.append(
                PlanProblem(tasks[0].id, "section", f"{name} use section {section}, as {sections[section]} do",
                            f"{name}[0]")
            )
        sections.setdefault(section, name)
    return problems


def _resolved(name: str, tasks: list[PlanTask], other_tasks: list[PlanTask], other: str,
              problems: list[PlanProblem]) -> list[PlanTask]:
    """The tasks of list `name` with what each inherits from its parent, parents first; a parent missing from the
    list, an inheritance problem and a task's own problems are `problems`."""
    ids = {task.id for task in tasks}
    other_ids = {task.id for task in other_tasks}
    positions = {id(task): index for index, task in enumerate(tasks)}
    done: dict[str, PlanTask] = {}
    orphans: set[str] = set()
    for task in _preorder(tasks):
        where = f"{name}[{positions[id(task)]}]"
        parent = done.get(task.parent) if task.parent is not None else None
        if task.parent is not None and task.parent not in ids:
            elsewhere = (f" (it is in {other}; a task and its subtasks are in one list)"
                         if task.parent in other_ids else "")
            problems.append(
                PlanProblem(task.id, "parent_exists", f"parent {task.parent} is not in {name}{elsewhere}", where)
            )
            orphans.add(task.id)
        elif task.parent is not None and task.parent in orphans:
            orphans.add(task.id)  # its lead and cadence would come from the missing ancestor
        task, inheritance_problems = _inherit(task, parent, where)
        problems.extend(inheritance_problems)
        done[task.id] = task
    resolved = [done[task.id] for task in tasks if task.id in done]
    for index, task in enumerate(resolved):
        problems.extend(_task_problems(task, f"{name}[{index}]", orphan=task.id in orphans))
    return resolved


def _same_as_problems(resolved: dict[str, list[PlanTask]], all_ids: set[str]) -> list[PlanProblem]:
    return [
        PlanProblem(task.id, "same_as_exists", f"same_as {task.same_as} is not another task", f"{name}[{index}]")
        for name, tasks in resolved.items() for index, task in enumerate(tasks)
        if task.same_as is not None and (task.same_as not in all_ids or task.same_as == task.id)
    ]
