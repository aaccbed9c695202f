"""The OpenAPI document as the server enforces it: what FastAPI derives from the routes, completed where a route
reads its body itself.

`POST /v1/cases/{case_id}/commands` reads a JSON object and validates it against the commands of the case's
kind (`api.routes.petitions.KINDS`). Its request body is declared here as `CaseCommand`: the discriminated union
(on `type`) of every command a client may send to any kind of case, each command's own schema, with `type`
required. The commands a case issues to itself (`receive`, `deadline`, a plan task's `assign`) are not in it,
as the route refuses them. Two kinds may each have a command of the same `type` with different fields (`close`):
its mapping is then the union of both. Which kind a case is cannot be said by a schema: a command of another
kind is refused with 422 naming `type` (rule `command.not_for_case_kind`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

REF = "#/components/schemas/"
COMMANDS_PATH = "/v1/cases/{case_id}/commands"
#: The component holding the union.
UNION = "CaseCommand"
#: The prefix of a kind's schema names where another schema already holds the name.
PREFIXES = {"petition": "Petition", "plan_task": "PlanTask"}


def install(app: FastAPI) -> None:
    """Make `app.openapi()` answer the completed document (built once, as FastAPI's own is)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                                   summary=app.summary, description=app.description, routes=app.routes,
                                   tags=app.openapi_tags, servers=app.servers)
            settings = app.state.settings
            complete(document, feed_wait_max=settings.feed_wait_max,
                     years=(settings.calendar_first_year, settings.calendar_last_year))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], *, feed_wait_max: float, years: tuple[int, int] = (2000, 2098)) -> None:
    """Add what FastAPI cannot derive to `document`, in place: the command union, the plan document of the plan
    import, the feed's longest wait (a setting, `DANVAN_FEED_WAIT_MAX`) and the values of its filters, the years
    a petition's and a command's dates may lie in (`DANVAN_CALENDAR_FIRST_YEAR` to `_LAST_YEAR`), the bodies a
    token may be issued for, and the characters no text may hold."""
    from domain.plan import PlanDocument

    from .feed import EVENT_TYPES
    from .routes.events import MAX_FILTER_VALUES, known_bodies
    from .routes.petitions import KINDS

    # The values the feed's list filters take (`api.routes.events` refuses any other, naming it).
    feed_values = {"type": EVENT_TYPES, "body": known_bodies()}
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for parameter in document["paths"]["/v1/events"]["get"].get("parameters", []):
        if parameter["name"] == "wait":
            parameter["schema"]["maximum"] = feed_wait_max
        for schema in [parameter["schema"], *parameter["schema"].get("anyOf", [])]:
            if schema.get("type") == "array":
                schema["maxItems"] = MAX_FILTER_VALUES
                if parameter["name"] in feed_values:
                    schema["items"] = {"type": "string", "enum": sorted(feed_values[parameter["name"]])}
    plan = PlanDocument.model_json_schema(ref_template=REF + "{model}")
    token_bodies(components.get("TokenRequest"))
    renames = merge({**plan.pop("$defs", {}), "PlanDocument": plan}, components, "Plan")
    imported = document["paths"]["/v1/plan/import"]["post"]["requestBody"]["content"]
    for media in imported.values():  # YAML or JSON, the same document
        media["schema"] = {"$ref": REF + renames.get("PlanDocument", "PlanDocument")}
    union = command_union(((name, kind.commands.json_schema(ref_template=REF + "{model}"), kind.internal)
                           for name, kind in KINDS.items()), components)
    components[UNION] = union
    operation = document["paths"][COMMANDS_PATH]["post"]
    body = operation.setdefault("requestBody", {"required": True, "content": {}})
    media = body.setdefault("content", {}).setdefault("application/json", {})
    examples = media.get("schema", {}).get("examples")
    media["schema"] = {"$ref": REF + UNION}
    if examples:
        media["examples"] = {f"example{i}": {"value": value} for i, value in enumerate(examples, 1)}
    for path in CALENDAR_BODIES:
        for media in document["paths"][path]["post"]["requestBody"]["content"].values():
            calendar_years(document, media["schema"], *years)
    text_rules(document)


