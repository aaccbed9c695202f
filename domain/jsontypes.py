"""Scalars that keep their JSON type, for the fields of what clients send.

pydantic's default (lax) mode converts on the way in: `0` and `"yes"` become booleans, `"5"` and `true`
integers, a number a date or a moment (a Unix timestamp). The OpenAPI schema says `boolean`, `integer`, `number`
and `string` (`date`, `date-time`), and a client that sends another type has made a mistake that the API refuses
with 422 naming the field (`bool_type`, `int_type`, `float_type`, `date_type`, `datetime_type`), rather than
reading its request differently than the schema does. What JSON Schema itself allows still validates: `5.0` is
an integer, `5` a number; and so do a date or a moment given as an ISO 8601 string or as a Python value, so
stored events and Temporal payloads, which hold JSON types, read back unchanged.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

Boolean = Annotated[bool, Strict()]


def _integer(value: Any) -> Any:
    # JSON Schema counts 5.0 an integer, and pydantic's lax mode reads it so (5.5 it refuses); not `true` or "5".
    if isinstance(value, bool | str | bytes):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: Refuses what is not a JSON number; put bounds before it (`Annotated[int, Field(ge=1), INTEGER_ONLY] | None`)
#: where the integer is optional, or pydantic writes them into the schema under their own names (`ge`).
INTEGER_ONLY = BeforeValidator(_integer)
Integer = Annotated[int, INTEGER_ONLY]
#: An integer is a number too (JSON Schema's `number`); a boolean or a string is not.
Number = Annotated[float, Strict()]


def _not_a_number(kind: str, what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, int | float):  # bool is an int
            raise PydanticCustomError(f"{kind}_type", f"Input should be {what} written as an ISO 8601 string")
        return value
    return BeforeValidator(check)


Date = Annotated[date, _not_a_number("date", "a valid date")]
Moment = Annotated[AwareDatetime, _not_a_number("datetime", "a valid datetime with its offset")]
Datetime = Annotated[datetime, _not_a_number("datetime", "a valid datetime")]


#: The characters Python's `str.strip()` removes, as a character class of a regular expression (JSON Schema's,
#: pydantic's and Python's alike), so that a schema states a rule on text measured once stripped.
SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def stripped_at_least(length: int) -> str:
    """The pattern of text that still holds `length` characters or more once stripped of spaces at both ends."""
    if length <= 1:
        return f"[^{SPACE}]"
    return rf"^[{SPACE}]*[^{SPACE}][\s\S]{{{length - 2},}}[^{SPACE}][{SPACE}]*$"
