"""Reading the action plan (`plan/action_plan.yaml`, or a plan a province imports) into a `PlanDocument`.

The file is YAML; JSON text of the same shape is accepted too. A bad plan stops with a `PlanFileError` that names
the file and, for each problem, the task id, the rule it breaks (`domain.plan.RULES`) and where in the file.
Bodies are checked against the body registry (`policy/bodies.yaml` unless another is given).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from activities.rules import RulesFileError, load_bodies
from domain.bodies import BodyRegistry
from domain.plan import PlanDocument, PlanError, PlanProblem

PLAN_DIR = Path(__file__).resolve().parent.parent / "plan"
PLAN_FILE = PLAN_DIR / "action_plan.yaml"


class PlanFileError(RulesFileError):
    """A plan file (or text) that cannot be read, is not YAML or JSON, or breaks rules. `problems` holds the
    rule problems, each with its task id and rule (empty when the text could not be parsed at all)."""

    def __init__(self, source: str, message: str, problems: list[PlanProblem] | None = None) -> None:
        self.source = source
        self.problems = problems or []
        super().__init__(f"{source}: {message}")


class _PlanYamlLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type stubs here
    """Safe YAML that leaves dates as strings (pydantic reports a bad date with its field) and refuses a key
    written twice in one mapping (PyYAML would silently keep the last, e.g. a second `lead:` of a task)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_PlanYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def term_warning(document: PlanDocument, today: date) -> str | None:
    """What to say when a plan is imported after its term has ended: its tasks' cases start, but no period's
    report falls due within the term any more (`domain.plan_cases.cycle_deadlines`), so none will be requested.
    None while the term runs."""
    if document.term_end >= today:
        return None
    return (f"the term of plan {document.id} ended on {document.term_end.isoformat()} (it ran from "
            f"{document.term_start.isoformat()}): its task cases start, but no report will be requested of them, "
            "since no period falls due within the term any more. To import it for the term in force, give its "
            "days: --term-start YYYY-MM-DD --term-end YYYY-MM-DD")


def _describe(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PLAN_DIR.parent))
    except ValueError:
        return str(path)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} is written twice in one object")
        result[key] = value
    return result


def _parse_text(text: str, source: str) -> Any:
    """The data of YAML or JSON `text` (JSON when it starts with `{`)."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:
            raise PlanFileError(source, f"not valid JSON: {exc}") from exc
    try:
        return yaml.load(text, Loader=_PlanYamlLoader)
    except yaml.YAMLError as exc:
        raise PlanFileError(source, f"not valid YAML: {exc}") from exc


def _problems_message(problems: list[PlanProblem], registry: BodyRegistry | None) -> str:
    against = f" (bodies version {registry.version!r})" if registry is not None else ""
    return f"{len(problems)} error(s){against}\n" + "\n".join(f"  {problem}" for problem in problems)


def parse_plan(text: str, registry: BodyRegistry | None = None, source: str = "<plan text>", *,
               term_start: date | None = None, term_end: date | None = None) -> PlanDocument:
    """The plan in YAML or JSON `text`, validated and checked against `registry` (default: the bodies of
    `policy/bodies.yaml`). `source` names the text in errors (a file name, "import of 2026-01-05").

    `term_start` and `term_end`, when given, stand for the text's: a plan whose source gives only the years of
    its term (the shipped one says "nhiệm kỳ 2020 – 2025") is imported with the days the province sets. They are
    checked as the text's would be (the start before the end, every body in force on some day of the term), and
    they are part of the document, so of its digest: a plan imported again with another term is a changed plan."""
    data = _parse_text(text, source)
    if not isinstance(data, dict):
        raise PlanFileError(
            source, f"the plan must be a mapping of fields (id, title_vi, …, tasks), not {type(data).__name__}"
        )
    if term_start is not None:
        data["term_start"] = term_start.isoformat()
    if term_end is not None:
        data["term_end"] = term_end.isoformat()
    bodies = registry if registry is not None else load_bodies()
    try:
        return PlanDocument.from_data(data, bodies)
    except PlanError as exc:
        raise PlanFileError(source, _problems_message(exc.problems, bodies), exc.problems) from exc


def load_plan(path: Path | str | None = None, registry: BodyRegistry | None = None, *,
              term_start: date | None = None, term_end: date | None = None) -> PlanDocument:
    """The plan in `path` (default: `plan/action_plan.yaml` of the repository), validated and checked against
    `registry` (default: the bodies of `policy/bodies.yaml`); `term_start`, `term_end` stand for the file's when
    given (see `parse_plan`)."""
    file = Path(path) if path is not None else PLAN_FILE
    source = _describe(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PlanFileError(source, f"cannot read the file ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanFileError(source, f"not UTF-8 text ({exc})") from exc
    return parse_plan(text, registry, source, term_start=term_start, term_end=term_end)
