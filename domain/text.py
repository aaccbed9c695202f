"""What text a case accepts: every string a sender gives, wherever it goes, is held to these rules.

A NUL cannot be stored in PostgreSQL's text, a lone surrogate cannot be written as UTF-8, and the other
control characters corrupt logs, terminals and exported files while meaning nothing in a letter. Tab, line
feed and carriage return are text like any other. The API refuses the rest at its edge (`api.limits`), and a
case's Update validators refuse them again for senders that reach Temporal without the API.

Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

#: Rules, as the `rule` of a 422's field error.
NUL = "text_nul"
SURROGATE = "text_surrogate"
CONTROL = "text_control"

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_fault(text: str) -> tuple[str, str] | None:
    """`(rule, message)` when `text` holds a character no text of a case may hold, else None."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return NUL, f"the text holds a NUL character ({code}) at position {found.start()}, which text may not hold"
    if "\ud800" <= char <= "\udfff":
        return SURROGATE, (f"the text holds a lone surrogate ({code}) at position {found.start()}: it is not a "
                           "character and cannot be written as UTF-8")
    return CONTROL, (f"the text holds the control character {code} at position {found.start()}; only tab, line "
                     "feed and carriage return are allowed")


def faults(value: Any, where: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """Every `(place, rule, message)` of a bad string in `value` (models, dicts with their keys, lists)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(where, value)]
    while stack:
        place, item = stack.pop()
        if isinstance(item, str):
            fault = text_fault(item)
            if fault is not None:
                yield place, *fault
        elif isinstance(item, BaseModel):
            stack.extend(((*place, name), getattr(item, name, None)) for name in reversed(type(item).model_fields))
        elif isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                if isinstance(key, str) and (fault := text_fault(key)) is not None:
                    yield (*place, key), *fault
                stack.append(((*place, key), sub))
        elif isinstance(item, list | tuple):
            stack.extend(((*place, i), sub) for i, sub in reversed(list(enumerate(item))))