#: The bodies whose every date and moment must lie in the calendar's years (`api.limits.dates_out_of_range`).
CALENDAR_BODIES = ("/v1/petitions", COMMANDS_PATH)


def calendar_years(document: dict[str, Any], schema: dict[str, Any], first: int, last: int) -> None:
    """A pattern on every `date` and `date-time` `schema` holds or refers to: its year from `first` to `last`
    (a moment is held to its day in Vietnam, which its own offset may put a day off at either end)."""
    components = document.get("components", {}).get("schemas", {})
    years = "|".join(str(year) for year in range(first, last + 1))
    prefix = f"^({years})-"
    seen: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF):
                name = ref.removeprefix(REF)
                if name not in seen and name in components:
                    seen.add(name)
                    visit(components[name])
                return
            if node.get("type") == "string" and node.get("format") in ("date", "date-time"):
                node["pattern"] = prefix
            for key, value in node.items():
                if key not in ("examples", "example", "default", "const", "enum"):
                    visit(value)

    visit(schema)


#: What no text a request carries may hold (`domain.text`, enforced by `api.limits` on the path, the query and
#: every string of a body, keys included): NUL or a control character but tab, LF and CR. (A lone surrogate,
#: refused too, is no character a JSON Schema regular expression may name.)
TEXT_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"


def text_rules(document: dict[str, Any]) -> None:
    """State `TEXT_PATTERN` on every string a request may carry: parameters, and the schemas of request bodies
    with all they refer to (those shared with answers too, which hold only what was accepted)."""
    visitor = _TextRules(document.get("components", {}).get("schemas", {}))
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                visitor.visit(parameter.get("schema"))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                visitor.visit(media.get("schema"))


class _TextRules:
    """Walks request schemas, each shared component once, stating the text rule on strings and object keys."""

    #: Keywords whose values are data, not schemas.
    DATA = frozenset({"examples", "example", "default", "const", "enum", "$ref"})

    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components
        self.seen: set[str] = set()

    def visit(self, node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                self.visit(item)
        elif isinstance(node, dict) and not self._followed(node):
            self._state(node)
            for key, value in node.items():
                if key not in self.DATA:
                    self.visit(value)

    def _followed(self, node: dict[str, Any]) -> bool:
        """Whether `node` is a reference to a component (visited once, the first time it is met)."""
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith(REF)):
            return False
        name = ref.removeprefix(REF)
        if name not in self.seen and name in self.components:
            self.seen.add(name)
            self.visit(self.components[name])
        return True

    @staticmethod
    def _state(node: dict[str, Any]) -> None:
        if (node.get("type") == "string" and "enum" not in node and "const" not in node
                and node.get("format") not in ("date", "date-time", "binary")):  # no text in a date or a file
            if "pattern" not in node:
                node["pattern"] = TEXT_PATTERN
            elif node["pattern"] != TEXT_PATTERN and not any(
                    isinstance(s, dict) and s.get("pattern") == TEXT_PATTERN for s in node.get("allOf", [])):
                node.setdefault("allOf", []).append({"pattern": TEXT_PATTERN})
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            node.setdefault("propertyNames", {"pattern": TEXT_PATTERN})


def token_bodies(schema: dict[str, Any] | None) -> None:
    """The bodies a `body` token may be issued for today (`api.tokens.check_token_body`), as the enum of the
    token request's `body_id` for role `body`."""
    from datetime import datetime

    from activities.rules import load_bodies
    from domain.calendar import VN_TZ

    from .tokens import check_token_body

    if schema is None:
        return
    registry, today = load_bodies(), datetime.now(VN_TZ).date()
    allowed = []
    for code in registry.codes():
        try:
            check_token_body(registry, code, today)
        except ValueError:
            continue
        allowed.append(code)
    for branch in schema.get("oneOf", []):
        body_id = branch.get("properties", {}).get("body_id", {})
        if body_id.get("type") == "string":
            body_id["enum"] = sorted(allowed)


