"""Reading the body of `POST /v1/cases/{case_id}/commands` against the commands of the case's kind.

The OpenAPI declares the body as the union of every kind's commands (`api.openapi`); the case takes only those
of its own kind. Every refusal is a 422 naming the field and the rule:

- a command the case issues to itself (`receive`, `deadline`, a plan task's `assign`): field `type`, rule
  `internal_command`;
- a command of another kind of case: field `type`, rule `command.not_for_case_kind`, naming the kind and the
  commands it takes;
- otherwise pydantic's rules on the command's fields (`type` when it is missing or unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from .errors import ApiError, field_errors

NOT_FOR_KIND = "command.not_for_case_kind"


class KindCommands(Protocol):
    @property
    def commands(self) -> TypeAdapter[Any]: ...
    @property
    def internal(self) -> frozenset[str]: ...


_TYPES: dict[int, frozenset[str]] = {}


def public_types(kind: KindCommands) -> frozenset[str]:
    """The `type`s of the commands a client may send to a case of `kind` (read from its union once)."""
    found = _TYPES.get(id(kind.commands))
    if found is None:
        mapping = kind.commands.json_schema()["discriminator"]["mapping"]
        found = _TYPES[id(kind.commands)] = frozenset(mapping) - kind.internal
    return found


def _invalid(errors: list[dict[str, Any]]) -> ApiError:
    return ApiError(422, "validation_failed", "invalid command", fields=field_errors(errors))


def parse_command(kinds: Mapping[str, KindCommands], name: str, case_kind: str, payload: dict[str, Any]) -> Any:
    """The command `payload` holds, validated against the commands of `kinds[name]`; `case_kind` is the case's
    kind as its row names it (for the message). 422 as the module says."""
    kind = kinds[name]
    type_ = payload.get("type")
    if isinstance(type_, str) and type_ not in public_types(kind):
        if type_ in kind.internal:
            raise _invalid([{"loc": ("body", "type"), "type": "internal_command",
                             "msg": f"`{type_}` is issued by the case itself"}])
        if any(type_ in public_types(other) for key, other in kinds.items() if key != name):
            takes = ", ".join(sorted(public_types(kind)))
            raise _invalid([{"loc": ("body", "type"), "type": NOT_FOR_KIND,
                             "msg": f"`{type_}` is not a command of a {case_kind} case; it takes: {takes}"}])
    try:
        return kind.commands.validate_python(payload)
    except ValidationError as exc:
        # The first segment of a field's place is the union's tag (`accept`...): the field is in the body itself.
        errors = [{**err, "loc": ("body", *err["loc"][1:]) if len(err["loc"]) > 1 else ("body", "type")}
                  for err in exc.errors()]
        raise _invalid(errors) from exc
