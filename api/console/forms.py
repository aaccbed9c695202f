"""HTML forms made from the pydantic models of the commands, and the submitted form read back into a command.

The console writes no form by hand: each field of a command model becomes an input by its type, and the same
description reads the posted form back into the values the model validates (the API's own validation then
judges them, as it judges a JSON body):

| the field's type                       | the input                                              |
|----------------------------------------|--------------------------------------------------------|
| `str`                                  | a text input; a textarea when it may be long (> 300)   |
| `date`                                 | a text input written dd/mm/yyyy, read on the server    |
| `bool`                                 | a checkbox; `bool | None` a select (yes, no, not said) |
| `int`                                  | a text input of digits                                 |
| `Literal[...]`, an enum                | a select of the values, each by its name               |
| a body code (`BODY_CODE_PATTERN`)      | a select of the bodies in force, by name               |
| `list[str]`                            | a textarea, one item a line                            |
| `list[Model]`                          | a few rows of the model's own inputs (blank rows left) |
| `dict[str, float]`                     | a textarea, one `name: number` a line                  |

A date is read as day/month/year whatever the browser's language (`31/12/2026`, also `31-12-2026`,
`31.12.2026`, or ISO `2026-12-31`), never by the browser's own date picker, whose format follows its locale.
A value that cannot be read is a problem of its input (a code of `form.error.*`), reported with pydantic's.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from domain.bodies import BODY_CODE_PATTERN

from .i18n import LABELS, MESSAGES, Translator

#: Fields no form shows: the command's tag (the form's address says which command it is).
HIDDEN_FIELDS = frozenset({"type"})
#: A text longer than this is written in a textarea.
LONG_TEXT = 300
#: Rows offered for a list of records (a coordination request's bodies, a split's parts).
ROWS = 3
#: The field every command may carry, shown last: why (a person's reason).
REASON = "reason"
#: The date a written act bears (`domain.petitions.commands.DatedAct`), shown before the reason; an extension
#: names it `decision_date`.
ACT_DATE, ACT_DATE_ALIAS = "dated", "decision_date"
#: How a date is written in a form.
DATE_FORMAT = "dd/mm/yyyy"
_DAY_FIRST = re.compile(r"^\s*(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})\s*$")
_ISO_DAY = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_PAIR = re.compile(r"^\s*(.+?)\s*[:=]\s*(-?\d+(?:[.,]\d+)?)\s*$")
#: The catalogue group naming the values of a choice field, by the field's name (`choice.<name>` otherwise).
CHOICE_GROUPS = {"kind": "kind", "side": "side", "unit": "unit"}

Kind = Literal["str", "date", "bool", "int", "float", "choice", "body", "list_str", "list_model", "dict_float"]
Widget = Literal["text", "textarea", "date", "checkbox", "tristate", "select", "number", "lines", "pairs", "fixed"]


#: The input of each kind of field but text and yes/no (whose input depends on more than the kind).
WIDGETS: dict[str, Widget] = {"date": "date", "int": "number", "float": "number", "choice": "select", "body": "select",
                              "list_str": "lines", "dict_float": "pairs", "list_model": "lines"}


class Unsupported(TypeError):
    """A field type this module cannot make an input for (a test keeps every command's fields supported)."""


@dataclass(frozen=True)
class Shape:
    """What a model field holds, as far as a form is concerned."""

    kind: Kind
    optional: bool
    required: bool
    choices: tuple[str, ...] = ()
    model: type[BaseModel] | None = None
    min_length: int | None = None
    max_length: int | None = None
    ge: int | None = None
    le: int | None = None
    #: The value the model takes when the field is left out, as a form writes it ("" for none).
    default: str = ""

    @property
    def widget(self) -> Widget:
        if self.kind == "str":
            return "textarea" if self.max_length is None or self.max_length > LONG_TEXT else "text"
        if self.kind == "bool":
            return "tristate" if self.optional else "checkbox"
        return WIDGETS[self.kind]


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, bool]:
    """The type under `Annotated` and `Optional`, gathering the annotations' constraints into `metadata`."""
    optional = False
    while True:
        if get_origin(annotation) is typing.Annotated:
            base, *extra = get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            annotation = base
        elif _is_union(annotation):
            members = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(members) < len(get_args(annotation))
            if len(members) != 1:
                raise Unsupported(f"a union of {members}")
            annotation = members[0]
        else:
            return annotation, optional