def command_union(kinds: Iterable[tuple[str, dict[str, Any], frozenset[str]]],
                  components: dict[str, Any]) -> dict[str, Any]:
    """The `oneOf` of the commands of every kind, discriminated by `type`; their schemas are added to
    `components` (renamed with the kind's prefix where the name is taken by another schema)."""
    by_type: dict[str, list[str]] = {}
    for kind, schema, internal in kinds:
        defs = copy.deepcopy(schema.get("$defs", {}))
        mapping: dict[str, str] = schema["discriminator"]["mapping"]
        roots = {type_: ref.removeprefix(REF) for type_, ref in mapping.items() if type_ not in internal}
        for name in roots.values():
            command = defs[name]
            command["required"] = sorted({"type", *command.get("required", [])})
        wanted = reachable(roots.values(), defs)
        renames = merge({name: defs[name] for name in wanted}, components, PREFIXES.get(kind, kind.title()))
        for type_, name in sorted(roots.items()):
            ref = REF + renames.get(name, name)
            if ref not in by_type.setdefault(type_, []):
                by_type[type_].append(ref)
    mapping_out: dict[str, str] = {}
    for type_, refs in sorted(by_type.items()):
        if len(refs) == 1:
            mapping_out[type_] = refs[0]
            continue
        name = "".join(part.title() for part in type_.split("_")) + "Command"
        components[name] = {"title": name, "description": f"`{type_}`: the command of that name of the case's "
                            "kind (kinds differ in its fields)", "oneOf": [{"$ref": r} for r in refs]}
        mapping_out[type_] = REF + name
    return {
        "title": UNION,
        "description": "One command; `type` names it. The case takes only the commands of its kind: another "
                       "kind's command is refused with 422 naming `type` (rule `command.not_for_case_kind`).",
        "oneOf": [{"$ref": ref} for ref in dict.fromkeys(mapping_out.values())],
        "discriminator": {"propertyName": "type", "mapping": mapping_out},
    }


def reachable(roots: Iterable[str], defs: dict[str, Any]) -> list[str]:
    """The names of `roots` and of every schema of `defs` they refer to, transitively."""
    seen: list[str] = []
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo.extend(ref.removeprefix(REF) for ref in refs_in(defs[name]))
    return seen


def refs_in(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def rewrite(node: Any, renames: dict[str, str]) -> Any:
    """`node` with its `$ref`s to renamed schemas pointing to their new names."""
    def ref(value: str) -> str:
        name = value.removeprefix(REF)
        return REF + renames[name] if name in renames else value
    return _map_refs(node, ref)


def _map_refs(node: Any, change: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {k: change(v) if k == "$ref" and isinstance(v, str) else _map_refs(v, change) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_refs(v, change) for v in node]
    return node


def merge(defs: dict[str, Any], components: dict[str, Any], prefix: str) -> dict[str, str]:
    """Add `defs` to `components`; a name that `components` holds with another schema is given `prefix`. Returns
    the renames."""
    renames: dict[str, str] = {}
    changed = True
    while changed:  # a rename changes the schemas that refer to it, which may then clash in turn
        changed = False
        for name, schema in defs.items():
            if name in renames:
                continue
            held = components.get(name)
            if held is not None and held != rewrite(schema, renames):
                renames[name] = prefix + name
                changed = True
    for name, schema in defs.items():
        target = renames.get(name, name)
        held = components.get(target)
        schema = rewrite(schema, renames)
        if held is not None and held != schema:
            raise ValueError(f"OpenAPI: two different schemas named {target!r}")
        components[target] = schema
    return renames