def _constraint(metadata: Sequence[Any], name: str) -> Any:
    for item in metadata:
        value = getattr(item, name, None)
        if value is not None:
            return value
    return None


#: The shapes of fields whose annotation is one of these types.
_SIMPLE: dict[Any, Kind] = {bool: "bool", float: "float", date: "date"}


def shape_of(info: FieldInfo) -> Shape:
    """The shape of one model field; `Unsupported` for a type no input is made for."""
    metadata: list[Any] = list(info.metadata)
    annotation, optional = _unwrap(info.annotation, metadata)
    default = info.get_default(call_default_factory=True) if not info.is_required() else None
    common: dict[str, Any] = {
        "optional": optional, "required": info.is_required(),
        "default": str(default.value if isinstance(default, Enum) else default)
        if isinstance(default, str | int | float) and not isinstance(default, bool) else "",
        "min_length": _constraint(metadata, "min_length"), "max_length": _constraint(metadata, "max_length"),
    }
    if annotation is str:
        kind: Kind = "body" if _constraint(metadata, "pattern") == BODY_CODE_PATTERN else "str"
        return Shape(kind=kind, **common)
    if annotation in _SIMPLE:
        return Shape(kind=_SIMPLE[annotation], **common)
    if annotation is int:
        return Shape(kind="int", ge=_constraint(metadata, "ge"), le=_constraint(metadata, "le"), **common)
    choices = _choices(annotation)
    if choices is not None:
        return Shape(kind="choice", choices=choices, **common)
    container = _container_kind(annotation)
    if container is not None:
        kind, model = container
        return Shape(kind=kind, model=model, **common)
    raise Unsupported(f"no input for a field of type {info.annotation!r}")


def _choices(annotation: Any) -> tuple[str, ...] | None:
    """The values of a `Literal` or an `Enum`, as text; None for any other type."""
    if get_origin(annotation) is Literal:
        return tuple(str(v) for v in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return tuple(str(m.value) for m in annotation)
    return None


def _container_kind(annotation: Any) -> tuple[Kind, type[BaseModel] | None] | None:
    """The kind of a list of texts or of records, or of a table of numbers by name; None for anything else."""
    origin = get_origin(annotation)
    if origin is list:
        item, _ = _unwrap(get_args(annotation)[0], [])
        if item is str:
            return "list_str", None
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "list_model", item
    if origin is dict:
        key, value = (_unwrap(a, [])[0] for a in get_args(annotation))
        if key is str and value in (float, int):
            return "dict_float", None
    return None


def field_shapes(model: type[BaseModel]) -> dict[str, Shape]:
    """Every field of `model` a form shows, in the model's order with the act's date (`dated`) and `reason` last.
    An extension's form asks its date once, as `decision_date`."""
    names = [n for n in model.model_fields if n not in HIDDEN_FIELDS]
    if ACT_DATE_ALIAS in names:
        names = [n for n in names if n != ACT_DATE]
    for last in (ACT_DATE, REASON):
        if last in names:
            names = [n for n in names if n != last] + [last]
    return {name: shape_of(model.model_fields[name]) for name in names}


# -- what a page shows -------------------------------------------------------------------------------------


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class Input:
    """One input of a form, as the template writes it."""

    name: str
    model_field: str
    widget: Widget
    required: bool
    label: str
    choices: list[Choice] = field(default_factory=list)
    value: str = ""
    checked: bool = False
    error: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    #: For a `fixed` input: the value's name the page shows (the value itself travels hidden).
    shown: str | None = None


@dataclass
class Group:
    """A list of records: a few rows of the record's inputs."""

    name: str
    model_field: str
    label: str
    required: bool
    rows: list[list[Input]]
    error: str | None = None
    widget: str = "group"


@dataclass
class Options:
    """What the case decides about a form beyond the model: the values some fields may take now (`choices`,
    in order), values fixed by who sends it (`fixed`: a hidden input, shown by name), and the body names."""

    choices: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    fixed: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    bodies: Sequence[tuple[str, str]] = ()


def field_label(t: Translator, name: str) -> str:
    """A field's label on a form: the form's own (`form_field`), else the one events' data have (`field`)."""
    return t.label("form_field", name) if name in LABELS["form_field"] else t.label("field", name)


def choice_label(t: Translator, name: str, value: str) -> str:
    return t.label(CHOICE_GROUPS.get(name, f"choice.{name}"), value)


def _inputs(prefix: str, model: type[BaseModel], t: Translator, options: Options, values: Mapping[str, str],
            errors: Mapping[str, str], *, row: bool = False) -> list[Input | Group]:
    out: list[Input | Group] = []
    for name, shape in field_shapes(model).items():
        path = f"{prefix}{name}"
        label = field_label(t, name)
        if shape.kind == "list_model":
            assert shape.model is not None
            count = min(max(ROWS, shape.min_length or 0), shape.max_length or ROWS)
            rows = [[i for i in _inputs(f"{path}.{n}.", shape.model, t, options, values, errors, row=True)
                     if isinstance(i, Input)] for n in range(count)]
            out.append(Group(name=path, model_field=name, label=label, required=shape.required, rows=rows,
                             error=errors.get(path)))
            continue
        if path in options.fixed:
            value, shown = options.fixed[path]
            out.append(Input(name=path, model_field=name, widget="fixed", required=True, label=label, value=value,
                             shown=shown))
            continue
        item = Input(name=path, model_field=name, widget=shape.widget, required=shape.required and not row, label=label,
                     value=values.get(path, "" if values else shape.default), error=errors.get(path),
                     min_length=shape.min_length,
                     max_length=shape.max_length)
        if shape.kind == "bool" and not shape.optional:
            item.checked = path in values
        if shape.widget == "tristate":
            item.choices = [Choice("true", t("common.yes")), Choice("false", t("common.no"))]
        elif path in options.choices:
            item.choices = [Choice(v, text) for v, text in options.choices[path]]
            item.widget = "select"
        elif shape.kind == "choice":
            item.choices = [Choice(v, choice_label(t, name, v)) for v in shape.choices]
        elif shape.kind == "body":
            item.choices = [Choice(code, body) for code, body in options.bodies]
        out.append(item)
    return out


def inputs_of(model: type[BaseModel], t: Translator, options: Options, values: Mapping[str, str] | None = None,
              errors: Mapping[str, str] | None = None) -> list[Input | Group]:
    """The inputs of `model`'s form in the page's language, holding `values` (what was sent) and `errors`."""
    return _inputs("", model, t, options, values or {}, errors or {})


def input_names(model: type[BaseModel]) -> set[str]:
    """Every name an input of `model`'s form may have (a record row's inputs by their row)."""
    names: set[str] = set()
    for name, shape in field_shapes(model).items():
        if shape.kind == "list_model":
            assert shape.model is not None
            names.add(name)
            for n in range(min(max(ROWS, shape.min_length or 0), shape.max_length or ROWS)):
                names |= {f"{name}.{n}.{sub}" for sub in input_names(shape.model)}
        else:
            names.add(name)
    return names


# -- reading a posted form -------------------------------------------------------------------------------


class _Missing:
    pass


MISSING = _Missing()


class Problem(Exception):
    """A value of the form that cannot be read as its field's type: `code` is a key of `form.error.*`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_date(text: str) -> date:
    """A day written day first (`31/12/2026`, `31-12-2026`, `31.12.2026`) or as ISO `2026-12-31`."""
    found = _DAY_FIRST.match(text)
    try:
        if found:
            day, month, year = (int(g) for g in found.groups())
            return date(year, month, day)
        found = _ISO_DAY.match(text)
        if found:
            return date.fromisoformat(found.group(0).strip())
    except ValueError:
        raise Problem("date_invalid") from None
    raise Problem("date_format")


def show_date(value: date | datetime | str | None) -> str:
    """How a form writes a day (whatever the page's language)."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return value.strftime("%d/%m/%Y") if value is not None else ""


def _read(shape: Shape, text: str | None, present: bool) -> Any:
    if shape.kind == "bool" and not shape.optional:
        return present
    if text is None or not text.strip():
        return MISSING
    reader = _READ.get(shape.kind)
    if reader is None:
        raise Unsupported(shape.kind)
    return reader(text)


def _read_bool(text: str) -> bool:
    if text in ("true", "false"):
        return text == "true"
    raise Problem("choice_invalid")


def _read_int(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 9:
        raise Problem("number_format")
    return int(text)


def _read_float(text: str) -> float:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        raise Problem("number_format") from None


def _read_pairs(text: str) -> dict[str, float]:
    pairs: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        found = _PAIR.match(line)
        if not found:
            raise Problem("pairs_format")
        pairs[found.group(1)] = float(found.group(2).replace(",", "."))
    return pairs


#: How the text of an input of each kind is read (a blank one is missing, before any of these).
_READ: dict[str, Callable[[str], Any]] = {
    "str": str.strip, "body": str.strip, "choice": str.strip,
    "bool": _read_bool,
    "date": lambda text: parse_date(text),
    "int": _read_int,
    "float": _read_float,
    "list_str": lambda text: [line.strip() for line in text.splitlines() if line.strip()],
    "dict_float": _read_pairs,
}


def _row_blank(prefix: str, model: type[BaseModel], form: Mapping[str, str]) -> bool:
    """A record row nobody filled in: every required input that is written or names a body left blank (a choice
    among a few values, a box, say nothing on their own)."""
    for name, shape in field_shapes(model).items():
        if shape.kind in ("bool", "choice") or not shape.required:
            continue
        if form.get(f"{prefix}{name}", "").strip():
            return False
    return True


def read_values(model: type[BaseModel], form: Mapping[str, str], prefix: str = ""
                ) -> tuple[dict[str, Any], dict[str, str]]:
    """The values of `model`'s fields in the posted `form` (blank inputs left out, so that a required one is
    reported missing by the model), and the problems of the inputs that could not be read (name -> code)."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, shape in field_shapes(model).items():
        path = f"{prefix}{name}"
        if shape.kind == "list_model":
            assert shape.model is not None
            rows = []
            for n in range(min(max(ROWS, shape.min_length or 0), shape.max_length or ROWS)):
                if _row_blank(f"{path}.{n}.", shape.model, form):
                    continue
                row, row_problems = read_values(shape.model, form, f"{path}.{n}.")
                rows.append(row)
                problems.update(row_problems)
            if rows:
                values[name] = rows
            continue
        try:
            value = _read(shape, form.get(path), path in form)
        except Problem as exc:
            problems[path] = exc.code
            continue
        if value is not MISSING:
            values[name] = value
    return values, problems


def error_places(exc: ValidationError, known: set[str], *, skip: int = 0) -> list[tuple[str | None, dict[str, Any]]]:
    """Each error of `exc` with the input it belongs to (the longest leading part of its place that names an
    input of the form; None when none does). `skip`: leading parts of the place to drop (a union's tag)."""
    out: list[tuple[str | None, dict[str, Any]]] = []
    for err in exc.errors():
        parts = [str(p) for p in err.get("loc", ())][skip:]
        name = None
        for n in range(len(parts), 0, -1):
            candidate = ".".join(parts[:n])
            if candidate in known:
                name = candidate
                break
        out.append((name, dict(err)))
    return out


def error_text(t: Translator, err: Mapping[str, Any]) -> str:
    """A pydantic error (or one of this module's problems) in the page's language."""
    kind = str(err.get("type", "value_error"))
    ctx = {k: v for k, v in (err.get("ctx") or {}).items() if isinstance(v, int | str)}
    key = f"form.error.{kind}"
    text = t(key, **_ctx_values(ctx)) if _known(key) else t("form.error.other", detail=str(err.get("msg", kind)))
    return text


def _ctx_values(ctx: Mapping[str, Any]) -> dict[str, Any]:
    return {"min": ctx.get("min_length", ctx.get("ge", "")), "max": ctx.get("max_length", ctx.get("le", "")),
            "format": DATE_FORMAT}


def _known(key: str) -> bool:
    return key in MESSAGES


def problem_text(t: Translator, code: str) -> str:
    return t(f"form.error.{code}", **_ctx_values({}))
